//SOURCES ../scripts/lib/sim/GuestSshServer.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify against Debian's real OpenSSH: sshd on 127.0.0.1 as the guest (fake lspci, sudo and
 * nvidia-smi first in PATH) and as a bastion, a real ssh-agent holding a passphrase-protected
 * key, known_hosts hashed by ssh-keygen -H. verify runs as a user runs it: a fresh process whose
 * HOME is a temp directory (its ~/.ssh/config is what the test writes) and whose SSH_AUTH_SOCK is
 * the test's agent or unset. The simulated VMI's IP is 127.0.0.1.
 */
class RealSshdTest {
    static final String PASSPHRASE = "correct horse battery staple";
    static final String GPU = "altra-000c01000";
    static final String GPU_RESOURCE = "nvidia.com/GA102_GEFORCE_RTX_3090";
    static final String GPU_UUID = "GPU-5f0c2a4e-8b1d-3c7e-9a26-41d7e0b3c9f0";

    SimCluster sim;
    @TempDir Path dir; // removed by JUnit after each test
    Path home;
    Path ssh;
    Path labKey;
    OpenSsh.Agent agent;
    OpenSsh.Sshd bastion;
    OpenSsh.Sshd guest;
    Path knownHosts;
    String user = OpenSsh.user();

    @BeforeEach
    void start() throws Exception {
        OpenSsh.require();
        sim = SimCluster.start();
        vmiHostDevice(GPU, GPU_RESOURCE);
        home = Files.createDirectories(dir.resolve("home"));
        ssh = Files.createDirectories(home.resolve(".ssh"));
        Files.setPosixFilePermissions(ssh, PosixFilePermissions.fromString("rwx------"));
        labKey = OpenSsh.keygen(ssh.resolve("id_lab"), "ed25519", PASSPHRASE, "lab@laptop");
        agent = OpenSsh.Agent.start(dir.resolve("agent"));
        agent.add(labKey, PASSPHRASE);
        bastion = OpenSsh.Sshd.bastion(dir.resolve("bastion"), List.of(pub(labKey)));
        guest = OpenSsh.Sshd.guest(dir.resolve("guest"), List.of(pub(labKey)), Map.of(
                "lspci", "[ \"$1\" = -nn ] || exit 2\ncat <<'EOF'\n" + GuestSshServer.lspci(List.of(GuestSshServer.RTX_3090)) + "EOF",
                "sudo", "[ \"$1\" = -n ] && shift\nexec \"$@\"",
                "nvidia-smi", "echo 'GPU 0: NVIDIA GeForce RTX 3090 (UUID: " + GPU_UUID + ")'"));
        knownHosts = ssh.resolve("known_hosts.lab");
        Files.writeString(knownHosts, bastion.knownHostsLine() + "\n" + guest.knownHostsLine() + "\n");
        OpenSsh.hashKnownHosts(knownHosts); // HashKnownHosts yes, Debian's default
    }

    @AfterEach
    void stop() {
        for (AutoCloseable c : new AutoCloseable[] {guest, bastion, agent, sim}) {
            try {
                if (c != null) c.close();
            } catch (Exception ignored) {
                // stopping anyway
            }
        }
    }

    static Path pub(Path key) {
        return key.resolveSibling(key.getFileName() + ".pub");
    }

    void vmiHostDevice(String name, String resource) {
        var op = KubeVirt.vmis(sim.admin()).inNamespace("default");
        GenericKubernetesResource vmi = op.withName("docker-host").get();
        @SuppressWarnings("unchecked")
        Map<String, Object> devices = (Map<String, Object>) vmi.get("spec", "domain", "devices");
        @SuppressWarnings("unchecked")
        List<Object> hostDevices = new ArrayList<>((List<Object>) devices.get("hostDevices"));
        hostDevices.add(Map.of("name", name, "deviceName", resource));
        devices.put("hostDevices", hostDevices);
        op.resource(vmi).update();
    }

