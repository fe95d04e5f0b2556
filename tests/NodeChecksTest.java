//SOURCES ../scripts/lib/checks/NodeChecks.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * `diagnose --node-ssh` checks: the real inspection script runs with /bin/sh against a fake node
 * (tests/fixtures/node-altra: a /proc and /sys tree shaped like an Ampere Altra with the RTX 3090
 * in IOMMU group 18, fake dmesg and sudo), changed per case, and the findings are asserted.
 */
class NodeChecksTest {
    static final Harvester.PciDevice GPU = new Harvester.PciDevice("altra-000c01000", "u1", "altra", "000c:01:00.0", "10de", "2204", "0300", "18",
            "nvidia.com/GA102_GEFORCE_RTX_3090", "VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090]", "vfio-pci");
    static final Harvester.PciDevice AUDIO = new Harvester.PciDevice("altra-000c01001", "u2", "altra", "000c:01:00.1", "10de", "1aef", "0403", "18",
            "nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER", "Audio device: NVIDIA Corporation GA102 High Definition Audio Controller", "vfio-pci");
    static final Harvester.PciDevice NVME = new Harvester.PciDevice("altra-000401000", "u3", "altra", "0004:01:00.0", "144d", "a808", "0108", "7",
            "samsung.com/NVME_SSD_CONTROLLER_SM981_PM981_PM983", "Non-Volatile memory controller: Samsung", "nvme");

    static final String GPU_DIR = "root/sys/devices/pci000c:00/000c:00:01.0/000c:01:00.0";
    static final String GROUP18 = "root/sys/kernel/iommu_groups/18/devices/";

    static Map<String, Harvester.PciDeviceClaim> claimed(Harvester.PciDevice... ds) {
        Map<String, Harvester.PciDeviceClaim> m = new java.util.LinkedHashMap<>();
        for (Harvester.PciDevice d : ds) m.put(d.name(), new Harvester.PciDeviceClaim(d.name(), d.node(), d.address(), "admin", true, "", List.of()));
        return m;
    }

    static NodeChecks.Subject subject(List<Harvester.PciDevice> devices, Map<String, Harvester.PciDeviceClaim> claims) {
        return new NodeChecks.Subject("altra", "18", devices, claims);
    }

    static final NodeChecks.Subject HEALTHY = subject(List.of(GPU, AUDIO, NVME), claimed(GPU, AUDIO));

    static List<Diagnosis.Finding> run(FakeHost node, NodeChecks.Subject s) {
        return NodeChecks.inspect(node.shell(), "rancher@altra", s, NodeChecks.request(s, node.path("root").toString()));
    }

    static List<Diagnosis.Finding> of(List<Diagnosis.Finding> all, String check) {
        return all.stream().filter(f -> f.check().equals(check)).toList();
    }

    static String show(List<Diagnosis.Finding> all) {
        StringBuilder sb = new StringBuilder();
        all.forEach(f -> sb.append(f.status()).append(' ').append(f.check()).append(' ').append(f.subject()).append(": ").append(f.evidence())
                .append(f.fix().isEmpty() ? "" : " FIX " + f.fix()).append('\n'));
        return sb.toString();
    }

    @Test
    void healthyNodePassesEveryCheck() {
        try (FakeHost node = FakeHost.copy("node-altra")) {
            List<Diagnosis.Finding> all = run(node, HEALTHY);
            for (String check : List.of(NodeChecks.IOMMU, NodeChecks.GROUP, NodeChecks.DRIVER, NodeChecks.CONSOLE, NodeChecks.DMESG)) {
                assertFalse(of(all, check).isEmpty(), check + " missing:\n" + show(all));
            }
            assertTrue(all.stream().allMatch(f -> f.status() == Diagnosis.Status.PASS), show(all));
            assertEquals(2, of(all, NodeChecks.DRIVER).size(), show(all));
            assertTrue(of(all, NodeChecks.IOMMU).get(0).evidence().contains("smmu3.0x0000000010000000"), show(all));
            assertTrue(of(all, NodeChecks.IOMMU).get(0).evidence().contains("arm-smmu-v3"), show(all));
            assertTrue(of(all, NodeChecks.GROUP).get(0).evidence().contains("[altra-000c01000, altra-000c01001], nothing else"), show(all));
            assertTrue(of(all, NodeChecks.SUDO).isEmpty(), show(all));
        }
    }

