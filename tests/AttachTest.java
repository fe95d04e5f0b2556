import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** attach end to end on the simulated cluster: the runbook's "Patch the VM" + "Restart" + waiting. */
class AttachTest {
    static final String GPU = "altra-000c01000";
    static final String AUDIO = "altra-000c01001";
    static final String RES = "nvidia.com/GA102_GEFORCE_RTX_3090";
    static final String USB_RES = DockerHost.USB_RES;
    static final KubeVirt.HostDevice USB = DockerHost.USB;
    static final KubeVirt.HostDevice GPU_ENTRY = DockerHost.GPU_ENTRY;
    static final String VM_PATH = "/apis/kubevirt.io/v1/namespaces/default/virtualmachines/docker-host";

    SimCluster sim;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    // ---- cluster set-up and read-back ------------------------------------------------------------

    /**
     * What the pcidevices controller writes once both functions of group 18 are claimed: claims with
     * passthroughEnabled, vfio-pci drivers, both resources permitted in the KubeVirt CR, and the GPU
     * in altra's allocatable (the claim controller is another issue's; this is its end state).
     */
    static void ready(SimCluster sim) {
        Seed.gpuReady(sim);
    }

    // ---- the happy path ----------------------------------------------------------------------------

    @Test
    void attachesKeepsTheUsbDevicePinsRestartsAndWaitsForTheNewInstance() {
        ready(sim);
        String oldUid = DockerHost.vmi(sim).getMetadata().getUid();
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.contains("virtualmachine.kubevirt.io/docker-host patched (hostDevices: +altra-000c01000)"), r.all());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("virtualmachine.kubevirt.io/docker-host pinned to node altra")), r.all());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("restarting virtualmachine.kubevirt.io/docker-host")), r.all());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("docker-host: ")), "phase progress: " + r.all());
        assertEquals("docker-host Running on altra with altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)", lines.get(lines.size() - 1));

        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
        assertEquals("altra", KubeVirt.pinnedNode(DockerHost.vm(sim)));
        GenericKubernetesResource vmi = DockerHost.vmi(sim);
        assertNotEquals(oldUid, vmi.getMetadata().getUid());
        assertEquals("Running", vmi.get("status", "phase"));
        assertEquals("altra", vmi.get("status", "nodeName"));
        assertTrue(VmRestart.hasDevice(vmi, RES) && VmRestart.hasDevice(vmi, USB_RES));
        assertEquals("127.0.0.1", ((List<Map<String, Object>>) vmi.get("status", "interfaces")).get(0).get("ipAddress"));
        // restart went through KubeVirt's subresource, never by deleting the VMI
        assertTrue(sim.clientRequests().contains("PUT /apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachines/docker-host/restart"),
                sim.clientRequests().toString());
        assertTrue(sim.clientRequests().stream().noneMatch(q -> q.startsWith("DELETE")), sim.clientRequests().toString());
        // the pcidevices VM controller records the allocation once the new instance runs
        DockerHost.eventually(() -> KubeVirt.allocatedDevices(DockerHost.vm(sim)).get(RES), "allocation annotation");
        assertEquals(List.of(GPU), KubeVirt.allocatedDevices(DockerHost.vm(sim)).get(RES));
    }

    @Test
    void withoutDeviceFlagsTheBundledPatchIsUsedAndARerunIsANoOp() {
        ready(sim);
        Run.Result first = Run.against(sim, new attach(), "docker-host", "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, first.exit(), first.all());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
        String uid = DockerHost.vmi(sim).getMetadata().getUid();
        String rv = DockerHost.vm(sim).getMetadata().getResourceVersion();

        sim.clearClientRequests();
        Run.Result again = Run.against(sim, new attach(), "docker-host", "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, again.exit(), again.all());
        assertTrue(again.out().contains("virtualmachine.kubevirt.io/docker-host unchanged (altra-000c01000 already in hostDevices)"), again.all());
        assertTrue(again.out().contains("docker-host Running on altra with altra-000c01000"), again.all());
        assertEquals(List.of(), DockerHost.writes(sim), "a re-run must not write or restart");
        assertEquals(uid, DockerHost.vmi(sim).getMetadata().getUid());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
        assertTrue(rv.compareTo("0") > 0);
    }

    @Test
    void fromTheCatalogLikeTheUserRunsIt(@TempDir Path elsewhere) throws Exception {
        ready(sim);
        Path jbangDir = elsewhere.resolve("jbang-home");
        Path work = Files.createDirectories(elsewhere.resolve("work"));
        Run.Result add = CatalogTest.jbang(work, jbangDir, "catalog", "add", "--name", "hv", Run.repoRoot().resolve("jbang-catalog.json").toString());
        assertEquals(Cli.Exit.OK.code, add.exit(), add.all());
        Run.Result r = CatalogTest.jbang(work, jbangDir, "attach@hv", "docker-host", "--kubeconfig", sim.kubeconfig().toString(), "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("docker-host Running on altra with altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)"), r.all());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
    }

    @Test
    void anExistingEntryIsRecognisedByDeviceNameWhateverItsName() {
        ready(sim);
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            VmHostDevices.setDevices(vm, List.of(Map.of("name", USB.name(), "deviceName", USB_RES), Map.of("name", "gpu1", "deviceName", RES)), List.of());
            VmHostDevices.pin(vm, "altra");
            return vm;
        });
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("unchanged"), r.all());
        // the running instance predates the entry: restarted so it takes effect
        assertTrue(r.out().contains("docker-host Running on altra with altra-000c01000"), r.all());
        assertEquals(List.of(USB, new KubeVirt.HostDevice("gpu1", RES)), DockerHost.hostDevices(sim));
    }

    @Test
    void jsonOutputReportsTheChangeAndTheInstance() throws Exception {
        ready(sim);
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "-o", "json", "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode j = Serialization.jsonMapper().readTree(r.out());
        assertTrue(j.get("changed").asBoolean());
        assertEquals("altra", j.get("pinnedTo").asText());
        assertEquals("RESTARTED", j.get("action").asText());
        assertEquals("Running", j.at("/vmi/phase").asText());
        assertEquals(1, j.get("hostDevicesBefore").size());
        assertEquals(2, j.get("hostDevicesAfter").size());
        assertTrue(r.err().contains("restarting"), "progress goes to stderr with -o json: " + r.all());
    }

    @Test
    void eachObjectIsReadOnceBeforeTheWrite() {
        ready(sim);
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        List<String> requests = sim.clientRequests();
        int write = requests.indexOf("PUT " + VM_PATH);
        assertTrue(write > 0, requests.toString());
        // The VM and the PCIDevice once each, then the device's group, the claims, the KubeVirt CR and the node; the VM as
        // read for the checks is the one written (no second read); no list of every PCIDevice (the VM has no gpus entries).
        assertEquals(List.of("GET " + VM_PATH, "GET /apis/devices.harvesterhci.io/v1beta1/pcidevices/" + GPU,
                "GET /apis/devices.harvesterhci.io/v1beta1/pcidevices?labelSelector=nodename%3Daltra",
                "GET /apis/devices.harvesterhci.io/v1beta1/pcideviceclaims",
                "GET /apis/kubevirt.io/v1/namespaces/harvester-system/kubevirts/kubevirt", "GET /api/v1/nodes/altra"),
                requests.subList(0, write), requests.toString());
        // After the write: the instance as it is now (judged after the write), the restart, and the wait's list and watch.
        assertEquals(List.of("GET /apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/docker-host",
                "PUT /apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachines/docker-host/restart"),
                requests.subList(write + 1, write + 3), requests.toString());
    }

    @Test
    void anEntryRemovedAfterTheChecksIsWrittenAgainNotTakenAsPresent() {
        ready(sim);
        Run.Result first = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, first.exit(), first.all());
        DockerHost.eventually(() -> KubeVirt.allocatedDevices(DockerHost.vm(sim)).get(RES), "allocation annotation");
        AtomicBoolean removed = new AtomicBoolean();
        // Someone removes the entry after attach read the VM for its checks (while it reads the node) and before it decides.
        sim.addInterceptor((req, path) -> {
            if ("GET".equals(req.getMethod()) && path.equals("/api/v1/nodes/altra") && !SimDispatcher.fromSimulator(req)
                    && removed.compareAndSet(false, true)) {
                // hostDevices is [USB, GPU] after the first attach
                String patch = "[{\"op\":\"remove\",\"path\":\"/spec/template/spec/domain/devices/hostDevices/1\"}]";
                sim.dispatcher().handlePatch(new RecordedRequest("HTTP/1.1", io.fabric8.mockwebserver.dsl.HttpMethod.PATCH, VM_PATH,
                        new Headers.Builder().add("Content-Type", "application/json-patch+json").build(), new Buffer(patch.getBytes())));
            }
            return null;
        });
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertTrue(removed.get(), "the entry was removed during the run");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        // "Already there" is decided on a fresh read, never on the VM read before the checks.
        assertTrue(r.out().contains("virtualmachine.kubevirt.io/docker-host patched (hostDevices: +altra-000c01000)"), r.all());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
    }

    // ---- retries -----------------------------------------------------------------------------------

    @Test
    void aConcurrentEditGives409AndIsRetriedWithoutLosingIt() {
        ready(sim);
        AtomicBoolean bumped = new AtomicBoolean();
        // Someone else edits the VM between our read and our write: the store really changes, our PUT is stale.
        sim.addInterceptor((req, path) -> {
            if ("PUT".equals(req.getMethod()) && path.startsWith(VM_PATH) && !SimDispatcher.fromSimulator(req) && bumped.compareAndSet(false, true)) {
                String patch = "{\"metadata\":{\"labels\":{\"edited-by\":\"someone-else\"}}}";
                sim.dispatcher().handlePatch(new RecordedRequest("HTTP/1.1", io.fabric8.mockwebserver.dsl.HttpMethod.PATCH, VM_PATH,
                        new Headers.Builder().add("Content-Type", "application/merge-patch+json").build(), new Buffer(patch.getBytes())));
            }
            return null;
        });
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("(409 Conflict) — re-reading and retrying (1/5)"), r.all());
        assertEquals("someone-else", DockerHost.vm(sim).getMetadata().getLabels().get("edited-by"));
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
    }

    @Test
    void theWebhookCacheRaceIsRetriedWithBackoffAndReported() {
        ready(sim);
        sim.faults().add(Fault.WEBHOOK_RACE);
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertEquals(2, KubeVirtController.of(sim).webhookRaceDenied());
        // fabric8 itself retries a 500 once, so two denials may be one or two of our retries
        assertTrue(r.out().contains("admission webhook: resource name " + RES + " not yet in the pcidevices cache — retrying in 0.5s (1/6)"), r.all());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
    }

    @Test
    void aWebhookThatNeverCatchesUpIsRejectedAfterBoundedRetries() {
        ready(sim);
        sim.faults().add(Fault.WEBHOOK_RACE);
        KubeVirtController.of(sim).webhookRaceDenials(100);
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "60");
        assertEquals(Cli.Exit.REJECTED.code, r.exit(), r.all());
        assertTrue(KubeVirtController.of(sim).webhookRaceDenied() >= 1 + VmDeviceChange.WEBHOOK_RETRIES);
        assertTrue(r.out().contains("(6/6)"), r.all());
        assertTrue(r.err().contains("restart the harvester-pcidevices-controller pod"), r.all());
        assertEquals(List.of(USB), DockerHost.hostDevices(sim));
    }

    // ---- failures while waiting --------------------------------------------------------------------

    @Test
    void notPermittedIsDiagnosedAtOnceWithWhatChangedAndTheUndo() {
        ready(sim);
        // The KubeVirt CR loses the resource after attach checked it (e.g. overwritten by another controller):
        // clients still read the permitted version they checked, KubeVirt renders from the store.
        String kvPath = "/apis/kubevirt.io/v1/namespaces/harvester-system/kubevirts/kubevirt";
        String permitted = Serialization.asJson(KubeVirt.kubevirts(sim.admin()).inNamespace("harvester-system").withName("kubevirt").get());
        KubeVirt.kubevirts(sim.admin()).inNamespace("harvester-system").withName("kubevirt").edit(kv -> {
            ((Map<String, Object>) kv.get("spec", "configuration", "permittedHostDevices")).remove("pciHostDevices");
            return kv;
        });
        sim.addInterceptor((req, path) -> "GET".equals(req.getMethod()) && path.equals(kvPath) && !SimDispatcher.fromSimulator(req)
                ? new io.fabric8.mockwebserver.http.MockResponse().setResponseCode(200).setHeader("Content-Type", "application/json").setBody(permitted)
                : null);
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "120");
        assertEquals(Cli.Exit.PARTIAL.code, r.exit(), r.all()); // not TIMEOUT: it stopped waiting at once
        assertTrue(r.err().contains("failed to render launch manifest: HostDevice nvidia.com/GA102_GEFORCE_RTX_3090 is not permitted in permittedHostDevices configuration"), r.all());
        assertTrue(r.err().contains("changed: virtualmachine.kubevirt.io spec (hostDevices: +altra-000c01000, pinned to node altra); undo: detach docker-host --device altra-000c01000"), r.all());
        assertEquals(1, r.err().lines().count(), r.all());
        GenericKubernetesResource vmi = DockerHost.vmi(sim);
        assertEquals("Pending", vmi.get("status", "phase"));
        assertEquals("FailedCreate", KubeVirt.condition(vmi, "Synchronized").get("reason"));
    }

    @Test
    void aTimeoutSaysWhatIsStillMissingWhatChangedAndHowToUndo() {
        sim.close();
        SimCluster.Options slow = new SimCluster.Options();
        slow.vmiPhaseDelay = Duration.ofSeconds(60);
        sim = SimCluster.start(slow);
        ready(sim);
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--timeout", "1");
        assertEquals(Cli.Exit.TIMEOUT.code, r.exit(), r.all());
        assertTrue(r.err().contains("timed out after 1s; last state:"), r.all());
        assertTrue(r.err().contains("undo: detach docker-host --device altra-000c01000"), r.all());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
    }

    @Test
    void noRestartLeavesTheInstanceAndSaysRestartRequired() {
        ready(sim);
        String uid = DockerHost.vmi(sim).getMetadata().getUid();
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--no-restart");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("docker-host RestartRequired"), r.all());
        assertEquals(uid, DockerHost.vmi(sim).getMetadata().getUid());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
        assertFalse(VmRestart.hasDevice(DockerHost.vmi(sim), RES), "the running instance keeps its old devices");
    }

    // ---- stopped VMs and the runbook's delete-the-VMI bug ----------------------------------------

    @Test
    void deletingTheVmiStopsARerunOnFailureVmAndAttachStartsItOnlyWithStart() {
        ready(sim);
        KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").delete(); // what the runbook did
        DockerHost.eventually(() -> "Stopped".equals(DockerHost.vm(sim).get("status", "printableStatus")), "VM Stopped");
        assertNull(DockerHost.vmi(sim), "RerunOnFailure does not recreate a deleted VMI");

        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU);
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("docker-host is stopped: altra-000c01000 is used from its next start (start it now with --start)"), r.all());
        assertNull(DockerHost.vmi(sim));
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));

        Run.Result started = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--start", "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, started.exit(), started.all());
        assertTrue(started.out().contains("starting virtualmachine.kubevirt.io/docker-host"), started.all());
        assertTrue(started.out().contains("docker-host Running on altra with altra-000c01000"), started.all());
        assertTrue(VmRestart.hasDevice(DockerHost.vmi(sim), RES));
    }

    @Test
    void simulatedSubresourcesAnswerLikeVirtApi() throws Exception {
        try (KubernetesClient c = DockerHost.userClient(sim)) {
            var e = assertThrows(KubernetesClientException.class, () -> VmRestart.subresource(c, "default", "docker-host", "start"));
            assertEquals(409, e.getCode());
            assertEquals("Operation cannot be fulfilled on virtualmachine.kubevirt.io \"docker-host\": VM is already running", VmRestart.message(e));
            VmRestart.subresource(c, "default", "docker-host", "stop");
            DockerHost.eventually(() -> DockerHost.vmi(sim) == null && "Stopped".equals(DockerHost.vm(sim).get("status", "printableStatus")), "stopped");
            e = assertThrows(KubernetesClientException.class, () -> VmRestart.subresource(c, "default", "docker-host", "restart"));
            assertEquals("Operation cannot be fulfilled on virtualmachine.kubevirt.io \"docker-host\": VM is not running: Halted", VmRestart.message(e));
            KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
                ((Map<String, Object>) vm.getAdditionalProperties().get("spec")).put("runStrategy", "Halted");
                return vm;
            });
            e = assertThrows(KubernetesClientException.class, () -> VmRestart.subresource(c, "default", "docker-host", "restart"));
            assertEquals("Operation cannot be fulfilled on virtualmachine.kubevirt.io \"docker-host\": RunStategy Halted does not support manual restart requests", VmRestart.message(e));
            VmRestart.subresource(c, "default", "docker-host", "start"); // Halted: start sets runStrategy Always
            DockerHost.eventually(() -> DockerHost.vmi(sim) != null && "Running".equals(DockerHost.vmi(sim).get("status", "phase")), "started");
            assertEquals("Always", DockerHost.vm(sim).get("spec", "runStrategy"));
            e = assertThrows(KubernetesClientException.class, () -> VmRestart.subresource(c, "default", "nope", "restart"));
            assertEquals(404, e.getCode());
        }
    }

    @Test
    void simulatedQemuRefusesAGroupNotWhollyOnVfioAndTheSchedulerAMissingResource() throws Exception {
        ready(sim);
        // audio function back on snd_hda_intel: the group is not viable
        Harvester.pciDevices(sim.admin()).withName(AUDIO).editStatus(x -> {
            ((Map<String, Object>) x.getAdditionalProperties().get("status")).put("kernelDriverInUse", "snd_hda_intel");
            return x;
        });
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            VmHostDevices.setDevices(vm, List.of(Map.of("name", USB.name(), "deviceName", USB_RES), Map.of("name", GPU, "deviceName", RES)), List.of());
            return vm;
        });
        try (KubernetesClient c = DockerHost.userClient(sim)) {
            String old = DockerHost.vmi(sim).getMetadata().getUid();
            VmRestart.subresource(c, "default", "docker-host", "restart");
            GenericKubernetesResource failed = DockerHost.eventually(() -> {
                GenericKubernetesResource v = DockerHost.vmi(sim);
                return v != null && !old.equals(v.getMetadata().getUid()) && "Failed".equals(v.get("status", "phase")) ? v : null;
            }, "VMI Failed");
            assertTrue(KubeVirt.condition(failed, "Synchronized").get("message").toString()
                    .contains("vfio 000c:01:00.0: group 18 is not viable\nPlease ensure all devices within the iommu_group are bound to their vfio bus driver."));

            // now the device plugin is gone from altra: the launcher pod cannot be scheduled
            KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").delete();
            sim.admin().nodes().withName("altra").editStatus(n -> {
                n.getStatus().getAllocatable().remove(RES);
                return n;
            });
            DockerHost.eventually(() -> DockerHost.vmi(sim) == null, "VMI gone");
            VmRestart.subresource(c, "default", "docker-host", "start");
            GenericKubernetesResource pending = DockerHost.eventually(() -> {
                GenericKubernetesResource v = DockerHost.vmi(sim);
                return v != null && KubeVirt.condition(v, "PodScheduled") != null ? v : null;
            }, "PodScheduled condition");
            assertEquals("Scheduling", pending.get("status", "phase"));
            assertEquals("0/2 nodes are available: 1 Insufficient kubevirt.io/altra-0951-1666-003002, 2 Insufficient nvidia.com/GA102_GEFORCE_RTX_3090. preemption: 0/2 nodes are available: "
                    + "2 Preemption is not helpful for scheduling.", KubeVirt.condition(pending, "PodScheduled").get("message"));
            DockerHost.eventually(() -> "ErrorUnschedulable".equals(DockerHost.vm(sim).get("status", "printableStatus")), "ErrorUnschedulable");
        }
    }

    @Test
    void simulatedWebhookDeniesUnknownResourcesGpusAndMixedNodes() throws Exception {
        try (KubernetesClient c = DockerHost.userClient(sim)) {
            var vms = KubeVirt.vms(c).inNamespace("default");
            var e = assertThrows(KubernetesClientException.class, () -> vms.withName("docker-host").edit(vm -> {
                VmHostDevices.setDevices(vm, List.of(Map.of("name", "gpu1", "deviceName", "nvidia.com/TYPO")), List.of());
                return vm;
            }));
            assertEquals(500, e.getCode());
            assertEquals("admission webhook \"pcidevices.harvesterhci.io\" denied the request: hostdevice gpu1: resource name nvidia.com/TYPO "
                    + "not found in pcidevice and usbdevice cache", e.getStatus().getMessage());
            e = assertThrows(KubernetesClientException.class, () -> vms.withName("docker-host").edit(vm -> {
                VmHostDevices.setDevices(vm, VmHostDevices.list(vm, "hostDevices"), List.of(Map.of("name", "ga102", "deviceName", RES)));
                return vm;
            }));
            assertEquals("admission webhook \"pcidevices.harvesterhci.io\" denied the request: gpu device ga102: resource name "
                    + "nvidia.com/GA102_GEFORCE_RTX_3090 not found in pcidevice cache", e.getStatus().getMessage());
            e = assertThrows(KubernetesClientException.class, () -> vms.withName("docker-host").edit(vm -> {
                VmHostDevices.setDevices(vm, List.of(Map.of("name", GPU, "deviceName", RES), Map.of("name", "bravo-000041000", "deviceName", RES)), List.of());
                return vm;
            }));
            assertEquals("admission webhook \"pcidevices.harvesterhci.io\" denied the request: device pcidevice/bravo-000041000 is not on "
                    + "the same node in VirtualMachine.Spec.Template.Spec.Domain.Devices.HostDevices docker-host", e.getStatus().getMessage());
            assertEquals(List.of(USB), DockerHost.hostDevices(sim));
        }
    }

    // ---- preconditions: one line, documented exit code, no change ----------------------------------

    @Test
    void unknownVmOrDeviceIsNotFoundAndChangesNothing() {
        ready(sim);
        Run.Result r = Run.against(sim, new attach(), "no-such-vm", "--device", GPU);
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        assertEquals("attach: virtualmachine \"no-such-vm\" not found in namespace \"default\" — check the name, or pass -n NAMESPACE (kubectl get vm -A)",
                r.err().trim());
        r = Run.against(sim, new attach(), "docker-host", "--device", "altra-0000ff000");
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        assertTrue(r.err().contains("PCIDevice \"altra-0000ff000\" not found"), r.all());
        r = Run.against(sim, new attach(), "docker-host", "--device-name", "nvidia.com/TYPO", "--node", "altra");
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
    }

    @Test
    void claimFlagRunsTheClaimStepFirstOnAFreshCluster() {
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--claim", "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("claiming first: claim altra-000c01000"), r.all());
        assertTrue(r.out().contains("altra-000c01001 created"), r.all());
        for (String n : List.of(GPU, AUDIO)) {
            var claim = Harvester.PciDeviceClaim.of(Harvester.pciDeviceClaims(sim.admin()).withName(n).get());
            assertTrue(claim.passthroughEnabled() && claim.ownedBy(Harvester.device(sim.admin(), n)), n);
        }
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
        assertEquals("Running", DockerHost.vmi(sim).get("status", "phase"));
        assertTrue(VmRestart.hasDevice(DockerHost.vmi(sim), RES));
    }

    @Test
    void claimFlagWithDryRunChangesNothing() {
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--claim", "--dry-run");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertEquals(List.of(), DockerHost.writes(sim), r.all());
        assertEquals(List.of(), Harvester.pciDeviceClaims(sim.admin()).list().getItems());
        assertEquals(List.of(USB), DockerHost.hostDevices(sim));
    }

    @Test
    void anUnclaimedDeviceFailsThePreconditionWithTheFix() {
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU);
        assertEquals(Cli.Exit.PRECONDITION.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.all());
        assertTrue(r.err().contains("altra-000c01000 is not ready for passthrough: no PCIDeviceClaim altra-000c01000"), r.all());
        assertTrue(r.err().trim().endsWith("— run: claim altra-000c01000"), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
        assertEquals(List.of(USB), DockerHost.hostDevices(sim));
    }

    @Test
    void aVmPinnedToAnotherNodeIsRefused() {
        ready(sim);
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            VmHostDevices.pin(vm, "bravo");
            return vm;
        });
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU);
        assertEquals(Cli.Exit.PRECONDITION.code, r.exit(), r.all());
        assertTrue(r.err().contains("docker-host is pinned to node bravo"), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
    }

    @Test
    void aPassthroughGpuUnderGpusIsDetectedAndMovedOnlyWithMoveGpus() {
        ready(sim);
        // written while the webhook was unreachable (failurePolicy Ignore), as in the public runbook for this host
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            VmHostDevices.setDevices(vm, VmHostDevices.list(vm, "hostDevices"), List.of(Map.of("name", "ga102", "deviceName", RES)));
            return vm;
        });
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU);
        assertEquals(Cli.Exit.PRECONDITION.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.all());
        assertTrue(r.err().contains("docker-host has PCI device ga102 (nvidia.com/GA102_GEFORCE_RTX_3090) under domain.devices.gpus"), r.all());
        assertTrue(r.err().trim().endsWith("re-run with --move-gpus to move it to hostDevices"), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));

        Run.Result moved = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--move-gpus", "--timeout", "60");
        assertEquals(Cli.Exit.OK.code, moved.exit(), moved.all());
        assertTrue(moved.out().contains("patched (gpus: -ga102 → hostDevices)"), moved.all());
        assertEquals(List.of(USB, GPU_ENTRY), DockerHost.hostDevices(sim));
        assertEquals(List.of(), KubeVirt.gpus(DockerHost.vm(sim)));
    }

    @Test
    void dryRunPrintsThePatchAndBeforeAfterAndTouchesNothing() throws Exception {
        ready(sim);
        String rv = DockerHost.vm(sim).getMetadata().getResourceVersion();
        String uid = DockerHost.vmi(sim).getMetadata().getUid();
        sim.clearClientRequests();
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--dry-run");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("hostDevices before: altra-0951-1666-003002 (kubevirt.io/altra-0951-1666-003002)"), r.all());
        assertTrue(r.out().contains("hostDevices after:  altra-0951-1666-003002 (kubevirt.io/altra-0951-1666-003002), altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)"), r.all());
        assertTrue(r.out().contains("(dry run)"), r.all());
        assertEquals(List.of(), DockerHost.writes(sim));
        assertEquals(rv, DockerHost.vm(sim).getMetadata().getResourceVersion());
        assertEquals(uid, DockerHost.vmi(sim).getMetadata().getUid());

        Run.Result j = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--dry-run", "-o", "json");
        JsonNode patch = Serialization.jsonMapper().readTree(j.out()).get("patch");
        assertEquals(2, patch.at("/spec/template/spec/domain/devices/hostDevices").size(), j.all());
        assertEquals("altra", patch.at("/spec/template/spec/nodeSelector/kubernetes.io~1hostname").asText(), j.all());
        assertEquals(List.of(), DockerHost.writes(sim));
    }

    @Test
    void badFlagsAreUsageErrors() {
        ready(sim);
        assertEquals(Cli.Exit.USAGE.code, Run.against(sim, new attach(), "docker-host", "--device", GPU, "--device-name", RES).exit());
        assertEquals(Cli.Exit.USAGE.code, Run.against(sim, new attach(), "docker-host", "--device-name", RES).exit());
        assertEquals(Cli.Exit.USAGE.code, Run.against(sim, new attach(), "docker-host", "--patch", "/nonexistent.json").exit());
        Run.Result byName = Run.against(sim, new attach(), "docker-host", "--device-name", RES, "--node", "altra", "--dry-run");
        assertEquals(Cli.Exit.OK.code, byName.exit(), byName.all());
        assertTrue(byName.out().contains("altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)"), byName.all());
        assertEquals(List.of(), DockerHost.writes(sim));
        assertFalse(DockerHost.hostDevices(sim).contains(GPU_ENTRY));
        assertNotNull(DockerHost.vmi(sim));
    }

    @Test
    void aFailureAfterTheClaimStepNamesTheClaimsItMadeAndTheirUndo() {
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(v -> {
            VmHostDevices.pin(v, "bravo");
            return v;
        });
        Run.Result r = Run.against(sim, new attach(), "docker-host", "--device", GPU, "--claim", "--timeout", "60");
        assertEquals(Cli.Exit.PRECONDITION.code, r.exit(), r.all());
        assertTrue(r.err().contains("is pinned to node bravo"), r.all());
        assertTrue(r.err().contains("; the claim step had created or replaced: altra-000c01000, altra-000c01001 — undo: "
                + "claim --delete --only altra-000c01000; claim --delete --only altra-000c01001"), r.all());
    }
}
