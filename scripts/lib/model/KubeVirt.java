//SOURCES Harvester.java ../cluster/Namespaces.java

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.type.TypeReference;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceList;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.MixedOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.utils.Serialization;

/** KubeVirt's API (kubevirt.io/v1): VirtualMachine, VirtualMachineInstance and the KubeVirt CR. */
public final class KubeVirt {
    private KubeVirt() {}

    public static final ResourceDefinitionContext VMS = new ResourceDefinitionContext.Builder()
            .withGroup("kubevirt.io").withVersion("v1").withKind("VirtualMachine").withPlural("virtualmachines")
            .withNamespaced(true).build();
    public static final ResourceDefinitionContext VMIS = new ResourceDefinitionContext.Builder()
            .withGroup("kubevirt.io").withVersion("v1").withKind("VirtualMachineInstance")
            .withPlural("virtualmachineinstances").withNamespaced(true).build();
    public static final ResourceDefinitionContext KUBEVIRTS = new ResourceDefinitionContext.Builder()
            .withGroup("kubevirt.io").withVersion("v1").withKind("KubeVirt").withPlural("kubevirts")
            .withNamespaced(true).build();

    public static MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> vms(KubernetesClient c) {
        return c.genericKubernetesResources(VMS);
    }

    public static MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> vmis(KubernetesClient c) {
        return c.genericKubernetesResources(VMIS);
    }

    public static MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> kubevirts(KubernetesClient c) {
        return c.genericKubernetesResources(KUBEVIRTS);
    }

    /** The VirtualMachine ns/name, or a NOT_FOUND error that says how to find it (or that the namespace is wrong). */
    public static GenericKubernetesResource vm(KubernetesClient c, String ns, String name) {
        GenericKubernetesResource vm = vms(c).inNamespace(ns).withName(name).get();
        if (vm == null) {
            throw Namespaces.notFound(c, ns, "virtualmachine \"" + name + "\"", "check the name, or pass -n NAMESPACE (kubectl get vm -A)");
        }
        return vm;
    }

    /** One entry of spec.template.spec.domain.devices.hostDevices (or .gpus). */
    public record HostDevice(String name, String deviceName) {}

    /** hostDevices of a VM (spec.template.spec.domain.devices) or a VMI (spec.domain.devices); empty when absent. */
    public static List<HostDevice> hostDevices(GenericKubernetesResource vmOrVmi) {
        return devices(vmOrVmi, "hostDevices");
    }

    /** gpus of a VM or a VMI; empty when absent. */
    public static List<HostDevice> gpus(GenericKubernetesResource vmOrVmi) {
        return devices(vmOrVmi, "gpus");
    }

