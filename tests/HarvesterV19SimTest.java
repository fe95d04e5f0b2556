//SOURCES ../scripts/lib/checks/ClaimRemovalCheck.java ../scripts/lib/checks/GuideClaimCheck.java
//SOURCES ../scripts/lib/checks/PoolingCheck.java ../scripts/lib/checks/BaremetalCheck.java
//SOURCES ../scripts/lib/checks/PermittedCheck.java ../scripts/lib/checks/AddonCheck.java
//SOURCES ../scripts/lib/checks/AllocationCheck.java ../scripts/lib/checks/VersionCheck.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

/**
 * The simulator keeps up with Harvester v1.7–v1.9 (issue 16): the claim finalizer, resource pooling
 * off, bare-metal GPU nodes, duplicate permittedHostDevices, the add-on, guide-written claims, stale
 * allocations, versions. Requests go through a plain client (webhooks apply) unless the test says it
 * seeds state with the simulator's own client.
 */
class HarvesterV19SimTest {
    static final String GPU = Seed.GPU;
    static final String AUDIO = Seed.AUDIO;
    static final String GPU_RES = Seed.GPU_RES;
    static final String AUDIO_RES = Seed.AUDIO_RES;
    static final String ALTRA_POD = "harvester-pcidevices-controller-x7k2p";

    static SimCluster.Options fast() {
        SimCluster.Options o = new SimCluster.Options();
        o.controllerDelay = Duration.ofMillis(30);
        o.vmiPhaseDelay = Duration.ofMillis(30);
        return o;
    }

    /** A client like a user's: not the simulator's, so webhooks validate its requests. */
    static KubernetesClient user(SimCluster sim) throws Exception {
        return new KubernetesClientBuilder().withConfig(Config.fromKubeconfig(Files.readString(sim.kubeconfig()))).build();
    }

