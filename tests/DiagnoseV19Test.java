import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

/**
 * diagnose on what Harvester v1.7–v1.9 changed (issue 16): each failure mode, made by the simulator's
 * fault or seeded as the controller leaves it, is named once with its cause, its fix and the exit code;
 * the versions head the report and the version decides the advice.
 */
class DiagnoseV19Test {
    static final String GPU = Seed.GPU;
    static final String AUDIO = Seed.AUDIO;
    static final String GPU_RES = Seed.GPU_RES;
    static final String AUDIO_RES = Seed.AUDIO_RES;
    static final String ALTRA_POD = "harvester-pcidevices-controller-x7k2p";

    static SimCluster.Options fast(Fault... faults) {
        SimCluster.Options o = HarvesterV19SimTest.fast();
        for (Fault f : faults) o.fault(f);
        return o;
    }

    static Run.Result diagnose(SimCluster sim, String... args) {
        return Run.against(sim, new diagnose(), args);
    }

    static List<JsonNode> findings(Run.Result r) {
        List<JsonNode> out = new ArrayList<>();
        try {
            Serialization.jsonMapper().readTree(r.out()).forEach(out::add);
        } catch (Exception e) {
            throw new AssertionError("not JSON: " + r.all(), e);
        }
        return out;
    }

    static List<JsonNode> findings(Run.Result r, String check) {
        return findings(r).stream().filter(f -> f.get("check").asText().equals(check)).toList();
    }

    /** Exactly one finding of the check, with that status, evidence and fix; the exit code as given. */
    static JsonNode once(Run.Result r, Cli.Exit exit, String check, String status, String evidence, String fix) {
        assertEquals(exit.code, r.exit(), r.all());
        List<JsonNode> f = findings(r, check);
        assertEquals(1, f.size(), check + " once: " + r.all());
        JsonNode n = f.get(0);
        assertEquals(status, n.get("status").asText(), n.toString());
        assertTrue(n.get("evidence").asText().contains(evidence), "evidence of " + check + " has '" + evidence + "': " + n);
        assertTrue(n.get("fix").asText().contains(fix), "fix of " + check + " has '" + fix + "': " + n);
        return n;
    }

    static void eventually(String what, BooleanSupplier done) {
        HarvesterV19SimTest.eventually(what, done);
    }

    static void editVm(SimCluster sim, java.util.function.UnaryOperator<GenericKubernetesResource> edit) {
        HarvesterV19SimTest.retrying(() -> KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(edit));
    }

    @SuppressWarnings("unchecked")
    static void setServerVersion(SimCluster sim, String version) {
        Harvester.settings(sim.admin()).withName(Harvester.SERVER_VERSION_SETTING).edit(s -> {
            s.setAdditionalProperty("value", version);
            return s;
        });
    }

    // ---- versions ----

    @Test
    void theVersionsHeadTheReportAndAreInTheJson() {
        try (SimCluster sim = SimCluster.start(fast())) {
            Run.Result text = diagnose(sim);
            assertEquals("Harvester v1.9.0, KubeVirt 1.8.4", text.out().lines().findFirst().orElseThrow(), text.all());
            Run.Result json = diagnose(sim, "-o", "json");
            JsonNode v = findings(json, VersionCheck.CHECK).get(0);
            assertEquals("PASS", v.get("status").asText());
            assertEquals("Harvester v1.9.0, KubeVirt 1.8.4", v.get("evidence").asText());

            Harvester.settings(sim.admin()).withName(Harvester.SERVER_VERSION_SETTING).delete();
            Run.Result unknown = diagnose(sim, "-o", "json");
            JsonNode w = findings(unknown, VersionCheck.CHECK).get(0);
            assertEquals("WARN", w.get("status").asText(), w.toString());
            assertTrue(w.get("evidence").asText().startsWith("Harvester unknown, KubeVirt 1.8.4"), w.toString());
        }
    }

    // ---- read once, then judge ----

