import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

/**
 * Resource pooling off (Harvester v1.9 spec.disableResourcePooling) end to end in the sandbox: the
 * claimed GPU gets its own resource nvidia.com/altra-000c01000; inventory shows it, attach writes it
 * as the VM's deviceName, the VM runs with it, verify finds the GPU in the guest and diagnose is clean.
 */
class PoolingOffTest {
    static final String GPU = Seed.GPU;
    static final String AUDIO = Seed.AUDIO;
    static final String PER_DEVICE = "nvidia.com/" + GPU;

    static List<String> with(List<String> args, List<String> more) {
        List<String> all = new ArrayList<>(args);
        all.addAll(more);
        return all;
    }

    @Test
    void theBundledPatchMeansTheNamedGpuUnderItsOwnResourceNotAnotherNodesPooledOne() throws Exception {
        try (SimCluster sim = SimCluster.start(HarvesterV19SimTest.fast()); KubernetesClient c = HarvesterV19SimTest.user(sim)) {
            // the patch says {name: altra-000c01000, deviceName: nvidia.com/GA102_GEFORCE_RTX_3090}; with pooling off only
            // bravo's GPU still has that pooled name
            HarvesterV19SimTest.claimAndWait(sim, c, GPU, true);
            HarvesterV19SimTest.claimAndWait(sim, c, AUDIO, true);
            HarvesterV19SimTest.eventually("allocatable per device", () -> "1".equals(HarvesterV19SimTest.allocatable(sim, "altra", PER_DEVICE)));
            Run.Result r = Run.against(sim, new attach(), "docker-host", "--dry-run");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains(GPU) && r.out().contains(PER_DEVICE), r.all());
            assertTrue(!r.all().contains("bravo"), "not another node's GPU: " + r.all());
        }
    }

    @Test
    void claimWithPoolingOffThenAttachThenVerifyInTheSandbox() throws Exception {
        Path dir = Files.createTempDirectory("pooling-off-");
        try (Sandbox box = Sandbox.start(dir, HarvesterV19SimTest.fast()); KubernetesClient c = HarvesterV19SimTest.user(box.cluster())) {
            SimCluster sim = box.cluster();
            // claim --no-pooling altra-000c01000: both functions of IOMMU group 18, each under its own resource
            Run.Result claim = Run.script(new claim(), with(List.of(GPU, "--no-pooling", "--timeout", "30"), box.kubeFlags()).toArray(new String[0]));
            assertEquals(0, claim.exit(), claim.all());
            for (String d : List.of(GPU, AUDIO)) {
                assertEquals(true, Harvester.pciDeviceClaims(sim.admin()).withName(d).get().get("spec", "disableResourcePooling"), claim.all());
            }
            HarvesterV19SimTest.eventually("allocatable per device", () -> "1".equals(HarvesterV19SimTest.allocatable(sim, "altra", PER_DEVICE)));

            Run.Result inv = Run.script(new inventory(), with(List.of("--node", "altra"), box.kubeFlags()).toArray(new String[0]));
            assertEquals(0, inv.exit(), inv.all());
            assertTrue(inv.out().contains("NOTE: " + GPU + " has resource pooling off: its resource is " + PER_DEVICE + " (attach writes that name)"), inv.out());
            Run.Result invJson = Run.script(new inventory(), with(List.of("--node", "altra", "-o", "json"), box.kubeFlags()).toArray(new String[0]));
            JsonNode gpu = null;
            for (JsonNode d : Serialization.jsonMapper().readTree(invJson.out()).get("devices")) if (d.get("name").asText().equals(GPU)) gpu = d;
            assertEquals(PER_DEVICE, gpu.get("resourceName").asText(), invJson.out());

            Run.Result attach = Run.script(new attach(), with(List.of("docker-host", "--device", GPU, "--timeout", "30"), box.kubeFlags()).toArray(new String[0]));
            assertEquals(0, attach.exit(), attach.all());
            assertTrue(attach.out().contains("docker-host Running on altra with " + GPU + " (" + PER_DEVICE + ")"), attach.all());
            GenericKubernetesResource vm = KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get();
            assertTrue(KubeVirt.hostDevices(vm).stream().anyMatch(h -> GPU.equals(h.name()) && PER_DEVICE.equals(h.deviceName())),
                    "the VM asks for the device's own resource: " + Serialization.asJson(vm));
            GenericKubernetesResource vmi = KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").get();
            assertEquals("Running", String.valueOf((Object) vmi.get("status", "phase")));
            assertTrue(KubeVirt.hostDevices(vmi).stream().anyMatch(h -> PER_DEVICE.equals(h.deviceName())), Serialization.asJson(vmi));
            HarvesterV19SimTest.eventually("allocation annotation names the GPU under its own resource", () -> List.of(GPU).equals(
                    KubeVirt.allocatedDevices(KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get()).get(PER_DEVICE)));

            Run.Result verify = Run.script(new verify(), with(with(List.of("docker-host"), box.kubeFlags()), box.sshFlags()).toArray(new String[0]));
            assertEquals(0, verify.exit(), verify.all());
            assertTrue(verify.out().lines().anyMatch(l -> l.contains(PER_DEVICE) && l.contains("10de:2204")), verify.out());
            assertTrue(verify.out().contains("RESULT: PASS"), verify.out());
            Run.Result byName = Run.script(new verify(), with(with(List.of("docker-host", "--device-name", PER_DEVICE), box.kubeFlags()), box.sshFlags())
                    .toArray(new String[0]));
            assertEquals(0, byName.exit(), byName.all());

            Run.Result diagnose = Run.script(new diagnose(), with(List.of("docker-host", "--device", GPU, "-o", "json"), box.kubeFlags()).toArray(new String[0]));
            for (JsonNode f : Serialization.jsonMapper().readTree(diagnose.out())) {
                assertTrue(!f.get("status").asText().equals("FAIL"), "no FAIL with pooling off: " + f + "\n" + diagnose.out());
            }

            // detach with the bundled patch (pooled name, PCIDevice name) removes the per-device entry
            Run.Result detach = Run.script(new detach(), with(List.of("docker-host", "--timeout", "30"), box.kubeFlags()).toArray(new String[0]));
            assertEquals(0, detach.exit(), detach.all());
            assertTrue(KubeVirt.hostDevices(KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get()).stream()
                    .noneMatch(h -> PER_DEVICE.equals(h.deviceName())), detach.all());
        }
    }
}
