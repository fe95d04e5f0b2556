//DEPS com.hierynomus:sshj:0.40.0
//SOURCES SshException.java SshConfig.java

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import net.schmizz.sshj.common.Buffer;
import net.schmizz.sshj.common.KeyType;

/**
 * known_hosts files as OpenSSH reads them (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain host
 * pattern lists (*, ?, !, [host]:port), hashed names ({@code |1|salt|hmac}), {@code @revoked}
 * keys, {@code @cert-authority} lines (skipped: no certificates here). A line that cannot be
 * parsed is a warning with file:line and the rest of the file is still used.
 */
public final class KnownHosts {
    /** The outcome of looking a host key up. */
    public enum Verdict { KNOWN, UNKNOWN, CHANGED, REVOKED }

    /** One usable line. {@code hosts} is the pattern list or the hashed name. */
    public record Entry(Path file, int line, String marker, String hosts, String keyType, byte[] blob) {
        boolean appliesTo(String name) {
            if (hosts.startsWith("|1|")) return hashedMatches(hosts, name);
            return SshConfig.patternList(hosts, name);
        }

        public String where() {
            return file + ":" + line;
        }
    }

    /** A lookup's verdict with the line that decided it (null for UNKNOWN). */
    public record Check(Verdict verdict, Entry entry) {}

    private final List<Path> userFiles;
    private final List<Entry> entries = new ArrayList<>();
    private final List<String> warnings = new ArrayList<>();

    private KnownHosts(List<Path> userFiles) {
        this.userFiles = userFiles;
    }

    /**
     * Reads the user files (the first is where new keys are recorded) and the global ones
     * (read-only). Missing files are fine: ssh treats them as empty.
     */
    public static KnownHosts load(List<Path> userFiles, List<Path> globalFiles) {
        KnownHosts kh = new KnownHosts(List.copyOf(userFiles));
        List<Path> all = new ArrayList<>(userFiles);
        all.addAll(globalFiles);
        for (Path f : all) kh.read(f);
        return kh;
    }

