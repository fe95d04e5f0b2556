import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** claim: ways in, group expansion, idempotence, conflicts, dry run, waiting, unclaim, bad input; and the simulated controller. */
class ClaimTest {
    static final String GPU = "altra-000c01000";
    static final String AUDIO = "altra-000c01001";
    static final String GPU_RES = "nvidia.com/GA102_GEFORCE_RTX_3090";
    static final String AUDIO_RES = "nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER";

    SimCluster sim;
    @TempDir Path tmp;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    Run.Result claim(String... args) {
        return Run.against(sim, new claim(), args);
    }

    GenericKubernetesResource liveClaim(String name) {
        return Harvester.pciDeviceClaims(sim.admin()).withName(name).get();
    }

    String driver(String device) {
        return Harvester.PciDevice.of(Harvester.pciDevices(sim.admin()).withName(device).get()).driver();
    }

    String allocatable(String resource) {
        Quantity q = sim.admin().nodes().withName("altra").get().getStatus().getAllocatable().get(resource);
        return q == null ? null : q.toString();
    }

    /** Bounded polling on cluster state (never a timed assertion). */
    static void eventually(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened: " + what);
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    /** Everything a client could change: claims, devices' drivers, KubeVirt CR, node allocatable. */
    String clusterSnapshot() {
        var c = sim.admin();
        List<Object> parts = new ArrayList<>();
        parts.add(Harvester.pciDeviceClaims(c).list().getItems().stream().map(r -> r.getMetadata().getName() + r.getAdditionalProperties()).toList());
        parts.add(Harvester.pciDevices(c).list().getItems().stream().map(r -> r.getMetadata().getName() + r.get("status", "kernelDriverInUse")).toList());
        parts.add(KubeVirt.kubevirts(c).inNamespace("harvester-system").withName("kubevirt").get().getAdditionalProperties().get("spec"));
        parts.add(c.nodes().list().getItems().stream().map(n -> n.getStatus().getAllocatable()).toList());
        parts.add(KubeVirt.vms(c).inAnyNamespace().list().getItems().stream().map(v -> v.getAdditionalProperties().get("spec")).toList());
        return parts.toString();
    }

    List<String> writes() {
        return sim.clientRequests().stream().filter(r -> !r.startsWith("GET ")).toList();
    }

    static JsonNode json(String s) throws Exception {
        return Serialization.jsonMapper().readTree(s);
    }

    // ---- ways in and group expansion --------------------------------------------------------

    @Test
    void deviceNameClaimsTheWholeIommuGroupAndWaitsUntilReady() {
        Run.Result r = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        List<String> lines = r.out().lines().toList();
        assertEquals("pcideviceclaim.devices.harvesterhci.io/altra-000c01000 created", lines.get(0), r.out());
        assertEquals("pcideviceclaim.devices.harvesterhci.io/altra-000c01001 created (shares IOMMU group 18 with altra-000c01000)", lines.get(1), r.out());
        assertTrue(r.out().contains("altra-000c01000 condition met"), r.out());
        assertTrue(r.err().contains("waiting up to 30s"), r.err());
        assertTrue(r.err().contains("done: altra-000c01000 passthrough-enabled"), r.err());

        for (String n : List.of(GPU, AUDIO)) {
            GenericKubernetesResource c = liveClaim(n);
            assertEquals(n, c.getMetadata().getOwnerReferences().get(0).getName());
            assertEquals(Harvester.pciDevices(sim.admin()).withName(n).get().getMetadata().getUid(), c.getMetadata().getOwnerReferences().get(0).getUid());
            assertEquals("admin", c.get("spec", "userName"));
            assertEquals(true, c.get("status", "passthroughEnabled"));
            assertEquals("vfio-pci", driver(n));
        }
        assertEquals("nouveau", liveClaim(GPU).get("status", "kernelDriverToUnbind"));
        assertEquals("snd_hda_intel", liveClaim(AUDIO).get("status", "kernelDriverToUnbind"));
        assertEquals("1", allocatable(GPU_RES));
        assertEquals("1", allocatable(AUDIO_RES));
        assertTrue(Passthrough.read(sim.admin(), Harvester.device(sim.admin(), GPU)).ready());
        List<String> log = sim.agentLog("altra");
        for (String expected : List.of("Adding altra-000c01000 to KubeVirt list of permitted devices",
                "Enabling passthrough for PDC: altra-000c01000", "Binding device altra-000c01000 [10de 2204] to vfio-pci",
                "Started DevicePlugin: " + GPU_RES)) {
            assertTrue(log.stream().anyMatch(l -> l.endsWith(" " + expected)), expected + " not in " + log);
        }
        // bravo's identical GPU is untouched
        assertNull(liveClaim("bravo-000041000"));
        assertEquals("nouveau", driver("bravo-000041000"));
    }

    @Test
    void nodeAndAddressIsTheSameWayIn() throws Exception {
        Run.Result r = claim("--node", "altra", "--address", "000c:01:00.1", "--no-wait", "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode claims = json(r.out()).get("claims");
        assertEquals(2, claims.size());
        assertEquals(GPU, claims.get(0).get("name").asText());
        assertEquals("shares IOMMU group 18 with altra-000c01001", claims.get(0).get("reason").asText());
        assertEquals(AUDIO, claims.get(1).get("name").asText());
        assertEquals("created", claims.get(1).get("action").asText());
        assertNotNull(liveClaim(GPU));
        assertNotNull(liveClaim(AUDIO));

        Run.Result yaml = claim("--node", "altra", "--address", "000c:01:00.1", "--no-wait", "-o", "yaml");
        assertEquals(Cli.Exit.OK.code, yaml.exit(), yaml.all());
        Map<?, ?> report = Serialization.unmarshal(yaml.out(), Map.class);
        List<?> claims2 = (List<?>) report.get("claims");
        assertEquals("unchanged", ((Map<?, ?>) claims2.get(1)).get("action"), yaml.out());
    }

    @Test
    void templatesAreAppliedWithTheLiveOwnerReference() throws Exception {
        Run.Result r = claim("--timeout", "30", "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode claims = json(r.out()).get("claims");
        assertEquals(2, claims.size(), r.out());
        for (JsonNode c : claims) {
            assertEquals("created", c.get("action").asText());
            assertTrue(c.get("ready").asBoolean(), c.toString());
            assertTrue(c.get("reason").asText().startsWith("from templates/pcideviceclaim-altra-000c0100"), c.toString());
        }
        assertEquals(Harvester.pciDevices(sim.admin()).withName(AUDIO).get().getMetadata().getUid(),
                liveClaim(AUDIO).getMetadata().getOwnerReferences().get(0).getUid());

        Run.Result unclaim = claim("--delete", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, unclaim.exit(), unclaim.all());
        assertNull(liveClaim(GPU));
        assertNull(liveClaim(AUDIO));
        assertEquals("snd_hda_intel", driver(AUDIO));
    }

    @Test
    void unclaimingOneFunctionWarnsThatTheGroupStaysHalfClaimed() {
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--timeout", "30").exit());
        Run.Result r = claim("--delete", AUDIO, "--only", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.err().contains("WARNING: unclaiming altra-000c01001 only: altra-000c01000 shares IOMMU group 18 and stays claimed"), r.err());
        assertEquals("pcideviceclaim.devices.harvesterhci.io/altra-000c01001 deleted\n", r.out());
        assertNotNull(liveClaim(GPU));
        assertEquals("snd_hda_intel", driver(AUDIO));
        assertEquals("vfio-pci", driver(GPU));
    }

    @Test
    void onlyClaimsOneFunctionWithAWarningAndTheControllerBindsItAnyway() {
        Run.Result r = claim(GPU, "--only", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.err().contains("WARNING: claiming altra-000c01000 only: altra-000c01001 shares IOMMU group 18 and stays on snd_hda_intel"), r.err());
        assertTrue(r.err().contains("group 18 is not viable"), r.err());
        assertNull(liveClaim(AUDIO));
        assertEquals("vfio-pci", driver(GPU));
        assertEquals("snd_hda_intel", driver(AUDIO)); // as upstream: the failure shows only when QEMU starts
    }

    // ---- idempotence and conflicts -----------------------------------------------------------

    @Test
    void secondRunChangesNothingAndSaysSo() {
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--timeout", "30").exit());
        String before = clusterSnapshot();
        sim.clearClientRequests();
        Run.Result again = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, again.exit(), again.all());
        assertTrue(again.out().startsWith("pcideviceclaim.devices.harvesterhci.io/altra-000c01000 unchanged\n"
                + "pcideviceclaim.devices.harvesterhci.io/altra-000c01001 unchanged (shares IOMMU group 18 with altra-000c01000)\n"), again.out());
        assertEquals(List.of(), writes());
        assertEquals(before, clusterSnapshot());
    }

    @Test
    void aClaimWithoutOwnerReferenceIsAConflictUntilForced() {
        createClaimWithoutOwner();
        String before = clusterSnapshot();
        sim.clearClientRequests();

        Run.Result r = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.CONFLICT.code, r.exit(), r.all());
        assertTrue(r.err().contains("conflict: pcideviceclaim.devices.harvesterhci.io/altra-000c01000 exists with a different spec or owner"), r.err());
        assertTrue(r.err().contains("+   ownerReferences:"), r.err());
        assertTrue(r.err().contains("claim: 1 claim(s) differ from what was asked (altra-000c01000); nothing was changed — re-run with --force"), r.err());
        assertEquals(List.of(), writes());
        assertEquals(before, clusterSnapshot());

        Run.Result forced = claim(GPU, "--force", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, forced.exit(), forced.all());
        assertTrue(forced.out().contains("altra-000c01000 configured\n"), forced.out());
        assertTrue(forced.out().contains("altra-000c01001 created"), forced.out());
        assertEquals(GPU, liveClaim(GPU).getMetadata().getOwnerReferences().get(0).getName());
        assertEquals(true, liveClaim(GPU).get("status", "passthroughEnabled"));
    }

    // ---- dry run --------------------------------------------------------------------------------

    @Test
    void dryRunPrintsObjectsAndDiffAndChangesNothing() {
        createClaimWithoutOwner();
        String before = clusterSnapshot();
        sim.clearClientRequests();
        Run.Result conflict = claim(GPU, "--dry-run");
        assertEquals(Cli.Exit.CONFLICT.code, conflict.exit(), conflict.all());
        assertTrue(conflict.out().contains("altra-000c01000 conflict (dry run)"), conflict.out());

        Run.Result r = claim(GPU, "--dry-run", "--force");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        String uid = Harvester.pciDevices(sim.admin()).withName(GPU).get().getMetadata().getUid();
        // the replaced claim: a diff against the live object
        assertTrue(r.out().contains("pcideviceclaim.devices.harvesterhci.io/altra-000c01000 configured (dry run)\n    --- live\n    +++ wanted\n"), r.out());
        assertTrue(r.out().contains("    +   ownerReferences:\n"), r.out());
        assertTrue(r.out().contains("    +     uid: \"" + uid + "\"\n"), r.out());
        assertTrue(r.out().contains("    +     nodename: \"altra\"\n"), r.out());
        // the new claim: the object itself
        assertTrue(r.out().contains("pcideviceclaim.devices.harvesterhci.io/altra-000c01001 created (dry run) (shares IOMMU group 18 with altra-000c01000)\n"
                + "    apiVersion: \"devices.harvesterhci.io/v1beta1\"\n    kind: \"PCIDeviceClaim\"\n"), r.out());
        assertTrue(r.out().contains("      address: \"000c:01:00.1\"\n"), r.out());
        assertEquals(List.of(), writes());
        assertEquals(before, clusterSnapshot());
        assertNull(liveClaim(AUDIO));
    }

    @Test
    void unclaimWaitsUntilTheClaimIsGoneAndOnTimeoutNamesTheNodesControllerPod() {
        Run.Result made = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, made.exit(), made.all());
        sim.faults().add(Fault.CLAIM_STUCK_TERMINATING);
        Run.Result r = claim(GPU, "--delete", "--timeout", "3");
        assertEquals(Cli.Exit.TIMEOUT.code, r.exit(), r.all());
        assertTrue(r.all().contains("altra-000c01000: claim still exists"), r.all());
        assertTrue(r.all().contains("only the pcidevices agent on node altra removes it and pod harvester-pcidevices-controller-"), r.all());
        assertTrue(r.all().contains("fix: kubectl -n harvester-system delete pod harvester-pcidevices-controller-"), r.all());
        assertNotNull(liveClaim(GPU), "still Terminating");
    }

