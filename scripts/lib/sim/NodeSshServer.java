//SOURCES GuestSshServer.java ../model/Harvester.java ../checks/NodeInspection.java

import java.security.KeyPair;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Stands in for a Harvester node's SSH (user rancher) for `diagnose --node-ssh`: answers the
 * inspection command (scripts/lib/node/inspect-node.sh, recognised by {@link NodeInspection.Request#parse})
 * with the report a node in the simulated state would give — IOMMU groups and drivers from the
 * node's PCIDevices (status.kernelDriverInUse follows the simulated claims), SMMUv3 units as on an
 * Ampere Altra. The real script is tested against fake /sys trees (tests/NodeChecksTest.java);
 * this only speaks its report format. Everything else answers "command not found".
 */
public final class NodeSshServer implements AutoCloseable {
    public static final String USER = "rancher";

    /** How the node behaves; read again for every command (live). */
    public static final class Options {
        public PublicKey authorizedKey;
        public KeyPair hostKey;
        /** The node's PCIDevices now (the sandbox reads them from the simulated cluster). */
        public Supplier<List<Harvester.PciDevice>> devices = List::of;
        /** IOMMU on in firmware and kernel. */
        public boolean iommu = true;
        /** Addresses whose boot_vga is 1 (the host console's GPU); once on vfio-pci, dmesg shows `BAR 1: can't reserve`. */
        public Set<String> bootVga = new LinkedHashSet<>();
        /** sudo -n asks for a password (and dmesg is restricted to root). */
        public boolean sudoPassword;
        /** Faults in force (IOMMU_OFF, BOOT_VGA_CONSOLE, NODE_SUDO_PASSWORD); the sandbox passes SimCluster::faults. */
        public Supplier<Set<Fault>> faults = Set::of;

        /** These options as the faults in force change them. */
        Options underFaults(List<Harvester.PciDevice> devices) {
            Set<Fault> on = faults.get();
            Options o = new Options();
            o.iommu = iommu && !on.contains(Fault.IOMMU_OFF);
            o.bootVga = new LinkedHashSet<>(bootVga);
            if (on.contains(Fault.BOOT_VGA_CONSOLE)) {
                devices.stream().filter(d -> "10de".equalsIgnoreCase(d.vendorId()) && d.classId() != null && d.classId().startsWith("03"))
                        .findFirst().ifPresent(d -> o.bootVga.add(d.address()));
            }
            o.sudoPassword = sudoPassword || on.contains(Fault.NODE_SUDO_PASSWORD);
            return o;
        }
    }

    static final String CMDLINE = "BOOT_IMAGE=(loop0)/boot/vmlinuz console=tty1 root=LABEL=COS_STATE cos-img/filename=/cOS/active.img panic=0"
            + " net.ifnames=1 rd.cos.oemlabel=COS_OEM rd.cos.mount=LABEL=COS_OEM:/oem rd.cos.mount=LABEL=COS_PERSISTENT:/usr/local"
            + " rd.cos.oemtimeout=10 audit=1 audit_backlog_limit=8192 multipath=off";

    private final GuestSshServer ssh;

    private NodeSshServer(GuestSshServer ssh) {
        this.ssh = ssh;
    }

    public static NodeSshServer start(Options options) {
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(options.authorizedKey);
        o.user = USER;
        o.hostKey = options.hostKey;
        o.attached = List::of;
        o.nvidiaDriver = false;
        o.docker = false;
        o.more = command -> NodeInspection.Request.parse(command)
                .map(r -> new GuestSshServer.Answer(0, report(options, r).render(), ""))
                .orElse(null);
        return new NodeSshServer(GuestSshServer.start(o));
    }

    /** The report inspect-node.sh would print on a node in this state. */
    static NodeInspection.Report report(Options given, NodeInspection.Request r) {
        List<Harvester.PciDevice> devices = given.devices.get();
        Options o = given.underFaults(devices);
        String group = r.group();
        List<NodeInspection.Function> members = new ArrayList<>();
        boolean groupMissing = false;
        if (group != null && !group.isEmpty()) {
            if (!o.iommu) groupMissing = true;
            else devices.stream().filter(d -> group.equals(d.iommuGroup())).forEach(d -> members.add(function(o, d)));
        }
        List<NodeInspection.Function> functions = new ArrayList<>();
        for (String a : r.addresses()) {
            functions.add(devices.stream().filter(d -> a.equalsIgnoreCase(d.address())).findFirst().map(d -> function(o, d))
                    .orElse(new NodeInspection.Function(a, false, "-", "-", "-", "-", "-", "-")));
        }
        List<String> dmesg = new ArrayList<>();
        if (o.iommu) {
            dmesg.add("[    3.402131] arm-smmu-v3 arm-smmu-v3.0.auto: ias 48-bit, oas 48-bit (features 0x00001fef)");
            dmesg.add("[    3.415902] arm-smmu-v3 arm-smmu-v3.1.auto: ias 48-bit, oas 48-bit (features 0x00001fef)");
        }
        for (Harvester.PciDevice d : devices) {
            if (!"vfio-pci".equals(d.driver())) continue;
            dmesg.add("[  312.602231] vfio-pci " + d.address() + ": enabling device (0000 -> 0002)");
            if (o.bootVga.contains(d.address())) {
                dmesg.add("[  313.001234] vfio-pci " + d.address() + ": BAR 1: can't reserve [mem 0x340000000000-0x3407ffffffff 64bit pref]");
            }
        }
        long groups = o.iommu ? devices.stream().map(Harvester.PciDevice::iommuGroup).distinct().count() : 0;
        return new NodeInspection.Report(CMDLINE, 86400.0,
                o.iommu ? List.of("smmu3.0x0000000010000000", "smmu3.0x0000000028000000") : List.of(), (int) groups, group, groupMissing,
                members, functions,
                List.of(new NodeInspection.VtCon("vtcon0", "0", "(S) dummy device"), new NodeInspection.VtCon("vtcon1", "1", "(M) frame buffer device")),
                List.of("efi-framebuffer efi-framebuffer.0"), USER,
                o.sudoPassword ? "none" : "sudo", o.sudoPassword, null, o.sudoPassword ? 0 : (int) (o.iommu ? devices.size() : 0),
                o.sudoPassword ? List.of() : dmesg, true);
    }

    private static NodeInspection.Function function(Options o, Harvester.PciDevice d) {
        boolean display = d.classId() != null && d.classId().startsWith("03");
        return new NodeInspection.Function(d.address(), true, "0x" + d.classId() + "00", "0x" + d.vendorId(), "0x" + d.deviceId(),
                d.driver() == null || d.driver().isEmpty() ? "-" : d.driver(), o.iommu ? d.iommuGroup() : "-",
                display ? (o.bootVga.contains(d.address()) ? "1" : "0") : "-");
    }

    public String host() {
        return ssh.host();
    }

    public int port() {
        return ssh.port();
    }

    public PublicKey hostPublicKey() {
        return ssh.hostPublicKey();
    }

    public String knownHostsLine() {
        return ssh.knownHostsLine();
    }

    /** Every command line received, in order. */
    public List<String> commands() {
        return ssh.commands();
    }

    @Override
    public void close() {
        ssh.close();
    }
}
