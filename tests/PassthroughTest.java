import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

/** The shared definition of "ready for a VM" that claim waits for, attach requires and diagnose reports. */
class PassthroughTest {
    @Test
    void freshClusterFailsEveryCheckWithAFix() {
        try (SimCluster sim = SimCluster.start()) {
            Passthrough.State s = Passthrough.read(sim.admin(), Harvester.device(sim.admin(), "altra-000c01000"));
            assertEquals(List.of("altra-000c01000", "altra-000c01001"), s.group().stream().map(Harvester.PciDevice::name).toList());
            assertFalse(s.ready());
            List<String> failing = s.failing().stream().map(c -> c.id() + ":" + c.subject()).toList();
            assertEquals(List.of("claimed:altra-000c01000", "claimed:altra-000c01001", "permitted:altra-000c01000",
                    "allocatable:altra-000c01000"), failing);
            assertEquals("claim altra-000c01000", s.failing().get(1).fix());
            assertTrue(s.failing().get(1).evidence().contains("shares IOMMU group 18"), s.failing().get(1).evidence());
        }
    }

    @Test
    void readyWhenTheWholeGroupIsOnVfioAndTheResourceIsPermittedAndAllocatable() {
        try (SimCluster sim = SimCluster.start()) {
            var c = sim.admin();
            for (String n : List.of("altra-000c01000", "altra-000c01001")) {
                GenericKubernetesResource d = Harvester.pciDevices(c).withName(n).get();
                sim.create(Serialization.unmarshal("""
                        apiVersion: devices.harvesterhci.io/v1beta1
                        kind: PCIDeviceClaim
                        metadata:
                          name: %s
                          ownerReferences: [{apiVersion: devices.harvesterhci.io/v1beta1, kind: PCIDevice, name: %s, uid: %s}]
                        spec: {address: "%s", nodeName: altra, userName: admin}
                        status: {passthroughEnabled: true, kernelDriverToUnbind: nouveau}
                        """.formatted(n, n, d.getMetadata().getUid(), d.get("status", "address")), GenericKubernetesResource.class));
                Harvester.pciDevices(c).withName(n).editStatus(x -> {
                    ((Map<String, Object>) x.getAdditionalProperties().get("status")).put("kernelDriverInUse", "vfio-pci");
                    return x;
                });
            }
            KubeVirt.kubevirts(c).inNamespace("harvester-system").withName("kubevirt").edit(kv -> {
                Map<String, Object> phd = kv.get("spec", "configuration", "permittedHostDevices");
                phd.put("pciHostDevices", List.of(Map.of("pciVendorSelector", "10de:2204",
                        "resourceName", "nvidia.com/GA102_GEFORCE_RTX_3090", "externalResourceProvider", true)));
                return kv;
            });
            c.nodes().withName("altra").editStatus(n -> {
                n.getStatus().getAllocatable().put("nvidia.com/GA102_GEFORCE_RTX_3090", new Quantity("1"));
                return n;
            });
            Passthrough.State s = Passthrough.read(c, Harvester.device(c, "altra-000c01000"));
            assertTrue(s.ready(), s.failing().toString());
            assertEquals(10, s.checks().size());
        }
    }

    @Test
    void addressesAreValidatedBeforeAnyLookup() {
        try (SimCluster sim = SimCluster.start()) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(Cli.UserError.class,
                    () -> Harvester.device(sim.admin(), "altra", "0c:1:0"));
            assertEquals(Cli.Exit.USAGE, e.exit);
            assertEquals(Cli.Exit.NOT_FOUND, org.junit.jupiter.api.Assertions.assertThrows(Cli.UserError.class,
                    () -> Harvester.device(sim.admin(), "altra", "000c:02:00.0")).exit);
        }
    }
}
