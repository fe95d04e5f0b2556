//SOURCES ../Harvester.java ../KubeVirt.java

import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/**
 * The one rule for "which PCIDevice does this hostDevices (or gpus) entry mean?", used by claim,
 * inventory, diagnose and the VM checks. An entry named after a PCIDevice with the entry's resource
 * name means that device (attach and the Harvester UI write such names). Otherwise the resource
 * name is pooled: every device with it, on the VM's pinned node when the VM is pinned, is a
 * candidate (the device plugin picks one at start; the allocation annotation then says which).
 */
public final class HostDeviceMatch {
    private HostDeviceMatch() {}

    /** The candidates for an entry, and whether the entry names exactly one device. */
    public record Match(List<Harvester.PciDevice> devices, boolean exact) {
        public boolean isEmpty() {
            return devices.isEmpty();
        }
    }

    /** The PCIDevices an entry may mean (pinnedNode: the VM's nodeSelector hostname, or null). */
    public static Match of(KubeVirt.HostDevice entry, List<Harvester.PciDevice> devices, String pinnedNode) {
        if (entry.deviceName() == null) return new Match(List.of(), false);
        List<Harvester.PciDevice> named = devices.stream()
                .filter(d -> d.name().equals(entry.name()) && entry.deviceName().equals(d.resourceName())).toList();
        if (!named.isEmpty()) return new Match(named, true);
        List<Harvester.PciDevice> pooled = devices.stream()
                .filter(d -> entry.deviceName().equals(d.resourceName()))
                .filter(d -> pinnedNode == null || pinnedNode.equals(d.node()))
                .toList();
        return new Match(pooled, false);
    }

    /** hostDevices then gpus entries of a VM (or VMI). */
    public static List<KubeVirt.HostDevice> entries(GenericKubernetesResource vm) {
        List<KubeVirt.HostDevice> all = new ArrayList<>(KubeVirt.hostDevices(vm));
        all.addAll(KubeVirt.gpus(vm));
        return all;
    }

    /**
     * How a VM references a device, or null: allocated to it (pcidevices' allocation annotation),
     * or one of its entries means it by the rule above.
     */
    public static String uses(GenericKubernetesResource vm, Harvester.PciDevice d, List<Harvester.PciDevice> devices) {
        for (var e : KubeVirt.allocatedDevices(vm).entrySet()) {
            if (e.getValue().contains(d.name())) return "allocated: annotation " + Harvester.ALLOCATION_ANNOTATION;
        }
        String pinned = KubeVirt.pinnedNode(vm);
        for (KubeVirt.HostDevice hd : entries(vm)) {
            Match m = of(hd, devices, pinned);
            if (m.devices().stream().noneMatch(x -> x.name().equals(d.name()))) continue;
            return m.exact() ? "hostDevices name " + hd.name() : "hostDevices deviceName " + hd.deviceName();
        }
        return null;
    }
}