    @Test
    void unclaimEndsWithTheClaimGoneAndTheDriverBack() {
        Run.Result made = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, made.exit(), made.all());
        Run.Result r = claim(GPU, "--delete", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertNull(liveClaim(GPU), r.all());
        assertNull(liveClaim(AUDIO), r.all());
        assertEquals("nouveau", driver(GPU));
    }

    @Test
    void noPoolingSetsTheFieldAndADifferentLiveSettingIsAConflictUntilForced() {
        Run.Result r = claim(GPU, "--no-pooling", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertEquals(true, liveClaim(GPU).get("spec", "disableResourcePooling"));
        assertEquals(true, liveClaim(AUDIO).get("spec", "disableResourcePooling"));
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--no-pooling", "--timeout", "30").exit(), "the same again is unchanged");

        Run.Result pooled = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.CONFLICT.code, pooled.exit(), pooled.all());
        assertTrue(pooled.err().contains("-   disableResourcePooling: true"), pooled.all());
        assertEquals(true, liveClaim(GPU).get("spec", "disableResourcePooling"), "nothing changed");

        Run.Result forced = claim(GPU, "--force", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, forced.exit(), forced.all());
        assertNull(liveClaim(GPU).get("spec", "disableResourcePooling"), "recreated pooled");
    }

