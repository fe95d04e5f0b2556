import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** claim → attach → detach → unclaim returns the VM spec to its initial state (issue 13 item 4). */
class CycleTest {
    SimCluster sim;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    static Map<String, Object> spec(GenericKubernetesResource vm) {
        return Serialization.clone(vm.<Map<String, Object>>get("spec"));
    }

    @Test
    void theFullCycleLeavesTheVmSpecAsItWas() {
        Map<String, Object> initial = spec(DockerHost.vm(sim));
        assertNull(KubeVirt.pinnedNode(DockerHost.vm(sim)), "the sandbox VM starts unpinned");

        Run.Result claimed = Run.against(sim, new claim(), Seed.GPU, "--timeout", "60");
        assertEquals(0, claimed.exit(), claimed.all());
        Run.Result attached = Run.against(sim, new attach(), "docker-host", "--device", Seed.GPU, "--timeout", "60");
        assertEquals(0, attached.exit(), attached.all());
        GenericKubernetesResource vm = DockerHost.vm(sim);
        assertEquals("altra", KubeVirt.pinnedNode(vm));
        assertEquals("{\"node\":\"altra\",\"devices\":[\"" + Seed.GPU + "\"]}",
                vm.getMetadata().getAnnotations().get(VmHostDevices.PINNED_BY_ATTACH), "attach records the pin visibly on the VM");

        Run.Result detached = Run.against(sim, new detach(), "docker-host", "--device", Seed.GPU, "--timeout", "60");
        assertEquals(0, detached.exit(), detached.all());
        assertTrue(detached.out().contains("virtualmachine.kubevirt.io/docker-host unpinned from node altra"), detached.all());
        // The allocation annotation follows the new instance asynchronously (KubeVirtController), as on a real cluster.
        DockerHost.eventually(() -> KubeVirt.allocatedDevices(DockerHost.vm(sim)).values().stream().noneMatch(l -> l.contains(Seed.GPU)),
                "allocation annotation without the GPU");
        Run.Result unclaimed = Run.against(sim, new claim(), Seed.GPU, "--delete", "--timeout", "60");
        assertEquals(0, unclaimed.exit(), unclaimed.all());

        vm = DockerHost.vm(sim);
        assertEquals(initial, spec(vm), "the VM spec is back to its initial state");
        assertNull(vm.getMetadata().getAnnotations().get(VmHostDevices.PINNED_BY_ATTACH));
        GenericKubernetesResource vmi = DockerHost.vmi(sim);
        assertNull(vmi.get("spec", "nodeSelector"), "the running instance is unpinned too");
    }

    @Test
    void aPinTheUserSetIsKeptAndTwoAttachedDevicesKeepThePinUntilTheLastGoes() {
        Seed.gpuReady(sim);
        Run.Result gpu = Run.against(sim, new attach(), "docker-host", "--device", Seed.GPU, "--timeout", "60");
        assertEquals(0, gpu.exit(), gpu.all());
        Run.Result audio = Run.against(sim, new attach(), "docker-host", "--device", Seed.AUDIO, "--timeout", "60");
        assertEquals(0, audio.exit(), audio.all());
        assertEquals("{\"node\":\"altra\",\"devices\":[\"" + Seed.GPU + "\",\"" + Seed.AUDIO + "\"]}",
                DockerHost.vm(sim).getMetadata().getAnnotations().get(VmHostDevices.PINNED_BY_ATTACH));
        Run.Result one = Run.against(sim, new detach(), "docker-host", "--device", Seed.GPU, "--no-restart");
        assertEquals(0, one.exit(), one.all());
        assertEquals("altra", KubeVirt.pinnedNode(DockerHost.vm(sim)), "the audio function still needs the pin");
        Run.Result two = Run.against(sim, new detach(), "docker-host", "--device", Seed.AUDIO, "--no-restart");
        assertEquals(0, two.exit(), two.all());
        assertNull(KubeVirt.pinnedNode(DockerHost.vm(sim)), "the last device took the pin with it");
        assertTrue(two.out().contains("unpinned from node altra"), two.all());

        // A pin the user set (no record) stays.
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(v -> {
            VmHostDevices.pin(v, "altra");
            return v;
        });
        Run.Result again = Run.against(sim, new attach(), "docker-host", "--device", Seed.GPU, "--no-restart");
        assertEquals(0, again.exit(), again.all());
        Run.Result off = Run.against(sim, new detach(), "docker-host", "--device", Seed.GPU, "--no-restart");
        assertEquals(0, off.exit(), off.all());
        assertEquals("altra", KubeVirt.pinnedNode(DockerHost.vm(sim)), "the user's own pin is kept");
    }
}
