import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * diagnose against the simulated cluster: a fully ready cluster passes every check; each failure
 * mode is seeded the way it shows up in the API (what the fault produces), and diagnose must name
 * it, with its evidence and its fix.
 */
class DiagnoseTest {
    static final String GPU = "altra-000c01000";
    static final String AUDIO = "altra-000c01001";
    static final String GPU_RES = "nvidia.com/GA102_GEFORCE_RTX_3090";
    static final String AUDIO_RES = "nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER";
    static final String ALTRA_POD = "harvester-pcidevices-controller-x7k2p";

    SimCluster sim;
    KubernetesClient c;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
        c = sim.admin();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    // ---- seeding ----

    /** The state after claim + attach succeeded: everything diagnose checks holds. */
    void healthy() {
        Seed.gpuReady(sim);
        editVm(vm -> {
            hostDevices(vm).add(Map.of("name", GPU, "deviceName", GPU_RES));
            Map<String, Object> tspec = vm.get("spec", "template", "spec");
            tspec.put("nodeSelector", Map.of("kubernetes.io/hostname", "altra"));
            vm.getMetadata().getAnnotations().put(Harvester.ALLOCATION_ANNOTATION,
                    "{\"hostdevices\":{\"kubevirt.io/altra-0951-1666-003002\":[\"altra-0951-1666-003002\"],\"" + GPU_RES + "\":[\"" + GPU + "\"]}}");
            return vm;
        });
        KubeVirt.vmis(c).inNamespace("default").withName("docker-host").edit(vmi -> {
            List<Object> hd = vmi.get("spec", "domain", "devices", "hostDevices");
            List<Object> copy = new ArrayList<>(hd);
            copy.add(Map.of("name", GPU, "deviceName", GPU_RES));
            ((Map<String, Object>) vmi.<Map<String, Object>>get("spec", "domain", "devices")).put("hostDevices", copy);
            return vmi;
        });
    }

    /** A claim like the UI makes (ownerReference to the live PCIDevice); enabled = what the controller did. */
    void claim(String name, String user, boolean enabled) {
        Seed.claim(sim, name, user, enabled);
    }

    void driver(String device, String driver) {
        Seed.driver(sim, device, driver);
    }

    void editVm(java.util.function.UnaryOperator<GenericKubernetesResource> f) {
        KubeVirt.vms(c).inNamespace("default").withName("docker-host").edit(f);
    }

    @SuppressWarnings("unchecked")
    static List<Object> hostDevices(GenericKubernetesResource vm) {
        Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
        List<Object> copy = new ArrayList<>((List<Object>) devices.get("hostDevices"));
        devices.put("hostDevices", copy);
        return copy;
    }

    /** Replaces the VMI's status (VMIs have no status subresource: a plain update). */
    void vmiStatus(String phase, String node, Map<String, Object> condition) {
        KubeVirt.vmis(c).inNamespace("default").withName("docker-host").edit(vmi -> {
            Map<String, Object> st = vmi.get("status");
            st.put("phase", phase);
            st.put("nodeName", node);
            st.put("conditions", List.of(condition));
            return vmi;
        });
    }

    void event(String kind, String reason, String message) {
        c.v1().events().inNamespace("default").resource(new EventBuilder().withNewMetadata()
                .withName("docker-host." + Long.toHexString(System.nanoTime())).withNamespace("default").endMetadata()
                .withNewInvolvedObject().withApiVersion("kubevirt.io/v1").withKind(kind).withName("docker-host").withNamespace("default").endInvolvedObject()
                .withType("Warning").withReason(reason).withMessage(message).withLastTimestamp("2026-11-24T10:00:00Z").build()).create();
    }

    // ---- running and reading ----

    Run.Result diagnose(String... args) {
        return Run.against(sim, new diagnose(), args);
    }

    /** diagnose docker-host --device altra-000c01000 -o json */
    Run.Result json() {
        return diagnose("docker-host", "--device", GPU, "-o", "json");
    }

    static JsonNode finding(Run.Result r, String check, String status) {
        try {
            for (JsonNode f : Serialization.jsonMapper().readTree(r.out())) {
                if (f.get("check").asText().equals(check) && f.get("status").asText().equals(status)) return f;
            }
        } catch (Exception e) {
            throw new AssertionError("not JSON: " + r.all(), e);
        }
        throw new AssertionError("no " + status + " finding for " + check + " in\n" + r.all());
    }

    /** The finding exists, and its evidence and fix say what they must. */
    static JsonNode expect(Run.Result r, Cli.Exit exit, String check, String status, String evidence, String fix) {
        assertEquals(exit.code, r.exit(), r.all());
        JsonNode f = finding(r, check, status);
        assertTrue(f.get("evidence").asText().contains(evidence), "evidence of " + check + ": " + f);
        assertTrue(f.get("fix").asText().contains(fix), "fix of " + check + ": " + f);
        return f;
    }

    static void waitFor(String what, BooleanSupplier cond) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    Pod altraPod() {
        return ControllerHealth.podOn(ControllerHealth.pods(c), "altra");
    }

    // ---- a healthy cluster ----

    @Test
    void healthyClusterPassesEveryCheck() {
        healthy();
        Run.Result r = diagnose("docker-host");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        List<String> lines = r.out().lines().toList();
        assertEquals("Harvester v1.9.0, KubeVirt 1.8.4", lines.get(0), "the versions head the report");
        assertTrue(lines.get(1).matches("CHECK\\s+STATUS\\s+SUBJECT\\s+EVIDENCE"), lines.get(1));
        assertFalse(r.out().contains("WARN") || r.out().contains("FAIL") || r.out().contains("FIX:"), r.out());
        for (String check : List.of("addon", "controller-pod", "controller-log", "pcidevice", "claimed", "owner-reference", "passthrough-enabled",
                "vfio-driver", "permitted", "permitted-selector", "allocatable", "shared-device", "vm-device", "vm-pinned", "run-strategy", "vmi-status")) {
            assertTrue(lines.stream().anyMatch(l -> l.matches(check + "\\s+PASS\\s+.*")), check + " missing:\n" + r.out());
        }
        assertTrue(lines.get(lines.size() - 1).matches("\\d+ passed, 0 warnings, 0 failed"), lines.get(lines.size() - 1));
        // both functions of IOMMU group 18 are checked, not just the GPU
        assertTrue(r.out().lines().anyMatch(l -> l.matches("vfio-driver\\s+PASS\\s+" + AUDIO + "\\s+.*")), r.out());
    }

