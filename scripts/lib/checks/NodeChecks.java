//SOURCES Diagnosis.java ../model/Harvester.java NodeInspection.java RemoteShell.java

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * `diagnose --node-ssh`: what only the node can tell — IOMMU on, the IOMMU group's real members,
 * the driver bound to each function, the GPU held by the host console, vfio/IOMMU errors in the
 * kernel log — judged into {@link Diagnosis.Finding}s from one run of {@link NodeInspection}.
 * Nothing on the node is changed; the fixes are printed for a human to run.
 */
public final class NodeChecks {
    private NodeChecks() {}

    public static final String SSH = "node-ssh";
    public static final String IOMMU = "node-iommu";
    public static final String GROUP = "node-iommu-group";
    public static final String DRIVER = "node-driver";
    public static final String CONSOLE = "node-boot-console";
    public static final String DMESG = "node-dmesg";
    public static final String SUDO = "node-sudo";

    /**
     * What the cluster says: the node, the IOMMU group under diagnosis (PCIDevice status.iommuGroup),
     * every PCIDevice of that node (to recognise members reported in another group), and the claims by name.
     */
    public record Subject(String node, String group, List<Harvester.PciDevice> nodeDevices, Map<String, Harvester.PciDeviceClaim> claims) {
        public List<Harvester.PciDevice> groupDevices() {
            return nodeDevices.stream().filter(d -> Objects.equals(group, d.iommuGroup())).toList();
        }

        Harvester.PciDevice at(String address) {
            return nodeDevices.stream().filter(d -> address.equalsIgnoreCase(d.address())).findFirst().orElse(null);
        }
    }

    /** The inspection of the subject's group on the node's own root. */
    public static NodeInspection.Request request(Subject s) {
        return request(s, "");
    }

    /** The same with another root prefix (tests pass a fake /proc and /sys tree). */
    public static NodeInspection.Request request(Subject s, String root) {
        return new NodeInspection.Request(root, s.group(), s.groupDevices().stream().map(Harvester.PciDevice::address).toList());
    }

    /**
     * Runs the inspection through {@code node} (an SSH session to {@code where}, e.g. rancher@10.0.0.5)
     * and judges it. A session that breaks is one WARN, as for a node that cannot be reached.
     */
    public static List<Diagnosis.Finding> inspect(RemoteShell node, String where, Subject s, NodeInspection.Request request) {
        RemoteShell.Result r;
        try {
            r = node.run(request.command());
        } catch (RuntimeException e) {
            return List.of(unreachable(s.node(), where, e.getMessage()));
        }
        NodeInspection.Report report = NodeInspection.parse(r.out());
        if (r.exit() != 0 || !report.complete()) {
            return List.of(Diagnosis.Finding.warn(SSH, s.node(), "the node inspection on " + where + " stopped (exit " + r.exit() + "): "
                            + r.firstLine() + "; node checks skipped",
                    "run it by hand to see why: ssh " + sshArgs(where) + " sh -s -- '' " + s.group() + " < scripts/lib/node/inspect-node.sh"));
        }
        return judge(report, s);
    }

    /**
     * The one finding for a node we could not reach. It does not change diagnose's exit code by
     * itself (issue: "node unreachable → the API checks still run"): see {@link #countsForExit}.
     */
    public static Diagnosis.Finding unreachable(String node, String where, String reason) {
        return Diagnosis.Finding.warn(SSH, node, "cannot SSH to " + where + " (" + reason + "): node checks skipped",
                "add (or correct) a `Host " + node + "` block in ~/.ssh/config (HostName, Port, User rancher, IdentityFile),"
                        + " or pass --node-user; check with: ssh " + sshArgs(where) + " true");
    }

    /** {@code user@host:port} (SshTarget.display) as ssh's arguments: {@code -p port user@host}. */
    static String sshArgs(String where) {
        Matcher m = Pattern.compile("^(.*):(\\d+)$").matcher(where);
        return m.matches() && !m.group(1).contains(":") ? "-p " + m.group(2) + " " + m.group(1) : where;
    }

    /** Whether a finding takes part in diagnose's exit code: all but an unreachable node. */
    public static boolean countsForExit(Diagnosis.Finding f) {
        return !SSH.equals(f.check());
    }

