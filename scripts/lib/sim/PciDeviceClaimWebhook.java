import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;

/**
 * The PCIDeviceClaim validator of harvester/pcidevices (pkg/webhook/pcideviceclaim.go, CREATE and
 * DELETE only). Denials are plain errors there, which Harvester's admission code turns into HTTP
 * 500 InternalError. failurePolicy is Ignore: while the controller pods are down, nothing is
 * validated. The simulator's own requests (fixtures) are not validated.
 */
final class PciDeviceClaimWebhook implements SimDispatcher.Interceptor {
    static final String WEBHOOK = "pcidevices.harvesterhci.io";
    private static final String CLAIMS = "/apis/" + Harvester.API_VERSION + "/pcideviceclaims";
    private static final Pattern ONE_CLAIM = Pattern.compile("^" + Pattern.quote(CLAIMS) + "/([^/?]+)(\\?.*)?$");
    private static final Pattern ALL_CLAIMS = Pattern.compile("^" + Pattern.quote(CLAIMS) + "(\\?.*)?$");

    private final SimCluster sim;

    PciDeviceClaimWebhook(SimCluster sim) {
        this.sim = sim;
    }

    @Override
    public MockResponse intercept(RecordedRequest request, String path) {
        if (SimDispatcher.fromSimulator(request) || sim.fault(Fault.CONTROLLER_DOWN) || sim.fault(Fault.ADDON_DISABLED)) return null;
        if ("POST".equals(request.getMethod()) && ALL_CLAIMS.matcher(path).matches()) {
            GenericKubernetesResource claim = Serialization.unmarshal(
                    new String(request.getBody().getBytes(), StandardCharsets.UTF_8), GenericKubernetesResource.class);
            return create(claim.getMetadata() == null ? null : claim.getMetadata().getName(), claim);
        }
        Matcher m = ONE_CLAIM.matcher(path);
        if ("DELETE".equals(request.getMethod()) && m.matches()) return delete(m.group(1));
        return null;
    }

    /**
     * Create(): the PCIDevice of the claim's name must exist and have an IOMMU group; since v1.9
     * (pcidevices PR #296) an NVIDIA GPU on a node labelled for bare-metal GPU workloads is refused.
     */
    private MockResponse create(String name, GenericKubernetesResource claim) {
        GenericKubernetesResource device = name == null ? null
                : sim.dispatcher().read("/apis/" + Harvester.API_VERSION + "/pcidevices/" + name);
        if (device == null) return deny("pcidevices." + Harvester.GROUP + " \"" + name + "\" not found");
        Object group = device.get("status", "iommuGroup");
        if (group == null || group.toString().isEmpty()) return deny("pcidevice " + name + " has no iommuGroup available");
        Object nodeName = claim.get("spec", "nodeName");
        GenericKubernetesResource node = nodeName == null ? null : sim.dispatcher().read("/api/v1/nodes/" + nodeName);
        Map<String, String> labels = node == null ? null : node.getMetadata().getLabels();
        if (labels != null && "true".equals(labels.get(Harvester.BAREMETAL_GPU_LABEL)) && nvidiaGpu(device)) {
            // Our wording: PR #296's message was not found (Test_CreateGPUDeviceClaimForBaremetalWorkloadNode);
            // written in the style of the other pcidevices webhook messages.
            return deny("pcidevice " + name + " is an nvidia gpu on node " + nodeName + " which is labelled "
                    + Harvester.BAREMETAL_GPU_LABEL + "=true for baremetal gpu workloads, it cannot be claimed for passthrough");
        }
        return null;
    }

    /** An NVIDIA display controller (class 03xx: VGA 0300, 3D 0302). */
    static boolean nvidiaGpu(GenericKubernetesResource device) {
        Object vendor = device.get("status", "vendorId");
        Object cls = device.get("status", "classId");
        return Harvester.NVIDIA_VENDOR_ID.equals(String.valueOf(vendor)) && cls != null && cls.toString().startsWith("03");
    }

    /** Delete(): refused while a VM's allocation annotation lists the claimed device. */
    private MockResponse delete(String name) {
        if (sim.dispatcher().read(CLAIMS + "/" + name) == null) return null; // the store answers 404
        GenericKubernetesResource vms = sim.dispatcher().read("/apis/kubevirt.io/v1/virtualmachines");
        Object items = vms == null ? null : vms.getAdditionalProperties().get("items");
        if (!(items instanceof List<?> list)) return null;
        for (Object o : list) {
            GenericKubernetesResource vm = Serialization.jsonMapper().convertValue(o, GenericKubernetesResource.class);
            for (Map.Entry<String, List<String>> e : KubeVirt.allocatedDevices(vm).entrySet()) {
                if (e.getValue().contains(name)) {
                    return deny("pcideviceclaim " + name + " is already in use with vm " + vm.getMetadata().getName()
                            + " in namespace " + vm.getMetadata().getNamespace());
                }
            }
        }
        return null;
    }

    static MockResponse deny(String message) {
        return SimDispatcher.status(500, "InternalError", "admission webhook \"" + WEBHOOK + "\" denied the request: " + message);
    }
}
