///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION List PCI devices per node and IOMMU group, with claim state and the VM using each; flags partly claimed groups
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/cli/Render.java lib/cli/Bundled.java lib/cli/Names.java

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Pattern;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Replaces the runbook's "Inventory" step (kubectl get pcidevices -o wide), adding what that
 * table hides: IOMMU groups, resource names, claim state and which VM uses each device.
 */
@Command(name = "inventory", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"List Harvester PCI devices grouped by node and IOMMU group.",
                "Shows claim state (none / claimed / passthrough) and the VM using each device,",
                "and warns about IOMMU groups that are only partly claimed."})
public class inventory implements Cli.Command {
    private static final Pattern HEX4 = Pattern.compile("^[0-9a-fA-F]{4}$");

    @Mixin Kube.Options kube;
    @Mixin Cli.OutputOptions out;
    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Option(names = "--node", paramLabel = "NODE", description = "Only devices of this node")
    String node;

    @Option(names = "--vendor", paramLabel = "VENDOR", description = "Only this vendor: a PCI vendor id (10de) or a name (nvidia)")
    String vendor;

    @Parameters(arity = "0..1", paramLabel = "TEXT", description = "Only devices whose name, address, description or resource name contains TEXT")
    String text;

    public static void main(String... args) {
        Cli.main(new inventory(), args);
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        if (vendor != null && vendor.isBlank()) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--vendor is empty — pass a PCI vendor id such as 10de or a name such as nvidia");
        }
        Names.object("node", node);
        try (KubernetesClient client = kube.client()) {
            return list(stdout, client);
        }
    }

    private Cli.Exit list(PrintWriter stdout, KubernetesClient client) {
        List<Harvester.PciDevice> all = listDevices(client);
        if (node != null && all.isEmpty() && client.nodes().withName(node).get() == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "node \"" + node + "\" not found — run inventory without --node to see all nodes");
        }
        Map<String, Harvester.PciDeviceClaim> claims = new LinkedHashMap<>();
        Harvester.pciDeviceClaims(client).list().getItems()
                .forEach(r -> claims.put(r.getMetadata().getName(), Harvester.PciDeviceClaim.of(r)));
        Map<String, TreeSet<String>> usedBy = vmUsage(KubeVirt.vms(client).inAnyNamespace().list().getItems(), all);

        List<Harvester.IommuGroup> groups = Harvester.iommuGroups(all);
        List<DeviceRow> devices = new ArrayList<>();
        List<GroupRow> groupReports = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        for (Harvester.IommuGroup g : groups) {
            List<String> claimed = new ArrayList<>();
            List<String> unclaimed = new ArrayList<>();
            List<Harvester.PciDevice> shown = new ArrayList<>();
            for (Harvester.PciDevice d : g.devices()) {
                (claims.containsKey(d.name()) ? claimed : unclaimed).add(d.name());
                if (matches(d)) shown.add(d);
            }
            if (shown.isEmpty()) continue;
            boolean partial = !claimed.isEmpty() && !unclaimed.isEmpty();
            if (partial) {
                warnings.add("IOMMU group " + g.group() + " on node " + g.node() + " is only partly claimed (claimed: "
                        + String.join(", ", claimed) + "; not claimed: " + String.join(", ", unclaimed)
                        + ") — QEMU refuses a group not wholly on vfio-pci (\"group " + g.group()
                        + " is not viable\"); fix: claim " + claimed.get(0));
            }
            for (Harvester.PciDevice d : shown) {
                devices.add(deviceReport(d, claims.get(d.name()), usedBy.get(d.name()), partial));
            }
            groupReports.add(new GroupRow(g.node(), g.group(), g.devices().stream().map(Harvester.PciDevice::name).toList(), claimed, partial));
        }

        if (out.structured()) {
            Render.structured(stdout, out.output, new Report(devices, groupReports, warnings));
            return Cli.Exit.OK;
        }
        if (devices.isEmpty()) {
            spec.commandLine().getErr().println("No PCI devices found" + (node != null ? " on node " + node : "")
                    + (vendor != null || text != null ? " matching the filter" : "")
                    + (all.isEmpty() ? " (is the pcidevices-controller add-on enabled?)" : ""));
            return Cli.Exit.OK;
        }
        printTable(stdout, devices);
        if (out.output != Cli.Output.wide) {
            // Pooling off (claim --no-pooling): the device has a resource of its own, which is what VMs must ask for.
            for (DeviceRow d : devices) {
                if (Harvester.isPerDeviceResourceName(d.resourceName(), d.name())) {
                    stdout.println("NOTE: " + d.name() + " has resource pooling off: its resource is " + d.resourceName()
                            + " (attach writes that name)");
                }
            }
        }
        for (String w : warnings) stdout.println("WARNING: " + w);
        stdout.flush();
        return Cli.Exit.OK;
    }

    private List<Harvester.PciDevice> listDevices(KubernetesClient client) {
        try {
            var op = Harvester.pciDevices(client);
            // Real PCIDevices carry label nodename=<node> (NewPCIDeviceForHostname): one request either way.
            var items = node != null ? op.withLabel("nodename", node).list().getItems() : op.list().getItems();
            return items.stream().map(Harvester.PciDevice::of).toList();
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404) {
                throw new Cli.UserError(Cli.Exit.NOT_FOUND, "the server has no resource type pcidevices."
                        + Harvester.GROUP + " — enable the pcidevices-controller add-on (Harvester: Advanced → Add-ons) and wait for its scan");
            }
            throw e;
        }
    }

    private boolean matches(Harvester.PciDevice d) {
        if (vendor != null) {
            boolean ok = HEX4.matcher(vendor).matches()
                    ? vendor.equalsIgnoreCase(d.vendorId())
                    : contains(d.description(), vendor) || contains(d.resourceName(), vendor);
            if (!ok) return false;
        }
        return text == null || contains(d.name(), text) || contains(d.address(), text)
                || contains(d.description(), text) || contains(d.resourceName(), text) || contains(d.vendorDevice(), text);
    }

    private static boolean contains(String haystack, String needle) {
        return haystack != null && haystack.toLowerCase(Locale.ROOT).contains(needle.toLowerCase(Locale.ROOT));
    }

    /**
     * Which VM uses which PCIDevice, from VM specs. The allocation annotation is exact; otherwise
     * the one matching rule (KubeVirt.java): a pooled entry with several candidates
     * marks each of them with "?".
     */
    static Map<String, TreeSet<String>> vmUsage(List<GenericKubernetesResource> vms, List<Harvester.PciDevice> devices) {
        Map<String, TreeSet<String>> usedBy = new LinkedHashMap<>();
        for (GenericKubernetesResource vm : vms) {
            String ref = KubeVirt.ref(vm);
            Map<String, List<String>> allocated = KubeVirt.allocatedDevices(vm);
            String pinned = KubeVirt.pinnedNode(vm);
            for (KubeVirt.HostDevice hd : KubeVirt.entries(vm)) {
                if (allocated.containsKey(hd.deviceName())) {
                    allocated.get(hd.deviceName()).forEach(n -> usedBy.computeIfAbsent(n, k -> new TreeSet<>()).add(ref));
                    continue;
                }
                KubeVirt.Match m = KubeVirt.match(hd, devices, pinned);
                String mark = m.exact() || m.devices().size() == 1 ? ref : ref + "?";
                m.devices().forEach(d -> usedBy.computeIfAbsent(d.name(), k -> new TreeSet<>()).add(mark));
            }
        }
        return usedBy;
    }

    /** The JSON/YAML document (field names are part of the output): devices, IOMMU groups, warnings. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Report(List<DeviceRow> devices, List<GroupRow> iommuGroups, List<String> warnings) {}

    /** One IOMMU group with a shown device. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record GroupRow(String node, String iommuGroup, List<String> devices, List<String> claimed, boolean partiallyClaimed) {}

    /** One PCIDevice as listed. claim: none, claimed or passthrough; usedBy: VMs (a "?" marks a pooled candidate). */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record DeviceRow(String name, String node, String address, String vendorId, String deviceId, String classId, String description,
                     String resourceName, String kernelDriverInUse, String iommuGroup, boolean groupPartiallyClaimed, String claim,
                     List<String> usedBy) {}

    private static DeviceRow deviceReport(Harvester.PciDevice d, Harvester.PciDeviceClaim claim, TreeSet<String> vms, boolean partialGroup) {
        return new DeviceRow(d.name(), d.node(), d.address(), d.vendorId(), d.deviceId(), d.classId(), d.description(), d.resourceName(),
                d.driver(), d.iommuGroup(), partialGroup, claim == null ? "none" : claim.passthroughEnabled() ? "passthrough" : "claimed",
                vms == null ? List.of() : List.copyOf(vms));
    }

    private void printTable(PrintWriter stdout, List<DeviceRow> devices) {
        boolean wide = out.output == Cli.Output.wide;
        Render.Table t = wide
                ? new Render.Table("NAME", "NODE", "ADDRESS", "ID", "CLASS", "IOMMU", "DRIVER", "CLAIM", "VM", "RESOURCE", "DESCRIPTION")
                : new Render.Table("NAME", "NODE", "ADDRESS", "ID", "IOMMU", "DRIVER", "CLAIM", "VM", "DESCRIPTION");
        for (DeviceRow d : devices) {
            String group = d.iommuGroup() + (d.groupPartiallyClaimed() ? " (partial!)" : "");
            String vms = String.join(",", d.usedBy());
            String id = d.vendorId() + ":" + d.deviceId();
            if (wide) {
                t.row(d.name(), d.node(), d.address(), id, d.classId(), group, d.kernelDriverInUse(), d.claim(), vms, d.resourceName(), d.description());
            } else {
                t.row(d.name(), d.node(), d.address(), id, group, d.kernelDriverInUse(), d.claim(), vms, d.description());
            }
        }
        t.print(stdout);
    }
}