    private static List<HostDevice> devices(GenericKubernetesResource r, String field) {
        Object list = "VirtualMachineInstance".equals(r.getKind())
                ? r.get("spec", "domain", "devices", field)
                : r.get("spec", "template", "spec", "domain", "devices", field);
        List<HostDevice> out = new ArrayList<>();
        if (list instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> m) {
                    out.add(new HostDevice(asString(m.get("name")), asString(m.get("deviceName"))));
                }
            }
        }
        return out;
    }

    // ---- which PCIDevice a hostDevices entry means: the one rule, used by claim, inventory, diagnose, verify ----

    /** The candidates for an entry, and whether the entry names exactly one device. */
    public record Match(List<Harvester.PciDevice> devices, boolean exact) {
        public boolean isEmpty() {
            return devices.isEmpty();
        }
    }

    /**
     * The PCIDevices an entry may mean (pinnedNode: the VM's nodeSelector hostname, or null). An
     * entry named after a PCIDevice with the entry's resource name means that device (attach and the
     * Harvester UI write such names). Otherwise the resource name is pooled: every device with it,
     * on the pinned node when the VM is pinned, is a candidate (the device plugin picks one at start;
     * the allocation annotation then says which).
     */
    public static Match match(HostDevice entry, List<Harvester.PciDevice> devices, String pinnedNode) {
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

    /** The PCIDevice a hostDevices entry stands for: the first candidate of {@link #match}. */
    public static java.util.Optional<Harvester.PciDevice> pciDeviceFor(HostDevice hd, List<Harvester.PciDevice> devices, String node) {
        return match(hd, devices, node).devices().stream().findFirst();
    }

    /** hostDevices then gpus entries of a VM (or VMI). */
    public static List<HostDevice> entries(GenericKubernetesResource vmOrVmi) {
        List<HostDevice> all = new ArrayList<>(hostDevices(vmOrVmi));
        all.addAll(gpus(vmOrVmi));
        return all;
    }

    /**
     * How a VM references a device, or null: allocated to it (pcidevices' allocation annotation),
     * or one of its entries means it by {@link #match}.
     */
    public static String uses(GenericKubernetesResource vm, Harvester.PciDevice d, List<Harvester.PciDevice> devices) {
        for (var e : allocatedDevices(vm).entrySet()) {
            if (e.getValue().contains(d.name())) return "allocated: annotation " + Harvester.ALLOCATION_ANNOTATION;
        }
        String pinned = pinnedNode(vm);
        for (HostDevice hd : entries(vm)) {
            Match m = match(hd, devices, pinned);
            if (m.devices().stream().noneMatch(x -> x.name().equals(d.name()))) continue;
            return m.exact() ? "hostDevices name " + hd.name() : "hostDevices deviceName " + hd.deviceName();
        }
        return null;
    }

    /** status.conditions of any resource, as maps; empty when absent. */
    @SuppressWarnings("unchecked")
    public static List<Map<String, Object>> conditions(GenericKubernetesResource r) {
        Object l = r.get("status", "conditions");
        List<Map<String, Object>> out = new ArrayList<>();
        if (l instanceof List<?> items) for (Object o : items) if (o instanceof Map<?, ?> m) out.add((Map<String, Object>) m);
        return out;
    }

    /** The condition of that type, or null. */
    public static Map<String, Object> condition(GenericKubernetesResource r, String type) {
        return conditions(r).stream().filter(m -> type.equals(m.get("type"))).findFirst().orElse(null);
    }

    /** The node a VM is pinned to by nodeSelector kubernetes.io/hostname, or null. */
    public static String pinnedNode(GenericKubernetesResource vm) {
        Object n = vm.get("spec", "template", "spec", "nodeSelector", "kubernetes.io/hostname");
        return n == null ? null : n.toString();
    }

    /** pcidevices' harvesterhci.io/deviceAllocationDetails: resource name → allocated PCIDevice names. */
    public static Map<String, List<String>> allocatedDevices(GenericKubernetesResource vm) {
        Map<String, String> ann = vm.getMetadata().getAnnotations();
        String json = ann == null ? null : ann.get(Harvester.ALLOCATION_ANNOTATION);
        if (json == null || json.isBlank()) return Map.of();
        try {
            Map<String, Map<String, List<String>>> parsed = Serialization.jsonMapper()
                    .readValue(json, new TypeReference<Map<String, Map<String, List<String>>>>() {});
            Map<String, List<String>> hd = parsed.get("hostdevices");
            return hd == null ? Map.of() : hd;
        } catch (Exception e) {
            return Map.of();
        }
    }

    /** The first IP a VMI reports (status.interfaces[].ipAddress, filled by the guest agent or DHCP), without a /prefix; or null. */
    public static String guestIp(GenericKubernetesResource vmi) {
        if (vmi.get("status", "interfaces") instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> m && m.get("ipAddress") != null && !m.get("ipAddress").toString().isBlank()) {
                    return m.get("ipAddress").toString().replaceFirst("/\\d+$", "");
                }
            }
        }
        return null;
    }

    public static String runStrategy(GenericKubernetesResource vm) {
        Object rs = vm.get("spec", "runStrategy");
        if (rs != null) return rs.toString();
        Object running = vm.get("spec", "running");
        return Boolean.TRUE.equals(running) ? "Always" : "Halted";
    }

    public static String ref(GenericKubernetesResource r) {
        return r.getMetadata().getNamespace() + "/" + r.getMetadata().getName();
    }

    private static String asString(Object o) {
        return o == null ? null : o.toString();
    }
}
