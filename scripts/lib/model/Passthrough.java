//SOURCES Harvester.java KubeVirt.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * Whether a PCI device is ready for a VM, as one snapshot read with a fixed number of requests
 * (group devices, claims, KubeVirt CR, node), and the named checks that `claim` waits for,
 * `attach` requires and `diagnose` reports. One definition of "ready", used by all three.
 */
public final class Passthrough {
    private Passthrough() {}

    /** One condition: which, on what, whether it holds, the evidence, and the command that fixes it. */
    public record Check(String id, String subject, boolean ok, String evidence, String fix) {}

    /** Check ids, in the order the pcidevices controller makes them true. */
    public static final String CLAIMED = "claimed";
    public static final String OWNER_REFERENCE = "owner-reference";
    public static final String PASSTHROUGH_ENABLED = "passthrough-enabled";
    public static final String VFIO_DRIVER = "vfio-driver";
    public static final String PERMITTED = "permitted";
    public static final String ALLOCATABLE = "allocatable";

    public record State(Harvester.PciDevice device, List<Harvester.PciDevice> group,
                        Map<String, Harvester.PciDeviceClaim> claims, GenericKubernetesResource kubevirt, Node node) {

        /** Every check, for the device and each other function of its IOMMU group. */
        public List<Check> checks() {
            List<Check> out = new ArrayList<>();
            for (Harvester.PciDevice d : group) {
                Harvester.PciDeviceClaim c = claims.get(d.name());
                boolean sibling = !d.name().equals(device.name());
                String why = sibling ? " (shares IOMMU group " + d.iommuGroup() + " with " + device.name() + ")" : "";
                out.add(new Check(CLAIMED, d.name(), c != null,
                        c != null ? "PCIDeviceClaim " + d.name() + " exists" : "no PCIDeviceClaim " + d.name() + why,
                        "claim " + device.name()));
                if (c == null) continue;
                out.add(new Check(OWNER_REFERENCE, d.name(), c.ownedBy(d),
                        c.ownedBy(d) ? "ownerReferences[0] is PCIDevice " + d.name()
                                : "claim has no ownerReference to PCIDevice " + d.name()
                                  + " (controller: \"Cannot find PCIDevice that owns " + d.name() + "\")",
                        "claim --force " + d.name()));
                out.add(new Check(PASSTHROUGH_ENABLED, d.name(), c.passthroughEnabled(),
                        "status.passthroughEnabled=" + c.passthroughEnabled(),
                        "diagnose --device " + d.name()));
                out.add(new Check(VFIO_DRIVER, d.name(), Harvester.DRIVER_VFIO.equals(d.driver()),
                        "status.kernelDriverInUse=" + (d.driver() == null ? "<none>" : d.driver()),
                        "diagnose --device " + d.name()));
            }
            String res = device.resourceName();
            boolean permitted = permittedResources().contains(res);
            out.add(new Check(PERMITTED, device.name(), permitted,
                    kubevirt == null ? "KubeVirt CR " + Harvester.KUBEVIRT_NAMESPACE + "/" + Harvester.KUBEVIRT_NAME + " not found"
                            : (permitted ? "" : "not ") + "in kubevirt permittedHostDevices.pciHostDevices: " + res,
                    "diagnose --device " + device.name()));
            String alloc = allocatable(res);
            boolean hasAlloc = alloc != null && Quantity.getAmountInBytes(new Quantity(alloc)).signum() > 0;
            out.add(new Check(ALLOCATABLE, device.name(), hasAlloc,
                    node == null ? "node " + device.node() + " not found"
                            : "node " + device.node() + " allocatable[" + res + "]=" + (alloc == null ? "<absent>" : alloc),
                    "diagnose --device " + device.name()));
            return out;
        }

        public List<Check> failing() {
            return checks().stream().filter(c -> !c.ok()).toList();
        }

        public boolean ready() {
            return failing().isEmpty();
        }

        /** Resource names in the KubeVirt CR's spec.configuration.permittedHostDevices.pciHostDevices. */
        public List<String> permittedResources() {
            List<String> out = new ArrayList<>();
            Object list = kubevirt == null ? null
                    : kubevirt.get("spec", "configuration", "permittedHostDevices", "pciHostDevices");
            if (list instanceof List<?> l) {
                for (Object o : l) {
                    if (o instanceof Map<?, ?> m && m.get("resourceName") != null) out.add(m.get("resourceName").toString());
                }
            }
            return out;
        }

        /** node.status.allocatable[resource], or null. */
        public String allocatable(String resource) {
            if (node == null || node.getStatus() == null || node.getStatus().getAllocatable() == null) return null;
            Quantity q = node.getStatus().getAllocatable().get(resource);
            return q == null ? null : q.toString();
        }
    }

    /** Reads the state of a device and its IOMMU group: four requests whatever the cluster's size. */
    public static State read(KubernetesClient client, Harvester.PciDevice device) {
        List<Harvester.PciDevice> group = Harvester.pciDevices(client).withLabel("nodename", device.node()).list().getItems()
                .stream().map(Harvester.PciDevice::of)
                .filter(d -> device.node().equals(d.node()) && device.iommuGroup() != null && device.iommuGroup().equals(d.iommuGroup()))
                .sorted(java.util.Comparator.comparing(Harvester.PciDevice::address))
                .toList();
        if (group.stream().noneMatch(d -> d.name().equals(device.name()))) {
            List<Harvester.PciDevice> withSelf = new ArrayList<>(group);
            withSelf.add(0, device);
            group = withSelf;
        }
        Map<String, Harvester.PciDeviceClaim> claims = new LinkedHashMap<>();
        for (GenericKubernetesResource r : Harvester.pciDeviceClaims(client).list().getItems()) {
            claims.put(r.getMetadata().getName(), Harvester.PciDeviceClaim.of(r));
        }
        GenericKubernetesResource kv = KubeVirt.kubevirts(client).inNamespace(Harvester.KUBEVIRT_NAMESPACE)
                .withName(Harvester.KUBEVIRT_NAME).get();
        Node node = client.nodes().withName(device.node()).get();
        return new State(device, group, claims, kv, node);
    }
}
