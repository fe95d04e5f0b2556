import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** detach: the undo of attach — exactly one entry out, the others kept, restart, wait. */
class DetachTest {
    static final String GPU = Seed.GPU;
    static final String RES = Seed.GPU_RES;

    SimCluster sim;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
        Seed.gpuReady(sim);
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    void attached() {
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertEquals(List.of(DockerHost.USB, DockerHost.GPU_ENTRY), DockerHost.hostDevices(sim));
        // settled: pcidevices has recorded the allocation of the new instance (tests edit the VM next)
        DockerHost.eventually(() -> KubeVirt.allocatedDevices(DockerHost.vm(sim)).get(Seed.GPU_RES), "allocation annotation");
    }

    @Test
    void removesExactlyThatDeviceRestartsAndWaits() {
        attached();
        String uid = DockerHost.vmi(sim).getMetadata().getUid();
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.contains("virtualmachine.kubevirt.io/docker-host patched (hostDevices: -altra-000c01000)"), r.all());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("restarting virtualmachine.kubevirt.io/docker-host")), r.all());
        assertEquals("docker-host Running on altra without altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)", lines.get(lines.size() - 1));
        assertEquals(List.of(DockerHost.USB), DockerHost.hostDevices(sim));
        assertNotEquals(uid, DockerHost.vmi(sim).getMetadata().getUid());
        assertFalse(VmRestart.hasDevice(DockerHost.vmi(sim), RES));
        assertTrue(VmRestart.hasDevice(DockerHost.vmi(sim), DockerHost.USB_RES));
    }

    @Test
    void aChangeAfterTheVmWasReadGives409AndIsRetriedWithoutLosingIt() {
        attached();
        String vmPath = "/apis/kubevirt.io/v1/namespaces/default/virtualmachines/docker-host";
        AtomicBoolean edited = new AtomicBoolean();
        // Someone edits the VM after detach read it (while it reads the PCIDevice): the VM it read is stale when it writes.
        sim.addInterceptor((req, path) -> {
            if ("GET".equals(req.getMethod()) && path.equals("/apis/devices.harvesterhci.io/v1beta1/pcidevices/" + GPU)
                    && !SimDispatcher.fromSimulator(req) && edited.compareAndSet(false, true)) {
                String patch = "{\"metadata\":{\"labels\":{\"edited-by\":\"someone-else\"}}}";
                sim.dispatcher().handlePatch(new RecordedRequest("HTTP/1.1", io.fabric8.mockwebserver.dsl.HttpMethod.PATCH, vmPath,
                        new Headers.Builder().add("Content-Type", "application/merge-patch+json").build(), new Buffer(patch.getBytes())));
            }
            return null;
        });
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(edited.get(), "the VM was edited during the run");
        assertTrue(r.out().contains("(409 Conflict) — re-reading and retrying (1/5)"), r.all());
        assertEquals("someone-else", DockerHost.vm(sim).getMetadata().getLabels().get("edited-by"));
        assertEquals(List.of(DockerHost.USB), DockerHost.hostDevices(sim));
    }

    @Test
    void aDeviceThatIsNotThereIsANoOp() {
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device", GPU);
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("virtualmachine.kubevirt.io/docker-host unchanged (no hostDevices entry altra-000c01000)"), r.all());
        assertTrue(r.out().contains("docker-host Running on altra without altra-000c01000"), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
    }

    @Test
    void byResourceNameAloneAndWithARenamedEntry() {
        // the pcidevices controller may have renamed the entry; deviceName still identifies it
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            VmHostDevices.setDevices(vm, List.of(Map.of("name", DockerHost.USB.name(), "deviceName", DockerHost.USB_RES),
                    Map.of("name", "gpu1", "deviceName", RES)), List.of());
            return vm;
        });
        String uid = DockerHost.vmi(sim).getMetadata().getUid();
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device-name", RES);
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("patched (hostDevices: -gpu1)"), r.all());
        // the running instance was started before gpu1 was added: nothing to restart
        assertTrue(r.out().contains("docker-host Running on altra without nvidia.com/GA102_GEFORCE_RTX_3090\n"), r.all());
        assertEquals(uid, DockerHost.vmi(sim).getMetadata().getUid());
        assertEquals(List.of(DockerHost.USB), DockerHost.hostDevices(sim));
    }

    @Test
    void twoEntriesWithTheSameResourceNeedTheDeviceName() {
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            VmHostDevices.setDevices(vm, List.of(Map.of("name", "gpu1", "deviceName", RES), Map.of("name", "gpu2", "deviceName", RES)), List.of());
            return vm;
        });
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device-name", RES);
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertTrue(r.err().contains("2 hostDevices entries have deviceName nvidia.com/GA102_GEFORCE_RTX_3090 (gpu1 (nvidia.com/GA102_GEFORCE_RTX_3090), gpu2"), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
    }

    @Test
    void unknownVmOrDeviceIsNotFoundAndChangesNothing() {
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new detach(), "nope", "--device", GPU);
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        r = Run.against(sim, new detach(), "docker-host", "--device", "altra-0000ff000");
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
    }

    @Test
    void dryRunShowsTheListsAndTouchesNothing() throws Exception {
        attached();
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--dry-run", "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode j = Serialization.jsonMapper().readTree(r.out());
        assertEquals(2, j.get("hostDevicesBefore").size());
        assertEquals(1, j.get("hostDevicesAfter").size());
        assertEquals("altra-0951-1666-003002", j.at("/hostDevicesAfter/0/name").asText());
        assertTrue(j.get("dryRun").asBoolean());
        assertEquals(List.of(), DockerHost.writes(sim));
        assertEquals(List.of(DockerHost.USB, DockerHost.GPU_ENTRY), DockerHost.hostDevices(sim));
    }

    @Test
    void aRestartThatFailsAfterThePatchSaysWhatChangedAndHowToUndo() {
        attached();
        // runStrategy Once: the instance runs, but virt-api refuses manual restarts
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            ((Map<String, Object>) vm.getAdditionalProperties().get("spec")).put("runStrategy", "Once");
            return vm;
        });
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device", GPU);
        assertEquals(Cli.Exit.REJECTED.code, r.exit(), r.all());
        assertEquals("detach: restart of docker-host refused (409): Operation cannot be fulfilled on virtualmachine.kubevirt.io \"docker-host\": "
                + "RunStategy Once does not support manual restart requests — changed: virtualmachine.kubevirt.io spec "
                + "(hostDevices: -altra-000c01000, unpinned from node altra (attach had pinned it)); undo: attach docker-host --device altra-000c01000", r.err().trim());
        assertEquals(List.of(DockerHost.USB), DockerHost.hostDevices(sim));
    }

    @Test
    void aUsbDevicesResourceNameIsRefusedNeverRemovedSilently() {
        attached();
        List<KubeVirt.HostDevice> before = DockerHost.hostDevices(sim);
        Run.Result r = Run.against(sim, new detach(), "docker-host", "--device-name", DockerHost.USB_RES, "--node", "altra");
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertTrue(r.err().contains(DockerHost.USB_RES + " is USB device altra-0951-1666-003002"), r.all());
        assertTrue(r.err().contains("detach removes PCI devices only"), r.all());
        assertEquals(before, DockerHost.hostDevices(sim), "the USB stick stays");
    }
}
