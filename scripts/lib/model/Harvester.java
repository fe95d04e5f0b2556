//SOURCES ../cluster/Kube.java

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceList;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.MixedOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;

/**
 * Harvester's pcidevices API (devices.harvesterhci.io/v1beta1, all cluster-scoped), shaped as in
 * harvester/pcidevices pkg/apis/devices.harvesterhci.io/v1beta1.
 */
public final class Harvester {
    private Harvester() {}

    public static final String GROUP = "devices.harvesterhci.io";
    public static final String API_VERSION = GROUP + "/v1beta1";

    public static final ResourceDefinitionContext PCI_DEVICES = new ResourceDefinitionContext.Builder()
            .withGroup(GROUP).withVersion("v1beta1").withKind("PCIDevice").withPlural("pcidevices")
            .withNamespaced(false).build();
    public static final ResourceDefinitionContext PCI_DEVICE_CLAIMS = new ResourceDefinitionContext.Builder()
            .withGroup(GROUP).withVersion("v1beta1").withKind("PCIDeviceClaim").withPlural("pcideviceclaims")
            .withNamespaced(false).build();

    /** The KubeVirt CR the pcidevices controller edits (pcideviceclaim_controller.go DefaultNS/KubevirtCR). */
    public static final String KUBEVIRT_NAMESPACE = "harvester-system";
    public static final String KUBEVIRT_NAME = "kubevirt";
    /** VM annotation written by pcidevices with the devices actually allocated to the running VMI. */
    public static final String ALLOCATION_ANNOTATION = "harvesterhci.io/deviceAllocationDetails";
    public static final String CONTROLLER_NAMESPACE = "harvester-system";
    public static final String CONTROLLER_POD_SELECTOR = "app.kubernetes.io/name=harvester-pcidevices-controller";
    public static final String DRIVER_VFIO = "vfio-pci";

    /**
     * wrangler's OnRemove finalizer ("wrangler.cattle.io/" + handler name, rancher/wrangler pkg/generic/remove.go):
     * added to every claim; only the pcidevices agent on the claim's spec.nodeName removes it, after giving the device back.
     */
    public static final String CLAIM_FINALIZER = "wrangler.cattle.io/PCIDeviceClaimOnRemove";
    /** PCIDeviceClaim spec field (pcidevices v1.9): one resource per device instead of one per model; read only at claim creation. */
    public static final String DISABLE_POOLING_FIELD = "disableResourcePooling";
    /** PCIDevice annotation the claim controller sets for a per-device (or vGPU) resource name. */
    public static final String OVERRIDE_RESOURCE_NAME_ANNOTATION = "pcidevice.harvesterhci.io/override-resource-name";
    /** Node label (Harvester v1.9) reserving a node's NVIDIA GPUs for bare-metal container workloads: no GPU claims there. */
    public static final String BAREMETAL_GPU_LABEL = "harvesterhci.io/gpu-baremetal-workloads";
    public static final String NVIDIA_VENDOR_ID = "10de";

    /** Harvester's own API group (Addon, Setting), not the pcidevices one. */
    public static final String HARVESTER_GROUP = "harvesterhci.io";
    public static final ResourceDefinitionContext ADDONS = new ResourceDefinitionContext.Builder()
            .withGroup(HARVESTER_GROUP).withVersion("v1beta1").withKind("Addon").withPlural("addons")
            .withNamespaced(true).build();
    public static final ResourceDefinitionContext SETTINGS = new ResourceDefinitionContext.Builder()
            .withGroup(HARVESTER_GROUP).withVersion("v1beta1").withKind("Setting").withPlural("settings")
            .withNamespaced(false).build();
    /** The add-on that deploys the pcidevices controller (disabled by default on a fresh install). */
    public static final String ADDON_NAMESPACE = "harvester-system";
    public static final String ADDON_NAME = "pcidevices-controller";
    /** Addon status.status values (harvester/harvester pkg/apis/harvesterhci.io/v1beta1/addon.go). */
    public static final String ADDON_DEPLOYED = "AddonDeploySuccessful";
    public static final String ADDON_ENABLING = "AddonEnabling";
    public static final String ADDON_UPDATING = "AddonUpdating";
    public static final String ADDON_DISABLING = "AddonDisabling";
    public static final String ADDON_DISABLED = "AddonDisabled";
    /** Setting holding the Harvester version, e.g. v1.9.0 (field `value`). */
    public static final String SERVER_VERSION_SETTING = "server-version";

