///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION List PCI devices per node and IOMMU group, with claim state and the VM using each; flags partly claimed groups
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/model/DeviceInventory.java
//SOURCES lib/cli/Render.java lib/cli/Bundled.java lib/cli/Names.java

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

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
        // Preconditions: the pcidevices API exists, and so does --node.
        List<Harvester.PciDevice> all = listDevices(client);
        if (node != null && all.isEmpty() && client.nodes().withName(node).get() == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "node \"" + node + "\" not found — run inventory without --node to see all nodes");
        }
        // Report (read-only): the shown devices, their IOMMU groups, claims and users.
        DeviceInventory.Report report = DeviceInventory.of(all, Harvester.pciDeviceClaims(client).list().getItems(),
                KubeVirt.vms(client).inAnyNamespace().list().getItems(), this::matches);
        List<DeviceInventory.DeviceRow> devices = report.devices();
        if (out.structured()) {
            Render.structured(stdout, out.output, report);
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
            for (DeviceInventory.DeviceRow d : devices) {
                if (Harvester.isPerDeviceResourceName(d.resourceName(), d.name())) {
                    stdout.println("NOTE: " + d.name() + " has resource pooling off: its resource is " + d.resourceName()
                            + " (attach writes that name)");
                }
            }
        }
        for (String w : report.warnings()) stdout.println("WARNING: " + w);
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

    private void printTable(PrintWriter stdout, List<DeviceInventory.DeviceRow> devices) {
        boolean wide = out.output == Cli.Output.wide;
        Render.Table t = wide
                ? new Render.Table("NAME", "NODE", "ADDRESS", "ID", "CLASS", "IOMMU", "DRIVER", "CLAIM", "VM", "RESOURCE", "DESCRIPTION")
                : new Render.Table("NAME", "NODE", "ADDRESS", "ID", "IOMMU", "DRIVER", "CLAIM", "VM", "DESCRIPTION");
        for (DeviceInventory.DeviceRow d : devices) {
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
