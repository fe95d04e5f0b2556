import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ssh_config resolution as OpenSSH does it (ssh -G is the reference), on files in a temp home: the real ~/.ssh is never read. */
class SshConfigTest {
    @TempDir Path home; // removed by JUnit after each test
    Path ssh;
    Path config;

    @BeforeEach
    void setUp() throws Exception {
        ssh = Files.createDirectories(home.resolve(".ssh"));
        config = ssh.resolve("config");
    }

    SshConfig config(String text) throws Exception {
        Files.writeString(config, text);
        return new SshConfig(config, null, home, "alice");
    }

    SshTarget target(SshConfig c, String name) {
        return SshTarget.resolve(c, name, null, "--host", null, overrides());
    }

    static SshTarget.Overrides overrides() {
        return new SshTarget.Overrides(null, null, List.of(), null, false, null, Map.of());
    }

    @Test
    void firstObtainedValueWinsAndHostStarGivesDefaults() throws Exception {
        SshConfig c = config("""
                Host docker-host
                    HostName 192.0.2.50
                    User kalmyk
                Host docker-*
                    User nobody
                    Port 2222
                Host *
                    Port 22
                    ConnectTimeout 7
                    IdentityFile ~/.ssh/id_lab
                """);
        SshTarget t = target(c, "docker-host");
        assertEquals("192.0.2.50", t.host());
        assertEquals("kalmyk", t.user());
        assertEquals(2222, t.port());
        assertEquals(Duration.ofSeconds(7), t.connectTimeout());
        assertEquals(List.of(ssh.resolve("id_lab")), t.identityFiles());
        assertEquals("ssh_config Host docker-host (" + config + ":1)", t.source());
        // Host * alone does not make a name an alias; the user defaults to the local user.
        SshTarget other = SshTarget.resolve(c, "web", "192.0.2.9", "VMI IP", null, overrides());
        assertEquals("192.0.2.9", other.host());
        assertEquals("alice", other.user());
        assertEquals("VMI IP 192.0.2.9 (no ssh_config Host block for web)", other.source());
        // A default user (Harvester nodes: rancher) applies when neither flags nor config say.
        assertEquals("rancher", SshTarget.resolve(c, "node-1", "192.0.2.2", "node InternalIP", "rancher", overrides()).user());
    }

    @Test
    void patternsWithWildcardsAndNegation() throws Exception {
        SshConfig c = config("""
                Host *.lab !bad.lab
                    User lab
                Host gpu-?? 
                    User gpu
                """);
        assertEquals("lab", c.resolve("x.lab", Map.of()).user());
        assertNull(c.resolve("bad.lab", Map.of()).user());
        assertEquals("gpu", c.resolve("gpu-01", Map.of()).user());
        assertNull(c.resolve("gpu-001", Map.of()).user());
        assertEquals("lab", c.resolve("X.LAB", Map.of()).user(), "host patterns are case-insensitive");
    }

    @Test
    void includeIsRelativeToDotSshWithGlobsAndConditionalInsideABlock() throws Exception {
        Files.createDirectories(ssh.resolve("conf.d"));
        Files.writeString(ssh.resolve("conf.d/10-lab.conf"), "Host docker-host\n    User from-include\n");
        Files.writeString(ssh.resolve("conf.d/20-more.conf"), "Host docker-host\n    Port 2200\n");
        Files.writeString(ssh.resolve("only-for-web"), "User web-user\n");
        SshConfig c = config("""
                Include conf.d/*.conf
                Host web
                    Include only-for-web
                Host *
                    User fallback
                """);
        SshConfig.Settings s = c.resolve("docker-host", Map.of());
        assertEquals("from-include", s.user());
        assertEquals(2200, s.port());
        assertEquals(List.of(), s.warnings());
        assertEquals("web-user", c.resolve("web", Map.of()).user());
        assertEquals("fallback", c.resolve("db", Map.of()).user(), "an Include inside a block that does not apply is skipped");
    }