    /** The command that enables the add-on (what the UI's Add-ons page does). */
    public static String addonEnableCommand() {
        return "kubectl -n " + ADDON_NAMESPACE + " patch addons.harvesterhci.io " + ADDON_NAME
                + " --type merge -p '{\"spec\":{\"enabled\":true}}'";
    }

    /**
     * The resource name of a device claimed with resource pooling off: the pooled name's vendor
     * prefix + "/" + the PCIDevice name (ensureIndividualDeviceResourceName), e.g.
     * nvidia.com/GA102_GEFORCE_RTX_3090 + altra-000c01000 → nvidia.com/altra-000c01000.
     */
    public static String perDeviceResourceName(String pooledResourceName, String deviceName) {
        int slash = pooledResourceName == null ? -1 : pooledResourceName.indexOf('/');
        String prefix = slash < 0 ? "" : pooledResourceName.substring(0, slash);
        return prefix + "/" + deviceName;
    }

    /** Whether a resource name is the per-device name of that PCIDevice (pooling off). */
    public static boolean isPerDeviceResourceName(String resourceName, String deviceName) {
        return resourceName != null && deviceName != null && resourceName.endsWith("/" + deviceName);
    }

    /** Whether a claim asks for resource pooling off (spec.disableResourcePooling). */
    public static boolean poolingDisabled(GenericKubernetesResource claim) {
        return Boolean.TRUE.equals(claim.get("spec", DISABLE_POOLING_FIELD));
    }

    /** Whether an object carries the claim finalizer. */
    public static boolean hasClaimFinalizer(GenericKubernetesResource claim) {
        List<String> f = claim.getMetadata().getFinalizers();
        return f != null && f.contains(CLAIM_FINALIZER);
    }

    private static final Pattern ADDRESS = Pattern.compile("^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\\.[0-7]$");

    public static MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> pciDevices(KubernetesClient c) {
        return c.genericKubernetesResources(PCI_DEVICES);
    }

    public static MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> pciDeviceClaims(KubernetesClient c) {
        return c.genericKubernetesResources(PCI_DEVICE_CLAIMS);
    }

    /** Addons in harvester-system (where Harvester keeps them). */
    public static io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> addons(KubernetesClient c) {
        return c.genericKubernetesResources(ADDONS).inNamespace(ADDON_NAMESPACE);
    }

    public static MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList, Resource<GenericKubernetesResource>> settings(KubernetesClient c) {
        return c.genericKubernetesResources(SETTINGS);
    }

    /** PCIDeviceNameForHostname: "altra" + "000c:01:00.0" → "altra-000c01000". Claims carry the same name. */
    public static String pciDeviceName(String node, String address) {
        return node + "-" + address.replace(":", "").replace(".", "");
    }

    public static boolean isValidAddress(String address) {
        return address != null && ADDRESS.matcher(address).matches();
    }

