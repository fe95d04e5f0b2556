//SOURCES ../cli/Cli.java ../model/Harvester.java ../model/KubeVirt.java ../model/Passthrough.java ../model/VmHostDevices.java DeviceTarget.java

import java.util.List;
import java.util.Map;
import java.util.function.Function;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * attach's preconditions, checked before any change (by attach and by diagnose --fix): the device
 * is ready for passthrough, the VM is not pinned elsewhere, and no PCI device sits under gpus
 * (pcidevices v1.5–1.7 rejects every update of such a VM). Yields the edit to make.
 */
public final class Attaching {
    private Attaching() {}

    /** The failing passthrough checks of the device (empty: ready). */
    public static List<Passthrough.Check> notReady(KubernetesClient c, Harvester.PciDevice pci) {
        return Passthrough.read(c, pci).failing();
    }

    /** PRECONDITION with the evidence and the first fix when the device is not ready. */
    public static void requireReady(Harvester.PciDevice pci, List<Passthrough.Check> failing) {
        if (failing.isEmpty()) return;
        throw new Cli.UserError(Cli.Exit.PRECONDITION, pci.name() + " is not ready for passthrough: "
                + String.join("; ", failing.stream().map(Passthrough.Check::evidence).toList())
                + " — run: " + failing.get(0).fix());
    }

    /** PRECONDITION when a PCI device sits under gpus and --move-gpus was not given. */
    public static void requireNoPassthroughGpus(GenericKubernetesResource vm, List<String> pciResources, boolean moveGpus) {
        List<Map<String, Object>> gpus = VmHostDevices.passthroughGpus(vm, pciResources);
        if (gpus.isEmpty() || moveGpus) return;
        Map<String, Object> g = gpus.get(0);
        throw new Cli.UserError(Cli.Exit.PRECONDITION, vm.getMetadata().getName() + " has PCI device " + g.get("name") + " (" + g.get("deviceName")
                + ") under domain.devices.gpus, which pcidevices v1.5–1.7 rejects on every update (\"gpu device " + g.get("name")
                + ": resource name " + g.get("deviceName") + " not found in pcidevice cache\") — re-run with --move-gpus to move it to hostDevices");
    }

    /** PRECONDITION when the VM is pinned to another node than the device's. */
    public static void requireSameNode(GenericKubernetesResource vm, VmHostDevices.Target target) {
        String pinned = KubeVirt.pinnedNode(vm);
        if (pinned == null || pinned.equals(target.node())) return;
        throw new Cli.UserError(Cli.Exit.PRECONDITION, vm.getMetadata().getName() + " is pinned to node " + pinned + " (nodeSelector "
                + VmHostDevices.HOSTNAME_LABEL + "=" + pinned + ") but " + target.label() + " is on node " + target.node()
                + " — pick a device on " + pinned + " (inventory --node " + pinned + ") or change the VM's node selector");
    }

    /** The edit as a function of the fresh VM: add the entry, pin, and with moveGpus move passthrough gpus entries. */
    public static Function<GenericKubernetesResource, VmHostDevices.Edit> edit(VmHostDevices.Target target, boolean moveGpus,
                                                                                List<String> pciResources) {
        return v -> VmHostDevices.attach(v, target, moveGpus ? VmHostDevices.passthroughGpus(v, pciResources) : List.of());
    }

    /**
     * All of attach's checks in attach's order, for a caller that does not claim first
     * (diagnose --fix); returns the edit.
     */
    public static Function<GenericKubernetesResource, VmHostDevices.Edit> check(KubernetesClient c, GenericKubernetesResource vm,
                                                                                 DeviceTarget.Found found, boolean moveGpus) {
        List<String> pciResources = pciResourceNames(c, vm, moveGpus);
        requireNoPassthroughGpus(vm, pciResources, moveGpus);
        Harvester.PciDevice pci = found.device();
        requireReady(pci, notReady(c, pci));
        requireSameNode(vm, found.target());
        return edit(found.target(), moveGpus, pciResources);
    }

    /**
     * Every PCIDevice resource name in the cluster, when something needs them: the VM has gpus
     * entries (to find PCI devices among them) or moveGpus (the edit moves them from the fresh VM).
     * Otherwise empty, without listing every PCIDevice of the cluster.
     */
    public static List<String> pciResourceNames(KubernetesClient c, GenericKubernetesResource vm, boolean moveGpus) {
        if (!moveGpus && KubeVirt.gpus(vm).isEmpty()) return List.of();
        return Harvester.pciDevices(c).list().getItems().stream().map(Harvester.PciDevice::of)
                .map(Harvester.PciDevice::resourceName).filter(r -> r != null).distinct().toList();
    }
}
