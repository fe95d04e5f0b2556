//SOURCES Diagnosis.java ../model/Harvester.java ../model/KubeVirt.java

import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/**
 * Resource pooling (Harvester v1.9 spec.disableResourcePooling). With pooling off a device's
 * resource is {@code <vendor prefix>/<PCIDevice name>}; the field is read only when the claim is
 * created ("user will need to recreate the pcideviceclaim to set the field", harvester#6724). A
 * "." in that name (node hostname with dots) breaks virt-launcher: "PCI_RESOURCE_… not set for
 * resource" (harvester#9399, #10517).
 */
public final class PoolingCheck {
    private PoolingCheck() {}

    public static final String CHECK = "resource-pooling";
    public static final String DOT_CHECK = "resource-name-dot";

    /**
     * FAILs for claims whose pooling setting and their device's resource name disagree, and for
     * per-device resource names with a "." (of a claimed device, or asked for by a VM's hostDevices).
     *
     * @param claims     every PCIDeviceClaim
     * @param pciDevices every PCIDevice
     * @param vms        the VMs to look at (their hostDevices names); may be empty
     */
    public static List<Diagnosis.Finding> pooling(List<GenericKubernetesResource> claims, List<GenericKubernetesResource> pciDevices,
                                                  List<GenericKubernetesResource> vms) {
        List<Harvester.PciDevice> devices = pciDevices.stream().map(Harvester.PciDevice::of).toList();
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (GenericKubernetesResource r : claims) {
            if (r.getMetadata().getDeletionTimestamp() != null) continue;
            String name = r.getMetadata().getName();
            Harvester.PciDevice d = devices.stream().filter(x -> x.name().equals(name)).findFirst().orElse(null);
            if (d == null || d.resourceName() == null) continue;
            boolean wantsOff = Harvester.poolingDisabled(r);
            boolean isOff = Harvester.isPerDeviceResourceName(d.resourceName(), d.name());
            boolean enabled = Boolean.TRUE.equals(r.get("status", "passthroughEnabled"));
            if (enabled && wantsOff != isOff) {
                out.add(Diagnosis.Finding.fail(CHECK, name, "claim spec." + Harvester.DISABLE_POOLING_FIELD + "=" + wantsOff
                                + " but the device's resource is " + d.resourceName() + (isOff ? " (per device)" : " (pooled)")
                                + ": the field only takes effect when the claim is created",
                        "claim --force " + (wantsOff ? "--no-pooling " : "") + name + "   (recreates the claim; stop VMs using it first)"));
            }
            if (isOff && d.name().contains(".")) {
                out.add(dotFinding(name, "resource " + d.resourceName() + " (pooling off, node " + d.node() + ")",
                        "claim --force " + name + "   (pooling on: the resource name then has no node name in it)"));
            }
        }
        for (GenericKubernetesResource vm : vms) {
            for (KubeVirt.HostDevice hd : KubeVirt.hostDevices(vm)) {
                String res = hd.deviceName() == null ? "" : hd.deviceName();
                int slash = res.indexOf('/');
                boolean dotInResource = slash >= 0 && res.substring(slash + 1).contains(".");
                // A dot in the entry's name alone (pooled resource) is VmChecks' dotted-name rule, with its patch.
                if (!dotInResource) continue;
                out.add(dotFinding(KubeVirt.ref(vm), "hostDevices entry {name: " + hd.name() + ", deviceName: " + res + "}",
                        "re-claim the device with pooling on (claim --force DEVICE), then attach it under its pooled resource name"));
            }
        }
        return out;
    }

    private static Diagnosis.Finding dotFinding(String subject, String what, String fix) {
        return Diagnosis.Finding.fail(DOT_CHECK, subject, what + " contains \".\": virt-launcher then fails with "
                + "\"PCI_RESOURCE_… not set for resource …\" (harvester#9399, #10517)", fix);
    }
}
