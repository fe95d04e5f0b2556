//SOURCES ../scripts/lib/sim/NodeSshServer.java ../scripts/lib/checks/NodeChecks.java ../scripts/lib/checks/GuestDocker.java
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The node and guest stand-ins of tests/fixtures served by Debian's real sshd — its ForceCommand
 * puts the fixture's bin/ (fake dmesg, sudo, nvidia-smi, docker) first on PATH — reached with the
 * scripts' own SSH client (scripts/lib/ssh/SshSession.java): the checks through a real SSH exec,
 * then `diagnose --node-ssh` and `verify --docker` end to end against the simulated cluster.
 */
class RealSshdNodeGuestTest {
    static final String GPU = "altra-000c01000";
    static final String GPU_RESOURCE = "nvidia.com/GA102_GEFORCE_RTX_3090";

    SimCluster sim;
    KeyPair user;

    @BeforeEach
    void start() {
        OpenSsh.require();
        sim = SimCluster.start();
        user = GuestSshServer.newUserKey();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    /** The stand-in's sshd; the user's key is written into the fixture copy (id_ed25519). */
    static OpenSsh.Sshd serve(FakeHost host, KeyPair user, Map<String, String> moreTools) throws Exception {
        Path pub = GuestSshServer.writeIdentity(host.path("id_ed25519"), user, "test").resolveSibling("id_ed25519.pub");
        return OpenSsh.Sshd.guest(host.dir(), List.of(pub), moreTools);
    }

    /**
     * The files a user points the scripts at: an ssh_config whose `Host NAME` block leads to the
     * stand-in (no agent: the developer's must not take part) and a known_hosts with its key.
     */
    static List<String> sshFiles(FakeHost host, OpenSsh.Sshd sshd, String name) throws Exception {
        Path config = host.path("ssh_config");
        Files.writeString(config, "IdentityAgent none\nHost " + name + "\n  HostName " + sshd.host() + "\n  Port " + sshd.port()
                + "\n  User " + OpenSsh.user() + "\n  IdentityFile " + host.path("id_ed25519") + "\n");
        Path knownHosts = host.path("known_hosts");
        Files.writeString(knownHosts, sshd.knownHostsLine() + "\n");
        return List.of("--ssh-config", config.toString(), "--known-hosts", knownHosts.toString());
    }

    /** Runs body with a RemoteShell over the scripts' SshSession to the stand-in. */
    static <T> T session(FakeHost host, OpenSsh.Sshd sshd, Function<RemoteShell, T> body) throws Exception {
        List<String> files = sshFiles(host, sshd, "stand-in");
        SshTarget target = SshTarget.resolve(SshConfig.standard(Path.of(files.get(1))), "stand-in", null, "test", null,
                new SshTarget.Overrides(null, null, List.of(), Path.of(files.get(3)), false, Duration.ofSeconds(5), Map.of()));
        try (SshSession s = SshSession.open(target, "stand-in", note -> {})) {
            return body.apply(command -> {
                SshSession.Result r = s.run(command, Duration.ofSeconds(30));
                return new RemoteShell.Result(r.exit(), r.out(), r.err());
            });
        }
    }

    // ---- the checks through a real SSH exec ----

    @Test
    void nodeChecksThroughRealSshd() throws Exception {
        for (boolean bootConsole : List.of(false, true)) {
            try (FakeHost node = FakeHost.copy("node-altra")) {
                if (bootConsole) {
                    node.write(NodeChecksTest.GPU_DIR + "/boot_vga", "1\n").write("dmesg_restrict", "1\n")
                            .append("dmesg.log", "[  313.001234] vfio-pci 000c:01:00.0: BAR 1: can't reserve [mem 0x340000000000-0x3407ffffffff 64bit pref]\n");
                }
                try (OpenSsh.Sshd sshd = serve(node, user, Map.of())) {
                    NodeChecks.Subject s = NodeChecksTest.HEALTHY;
                    List<Diagnosis.Finding> found = session(node, sshd,
                            shell -> NodeChecks.inspect(shell, "rancher@altra", s, NodeChecks.request(s, node.path("root").toString())));
                    String shown = NodeChecksTest.show(found);
                    assertEquals(bootConsole ? Diagnosis.Status.FAIL : Diagnosis.Status.PASS, Diagnosis.worst(found), shown);
                    if (bootConsole) assertTrue(shown.contains("FAIL node-boot-console altra-000c01000: dmesg (23 h ago): vfio-pci 000c:01:00.0: BAR 1"), shown);
                    assertTrue(sshd.commands().get(0).startsWith("sh -c '#!/bin/sh"), sshd.commands().toString());
                }
            }
        }
    }

    @Test
    void guestDockerChecksThroughRealSshd() throws Exception {
        for (boolean toolkit : List.of(true, false)) {
            try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
                if (!toolkit) guest.write("state/runtimes.json", "{\"runc\":{\"path\":\"runc\"}}\n");
                try (OpenSsh.Sshd sshd = serve(guest, user, Map.of())) {
                    List<Diagnosis.Finding> found = session(guest, sshd, shell -> GuestDocker.check(shell, GuestDockerTest.RTX_3090, GuestDockerTest.IMAGE));
                    String shown = NodeChecksTest.show(found);
                    assertEquals(toolkit ? Diagnosis.Status.PASS : Diagnosis.Status.FAIL, Diagnosis.worst(found), shown);
                    assertEquals(List.of(GuestDocker.NVIDIA_SMI, GuestDocker.DOCKER_RUNTIMES,
                            "docker run --rm --gpus all " + GuestDockerTest.IMAGE + " nvidia-smi -L"), sshd.commands());
                }
            }
        }
    }

