import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * Cluster states the pcidevices controller would have produced, written straight into the
 * simulator, for tests about what comes after a claim (inventory, attach, diagnose).
 */
public final class Seed {
    private Seed() {}

    public static final String GPU = "altra-000c01000";
    public static final String AUDIO = "altra-000c01001";
    public static final String GPU_RES = "nvidia.com/GA102_GEFORCE_RTX_3090";
    public static final String AUDIO_RES = "nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER";

    /**
     * A claim like the UI makes (ownerReference to the live PCIDevice, userName); enabled: the
     * controller has finished with it (status.passthroughEnabled, device on vfio-pci).
     */
    public static void claim(SimCluster sim, String name, String user, boolean enabled) {
        GenericKubernetesResource d = Harvester.pciDevices(sim.admin()).withName(name).get();
        sim.create(Serialization.unmarshal("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata:
                  name: %s
                  ownerReferences: [{apiVersion: devices.harvesterhci.io/v1beta1, kind: PCIDevice, name: %s, uid: %s}]
                spec: {address: "%s", nodeName: %s, userName: %s}
                status: {passthroughEnabled: %s, kernelDriverToUnbind: %s}
                """.formatted(name, name, d.getMetadata().getUid(), d.get("status", "address"), d.get("status", "nodeName"), user,
                enabled, d.get("status", "kernelDriverInUse")), GenericKubernetesResource.class));
        if (enabled) driver(sim, name, Harvester.DRIVER_VFIO);
    }

    /** A second RTX 3090 on altra, alone in IOMMU group 19, besides the seeded group 18 (both claimed, ready, allocatable 2). */
    public static final String SECOND_GPU = "altra-000c02000";

    public static void secondGpuReady(SimCluster sim) {
        sim.seed(SimCluster.parseDocuments("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDevice
                metadata:
                  name: altra-000c02000
                  labels: {nodename: altra}
                  annotations: {harvesterhci.io/pcideviceDriver: nouveau}
                spec: {}
                status: {address: "000c:02:00.0", vendorId: "10de", deviceId: "2204", classId: "0300", iommuGroup: "19", nodeName: altra,
                  resourceName: nvidia.com/GA102_GEFORCE_RTX_3090, kernelDriverInUse: nouveau,
                  description: "VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090]"}
                """));
        gpuReady(sim);
        claim(sim, SECOND_GPU, "admin", true);
        sim.admin().nodes().withName("altra").editStatus(n -> {
            n.getStatus().getAllocatable().put(GPU_RES, new Quantity("2"));
            return n;
        });
    }

    /** Sets a PCIDevice's status.kernelDriverInUse. */
    @SuppressWarnings("unchecked")
    public static void driver(SimCluster sim, String device, String driver) {
        Harvester.pciDevices(sim.admin()).withName(device).editStatus(x -> {
            ((Map<String, Object>) x.getAdditionalProperties().get("status")).put("kernelDriverInUse", driver);
            return x;
        });
    }

    /**
     * The end state of `claim altra-000c01000`: both functions of IOMMU group 18 claimed and on
     * vfio-pci, both resources in the KubeVirt CR's permittedHostDevices and allocatable on altra.
     */
    public static void gpuReady(SimCluster sim) {
        for (String n : List.of(GPU, AUDIO)) claim(sim, n, "admin", true);
        KubeVirt.kubevirts(sim.admin()).inNamespace("harvester-system").withName("kubevirt").edit(kv -> {
            Map<String, Object> phd = kv.get("spec", "configuration", "permittedHostDevices");
            phd.put("pciHostDevices", new java.util.ArrayList<>(List.of(
                    Map.of("pciVendorSelector", "10de:2204", "resourceName", GPU_RES, "externalResourceProvider", true),
                    Map.of("pciVendorSelector", "10de:1aef", "resourceName", AUDIO_RES, "externalResourceProvider", true))));
            return kv;
        });
        sim.admin().nodes().withName("altra").editStatus(n -> {
            for (String r : List.of(GPU_RES, AUDIO_RES)) {
                n.getStatus().getAllocatable().put(r, new Quantity("1"));
                n.getStatus().getCapacity().put(r, new Quantity("1"));
            }
            return n;
        });
    }
}