    /** One case: a change to the healthy node (and cluster), the check it must trip, its status, and words the finding must say. */
    record Case(String name, Consumer<FakeHost> change, NodeChecks.Subject subject, String check, Diagnosis.Status status, List<String> says) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                new Case("IOMMU off in firmware", n -> {
                    n.delete("root/sys/class/iommu/smmu3.0x0000000010000000").delete("root/sys/class/iommu/smmu3.0x0000000028000000");
                    for (String g : List.of("6", "7", "17", "18")) deleteTree(n, "root/sys/kernel/iommu_groups/" + g);
                }, HEALTHY, NodeChecks.IOMMU, Diagnosis.Status.FAIL,
                        List.of("IOMMU off", "/sys/class/iommu: empty", "0 IOMMU groups", "grub2-editenv /oem/grubenv", "third_party_kernel_args")),
                new Case("IOMMU switched off on the command line", n -> {
                    n.write("root/proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz intel_iommu=off multipath=off\n");
                    n.delete("root/sys/class/iommu/smmu3.0x0000000010000000").delete("root/sys/class/iommu/smmu3.0x0000000028000000");
                    for (String g : List.of("6", "7", "17", "18")) deleteTree(n, "root/sys/kernel/iommu_groups/" + g);
                }, HEALTHY, NodeChecks.IOMMU, Diagnosis.Status.FAIL, List.of("intel_iommu=off", "switched off on the command line", "drop the =off")),
                new Case("IOMMU on, from the kernel command line", n -> n.write("root/proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz intel_iommu=on iommu=pt\n"),
                        HEALTHY, NodeChecks.IOMMU, Diagnosis.Status.PASS, List.of("IOMMU on", "intel_iommu=on iommu=pt")),
                new Case("a PCI bridge in the group is named and accepted", n -> n.link(GROUP18 + "000c:00:01.0", "../../../../devices/pci000c:00/000c:00:01.0"),
                        HEALTHY, NodeChecks.GROUP, Diagnosis.Status.PASS, List.of("000c:00:01.0 (PCI bridge, driver pcieport)", "need no claim")),
                new Case("another device without a PCIDevice in the group", n -> {
                    n.write("root/sys/devices/pci000c:00/000c:00:01.0/000c:01:00.2/class", "0x0c0330\n")
                            .write("root/sys/devices/pci000c:00/000c:00:01.0/000c:01:00.2/vendor", "0x10de\n")
                            .write("root/sys/devices/pci000c:00/000c:00:01.0/000c:01:00.2/device", "0x1ad8\n")
                            .write("root/sys/bus/pci/drivers/xhci_hcd/bind", "")
                            .link("root/sys/devices/pci000c:00/000c:00:01.0/000c:01:00.2/driver", "../../../../bus/pci/drivers/xhci_hcd")
                            .link("root/sys/bus/pci/devices/000c:01:00.2", "../../../devices/pci000c:00/000c:00:01.0/000c:01:00.2")
                            .link(GROUP18 + "000c:01:00.2", "../../../../devices/pci000c:00/000c:00:01.0/000c:01:00.2");
                }, HEALTHY, NodeChecks.GROUP, Diagnosis.Status.FAIL,
                        List.of("000c:01:00.2 [10de:1ad8, class 0c03, driver xhci_hcd]", "no PCIDevice", "is not viable", "holds only its own functions")),
                new Case("groups renumbered since the PCIDevices were written", n -> deleteTree(n, "root/sys/kernel/iommu_groups/18"),
                        HEALTHY, NodeChecks.GROUP, Diagnosis.Status.FAIL, List.of("/sys/kernel/iommu_groups/18 does not exist", "group mismatch", "delete pod")),
                new Case("a PCIDevice the node's group does not list", n -> n.delete(GROUP18 + "000c:01:00.1"),
                        HEALTHY, NodeChecks.GROUP, Diagnosis.Status.FAIL, List.of("altra-000c01001", "does not list it")),
                new Case("claimed but still on the host driver", n -> n.link(GPU_DIR + "/driver", "../../../../bus/pci/drivers/nouveau"),
                        HEALTHY, NodeChecks.DRIVER, Diagnosis.Status.FAIL, List.of("claimed but 000c:01:00.0 is on nouveau", "not vfio-pci", "grep 000c:01:00.0")),
                new Case("not claimed: the host driver is expected", n -> n.link(GPU_DIR + "/driver", "../../../../bus/pci/drivers/nouveau"),
                        subject(List.of(GPU, AUDIO, NVME), claimed(AUDIO)), NodeChecks.DRIVER, Diagnosis.Status.PASS, List.of("on nouveau (not claimed")),
                new Case("the GPU is the boot VGA device", n -> n.write(GPU_DIR + "/boot_vga", "1\n"),
                        HEALTHY, NodeChecks.CONSOLE, Diagnosis.Status.WARN, List.of("boot_vga=1", "vtcon1 ((M) frame buffer device)", "vtcon0/bind", "lost on reboot")),
                new Case("the host console holds the GPU's BAR", n -> n.write(GPU_DIR + "/boot_vga", "1\n")
                        .append("dmesg.log", "[  313.001234] vfio-pci 000c:01:00.0: BAR 1: can't reserve [mem 0x340000000000-0x3407ffffffff 64bit pref]\n"),
                        HEALTHY, NodeChecks.CONSOLE, Diagnosis.Status.FAIL,
                        List.of("dmesg (23 h ago): vfio-pci 000c:01:00.0: BAR 1: can't reserve", "efi-framebuffer.0 | sudo tee /sys/bus/platform/drivers/efi-framebuffer/unbind", "pcidevices#81", "lost on reboot")),
                new Case("IOMMU faults in dmesg", n -> n.append("dmesg.log",
                        "[  420.100001] arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:\n"
                                + "[  420.100002] vfio-pci 000c:01:00.0: timed out waiting for pending transaction; performing function level reset anyway\n"),
                        HEALTHY, NodeChecks.DMESG, Diagnosis.Status.WARN, List.of("2 vfio/IOMMU error line(s)", "1 about group 18", "latest (23 h ago): vfio-pci 000c:01:00.0: timed out waiting")),
                new Case("sudo asks for a password", n -> n.write("dmesg_restrict", "1\n").write("sudo_password", ""),
                        HEALTHY, NodeChecks.SUDO, Diagnosis.Status.WARN,
                        List.of("sudo -n asked for a password", NodeChecks.IOMMU, NodeChecks.CONSOLE, NodeChecks.DMESG, "NOPASSWD: /usr/bin/dmesg")),
                new Case("dmesg through sudo -n when restricted", n -> n.write("dmesg_restrict", "1\n"),
                        HEALTHY, NodeChecks.DMESG, Diagnosis.Status.PASS, List.of("no vfio or IOMMU")))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void eachCheckPassesAndFails(Case c) {
        try (FakeHost node = FakeHost.copy("node-altra")) {
            c.change().accept(node);
            List<Diagnosis.Finding> all = run(node, c.subject());
            List<Diagnosis.Finding> found = of(all, c.check()).stream().filter(f -> f.status() == c.status()).toList();
            assertFalse(found.isEmpty(), "no " + c.status() + " " + c.check() + ":\n" + show(all));
            String text = show(found);
            for (String s : c.says()) assertTrue(text.contains(s), "\"" + s + "\" missing from:\n" + text);
            if (c.status() == Diagnosis.Status.PASS) {
                assertTrue(of(all, c.check()).stream().allMatch(f -> f.status() == Diagnosis.Status.PASS), show(all));
            }
        }
    }

    @Test
    void sudoPasswordSkipsOnlyTheKernelLogChecks() {
        try (FakeHost node = FakeHost.copy("node-altra")) {
            node.write("dmesg_restrict", "1\n").write("sudo_password", "");
            List<Diagnosis.Finding> all = run(node, HEALTHY);
            assertTrue(of(all, NodeChecks.DMESG).isEmpty(), show(all));
            assertEquals(Diagnosis.Status.PASS, of(all, NodeChecks.IOMMU).get(0).status(), show(all));
            assertTrue(of(all, NodeChecks.CONSOLE).get(0).evidence().contains("dmesg not readable"), show(all));
            assertEquals(1, of(all, NodeChecks.SUDO).size(), show(all));
        }
    }

    @Test
    void theScriptChangesNothing() throws Exception {
        // Statically: no redirection except to /dev/null or between stdout and stderr, no sysfs writer.
        String script = Files.readString(Run.repoRoot().resolve("scripts/lib/node/inspect-node.sh"));
        for (String line : script.split("\n")) {
            if (line.strip().startsWith("#")) continue;
            String rest = line.replace("2>/dev/null", "").replace(">/dev/null", "").replace("2>&1", "").replace(">&2", "");
            assertFalse(rest.contains(">"), "the node script may only read: " + line);
            assertFalse(rest.matches(".*\\b(tee|rm|mv|cp|dd|modprobe|echo\\s+\\S+\\s*\\|)\\b.*"), "the node script may only read: " + line);
        }
        // Dynamically: the fake node's tree is byte for byte the same after a full run (sudo path included).
        try (FakeHost node = FakeHost.copy("node-altra")) {
            node.write("dmesg_restrict", "1\n");
            Map<String, String> before = snapshot(node.path("root"));
            List<Diagnosis.Finding> all = run(node, HEALTHY);
            assertFalse(all.isEmpty());
            assertEquals(before, snapshot(node.path("root")));
        }
    }

    /** Every path under dir with its content or link target. */
    private static Map<String, String> snapshot(java.nio.file.Path dir) throws java.io.IOException {
        Map<String, String> m = new java.util.TreeMap<>();
        try (Stream<java.nio.file.Path> all = Files.walk(dir)) {
            for (java.nio.file.Path p : all.toList()) {
                String key = dir.relativize(p).toString();
                if (Files.isSymbolicLink(p)) m.put(key, "-> " + Files.readSymbolicLink(p));
                else if (Files.isRegularFile(p)) m.put(key, Files.readString(p) + " @" + Files.getLastModifiedTime(p));
                else m.put(key, "dir");
            }
        }
        return m;
    }

    @Test
    void deviceWithoutAnIommuGroupIsStillInspected() {
        // IOMMU off: the PCIDevices have no status.iommuGroup, so the request names the functions only.
        Harvester.PciDevice gpu = new Harvester.PciDevice(GPU.name(), GPU.uid(), "altra", GPU.address(), "10de", "2204", "0300", null,
                GPU.resourceName(), GPU.description(), "nouveau");
        NodeChecks.Subject s = new NodeChecks.Subject("altra", null, List.of(gpu), Map.of());
        try (FakeHost node = FakeHost.copy("node-altra")) {
            node.delete("root/sys/class/iommu/smmu3.0x0000000010000000").delete("root/sys/class/iommu/smmu3.0x0000000028000000");
            for (String g : List.of("6", "7", "17", "18")) deleteTree(node, "root/sys/kernel/iommu_groups/" + g);
            node.link(GPU_DIR + "/driver", "../../../../bus/pci/drivers/nouveau").write(GPU_DIR + "/boot_vga", "1\n");
            List<Diagnosis.Finding> all = run(node, s);
            assertEquals(Diagnosis.Status.FAIL, Diagnosis.worst(of(all, NodeChecks.IOMMU)), show(all));
            assertTrue(of(all, NodeChecks.GROUP).isEmpty(), show(all));
            assertEquals(Diagnosis.Status.PASS, Diagnosis.worst(of(all, NodeChecks.DRIVER)), show(all));
            assertEquals(Diagnosis.Status.WARN, Diagnosis.worst(of(all, NodeChecks.CONSOLE)), show(all));
        }
    }

    @Test
    void unreachableNodeIsOneWarningThatLeavesTheExitCodeAlone() {
        RemoteShell down = command -> {
            throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "connection refused");
        };
        List<Diagnosis.Finding> all = NodeChecks.inspect(down, "rancher@192.0.2.5", HEALTHY, NodeChecks.request(HEALTHY));
        assertEquals(1, all.size(), show(all));
        Diagnosis.Finding f = all.get(0);
        assertEquals(NodeChecks.SSH, f.check());
        assertEquals(Diagnosis.Status.WARN, f.status());
        assertTrue(f.evidence().contains("cannot SSH to rancher@192.0.2.5 (connection refused)"), f.evidence());
        assertTrue(f.fix().contains("Host altra"), f.fix());
        assertFalse(NodeChecks.countsForExit(f));
        assertTrue(NodeChecks.countsForExit(Diagnosis.Finding.warn(NodeChecks.SUDO, "altra", "e", "f")));
    }

    @Test
    void scriptThatStopsHalfwayIsAWarningNotAVerdict() {
        RemoteShell broken = command -> new RemoteShell.Result(2, "format=1\ncmdline=x\n", "sh: 1: syntax error\n");
        List<Diagnosis.Finding> all = NodeChecks.inspect(broken, "rancher@altra", HEALTHY, NodeChecks.request(HEALTHY));
        assertEquals(1, all.size(), show(all));
        assertEquals(Diagnosis.Status.WARN, all.get(0).status());
        assertTrue(all.get(0).evidence().contains("stopped (exit 2)"), show(all));
    }

    @Test
    void scriptReadsThisMachinesRealRootWithoutFailing() {
        // The same script on the real / (read-only): whatever this machine has, it must finish and parse.
        try (FakeHost host = FakeHost.copy("node-altra")) {
            NodeInspection.Request real = new NodeInspection.Request("", "", List.of("0000:00:00.0"));
            RemoteShell.Result r = host.shell().run(real.command());
            assertEquals(0, r.exit(), r.err());
            NodeInspection.Report report = NodeInspection.parse(r.out());
            assertTrue(report.complete(), r.out());
            assertEquals(1, report.functions().size(), r.out());
        }
    }

    @Test
    void commandCarriesTheRequestAndTheBundledScript() throws Exception {
        NodeInspection.Request req = new NodeInspection.Request("/tmp/it's root", "18", List.of("000c:01:00.0", "000c:01:00.1"));
        assertEquals(req, NodeInspection.Request.parse(req.command()).orElseThrow());
        assertTrue(NodeInspection.Request.parse("lspci -nn").isEmpty());
        String onDisk = Files.readString(Run.repoRoot().resolve("scripts/lib/node/inspect-node.sh"));
        assertEquals(onDisk, Bundled.read(NodeInspection.SCRIPT), "the bundled script differs from scripts/lib/node/inspect-node.sh");
        assertTrue(Files.readString(Run.repoRoot().resolve("scripts/lib/checks/NodeInspection.java"))
                .contains("//FILES node/inspect-node.sh=../node/inspect-node.sh\n"));
    }

    @Test
    void reportRendersAsTheScriptPrintsIt() {
        try (FakeHost node = FakeHost.copy("node-altra")) {
            node.link(GROUP18 + "000c:00:01.0", "../../../../devices/pci000c:00/000c:00:01.0").write("dmesg_restrict", "1\n").write("sudo_password", "");
            RemoteShell.Result r = node.shell().run(NodeChecks.request(HEALTHY, node.path("root").toString()).command());
            NodeInspection.Report report = NodeInspection.parse(r.out());
            assertEquals(3, report.members().size(), r.out());
            assertTrue(report.sudoPassword(), r.out());
            assertEquals(report, NodeInspection.parse(report.render()));
            assertEquals(r.out().replaceAll("(?m)^user=.*\n", ""), report.render().replaceAll("(?m)^user=.*\n", ""));
        }
    }

    private static void deleteTree(FakeHost n, String relative) {
        try (Stream<java.nio.file.Path> all = Files.walk(n.path(relative))) {
            for (java.nio.file.Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
