//SOURCES ../scripts/lib/sim/NodeSshServer.java ../scripts/lib/checks/NodeChecks.java ../scripts/lib/checks/GuestDocker.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sandbox's stand-ins over real SSH (sshj client, MINA server on loopback): the node answers
 * the inspection script as a node in the simulated state, the guest answers the `verify --docker`
 * commands. Same checks as NodeChecksTest/GuestDockerTest, through a session.
 */
class StandInSshTest {
    @TempDir
    static Path tmp;

    static final List<Harvester.PciDevice> CLAIMED = List.of(NodeChecksTest.GPU, NodeChecksTest.AUDIO, NodeChecksTest.NVME);

    /** Runs body with a RemoteShell logged in to a server on 127.0.0.1 as user. */
    static void session(String user, int port, String knownHostsLine, Path key, Consumer<RemoteShell> body) throws Exception {
        Path dir = key.getParent();
        Path knownHosts = Files.writeString(dir.resolve("known_hosts"), knownHostsLine + "\n");
        GuestSsh.Target t = new GuestSsh.Target("127.0.0.1", port, user, List.of(key), knownHosts, false, Duration.ofSeconds(10));
        try (GuestSsh s = GuestSsh.connect(t)) {
            body.accept(command -> {
                GuestSsh.Result r = s.run(command, Duration.ofSeconds(20));
                return new RemoteShell.Result(r.exit(), r.out(), r.err());
            });
        }
    }

    static List<Diagnosis.Finding> node(Consumer<NodeSshServer.Options> state) throws Exception {
        Path dir = Files.createTempDirectory(tmp, "node-ssh");
        KeyPair user = GuestSshServer.newUserKey();
        Path key = GuestSshServer.writeIdentity(dir.resolve("id_ed25519"), user, "test");
        NodeSshServer.Options o = new NodeSshServer.Options();
        o.authorizedKey = user.getPublic();
        o.devices = () -> CLAIMED;
        state.accept(o);
        NodeChecks.Subject s = NodeChecksTest.HEALTHY;
        List<Diagnosis.Finding>[] out = new List[1];
        try (NodeSshServer node = NodeSshServer.start(o)) {
            session(NodeSshServer.USER, node.port(), node.knownHostsLine(), key,
                    shell -> out[0] = NodeChecks.inspect(shell, "rancher@altra", s, NodeChecks.request(s)));
            assertTrue(node.commands().get(0).startsWith("sh -c '#!/bin/sh"), node.commands().toString());
        }
        return out[0];
    }

    static Diagnosis.Status status(List<Diagnosis.Finding> all, String check) {
        return Diagnosis.worst(all.stream().filter(f -> f.check().equals(check)).toList());
    }

    @Test
    void healthyNodeOverSsh() throws Exception {
        List<Diagnosis.Finding> all = node(o -> { });
        assertEquals(Diagnosis.Status.PASS, Diagnosis.worst(all), NodeChecksTest.show(all));
        assertEquals(6, all.size(), NodeChecksTest.show(all));
    }

    @Test
    void nodeFaultsOverSsh() throws Exception {
        List<Diagnosis.Finding> console = node(o -> o.bootVga = Set.of("000c:01:00.0"));
        assertEquals(Diagnosis.Status.FAIL, status(console, NodeChecks.CONSOLE), NodeChecksTest.show(console));
        List<Diagnosis.Finding> off = node(o -> o.iommu = false);
        assertEquals(Diagnosis.Status.FAIL, status(off, NodeChecks.IOMMU), NodeChecksTest.show(off));
        assertEquals(Diagnosis.Status.FAIL, status(off, NodeChecks.GROUP), NodeChecksTest.show(off));
        List<Diagnosis.Finding> sudo = node(o -> o.sudoPassword = true);
        assertEquals(Diagnosis.Status.WARN, status(sudo, NodeChecks.SUDO), NodeChecksTest.show(sudo));
    }

    static List<Diagnosis.Finding> guest(Consumer<GuestSshServer.Options> state) throws Exception {
        Path dir = Files.createTempDirectory(tmp, "guest-ssh");
        KeyPair user = GuestSshServer.newUserKey();
        Path key = GuestSshServer.writeIdentity(dir.resolve("id_ed25519"), user, "test");
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(user.getPublic());
        state.accept(o);
        List<Diagnosis.Finding>[] out = new List[1];
        try (GuestSshServer g = GuestSshServer.start(o)) {
            session(GuestSshServer.DEFAULT_USER, g.port(), g.knownHostsLine(), key,
                    shell -> out[0] = GuestDocker.check(shell, GuestDockerTest.RTX_3090, GuestDockerTest.IMAGE));
        }
        return out[0];
    }

    @Test
    void guestDockerOverSsh() throws Exception {
        List<Diagnosis.Finding> ok = guest(o -> { });
        assertEquals(Diagnosis.Status.PASS, Diagnosis.worst(ok), NodeChecksTest.show(ok));
        assertEquals(4, ok.size(), NodeChecksTest.show(ok));

        List<Diagnosis.Finding> noToolkit = guest(o -> o.nvidiaRuntime = false);
        assertEquals(Diagnosis.Status.FAIL, status(noToolkit, GuestDocker.RUNTIME), NodeChecksTest.show(noToolkit));
        assertEquals(Diagnosis.Status.FAIL, status(noToolkit, GuestDocker.CONTAINER), NodeChecksTest.show(noToolkit));
        assertEquals(Diagnosis.Status.PASS, status(noToolkit, GuestDocker.DRIVER), NodeChecksTest.show(noToolkit));

        List<Diagnosis.Finding> noDocker = guest(o -> o.docker = false);
        assertEquals(Diagnosis.Status.FAIL, status(noDocker, GuestDocker.DOCKER), NodeChecksTest.show(noDocker));

        List<Diagnosis.Finding> noDriver = guest(o -> o.nvidiaDriver = false);
        assertEquals(Diagnosis.Status.FAIL, status(noDriver, GuestDocker.DRIVER), NodeChecksTest.show(noDriver));
        assertEquals(Diagnosis.Status.FAIL, status(noDriver, GuestDocker.CONTAINER), NodeChecksTest.show(noDriver));
    }
}
