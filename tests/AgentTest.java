import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.Base64;
import java.util.List;

import net.schmizz.sshj.common.Buffer;
import net.schmizz.sshj.DefaultConfig;
import net.schmizz.sshj.common.Factory;
import net.schmizz.sshj.signature.Signature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Our ssh-agent client against Debian's real ssh-agent holding passphrase-protected keys (added with ssh-add + SSH_ASKPASS). */
class AgentTest {
    @TempDir Path dir; // removed by JUnit after each test
    OpenSsh.Agent agent;

    @BeforeEach
    void start() throws Exception {
        agent = OpenSsh.Agent.start(dir.resolve("agent"));
    }

    @AfterEach
    void stop() {
        agent.close();
    }

    /** sshj's own verifier for a signature algorithm: an independent check of what the agent returned. */
    static Signature verifier(String algorithm) {
        return Factory.Named.Util.create(new DefaultConfig().getKeyAlgorithms(), algorithm).newSignature();
    }

    static byte[] blob(Path pub) throws IOException {
        return Base64.getDecoder().decode(Files.readString(pub).split("\\s+")[1]);
    }

    @Test
    void listsIdentitiesAndSignsWithEd25519() throws Exception {
        Path key = OpenSsh.keygen(dir.resolve("id_ed25519"), "ed25519", "s3cret passphrase", "me@laptop");
        agent.add(key, "s3cret passphrase");
        try (SshAgent a = SshAgent.connect(agent.socket())) {
            List<SshAgent.Identity> ids = a.identities();
            assertEquals(1, ids.size());
            assertEquals("ssh-ed25519", ids.get(0).type());
            assertEquals("me@laptop", ids.get(0).comment());
            assertEquals(List.of(blob(dir.resolve("id_ed25519.pub")).length), List.of(ids.get(0).blob().length));
            byte[] data = "session id and request".getBytes(StandardCharsets.UTF_8);
            byte[] sig = a.sign(ids.get(0).blob(), data, 0);
            Buffer.PlainBuffer b = new Buffer.PlainBuffer(sig);
            assertEquals("ssh-ed25519", b.readString());
            PublicKey pub = new Buffer.PlainBuffer(ids.get(0).blob()).readPublicKey();
            Signature v = verifier("ssh-ed25519");
            v.initVerify(pub);
            v.update(data);
            assertTrue(v.verify(sig), "the agent's signature verifies with the public key");
        }
    }

    @Test
    void rsaSignaturesUseSha512WhenAsked() throws Exception {
        Path key = OpenSsh.keygen(dir.resolve("id_rsa"), "rsa", "another one", "rsa@laptop");
        agent.add(key, "another one");
        try (SshAgent a = SshAgent.connect(agent.socket())) {
            SshAgent.Identity id = a.identities().get(0);
            assertEquals("ssh-rsa", id.type());
            byte[] data = "x".getBytes(StandardCharsets.UTF_8);
            byte[] sig = a.sign(id.blob(), data, SshAgent.SSH_AGENT_RSA_SHA2_512);
            assertEquals("rsa-sha2-512", new Buffer.PlainBuffer(sig).readString());
            Signature v = verifier("rsa-sha2-512");
            v.initVerify(new Buffer.PlainBuffer(id.blob()).readPublicKey());
            v.update(data);
            assertTrue(v.verify(sig));
        }
    }

    @Test
    void anEmptyAgentListsNothingAndRefusesToSignUnknownKeys() throws Exception {
        Path key = OpenSsh.keygen(dir.resolve("id_x"), "ed25519", "", "x");
        try (SshAgent a = SshAgent.connect(agent.socket())) {
            assertEquals(List.of(), a.identities());
            IOException e = assertThrows(IOException.class, () -> a.sign(blob(dir.resolve("id_x.pub")), new byte[] {1}, 0));
            assertTrue(e.getMessage().startsWith("the agent refused to sign"), e.getMessage());
        }
        assertTrue(Files.exists(key));
    }

    @Test
    void aDeadSocketIsAnIOException() {
        assertThrows(IOException.class, () -> SshAgent.connect(dir.resolve("nothing-here.sock")));
    }
}
