//DEPS com.hierynomus:sshj:0.40.0
//SOURCES Cli.java

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.Timer;
import java.util.TimerTask;
import java.util.regex.Pattern;

import net.schmizz.sshj.DefaultConfig;
import net.schmizz.sshj.SSHClient;
import net.schmizz.sshj.common.Buffer;
import net.schmizz.sshj.common.KeyType;
import net.schmizz.sshj.connection.channel.direct.Session;
import net.schmizz.sshj.transport.verification.OpenSSHKnownHosts;
import net.schmizz.sshj.userauth.UserAuthException;
import net.schmizz.sshj.userauth.keyprovider.KeyProvider;
import net.schmizz.sshj.userauth.password.PasswordFinder;
import net.schmizz.sshj.userauth.password.Resource;

/**
 * SSH into a guest the way `ssh user@vm 'command'` does, minus the agent: public-key auth from
 * key files only, host key checked against known_hosts (unknown = refused unless accept-new,
 * changed = always refused), bounded connect and command times. Every failure is a
 * {@link Cli.UserError} with verify's exit codes. Never prints key material, only fingerprints.
 */
public final class GuestSsh implements AutoCloseable {

    /** Where and as whom to connect, fully resolved (flags, then ~/.ssh/config, then defaults). */
    public record Target(String host, int port, String user, List<Path> identities, Path knownHosts,
                         boolean acceptNew, Duration connectTimeout) {
        public String display() {
            return user + "@" + host + (port == 22 ? "" : ":" + port);
        }
    }

    /** A finished remote command. */
    public record Result(int exit, String out, String err) {}

    private final SSHClient client;
    private final Target target;
    private final KnownHosts verifier;

    private GuestSsh(SSHClient client, Target target, KnownHosts verifier) {
        this.client = client;
        this.target = target;
        this.verifier = verifier;
    }

