import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import net.schmizz.sshj.common.Buffer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** known_hosts parsing and lookup, with files written by Debian's ssh-keygen (hashed with -H) as the reference. */
class KnownHostsTest {
    @TempDir Path dir; // removed by JUnit after each test
    Path file;
    PublicKey hostKey;
    String hostLine; // "ssh-ed25519 AAAA..."

    @BeforeEach
    void setUp() throws Exception {
        file = dir.resolve("known_hosts");
        Path key = OpenSsh.keygen(dir.resolve("host_key"), "ed25519", "", "host");
        String[] pub = Files.readString(dir.resolve("host_key.pub")).split("\\s+");
        hostLine = pub[0] + " " + pub[1];
        hostKey = new Buffer.PlainBuffer(Base64.getDecoder().decode(pub[1])).readPublicKey();
        assertTrue(Files.exists(key));
    }

    KnownHosts load() {
        return KnownHosts.load(List.of(file), List.of());
    }

    PublicKey otherKey() throws Exception {
        OpenSsh.keygen(dir.resolve("other_key"), "ed25519", "", "other");
        String[] pub = Files.readString(dir.resolve("other_key.pub")).split("\\s+");
        return new Buffer.PlainBuffer(Base64.getDecoder().decode(pub[1])).readPublicKey();
    }

    @Test
    void plainPatternsPortsAndNegation() throws Exception {
        Files.writeString(file, "*.lab,!bad.lab " + hostLine + "\n[192.0.2.5]:2222 " + hostLine + "\n");
        KnownHosts kh = load();
        assertEquals(KnownHosts.Verdict.KNOWN, kh.check("docker-host.lab", hostKey).verdict());
        assertEquals(KnownHosts.Verdict.UNKNOWN, kh.check("bad.lab", hostKey).verdict());
        assertEquals(KnownHosts.Verdict.KNOWN, kh.check(KnownHosts.hostKeyName("192.0.2.5", 2222), hostKey).verdict());
        assertEquals(KnownHosts.Verdict.UNKNOWN, kh.check(KnownHosts.hostKeyName("192.0.2.5", 22), hostKey).verdict());
        assertEquals(file + ":2", kh.check("[192.0.2.5]:2222", hostKey).entry().where());
    }

    @Test
    void hashedEntriesFromSshKeygenMatch() throws Exception {
        Files.writeString(file, "[192.0.2.5]:2222 " + hostLine + "\ndocker-host " + hostLine + "\n");
        OpenSsh.hashKnownHosts(file);
        assertTrue(Files.readAllLines(file).stream().allMatch(l -> l.startsWith("|1|")), Files.readString(file));
        KnownHosts kh = load();
        assertEquals(KnownHosts.Verdict.KNOWN, kh.check("[192.0.2.5]:2222", hostKey).verdict());
        assertEquals(KnownHosts.Verdict.KNOWN, kh.check("docker-host", hostKey).verdict());
        assertEquals(KnownHosts.Verdict.UNKNOWN, kh.check("docker-host2", hostKey).verdict());
        assertEquals(KnownHosts.Verdict.CHANGED, kh.check("docker-host", otherKey()).verdict());
    }

    @Test
    void revokedWinsOverAnyOtherLine() throws Exception {
        Files.writeString(file, "docker-host " + hostLine + "\n@revoked * " + hostLine + "\n");
        KnownHosts.Check c = load().check("docker-host", hostKey);
        assertEquals(KnownHosts.Verdict.REVOKED, c.verdict());
        assertEquals(file + ":2", c.entry().where());
    }

    @Test
    void unparsableLinesAreWarningsWithFileAndLineAndTheRestIsUsed() throws Exception {
        Files.writeString(file, String.join("\n",
                "# a comment",
                "garbage",
                "docker-host ssh-ed25519 not-base64!!",
                "@weird docker-host " + hostLine,
                "docker-host ssh-rsa " + hostLine.split(" ")[1],
                "docker-host " + hostLine, ""));
        KnownHosts kh = load();
        assertEquals(KnownHosts.Verdict.KNOWN, kh.check("docker-host", hostKey).verdict());
        assertEquals(file + ":6", kh.check("docker-host", hostKey).entry().where());
        String tail = " — skipped; fix or delete it (the other lines are still used)";
        assertEquals(List.of(
                "known_hosts " + file + ":2: cannot parse the line (expected \"hosts key-type base64-key\")" + tail,
                "known_hosts " + file + ":3: cannot parse the line (the key is not valid base64 key data)" + tail,
                "known_hosts " + file + ":4: cannot parse the line (unknown marker @weird)" + tail,
                "known_hosts " + file + ":5: cannot parse the line (key type ssh-rsa does not match the key (ssh-ed25519))" + tail), kh.warnings());
    }

    @Test
    void recordWritesHashedToAHashedFileAndPlainOtherwise() throws Exception {
        Files.writeString(file, "other " + hostLine + "\n");
        OpenSsh.hashKnownHosts(file);
        KnownHosts kh = load();
        kh.record("[127.0.0.1]:2200", hostKey, false);
        List<String> lines = Files.readAllLines(file);
        assertTrue(lines.get(1).startsWith("|1|"), lines.toString());
        assertTrue(OpenSsh.findHost(file, "[127.0.0.1]:2200").contains(lines.get(1)), "ssh-keygen -F finds what we wrote");

        Path plain = dir.resolve("sub/plain_known_hosts"); // the directory does not exist yet
        KnownHosts p = KnownHosts.load(List.of(plain), List.of());
        p.record("docker-host", hostKey, false);
        assertEquals(List.of("docker-host " + hostLine), Files.readAllLines(plain));
        p.record("web", hostKey, true); // HashKnownHosts yes
        assertTrue(Files.readAllLines(plain).get(1).startsWith("|1|"));
        assertTrue(OpenSsh.findHost(plain, "web").contains(Files.readAllLines(plain).get(1)));
        assertEquals(List.of("ssh-ed25519"), KnownHosts.load(List.of(plain), List.of()).knownTypes("web"));
    }

    @Test
    void fingerprintsMatchSshKeygen() {
        String expected = OpenSsh.exec(Map.of(), List.of("ssh-keygen", "-l", "-E", "sha256", "-f", dir.resolve("host_key.pub").toString())).split("\\s+")[1];
        assertEquals(expected, KnownHosts.fingerprint(hostKey));
    }
}
