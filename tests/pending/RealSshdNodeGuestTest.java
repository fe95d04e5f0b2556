//SOURCES ../scripts/lib/sim/NodeSshServer.java ../scripts/lib/checks/NodeChecks.java ../scripts/lib/checks/GuestDocker.java
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.PublicKey;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.apache.sshd.client.SshClient;
import org.apache.sshd.client.channel.ChannelExec;
import org.apache.sshd.client.channel.ClientChannelEvent;
import org.apache.sshd.client.session.ClientSession;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.config.keys.PublicKeyEntry;
import org.apache.sshd.common.config.keys.PublicKeyEntryResolver;
import org.junit.jupiter.api.Test;

/**
 * PENDING (move to tests/ when tests/support/OpenSsh.java from the ssh branch is merged):
 * the node and guest stand-ins of tests/fixtures served by Debian's real sshd — its ForceCommand
 * puts the fixture's bin/ (fake dmesg, sudo, nvidia-smi, docker) first on PATH — and the checks
 * run through a real SSH exec. When diagnose/verify are wired, replace {@link #session} with the
 * scripts' own SshSession (scripts/lib/ssh) and run the commands end to end.
 */
class RealSshdNodeGuestTest {
    static void session(OpenSsh.Sshd sshd, KeyPair key, Consumer<RemoteShell> body) throws Exception {
        String[] hostPub = Files.readString(sshd.hostPublicKey()).strip().split("\\s+");
        PublicKey hostKey = PublicKeyEntry.parsePublicKeyEntry(hostPub[0] + " " + hostPub[1]).resolvePublicKey(null, Map.of(), PublicKeyEntryResolver.FAILING);
        SshClient client = SshClient.setUpDefaultClient();
        client.setServerKeyVerifier((session, remote, offered) -> KeyUtils.compareKeys(hostKey, offered));
        client.start();
        try (ClientSession s = client.connect(OpenSsh.user(), sshd.host(), sshd.port()).verify(10, TimeUnit.SECONDS).getSession()) {
            s.addPublicKeyIdentity(key);
            s.auth().verify(10, TimeUnit.SECONDS);
            body.accept(command -> {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                ByteArrayOutputStream err = new ByteArrayOutputStream();
                try (ChannelExec ch = s.createExecChannel(command)) {
                    ch.setOut(out);
                    ch.setErr(err);
                    ch.open().verify(10, TimeUnit.SECONDS);
                    ch.waitFor(EnumSet.of(ClientChannelEvent.CLOSED), TimeUnit.SECONDS.toMillis(30));
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

    static OpenSsh.Sshd serve(FakeHost host, KeyPair user) throws IOException {
        Path pub = GuestSshServer.writeIdentity(host.path("id_ed25519"), user, "test").resolveSibling("id_ed25519.pub");
        return OpenSsh.Sshd.guest(host.dir(), List.of(pub), Map.of());
    }

    @Test
    void nodeChecksThroughRealSshd() throws Exception {
        KeyPair user = GuestSshServer.newUserKey();
        for (boolean bootConsole : List.of(false, true)) {
            try (FakeHost node = FakeHost.copy("node-altra")) {
                if (bootConsole) {
                    node.write(NodeChecksTest.GPU_DIR + "/boot_vga", "1\n").write("dmesg_restrict", "1\n")
                            .append("dmesg.log", "[  313.001234] vfio-pci 000c:01:00.0: BAR 1: can't reserve [mem 0x340000000000-0x3407ffffffff 64bit pref]\n");
                }
                try (OpenSsh.Sshd sshd = serve(node, user)) {
                    List<Diagnosis.Finding>[] found = new List[1];
                    NodeChecks.Subject s = NodeChecksTest.HEALTHY;
                    session(sshd, user, shell -> found[0] = NodeChecks.inspect(shell, "rancher@altra", s, NodeChecks.request(s, node.path("root").toString())));
                    String shown = NodeChecksTest.show(found[0]);
                    assertEquals(bootConsole ? Diagnosis.Status.FAIL : Diagnosis.Status.PASS, Diagnosis.worst(found[0]), shown);
                    if (bootConsole) assertTrue(shown.contains("FAIL node-boot-console altra-000c01000: dmesg (23 h ago): vfio-pci 000c:01:00.0: BAR 1"), shown);
                    assertTrue(sshd.commands().get(0).startsWith("sh -c '#!/bin/sh"), sshd.commands().toString());
                }
            }
        }
    }

    @Test
    void guestDockerChecksThroughRealSshd() throws Exception {
        KeyPair user = GuestSshServer.newUserKey();
        for (boolean toolkit : List.of(true, false)) {
            try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
                if (!toolkit) guest.write("state/runtimes.json", "{\"runc\":{\"path\":\"runc\"}}\n");
                try (OpenSsh.Sshd sshd = serve(guest, user)) {
                    List<Diagnosis.Finding>[] found = new List[1];
                    session(sshd, user, shell -> found[0] = GuestDocker.check(shell, GuestDockerTest.RTX_3090, GuestDockerTest.IMAGE));
                    String shown = NodeChecksTest.show(found[0]);
                    assertEquals(toolkit ? Diagnosis.Status.PASS : Diagnosis.Status.FAIL, Diagnosis.worst(found[0]), shown);
                    assertEquals(List.of(GuestDocker.NVIDIA_SMI, GuestDocker.DOCKER_RUNTIMES,
                            "docker run --rm --gpus all " + GuestDockerTest.IMAGE + " nvidia-smi -L"), sshd.commands());
                }
            }
        }
    }
}
