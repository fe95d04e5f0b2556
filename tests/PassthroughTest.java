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
            Seed.gpuReady(sim);
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