    // ---- diagnose --node-ssh end to end ----

    /** diagnose --device GPU --node-ssh -o json, the node being the fixture behind a `Host altra` block, its tree as the node's root. */
    Run.Result diagnose(FakeHost node, OpenSsh.Sshd sshd) throws Exception {
        List<String> args = new ArrayList<>(List.of("--device", GPU, "--node-ssh", "--node-root", node.path("root").toString(), "-o", "json"));
        args.addAll(sshFiles(node, sshd, "altra"));
        return Run.against(sim, new diagnose(), args.toArray(new String[0]));
    }

    static List<JsonNode> nodeFindings(Run.Result r) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode f : Serialization.jsonMapper().readTree(r.out())) if (f.get("check").asText().startsWith("node-")) out.add(f);
        return out;
    }

    static JsonNode finding(List<JsonNode> found, String check) {
        return found.stream().filter(f -> f.get("check").asText().equals(check)).findFirst()
                .orElseThrow(() -> new AssertionError("no " + check + " in " + found));
    }

    @Test
    void diagnoseNodeSshPassesOnAHealthyNode() throws Exception {
        Seed.gpuReady(sim);
        try (FakeHost node = FakeHost.copy("node-altra"); OpenSsh.Sshd sshd = serve(node, user, Map.of())) {
            Run.Result r = diagnose(node, sshd);
            List<JsonNode> found = nodeFindings(r);
            for (String check : List.of(NodeChecks.IOMMU, NodeChecks.GROUP, NodeChecks.DRIVER, NodeChecks.CONSOLE, NodeChecks.DMESG)) {
                assertEquals("PASS", finding(found, check).get("status").asText(), r.all());
            }
            assertTrue(found.stream().allMatch(f -> f.get("status").asText().equals("PASS")), r.all());
            assertEquals(0, r.exit(), r.all());
            assertTrue(finding(found, NodeChecks.GROUP).get("evidence").asText().contains("IOMMU group 18 on the node holds [altra-000c01000, altra-000c01001]"), r.all());
            // One login, one read-only inspection: the script sent as sh -c with the group and its functions, nothing else
            // (the sshd log holds the command's lines).
            String log = String.join("\n", sshd.commands());
            assertTrue(log.startsWith("sh -c '#!/bin/sh"), log);
            assertEquals(1, log.split("sh -c '#!/bin/sh", -1).length - 1, log);
            assertTrue(log.endsWith("' inspect-node '" + node.path("root") + "' '18' '000c:01:00.0' '000c:01:00.1'"), log);
        }
    }

    @Test
    void diagnoseNodeSshFailsOnTheBootConsoleGpu() throws Exception {
        Seed.gpuReady(sim);
        try (FakeHost node = FakeHost.copy("node-altra")) {
            node.write(NodeChecksTest.GPU_DIR + "/boot_vga", "1\n")
                    .append("dmesg.log", "[  313.001234] vfio-pci 000c:01:00.0: BAR 1: can't reserve [mem 0x340000000000-0x3407ffffffff 64bit pref]\n");
            try (OpenSsh.Sshd sshd = serve(node, user, Map.of())) {
                Run.Result r = diagnose(node, sshd);
                assertEquals(Cli.Exit.DIAGNOSE_FAIL.code, r.exit(), r.all());
                JsonNode f = finding(nodeFindings(r), NodeChecks.CONSOLE);
                assertEquals("FAIL", f.get("status").asText(), r.all());
                assertTrue(f.get("evidence").asText().contains("BAR 1: can't reserve"), f.toString());
            }
        }
    }

    @Test
    void diagnoseNodeSshWarnsWhenSudoWantsAPassword() throws Exception {
        Seed.gpuReady(sim);
        try (FakeHost node = FakeHost.copy("node-altra")) {
            node.write("sudo_password", "").write("dmesg_restrict", "1\n");
            try (OpenSsh.Sshd sshd = serve(node, user, Map.of())) {
                Run.Result r = diagnose(node, sshd);
                assertEquals(Cli.Exit.DIAGNOSE_WARN.code, r.exit(), r.all());
                JsonNode f = finding(nodeFindings(r), NodeChecks.SUDO);
                assertEquals("WARN", f.get("status").asText(), r.all());
                String evidence = f.get("evidence").asText();
                assertTrue(evidence.contains("sudo -n asked for a password") && evidence.contains("skipped")
                        && evidence.contains(NodeChecks.CONSOLE) && evidence.contains(NodeChecks.DMESG), evidence);
            }
        }
    }

    @Test
    void diagnoseNodeSshWithAnUnknownHostKeyIsOneWarnAndTheExitCodeOfTheApiChecks() throws Exception {
        Seed.gpuReady(sim);
        try (FakeHost node = FakeHost.copy("node-altra"); OpenSsh.Sshd sshd = serve(node, user, Map.of())) {
            Run.Result api = Run.against(sim, new diagnose(), "--device", GPU, "-o", "json");
            List<String> args = new ArrayList<>(List.of("--device", GPU, "--node-ssh", "--node-root", node.path("root").toString(), "-o", "json"));
            args.addAll(sshFiles(node, sshd, "altra"));
            Files.writeString(node.path("known_hosts"), ""); // the node's key was never recorded
            Run.Result r = Run.against(sim, new diagnose(), args.toArray(new String[0]));
            assertEquals(api.exit(), r.exit(), "the unreachable node alone does not change the exit code: " + r.all());
            List<JsonNode> found = nodeFindings(r);
            assertEquals(1, found.size(), found.toString());
            JsonNode f = finding(found, NodeChecks.SSH);
            assertEquals("WARN", f.get("status").asText());
            assertTrue(f.get("evidence").asText().startsWith("cannot SSH to " + OpenSsh.user() + "@127.0.0.1:" + sshd.port() + " (")
                    && f.get("evidence").asText().contains("host key"), f.toString());
            assertEquals(List.of(), sshd.commands(), "nothing ran on a node whose key is not known");
        }
    }

    // ---- verify --docker end to end ----

    /** The VMI runs with the GPU; verify --docker --docker-image IMAGE into the guest fixture (fake lspci beside its nvidia-smi and docker). */
    Run.Result verifyDocker(FakeHost guest) throws Exception {
        var op = KubeVirt.vmis(sim.admin()).inNamespace("default");
        GenericKubernetesResource vmi = op.withName("docker-host").get();
        @SuppressWarnings("unchecked")
        Map<String, Object> devices = (Map<String, Object>) vmi.get("spec", "domain", "devices");
        @SuppressWarnings("unchecked")
        List<Object> hostDevices = new ArrayList<>((List<Object>) devices.get("hostDevices"));
        hostDevices.add(Map.of("name", GPU, "deviceName", GPU_RESOURCE));
        devices.put("hostDevices", hostDevices);
        op.resource(vmi).update();
        try (OpenSsh.Sshd sshd = serve(guest, user, Map.of(
                "lspci", "[ \"$1\" = -nn ] || exit 2\ncat <<'EOF'\n" + GuestSshServer.lspci(List.of(GuestSshServer.RTX_3090)) + "EOF"))) {
            List<String> args = new ArrayList<>(List.of("docker-host", "--host", "docker-host", "--docker", "--docker-image", GuestDockerTest.IMAGE));
            args.addAll(sshFiles(guest, sshd, "docker-host"));
            Run.Result r = Run.against(sim, new verify(), args.toArray(new String[0]));
            assertEquals(List.of("sudo -n lspci -nn", GuestDocker.NVIDIA_SMI, GuestDocker.DOCKER_RUNTIMES,
                    "docker run --rm --gpus all " + GuestDockerTest.IMAGE + " nvidia-smi -L"), sshd.commands(), r.all());
            return r;
        }
    }

    @Test
    void verifyDockerPassesWithDriverDockerAndToolkit() throws Exception {
        try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
            Run.Result r = verifyDocker(guest);
            assertEquals(0, r.exit(), r.all());
            for (String check : List.of(GuestDocker.DRIVER, GuestDocker.DOCKER, GuestDocker.RUNTIME, GuestDocker.CONTAINER)) {
                assertTrue(r.out().lines().anyMatch(l -> l.startsWith(check + " ") && l.contains(" PASS ")), check + ": " + r.out());
            }
            assertTrue(r.out().contains("GPU 0: NVIDIA GeForce RTX 3090") && r.out().contains("RESULT: PASS"), r.out());
        }
    }

    @Test
    void verifyDockerFailsWithExit26WithoutTheNvidiaRuntime() throws Exception {
        try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
            guest.write("state/runtimes.json", "{\"runc\":{\"path\":\"runc\"}}\n");
            Run.Result r = verifyDocker(guest);
            assertEquals(Cli.Exit.GUEST_SOFTWARE.code, r.exit(), r.all());
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith(GuestDocker.RUNTIME + " ") && l.contains(" FAIL ")), r.out());
            assertTrue(r.out().contains("FIX: install the NVIDIA Container Toolkit"), r.out());
            assertTrue(r.err().contains("guest-nvidia-runtime") && r.err().contains("failed in the guest"), r.err());
        }
    }
}