    @Test
    void conflictDiffsPrintWhatGoesBeforeWhatComes() {
        Run.Result r = claim(GPU, "--no-pooling", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        Run.Result c = claim(GPU, "--user", "bob", "--timeout", "30");
        assertEquals(Cli.Exit.CONFLICT.code, c.exit(), c.all());
        List<String> lines = c.err().lines().map(String::strip).toList();
        int minus = lines.indexOf("-   userName: \"admin\"");
        int plus = lines.indexOf("+   userName: \"bob\"");
        assertTrue(minus >= 0 && plus > minus, c.err());
    }

    @Test
    void aClaimDeniedOnABareMetalGpuNodeIsExit10WithTheLabelFix() {
        sim.faults().add(Fault.BAREMETAL_GPU_NODE);
        eventually("altra labelled", () -> "true".equals(sim.admin().nodes().withName("altra").get().getMetadata().getLabels().get(Harvester.BAREMETAL_GPU_LABEL)));
        Run.Result r = claim(GPU, "--only", "--timeout", "10");
        assertEquals(Cli.Exit.REJECTED.code, r.exit(), r.all());
        assertTrue(r.err().contains("node altra is labelled harvesterhci.io/gpu-baremetal-workloads=true"), r.all());
        assertTrue(r.err().contains("fix: pass through a GPU on another node (inventory), or, once no pod uses this GPU, remove the label: "
                + "kubectl label node altra harvesterhci.io/gpu-baremetal-workloads-"), r.all());
        assertNull(liveClaim(GPU));
    }

    @Test
    void aRefusedDeleteDuringForceIsNotCalledCreating() {
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--timeout", "30").exit());
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            vm.getMetadata().getAnnotations().put(Harvester.ALLOCATION_ANNOTATION, "{\"hostdevices\":{\"" + GPU_RES + "\":[\"" + GPU + "\"]}}");
            return vm;
        });
        Run.Result r = claim(GPU, "--only", "--user", "bob", "--force", "--timeout", "30");
        assertEquals(Cli.Exit.REJECTED.code, r.exit(), r.all());
        assertTrue(r.err().contains("claim: deleting (to replace) pcideviceclaim.devices.harvesterhci.io/altra-000c01000 was rejected"), r.all());
        assertFalse(r.err().contains("creating"), r.all());
    }

    @Test
    void forceRemovesAGuidesClaimUnderAnotherNameForTheSameDevice() {
        sim.admin().genericKubernetesResources(Harvester.PCI_DEVICE_CLAIMS).resource(Serialization.unmarshal("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata: {name: gpu-claim}
                spec: {address: "000c:01:00.0", nodeName: altra, userName: admin}
                """, GenericKubernetesResource.class)).create();
        eventually("the agent adds its finalizer", () -> Harvester.hasClaimFinalizer(liveClaim("gpu-claim")));
        Run.Result warned = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, warned.exit(), warned.all());
        assertTrue(warned.err().contains("WARNING: claim gpu-claim (no ownerReferences, from a public guide) also means altra-000c01000"), warned.all());
        assertNotNull(liveClaim("gpu-claim"));

        Run.Result forced = claim(GPU, "--force", "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, forced.exit(), forced.all());
        assertTrue(forced.out().contains("pcideviceclaim.devices.harvesterhci.io/gpu-claim deleted (a guide's claim for altra-000c01000, never bound: finalizer removed)"), forced.all());
        eventually("the guide's claim is gone", () -> liveClaim("gpu-claim") == null);
        assertEquals(true, liveClaim(GPU).get("status", "passthroughEnabled"));
    }

    void createClaimWithoutOwner() {
        // What kubectl apply of the runbook's template does: no ownerReference, so the controller never acts.
        Harvester.pciDeviceClaims(sim.admin()).resource(Serialization.unmarshal("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata: {name: altra-000c01000}
                spec: {address: "000c:01:00.0", nodeName: altra, userName: admin}
                """, GenericKubernetesResource.class)).create();
        eventually("controller complains", () -> sim.agentLog("altra").stream().anyMatch(l -> l.endsWith(
                "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: Cannot find PCIDevice that owns altra-000c01000, requeuing")));
    }

    @Test
    void dryRunDeleteShowsWhatWouldGo() throws Exception {
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--timeout", "30").exit());
        String before = clusterSnapshot();
        sim.clearClientRequests();
        Run.Result r = claim("--delete", GPU, "--dry-run", "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertEquals("deleted", json(r.out()).get("claims").get(0).get("action").asText());
        assertEquals(List.of(), writes());
        assertEquals(before, clusterSnapshot());
    }

    // ---- waiting -----------------------------------------------------------------------------

    @Test
    void timeoutPrintsWhatIsStillMissing() throws Exception {
        sim.faults().add(Fault.BIND_FAILS);
        Run.Result r = claim(GPU, "--timeout", "2", "-o", "json");
        assertEquals(Cli.Exit.TIMEOUT.code, r.exit(), r.all());
        assertTrue(r.err().contains("timed out after 2s waiting for passthrough on altra-000c01000, altra-000c01001; still missing:"), r.err());
        assertTrue(r.err().contains("altra-000c01000 passthrough-enabled: status.passthroughEnabled=false — fix: diagnose --device altra-000c01000"), r.err());
        JsonNode gpu = json(r.out()).get("claims").get(0);
        assertFalse(gpu.get("ready").asBoolean());
        assertTrue(gpu.get("missing").toString().contains("vfio-driver"), gpu.toString());
        eventually("bind error logged", () -> sim.agentLog("altra").stream().anyMatch(l -> l.endsWith(
                "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: write /sys/bus/pci/drivers/vfio-pci/bind: invalid argument, requeuing")));
        assertEquals("nouveau", driver(GPU));
    }

    @Test
    void notPermittedAndMissingDevicePluginAreWhatTheTimeoutNames() {
        sim.faults().add(Fault.NOT_PERMITTED);
        Run.Result r = claim(GPU, "--only", "--timeout", "2");
        assertEquals(Cli.Exit.TIMEOUT.code, r.exit(), r.all());
        assertTrue(r.err().contains("altra-000c01000 permitted: not in kubevirt permittedHostDevices.pciHostDevices"), r.err());
        eventually("KubeVirt CR error logged", () -> sim.agentLog("altra").stream().anyMatch(l -> l.contains(
                "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: error updating kubevirt CR: ")));

        sim.faults().remove(Fault.NOT_PERMITTED);
        sim.faults().add(Fault.DEVICE_PLUGIN_MISSING);
        eventually("the controller catches up", () -> Boolean.TRUE.equals(liveClaim(GPU).get("status", "passthroughEnabled")));
        Run.Result plugin = claim(GPU, "--only", "--timeout", "1");
        assertEquals(Cli.Exit.TIMEOUT.code, plugin.exit(), plugin.all());
        assertTrue(plugin.out().contains("altra-000c01000 unchanged"), plugin.out());
        assertTrue(plugin.err().contains("altra-000c01000 allocatable: node altra allocatable[" + GPU_RES + "]=<absent>"), plugin.err());
        assertEquals(true, liveClaim(GPU).get("status", "passthroughEnabled"));
    }

    @Test
    void controllerDownMeansNothingHappensUntilItIsBack() {
        sim.faults().add(Fault.CONTROLLER_DOWN);
        Run.Result down = claim(GPU, "--timeout", "1");
        assertEquals(Cli.Exit.TIMEOUT.code, down.exit(), down.all());
        assertTrue(down.out().contains("altra-000c01001 created"), down.out());
        assertEquals("nouveau", driver(GPU));
        // the crash-looping agent logs only its crash, never a step of the claim
        assertTrue(sim.agentLog("altra").stream().noneMatch(l -> l.contains("altra-000c0100")), sim.agentLog("altra").toString());

        sim.faults().remove(Fault.CONTROLLER_DOWN);
        Run.Result back = claim(GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, back.exit(), back.all());
        assertTrue(back.out().contains("altra-000c01000 unchanged"), back.out());
        assertEquals("vfio-pci", driver(AUDIO));
    }

    // ---- unclaim -----------------------------------------------------------------------------

    @Test
    void deleteIsRefusedWhileAVmReferencesTheDeviceAndOtherwiseRebindsTheOriginalDriver() {
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--timeout", "30").exit());
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            @SuppressWarnings("unchecked")
            List<Object> hd = (List<Object>) vm.<Object>get("spec", "template", "spec", "domain", "devices", "hostDevices");
            hd.add(Map.of("name", GPU, "deviceName", GPU_RES));
            return vm;
        });
        String before = clusterSnapshot();
        Run.Result refused = claim("--delete", GPU);
        assertEquals(Cli.Exit.PRECONDITION.code, refused.exit(), refused.all());
        assertEquals(1, refused.err().lines().count(), refused.err());
        assertTrue(refused.err().contains("VM default/docker-host still references altra-000c01000 (hostDevices name altra-000c01000)"), refused.err());
        assertEquals(before, clusterSnapshot());

        // The running VM has it allocated: even --force meets the real webhook.
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            vm.getMetadata().getAnnotations().put(Harvester.ALLOCATION_ANNOTATION, "{\"hostdevices\":{\"" + GPU_RES + "\":[\"" + GPU + "\"]}}");
            return vm;
        });
        Run.Result denied = claim("--delete", GPU, "--only", "--force");
        assertEquals(Cli.Exit.REJECTED.code, denied.exit(), denied.all());
        assertTrue(denied.err().contains("deleting pcideviceclaim.devices.harvesterhci.io/altra-000c01000 was rejected: admission webhook "
                + "\"pcidevices.harvesterhci.io\" denied the request: pcideviceclaim altra-000c01000 is already in use with vm docker-host in namespace default"), denied.err());
        assertNotNull(liveClaim(GPU));

        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            vm.getMetadata().getAnnotations().remove(Harvester.ALLOCATION_ANNOTATION);
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> hd = (List<Map<String, Object>>) vm.<Object>get("spec", "template", "spec", "domain", "devices", "hostDevices");
            hd.removeIf(d -> GPU.equals(d.get("name")));
            return vm;
        });
        Run.Result ok = claim("--delete", GPU, "--timeout", "30");
        assertEquals(Cli.Exit.OK.code, ok.exit(), ok.all());
        assertTrue(ok.out().contains("pcideviceclaim.devices.harvesterhci.io/altra-000c01000 deleted\n"), ok.out());
        assertTrue(ok.out().contains("pcideviceclaim.devices.harvesterhci.io/altra-000c01001 deleted (shares IOMMU group 18 with altra-000c01000)"), ok.out());
        assertNull(liveClaim(GPU));
        assertEquals("nouveau", driver(GPU));
        assertEquals("snd_hda_intel", driver(AUDIO));
        assertNull(allocatable(GPU_RES));
        // The controller's OnRemove leaves the KubeVirt CR entry (PciDevicesController.java, PCIDeviceClaimOnRemove)
        assertTrue(Passthrough.read(sim.admin(), Harvester.device(sim.admin(), GPU)).permittedResources().contains(GPU_RES));

        Run.Result again = claim("--delete", GPU);
        assertEquals(Cli.Exit.OK.code, again.exit(), again.all());
        assertTrue(again.out().contains("altra-000c01000 unchanged"), again.out());
    }

    @Test
    void aDeleteFailingHalfwayIsPartialAndSaysHowToUndo() {
        assertEquals(Cli.Exit.OK.code, claim(GPU, "--timeout", "30").exit());
        // a VM has the audio function allocated: the webhook refuses that claim's deletion
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            vm.getMetadata().getAnnotations().put(Harvester.ALLOCATION_ANNOTATION, "{\"hostdevices\":{\"" + AUDIO_RES + "\":[\"" + AUDIO + "\"]}}");
            return vm;
        });
        Run.Result refused = claim("--delete", GPU);
        assertEquals(Cli.Exit.PRECONDITION.code, refused.exit(), refused.all());
        assertTrue(refused.err().contains("VM default/docker-host still references altra-000c01001 (allocated: annotation harvesterhci.io/deviceAllocationDetails)"), refused.err());
        assertNotNull(liveClaim(GPU));

        Run.Result r = claim("--delete", GPU, "--force");
        assertEquals(Cli.Exit.PARTIAL.code, r.exit(), r.all());
        assertTrue(r.err().contains("WARNING: --force: VM default/docker-host still references altra-000c01001"), r.err());
        assertTrue(r.err().contains("claim: deleting pcideviceclaim.devices.harvesterhci.io/altra-000c01001 was rejected: admission webhook \"pcidevices.harvesterhci.io\" denied the request: "
                + "pcideviceclaim altra-000c01001 is already in use with vm docker-host in namespace default — detach the device from that VM first (detach), then retry; "
                + "already deleted: altra-000c01000 — undo with: claim --only altra-000c01000"), r.err());
        assertNull(liveClaim(GPU));
        assertNotNull(liveClaim(AUDIO));
    }

    // ---- bad input: one line, documented exit code, no change ---------------------------------

    void assertRefusedWithoutChange(Run.Result r, Cli.Exit exit, String fragment) {
        assertEquals(exit.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), "one line, no stack trace: " + r.err());
        assertTrue(r.err().startsWith("claim: "), r.err());
        assertTrue(r.err().contains(fragment), r.err());
        assertEquals(List.of(), writes(), "no change");
        assertNull(liveClaim(GPU));
    }

    @Test
    void unknownDeviceAndNode() {
        assertRefusedWithoutChange(claim("altra-ffff01000"), Cli.Exit.NOT_FOUND, "PCIDevice \"altra-ffff01000\" not found — list devices with: inventory");
        assertRefusedWithoutChange(claim("--node", "nope", "--address", "000c:01:00.0"), Cli.Exit.NOT_FOUND, "node \"nope\" not found");
        assertRefusedWithoutChange(claim("--node", "altra", "--address", "000c:09:00.0"), Cli.Exit.NOT_FOUND, "no PCIDevice at 000c:09:00.0 on node \"altra\"");
    }

    @Test
    void malformedAddressIsRejectedBeforeAnyRequest() {
        sim.clearClientRequests();
        assertRefusedWithoutChange(claim("--node", "altra", "--address", "0c:1:0"), Cli.Exit.USAGE, "malformed PCI address \"0c:1:0\"");
        assertEquals(List.of(), sim.clientRequests());
        assertRefusedWithoutChange(claim(GPU, "--node", "altra", "--address", "000c:01:00.0"), Cli.Exit.USAGE, "either DEVICE or --node/--address");
    }

    @Test
    void malformedClaimFiles() throws Exception {
        Map<String, String> cases = Map.of(
                "kind: PCIDeviceClaim\napiVersion: devices.harvesterhci.io/v1beta1\nmetadata: {name: altra-000c01000\n", "is not valid YAML",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "has kind \"ConfigMap\", expected PCIDeviceClaim",
                "apiVersion: devices.harvesterhci.io/v1beta1\nkind: PCIDeviceClaim\nmetadata: {name: altra-000c01000}\nspec: {address: \"000c:01:00.0\", nodeName: altra, userName: admin, iommuGroup: \"18\"}\n",
                "unknown field spec.iommuGroup",
                "apiVersion: devices.harvesterhci.io/v1beta1\nkind: PCIDeviceClaim\nmetadata: {name: gpu}\nspec: {address: \"000c:01:00.0\", nodeName: altra, userName: admin}\n",
                "must be named after its PCIDevice: altra-000c01000",
                "apiVersion: devices.harvesterhci.io/v1beta1\nkind: PCIDeviceClaim\nmetadata: {name: altra-000c01000}\nspec: {address: \"000c:01:00\", nodeName: altra, userName: admin}\n",
                "malformed spec.address");
        for (var c : cases.entrySet()) {
            Path f = tmp.resolve("claim.yaml");
            Files.writeString(f, c.getKey());
            sim.clearClientRequests();
            assertRefusedWithoutChange(claim("-f", f.toString()), Cli.Exit.USAGE, c.getValue());
        }
        sim.clearClientRequests();
        assertRefusedWithoutChange(claim("-f", tmp.resolve("missing.yaml").toString()), Cli.Exit.USAGE, "cannot read");
    }

    @Test
    void aFileIsAppliedLikeKubectlApply() throws Exception {
        Path f = tmp.resolve("claim.yaml");
        Files.copy(Run.repoRoot().resolve("templates/pcideviceclaim-altra-000c01000.yaml"), f);
        Run.Result r = claim("-f", f.toString(), "--no-wait");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("altra-000c01000 created (from " + f + ")"), r.out());
        assertTrue(r.err().contains("WARNING: claiming altra-000c01000 only"), r.err());
        assertNotNull(liveClaim(GPU));
    }

    @Test
    void aCreateRejectedHalfwayIsPartialAndSaysHowToUndo() throws Exception {
        seedDeviceWithoutIommuGroup();
        Path f = tmp.resolve("two.yaml");
        Files.writeString(f, Files.readString(Run.repoRoot().resolve("templates/pcideviceclaim-altra-000c01000.yaml")) + """
                ---
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata: {name: bravo-000081000}
                spec: {address: "0000:81:00.0", nodeName: bravo, userName: admin}
                """);
        Run.Result r = claim("-f", f.toString(), "--no-wait");
        assertEquals(Cli.Exit.PARTIAL.code, r.exit(), r.all());
        assertTrue(r.out().contains("altra-000c01000 created"), r.out());
        assertTrue(r.err().contains("claim: creating pcideviceclaim.devices.harvesterhci.io/bravo-000081000 was rejected: "), r.err());
        assertTrue(r.err().contains("; already created or replaced: altra-000c01000 — undo with: claim --delete --only altra-000c01000\n"), r.err());
        assertNotNull(liveClaim(GPU));
        assertNull(liveClaim("bravo-000081000"));
    }

    @Test
    void forbiddenIsAOneLineErrorAndChangesNothing() {
        sim.faults().add(Fault.FORBIDDEN);
        Run.Result r = claim(GPU);
        sim.faults().remove(Fault.FORBIDDEN);
        assertEquals(Cli.Exit.FORBIDDEN.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("claim: forbidden (403"), r.err());
        assertNull(liveClaim(GPU));
        assertFalse(r.err().contains("sim-token"));
    }

    @Test
    void webhookRejectionIsOneLineRejected() {
        seedDeviceWithoutIommuGroup();
        Run.Result r = claim("bravo-000081000", "--no-wait");
        assertEquals(Cli.Exit.REJECTED.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("claim: creating pcideviceclaim.devices.harvesterhci.io/bravo-000081000 was rejected: admission webhook "
                + "\"pcidevices.harvesterhci.io\" denied the request: pcidevice bravo-000081000 has no iommuGroup available — enable the IOMMU"), r.err());
        assertNull(liveClaim("bravo-000081000"));
    }

    /** IOMMU off in firmware: the device has no group, the webhook refuses its claim. */
    void seedDeviceWithoutIommuGroup() {
        sim.create(Serialization.unmarshal("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDevice
                metadata: {name: bravo-000081000, labels: {nodename: bravo}, annotations: {harvesterhci.io/pcideviceDriver: nouveau}}
                status: {address: "0000:81:00.0", vendorId: "10de", deviceId: "2204", classId: "0300", iommuGroup: "",
                         nodeName: bravo, resourceName: nvidia.com/GA102_GEFORCE_RTX_3090, description: "VGA", kernelDriverInUse: nouveau}
                """, GenericKubernetesResource.class));
    }

    // ---- the simulated webhook and controller, through a plain client -----------------------

    @Test
    void webhookDeniesClaimsNamedAfterNoDeviceAsInternalError() {
        var client = new io.fabric8.kubernetes.client.KubernetesClientBuilder()
                .withConfig(io.fabric8.kubernetes.client.Config.fromKubeconfig(readKubeconfig())).build();
        try (client) {
            KubernetesClientException e = org.junit.jupiter.api.Assertions.assertThrows(KubernetesClientException.class,
                    () -> Harvester.pciDeviceClaims(client).resource(Serialization.unmarshal("""
                            apiVersion: devices.harvesterhci.io/v1beta1
                            kind: PCIDeviceClaim
                            metadata: {name: gpu1}
                            spec: {address: "000c:01:00.0", nodeName: altra, userName: admin}
                            """, GenericKubernetesResource.class)).create());
            assertEquals(500, e.getCode());
            assertEquals("InternalError", e.getStatus().getReason());
            assertEquals("admission webhook \"pcidevices.harvesterhci.io\" denied the request: pcidevices.devices.harvesterhci.io \"gpu1\" not found",
                    e.getStatus().getMessage());
            Throwable t = Kube.translate(e);
            assertEquals(Cli.Exit.REJECTED, ((Cli.UserError) t).exit);
        }
    }

    private String readKubeconfig() {
        try {
            return Files.readString(sim.kubeconfig());
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }
}