    @Test
    void aMissingIncludeIsAWarningAndAnEmptyGlobIsNot() throws Exception {
        SshConfig c = config("Include nope.conf\nInclude empty.d/*\nHost x\n    User u\n");
        SshConfig.Settings s = c.resolve("x", Map.of());
        assertEquals("u", s.user());
        assertEquals(List.of("ssh_config " + config + ":1: Include nope.conf: no such file (" + ssh.resolve("nope.conf")
                + ") — ignored, as ssh does; fix the path"), s.warnings());
    }

    @Test
    void anIncludeLoopIsAConfigError() throws Exception {
        SshConfig c = config("Include config\n");
        SshException e = assertThrows(SshException.class, () -> c.resolve("x", Map.of()));
        assertEquals(Cli.Exit.USAGE, e.exit);
        assertTrue(e.getMessage().contains("Include nested more than 16 deep"), e.getMessage());
    }

    @Test
    void matchHostOriginalhostUserAndAll() throws Exception {
        SshConfig c = config("""
                Host docker-host
                    HostName 192.0.2.123
                Match host 192.0.2.* user root
                    Port 2201
                Match originalhost docker-host !user root
                    Port 2202
                Match all
                    IdentitiesOnly yes
                """);
        SshConfig.Settings asRoot = c.resolve("docker-host", Map.of("user", "root"));
        assertEquals(2201, asRoot.port(), "Match host sees HostName; user sees the preset (command-line) user");
        SshConfig.Settings asAlice = c.resolve("docker-host", Map.of());
        assertEquals(2202, asAlice.port(), "originalhost is the name as typed; !user negates");
        assertEquals(true, asAlice.flag("identitiesonly"));
        assertEquals(List.of("Host docker-host (" + config + ":1)", "Match originalhost docker-host !user root (" + config + ":5)"),
                asAlice.specificBlocks());
    }

    @Test
    void unsupportedMatchCriteriaAndDirectivesWarn() throws Exception {
        SshConfig c = config("""
                Match exec "test -f /tmp/x"
                    User from-exec
                Host x
                    CertificateFile ~/.ssh/id_lab-cert.pub
                    User x
                """);
        SshConfig.Settings s = c.resolve("x", Map.of());
        assertEquals("x", s.user(), "an unsupported Match is skipped, never guessed");
        assertEquals(List.of("ssh_config " + config + ":1: Match exec is not supported — the block is skipped",
                "ssh_config " + config + ":4: certificates are not supported: authenticating with the plain keys"), s.warnings());
    }

    @Test
    void proxyJumpHopsAreResolvedThroughTheConfigInOrder() throws Exception {
        SshConfig c = config("""
                Host docker-host
                    HostName 192.0.2.5
                    ProxyJump admin@gw1:2022,bastion
                Host bastion
                    HostName 198.51.100.1
                    User ops
                    ProxyJump ignored-because-listed-after-gw1
                Host gw1
                    HostName 203.0.113.7
                    User nobody
                """);
        SshTarget t = target(c, "docker-host");
        List<SshTarget> route = t.route();
        assertEquals(List.of("admin@203.0.113.7:2022", "ops@198.51.100.1", "alice@192.0.2.5"), route.stream().map(SshTarget::display).toList());
        assertEquals("ProxyJump bastion (ssh_config Host bastion (" + config + ":4))", route.get(1).source());
    }

    @Test
    void aProxyJumpLoopIsAConfigErrorNamingTheLines() throws Exception {
        SshConfig c = config("""
                Host a
                    HostName 192.0.2.1
                    ProxyJump b
                Host b
                    HostName 192.0.2.2
                    ProxyJump a
                """);
        SshException e = assertThrows(SshException.class, () -> target(c, "a"));
        assertEquals(Cli.Exit.USAGE, e.exit);
        assertEquals("ProxyJump loop: a (192.0.2.1) -> b (192.0.2.2) -> a (192.0.2.1) — fix ProxyJump at " + config + ":3, " + config
                + ":6 so the jump hosts do not lead back", e.getMessage());
    }