    /** One-line warnings for lines that could not be parsed (file:line). */
    public List<String> warnings() {
        return List.copyOf(warnings);
    }

    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** Where a new key goes: the first user file (UserKnownHostsFile's first name, or --known-hosts). */
    public Path writeFile() {
        return userFiles.isEmpty() ? null : userFiles.get(0);
    }

    private void read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return;
        } catch (IOException e) {
            throw SshException.hostKey("cannot read known_hosts " + file + " (" + e.getMessage() + ") — fix its permissions or pass --known-hosts FILE");
        }
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] f = line.split("\\s+");
            int at = 0;
            String marker = null;
            if (f[0].startsWith("@")) {
                marker = f[0].substring(1);
                at = 1;
                if (!marker.equals("revoked") && !marker.equals("cert-authority")) {
                    warn(file, i + 1, "unknown marker @" + marker);
                    continue;
                }
            }
            if (f.length < at + 3) {
                warn(file, i + 1, "expected \"hosts key-type base64-key\"");
                continue;
            }
            String hosts = f[at];
            String type = f[at + 1];
            byte[] blob;
            try {
                blob = Base64.getDecoder().decode(f[at + 2]);
                String inBlob = new Buffer.PlainBuffer(blob).readString();
                if (!inBlob.equals(type)) {
                    warn(file, i + 1, "key type " + type + " does not match the key (" + inBlob + ")");
                    continue;
                }
                if (marker == null || marker.equals("revoked")) new Buffer.PlainBuffer(blob).readPublicKey();
            } catch (IllegalArgumentException | Buffer.BufferException e) {
                warn(file, i + 1, "the key is not valid base64 key data");
                continue;
            }
            if (hosts.startsWith("|") && !hosts.matches("\\|1\\|[A-Za-z0-9+/=]+\\|[A-Za-z0-9+/=]+")) {
                warn(file, i + 1, "unsupported hashed host name (only |1| is known)");
                continue;
            }
            entries.add(new Entry(file, i + 1, marker, hosts, type, blob));
        }
    }

    private void warn(Path file, int line, String why) {
        warnings.add("known_hosts " + file + ":" + line + ": cannot parse the line (" + why + ") — skipped; fix or delete it (the other lines are still used)");
    }

    /** The name known_hosts uses for a host: {@code host}, or {@code [host]:port} off port 22. */
    public static String hostKeyName(String host, int port) {
        return port == 22 ? host : "[" + host + "]:" + port;
    }

    /** OpenSSH's check_host_in_hostfile: a revoked key wins, then an equal key, then another key of the same type. */
    public Check check(String name, PublicKey key) {
        byte[] blob = blob(key);
        String type = KeyType.fromKey(key).toString();
        Entry changed = null;
        Entry known = null;
        for (Entry e : entries) {
            if ("revoked".equals(e.marker())) {
                if (Arrays.equals(e.blob(), blob)) return new Check(Verdict.REVOKED, e);
                continue;
            }
            if (e.marker() != null || !e.appliesTo(name)) continue;
            if (Arrays.equals(e.blob(), blob)) {
                if (known == null) known = e;
            } else if (e.keyType().equals(type) && changed == null) {
                changed = e;
            }
        }
        if (known != null) return new Check(Verdict.KNOWN, known);
        if (changed != null) return new Check(Verdict.CHANGED, changed);
        return new Check(Verdict.UNKNOWN, null);
    }

    /**
     * Host key algorithms for the key types known for this name, so the key exchange asks for a
     * key we can check (as ssh orders HostKeyAlgorithms). An ssh-rsa key is offered by servers as
     * rsa-sha2-512/256 (OpenSSH 8.8+ no longer offers SHA-1 ssh-rsa).
     */
    public List<String> knownTypes(String name) {
        List<String> algorithms = new ArrayList<>();
        for (Entry e : entries) {
            if (e.marker() != null || !e.appliesTo(name)) continue;
            List<String> forType = e.keyType().equals("ssh-rsa") ? List.of("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa") : List.of(e.keyType());
            for (String a : forType) if (!algorithms.contains(a)) algorithms.add(a);
        }
        return algorithms;
    }

    /**
     * Appends the key for {@code name} to the write file (creating it and its directory, mode
     * 700): hashed when {@code hash} (HashKnownHosts yes) or when the file's entries are already
     * hashed, so a hashed file stays hashed.
     */
    public Entry record(String name, PublicKey key, boolean hash) {
        Path file = writeFile();
        if (file == null) throw SshException.hostKey("UserKnownHostsFile is none: cannot record the host key of " + name + " — pass --known-hosts FILE");
        try {
            boolean hashedFile = entries.stream().anyMatch(e -> e.file().equals(file) && e.hosts().startsWith("|1|"));
            String hosts = hash || hashedFile ? hashName(name) : name;
            byte[] blob = blob(key);
            String type = KeyType.fromKey(key).toString();
            String line = hosts + " " + type + " " + Base64.getEncoder().encodeToString(blob);
            if (file.getParent() != null && !Files.isDirectory(file.getParent())) {
                Files.createDirectories(file.getParent(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            }
            boolean needsNewline = Files.isRegularFile(file) && Files.size(file) > 0
                    && !Files.readString(file, StandardCharsets.UTF_8).endsWith("\n");
            Files.writeString(file, (needsNewline ? "\n" : "") + line + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            int lineNo = (int) Files.readAllLines(file, StandardCharsets.UTF_8).size();
            Entry e = new Entry(file, lineNo, null, hosts, type, blob);
            entries.add(e);
            return e;
        } catch (IOException e) {
            throw SshException.hostKey("cannot record the host key of " + name + " in " + file + " (" + e.getMessage() + ") — pass a writable --known-hosts FILE");
        }
    }

    /** {@code |1|base64(salt)|base64(HMAC-SHA1(salt, name))}, as ssh-keygen -H writes it. */
    public static String hashName(String name) {
        byte[] salt = new byte[20];
        new SecureRandom().nextBytes(salt);
        return "|1|" + Base64.getEncoder().encodeToString(salt) + "|" + Base64.getEncoder().encodeToString(hmac(salt, name));
    }

    static boolean hashedMatches(String hashed, String name) {
        String[] p = hashed.split("\\|");
        try {
            byte[] salt = Base64.getDecoder().decode(p[2]);
            return MessageDigest.isEqual(Base64.getDecoder().decode(p[3]), hmac(salt, name));
        } catch (IllegalArgumentException | ArrayIndexOutOfBoundsException e) {
            return false;
        }
    }

    private static byte[] hmac(byte[] salt, String name) {
        try {
            Mac mac = Mac.getInstance("HmacSHA1");
            mac.init(new SecretKeySpec(salt, "HmacSHA1"));
            return mac.doFinal(name.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The SSH wire encoding of a public key (what known_hosts holds in base64). */
    public static byte[] blob(PublicKey key) {
        return new Buffer.PlainBuffer().putPublicKey(key).getCompactData();
    }

    /** OpenSSH's SHA256 fingerprint: base64 (unpadded) of the SHA-256 of the key blob. */
    public static String fingerprint(byte[] blob) {
        try {
            return "SHA256:" + Base64.getEncoder().withoutPadding().encodeToString(MessageDigest.getInstance("SHA-256").digest(blob));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String fingerprint(PublicKey key) {
        return fingerprint(blob(key));
    }

    /** The key type as ssh-keygen -l names it (ED25519, ECDSA, RSA). */
    public static String typeName(String sshType) {
        if (sshType.contains("ed25519")) return "ED25519";
        if (sshType.startsWith("ecdsa")) return "ECDSA";
        if (sshType.contains("rsa")) return "RSA";
        return sshType;
    }
}