    /** Connects, verifies the host key and authenticates, or throws a UserError saying which step failed. */
    public static GuestSsh connect(Target t) {
        List<KeyProvider> keys = new ArrayList<>();
        List<Path> usable = new ArrayList<>();
        List<String> unusable = new ArrayList<>();
        SSHClient client = new SSHClient(new DefaultConfig());
        KnownHosts verifier;
        try {
            verifier = new KnownHosts(t.knownHosts().toFile(), t.acceptNew());
        } catch (IOException e) {
            throw new Cli.UserError(Cli.Exit.SSH_HOST_KEY, "cannot read known_hosts " + t.knownHosts() + " (" + e.getMessage()
                    + ") — fix the file or pass --known-hosts FILE");
        }
        for (Path p : t.identities()) {
            // An encrypted key fails here, not mid-auth: we have no agent and never prompt.
            AtomicBoolean askedForPassphrase = new AtomicBoolean();
            PasswordFinder noPassphrase = new PasswordFinder() {
                @Override
                public char[] reqPassword(Resource<?> resource) {
                    askedForPassphrase.set(true);
                    return null;
                }

                @Override
                public boolean shouldRetry(Resource<?> resource) {
                    return false;
                }
            };
            try {
                KeyProvider kp = client.loadKeys(p.toString(), noPassphrase);
                kp.getPrivate();
                keys.add(kp);
                usable.add(p);
            } catch (IOException | RuntimeException e) {
                unusable.add(p + " (" + (askedForPassphrase.get() ? "protected by a passphrase" : reason(e)) + ")");
            }
        }
        if (keys.isEmpty()) {
            closeQuietly(client);
            throw new Cli.UserError(Cli.Exit.SSH_AUTH, "no usable SSH private key"
                    + (unusable.isEmpty() ? " (none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists)" : ": " + String.join(", ", unusable))
                    + " — pass an unencrypted key with --identity FILE (verify does not use ssh-agent)");
        }
        int ms = (int) Math.max(1, t.connectTimeout().toMillis());
        client.setConnectTimeout(ms);
        client.getTransport().setTimeoutMs(ms);
        client.getConnection().setTimeoutMs(ms);
        client.addHostKeyVerifier(verifier);
        // sshj bounds the TCP connect and key exchange, not the wait for the server's greeting:
        // a server that accepts and stays silent would hang us, so the whole login has a deadline.
        AtomicBoolean expired = new AtomicBoolean();
        Timer watchdog = new Timer("ssh-connect-timeout", true);
        watchdog.schedule(new TimerTask() {
            @Override
            public void run() {
                expired.set(true);
                closeQuietly(client);
                try {
                    if (client.getSocket() != null) client.getSocket().close();
                } catch (IOException ignored) {
                    // closing anyway
                }
            }
        }, ms);
        try {
            try {
                client.connect(t.host(), t.port());
            } catch (IOException e) {
                closeQuietly(client);
                if (verifier.problem != null) throw verifier.error(t);
                throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "cannot connect to " + t.host() + " port " + t.port() + " ("
                        + (expired.get() ? "no SSH greeting within " + t.connectTimeout().toSeconds() + " s" : reason(e))
                        + ") — is the VM up and sshd running, and is the address right? (pass --host/--port)");
            }
            try {
                client.authPublickey(t.user(), keys);
            } catch (UserAuthException e) {
                closeQuietly(client);
                if (expired.get()) {
                    throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "SSH login to " + t.display() + " not done within "
                            + t.connectTimeout().toSeconds() + " s — is the guest overloaded? raise --connect-timeout");
                }
                throw new Cli.UserError(Cli.Exit.SSH_AUTH, t.display() + " refused our key" + (keys.size() > 1 ? "s" : "")
                        + " (" + String.join(", ", usable.stream().map(Path::toString).toList())
                        + ") — add the public key to ~" + t.user() + "/.ssh/authorized_keys in the guest, or pass --user/--identity");
            } catch (IOException e) {
                closeQuietly(client);
                throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "SSH login to " + t.display() + " failed ("
                        + (expired.get() ? "not done within " + t.connectTimeout().toSeconds() + " s" : reason(e))
                        + ") — retry; if it persists check the guest's sshd log");
            }
        } finally {
            watchdog.cancel();
        }
        if (expired.get()) {
            closeQuietly(client);
            throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "SSH login to " + t.display() + " not done within "
                    + t.connectTimeout().toSeconds() + " s — is the guest overloaded? raise --connect-timeout");
        }
        return new GuestSsh(client, t, verifier);
    }

    /** SHA256 fingerprint of the guest's host key, as ssh-keygen -l prints it. */
    public String hostKeyFingerprint() {
        return verifier.seenType + " " + fingerprint(verifier.seen);
    }

    /** True when this connection recorded the guest's key in known_hosts (accept-new). */
    public boolean hostKeyRecorded() {
        return verifier.recorded;
    }

    /** Runs one command; a command still running after the timeout ends the connection. */
    public Result run(String command, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            Session session = client.startSession();
            Session.Command cmd = session.exec(command);
            CompletableFuture<byte[]> out = readAll(cmd.getInputStream());
            CompletableFuture<byte[]> err = readAll(cmd.getErrorStream());
            try {
                byte[] o = out.get(remaining(deadline), TimeUnit.NANOSECONDS);
                byte[] e = err.get(remaining(deadline), TimeUnit.NANOSECONDS);
                cmd.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(remaining(deadline))), TimeUnit.MILLISECONDS);
                Integer exit = cmd.getExitStatus();
                session.close();
                return new Result(exit == null ? -1 : exit, new String(o, StandardCharsets.UTF_8), new String(e, StandardCharsets.UTF_8));
            } catch (TimeoutException | net.schmizz.sshj.connection.ConnectionException te) {
                closeQuietly(client); // a hung command: drop the connection rather than wait for a polite close
                throw new Cli.UserError(Cli.Exit.TIMEOUT, "`" + command + "` did not finish within " + timeout.toSeconds()
                        + " s in the guest " + target.display() + " — the guest may be overloaded; raise --command-timeout");
            }
        } catch (IOException | ExecutionException e) {
            closeQuietly(client);
            throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "SSH connection to " + target.display() + " broke while running `"
                    + command + "` (" + reason(e) + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Cli.UserError(Cli.Exit.INTERNAL, "interrupted");
        }
    }

    private static void closeQuietly(SSHClient client) {
        try {
            client.disconnect();
        } catch (IOException | RuntimeException ignored) {
            // closing anyway
        }
    }

    private static long remaining(long deadline) {
        return Math.max(0, deadline - System.nanoTime());
    }

    private static CompletableFuture<byte[]> readAll(InputStream in) {
        CompletableFuture<byte[]> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                ByteArrayOutputStream buf = new ByteArrayOutputStream();
                in.transferTo(buf);
                f.complete(buf.toByteArray());
            } catch (IOException e) {
                f.completeExceptionally(e);
            }
        }, "ssh-read");
        t.setDaemon(true);
        t.start();
        return f;
    }

    @Override
    public void close() {
        closeQuietly(client);
    }

    /** OpenSSH's SHA256 fingerprint: base64 (unpadded) of the SHA-256 of the key blob. */
    public static String fingerprint(PublicKey key) {
        try {
            byte[] blob = new Buffer.PlainBuffer().putPublicKey(key).getCompactData();
            return "SHA256:" + Base64.getEncoder().withoutPadding().encodeToString(MessageDigest.getInstance("SHA-256").digest(blob));
        } catch (Exception e) {
            return "SHA256:?";
        }
    }

    private static String reason(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        if (root instanceof ConnectException) return "connection refused";
        if (root instanceof SocketTimeoutException) return "timed out";
        if (root instanceof UnknownHostException) return "unknown host " + root.getMessage();
        if (root instanceof NoRouteToHostException) return "no route to host";
        String m = root.getMessage();
        return m == null || m.isBlank() ? root.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    /** sshj's OpenSSH known_hosts check, recording why a key was refused and writing new keys under accept-new. */
    static final class KnownHosts extends OpenSSHKnownHosts {
        private final boolean acceptNew;
        String problem; // "unknown" or "changed"
        String hostEntry;
        PublicKey seen;
        String seenType = "";
        boolean recorded;

        KnownHosts(java.io.File file, boolean acceptNew) throws IOException {
            super(file);
            this.acceptNew = acceptNew;
        }

        @Override
        public boolean verify(String hostname, int port, PublicKey key) {
            seen = key;
            seenType = typeName(KeyType.fromKey(key));
            return super.verify(hostname, port, key);
        }

        @Override
        protected boolean hostKeyUnverifiableAction(String hostname, PublicKey key) {
            hostEntry = hostname;
            boolean knownWithOtherType = entries().stream().anyMatch(e -> {
                try {
                    return e.appliesTo(hostname);
                } catch (IOException ex) {
                    return false;
                }
            });
            if (knownWithOtherType) {
                problem = "changed"; // OpenSSH too refuses a key of another type for a known host
                return false;
            }
            if (!acceptNew) {
                problem = "unknown";
                return false;
            }
            try {
                HostEntry entry = new HostEntry(null, hostname, KeyType.fromKey(key), key);
                Path file = getFile().toPath();
                if (file.getParent() != null && !Files.isDirectory(file.getParent())) {
                    Files.createDirectories(file.getParent(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                }
                boolean needsNewline = Files.isRegularFile(file) && Files.size(file) > 0
                        && !Files.readString(file, StandardCharsets.UTF_8).endsWith("\n");
                Files.writeString(file, (needsNewline ? "\n" : "") + entry.getLine() + "\n", StandardCharsets.UTF_8,
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND);
                entries().add(entry);
                recorded = true;
                return true;
            } catch (IOException e) {
                problem = "unwritable: " + e.getMessage();
                return false;
            }
        }

        @Override
        protected boolean hostKeyChangedAction(String hostname, PublicKey key) {
            hostEntry = hostname;
            problem = "changed";
            return false;
        }

        /** The key type as ssh-keygen -l names it (ED25519, ECDSA, RSA). */
        private static String typeName(KeyType type) {
            String t = type.toString();
            if (t.contains("ed25519")) return "ED25519";
            if (t.startsWith("ecdsa")) return "ECDSA";
            if (t.contains("rsa")) return "RSA";
            return t;
        }

        Cli.UserError error(Target t) {
            String fp = seenType + " key " + fingerprint(seen);
            if ("changed".equals(problem)) {
                return new Cli.UserError(Cli.Exit.SSH_HOST_KEY, "HOST KEY CHANGED for " + hostEntry + ": " + getFile()
                        + " has a different key than the one offered (" + fp + ") — refusing to connect (possible man-in-the-middle);"
                        + " if the VM was reinstalled, remove the old key with: ssh-keygen -R '" + hostEntry + "' -f " + getFile());
            }
            if ("unknown".equals(problem)) {
                return new Cli.UserError(Cli.Exit.SSH_HOST_KEY, "host key of " + hostEntry + " is not in " + getFile()
                        + " (offered " + fp + ") — compare it with the guest's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the VM console),"
                        + " then re-run with --accept-new to record it");
            }
            return new Cli.UserError(Cli.Exit.SSH_HOST_KEY, "cannot record the host key of " + hostEntry + " in " + getFile()
                    + " (" + problem.substring(problem.indexOf(':') + 1).trim() + ") — pass a writable --known-hosts FILE");
        }
    }

    /**
     * The subset of ssh_config(5) that decides where and as whom we connect: Host (patterns with
     * * ? and !), HostName, User, Port, IdentityFile. First value wins, IdentityFile accumulates,
     * Match blocks are skipped (sshj has no ssh_config parser).
     */
    public record SshConfig(String hostName, String user, Integer port, List<String> identityFiles) {
        public static SshConfig lookup(Path file, String host) {
            String hostName = null;
            String user = null;
            Integer port = null;
            List<String> ids = new ArrayList<>();
            if (file == null || !Files.isRegularFile(file)) return new SshConfig(null, null, null, ids);
            List<String> lines;
            try {
                lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new Cli.UserError(Cli.Exit.USAGE, "cannot read SSH config " + file + " (" + e.getMessage() + ") — fix it or pass --ssh-config FILE");
            }
            boolean applies = true; // lines before the first Host apply to every host
            for (String raw : lines) {
                String line = raw.strip();
                if (line.isEmpty() || line.startsWith("#")) continue;
                String[] kv = line.split("\\s*=\\s*|\\s+", 2);
                String key = kv[0].toLowerCase(Locale.ROOT);
                String value = kv.length > 1 ? unquote(kv[1].strip()) : "";
                switch (key) {
                    case "host" -> applies = matches(value, host);
                    case "match" -> applies = false;
                    case "hostname" -> { if (applies && hostName == null) hostName = value.replace("%h", host); }
                    case "user" -> { if (applies && user == null) user = value; }
                    case "port" -> {
                        if (applies && port == null) {
                            try {
                                port = Integer.parseInt(value);
                            } catch (NumberFormatException e) {
                                throw new Cli.UserError(Cli.Exit.USAGE, "SSH config " + file + ": bad Port \"" + value + "\" — fix the file");
                            }
                        }
                    }
                    case "identityfile" -> { if (applies) ids.add(value); }
                    default -> { }
                }
            }
            return new SshConfig(hostName, user, port, ids);
        }

        private static boolean matches(String patterns, String host) {
            boolean any = false;
            for (String p : patterns.split("\\s+")) {
                boolean negated = p.startsWith("!");
                String glob = negated ? p.substring(1) : p;
                String regex = "\\Q" + glob.replace("*", "\\E.*\\Q").replace("?", "\\E.\\Q") + "\\E";
                if (Pattern.compile(regex, Pattern.CASE_INSENSITIVE).matcher(host).matches()) {
                    if (negated) return false;
                    any = true;
                }
            }
            return any;
        }

        private static String unquote(String s) {
            return s.length() >= 2 && s.startsWith("\"") && s.endsWith("\"") ? s.substring(1, s.length() - 1) : s;
        }
    }
}
