//SOURCES ../scripts/lib/sim/NodeSshServer.java ../scripts/lib/checks/NodeChecks.java ../scripts/lib/checks/GuestDocker.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.PublicKey;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.apache.sshd.client.SshClient;
import org.apache.sshd.client.channel.ChannelExec;
import org.apache.sshd.client.channel.ClientChannelEvent;
import org.apache.sshd.client.session.ClientSession;
import org.apache.sshd.common.config.keys.KeyUtils;

import org.junit.jupiter.api.Test;

/**
 * The sandbox's stand-ins over SSH (MINA server and client on loopback): the node answers
 * the inspection script as a node in the simulated state, the guest answers the `verify --docker`
 * commands. Same checks as NodeChecksTest/GuestDockerTest, through a session.
 */
class StandInSshTest {
    static final List<Harvester.PciDevice> CLAIMED = List.of(NodeChecksTest.GPU, NodeChecksTest.AUDIO, NodeChecksTest.NVME);

    /**
     * Runs body with a RemoteShell logged in to a stand-in on 127.0.0.1 as user, through MINA's SSH
     * client (independent of the scripts' own SSH layer), the server's host key checked.
     */
    static void session(String user, int port, PublicKey hostKey, KeyPair key, Consumer<RemoteShell> body) throws Exception {
        SshClient client = SshClient.setUpDefaultClient();
        client.setServerKeyVerifier((session, remote, offered) -> KeyUtils.compareKeys(hostKey, offered));
        client.start();
        try (ClientSession s = client.connect(user, "127.0.0.1", port).verify(10, TimeUnit.SECONDS).getSession()) {
            s.addPublicKeyIdentity(key);
            s.auth().verify(10, TimeUnit.SECONDS);
            body.accept(command -> {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                ByteArrayOutputStream err = new ByteArrayOutputStream();
                try (ChannelExec ch = s.createExecChannel(command)) {
                    ch.setOut(out);
                    ch.setErr(err);
                    ch.open().verify(10, TimeUnit.SECONDS);
                    ch.waitFor(EnumSet.of(ClientChannelEvent.CLOSED), TimeUnit.SECONDS.toMillis(20));
                    Integer exit = ch.getExitStatus();
                    return new RemoteShell.Result(exit == null ? -1 : exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } finally {
            client.stop();
        }
    }

    static List<Diagnosis.Finding> node(Consumer<NodeSshServer.Options> state) throws Exception {
        KeyPair user = GuestSshServer.newUserKey();
        NodeSshServer.Options o = new NodeSshServer.Options();
        o.authorizedKey = user.getPublic();
        o.devices = () -> CLAIMED;
        state.accept(o);
        NodeChecks.Subject s = NodeChecksTest.HEALTHY;
        List<Diagnosis.Finding>[] out = new List[1];
        try (NodeSshServer node = NodeSshServer.start(o)) {
            session(NodeSshServer.USER, node.port(), node.hostPublicKey(), user,
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
        KeyPair user = GuestSshServer.newUserKey();
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(user.getPublic());
        state.accept(o);
        List<Diagnosis.Finding>[] out = new List[1];
        try (GuestSshServer g = GuestSshServer.start(o)) {
            session(GuestSshServer.DEFAULT_USER, g.port(), g.hostPublicKey(), user,
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