    /** The PCIDevice of that name, or a NOT_FOUND error that says how to list them. */
    public static PciDevice device(KubernetesClient c, String name) {
        GenericKubernetesResource r = pciDevices(c).withName(name).get();
        if (r == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "PCIDevice \"" + name + "\" not found — list devices with: inventory");
        }
        return PciDevice.of(r);
    }

    /** The PCIDevice at a node's PCI address (e.g. altra, 000c:01:00.0); the address is validated first. */
    public static PciDevice device(KubernetesClient c, String node, String address) {
        if (!isValidAddress(address)) {
            throw new Cli.UserError(Cli.Exit.USAGE, "malformed PCI address \"" + address
                    + "\" — use the full form domain:bus:device.function in lower-case hex, e.g. 000c:01:00.0");
        }
        GenericKubernetesResource r = pciDevices(c).withName(pciDeviceName(node, address)).get();
        if (r == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "no PCIDevice at " + address + " on node \"" + node
                    + "\" — list the node's devices with: inventory --node " + node);
        }
        return PciDevice.of(r);
    }

    /** A PCIDevice as the controller reports it (everything lives in status; spec is empty). */
    public record PciDevice(String name, String uid, String node, String address, String vendorId, String deviceId,
                            String classId, String iommuGroup, String resourceName, String description, String driver) {
        public static PciDevice of(GenericKubernetesResource r) {
            return new PciDevice(r.getMetadata().getName(), r.getMetadata().getUid(),
                    str(r, "status", "nodeName"), str(r, "status", "address"), str(r, "status", "vendorId"),
                    str(r, "status", "deviceId"), str(r, "status", "classId"), str(r, "status", "iommuGroup"),
                    str(r, "status", "resourceName"), str(r, "status", "description"),
                    str(r, "status", "kernelDriverInUse"));
        }

        public String vendorDevice() {
            return vendorId + ":" + deviceId;
        }

        public String groupKey() {
            return node + "/" + iommuGroup;
        }
    }

    /** A PCIDeviceClaim: spec says what is wanted, status says whether passthrough is on. */
    public record PciDeviceClaim(String name, String node, String address, String userName,
                                 boolean passthroughEnabled, String kernelDriverToUnbind,
                                 List<OwnerReference> owners) {
        public static PciDeviceClaim of(GenericKubernetesResource r) {
            Object enabled = r.get("status", "passthroughEnabled");
            return new PciDeviceClaim(r.getMetadata().getName(), str(r, "spec", "nodeName"), str(r, "spec", "address"),
                    str(r, "spec", "userName"), Boolean.TRUE.equals(enabled), str(r, "status", "kernelDriverToUnbind"),
                    r.getMetadata().getOwnerReferences() == null ? List.of() : r.getMetadata().getOwnerReferences());
        }

        /** The controller finds the device only through ownerReferences[0] ("Cannot find PCIDevice that owns ..."). */
        public boolean ownedBy(PciDevice d) {
            return !owners.isEmpty() && "PCIDevice".equals(owners.get(0).getKind())
                    && d.name().equals(owners.get(0).getName());
        }
    }

    /** The devices of one node that share an IOMMU group: passthrough needs all of them on vfio-pci. */
    public record IommuGroup(String node, String group, List<PciDevice> devices) {
        public String key() {
            return node + "/" + group;
        }
    }

    /** Groups devices by (node, IOMMU group), ordered by node then numeric group; each group by address. */
    public static List<IommuGroup> iommuGroups(List<PciDevice> devices) {
        Map<String, List<PciDevice>> byKey = new LinkedHashMap<>();
        devices.stream()
                .sorted(Comparator.comparing(PciDevice::node, Comparator.nullsLast(Comparator.naturalOrder()))
                        .thenComparing(d -> groupOrder(d.iommuGroup()))
                        .thenComparing(PciDevice::address, Comparator.nullsLast(Comparator.naturalOrder())))
                .forEach(d -> byKey.computeIfAbsent(d.groupKey(), k -> new ArrayList<>()).add(d));
        List<IommuGroup> groups = new ArrayList<>();
        byKey.values().forEach(ds -> groups.add(new IommuGroup(ds.get(0).node(), ds.get(0).iommuGroup(), List.copyOf(ds))));
        return groups;
    }

    private static long groupOrder(String g) {
        try {
            return Long.parseLong(g);
        } catch (RuntimeException e) {
            return Long.MAX_VALUE;
        }
    }

    static String str(GenericKubernetesResource r, Object... path) {
        Object v = r.get(path);
        return v == null ? null : v.toString();
    }
}
