//SOURCES ../cli/Cli.java ../model/Harvester.java ../model/KubeVirt.java ../model/Passthrough.java Diagnosis.java ControllerHealth.java VmChecks.java
//SOURCES ReleaseChecks.java

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;

/**
 * diagnose's checks put together: what to look at (a VM, a device, or every claimed device of a
 * node) and every check on it — controller health, each device's passthrough state, its node,
 * the other VMs holding it, and the VM's spec and instance.
 */
public final class Checkup {
    private Checkup() {}

    private static final ResourceDefinitionContext USB_DEVICES = new ResourceDefinitionContext.Builder()
            .withGroup(Harvester.GROUP).withVersion("v1beta1").withKind("USBDevice").withPlural("usbdevices").withNamespaced(false).build();

    /** The VM (or null), the devices to check, the nodes whose controller pods matter, and the --node filter (or null). */
    public record Scope(GenericKubernetesResource vm, List<Harvester.PciDevice> devices, List<Harvester.PciDevice> allDevices,
                        Set<String> nodes, boolean pciApi, String node) {}

    /** What to look at; unknown names are errors (NOT_FOUND, USAGE), not findings. */
    public static Scope scope(KubernetesClient c, String ns, String vmName, String device, String node) {
        if (node != null && c.nodes().withName(node).get() == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "node \"" + node + "\" not found — list nodes with: kubectl get nodes");
        }
        GenericKubernetesResource vm = null;
        if (vmName != null) {
            vm = KubeVirt.vm(c, ns, vmName);
        }
        List<Harvester.PciDevice> all;
        try {
            all = Harvester.pciDevices(c).list().getItems().stream().map(Harvester.PciDevice::of).toList();
        } catch (KubernetesClientException e) {
            if (e.getCode() != 404) throw e;
            Set<String> nodes = new LinkedHashSet<>();
            if (node != null) nodes.add(node);
            return new Scope(vm, List.of(), List.of(), nodes, false, node);
        }
        List<Harvester.PciDevice> devices = new ArrayList<>();
        if (device != null && all.isEmpty()) {
            // No PCIDevice objects at all (add-on disabled, or not discovering): the add-on checks say why.
            if (device.contains(":") && node == null) {
                throw new Cli.UserError(Cli.Exit.USAGE, "--device " + device + " is a PCI address — add --node NODE, or pass the PCIDevice name (inventory lists them)");
            }
        } else if (device != null) {
            if (device.contains(":") && node == null) {
                throw new Cli.UserError(Cli.Exit.USAGE, "--device " + device + " is a PCI address — add --node NODE, or pass the PCIDevice name (inventory lists them)");
            }
            devices.add(device.contains(":") ? Harvester.device(c, node, device) : Harvester.device(c, device));
        } else if (vm != null) {
            devices.addAll(devicesOf(vm, all, node));
        } else {
            Set<String> claimed = new LinkedHashSet<>();
            Harvester.pciDeviceClaims(c).list().getItems().forEach(r -> claimed.add(r.getMetadata().getName()));
            all.stream().filter(d -> claimed.contains(d.name()) && (node == null || node.equals(d.node()))).forEach(devices::add);
        }
        if (node != null && !devices.isEmpty() && device != null && !node.equals(devices.get(0).node())) {
            throw new Cli.UserError(Cli.Exit.USAGE, "PCIDevice " + devices.get(0).name() + " is on node " + devices.get(0).node()
                    + ", not " + node + " — drop --node or pick a device of " + node);
        }
        Set<String> nodes = new LinkedHashSet<>();
        if (node != null) nodes.add(node);
        devices.forEach(d -> nodes.add(d.node()));
        return new Scope(vm, devices, all, nodes, true, node);
    }

    /** The PCIDevices a VM's hostDevices/gpus mean (KubeVirt.match; pooled entries: the first candidate on the pinned node). */
    private static List<Harvester.PciDevice> devicesOf(GenericKubernetesResource vm, List<Harvester.PciDevice> all, String node) {
        String pinned = node != null ? node : KubeVirt.pinnedNode(vm);
        Map<String, Harvester.PciDevice> out = new LinkedHashMap<>();
        for (KubeVirt.HostDevice h : KubeVirt.entries(vm)) {
            KubeVirt.Match m = KubeVirt.match(h, all, pinned);
            if (!m.isEmpty()) out.putIfAbsent(m.devices().get(0).name(), m.devices().get(0));
        }
        return List.copyOf(out.values());
    }

    /** Every check for the scope: controller pods, each device, the other VMs holding it, and the VM. */
    public static List<Diagnosis.Finding> run(KubernetesClient c, Scope t) {
        String node = t.node();
        ReleaseChecks.Cluster cluster = ReleaseChecks.read(c);
        Instant now = Instant.now();
        List<Diagnosis.Finding> findings = new ArrayList<>(ReleaseChecks.cluster(cluster, now));
        findings.addAll(ControllerHealth.check(c, t.nodes()));
        if (!t.pciApi()) {
            findings.add(Diagnosis.Finding.fail("pcidevices-api", Harvester.GROUP, "the server has no resource type pcidevices."
                            + Harvester.GROUP + ": the pcidevices-controller add-on is not enabled",
                    "kubectl -n harvester-system patch addons.harvesterhci.io pcidevices-controller --type merge -p '{\"spec\":{\"enabled\":true}}'"));
            return ReleaseChecks.reconcile(findings, cluster);
        }
        if (t.devices().isEmpty()) {
            findings.add(Diagnosis.Finding.warn("pcidevice", t.vm() != null ? KubeVirt.ref(t.vm()) : "-",
                    t.allDevices().isEmpty() ? "no PCIDevice objects exist" : t.vm() != null ? "the VM has no PCI host device"
                            : "no claimed PCI devices" + (node != null ? " on node " + node : ""),
                    "inventory" + (node != null ? " --node " + node : "") + "   # then: diagnose " + (t.vm() != null ? t.vm().getMetadata().getName() + " " : "")
                            + "--device <name>"));
        }
        List<GenericKubernetesResource> usb = listOrEmpty(c);
        List<Pod> pods = cluster.controllerPods();
        VmChecks.Cluster vms = VmChecks.read(c, t.vm() == null ? null : t.vm().getMetadata().getNamespace());
        for (Harvester.PciDevice d : t.devices()) {
            Pod pod = ControllerHealth.podOn(pods, d.node());
            Passthrough.State state = stateOf(cluster, d);
            findings.addAll(Diagnosis.device(state, pod == null ? null : pod.getMetadata().getName(), usb));
            findings.addAll(nodeFindings(state));
            findings.addAll(VmChecks.sharing(vms, t.vm(), d, t.allDevices()));
        }
        List<GenericKubernetesResource> judged = t.vm() != null ? List.of(t.vm()) : ReleaseChecks.allocatedTo(vms.vms(), t.devices());
        findings.addAll(ReleaseChecks.claimsAndDevices(cluster, t.devices(), judged, now));
        if (t.vm() != null) findings.addAll(VmChecks.check(vms, t.vm(), t.devices(), t.allDevices(), usb));
        // Group- and node-wide checks come once per device of the group: each finding is reported once.
        return new ArrayList<>(new java.util.LinkedHashSet<>(ReleaseChecks.reconcile(findings, cluster)));
    }

    /** Passthrough.read's snapshot of a device, from what was read once (no requests per device). */
    static Passthrough.State stateOf(ReleaseChecks.Cluster s, Harvester.PciDevice device) {
        List<Harvester.PciDevice> group = new ArrayList<>(s.pciDevices().stream().map(Harvester.PciDevice::of)
                .filter(d -> device.node().equals(d.node()) && device.iommuGroup() != null && device.iommuGroup().equals(d.iommuGroup()))
                .sorted(java.util.Comparator.comparing(Harvester.PciDevice::address))
                .toList());
        if (group.stream().noneMatch(d -> d.name().equals(device.name()))) group.add(0, device);
        Map<String, Harvester.PciDeviceClaim> claims = new LinkedHashMap<>();
        s.claims().forEach(r -> claims.put(r.getMetadata().getName(), Harvester.PciDeviceClaim.of(r)));
        io.fabric8.kubernetes.api.model.Node node = s.nodes().stream().filter(n -> n.getMetadata().getName().equals(device.node())).findFirst().orElse(null);
        return new Passthrough.State(device, List.copyOf(group), claims, s.kubevirt(), node);
    }

    /** Maintenance (#4888): a cordoned node stops VMs with host devices, which cannot migrate. */
    private static List<Diagnosis.Finding> nodeFindings(Passthrough.State s) {
        if (s.node() == null || s.node().getSpec() == null || !Boolean.TRUE.equals(s.node().getSpec().getUnschedulable())) return List.of();
        String n = s.node().getMetadata().getName();
        return List.of(Diagnosis.Finding.warn("node-schedulable", n, "node " + n + " is cordoned (maintenance?): VMs with host devices are not "
                + "live-migratable, so they stop and cannot start until it is back", "kubectl uncordon " + n));
    }

    private static List<GenericKubernetesResource> listOrEmpty(KubernetesClient c) {
        try {
            return c.genericKubernetesResources(USB_DEVICES).list().getItems();
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404) return List.of();
            throw e;
        }
    }
}