    @Test
    void theRequestsDoNotGrowWithTheNumberOfDevices() {
        try (SimCluster sim = SimCluster.start(fast())) {
            Seed.gpuReady(sim);
            sim.clearClientRequests();
            Run.Result two = diagnose(sim, "--node", "altra", "-o", "json");
            List<String> withTwo = sim.clientRequests();
            for (String d : List.of("altra-000401000", "altra-000501000", "altra-000501001")) Seed.claim(sim, d, "admin", true);
            sim.clearClientRequests();
            Run.Result five = diagnose(sim, "--node", "altra", "-o", "json");
            List<String> withFive = sim.clientRequests();
            assertEquals(2, findings(two).stream().filter(f -> f.get("check").asText().equals("pcidevice")).count(), two.all());
            assertEquals(5, findings(five).stream().filter(f -> f.get("check").asText().equals("pcidevice")).count(), five.all());
            assertEquals(withTwo.size(), withFive.size(), "the same requests for 2 and 5 devices:\n" + withTwo + "\n" + withFive);
        }
    }

    // ---- the claim finalizer ----

    @Test
    void aClaimStuckTerminatingNamesItsNodesAgentAndTheRestart() throws Exception {
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = HarvesterV19SimTest.user(sim)) {
            HarvesterV19SimTest.claimAndWait(sim, c, GPU, false);
            HarvesterV19SimTest.claimAndWait(sim, c, AUDIO, false);
            sim.faults().add(Fault.CLAIM_STUCK_TERMINATING);
            eventually("altra's agent crash-loops", () -> HarvesterV19SimTest.controllerPods(sim).stream()
                    .anyMatch(p -> ALTRA_POD.equals(p.getMetadata().getName()) && p.getStatus().getContainerStatuses().get(0).getState().getWaiting() != null));
            Harvester.pciDeviceClaims(c).withName(GPU).delete();
            eventually("Terminating", () -> HarvesterV19SimTest.claim(sim, GPU).getMetadata().getDeletionTimestamp() != null);

            Run.Result r = diagnose(sim, "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, ClaimRemovalCheck.CHECK, "FAIL", "only the pcidevices agent on node altra removes it and pod "
                    + ALTRA_POD + " is NotReady (CrashLoopBackOff", "kubectl -n harvester-system delete pod " + ALTRA_POD);

            // --fix restarts the pod; the claim goes and nothing Terminating is left
            Run.Result fixed = diagnose(sim, "--fix", "--yes", "--timeout", "20", "-o", "json");
            eventually("claim released", () -> HarvesterV19SimTest.claim(sim, GPU) == null);
            assertTrue(fixed.err().contains("delete pod " + ALTRA_POD), fixed.all());
            assertTrue(findings(diagnose(sim, "-o", "json"), ClaimRemovalCheck.CHECK).isEmpty());
        }
    }

    // ---- claims written from public guides ----

    @Test
    void aGuideWrittenClaimIsNamedOnceWithTheForceReclaim() {
        try (SimCluster sim = SimCluster.start(fast())) {
            // as `kubectl apply` of a guide's YAML leaves it when the webhook did not answer
            sim.create(Serialization.unmarshal("""
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDeviceClaim
                    metadata: {name: %s}
                    spec: {address: "01:00.0", nodeName: altra, userName: admin}
                    """.formatted(GPU), GenericKubernetesResource.class));
            Run.Result r = diagnose(sim, "--device", GPU, "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, GuideClaimCheck.CHECK, "FAIL", "looks written from a public guide", "claim --force " + GPU);
            assertTrue(findings(r, "owner-reference").isEmpty() && findings(r, "claim-address").isEmpty(),
                    "the guide-claim finding already says it: " + r.all());
        }
    }

    // ---- resource pooling off ----

    @Test
    void aPoolingSettingChangedAfterCreationIsAConflictFixedByForce() throws Exception {
        try (SimCluster sim = SimCluster.start(fast()); KubernetesClient c = HarvesterV19SimTest.user(sim)) {
            HarvesterV19SimTest.claimAndWait(sim, c, GPU, true);
            HarvesterV19SimTest.claimAndWait(sim, c, AUDIO, false);
            Run.Result ok = diagnose(sim, "--device", GPU, "-o", "json");
            assertTrue(findings(ok, PoolingCheck.CHECK).isEmpty(), ok.all());
            Harvester.pciDeviceClaims(c).withName(GPU).edit(x -> {
                x.<Map<String, Object>>get("spec").put(Harvester.DISABLE_POOLING_FIELD, false);
                return x;
            });
            Run.Result r = diagnose(sim, "--device", GPU, "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, PoolingCheck.CHECK, "FAIL", "the field only takes effect when the claim is created",
                    "claim --force " + GPU + "   (recreates the claim");
        }
    }

    @Test
    void aPerDeviceResourceNameWithTheNodesDotIsNamedWithTheReclaimWithPoolingOn() {
        try (SimCluster sim = SimCluster.start(fast())) {
            // a node whose hostname has a dot, its GPU claimed with pooling off (what the controller leaves)
            sim.seed(SimCluster.parseDocuments("""
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDevice
                    metadata:
                      name: gpu.lab-000001000
                      labels: {nodename: gpu.lab}
                    spec: {}
                    status: {address: "0000:01:00.0", vendorId: "10de", deviceId: "2204", classId: "0300", iommuGroup: "3", nodeName: gpu.lab,
                      resourceName: nvidia.com/gpu.lab-000001000, kernelDriverInUse: vfio-pci,
                      description: "VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090]"}
                    ---
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDeviceClaim
                    metadata:
                      name: gpu.lab-000001000
                      ownerReferences: [{apiVersion: devices.harvesterhci.io/v1beta1, kind: PCIDevice, name: gpu.lab-000001000, uid: x}]
                    spec: {address: "0000:01:00.0", nodeName: gpu.lab, userName: admin, disableResourcePooling: true}
                    status: {passthroughEnabled: true, kernelDriverToUnbind: nouveau}
                    """));
            Run.Result r = diagnose(sim, "--device", "gpu.lab-000001000", "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, PoolingCheck.DOT_CHECK, "FAIL", "PCI_RESOURCE_… not set for resource",
                    "claim --force gpu.lab-000001000   (pooling on");
            assertTrue(findings(r, "dotted-name").isEmpty(), "said once: " + r.all());
        }
    }

    // ---- bare-metal GPU nodes ----

    @Test
    void aBaremetalGpuNodeIsTheCauseAndClaimingIsNotOfferedAsTheFix() {
        try (SimCluster sim = SimCluster.start(fast(Fault.BAREMETAL_GPU_NODE))) {
            eventually("labelled", () -> "true".equals(sim.admin().nodes().withName("altra").get().getMetadata().getLabels()
                    .get(Harvester.BAREMETAL_GPU_LABEL)));
            Run.Result r = diagnose(sim, "docker-host", "--device", GPU, "-o", "json");
            String unlabel = "kubectl label node altra " + Harvester.BAREMETAL_GPU_LABEL + "-";
            once(r, Cli.Exit.DIAGNOSE_FAIL, BaremetalCheck.CHECK, "FAIL", "claims for them are denied", unlabel);
            for (JsonNode f : findings(r)) {
                assertFalse(f.get("fix").asText().equals("claim " + GPU), "claiming is denied there, so it is no fix: " + f);
            }
            JsonNode claimed = findings(r, "claimed").get(0);
            assertTrue(claimed.get("fix").asText().contains(unlabel), claimed.toString());

            Run.Result text = diagnose(sim, "docker-host", "--device", GPU);
            assertTrue(text.out().lines().anyMatch(l -> l.startsWith("FIX: pass through a GPU on another node") && l.contains(BaremetalCheck.CHECK)), text.out());

            // --fix tries neither the denied claim nor the attach that needs it
            Run.Result fix = diagnose(sim, "docker-host", "--device", GPU, "--fix", "--yes", "--timeout", "5");
            assertEquals(Cli.Exit.DIAGNOSE_FAIL.code, fix.exit(), fix.all());
            assertTrue(fix.err().contains("--fix: nothing here is safe to fix automatically"), fix.all());
            assertTrue(Harvester.pciDeviceClaims(sim.admin()).list().getItems().isEmpty(), "no claim was tried");
        }
    }

    // ---- permittedHostDevices ----

    @Test
    void duplicatePermittedEntriesAreAWarningNotAFail() throws Exception {
        try (SimCluster sim = SimCluster.start(fast(Fault.DUPLICATE_PERMITTED)); KubernetesClient c = HarvesterV19SimTest.user(sim)) {
            HarvesterV19SimTest.claimAndWait(sim, c, GPU, false);
            HarvesterV19SimTest.claimAndWait(sim, c, AUDIO, false);
            eventually("allocatable", () -> "1".equals(HarvesterV19SimTest.allocatable(sim, "altra", GPU_RES)));
            eventually("listed twice", () -> HarvesterV19SimTest.permittedCount(sim, GPU_RES) == 2);
            Run.Result r = diagnose(sim, "--device", GPU, "-o", "json");
            assertEquals(Cli.Exit.DIAGNOSE_WARN.code, r.exit(), "duplicates are harmless: " + r.all());
            assertTrue(findings(r, PermittedCheck.DUPLICATES_CHECK).stream().anyMatch(f -> f.get("subject").asText().equals(GPU_RES)
                    && f.get("evidence").asText().contains("harmless (harvester#10008)")), r.all());
            assertFalse(findings(r, "permitted").isEmpty(), r.all());
            assertTrue(findings(r, "permitted").stream().allMatch(f -> f.get("status").asText().equals("PASS")), r.all());

            // (a missing entry stays the FAIL it was: DiagnoseTest's notPermitted case)
        }
    }

    // ---- the add-on ----

    @Test
    void aDisabledAddOnIsNamedOnceWithTheEnablingCommand() {
        try (SimCluster sim = SimCluster.start(fast(Fault.ADDON_DISABLED))) {
            eventually("disabled", () -> HarvesterV19SimTest.controllerPods(sim).isEmpty()
                    && Harvester.ADDON_DISABLED.equals(HarvesterV19SimTest.addonStatus(sim)));
            // the demo's diagnose: a VM and a device that is not discovered (yet)
            Run.Result r = diagnose(sim, "docker-host", "--device", GPU, "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, AddonCheck.CHECK, "FAIL", "the add-on is disabled", Harvester.addonEnableCommand());
            assertTrue(findings(r, "controller-pod").isEmpty(), "no pods is the add-on's consequence, not a second cause: " + r.all());
            assertEquals(1, findings(r).stream().filter(f -> f.get("status").asText().equals("FAIL")).count(), r.all());
        }
    }

    @Test
    void anAddOnBeingEnabledIsAWarning() {
        SimCluster.Options o = fast(Fault.ADDON_DISABLED);
        o.controllerDelay = Duration.ofMinutes(5); // stays AddonEnabling for the test
        try (SimCluster sim = SimCluster.start(o)) {
            eventually("disabled", () -> Harvester.ADDON_DISABLED.equals(HarvesterV19SimTest.addonStatus(sim)));
            Harvester.addons(sim.admin()).withName(Harvester.ADDON_NAME).edit(a -> {
                a.<Map<String, Object>>get("spec").put("enabled", true);
                return a;
            });
            eventually("enabling", () -> Harvester.ADDON_ENABLING.equals(HarvesterV19SimTest.addonStatus(sim)));
            Run.Result r = diagnose(sim, "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_WARN, AddonCheck.CHECK, "WARN", "the add-on is being deployed", "expect " + Harvester.ADDON_DEPLOYED);
        }
    }

    @Test
    void anAddOnWithoutDevicesOnRc4IsTheRegressionWithTheUpgrade() {
        try (SimCluster sim = SimCluster.start(fast(Fault.ADDON_NO_DEVICES))) {
            eventually("no devices", () -> Harvester.pciDevices(sim.admin()).list().getItems().isEmpty());
            eventually("rc4", () -> "v1.9.0-rc4".equals(HarvesterV19SimTest.versions(sim).harvesterText()));
            Run.Result r = diagnose(sim, "docker-host", "--device", GPU, "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, AddonCheck.NO_DEVICES_CHECK, "FAIL", "harvester#11360", "upgrade to Harvester v1.9.0 or later");
            assertEquals(1, findings(r).stream().filter(f -> f.get("status").asText().equals("FAIL")).count(), r.all());
            assertTrue(diagnose(sim).out().startsWith("Harvester v1.9.0-rc4, KubeVirt 1.8.4\n"));
        }
    }

    // ---- stale deviceAllocationDetails ----

    @Test
    void aStaleAllocationSaysWhichGpuTheNextStartGetsAndTheSafeOrder() {
        String second = Seed.SECOND_GPU;
        try (SimCluster sim = SimCluster.start(fast())) {
            Seed.secondGpuReady(sim); // a second RTX 3090 on altra, alone in IOMMU group 19
            editVm(sim, vm -> {
                vm.<Map<String, Object>>get("spec").put("runStrategy", "Halted");
                return vm;
            });
            eventually("stopped", () -> HarvesterV19SimTest.vmiPhase(sim).isEmpty());
            editVm(sim, vm -> {
                Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
                devices.put("hostDevices", new ArrayList<>(List.of(Map.of("name", second, "deviceName", GPU_RES), Map.of("name", AUDIO, "deviceName", AUDIO_RES))));
                vm.getMetadata().getAnnotations().put(Harvester.ALLOCATION_ANNOTATION,
                        "{\"hostdevices\":{\"" + GPU_RES + "\":[\"" + GPU + "\"],\"" + AUDIO_RES + "\":[\"" + AUDIO + "\"]}}");
                return vm;
            });
            Run.Result r = diagnose(sim, "docker-host", "-o", "json");
            once(r, Cli.Exit.DIAGNOSE_FAIL, AllocationCheck.CHECK, "FAIL", "the next start really gets " + GPU,
                    "virtctl stop docker-host -n default && kubectl -n default annotate vm docker-host " + Harvester.ALLOCATION_ANNOTATION + "- && virtctl start");
        }
    }

    // ---- version-bound advice: hot-plugged volumes with a GPU (kubevirt#17124) ----

    @SuppressWarnings("unchecked")
    static void hotplugVolume(SimCluster sim) {
        Seed.gpuReady(sim);
        editVm(sim, vm -> {
            Map<String, Object> devices = vm.get("spec", "template", "spec", "domain", "devices");
            devices.put("hostDevices", new ArrayList<>(List.of(Map.of("name", GPU, "deviceName", GPU_RES), Map.of("name", AUDIO, "deviceName", AUDIO_RES))));
            List<Object> vols = new ArrayList<>((List<Object>) vm.get("spec", "template", "spec", "volumes"));
            vols.add(Map.of("name", "scratch", "persistentVolumeClaim", Map.of("claimName", "scratch", "hotpluggable", true)));
            vm.<Map<String, Object>>get("spec", "template", "spec").put("volumes", vols);
            return vm;
        });
    }

    @Test
    void aHotpluggedVolumeWithAGpuIsFineFromV172AndV182AndAnUpgradeBelow() {
        try (SimCluster sim = SimCluster.start(fast())) {
            hotplugVolume(sim);
            Run.Result fixed = diagnose(sim, "docker-host", "-o", "json");
            assertTrue(findings(fixed, "hotplug-volume").isEmpty(), fixed.all());
            assertEquals("PASS", findings(fixed, VersionCheck.HOTPLUG_CHECK).get(0).get("status").asText(), fixed.all());

            setServerVersion(sim, "v1.8.1");
            Run.Result old = diagnose(sim, "docker-host", "-o", "json");
            JsonNode w = findings(old, VersionCheck.HOTPLUG_CHECK).get(0);
            assertEquals("WARN", w.get("status").asText(), w.toString());
            assertTrue(w.get("fix").asText().startsWith("upgrade to Harvester v1.8.2 or later"), w.toString());
            assertTrue(findings(old, "hotplug-volume").isEmpty(), old.all());

            // the start failure itself: one FAIL, with the upgrade first
            KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").edit(vmi -> {
                Map<String, Object> st = vmi.get("status");
                st.put("phase", "Failed");
                st.put("conditions", List.of(Map.of("type", "Synchronized", "status", "False", "reason", "SyncFailed",
                        "message", "server error. command SyncVMI failed: \"LibvirtError(Code=67, Domain=10, Message='unsupported configuration: "
                                + "pci backend driver type 'default' is not supported')\"")));
                return vmi;
            });
            Run.Result failing = diagnose(sim, "docker-host", "-o", "json");
            once(failing, Cli.Exit.DIAGNOSE_FAIL, VersionCheck.HOTPLUG_CHECK, "FAIL", "kubevirt#17124", "upgrade to Harvester v1.8.2 or later");
            assertTrue(findings(failing, "hotplug-volume").isEmpty(), failing.all());

            setServerVersion(sim, "v1.7.1");
            Run.Result v17 = diagnose(sim, "docker-host", "-o", "json");
            once(v17, Cli.Exit.DIAGNOSE_FAIL, VersionCheck.HOTPLUG_CHECK, "FAIL", "fixed in v1.7.2 or later", "upgrade to Harvester v1.7.2 or later");
        }
    }
}