    @Test
    void proxyJumpAndProxyCommandCompeteFirstWins() throws Exception {
        SshConfig c = config("""
                Host x
                    ProxyCommand none
                    ProxyJump gw
                Host y
                    ProxyJump gw
                Host *
                    ProxyCommand nc %h %p
                """);
        assertNull(c.resolve("x", Map.of()).get("proxyjump"), "ProxyCommand none came first");
        assertEquals("gw", c.resolve("y", Map.of()).get("proxyjump").first());
        assertNull(c.resolve("y", Map.of()).get("proxycommand"));
    }

    @Test
    void knownHostsAgentAndHostKeySettings() throws Exception {
        SshConfig c = config("""
                Host docker-host
                    HostName 192.0.2.5
                    Port 2222
                    UserKnownHostsFile ~/.ssh/known_hosts.lab %d/.ssh/other
                    StrictHostKeyChecking accept-new
                    HostKeyAlias docker-host.lab
                    HashKnownHosts yes
                    IdentityAgent ~/.ssh/agent.sock
                """);
        SshTarget t = target(c, "docker-host");
        assertEquals(List.of(ssh.resolve("known_hosts.lab"), ssh.resolve("other")), t.knownHostsFiles());
        assertTrue(t.acceptNew());
        assertEquals("docker-host.lab", t.hostKeyName());
        assertTrue(t.hashKnownHosts());
        assertEquals(ssh.resolve("agent.sock"), t.agentSocket());
        // Without HostKeyAlias the name is [host]:port off port 22, and SSH_AUTH_SOCK names the agent.
        SshConfig plain = config("Host *\n    Port 2222\n");
        SshTarget p = SshTarget.resolve(plain, "192.0.2.5", null, "--host", null,
                new SshTarget.Overrides(null, null, List.of(), null, false, null, Map.of("SSH_AUTH_SOCK", "/run/user/1000/agent")));
        assertEquals("[192.0.2.5]:2222", p.hostKeyName());
        assertEquals(Path.of("/run/user/1000/agent"), p.agentSocket());
        assertEquals(List.of(ssh.resolve("known_hosts"), ssh.resolve("known_hosts2")), p.knownHostsFiles());
        SshException bad = assertThrows(SshException.class, () -> target(config("StrictHostKeyChecking maybe\n"), "x"));
        assertTrue(bad.getMessage().contains("StrictHostKeyChecking \"maybe\""), bad.getMessage());
    }

    @Test
    void commandLineOverridesWin() throws Exception {
        SshConfig c = config("Host docker-host\n    HostName 192.0.2.5\n    User kalmyk\n    Port 2222\n    IdentityFile ~/.ssh/id_lab\n");
        SshTarget t = SshTarget.resolve(c, "docker-host", null, "--host", null, new SshTarget.Overrides("root", 22,
                List.of(Path.of("/keys/id_cli")), Path.of("/tmp/kh"), true, Duration.ofSeconds(3), Map.of()));
        assertEquals("root@192.0.2.5", t.display());
        assertEquals(List.of(Path.of("/keys/id_cli"), ssh.resolve("id_lab")), t.identityFiles(), "-i comes before IdentityFile, as with ssh");
        assertEquals(List.of(Path.of("/tmp/kh")), t.knownHostsFiles());
        assertEquals(List.of(), t.globalKnownHostsFiles(), "--known-hosts FILE: that file only");
        assertEquals(Duration.ofSeconds(3), t.connectTimeout());
    }

    @Test
    void quotingAndEqualsSigns() {
        assertEquals(List.of("IdentityFile", "/path with spaces/id"), SshConfig.split("IdentityFile \"/path with spaces/id\"", "f:1"));
        assertEquals(List.of("Port", "2222"), SshConfig.split("Port=2222", "f:1"));
        assertEquals(List.of("Host", "a", "b"), SshConfig.split("  Host a b # comment", "f:1"));
        assertEquals(List.of(), SshConfig.split("   # only a comment", "f:1"));
    }
}
