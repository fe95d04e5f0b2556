import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The sandbox as a user starts it: a separate process, its printed instructions, then our scripts. */
class SandboxTest {
    @TempDir Path dir;

    @Test
    void sandboxServesTheSimulatedClusterUntilStopped() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "sandbox", "--dir", dir.toString(), "--fault", "webhook-race");
        pb.redirectErrorStream(true);
        Process p = pb.start();
        List<String> lines = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String l; (l = r.readLine()) != null; ) {
                lines.add(l);
                if (l.startsWith("Running until Ctrl-C")) break;
            }
            String all = String.join("\n", lines);
            assertTrue(all.contains("export KUBECONFIG=" + dir.resolve("kubeconfig.yaml")), all);
            assertTrue(all.contains("faults on:   [WEBHOOK_RACE]"), all);
            assertTrue(all.matches("(?s).*API server:  https://127\\.0\\.0\\.1:\\d+.*"), all);
            assertTrue(Files.isRegularFile(dir.resolve("kubeconfig.yaml")));

            Run.Result inv = Run.script(new inventory(), "--kubeconfig", dir.resolve("kubeconfig.yaml").toString(), "--node", "altra");
            assertEquals(0, inv.exit(), inv.all());
            assertTrue(inv.out().contains("altra-000c01000"), inv.out());
        } finally {
            p.destroy(); // SIGTERM, as Ctrl-C would
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "sandbox stops on SIGTERM");
        }
    }

    @Test
    void sandboxGuestShowsWhatTheRunningVmiHolds() throws Exception {
        try (Sandbox box = Sandbox.start(dir, new SimCluster.Options())) {
            KubeVirt.vmis(box.cluster().admin()).inNamespace("default").withName("docker-host").edit(vmi -> {
                java.util.Map<String, Object> devices = vmi.get("spec", "domain", "devices");
                ((java.util.List<Object>) devices.get("hostDevices")).add(
                        java.util.Map.of("name", "altra-000c01000", "deviceName", "nvidia.com/GA102_GEFORCE_RTX_3090"));
                return vmi;
            });
            List<String> args = new ArrayList<>(List.of("docker-host"));
            args.addAll(box.kubeFlags());
            args.addAll(box.sshFlags());
            Run.Result ok = Run.script(new verify(), args.toArray(new String[0]));
            assertEquals(0, ok.exit(), ok.all());
            assertTrue(ok.out().contains("10de:2204"), ok.out());

            box.cluster().faults().add(Fault.GUEST_NO_DEVICE);
            Run.Result absent = Run.script(new verify(), args.toArray(new String[0]));
            assertEquals(24, absent.exit(), absent.all());
        }
    }

    @Test
    void unknownFaultIsAUsageError() {
        Run.Result r = Run.script(new sandbox(), "--fault", "gremlins");
        assertEquals(2, r.exit(), r.all());
        assertTrue(r.err().contains("unknown fault 'gremlins' — one of: forbidden, controller-down"), r.err());
    }

    @Test
    void listsFaults() {
        Run.Result r = Run.script(new sandbox(), "--list-faults");
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().contains("webhook-race"), r.out());
    }

    @Test
    void busyPortUnusableDirAndNegativeDelaysAreOneLineUsageErrors() throws Exception {
        try (java.net.ServerSocket busy = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            Run.Result r = Run.script(new sandbox(), "--port", String.valueOf(busy.getLocalPort()), "--dir", dir.toString());
            ClusterAccessTest.assertOneLineError(r, 2, "port " + busy.getLocalPort() + " on 127.0.0.1 is in use");
        }
        Path file = dir.resolve("a-file");
        Files.writeString(file, "x");
        ClusterAccessTest.assertOneLineError(Run.script(new sandbox(), "--dir", file.resolve("sub").toString()), 2,
                "--dir " + file.resolve("sub") + " cannot be used as a directory");
        ClusterAccessTest.assertOneLineError(Run.script(new sandbox(), "--controller-delay-ms", "-5"), 2,
                "must be 0 or more (got -5, 500)");
    }

    @Test
    void usageErrorIsOneLinePlusAHelpHintNotTheWholeHelp() {
        Run.Result r = Run.script(new sandbox(), "--no-such-flag");
        assertEquals(2, r.exit(), r.all());
        assertEquals(List.of("Unknown option: '--no-such-flag'", "See 'sandbox --help' for the options."), r.err().lines().toList());
    }

    @Test
    void helpListsTheExitCodesFromCliExit() {
        Run.Result r = Run.script(new sandbox(), "--help");
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().contains("Exit codes:"), r.out());
        assertTrue(r.out().contains("  4   " + Cli.Exit.UNREACHABLE.meaning.substring(0, 20)), r.out());
    }

    /** diagnose --device GPU --node-ssh -o json against the sandbox, the GPU claimed (on vfio-pci). */
    static Run.Result diagnoseNode(Sandbox box) {
        Seed.gpuReady(box.cluster());
        List<String> args = new ArrayList<>(List.of("--device", "altra-000c01000", "--node-ssh", "-o", "json"));
        args.addAll(box.kubeFlags());
        args.addAll(box.sshFlags());
        return Run.script(new diagnose(), args.toArray(new String[0]));
    }

    static String nodeFinding(Run.Result r, String check) throws Exception {
        for (var f : io.fabric8.kubernetes.client.utils.Serialization.jsonMapper().readTree(r.out())) {
            if (f.get("check").asText().equals(check)) return f.get("status").asText() + " " + f.get("evidence").asText();
        }
        throw new AssertionError("no " + check + " in " + r.all());
    }

    @Test
    void sandboxNodeAnswersDiagnoseNodeSshThroughItsHostBlock() throws Exception {
        try (Sandbox box = Sandbox.start(dir, new SimCluster.Options())) {
            assertTrue(Files.readString(dir.resolve("ssh_config")).contains("Host altra\n  HostName 127.0.0.1\n  Port " + box.node().port()
                    + "\n  User rancher\n"), Files.readString(dir.resolve("ssh_config")));
            assertTrue(Files.readString(dir.resolve("known_hosts")).contains(box.node().knownHostsLine()));
            Run.Result r = diagnoseNode(box);
            assertTrue(nodeFinding(r, "node-iommu").startsWith("PASS IOMMU on"), r.all());
            assertTrue(nodeFinding(r, "node-boot-console").startsWith("PASS"), r.all());
            assertTrue(nodeFinding(r, "node-iommu-group").startsWith("PASS IOMMU group 18 on the node holds [altra-000c01000, altra-000c01001]"), r.all());
        }
    }

    @Test
    void iommuOffFaultShowsOnTheNode() throws Exception {
        SimCluster.Options o = new SimCluster.Options();
        o.faults.add(Fault.IOMMU_OFF);
        try (Sandbox box = Sandbox.start(dir, o)) {
            Run.Result r = diagnoseNode(box);
            assertEquals(Cli.Exit.DIAGNOSE_FAIL.code, r.exit(), r.all());
            assertTrue(nodeFinding(r, "node-iommu").startsWith("FAIL IOMMU off: /sys/class/iommu: empty"), r.all());
        }
    }

    @Test
    void bootVgaConsoleFaultShowsOnTheNode() throws Exception {
        SimCluster.Options o = new SimCluster.Options();
        o.faults.add(Fault.BOOT_VGA_CONSOLE);
        try (Sandbox box = Sandbox.start(dir, o)) {
            Run.Result r = diagnoseNode(box);
            assertEquals(Cli.Exit.DIAGNOSE_FAIL.code, r.exit(), r.all());
            String f = nodeFinding(r, "node-boot-console");
            assertTrue(f.startsWith("FAIL") && f.contains("BAR 1: can't reserve"), f);
        }
    }

    @Test
    void noNvidiaRuntimeFaultFailsVerifyDocker() throws Exception {
        SimCluster.Options o = new SimCluster.Options();
        o.faults.add(Fault.NO_NVIDIA_RUNTIME);
        try (Sandbox box = Sandbox.start(dir, o)) {
            KubeVirt.vmis(box.cluster().admin()).inNamespace("default").withName("docker-host").edit(vmi -> {
                java.util.Map<String, Object> devices = vmi.get("spec", "domain", "devices");
                ((java.util.List<Object>) devices.get("hostDevices")).add(
                        java.util.Map.of("name", "altra-000c01000", "deviceName", "nvidia.com/GA102_GEFORCE_RTX_3090"));
                return vmi;
            });
            List<String> args = new ArrayList<>(List.of("docker-host", "--docker"));
            args.addAll(box.kubeFlags());
            args.addAll(box.sshFlags());
            Run.Result r = Run.script(new verify(), args.toArray(new String[0]));
            assertEquals(Cli.Exit.GUEST_SOFTWARE.code, r.exit(), r.all());
            assertTrue(r.out().lines().anyMatch(l -> l.matches("guest-nvidia-runtime\\s+FAIL\\s+.*")), r.out());
        }
    }

    @Test
    void nodeSudoPasswordFaultIsAWarnNamingTheSkippedChecks() throws Exception {
        SimCluster.Options o = new SimCluster.Options();
        o.faults.add(Fault.NODE_SUDO_PASSWORD);
        try (Sandbox box = Sandbox.start(dir, o)) {
            Run.Result r = diagnoseNode(box);
            String f = nodeFinding(r, "node-sudo");
            assertTrue(f.startsWith("WARN sudo -n asked for a password") && f.contains("skipped: IOMMU lines in dmesg (node-iommu)"), f);
            assertTrue(nodeFinding(r, "node-driver").startsWith("PASS"), "the /sys checks still run: " + r.all());
        }
    }
}