    /** Every node check on one report. */
    public static List<Diagnosis.Finding> judge(NodeInspection.Report r, Subject s) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        out.add(iommu(r, s));
        out.addAll(group(r, s));
        out.addAll(drivers(r, s));
        out.addAll(console(r, s));
        out.addAll(dmesgErrors(r, s));
        if (!r.dmesgRead()) out.add(sudo(r, s));
        return out;
    }

    // ---- IOMMU on ----

    private static final Pattern IOMMU_ARG = Pattern.compile("(?<=^|\\s)((?:intel_iommu|amd_iommu|iommu|iommu\\.passthrough|iommu\\.strict)=\\S+)");
    /** Kernel log lines that only appear when an IOMMU driver found hardware ("iommu: Default domain type" appears without one). */
    private static final Pattern IOMMU_UP = Pattern.compile("DMAR: IOMMU enabled|AMD-Vi: (?:Found IOMMU|Interrupt remapping enabled)|AMD IOMMUv2|arm-smmu(?:-v3)? \\S+: (?:ias|probing hardware)|SMMUv3");

    static Diagnosis.Finding iommu(NodeInspection.Report r, Subject s) {
        List<String> args = new ArrayList<>();
        if (r.cmdline() != null) {
            Matcher m = IOMMU_ARG.matcher(r.cmdline());
            while (m.find()) args.add(m.group(1));
        }
        List<String> up = r.dmesg().stream().filter(l -> IOMMU_UP.matcher(l).find()).map(NodeChecks::message).limit(2).toList();
        String evidence = "/sys/class/iommu: " + (r.iommuUnits().isEmpty() ? "empty" : String.join(", ", r.iommuUnits()))
                + "; " + r.iommuGroups() + " IOMMU groups in /sys/kernel/iommu_groups"
                + "; kernel command line: " + (r.cmdline() == null ? "unreadable" : args.isEmpty() ? "no IOMMU argument" : String.join(" ", args))
                + (up.isEmpty() ? "" : "; dmesg: " + String.join(" | ", up));
        boolean off = args.stream().anyMatch(a -> a.endsWith("=off"));
        if (!r.iommuUnits().isEmpty() || r.iommuGroups() > 0) {
            return Diagnosis.Finding.pass(IOMMU, s.node(), "IOMMU on: " + evidence);
        }
        return Diagnosis.Finding.fail(IOMMU, s.node(), "IOMMU off: " + evidence
                        + (off ? " (switched off on the command line)" : ""),
                "enable VT-d / AMD-Vi (x86) or the SMMU (arm64) in node " + s.node() + "'s firmware; on Intel also add intel_iommu=on: "
                        + "sudo grub2-editenv /oem/grubenv list, then sudo grub2-editenv /oem/grubenv set third_party_kernel_args=\"<the listed value> intel_iommu=on\""
                        + (off ? " (and drop the =off argument)" : "") + ", and reboot the node");
    }

    // ---- the group's real members ----

    static List<Diagnosis.Finding> group(NodeInspection.Report r, Subject s) {
        String subject = s.node() + "/" + s.group();
        if (s.group() == null || s.group().isBlank()) return List.of();
        String rescan = "the pcidevices controller rescans the node's devices: restart its pod on " + s.node()
                + " (kubectl -n " + Harvester.CONTROLLER_NAMESPACE + " delete pod -l " + Harvester.CONTROLLER_POD_SELECTOR
                + " --field-selector spec.nodeName=" + s.node() + "), then inventory --node " + s.node() + " and claim the new group";
        if (r.groupMissing()) {
            return List.of(Diagnosis.Finding.fail(GROUP, subject, "the PCIDevices say IOMMU group " + s.group() + " but /sys/kernel/iommu_groups/"
                    + s.group() + " does not exist on the node (groups renumbered after a kernel upgrade or hardware change;"
                    + " the controller logs `group mismatch` / `missing group for address`)", rescan));
        }
        List<Diagnosis.Finding> out = new ArrayList<>();
        List<String> named = new ArrayList<>();
        List<String> bridges = new ArrayList<>();
        Set<String> inSysfs = new LinkedHashSet<>();
        for (NodeInspection.Function m : r.members()) {
            inSysfs.add(m.address().toLowerCase());
            Harvester.PciDevice d = s.at(m.address());
            if (d != null) {
                named.add(d.name());
                if (!s.group().equals(d.iommuGroup())) {
                    out.add(Diagnosis.Finding.fail(GROUP, d.name(), m.address() + " is in IOMMU group " + s.group() + " on the node but PCIDevice "
                            + d.name() + " says group " + d.iommuGroup() + " (stale: the controller logs `group mismatch`)", rescan));
                }
                if (!m.vendorDevice().equalsIgnoreCase(d.vendorDevice())) {
                    out.add(changedHardware(m, d, rescan));
                }
            } else if (m.bridge()) {
                bridges.add(m.address() + " (PCI bridge, driver " + m.driver() + ")");
            } else {
                String what = m.address() + " [" + m.vendorDevice() + ", class " + m.classId() + ", driver " + m.driver() + "]";
                boolean viable = !m.hasDriver() || "vfio-pci".equals(m.driver());
                String evidence = "IOMMU group " + s.group() + " also holds " + what + ", which has no PCIDevice, so it cannot be claimed";
                String fix = "passthrough takes the whole group: move the GPU to a slot whose IOMMU group holds only its own functions"
                        + " (or enable ACS for that slot in the firmware), then inventory --node " + s.node();
                out.add(viable
                        ? Diagnosis.Finding.warn(GROUP, subject, evidence + "; it is " + (m.hasDriver() ? "on vfio-pci" : "without a driver")
                                + " now, so QEMU accepts the group, but nothing keeps it so", fix)
                        : Diagnosis.Finding.fail(GROUP, subject, evidence + "; while it is on " + m.driver()
                                + " QEMU refuses the group (\"group " + s.group() + " is not viable\")", fix));
            }
        }
        for (Harvester.PciDevice d : s.groupDevices()) {
            if (!inSysfs.contains(d.address().toLowerCase())) {
                out.add(Diagnosis.Finding.fail(GROUP, d.name(), "PCIDevice " + d.name() + " says " + d.address() + " is in IOMMU group " + s.group()
                        + " but the node's group " + s.group() + " does not list it (the controller logs `group mismatch` / `missing group for address`)", rescan));
            }
        }
        for (NodeInspection.Function f : r.functions()) {
            Harvester.PciDevice d = s.at(f.address());
            if (d == null) continue;
            if (!f.present()) {
                out.add(Diagnosis.Finding.fail(GROUP, d.name(), "no PCI function at " + f.address() + " on the node any more (card moved or removed;"
                        + " addresses shift after hardware changes)", rescan));
            }
        }
        if (out.isEmpty()) {
            out.add(Diagnosis.Finding.pass(GROUP, subject, "IOMMU group " + s.group() + " on the node holds " + named
                    + (bridges.isEmpty() ? ", nothing else" : " and " + String.join(", ", bridges)
                    + " — bridges are never PCIDevices and need no claim")));
        }
        return out;
    }

    private static Diagnosis.Finding changedHardware(NodeInspection.Function m, Harvester.PciDevice d, String rescan) {
        return Diagnosis.Finding.fail(GROUP, d.name(), m.address() + " now holds [" + m.vendorDevice() + "] but PCIDevice " + d.name()
                + " says [" + d.vendorDevice() + "] (hardware changed; the claim would bind the wrong device)", rescan);
    }

    // ---- the driver of each function ----

    static List<Diagnosis.Finding> drivers(NodeInspection.Report r, Subject s) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (NodeInspection.Function m : ofInterest(r)) {
            Harvester.PciDevice d = s.at(m.address());
            if (d == null || !m.present() || !Objects.equals(s.group(), d.iommuGroup())) continue;
            boolean claimed = s.claims().containsKey(d.name());
            String stale = Objects.equals(d.driver(), m.driver()) || (d.driver() == null && !m.hasDriver()) ? ""
                    : " (PCIDevice status.kernelDriverInUse says " + (d.driver() == null ? "none" : d.driver()) + ")";
            if (!claimed) {
                out.add(Diagnosis.Finding.pass(DRIVER, d.name(), m.address() + " is on " + m.driver() + " (not claimed: claiming it moves it to vfio-pci)" + stale));
            } else if ("vfio-pci".equals(m.driver())) {
                out.add(Diagnosis.Finding.pass(DRIVER, d.name(), m.address() + " is on vfio-pci, as its claim asks" + stale));
            } else {
                out.add(Diagnosis.Finding.fail(DRIVER, d.name(), d.name() + " is claimed but " + m.address() + " is on "
                                + (m.hasDriver() ? m.driver() : "no driver") + " on the node, not vfio-pci" + stale,
                        "the pcidevices controller on " + s.node() + " binds claimed devices: look for this address in its log (kubectl -n "
                                + Harvester.CONTROLLER_NAMESPACE + " logs -l " + Harvester.CONTROLLER_POD_SELECTOR + " -c agent --tail=-1 | grep "
                                + m.address() + ") and restart its pod on " + s.node() + " to retry"));
            }
        }
        return out;
    }

    // ---- the GPU as the host's boot / console device (harvester/pcidevices#81) ----

    private static final Pattern BAR = Pattern.compile("(\\p{XDigit}{4}:\\p{XDigit}{2}:\\p{XDigit}{2}\\.\\p{XDigit}): BAR (\\d+): can't reserve");

    /** The documented workaround (pcidevices#81); lost on reboot. */
    public static final String CONSOLE_WORKAROUND = "on the node, release the console from the GPU: "
            + "echo 0 | sudo tee /sys/class/vtconsole/vtcon0/bind /sys/class/vtconsole/vtcon1/bind; "
            + "echo efi-framebuffer.0 | sudo tee /sys/bus/platform/drivers/efi-framebuffer/unbind; "
            + "then restart the VM (harvester/pcidevices#81; lost on reboot: repeat after every boot, or make another display the primary one in the firmware)";

    static List<Diagnosis.Finding> console(NodeInspection.Report r, Subject s) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        String held = consoleHolders(r);
        for (NodeInspection.Function m : ofInterest(r)) {
            Harvester.PciDevice d = s.at(m.address());
            if (!m.classId().startsWith("03")) continue; // display controllers only
            String name = d != null ? d.name() : m.address();
            List<String> bars = r.dmesg().stream().filter(l -> {
                Matcher b = BAR.matcher(l);
                return b.find() && b.group(1).equalsIgnoreCase(m.address());
            }).toList();
            if (!bars.isEmpty()) {
                out.add(Diagnosis.Finding.fail(CONSOLE, name, "dmesg" + ago(r, bars.get(bars.size() - 1)) + ": " + message(bars.get(bars.size() - 1)) + (bars.size() > 1 ? " (" + bars.size() + " such lines)" : "")
                        + ": the host console still holds the GPU's memory" + ("1".equals(m.bootVga()) ? " (boot_vga=1)" : "") + held, CONSOLE_WORKAROUND));
            } else if ("1".equals(m.bootVga())) {
                out.add(Diagnosis.Finding.warn(CONSOLE, name, m.address() + " is the boot VGA device (boot_vga=1)" + held
                        + (r.dmesgRead() ? ", no `BAR n: can't reserve` in dmesg yet" : ", dmesg not readable")
                        + ": the host console may keep its memory and the VM fail to start", CONSOLE_WORKAROUND));
            } else {
                out.add(Diagnosis.Finding.pass(CONSOLE, name, m.address() + " is not the boot VGA device (boot_vga=" + m.bootVga() + ")"
                        + (r.dmesgRead() ? ", no `BAR n: can't reserve` in dmesg" : " (dmesg not readable)")));
            }
        }
        return out;
    }

    /** The group's members; the functions asked about when there is no group to list (IOMMU off, group unknown). */
    private static List<NodeInspection.Function> ofInterest(NodeInspection.Report r) {
        return r.members().isEmpty() ? r.functions().stream().filter(NodeInspection.Function::present).toList() : r.members();
    }

    private static String consoleHolders(NodeInspection.Report r) {
        List<String> bound = r.vtcons().stream().filter(v -> "1".equals(v.bind()) && !v.driver().contains("dummy"))
                .map(v -> v.name() + " (" + v.driver() + ")").toList();
        List<String> parts = new ArrayList<>();
        if (!bound.isEmpty()) parts.add("consoles bound: " + String.join(", ", bound));
        if (!r.framebuffers().isEmpty()) parts.add("framebuffers: " + String.join(", ", r.framebuffers()));
        return parts.isEmpty() ? "" : "; " + String.join("; ", parts);
    }

    // ---- vfio / IOMMU errors in the kernel log ----

    private static final Pattern ERROR = Pattern.compile(
            "DMAR: \\[DMA (?:Read|Write)|DMAR: DRHD: handling fault|AMD-Vi: Event logged \\[|arm-smmu\\S* \\S+: event 0x|"
                    + "vfio\\S* \\S+: .*(?:failed|error|Invalid|timed out|not ready)|vfio_bar_restore|"
                    + "(?i:probe of \\S+ failed)|VFIO_MAP_DMA failed", Pattern.CASE_INSENSITIVE);

    static List<Diagnosis.Finding> dmesgErrors(NodeInspection.Report r, Subject s) {
        if (!r.dmesgRead()) return List.of();
        List<String> errors = r.dmesg().stream().filter(l -> ERROR.matcher(l).find() && !BAR.matcher(l).find()).toList();
        String subject = s.node();
        if (errors.isEmpty()) {
            return List.of(Diagnosis.Finding.pass(DMESG, subject, "no vfio or IOMMU (DMAR/AMD-Vi/SMMU) errors in dmesg since boot"));
        }
        List<String> ours = errors.stream().filter(l -> s.groupDevices().stream().anyMatch(d -> l.toLowerCase().contains(d.address().toLowerCase()))).toList();
        List<String> shown = (ours.isEmpty() ? errors : ours);
        String last = shown.get(shown.size() - 1);
        return List.of(Diagnosis.Finding.warn(DMESG, subject, errors.size() + " vfio/IOMMU error line(s) in dmesg since boot"
                        + (ours.isEmpty() ? " (none names group " + s.group() + ")" : ", " + ours.size() + " about group " + s.group())
                        + "; latest" + ago(r, last) + ": " + message(last),
                "read them in full on the node: sudo dmesg | grep -E 'DMAR|AMD-Vi|SMMU|vfio'; faults while the VM ran point at the device or its firmware"));
    }

    // ---- sudo ----

    static Diagnosis.Finding sudo(NodeInspection.Report r, Subject s) {
        String skipped = "skipped: IOMMU lines in dmesg (" + IOMMU + "), `BAR n: can't reserve` (" + CONSOLE + "), vfio/DMAR errors (" + DMESG + ")";
        String why = r.sudoPassword() ? "sudo -n asked for a password (dmesg is restricted to root: kernel.dmesg_restrict=1)"
                : "the kernel log is not readable: " + (r.dmesgDenied() == null ? "dmesg failed" : r.dmesgDenied());
        return Diagnosis.Finding.warn(SUDO, s.node(), why + " as " + r.user() + "; " + skipped,
                "let " + r.user() + " read the kernel log without a password (a sudoers line: " + r.user()
                        + " ALL=(root) NOPASSWD: /usr/bin/dmesg), or run on the node: sudo dmesg | grep -E 'DMAR|AMD-Vi|SMMU|vfio|BAR'");
    }

    private static final Pattern STAMP = Pattern.compile("^\\[\\s*(\\d+(?:\\.\\d+)?)\\]");

    /** " (12 min ago)" for a kernel log line, from its [seconds since boot] and the node's uptime; "" when unknown. */
    static String ago(NodeInspection.Report r, String line) {
        Matcher m = STAMP.matcher(line);
        if (r.uptime() < 0 || !m.find()) return "";
        long s = Math.max(0, Math.round(r.uptime() - Double.parseDouble(m.group(1))));
        String age = s < 90 ? s + " s" : s < 90 * 60 ? s / 60 + " min" : s < 48 * 3600 ? s / 3600 + " h" : s / 86400 + " days";
        return " (" + age + " ago)";
    }

    /** A kernel log line without its "[  12.345678] " timestamp. */
    private static String message(String line) {
        return line.replaceFirst("^\\[\\s*[\\d.]+\\]\\s*", "");
    }
}