    /** The user's ~/.ssh/config: docker-host through the bastion, the bastion from an Included file, defaults in Host *. */
    void writeConfig(String dockerHostExtra, String bastionExtra) throws Exception {
        Files.createDirectories(ssh.resolve("config.d"));
        Files.writeString(ssh.resolve("config.d/bastion.conf"), """
                Host bastion
                    HostName 127.0.0.1
                    Port %d
                %s
                """.formatted(bastion.port(), bastionExtra));
        Files.writeString(ssh.resolve("config"), """
                Include config.d/*.conf
                Host docker-host
                    HostName 127.0.0.1
                    Port %d
                    ProxyJump bastion
                %s
                Match originalhost bastion,docker-host user %s
                    IdentityFile ~/.ssh/id_lab
                    UserKnownHostsFile ~/.ssh/known_hosts.lab
                Host *
                    User nobody-by-default
                    StrictHostKeyChecking yes
                    ConnectTimeout 5
                """.formatted(guest.port(), dockerHostExtra, user));
    }

    void writeConfig() throws Exception {
        writeConfig("    User " + user, "    User " + user);
    }

    /** verify in a fresh process, HOME = the temp home, SSH_AUTH_SOCK = the given socket (null: unset). */
    Run.Result verify(Path authSock, String... args) {
        Map<String, String> env = new HashMap<>();
        env.put("HOME", home.toString());
        if (authSock != null) env.put("SSH_AUTH_SOCK", authSock.toString());
        List<String> a = new ArrayList<>(List.of(args));
        a.addAll(List.of("--kubeconfig", sim.kubeconfig().toString(), "--command-timeout", "20"));
        Run.Result r = Run.process(env, "verify", a.toArray(new String[0]));
        String all = r.out() + r.err();
        assertFalse(all.contains("PRIVATE KEY"), "never print a private key: " + all);
        assertFalse(all.contains(PASSPHRASE), "never print a passphrase: " + all);
        return r;
    }

    static JsonNode json(String s) throws Exception {
        return Serialization.jsonMapper().readTree(s);
    }

    String fingerprint(Path pubFile) {
        return OpenSsh.exec(Map.of(), List.of("ssh-keygen", "-l", "-E", "sha256", "-f", pubFile.toString())).split("\\s+")[1];
    }

    @Test
    void passesThroughABastionWithAnAgentKeyAndHashedKnownHostsAllFromTheHostBlock() throws Exception {
        writeConfig();
        Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, r.exit(), r.all());
        assertEquals("", r.err());
        JsonNode g = json(r.out()).get("guest");
        assertTrue(g.get("source").asText().startsWith("ssh_config Host docker-host (" + ssh.resolve("config") + ":2)"), g.toString());
        assertEquals("127.0.0.1", g.get("host").asText());
        assertEquals(guest.port(), g.get("port").asInt());
        assertEquals(user, g.get("user").asText());
        assertEquals(List.of(user + "@127.0.0.1:" + bastion.port()), List.of(g.get("via").get(0).asText()));
        assertEquals(1, g.get("via").size());
        assertEquals("agent key ED25519 " + fingerprint(pub(labKey)) + " (lab@laptop)", g.get("auth").asText());
        assertEquals(knownHosts + ":2", g.get("knownHostsEntry").asText());
        assertEquals("ED25519 " + fingerprint(guest.hostPublicKey()), g.get("hostKey").asText());
        assertEquals("PASS", json(r.out()).get("result").asText());
        assertEquals(List.of("sudo -n lspci -nn"), guest.commands());
        assertTrue(bastion.log().contains("direct-tcpip"), "the guest was reached through the bastion:\n" + bastion.log());