    static void eventually(String what, BooleanSupplier done) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for: " + what);
            sleep(20);
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** A claim as the UI makes it (name and ownerReference of the live PCIDevice). */
    static GenericKubernetesResource uiClaim(SimCluster sim, String device, boolean poolingOff) {
        GenericKubernetesResource d = Harvester.pciDevices(sim.admin()).withName(device).get();
        return Serialization.unmarshal("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata:
                  name: %s
                  ownerReferences: [{apiVersion: devices.harvesterhci.io/v1beta1, kind: PCIDevice, name: %s, uid: %s}]
                spec: {address: "%s", nodeName: %s, userName: admin, disableResourcePooling: %s}
                """.formatted(device, device, d.getMetadata().getUid(), d.get("status", "address"), d.get("status", "nodeName"), poolingOff),
                GenericKubernetesResource.class);
    }

    static GenericKubernetesResource claim(SimCluster sim, String name) {
        return Harvester.pciDeviceClaims(sim.admin()).withName(name).get();
    }

    static boolean enabled(SimCluster sim, String name) {
        GenericKubernetesResource c = claim(sim, name);
        return c != null && Boolean.TRUE.equals(c.get("status", "passthroughEnabled"));
    }

    static Harvester.PciDevice device(SimCluster sim, String name) {
        return Harvester.PciDevice.of(Harvester.pciDevices(sim.admin()).withName(name).get());
    }

    static void claimAndWait(SimCluster sim, KubernetesClient c, String device, boolean poolingOff) {
        Harvester.pciDeviceClaims(c).resource(uiClaim(sim, device, poolingOff)).create();
        eventually(device + " passthrough enabled", () -> enabled(sim, device));
    }

    static List<Pod> controllerPods(SimCluster sim) {
        return sim.admin().pods().inNamespace("harvester-system").withLabel("app.kubernetes.io/name", "harvester-pcidevices-controller").list().getItems();
    }

    static long permittedCount(SimCluster sim, String resource) {
        GenericKubernetesResource kv = KubeVirt.kubevirts(sim.admin()).inNamespace("harvester-system").withName("kubevirt").get();
        Object l = kv.get("spec", "configuration", "permittedHostDevices", "pciHostDevices");
        return l instanceof List<?> list ? list.stream().filter(o -> o instanceof Map<?, ?> m && resource.equals(m.get("resourceName"))).count() : 0;
    }

    static String allocatable(SimCluster sim, String node, String resource) {
        Quantity q = sim.admin().nodes().withName(node).get().getStatus().getAllocatable().get(resource);
        return q == null ? null : q.toString();
    }

    /** Stops docker-host, gives it these host devices (through the user's client: the VM webhook applies), starts it. */
    @SuppressWarnings("unchecked")
    static void restartWith(SimCluster sim, KubernetesClient c, List<Map<String, Object>> hostDevices) {
        retrying(() -> KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            vm.<Map<String, Object>>get("spec").put("runStrategy", "Halted");
            return vm;
        }));
        eventually("docker-host stopped", () -> KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").get() == null);
        retrying(() -> KubeVirt.vms(c).inNamespace("default").withName("docker-host").edit(vm -> {
            Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
            devices.put("hostDevices", new ArrayList<>(hostDevices));
            vm.<Map<String, Object>>get("spec").put("runStrategy", "Always");
            return vm;
        }));
    }

    /** Edits through a client, again on 409 (the simulated controllers write the same objects). */
    static void retrying(Runnable edit) {
        for (int i = 0; ; i++) {
            try {
                edit.run();
                return;
            } catch (KubernetesClientException e) {
                if (e.getCode() != 409 || i > 20) throw e;
                sleep(20);
            }
        }
    }

    static void running(SimCluster sim) {
        try {
            eventually("docker-host running", () -> "Running".equals(vmiPhase(sim)));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + ": " + Serialization.asJson(KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").get()), e);
        }
    }

    static String vmiPhase(SimCluster sim) {
        GenericKubernetesResource vmi = KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").get();
        return vmi == null ? "" : String.valueOf((Object) vmi.get("status", "phase"));
    }

    // ---- the claim finalizer -------------------------------------------------------------------

    @Test
    void everyClaimGetsTheFinalizerAndOnlyTheNodesAgentReleasesIt() throws Exception {
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = user(sim)) {
            claimAndWait(sim, c, GPU, false);
            claimAndWait(sim, c, AUDIO, false);
            assertEquals(List.of(Harvester.CLAIM_FINALIZER), claim(sim, GPU).getMetadata().getFinalizers());

            Harvester.pciDeviceClaims(c).withName(GPU).delete();
            eventually("claim gone", () -> claim(sim, GPU) == null);
            eventually("driver restored", () -> "nouveau".equals(device(sim, GPU).driver()));
            eventually("withdrawn from the node", () -> allocatable(sim, "altra", GPU_RES) == null);
            // bravo's agent saw the deletion first and refused it, as wrangler's OnRemove does on other nodes
            assertTrue(sim.agentLog("bravo").stream().anyMatch(l -> l.endsWith("error syncing '" + GPU + "': handler PCIDeviceClaimOnRemove: "
                    + "controller bravo cannot process claims for node altra, requeuing")), sim.agentLog("bravo").toString());
        }
    }

    @Test
    void aDeletedClaimStaysTerminatingWhileItsNodesAgentIsDown() throws Exception {
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = user(sim)) {
            claimAndWait(sim, c, GPU, false);
            claimAndWait(sim, c, AUDIO, false);
            sim.faults().add(Fault.CLAIM_STUCK_TERMINATING);
            eventually("altra's agent crash-loops", () -> controllerPods(sim).stream()
                    .anyMatch(p -> ALTRA_POD.equals(p.getMetadata().getName()) && p.getStatus().getContainerStatuses().get(0).getState().getWaiting() != null));

            Harvester.pciDeviceClaims(c).withName(GPU).delete();
            sleep(1000); // dozens of controller periods
            GenericKubernetesResource stuck = claim(sim, GPU);
            assertNotNull(stuck, "the claim stays while its finalizer is set");
            assertNotNull(stuck.getMetadata().getDeletionTimestamp());
            assertEquals(List.of(Harvester.CLAIM_FINALIZER), stuck.getMetadata().getFinalizers());
            assertEquals("vfio-pci", device(sim, GPU).driver(), "nothing gave the device back");

            List<Diagnosis.Finding> f = ClaimRemovalCheck.terminatingClaims(List.of(stuck), controllerPods(sim), Instant.now());
            assertEquals(1, f.size());
            assertEquals(Diagnosis.Status.FAIL, f.get(0).status());
            assertTrue(f.get(0).evidence().contains("pod " + ALTRA_POD + " is NotReady (CrashLoopBackOff"), f.get(0).evidence());
            assertEquals("kubectl -n harvester-system delete pod " + ALTRA_POD, f.get(0).fix());

            // The fix: restart altra's agent; the new pod gives the device back.
            c.pods().inNamespace("harvester-system").withName(ALTRA_POD).delete();
            eventually("claim released", () -> claim(sim, GPU) == null);
            eventually("driver restored", () -> "nouveau".equals(device(sim, GPU).driver()));
            assertFalse(sim.fault(Fault.CLAIM_STUCK_TERMINATING));
        }
    }

    // ---- claims written from public guides ------------------------------------------------------

    @Test
    void aGuideWrittenClaimIsDeniedAndIfItGetsInItIsNeverProcessedNorReleased() throws Exception {
        String guide = """
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata: {name: gpu-claim}
                spec: {address: "01:00.0", nodeName: altra, userName: admin}
                """;
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = user(sim)) {
            KubernetesClientException denied = assertThrows(KubernetesClientException.class,
                    () -> Harvester.pciDeviceClaims(c).resource(Serialization.unmarshal(guide, GenericKubernetesResource.class)).create());
            assertTrue(denied.getMessage().contains("denied the request: pcidevices.devices.harvesterhci.io \"gpu-claim\" not found"), denied.getMessage());

            // Applied while no webhook answered (failurePolicy Ignore): wrangler still adds the finalizer...
            sim.admin().genericKubernetesResources(Harvester.PCI_DEVICE_CLAIMS).resource(Serialization.unmarshal(guide, GenericKubernetesResource.class)).create();
            eventually("finalizer added", () -> Harvester.hasClaimFinalizer(claim(sim, "gpu-claim")));
            eventually("reconcile fails", () -> sim.agentLog("altra").stream().anyMatch(l -> l.contains("Cannot find PCIDevice that owns gpu-claim")));
            assertFalse(enabled(sim, "gpu-claim"));

            List<Diagnosis.Finding> f = GuideClaimCheck.guideClaims(List.of(claim(sim, "gpu-claim")), Harvester.pciDevices(sim.admin()).list().getItems());
            assertEquals(1, f.size());
            assertTrue(f.get(0).evidence().contains("no PCIDevice is named gpu-claim"), f.get(0).evidence());
            // four devices on altra sit at <domain>:01:00.0: the short address is ambiguous
            assertEquals("find the device with: inventory --node altra, then: claim --force DEVICE", f.get(0).fix());

            // ...and OnRemove cannot resolve the device, so the finalizer is never removed.
            Harvester.pciDeviceClaims(c).withName("gpu-claim").delete();
            eventually("OnRemove fails", () -> sim.agentLog("altra").stream().anyMatch(l -> l.contains("Error getting claim's device: Cannot find PCIDevice that owns gpu-claim")));
            sleep(500);
            GenericKubernetesResource stuck = claim(sim, "gpu-claim");
            assertNotNull(stuck);
            List<Diagnosis.Finding> t = ClaimRemovalCheck.terminatingClaims(List.of(stuck), controllerPods(sim), Instant.now());
            assertEquals("kubectl patch pcideviceclaims.devices.harvesterhci.io gpu-claim --type merge -p '{\"metadata\":{\"finalizers\":null}}'", t.get(0).fix());
            // that fix works: the API server then deletes it
            Harvester.pciDeviceClaims(c).withName("gpu-claim").edit(x -> {
                x.getMetadata().setFinalizers(List.of());
                return x;
            });
            eventually("guide claim gone", () -> claim(sim, "gpu-claim") == null);
        }
    }

    // ---- resource pooling off ---------------------------------------------------------------------

    @Test
    void poolingOffNamesTheResourcePerDeviceEverywhereAndAVmStartsWithIt() throws Exception {
        String perDevice = "nvidia.com/" + GPU;
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = user(sim)) {
            claimAndWait(sim, c, GPU, true);
            claimAndWait(sim, c, AUDIO, false);
            Harvester.PciDevice d = device(sim, GPU);
            assertEquals(perDevice, d.resourceName());
            assertEquals(perDevice, Harvester.pciDevices(sim.admin()).withName(GPU).get().getMetadata().getAnnotations()
                    .get(Harvester.OVERRIDE_RESOURCE_NAME_ANNOTATION));
            assertEquals(AUDIO_RES, device(sim, AUDIO).resourceName(), "the audio claim kept pooling");
            assertEquals(1, permittedCount(sim, perDevice));
            assertEquals(0, permittedCount(sim, GPU_RES));
            eventually("allocatable per device", () -> "1".equals(allocatable(sim, "altra", perDevice)));
            assertNull(allocatable(sim, "altra", GPU_RES));

            // Only creation counts: turning the field off later changes nothing, and diagnose says so.
            Harvester.pciDeviceClaims(c).withName(GPU).edit(x -> {
                x.<Map<String, Object>>get("spec").put(Harvester.DISABLE_POOLING_FIELD, false);
                return x;
            });
            sleep(300);
            assertEquals(perDevice, device(sim, GPU).resourceName());
            List<Diagnosis.Finding> f = PoolingCheck.pooling(Harvester.pciDeviceClaims(sim.admin()).list().getItems(),
                    Harvester.pciDevices(sim.admin()).list().getItems(), List.of());
            assertEquals(1, f.size(), f.toString());
            assertEquals("claim --force " + GPU + "   (recreates the claim; stop VMs using it first)", f.get(0).fix());

            // The VM webhook and virt-controller accept the per-device name; the VM runs with it.
            restartWith(sim, c, List.of(Map.of("name", GPU, "deviceName", perDevice), Map.of("name", AUDIO, "deviceName", AUDIO_RES)));
            running(sim);

            // Removing the claim brings the pooled name back.
            restartWith(sim, c, List.of());
            eventually("allocation rewritten", () -> "Running".equals(vmiPhase(sim)) && !KubeVirt.allocatedDevices(
                    KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get()).containsKey(perDevice));
            Harvester.pciDeviceClaims(c).withName(GPU).delete();
            eventually("pooled name back", () -> GPU_RES.equals(device(sim, GPU).resourceName()));
            assertNull(Harvester.pciDevices(sim.admin()).withName(GPU).get().getMetadata().getAnnotations()
                    .get(Harvester.OVERRIDE_RESOURCE_NAME_ANNOTATION));
        }
    }

    @Test
    void aNodeNameWithADotBreaksThePerDeviceResourceInTheLauncher() throws Exception {
        String node = "gpu.lab";
        String dev = node + "-000001000";
        String res = "nvidia.com/" + dev;
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = user(sim)) {
            sim.seed(SimCluster.parseDocuments("""
                    apiVersion: v1
                    kind: Node
                    metadata: {name: gpu.lab, labels: {kubernetes.io/hostname: gpu.lab}}
                    status:
                      capacity: {cpu: "32", memory: 263746036Ki, pods: "110"}
                      allocatable: {cpu: "32", memory: 263746036Ki, pods: "110"}
                      conditions: [{type: Ready, status: "True"}]
                    ---
                    apiVersion: v1
                    kind: Pod
                    metadata:
                      name: harvester-pcidevices-controller-q8v4z
                      namespace: harvester-system
                      labels: {app.kubernetes.io/name: harvester-pcidevices-controller, app.kubernetes.io/instance: pcidevices-controller}
                    spec:
                      nodeName: gpu.lab
                      containers: [{name: agent, image: "rancher/harvester-pcidevices:v1.9.0", args: [agent]}]
                    status:
                      phase: Running
                      conditions: [{type: Ready, status: "True"}]
                    ---
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDevice
                    metadata:
                      name: gpu.lab-000001000
                      labels: {nodename: gpu.lab}
                      annotations: {harvesterhci.io/pcideviceDriver: nouveau}
                    spec: {}
                    status: {address: "0000:01:00.0", vendorId: "10de", deviceId: "2204", classId: "0300", iommuGroup: "5", nodeName: gpu.lab,
                      resourceName: nvidia.com/GA102_GEFORCE_RTX_3090, kernelDriverInUse: nouveau,
                      description: "VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090]"}
                    """));
            claimAndWait(sim, c, dev, true);
            assertEquals(res, device(sim, dev).resourceName());
            List<Diagnosis.Finding> f = PoolingCheck.pooling(List.of(claim(sim, dev)), Harvester.pciDevices(sim.admin()).list().getItems(), List.of());
            assertEquals(List.of(PoolingCheck.DOT_CHECK), f.stream().map(Diagnosis.Finding::check).toList());

            restartWith(sim, c, List.of(Map.of("name", dev, "deviceName", res)));
            eventually("launcher fails", () -> "Failed".equals(vmiPhase(sim)));
            GenericKubernetesResource vmi = KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").get();
            assertTrue(Serialization.asJson(vmi.get("status", "conditions")).contains(
                    "failed to create PCI device for gpu.lab-000001000: PCI_RESOURCE_NVIDIA_COM_GPU_LAB-000001000 not set for resource nvidia.com/gpu.lab-000001000"),
                    Serialization.asJson(vmi.get("status")));
        }
    }

    // ---- bare-metal GPU nodes -------------------------------------------------------------------------

    @Test
    void aBaremetalGpuNodeRefusesNvidiaGpuClaimsOnly() throws Exception {
        try (SimCluster sim = SimCluster.start(fast().fault(Fault.BAREMETAL_GPU_NODE)); KubernetesClient c = user(sim)) {
            eventually("altra labelled", () -> "true".equals(sim.admin().nodes().withName("altra").get().getMetadata().getLabels().get(Harvester.BAREMETAL_GPU_LABEL)));
            KubernetesClientException e = assertThrows(KubernetesClientException.class,
                    () -> Harvester.pciDeviceClaims(c).resource(uiClaim(sim, GPU, false)).create());
            assertEquals(500, e.getCode());
            assertTrue(e.getMessage().contains("admission webhook \"pcidevices.harvesterhci.io\" denied the request: pcidevice altra-000c01000 is an nvidia gpu "
                    + "on node altra which is labelled harvesterhci.io/gpu-baremetal-workloads=true"), e.getMessage());
            assertNull(claim(sim, GPU));
            var finding = BaremetalCheck.claimDenied(GPU, sim.admin().nodes().withName("altra").get(), e.getStatus().getMessage());
            assertTrue(finding.isPresent());
            assertTrue(finding.get().fix().endsWith("kubectl label node altra harvesterhci.io/gpu-baremetal-workloads-"), finding.get().fix());

            // the audio function is no GPU; bravo's GPU is on an unlabelled node
            claimAndWait(sim, c, AUDIO, false);
            claimAndWait(sim, c, "bravo-000041000", false);

            sim.faults().remove(Fault.BAREMETAL_GPU_NODE);
            eventually("label removed", () -> !sim.admin().nodes().withName("altra").get().getMetadata().getLabels().containsKey(Harvester.BAREMETAL_GPU_LABEL));
            claimAndWait(sim, c, GPU, false);
        }
    }

    // ---- permittedHostDevices duplicates ----------------------------------------------------------------

    @Test
    void duplicatePermittedEntriesAreHarmless() throws Exception {
        try (SimCluster sim = SimCluster.start(fast().fault(Fault.DUPLICATE_PERMITTED)); KubernetesClient c = user(sim)) {
            claimAndWait(sim, c, GPU, false);
            claimAndWait(sim, c, AUDIO, false);
            assertEquals(2, permittedCount(sim, GPU_RES));
            GenericKubernetesResource kv = KubeVirt.kubevirts(sim.admin()).inNamespace("harvester-system").withName("kubevirt").get();
            List<Diagnosis.Finding> f = PermittedCheck.permitted(kv, List.of(device(sim, GPU)), controllerPods(sim));
            assertEquals(List.of("permitted-duplicates:WARN", "permitted-duplicates:WARN", "permitted:PASS"),
                    f.stream().map(x -> x.check() + ":" + x.status()).toList());

            restartWith(sim, c, List.of(Map.of("name", GPU, "deviceName", GPU_RES), Map.of("name", AUDIO, "deviceName", AUDIO_RES)));
            running(sim);
        }
    }

    // ---- the add-on --------------------------------------------------------------------------------------

    @Test
    void aDisabledAddOnMeansNoControllerUntilItIsEnabled() throws Exception {
        try (SimCluster sim = SimCluster.start(fast().fault(Fault.ADDON_DISABLED)); KubernetesClient c = user(sim)) {
            eventually("add-on disabled", () -> Harvester.ADDON_DISABLED.equals(addonStatus(sim)));
            eventually("no pods", () -> controllerPods(sim).isEmpty());
            assertEquals(0, Harvester.pciDevices(sim.admin()).list().getItems().size());
            GenericKubernetesResource addon = Harvester.addons(sim.admin()).withName(Harvester.ADDON_NAME).get();
            assertEquals(false, addon.get("spec", "enabled"));
            List<Diagnosis.Finding> f = AddonCheck.addon(addon, List.of(), List.of(), versions(sim), Instant.now());
            assertEquals(Diagnosis.Status.FAIL, f.get(0).status());
            assertEquals(Harvester.addonEnableCommand(), f.get(0).fix());

            // No webhook answers (failurePolicy Ignore) and nothing processes claims.
            Harvester.pciDeviceClaims(c).resource(Serialization.unmarshal("""
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDeviceClaim
                    metadata: {name: altra-000c01000}
                    spec: {address: "000c:01:00.0", nodeName: altra, userName: admin}
                    """, GenericKubernetesResource.class)).create();
            sleep(500);
            List<String> finalizers = claim(sim, GPU).getMetadata().getFinalizers();
            assertTrue(finalizers == null || finalizers.isEmpty(), "no agent added the finalizer: " + finalizers);
            Harvester.pciDeviceClaims(c).withName(GPU).delete();
            eventually("unprocessed claim deleted at once", () -> claim(sim, GPU) == null);

            // Enabling it (what the UI's Add-ons page does) deploys the controller and discovers the devices.
            Harvester.addons(c).withName(Harvester.ADDON_NAME).edit(a -> {
                a.<Map<String, Object>>get("spec").put("enabled", true);
                return a;
            });
            eventually("deployed", () -> Harvester.ADDON_DEPLOYED.equals(addonStatus(sim)));
            eventually("pods Ready", () -> controllerPods(sim).size() == 2 && controllerPods(sim).stream().allMatch(p -> "True".equals(
                    p.getStatus().getConditions().get(0).getStatus())));
            assertEquals(9, Harvester.pciDevices(sim.admin()).list().getItems().size());
            claimAndWait(sim, c, GPU, false);
        }
    }

    @Test
    void aDeployedAddOnWithoutDevicesIsTheRc4Regression() throws Exception {
        try (SimCluster sim = SimCluster.start(fast().fault(Fault.ADDON_NO_DEVICES))) {
            eventually("no devices", () -> Harvester.pciDevices(sim.admin()).list().getItems().isEmpty());
            eventually("rc4", () -> "v1.9.0-rc4".equals(versions(sim).harvesterText()));
            assertEquals(Harvester.ADDON_DEPLOYED, addonStatus(sim));
            assertEquals(2, controllerPods(sim).size());
            GenericKubernetesResource addon = Harvester.addons(sim.admin()).withName(Harvester.ADDON_NAME).get();
            // the seeded pods started 2026-11-20T08:00:00Z
            List<Diagnosis.Finding> f = AddonCheck.addon(addon, List.of(), controllerPods(sim), versions(sim), Instant.parse("2026-11-20T08:10:00Z"));
            Diagnosis.Finding last = f.get(f.size() - 1);
            assertEquals(AddonCheck.NO_DEVICES_CHECK + ":FAIL", last.check() + ":" + last.status());
            assertTrue(last.evidence().contains("harvester#11360"), last.evidence());
            assertEquals("upgrade to Harvester v1.9.0 or later", last.fix());
        }
    }

    static String addonStatus(SimCluster sim) {
        GenericKubernetesResource a = Harvester.addons(sim.admin()).withName(Harvester.ADDON_NAME).get();
        return a == null ? null : String.valueOf((Object) a.get("status", "status"));
    }

    static ClusterVersions versions(SimCluster sim) {
        return ClusterVersions.of(Harvester.settings(sim.admin()).withName(Harvester.SERVER_VERSION_SETTING).get(),
                KubeVirt.kubevirts(sim.admin()).inNamespace("harvester-system").withName("kubevirt").get());
    }

    // ---- stale deviceAllocationDetails ------------------------------------------------------------------

    @Test
    void aStaleAllocationAnnotationWinsAtTheNextStart() throws Exception {
        String second = Seed.SECOND_GPU;
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = user(sim)) {
            Seed.secondGpuReady(sim); // a second RTX 3090 on altra, alone in IOMMU group 19
            // docker-host is stopped with hostDevices naming the second GPU, but an annotation left by an
            // earlier run still maps the resource to the first one (seeded: harvester#10793's state).
            KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
                vm.<Map<String, Object>>get("spec").put("runStrategy", "Halted");
                return vm;
            });
            eventually("stopped", () -> vmiPhase(sim).isEmpty());
            KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
                Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
                devices.put("hostDevices", new ArrayList<>(List.of(Map.of("name", second, "deviceName", GPU_RES), Map.of("name", AUDIO, "deviceName", AUDIO_RES))));
                vm.getMetadata().getAnnotations().put(Harvester.ALLOCATION_ANNOTATION,
                        "{\"hostdevices\":{\"" + GPU_RES + "\":[\"" + GPU + "\"],\"" + AUDIO_RES + "\":[\"" + AUDIO + "\"]}}");
                return vm;
            });
            GenericKubernetesResource vm = KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get();
            List<Diagnosis.Finding> f = AllocationCheck.staleAllocation(vm, Harvester.pciDevices(sim.admin()).list().getItems());
            assertEquals(1, f.size(), f.toString());
            assertTrue(f.get(0).evidence().contains("the next start really gets " + GPU), f.get(0).evidence());

            // and so it does
            KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(x -> {
                x.<Map<String, Object>>get("spec").put("runStrategy", "Always");
                return x;
            });
            running(sim);
            eventually("allocation written", () -> KubeVirt.allocatedDevices(KubeVirt.vms(sim.admin()).inNamespace("default")
                    .withName("docker-host").get()).containsKey(GPU_RES));
            assertEquals(List.of(GPU), KubeVirt.allocatedDevices(KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get()).get(GPU_RES));
        }
    }

    // ---- versions and the sandbox's fault list ------------------------------------------------------------

    @Test
    void theFixtureIsHarvesterV190WithKubeVirt184AndTheAddOnDeployed() {
        try (SimCluster sim = SimCluster.start(fast())) {
            ClusterVersions v = versions(sim);
            assertEquals("Harvester v1.9.0, KubeVirt 1.8.4", v.describe());
            assertTrue(v.atLeastV19());
            assertEquals(Harvester.ADDON_DEPLOYED, addonStatus(sim));
        }
    }

    @Test
    void everyNewFaultIsListedWithItsDescription() {
        Run.Result r = Run.script(new sandbox(), "--list-faults");
        assertEquals(0, r.exit(), r.all());
        for (Fault f : List.of(Fault.CLAIM_STUCK_TERMINATING, Fault.BAREMETAL_GPU_NODE, Fault.DUPLICATE_PERMITTED, Fault.ADDON_DISABLED, Fault.ADDON_NO_DEVICES)) {
            String name = f.name().toLowerCase().replace('_', '-');
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith(name + " ") && l.endsWith(f.description)), name + " in\n" + r.out());
        }
    }
}