    @Test
    void jsonIsAnArrayOfFindingsAndWideAddsTheFixColumn() throws Exception {
        healthy();
        Run.Result r = json();
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode arr = Serialization.jsonMapper().readTree(r.out());
        assertTrue(arr.isArray() && arr.size() > 10, r.out());
        for (JsonNode f : arr) {
            for (String field : List.of("check", "status", "subject", "evidence", "fix")) assertTrue(f.has(field), f.toString());
        }
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            return vm;
        });
        Run.Result wide = diagnose("docker-host", "--device", GPU, "-o", "wide");
        assertEquals(Cli.Exit.DIAGNOSE_FAIL.code, wide.exit(), wide.all());
        assertTrue(wide.out().lines().skip(1).findFirst().orElseThrow().matches("CHECK\\s+STATUS\\s+SUBJECT\\s+EVIDENCE\\s+FIX"), wide.out());
        assertTrue(wide.out().lines().anyMatch(l -> l.matches("vm-device\\s+FAIL\\s+default/docker-host\\s+.*attach docker-host --device " + GPU + " -n default")),
                wide.out());
    }

    // ---- bad input: one line, documented exit code, no change ----

    @Test
    void unknownVmNodeOrDeviceIsNotFound() {
        for (String[] args : List.of(new String[] {"no-such-vm"}, new String[] {"--device", "altra-ffff01000"},
                new String[] {"--node", "charlie"}, new String[] {"docker-host", "-n", "other"})) {
            sim.clearClientRequests();
            Run.Result r = diagnose(args);
            assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("diagnose: "), r.err());
            assertTrue(sim.clientRequests().stream().allMatch(q -> q.startsWith("GET ")), sim.clientRequests().toString());
        }
        Run.Result r = diagnose("--node", "altra", "--device", "0c:1:0");
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertTrue(r.err().contains("malformed PCI address"), r.err());
    }

    @Test
    void fixWithoutYesOnANonInteractiveStdinRefusesBeforeTouchingTheCluster() {
        sim.faults().add(Fault.CONTROLLER_DOWN);
        sim.clearClientRequests();
        Run.Result r = diagnose("docker-host", "--fix");
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("--yes"), r.err());
        assertEquals(List.of(), sim.clientRequests());
        assertNotNull(c.pods().inNamespace("harvester-system").withName(ALTRA_POD).get());
    }

    // ---- controller pods and their agent log ----

    @Test
    void controllerDownIsAFailWithTheRestartAsFix() {
        healthy();
        sim.faults().add(Fault.CONTROLLER_DOWN);
        waitFor("altra's controller pod to crash", () -> !ControllerHealth.ready(altraPod()));
        Run.Result r = json();
        JsonNode f = expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-pod", "FAIL", "CrashLoopBackOff", "kubectl -n harvester-system delete pod " + ALTRA_POD);
        assertEquals(ALTRA_POD, f.get("subject").asText());
        assertTrue(f.get("evidence").asText().contains("not Ready on node altra"), f.toString());
        // bravo's pod is down too, but it does not hold the device: a warning
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-pod", "WARN", "node bravo", "kubectl -n harvester-system delete pod harvester-pcidevices-controller-m4d9q");
        // the crash was logged by the agent on altra
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "error syncing", "kubectl -n harvester-system delete pod " + ALTRA_POD);
    }

    @Test
    void fixRestartsTheControllerPodAndChecksAgain() {
        healthy();
        sim.faults().add(Fault.CONTROLLER_DOWN);
        waitFor("altra's controller pod to crash", () -> !ControllerHealth.ready(altraPod()));
        waitFor("bravo's controller pod to crash", () -> !ControllerHealth.ready(ControllerHealth.podOn(ControllerHealth.pods(c), "bravo")));
        Run.Result r = diagnose("docker-host", "--fix", "--yes");
        assertTrue(r.err().contains("running: kubectl -n harvester-system delete pod " + ALTRA_POD), r.all());
        Pod fresh = altraPod();
        assertNotEquals(ALTRA_POD, fresh.getMetadata().getName());
        assertTrue(fresh.getMetadata().getName().startsWith("harvester-pcidevices-controller-"), fresh.getMetadata().getName());
        assertEquals("altra", fresh.getSpec().getNodeName());
        assertTrue(ControllerHealth.ready(fresh));
        assertFalse(sim.fault(Fault.CONTROLLER_DOWN));
        assertEquals(2, ControllerHealth.pods(c).size());
        // the second report (after the fix) is the last table printed: the new pod has a fresh log
        String after = r.out().substring(r.out().lastIndexOf("CHECK "));
        assertTrue(after.lines().anyMatch(l -> l.matches("controller-pod\\s+PASS\\s+" + fresh.getMetadata().getName() + "\\s+Ready on node altra.*")), r.out());
        assertTrue(after.lines().anyMatch(l -> l.matches("controller-log\\s+PASS\\s+.*")), r.out());
    }

    @Test
    void fixWithJsonPrintsOneDocumentTheReportAfterTheFix() throws Exception {
        sim.faults().add(Fault.CONTROLLER_DOWN);
        waitFor("altra's controller pod to crash", () -> !ControllerHealth.ready(altraPod()));
        Run.Result r = diagnose("--node", "altra", "--fix", "--yes", "-o", "json");
        JsonNode arr = Serialization.jsonMapper().readTree(r.out());
        assertTrue(arr.isArray(), r.all());
        String fresh = altraPod().getMetadata().getName();
        assertNotEquals(ALTRA_POD, fresh);
        JsonNode pod = finding(r, "controller-pod", "PASS");
        assertTrue(r.out().contains("\"subject\" : \"" + fresh + "\""), r.out());
        assertNotNull(pod);
    }

    @Test
    void exitCodeReachesTheShell() {
        Run.Result r = Run.process(Map.of("KUBECONFIG", sim.kubeconfig().toString(), "HOME", sim.dir().toString()), "diagnose", "docker-host");
        assertEquals(Cli.Exit.DIAGNOSE_WARN.code, r.exit(), r.all()); // the fixture VM has no PCI host device yet: a warning
        assertTrue(r.out().contains("the VM has no PCI host device"), r.out());
        assertTrue(r.out().contains("FIX: inventory"), r.out());
    }

    @Test
    void deletingAControllerPodRecreatesItOnTheSameNodeAndClearsControllerDown() {
        sim.faults().add(Fault.CONTROLLER_DOWN);
        waitFor("crash", () -> !ControllerHealth.ready(altraPod()));
        waitFor("restartCount to grow", () -> altraPod().getStatus().getContainerStatuses().get(0).getRestartCount() >= 2);
        assertEquals("CrashLoopBackOff", altraPod().getStatus().getContainerStatuses().get(0).getState().getWaiting().getReason());
        assertTrue(sim.agentLog("altra").stream().anyMatch(l -> l.contains("Sleeping for 15 seconds then applying webhook config")));
        c.pods().inNamespace("harvester-system").withName(ALTRA_POD).delete();
        waitFor("a new Ready pod on altra", () -> {
            Pod p = altraPod();
            return p != null && !p.getMetadata().getName().equals(ALTRA_POD) && ControllerHealth.ready(p);
        });
        assertFalse(sim.fault(Fault.CONTROLLER_DOWN));
    }

    @Test
    void noControllerPodsMeansTheAddOnIsOff() {
        // With the add-on disabled there is no DaemonSet, so no pods: the API server lists none.
        sim.addInterceptor((req, path) -> path.startsWith("/api/v1/namespaces/harvester-system/pods?")
                ? new io.fabric8.mockwebserver.http.MockResponse().setResponseCode(200).setHeader("Content-Type", "application/json")
                        .setBody("{\"apiVersion\":\"v1\",\"kind\":\"PodList\",\"metadata\":{},\"items\":[]}")
                : null);
        Run.Result r = diagnose("-o", "json");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-pod", "FAIL", "add-on is not enabled", "patch addons.harvesterhci.io pcidevices-controller");
    }

    @Test
    void pcidevicesApiMissingIsTheAddOnNotEnabled() {
        sim.addInterceptor((req, path) -> path.startsWith("/apis/devices.harvesterhci.io/v1beta1/pcidevices")
                ? SimDispatcher.status(404, "NotFound", "the server could not find the requested resource") : null);
        Run.Result r = diagnose("docker-host", "-o", "json");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "pcidevices-api", "FAIL", "no resource type pcidevices", "pcidevices-controller --type merge -p '{\"spec\":{\"enabled\":true}}'");
    }

    @Test
    void bindFailsIsFoundInTheAgentLogAndTheFixIsAReboot() {
        healthy();
        claimNotEnabled(GPU, "nouveau");
        sim.agentLog("altra", "Binding device altra-000c01000 [10de 2204] to vfio-pci");
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: error writing to bind file: write /sys/bus/pci/drivers/vfio-pci/bind: invalid argument, requeuing");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "vfio-pci/bind: invalid argument", "reboot node altra");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "passthrough-enabled", "FAIL", "status.passthroughEnabled=false", "kubectl -n harvester-system delete pod " + ALTRA_POD);
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "vfio-driver", "FAIL", "kernelDriverInUse=nouveau", "delete pod " + ALTRA_POD);
    }

    @Test
    void deviceBusyInTheAgentLogIsAFail() {
        healthy();
        claimNotEnabled(GPU, "nouveau");
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: write /sys/bus/pci/drivers/nouveau/unbind: device or resource busy, requeuing");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "device or resource busy", "reboot node altra");
    }

    @Test
    void noDeviceAtVfioPciIsAFail() {
        healthy();
        claimNotEnabled(GPU, "nouveau");
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: no device 000c:01:00.0 found at /sys/bus/pci/drivers/vfio-pci, requeuing");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "no device 000c:01:00.0 found at /sys/bus/pci/drivers/vfio-pci", "reboot node altra");
    }

    @Test
    void deviceStillBoundIsAWarning() {
        healthy();
        sim.agentLog("altra", "device still bound to driver, will check again");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_WARN, "controller-log", "WARN", "device still bound to driver", "kubectl get pcidevices -l nodename=altra");
    }

    @Test
    void missingOwnerReferenceIsNamedFromTheClaimAndTheLog() {
        healthy();
        Harvester.pciDeviceClaims(c).withName(GPU).edit(cl -> {
            cl.getMetadata().setOwnerReferences(List.of());
            return cl;
        });
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: Cannot find PCIDevice that owns altra-000c01000, requeuing");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "owner-reference", "FAIL", "no ownerReference", "claim --force " + GPU);
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "Cannot find PCIDevice that owns altra-000c01000", "claim --force " + GPU);
    }

    @Test
    void iommuGroupMismatchIsFixedByARestart() {
        healthy();
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: group mismatch: sys 19 pd 18, requeuing");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "group mismatch: sys 19 pd 18", "kubectl -n harvester-system delete pod " + ALTRA_POD);
    }

    @Test
    void iommuOffShowsAsNoGroup() {
        healthy();
        Harvester.pciDevices(c).withName(GPU).editStatus(x -> {
            ((Map<String, Object>) x.getAdditionalProperties().get("status")).put("iommuGroup", "");
            return x;
        });
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: missing group for address: 000c:01:00.0, requeuing");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "pcidevice", "FAIL", "no status.iommuGroup", "enable IOMMU/SMMU");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "missing group for address", "enable IOMMU/SMMU");
    }

    @Test
    void kubevirtCrUpdateErrorIsFixedByARestart() {
        healthy();
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: error updating kubevirt CR: Operation cannot be fulfilled on kubevirts.kubevirt.io \"kubevirt\": the object has been modified, requeuing");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "error updating kubevirt CR", "delete pod " + ALTRA_POD);
    }

    @Test
    void anyOtherSyncErrorIsShown() {
        healthy();
        sim.agentLog("altra", "error syncing 'altra-000c01000': handler PCIDeviceClaimReconcile: something new went wrong, requeuing");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "controller-log", "FAIL", "something new went wrong", "delete pod " + ALTRA_POD);
    }

    void claimNotEnabled(String device, String driver) {
        Harvester.pciDeviceClaims(c).withName(device).editStatus(cl -> {
            ((Map<String, Object>) cl.getAdditionalProperties().get("status")).put("passthroughEnabled", false);
            return cl;
        });
        driver(device, driver);
    }

    // ---- claims, KubeVirt CR, device plugin ----

    @Test
    void unclaimedAudioFunctionFailsTheGroupAndQemuSaysNotViable() {
        healthy();
        Harvester.pciDeviceClaims(c).withName(AUDIO).delete();
        driver(AUDIO, "snd_hda_intel");
        vmiStatus("Failed", "altra", Map.of("type", "Ready", "status", "False", "reason", "PodTerminating",
                "message", "server error. command SyncVMI failed: \"LibvirtError(Code=1, Message='internal error: qemu unexpectedly closed the monitor: "
                        + "vfio 000c:01:00.0: group 18 is not viable. Please ensure all devices within the iommu_group are bound to their vfio bus driver.')\""));
        Run.Result r = json();
        JsonNode f = expect(r, Cli.Exit.DIAGNOSE_FAIL, "claimed", "FAIL", "shares IOMMU group 18", "claim " + GPU);
        assertEquals(AUDIO, f.get("subject").asText());
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "group-not-viable", "FAIL", "group 18 is not viable", "claim " + GPU);
    }

    @Test
    void fixReappliesTheMissingClaimThroughTheClaimCommand() throws Exception {
        healthy();
        Harvester.pciDeviceClaims(c).withName(AUDIO).delete();
        driver(AUDIO, "snd_hda_intel");
        Run.Result r = diagnose("docker-host", "--fix", "--yes", "--timeout", "30");
        assertTrue(r.err().contains("running: claim " + GPU), r.all());
        var claim = Harvester.PciDeviceClaim.of(Harvester.pciDeviceClaims(c).withName(AUDIO).get());
        assertTrue(claim.ownedBy(Harvester.device(c, AUDIO)), "re-applied with its ownerReference");
        assertTrue(claim.passthroughEnabled(), "the simulated controller enabled it");
        assertEquals("vfio-pci", Harvester.device(c, AUDIO).driver());
        String after = r.out().substring(r.out().lastIndexOf("CHECK "));
        assertTrue(after.lines().anyMatch(l -> l.matches("claimed\\s+PASS\\s+" + AUDIO + "\\s+.*")), r.out());
    }

    @Test
    void notPermittedIsFoundInTheCrAndInTheVmiCondition() {
        healthy();
        KubeVirt.kubevirts(c).inNamespace("harvester-system").withName("kubevirt").edit(kv -> {
            Map<String, Object> phd = kv.get("spec", "configuration", "permittedHostDevices");
            phd.remove("pciHostDevices");
            return kv;
        });
        vmiStatus("Pending", null, Map.of("type", "Synchronized", "status", "False", "reason", "FailedCreate",
                "message", "failed to render launch manifest: HostDevice " + GPU_RES + " is not permitted in permittedHostDevices configuration"));
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "permitted", "FAIL", "not in kubevirt permittedHostDevices.pciHostDevices: " + GPU_RES, "delete pod " + ALTRA_POD);
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "not-permitted", "FAIL", "HostDevice " + GPU_RES + " is not permitted", "claim " + GPU);
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "vmi-status", "FAIL", "VMI phase Pending", "kubectl -n default describe vmi docker-host");
    }

    @Test
    void permittedEntryWithTheWrongSelectorIsAWarning() {
        healthy();
        KubeVirt.kubevirts(c).inNamespace("harvester-system").withName("kubevirt").edit(kv -> {
            Map<String, Object> phd = kv.get("spec", "configuration", "permittedHostDevices");
            phd.put("pciHostDevices", List.of(Map.of("pciVendorSelector", "10de:1aef", "resourceName", GPU_RES, "externalResourceProvider", false),
                    Map.of("pciVendorSelector", "10de:1aef", "resourceName", AUDIO_RES, "externalResourceProvider", true)));
            return kv;
        });
        expect(json(), Cli.Exit.DIAGNOSE_WARN, "permitted-selector", "WARN", "pciVendorSelector 10de:1aef, externalResourceProvider false", "edit kubevirt kubevirt");
    }

    @Test
    void missingDevicePluginShowsInAllocatableAndInsufficientResource() {
        healthy();
        c.nodes().withName("altra").editStatus(n -> {
            n.getStatus().getAllocatable().remove(GPU_RES);
            n.getStatus().getCapacity().remove(GPU_RES);
            return n;
        });
        vmiStatus("Scheduling", null, Map.of("type", "PodScheduled", "status", "False", "reason", "Unschedulable",
                "message", "0/2 nodes are available: 2 Insufficient " + GPU_RES + ". preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."));
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "allocatable", "FAIL", "allocatable[" + GPU_RES + "]=<absent>, capacity[" + GPU_RES + "]=<absent>", "delete pod " + ALTRA_POD);
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "insufficient-resource", "FAIL", "Insufficient " + GPU_RES, "get pods -l app.kubernetes.io/name=harvester-pcidevices-controller");
    }

    @Test
    void claimByAnotherUserIsAWarning() {
        healthy();
        Harvester.pciDeviceClaims(c).withName(GPU).edit(cl -> {
            ((Map<String, Object>) cl.getAdditionalProperties().get("spec")).put("userName", "tofu");
            return cl;
        });
        expect(json(), Cli.Exit.DIAGNOSE_WARN, "claim-user", "WARN", "spec.userName=tofu", "kubectl patch pcideviceclaim " + GPU + " --type merge -p '{\"spec\":{\"userName\":\"admin\"}}'");
    }

    @Test
    void claimForAShiftedAddressIsAFail() {
        healthy();
        Harvester.pciDeviceClaims(c).withName(GPU).edit(cl -> {
            ((Map<String, Object>) cl.getAdditionalProperties().get("spec")).put("address", "000b:01:00.0");
            return cl;
        });
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "claim-address", "FAIL", "spec.address=000b:01:00.0", "kubectl delete pcideviceclaim " + GPU + " && claim " + GPU);
    }

    @Test
    void usbControllerWithPassedThroughUsbDevicesCannotBeClaimed() {
        Run.Result r = diagnose("--device", "altra-000d01000", "-o", "json");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "usb-controller", "FAIL", "altra-0951-1666-003002", "kubectl delete usbdeviceclaim altra-0951-1666-003002");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "claimed", "FAIL", "no PCIDeviceClaim altra-000d01000", "claim altra-000d01000");
    }

    @Test
    void cordonedNodeIsAWarning() {
        healthy();
        c.nodes().withName("altra").edit(n -> {
            n.setSpec(new io.fabric8.kubernetes.api.model.NodeSpecBuilder().withUnschedulable(true).build());
            return n;
        });
        expect(json(), Cli.Exit.DIAGNOSE_WARN, "node-schedulable", "WARN", "cordoned", "kubectl uncordon altra");
    }

    // ---- the VM ----

    @Test
    void vmWithoutTheDeviceIsFixedByAttach() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            return vm;
        });
        Run.Result r = diagnose("docker-host", "--device", GPU);
        assertEquals(Cli.Exit.DIAGNOSE_FAIL.code, r.exit(), r.all());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("vm-device\\s+FAIL\\s+default/docker-host\\s+.*has no " + GPU_RES + ".*")), r.out());
        assertTrue(r.out().contains("FIX: attach docker-host --device " + GPU + " -n default   # vm-device"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\d+ passed, \\d+ warnings, 1 failed")), r.out());
    }

    @Test
    void fixYesNeverAttachesNorRestartsARunningVmWithoutFixAll() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            return vm;
        });
        String uid = KubeVirt.vmis(c).inNamespace("default").withName("docker-host").get().getMetadata().getUid();
        Run.Result r = diagnose("docker-host", "--device", GPU, "--fix", "--yes", "--timeout", "60");
        assertTrue(r.err().contains("--fix skips (not a restore; run it yourself, or re-run with --fix-all):"), r.all());
        assertTrue(r.err().contains("  attach docker-host --device " + GPU + " -n default   # changes the spec of VM default/docker-host and restarts it (it is running)"), r.all());
        assertFalse(r.err().contains("running: attach"), r.all());
        var vm = KubeVirt.vms(c).inNamespace("default").withName("docker-host").get();
        assertFalse(KubeVirt.hostDevices(vm).contains(new KubeVirt.HostDevice(GPU, GPU_RES)), "the VM spec is untouched");
        assertEquals(uid, KubeVirt.vmis(c).inNamespace("default").withName("docker-host").get().getMetadata().getUid(), "not restarted");
    }

    @Test
    void fixYesNeverMakesAFirstClaimButRestoresADeletedOneAVmReferences() {
        // Nothing claimed, no VM references the GPU: claiming it is a first claim, not a restore.
        Run.Result first = diagnose("--device", GPU, "--fix", "--yes", "--timeout", "30");
        assertTrue(first.err().contains("  claim " + GPU + "   # a first claim: no VM references " + GPU + " or its IOMMU group"), first.all());
        assertFalse(first.err().contains("running: claim"), first.all());
        assertEquals(null, Harvester.pciDeviceClaims(c).withName(GPU).get(), "no claim made");
        // The plan marks a restore as safe.
        healthy();
        Harvester.pciDeviceClaims(c).withName(AUDIO).delete();
        driver(AUDIO, "snd_hda_intel");
        Run.Result restore = diagnose("docker-host", "--fix", "--yes", "--timeout", "30");
        assertTrue(restore.err().contains("  claim " + GPU + "   # safe: restores what was asked for"), restore.all());
        assertTrue(restore.err().contains("running: claim " + GPU), restore.all());
    }

    @Test
    void fixRunsAttachForAVmWithoutTheDevice() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            return vm;
        });
        Run.Result r = diagnose("docker-host", "--device", GPU, "--fix-all", "--yes", "--timeout", "60");
        assertTrue(r.err().contains("running: attach docker-host --device " + GPU + " -n default"), r.all());
        assertTrue(r.err().contains("attach docker-host --device " + GPU + " -n default   # --fix-all: changes the spec of VM default/docker-host and restarts it"), r.all());
        var vm = KubeVirt.vms(c).inNamespace("default").withName("docker-host").get();
        assertTrue(KubeVirt.hostDevices(vm).contains(new KubeVirt.HostDevice(GPU, GPU_RES)), vm.toString());
        var vmi = KubeVirt.vmis(c).inNamespace("default").withName("docker-host").get();
        assertEquals("Running", vmi.get("status", "phase"));
        assertTrue(KubeVirt.hostDevices(vmi).contains(new KubeVirt.HostDevice(GPU, GPU_RES)), "restarted with the device");
        String after = r.out().substring(r.out().lastIndexOf("CHECK "));
        assertTrue(after.lines().anyMatch(l -> l.matches("vm-device\\s+PASS\\s+.*")), r.out());
    }

    @Test
    void gpuUnderGpusInsteadOfHostDevicesIsTheRealCauseOfTheCacheDenial() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
            devices.put("gpus", List.of(Map.of("name", "ga102", "deviceName", GPU_RES)));
            return vm;
        });
        event("VirtualMachine", "FailedUpdate", "admission webhook \"pcidevices.harvesterhci.io\" denied the request: gpu device ga102: resource name "
                + GPU_RES + " not found in pcidevice cache");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "gpus-field", "FAIL", "gpus[0] = {name: ga102", "\"path\":\"/spec/template/spec/domain/devices/gpus/0\"}]' && attach docker-host --device " + GPU);
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "webhook-gpu-field", "FAIL", "not a cache race", "attach docker-host --device " + GPU);
    }

    @Test
    void gpuPrefixedNotPermittedPointsAtTheGpusField() {
        healthy();
        // A coherent state (the simulated virt-controller re-renders a Pending VMI): the GPU sits under
        // gpus in the VM and its instance, and its resource is not permitted.
        KubeVirt.kubevirts(c).inNamespace("harvester-system").withName("kubevirt").edit(kv -> {
            Map<String, Object> phd = kv.get("spec", "configuration", "permittedHostDevices");
            phd.put("pciHostDevices", List.of(Map.of("pciVendorSelector", "10de:1aef", "resourceName", AUDIO_RES, "externalResourceProvider", true)));
            return kv;
        });
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
            devices.put("gpus", List.of(Map.of("name", "ga102", "deviceName", GPU_RES)));
            return vm;
        });
        KubeVirt.vmis(c).inNamespace("default").withName("docker-host").edit(vmi -> {
            Map<String, Object> devices = vmi.get("spec", "domain", "devices");
            devices.put("hostDevices", new ArrayList<>(((List<Map<String, Object>>) devices.get("hostDevices")).stream()
                    .filter(d -> !GPU.equals(d.get("name"))).toList()));
            devices.put("gpus", List.of(Map.of("name", "ga102", "deviceName", GPU_RES)));
            return vmi;
        });
        vmiStatus("Pending", null, Map.of("type", "Synchronized", "status", "False", "reason", "FailedCreate",
                "message", "failed to render launch manifest: GPU " + GPU_RES + " is not permitted in permittedHostDevices configuration"));
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "not-permitted", "FAIL", "under domain.devices.gpus", "gpus/0");
    }

    @Test
    void hostDeviceWithAnUnknownResourceNameIsDeniedByTheWebhook() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).add(Map.of("name", "gpu2", "deviceName", "nvidia.com/GA102_GEFORCE_RTX_309"));
            return vm;
        });
        event("VirtualMachine", "FailedUpdate", "admission webhook \"pcidevices.harvesterhci.io\" denied the request: hostdevice gpu2: resource name "
                + "nvidia.com/GA102_GEFORCE_RTX_309 not found in pcidevice and usbdevice cache");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "hostdevice-resource", "FAIL", "nvidia.com/GA102_GEFORCE_RTX_309", "\"op\":\"remove\",\"path\":\"/spec/template/spec/domain/devices/hostDevices/2\"");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "webhook-cache", "WARN", "not found in pcidevice and usbdevice cache", "attach docker-host --device " + GPU);
    }

    @Test
    void hostDeviceNotNamedAfterItsPciDeviceIsHiddenFromTheUi() {
        healthy();
        editVm(vm -> {
            List<Object> hd = hostDevices(vm);
            hd.replaceAll(o -> GPU.equals(((Map<?, ?>) o).get("name")) ? Map.of("name", "gpu1", "deviceName", GPU_RES) : o);
            return vm;
        });
        expect(json(), Cli.Exit.DIAGNOSE_WARN, "hostdevice-name", "WARN", "{name: gpu1", "\"op\":\"replace\",\"path\":\"/spec/template/spec/domain/devices/hostDevices/1/name\",\"value\":\"" + GPU + "\"");
    }

    @Test
    void dottedHostDeviceNameLeavesPciResourceUnset() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).add(Map.of("name", "gpu.1", "deviceName", AUDIO_RES));
            return vm;
        });
        event("VirtualMachineInstance", "SyncFailed", "failed to create PCI device for gpu.1: PCI_RESOURCE_NVIDIA_COM_GA102_HIGH_DEFINITION_AUDIO_CONTROLLER not set for resource " + AUDIO_RES);
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "dotted-name", "WARN", "harvester#9399", "\"value\":\"gpu-1\"");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "dotted-name", "FAIL", "PCI_RESOURCE_NVIDIA_COM_GA102_HIGH_DEFINITION_AUDIO_CONTROLLER not set", "attach uses PCIDevice names");
    }

    @Test
    void hotPluggableVolumeWithHostDevicesIsAWarning() {
        healthy();
        editVm(vm -> {
            Map<String, Object> tspec = vm.get("spec", "template", "spec");
            List<Object> vols = new ArrayList<>((List<Object>) tspec.get("volumes"));
            vols.add(Map.of("name", "scratch", "persistentVolumeClaim", Map.of("claimName", "scratch-pvc", "hotpluggable", true)));
            tspec.put("volumes", vols);
            return vm;
        });
        // The bug (kubevirt#17124) is fixed in Harvester v1.7.2 / v1.8.2 / v1.9.0: on v1.7.1 it applies.
        Harvester.settings(c).withName(Harvester.SERVER_VERSION_SETTING).edit(st -> {
            st.setAdditionalProperty("value", "v1.7.1");
            return st;
        });
        Run.Result warned = json();
        expect(warned, Cli.Exit.DIAGNOSE_WARN, "hotplug-volume-gpu", "WARN", "[scratch]", "virtctl removevolume docker-host --volume-name=scratch -n default");
        event("VirtualMachineInstance", "SyncFailed", "server error. command SyncVMI failed: \"LibvirtError(Code=67, Domain=10, Message='unsupported configuration: host doesn't support passthrough of host PCI devices')\"");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "hotplug-volume-gpu", "FAIL", "host doesn't support passthrough", "upgrade to Harvester v1.7.2 or later or unplug");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "hotplug-volume-gpu", "FAIL", "host doesn't support passthrough", "virtctl removevolume docker-host");
    }

    @Test
    void withoutAVmOneVmUsingTheDeviceIsNotSharing() {
        healthy();
        for (String[] args : List.of(new String[] {"--device", GPU}, new String[] {}, new String[] {"--node", "altra"})) {
            List<String> all = new ArrayList<>(List.of(args));
            all.addAll(List.of("-o", "json"));
            Run.Result r = diagnose(all.toArray(new String[0]));
            JsonNode f = finding(r, "shared-device", "PASS");
            assertTrue(f.get("evidence").asText().contains("[default/docker-host]"), String.join(" ", args) + ": " + f);
            for (JsonNode x : readJson(r)) {
                assertFalse(x.get("check").asText().equals("shared-device") && !x.get("status").asText().equals("PASS"), String.join(" ", args) + ": " + x);
            }
        }
    }

    static JsonNode readJson(Run.Result r) {
        try {
            return Serialization.jsonMapper().readTree(r.out());
        } catch (Exception e) {
            throw new AssertionError("not JSON: " + r.all(), e);
        }
    }

    @Test
    void withoutAVmTwoRunningVmsUsingTheDeviceAreSharing() {
        deviceRequestedByTwoVmsAtOnceSetUp();
        Run.Result r = diagnose("--device", GPU, "-o", "json");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "shared-device", "FAIL", "requested by 2 running VMs", "detach ml-box --device " + GPU + " -n default");
    }

    /** A healthy cluster plus VM default/ml-box, a running copy of docker-host with the same GPU. */
    private void deviceRequestedByTwoVmsAtOnceSetUp() {
        healthy();
        GenericKubernetesResource other = KubeVirt.vms(c).inNamespace("default").withName("docker-host").get();
        other.getMetadata().setName("ml-box");
        other.getMetadata().setResourceVersion(null);
        other.getMetadata().setUid(null);
        other.getMetadata().getAnnotations().remove(Harvester.ALLOCATION_ANNOTATION);
        sim.create(other);
        GenericKubernetesResource vmi = KubeVirt.vmis(c).inNamespace("default").withName("docker-host").get();
        vmi.getMetadata().setName("ml-box");
        vmi.getMetadata().setResourceVersion(null);
        vmi.getMetadata().setUid(null);
        vmi.getMetadata().setOwnerReferences(null);
        sim.create(vmi);
    }

    @Test
    void eachFindingIsPrintedOnce() {
        healthy();
        sim.admin().nodes().withName("altra").edit(n -> {
            n.setSpec(new io.fabric8.kubernetes.api.model.NodeSpecBuilder().withUnschedulable(true).build());
            return n;
        });
        for (String[] args : List.of(new String[] {"--node", "altra"}, new String[] {"docker-host"}, new String[] {"--device", GPU})) {
            List<String> all = new ArrayList<>(List.of(args));
            all.addAll(List.of("-o", "json"));
            Run.Result r = diagnose(all.toArray(new String[0]));
            List<String> seen = new ArrayList<>();
            for (JsonNode f : readJson(r)) seen.add(f.toString());
            assertEquals(seen.size(), new java.util.LinkedHashSet<>(seen).size(), String.join(" ", args) + ": duplicates in " + r.out());
        }
    }

    @Test
    void deviceRequestedByTwoVmsAtOnce() {
        deviceRequestedByTwoVmsAtOnceSetUp();
        event("VirtualMachineInstance", "SyncFailed", "failed to open /dev/vfio/18: Device or resource busy");
        Run.Result r = json();
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "shared-device", "FAIL", "default/ml-box", "detach ml-box --device " + GPU + " -n default");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "vfio-busy", "FAIL", "/dev/vfio/18", "virtctl stop");
    }

    @Test
    void vmiOnAnotherNodeThanTheDevice() {
        healthy();
        vmiStatus("Running", "bravo", Map.of("type", "Ready", "status", "True"));
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "vmi-node", "FAIL", "VMI runs on node bravo", "\"kubernetes.io/hostname\":\"altra\"}}}}}' && virtctl restart docker-host -n default");
    }

    @Test
    void unpinnedVmWhileAnotherNodeHasTheSameGpuIsAWarning() {
        healthy();
        editVm(vm -> {
            ((Map<String, Object>) vm.get("spec", "template", "spec")).remove("nodeSelector");
            return vm;
        });
        expect(json(), Cli.Exit.DIAGNOSE_WARN, "vm-pinned", "WARN", "[bravo] also offer " + GPU_RES, "kubectl -n default patch vm docker-host --type merge");
    }

    @Test
    void vmPinnedToTheWrongNodeIsAFail() {
        healthy();
        editVm(vm -> {
            ((Map<String, Object>) vm.get("spec", "template", "spec")).put("nodeSelector", Map.of("kubernetes.io/hostname", "bravo"));
            return vm;
        });
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "vm-pinned", "FAIL", "kubernetes.io/hostname=bravo", "{\"kubernetes.io/hostname\":\"altra\"}");
    }

    @Test
    void staleAllocationAnnotationBlocksDeletingTheClaim() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).removeIf(o -> GPU.equals(((Map<?, ?>) o).get("name")));
            return vm;
        });
        Run.Result r = diagnose("docker-host", "--device", AUDIO, "-o", "json");
        expect(r, Cli.Exit.DIAGNOSE_FAIL, "stale-allocation", "WARN", "pcideviceclaim " + GPU + " is already in use with vm docker-host in namespace default",
                "virtctl restart docker-host -n default");
        // the same annotation blocks the GPU's claim when the GPU is diagnosed without naming the VM
        Run.Result byDevice = diagnose("--device", GPU, "-o", "json");
        expect(byDevice, Cli.Exit.DIAGNOSE_WARN, "stale-allocation", "WARN", "lists [" + GPU + "]", "virtctl restart docker-host -n default");
    }

    @Test
    void deletedVmiWithRerunOnFailureLeavesTheVmStopped() {
        healthy();
        KubeVirt.vmis(c).inNamespace("default").withName("docker-host").delete();
        waitFor("the VMI to be gone", () -> KubeVirt.vmis(c).inNamespace("default").withName("docker-host").get() == null);
        Run.Result r = json();
        JsonNode f = expect(r, Cli.Exit.DIAGNOSE_WARN, "run-strategy", "WARN", "runStrategy RerunOnFailure", "virtctl start docker-host -n default");
        assertTrue(f.get("fix").asText().contains("virtctl restart docker-host -n default"), f.toString());
        assertTrue(f.get("fix").asText().contains("attach"), f.toString());
    }

    @Test
    void restartRequiredConditionIsAWarning() {
        healthy();
        KubeVirt.vms(c).inNamespace("default").withName("docker-host").editStatus(vm -> {
            ((Map<String, Object>) vm.getAdditionalProperties().get("status")).put("conditions", List.of(Map.of("type", "RestartRequired",
                    "status", "True", "message", "a non-live-updatable field was changed in the template spec")));
            return vm;
        });
        expect(json(), Cli.Exit.DIAGNOSE_WARN, "restart-required", "WARN", "non-live-updatable", "virtctl restart docker-host -n default");
    }

    @Test
    void staleVfioBindingAfterAnUpgrade() {
        healthy();
        event("VirtualMachineInstance", "SyncFailed", "failed to create PCI device: lstat /dev/vfio/18: no such file or directory");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "vfio-missing", "FAIL", "lstat /dev/vfio/18", "claim " + GPU + " && virtctl restart docker-host -n default");
    }

    @Test
    void dmaMappingOutOfMemory() {
        healthy();
        event("VirtualMachineInstance", "SyncFailed", "qemu-kvm: -device vfio-pci,host=000c:01:00.0: VFIO_MAP_DMA failed: Cannot allocate memory");
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "dma-no-memory", "FAIL", "VFIO_MAP_DMA failed", "reserved memory");
    }

    @Test
    void devicesOnTwoNodesAreRefused() {
        healthy();
        editVm(vm -> {
            hostDevices(vm).add(Map.of("name", "bravo-000041001", "deviceName", AUDIO_RES));
            return vm;
        });
        expect(json(), Cli.Exit.DIAGNOSE_FAIL, "same-node", "FAIL", "bravo-000041001=bravo", "detach docker-host");
    }

    // ---- --node-ssh (the node stand-in scripts/lib/sim/NodeSshServer.java; real sshd: tests/RealSshdNodeGuestTest.java) ----

    /** A node stand-in for altra and the ssh_config/known_hosts flags that lead diagnose to it (Host altra, as a user writes it). */
    List<String> nodeSshFlags(NodeSshServer.Options o, java.util.function.Consumer<NodeSshServer> use) throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("diagnose-node-");
        java.security.KeyPair key = GuestSshServer.newUserKey();
        java.nio.file.Path identity = GuestSshServer.writeIdentity(dir.resolve("id_ed25519"), key, "test");
        o.authorizedKey = key.getPublic();
        o.devices = () -> Harvester.pciDevices(c).list().getItems().stream().map(Harvester.PciDevice::of)
                .filter(d -> "altra".equals(d.node())).toList();
        NodeSshServer node = NodeSshServer.start(o);
        use.accept(node);
        java.nio.file.Files.writeString(dir.resolve("known_hosts"), node.knownHostsLine() + "\n");
        java.nio.file.Files.writeString(dir.resolve("ssh_config"), "IdentityAgent none\nHost altra\n  HostName 127.0.0.1\n  Port " + node.port()
                + "\n  IdentityFile " + identity + "\n");
        return List.of("--node-ssh", "--ssh-config", dir.resolve("ssh_config").toString(), "--known-hosts", dir.resolve("known_hosts").toString());
    }

    final List<NodeSshServer> nodes = new ArrayList<>();

    @AfterEach
    void stopNodes() {
        nodes.forEach(NodeSshServer::close);
    }

    Run.Result diagnoseNode(NodeSshServer.Options o, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("docker-host", "--device", GPU));
        args.addAll(nodeSshFlags(o, nodes::add));
        args.addAll(List.of(extra));
        return diagnose(args.toArray(new String[0]));
    }

    @Test
    void nodeSshAddsTheNodeChecksToTheReport() throws Exception {
        healthy();
        Run.Result r = diagnoseNode(new NodeSshServer.Options());
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        for (String check : List.of("node-iommu", "node-iommu-group", "node-driver", "node-boot-console", "node-dmesg")) {
            assertTrue(r.out().lines().anyMatch(l -> l.matches(check + "\\s+PASS\\s+.*")), check + " missing:\n" + r.out());
        }
        assertTrue(r.out().lines().anyMatch(l -> l.matches("node-iommu-group\\s+PASS\\s+altra/18\\s+IOMMU group 18 on the node holds \\[altra-000c01000, altra-000c01001\\].*")), r.out());
        assertTrue(r.out().contains("controller-pod") && r.out().contains("vmi-status"), "the API checks still run: " + r.out());
        // -o json carries the node findings too
        Run.Result json = diagnoseNode(new NodeSshServer.Options(), "-o", "json");
        assertEquals("PASS", finding(json, "node-boot-console", "PASS").get("status").asText());
        assertEquals("altra", finding(json, "node-iommu", "PASS").get("subject").asText());
    }

    @Test
    void nodeSshFailsWhenTheIommuIsOff() throws Exception {
        healthy();
        NodeSshServer.Options o = new NodeSshServer.Options();
        o.iommu = false;
        Run.Result r = diagnoseNode(o, "-o", "json");
        JsonNode f = expect(r, Cli.Exit.DIAGNOSE_FAIL, "node-iommu", "FAIL", "/sys/class/iommu: empty", "");
        assertTrue(f.get("fix").asText().contains("the SMMU (arm64) in node altra's firmware"), f.toString());
    }

    @Test
    void nodeSshWarnsNamingTheSkippedChecksWhenSudoAsksAPassword() throws Exception {
        healthy();
        NodeSshServer.Options o = new NodeSshServer.Options();
        o.sudoPassword = true;
        Run.Result r = diagnoseNode(o, "-o", "json");
        expect(r, Cli.Exit.DIAGNOSE_WARN, "node-sudo", "WARN", "skipped: IOMMU lines in dmesg (node-iommu), `BAR n: can't reserve` (node-boot-console), vfio/DMAR errors (node-dmesg)",
                "NOPASSWD: /usr/bin/dmesg");
    }

    @Test
    void anUnreachableNodeIsOneWarnAndLeavesTheExitCodeAlone() throws Exception {
        healthy();
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        List<String> args = new ArrayList<>(List.of("docker-host", "--device", GPU, "-o", "json"));
        List<String> flags = new ArrayList<>(nodeSshFlags(new NodeSshServer.Options(), NodeSshServer::close));
        java.nio.file.Path config = java.nio.file.Path.of(flags.get(flags.indexOf("--ssh-config") + 1));
        java.nio.file.Files.writeString(config, java.nio.file.Files.readString(config).replaceFirst("Port \\d+", "Port " + closed));
        args.addAll(flags);
        Run.Result r = diagnose(args.toArray(new String[0]));
        assertEquals(Cli.Exit.OK.code, r.exit(), "an unreachable node alone does not change the exit code: " + r.all());
        JsonNode f = finding(r, "node-ssh", "WARN");
        assertTrue(f.get("evidence").asText().startsWith("cannot SSH to rancher@127.0.0.1:" + closed + " ("), f.toString());
        assertTrue(f.get("evidence").asText().endsWith("node checks skipped"), f.toString());
        assertTrue(f.get("fix").asText().contains("Host altra"), f.toString());
        assertTrue(f.get("fix").asText().endsWith("check with: ssh -p " + closed + " rancher@127.0.0.1 true"), f.toString());
        assertEquals("PASS", finding(r, "vmi-status", "PASS").get("status").asText(), "the API checks still run");
        long nodeFindings = Serialization.jsonMapper().readTree(r.out()).findValuesAsText("check").stream().filter(x -> x.startsWith("node-")).count();
        assertEquals(1, nodeFindings, r.out());
    }

    @Test
    void nodeUserOverridesTheUserAndARefusedLoginIsAWarn() throws Exception {
        healthy();
        Run.Result r = diagnoseNode(new NodeSshServer.Options(), "--node-user", "admin", "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode f = finding(r, "node-ssh", "WARN");
        assertTrue(f.get("evidence").asText().startsWith("cannot SSH to admin@127.0.0.1:"), f.toString());
    }

    @Test
    void withoutAHostBlockTheNodesInternalIpIsUsed() throws Exception {
        healthy();
        java.nio.file.Path config = java.nio.file.Files.createTempFile("ssh_config", "");
        java.nio.file.Files.writeString(config, "IdentityAgent none\nIdentityFile " + config + ".missing\nConnectTimeout 2\n");
        java.nio.file.Path knownHosts = java.nio.file.Files.createTempFile("known_hosts", "");
        Run.Result r = diagnose("docker-host", "--device", GPU, "--node-ssh", "--ssh-config", config.toString(),
                "--known-hosts", knownHosts.toString(), "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        // altra's status.addresses InternalIP (the simulator's is loopback), as rancher, port 22
        assertTrue(finding(r, "node-ssh", "WARN").get("evidence").asText().startsWith("cannot SSH to rancher@127.0.0.1 ("), r.out());
    }

    @Test
    void badSshOptionsWithNodeSshAreUsageErrors() {
        Run.Result r = diagnose("docker-host", "--node-ssh", "--connect-timeout", "0");
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertTrue(r.err().contains("--connect-timeout must be positive seconds"), r.err());
    }

    @Test
    void nodeSshWithNothingToLookAtIsOneWarnThatLeavesTheExitCode() {
        Run.Result api = diagnose("-o", "json");
        Run.Result r = diagnose("--node-ssh", "-o", "json");
        assertEquals(api.exit(), r.exit(), r.all());
        assertTrue(finding(r, "node-ssh", "WARN").get("evidence").asText().startsWith("no node to inspect"), r.out());
    }
}