        Run.Result text = verify(agent.socket(), "docker-host", "--nvidia-smi");
        assertEquals(0, text.exit(), text.all());
        assertTrue(text.out().contains("GUEST:  " + user + "@127.0.0.1:" + guest.port() + ", host key ED25519 " + fingerprint(guest.hostPublicKey()) + " (known)\n"), text.out());
        assertTrue(text.out().contains("SSH:    ssh_config Host docker-host (" + ssh.resolve("config") + ":2); via " + user + "@127.0.0.1:"
                + bastion.port() + "; agent key ED25519 " + fingerprint(pub(labKey)) + " (lab@laptop)\n"), text.out());
        assertTrue(text.out().contains("  GPU 0: NVIDIA GeForce RTX 3090 (UUID: " + GPU_UUID + ")\n"), text.out());
    }

    @Test
    void withoutAHostBlockTheVmisIpIsUsedAndTheReportSaysSo() throws Exception {
        Files.writeString(ssh.resolve("config"), """
                Host 127.0.0.1
                    Port %d
                    User %s
                    IdentityFile ~/.ssh/id_lab
                    UserKnownHostsFile ~/.ssh/known_hosts.lab
                """.formatted(guest.port(), user));
        Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, r.exit(), r.all());
        JsonNode g = json(r.out()).get("guest");
        assertEquals("VMI IP 127.0.0.1 (no ssh_config Host block for docker-host); settings from ssh_config Host 127.0.0.1 ("
                + ssh.resolve("config") + ":1)", g.get("source").asText());
        assertEquals(0, g.get("via").size());
        assertFalse(bastion.log().contains("direct-tcpip"), bastion.log());
    }

    @Test
    void aDeadAgentFallsBackToKeyFilesWithANote() throws Exception {
        Path plain = OpenSsh.keygen(ssh.resolve("id_plain"), "ed25519", "", "plain@laptop");
        guest.close();
        bastion.close();
        bastion = OpenSsh.Sshd.bastion(dir.resolve("bastion"), List.of(pub(plain)));
        guest = OpenSsh.Sshd.guest(dir.resolve("guest"), List.of(pub(plain)), Map.of("lspci", "cat <<'EOF'\n"
                + GuestSshServer.lspci(List.of(GuestSshServer.RTX_3090)) + "EOF", "sudo", "shift\nexec \"$@\""));
        Files.writeString(knownHosts, bastion.knownHostsLine() + "\n" + guest.knownHostsLine() + "\n");
        writeConfig("    User " + user + "\n    IdentityFile ~/.ssh/id_plain", "    User " + user + "\n    IdentityFile ~/.ssh/id_plain");
        Path dead = dir.resolve("no-agent.sock");
        Run.Result r = verify(dead, "docker-host", "-o", "json");
        assertEquals(0, r.exit(), r.all());
        assertEquals("verify: note: ssh-agent at " + dead + " does not answer (" + r.err().replaceAll("(?s).*does not answer \\((.*?)\\).*", "$1")
                + ") — using key files only\n", r.err());
        assertEquals("key file " + ssh.resolve("id_plain"), json(r.out()).get("guest").get("auth").asText());
    }

    @Test
    void aPassphraseKeyWithoutAgentOrTerminalIsExit22NamingSshAdd() throws Exception {
        writeConfig();
        Run.Result r = verify(null, "docker-host");
        assertEquals(22, r.exit(), r.all());
        assertEquals("verify: " + labKey + " is protected by a passphrase and there is no terminal to ask for it — add it to your agent (ssh-add "
                + labKey + ") and run again\n", r.err());
        assertEquals(List.of(), guest.commands());
    }

    /** A config reaching the guest directly (no bastion) with the given extra lines in its block. */
    void writeDirectConfig(String extra) throws Exception {
        Files.writeString(ssh.resolve("config"), """
                Host docker-host
                    HostName 127.0.0.1
                    Port %d
                    User %s
                    UserKnownHostsFile ~/.ssh/known_hosts.lab
                %s
                """.formatted(guest.port(), user, extra));
    }

    @Test
    void aPassphraseKeyIsAskedOnTheTerminalWithoutEcho() throws Exception {
        writeDirectConfig("    IdentityFile ~/.ssh/id_lab");
        // A real terminal: util-linux script(1) runs verify on a pty; we type the passphrase once the prompt shows.
        List<String> javaCommand = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"), "-Duser.home=" + home,
                "verify", "docker-host", "--kubeconfig", sim.kubeconfig().toString()));
        String commandLine = String.join(" ", javaCommand.stream().map(a -> "'" + a + "'").toList());
        ProcessBuilder pb = new ProcessBuilder("script", "-qec", commandLine, "/dev/null").redirectErrorStream(true);
        pb.environment().remove("SSH_AUTH_SOCK");
        pb.environment().put("HOME", home.toString());
        pb.environment().put("TERM", "dumb");
        Process p = pb.start();
        StringBuffer out = new StringBuffer();
        Thread reader = new Thread(() -> {
            try {
                byte[] buf = new byte[4096];
                for (int n; (n = p.getInputStream().read(buf)) > 0; ) out.append(new String(buf, 0, n, StandardCharsets.UTF_8));
            } catch (IOException ignored) {
                // the process ended
            }
        });
        reader.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!out.toString().contains("Enter passphrase for key '" + labKey + "': ") && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(out.toString().contains("Enter passphrase for key '" + labKey + "': "), out.toString());
        p.getOutputStream().write((PASSPHRASE + "\n").getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().flush();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), out.toString());
        reader.join(10_000);
        assertEquals(0, p.exitValue(), out.toString());
        assertTrue(out.toString().contains("; key file " + labKey + "\r\n"), out.toString());
        assertTrue(out.toString().contains("RESULT: PASS"), out.toString());
        assertFalse(out.toString().contains(PASSPHRASE), "the passphrase is not echoed: " + out);
    }

    @Test
    void anAgentKeyTheGuestRefusesIsFollowedByTheNextIdentity() throws Exception {
        Path stranger = OpenSsh.keygen(ssh.resolve("id_stranger"), "ed25519", "", "stranger@laptop");
        try (OpenSsh.Agent second = OpenSsh.Agent.start(dir.resolve("agent2"))) {
            second.add(stranger, "");
            second.add(labKey, PASSPHRASE);
            assertEquals(2, second.list().size());
            writeDirectConfig("");
            Run.Result r = verify(second.socket(), "docker-host", "-o", "json");
            assertEquals(0, r.exit(), r.all());
            assertEquals("agent key ED25519 " + fingerprint(pub(labKey)) + " (lab@laptop)", json(r.out()).get("guest").get("auth").asText());
            // The agent lists the stranger first (ssh-add order), so the login that succeeded was the second identity offered.
            assertTrue(second.list().get(0).startsWith(Files.readString(pub(stranger)).split(" ")[0] + " " + Files.readString(pub(stranger)).split(" ")[1]));
            assertTrue(guest.log().contains("Accepted publickey for " + user + " from 127.0.0.1"), guest.log());
            assertTrue(guest.log().contains("ED25519 " + fingerprint(pub(labKey))), guest.log());
        }
    }

    @Test
    void aKnownHostsThatHoldsOnlyTheRsaOrEcdsaKeyIsEnough() throws Exception {
        guest.close();
        Map<String, String> tools = Map.of("lspci", "cat <<'EOF'\n" + GuestSshServer.lspci(List.of(GuestSshServer.RTX_3090)) + "EOF",
                "sudo", "shift\nexec \"$@\"");
        guest = OpenSsh.Sshd.guest(dir.resolve("guest-multi"), List.of(pub(labKey)), tools, List.of("ed25519", "ecdsa", "rsa"));
        writeDirectConfig("");
        for (String type : List.of("rsa", "ecdsa")) {
            Files.writeString(knownHosts, guest.knownHostsLine(type) + "\n"); // the server prefers to offer ed25519
            Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
            assertEquals(0, r.exit(), type + ": " + r.all());
            assertEquals((type.equals("rsa") ? "RSA " : "ECDSA ") + fingerprint(guest.hostPublicKey(type)),
                    json(r.out()).get("guest").get("hostKey").asText());
        }
    }

    @Test
    void anAgentThatRefusesToSignIsReportedAsSuch() throws Exception {
        try (OpenSsh.Agent confirming = OpenSsh.Agent.start(dir.resolve("agent-confirm"))) {
            confirming.add(labKey, PASSPHRASE, List.of("-c")); // ssh-add -c: every use needs a confirmation nobody can give here
            writeDirectConfig("    IdentityFile ~/.ssh/id_lab");
            Run.Result r = verify(confirming.socket(), "docker-host");
            assertEquals(22, r.exit(), r.all());
            // As ssh: the key file is the agent's key, so it is not tried again from the file.
            assertEquals("verify: ssh-agent refused to sign with agent key ED25519 " + fingerprint(pub(labKey)) + " (lab@laptop)"
                    + " — a key added with ssh-add -c needs its confirmation:"
                    + " confirm it in the agent's prompt, or add the key again without -c\n", r.err());
        }
    }

    @Test
    void hostKeyAliasNamesTheKnownHostsEntry() throws Exception {
        String[] hostPub = Files.readString(guest.hostPublicKey()).split("\\s+");
        Files.writeString(knownHosts, "docker-host.lab " + hostPub[0] + " " + hostPub[1] + "\n");
        OpenSsh.hashKnownHosts(knownHosts);
        writeDirectConfig("    HostKeyAlias docker-host.lab");
        Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, r.exit(), r.all());
        assertEquals(knownHosts + ":1", json(r.out()).get("guest").get("knownHostsEntry").asText());
        writeDirectConfig("");
        assertEquals(23, verify(agent.socket(), "docker-host").exit(), "without the alias the [127.0.0.1]:port name is unknown");
    }

    @Test
    void identitiesOnlyRestrictsTheAgentToTheNamedKeys() throws Exception {
        Path other = OpenSsh.keygen(ssh.resolve("id_other"), "ed25519", "", "other@laptop"); // not authorized anywhere
        String config = """
                Host docker-host
                    HostName 127.0.0.1
                    Port %d
                    User %s
                    IdentitiesOnly yes
                    IdentityFile ~/.ssh/id_other
                    UserKnownHostsFile ~/.ssh/known_hosts.lab
                """.formatted(guest.port(), user);
        Files.writeString(ssh.resolve("config"), config);
        Run.Result r = verify(agent.socket(), "docker-host");
        assertEquals(22, r.exit(), r.all());
        assertEquals("verify: guest " + user + "@127.0.0.1:" + guest.port() + " refused our key (key file " + other
                + ") — add the public key to ~" + user + "/.ssh/authorized_keys there, or check the user (User / --user) and IdentityFile\n", r.err());

        // Without IdentitiesOnly the agent's other key is offered too, before the remaining key files.
        Files.writeString(ssh.resolve("config"), config.replace("IdentitiesOnly yes", "IdentitiesOnly no"));
        Run.Result open = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, open.exit(), open.all());
        assertEquals("agent key ED25519 " + fingerprint(pub(labKey)) + " (lab@laptop)", json(open.out()).get("guest").get("auth").asText());

        // IdentityFile naming the agent's key (a passphrase key, no terminal) with IdentitiesOnly: the agent signs.
        Files.writeString(ssh.resolve("config"), config.replace("id_other", "id_lab"));
        Run.Result named = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, named.exit(), named.all());
        assertEquals("agent key ED25519 " + fingerprint(pub(labKey)) + " (lab@laptop)", json(named.out()).get("guest").get("auth").asText());
    }

    @Test
    void anRsaAgentKeySignsWithSha2() throws Exception {
        Path rsa = OpenSsh.keygen(ssh.resolve("id_rsa_lab"), "rsa", PASSPHRASE, "rsa@laptop");
        agent.add(rsa, PASSPHRASE);
        Files.writeString(dir.resolve("guest/authorized_keys"), Files.readString(pub(rsa))); // the guest takes only the RSA key
        writeConfig("    User " + user + "\n    IdentitiesOnly yes\n    IdentityFile ~/.ssh/id_rsa_lab", "    User " + user);
        Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, r.exit(), r.all()); // OpenSSH 8.8+ refuses ssh-rsa (SHA-1) signatures: this was rsa-sha2-512
        assertEquals("agent key RSA " + fingerprint(pub(rsa)) + " (rsa@laptop)", json(r.out()).get("guest").get("auth").asText());
    }

    @Test
    void anUnreachableJumpHostIsExit21NamingTheHop() throws Exception {
        bastion.close();
        writeConfig();
        Run.Result r = verify(agent.socket(), "docker-host");
        assertEquals(21, r.exit(), r.all());
        assertEquals("verify: cannot connect to jump host bastion, 127.0.0.1 port " + bastion.port() + " (connection refused)"
                + " — is the jump host up and sshd running, and is the address right? (from ProxyJump bastion (ssh_config Host bastion ("
                + ssh.resolve("config.d/bastion.conf") + ":1)))\n", r.err());
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void aGuestTheJumpHostCannotReachIsExit21NamingBoth() throws Exception {
        guest.close();
        writeConfig();
        Run.Result r = verify(agent.socket(), "docker-host");
        assertEquals(21, r.exit(), r.all());
        assertTrue(r.err().startsWith("verify: jump host bastion (" + user + "@127.0.0.1:" + bastion.port() + ") cannot reach 127.0.0.1 port "
                + guest.port() + " ("), r.err());
        assertTrue(r.err().endsWith(") — is the guest up, and is its address right as seen from the jump host? (ssh_config Host docker-host ("
                + ssh.resolve("config") + ":2))\n"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
    }

    @Test
    void aKeyFileThatIsNotAKeyIsNamedAsUnusable() throws Exception {
        Files.writeString(ssh.resolve("id_broken"), "this is not a private key\n");
        writeDirectConfig("    IdentityFile ~/.ssh/id_broken");
        Run.Result r = verify(null, "docker-host");
        assertEquals(22, r.exit(), r.all());
        assertTrue(r.err().startsWith("verify: no usable SSH identity to log in to guest " + user + "@127.0.0.1:" + guest.port() + ": "
                + ssh.resolve("id_broken") + " (unusable: "), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
    }

    @Test
    void twoJumpHostsAreDialledInOrder() throws Exception {
        try (OpenSsh.Sshd second = OpenSsh.Sshd.bastion(dir.resolve("bastion2"), List.of(pub(labKey)))) {
            Files.writeString(knownHosts, second.knownHostsLine() + "\n", java.nio.file.StandardOpenOption.APPEND);
            writeConfig("    User " + user + "\n", "    User " + user + "\nHost bastion2\n    HostName 127.0.0.1\n    Port " + second.port()
                    + "\n    User " + user + "\n    IdentityFile ~/.ssh/id_lab\n    UserKnownHostsFile ~/.ssh/known_hosts.lab");
            Files.writeString(ssh.resolve("config"), Files.readString(ssh.resolve("config")).replace("ProxyJump bastion", "ProxyJump bastion,bastion2"));
            Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
            assertEquals(0, r.exit(), r.all());
            JsonNode via = json(r.out()).get("guest").get("via");
            assertEquals(user + "@127.0.0.1:" + bastion.port() + "," + user + "@127.0.0.1:" + second.port(), via.get(0).asText() + "," + via.get(1).asText());
            assertTrue(bastion.log().contains("direct-tcpip"), bastion.log());
            assertTrue(second.log().contains("direct-tcpip"), second.log());
        }
    }

    @Test
    void aProxyJumpLoopIsExit2() throws Exception {
        writeConfig("    User " + user, "    User " + user + "\n    ProxyJump docker-host");
        Run.Result r = verify(agent.socket(), "docker-host");
        assertEquals(2, r.exit(), r.all());
        assertEquals("verify: ProxyJump loop: docker-host (127.0.0.1) -> bastion (127.0.0.1) -> docker-host (127.0.0.1) — fix ProxyJump at "
                + ssh.resolve("config") + ":5, " + ssh.resolve("config.d/bastion.conf") + ":5 so the jump hosts do not lead back\n", r.err());
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void aMissingIncludeIsAWarningAndTheRestIsUsed() throws Exception {
        writeConfig();
        Files.writeString(ssh.resolve("config"), "Include lab-hosts\n" + Files.readString(ssh.resolve("config")));
        Run.Result r = verify(agent.socket(), "docker-host");
        assertEquals(0, r.exit(), r.all());
        assertEquals("verify: warning: ssh_config " + ssh.resolve("config") + ":1: Include lab-hosts: no such file (" + ssh.resolve("lab-hosts")
                + ") — ignored, as ssh does; fix the path\n", r.err());
    }

    @Test
    void anUnparsableKnownHostsLineIsAWarningWithFileAndLineAndTheRestIsUsed() throws Exception {
        writeConfig();
        Files.writeString(knownHosts, "this line is not a host key\n" + Files.readString(knownHosts));
        Run.Result r = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, r.exit(), r.all());
        String warning = "verify: warning: known_hosts " + knownHosts + ":1: cannot parse the line (the key is not valid base64 key data)"
                + " — skipped; fix or delete it (the other lines are still used)\n";
        assertEquals(warning, r.err(), "said once, although both hops read the file");
        assertEquals(knownHosts + ":3", json(r.out()).get("guest").get("knownHostsEntry").asText());
    }

    @Test
    void acceptNewWritesAHashedEntryToAHashedFile() throws Exception {
        writeConfig();
        Files.writeString(knownHosts, bastion.knownHostsLine() + "\n");
        OpenSsh.hashKnownHosts(knownHosts);
        Run.Result refused = verify(agent.socket(), "docker-host");
        assertEquals(23, refused.exit(), refused.all());
        assertTrue(refused.err().startsWith("verify: host key of [127.0.0.1]:" + guest.port() + " is not in " + knownHosts + " (offered ED25519 key "
                + fingerprint(guest.hostPublicKey()) + ")"), refused.err());

        Run.Result r = verify(agent.socket(), "docker-host", "--accept-new");
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().contains("(new: recorded in " + knownHosts + ")"), r.out());
        List<String> lines = Files.readAllLines(knownHosts);
        assertEquals(2, lines.size());
        assertTrue(lines.get(1).startsWith("|1|"), "a hashed file stays hashed: " + lines.get(1));
        assertFalse(lines.get(1).contains("127.0.0.1"), lines.get(1));
        // OpenSSH's own lookup finds the entry we wrote.
        assertTrue(OpenSsh.findHost(knownHosts, "[127.0.0.1]:" + guest.port()).contains(lines.get(1)), lines.get(1));
    }

    @Test
    void aRevokedHostKeyIsReportedAsRevoked() throws Exception {
        writeConfig();
        String[] hostPub = Files.readString(guest.hostPublicKey()).split("\\s+");
        Files.writeString(knownHosts, "@revoked * " + hostPub[0] + " " + hostPub[1] + "\n" + Files.readString(knownHosts));
        Run.Result r = verify(agent.socket(), "docker-host", "--accept-new");
        assertEquals(23, r.exit(), r.all());
        assertEquals("verify: host key of [127.0.0.1]:" + guest.port() + " (ED25519 key " + fingerprint(guest.hostPublicKey()) + ") is marked @revoked in "
                + knownHosts + ":1 — refusing to connect; ask whoever runs the guest for its current host key\n", r.err());
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void aChangedHostKeyIsRefusedWhateverStrictHostKeyCheckingSays() throws Exception {
        Path otherHostKey = OpenSsh.keygen(dir.resolve("other_host_key"), "ed25519", "", "x");
        String[] other = Files.readString(pub(otherHostKey)).split("\\s+");
        Files.writeString(knownHosts, bastion.knownHostsLine() + "\n[127.0.0.1]:" + guest.port() + " " + other[0] + " " + other[1] + "\n");
        OpenSsh.hashKnownHosts(knownHosts);
        String before = Files.readString(knownHosts);
        writeConfig("    User " + user + "\n    StrictHostKeyChecking no", "    User " + user);
        Run.Result r = verify(agent.socket(), "docker-host", "--accept-new");
        assertEquals(23, r.exit(), r.all());
        assertTrue(r.err().contains("verify: HOST KEY CHANGED for [127.0.0.1]:" + guest.port() + ": " + knownHosts + " line 2 has a different key"), r.err());
        assertTrue(r.err().contains("ssh-keygen -R '[127.0.0.1]:" + guest.port() + "' -f " + knownHosts), r.err());
        assertEquals(before, Files.readString(knownHosts), "known_hosts untouched");
    }

    @Test
    void proxyCommandSshDashWIsAJumpAndAnyOtherIsAWarning() throws Exception {
        writeConfig();
        String config = Files.readString(ssh.resolve("config"));
        Files.writeString(ssh.resolve("config"), config.replace("ProxyJump bastion", "ProxyCommand ssh -W %h:%p bastion"));
        Run.Result jump = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, jump.exit(), jump.all());
        assertEquals(1, json(jump.out()).get("guest").get("via").size());

        Files.writeString(ssh.resolve("config"), config.replace("ProxyJump bastion", "ProxyCommand nc -X 5 -x proxy:1080 %h %p"));
        Run.Result direct = verify(agent.socket(), "docker-host", "-o", "json");
        assertEquals(0, direct.exit(), direct.all());
        assertEquals("verify: warning: ssh_config " + ssh.resolve("config") + ":5: ProxyCommand is not supported — connecting directly to 127.0.0.1 port "
                + guest.port() + "; use ProxyJump for a jump host\n", direct.err());
        assertEquals(0, json(direct.out()).get("guest").get("via").size());
    }
}
