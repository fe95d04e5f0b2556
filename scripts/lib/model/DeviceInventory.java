//SOURCES Harvester.java KubeVirt.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Predicate;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/**
 * inventory's report: PCIDevices by node and IOMMU group, with claim state, the VMs using each,
 * and a warning for each group only partly claimed (QEMU refuses those).
 */
public final class DeviceInventory {
    private DeviceInventory() {}

    /** The JSON/YAML document (field names are part of the output): devices, IOMMU groups, warnings. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record Report(List<DeviceRow> devices, List<GroupRow> iommuGroups, List<String> warnings) {}

    /** One IOMMU group with a shown device. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record GroupRow(String node, String iommuGroup, List<String> devices, List<String> claimed, boolean partiallyClaimed) {}

    /** One PCIDevice as listed. claim: none, claimed or passthrough; usedBy: VMs (a "?" marks a pooled candidate). */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record DeviceRow(String name, String node, String address, String vendorId, String deviceId, String classId, String description,
                            String resourceName, String kernelDriverInUse, String iommuGroup, boolean groupPartiallyClaimed, String claim,
                            List<String> usedBy) {}

    /**
     * The report on the {@code shown} devices among {@code all}: each group with a shown device is
     * listed whole, and judged (partly claimed or not) over all its devices, shown or not.
     */
    public static Report of(List<Harvester.PciDevice> all, List<GenericKubernetesResource> claimList, List<GenericKubernetesResource> vms,
                            Predicate<Harvester.PciDevice> shown) {
        Map<String, Harvester.PciDeviceClaim> claims = new LinkedHashMap<>();
        claimList.forEach(r -> claims.put(r.getMetadata().getName(), Harvester.PciDeviceClaim.of(r)));
        Map<String, TreeSet<String>> usedBy = vmUsage(vms, all);
        List<DeviceRow> devices = new ArrayList<>();
        List<GroupRow> groups = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        for (Harvester.IommuGroup g : Harvester.iommuGroups(all)) {
            List<String> claimed = new ArrayList<>();
            List<String> unclaimed = new ArrayList<>();
            List<Harvester.PciDevice> listed = new ArrayList<>();
            for (Harvester.PciDevice d : g.devices()) {
                (claims.containsKey(d.name()) ? claimed : unclaimed).add(d.name());
                if (shown.test(d)) listed.add(d);
            }
            if (listed.isEmpty()) continue;
            boolean partial = !claimed.isEmpty() && !unclaimed.isEmpty();
            if (partial) {
                warnings.add("IOMMU group " + g.group() + " on node " + g.node() + " is only partly claimed (claimed: "
                        + String.join(", ", claimed) + "; not claimed: " + String.join(", ", unclaimed)
                        + ") — QEMU refuses a group not wholly on vfio-pci (\"group " + g.group()
                        + " is not viable\"); fix: claim " + claimed.get(0));
            }
            for (Harvester.PciDevice d : listed) {
                devices.add(row(d, claims.get(d.name()), usedBy.get(d.name()), partial));
            }
            groups.add(new GroupRow(g.node(), g.group(), g.devices().stream().map(Harvester.PciDevice::name).toList(), claimed, partial));
        }
        return new Report(devices, groups, warnings);
    }

    /**
     * Which VM uses which PCIDevice, from VM specs. The allocation annotation is exact; otherwise
     * the one matching rule (KubeVirt.java): a pooled entry with several candidates
     * marks each of them with "?".
     */
    public static Map<String, TreeSet<String>> vmUsage(List<GenericKubernetesResource> vms, List<Harvester.PciDevice> devices) {
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

    private static DeviceRow row(Harvester.PciDevice d, Harvester.PciDeviceClaim claim, TreeSet<String> vms, boolean partialGroup) {
        return new DeviceRow(d.name(), d.node(), d.address(), d.vendorId(), d.deviceId(), d.classId(), d.description(), d.resourceName(),
                d.driver(), d.iommuGroup(), partialGroup, claim == null ? "none" : claim.passthroughEnabled() ? "passthrough" : "claimed",
                vms == null ? List.of() : List.copyOf(vms));
    }
}
