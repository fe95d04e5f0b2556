//SOURCES ../scripts/lib/checks/ClaimRemovalCheck.java ../scripts/lib/checks/GuideClaimCheck.java
//SOURCES ../scripts/lib/checks/PoolingCheck.java ../scripts/lib/checks/BaremetalCheck.java
//SOURCES ../scripts/lib/checks/PermittedCheck.java ../scripts/lib/checks/AddonCheck.java
//SOURCES ../scripts/lib/checks/AllocationCheck.java ../scripts/lib/checks/VersionCheck.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.List;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

/**
 * The diagnose checks for Harvester v1.7–v1.9 (scripts/lib/checks), as pure functions: each table
 * row is a cluster state (objects as read once) and the findings expected, "check:STATUS" in order.
 */
class V19ChecksTest {
    static final Instant NOW = Instant.parse("2026-12-01T05:00:00Z");

    record Row(String state, Supplier<List<Diagnosis.Finding>> check, List<String> expected, String fixOrEvidence) {}

    static void table(List<Row> rows) {
        for (Row r : rows) {
            List<Diagnosis.Finding> got = r.check.get();
            assertEquals(r.expected, got.stream().map(f -> f.check() + ":" + f.status()).toList(), r.state + " → " + got);
            if (r.fixOrEvidence != null) {
                assertTrue(got.stream().anyMatch(f -> f.fix().contains(r.fixOrEvidence) || f.evidence().contains(r.fixOrEvidence)),
                        r.state + ": no finding says \"" + r.fixOrEvidence + "\" in " + got);
            }
        }
    }

    static GenericKubernetesResource yaml(String y) {
        return Serialization.unmarshal(y, GenericKubernetesResource.class);
    }

    static GenericKubernetesResource device(String name, String node, String address, String vendor, String cls, String resource) {
        return yaml("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDevice
                metadata: {name: %s, uid: uid-%s}
                status: {address: "%s", vendorId: "%s", deviceId: "2204", classId: "%s", iommuGroup: "18", nodeName: %s, resourceName: %s}
                """.formatted(name, name, address, vendor, cls, node, resource));
    }

    static final GenericKubernetesResource GPU = device("altra-000c01000", "altra", "000c:01:00.0", "10de", "0300", "nvidia.com/GA102_GEFORCE_RTX_3090");
    static final GenericKubernetesResource GPU_PER_DEVICE = device("altra-000c01000", "altra", "000c:01:00.0", "10de", "0300", "nvidia.com/altra-000c01000");
    static final GenericKubernetesResource AUDIO = device("altra-000c01001", "altra", "000c:01:00.1", "10de", "0403", "nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER");
    static final GenericKubernetesResource NVME = device("altra-000401000", "altra", "0004:01:00.0", "144d", "0108", "samsung.com/NVME");
    static final GenericKubernetesResource DOTTED = device("gpu.lab-000001000", "gpu.lab", "0000:01:00.0", "10de", "0300", "nvidia.com/gpu.lab-000001000");

    static GenericKubernetesResource claim(String name, String meta, String spec, String status) {
        return yaml("""
                apiVersion: devices.harvesterhci.io/v1beta1
                kind: PCIDeviceClaim
                metadata: {name: %s%s}
                spec: %s
                status: %s
                """.formatted(name, meta, spec, status));
    }

    static final String OWNED = ", ownerReferences: [{apiVersion: devices.harvesterhci.io/v1beta1, kind: PCIDevice, name: altra-000c01000, uid: uid-altra-000c01000}]";
    static final String FINALIZER = ", finalizers: [wrangler.cattle.io/PCIDeviceClaimOnRemove]";
    static final String GPU_SPEC = "{address: \"000c:01:00.0\", nodeName: altra, userName: admin}";
    static final String ENABLED = "{passthroughEnabled: true}";

    static Pod pod(String name, String node, boolean ready, String waiting, int restarts) {
        return Serialization.unmarshal("""
                apiVersion: v1
                kind: Pod
                metadata: {name: %s, namespace: harvester-system}
                spec: {nodeName: %s, containers: [{name: agent}]}
                status:
                  phase: Running
                  conditions: [{type: Ready, status: "%s"}]
                  containerStatuses:
                  - name: agent
                    ready: %s
                    restartCount: %d
                    state: %s
                """.formatted(name, node, ready ? "True" : "False", ready, restarts,
                waiting == null ? "{running: {startedAt: \"2026-12-01T04:50:00Z\"}}" : "{waiting: {reason: " + waiting + "}}"), Pod.class);
    }

    static final Pod ALTRA_READY = pod("harvester-pcidevices-controller-x7k2p", "altra", true, null, 0);
    static final Pod ALTRA_CRASHING = pod("harvester-pcidevices-controller-x7k2p", "altra", false, "CrashLoopBackOff", 7);
    static final Pod BRAVO_READY = pod("harvester-pcidevices-controller-m4d9q", "bravo", true, null, 0);

    // ---- Terminating claims ----------------------------------------------------------------------

    @Test
    void terminatingClaimsNameTheirNodesAgent() {
        String deleting = FINALIZER + ", deletionTimestamp: \"2026-12-01T04:50:00Z\"";
        String justDeleting = FINALIZER + ", deletionTimestamp: \"2026-12-01T04:59:55Z\"";
        table(List.of(
                new Row("no claim is being deleted", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("altra-000c01000", OWNED + FINALIZER, GPU_SPEC, ENABLED)), List.of(ALTRA_READY), NOW), List.of(), null),
                new Row("altra's agent crash-loops", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("altra-000c01000", OWNED + deleting, GPU_SPEC, ENABLED)), List.of(ALTRA_CRASHING, BRAVO_READY), NOW),
                        List.of("claim-terminating:FAIL"), "kubectl -n harvester-system delete pod harvester-pcidevices-controller-x7k2p"),
                new Row("altra's agent crash-loops (evidence)", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("altra-000c01000", OWNED + deleting, GPU_SPEC, ENABLED)), List.of(ALTRA_CRASHING), NOW),
                        List.of("claim-terminating:FAIL"), "is NotReady (CrashLoopBackOff, 7 restarts)"),
                new Row("no agent on altra at all", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("altra-000c01000", OWNED + deleting, GPU_SPEC, ENABLED)), List.of(BRAVO_READY), NOW),
                        List.of("claim-terminating:FAIL"), "bring node altra back"),
                new Row("a guide claim: OnRemove cannot find its device", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("gpu-claim", deleting, "{address: \"01:00.0\", nodeName: altra}", "{}")), List.of(ALTRA_READY), NOW),
                        List.of("claim-terminating:FAIL"), "'{\"metadata\":{\"finalizers\":null}}'"),
                new Row("being given back right now", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("altra-000c01000", OWNED + justDeleting, GPU_SPEC, ENABLED)), List.of(ALTRA_READY), NOW),
                        List.of("claim-terminating:WARN"), "wait a few seconds"),
                new Row("agent Ready but not releasing for 10 minutes", () -> ClaimRemovalCheck.terminatingClaims(
                        List.of(claim("altra-000c01000", OWNED + deleting, GPU_SPEC, ENABLED)), List.of(ALTRA_READY), NOW),
                        List.of("claim-terminating:FAIL"), "error syncing 'altra-000c01000'")));
    }

    // ---- claims from public guides ------------------------------------------------------------------

    @Test
    void guideWrittenClaimsFailWithTheClaimCommandThatReplacesThem() {
        List<GenericKubernetesResource> devices = List.of(GPU, AUDIO, NVME);
        table(List.of(
                new Row("a claim made like the UI", () -> GuideClaimCheck.guideClaims(
                        List.of(claim("altra-000c01000", OWNED, GPU_SPEC, ENABLED)), devices), List.of(), null),
                new Row("OneUptime's gpu-claim, short address unique on the node", () -> GuideClaimCheck.guideClaims(
                        List.of(claim("gpu-claim", "", "{address: \"01:00.0\", nodeName: altra, userName: admin}", "{}")), List.of(GPU, AUDIO)),
                        List.of("claim-shape:FAIL"), "claim --force altra-000c01000"),
                new Row("short address ambiguous (two domains have 01:00.0)", () -> GuideClaimCheck.guideClaims(
                        List.of(claim("gpu-claim", "", "{address: \"01:00.0\", nodeName: altra, userName: admin}", "{}")), devices),
                        List.of("claim-shape:FAIL"), "find the device with: inventory --node altra, then: claim --force DEVICE"),
                new Row("right name, no ownerReference", () -> GuideClaimCheck.guideClaims(
                        List.of(claim("altra-000c01000", "", GPU_SPEC, "{}")), devices),
                        List.of("claim-shape:FAIL"), "Cannot find PCIDevice that owns altra-000c01000")));
    }

    // ---- resource pooling ---------------------------------------------------------------------------

    @Test
    void poolingMismatchesAndDottedResourceNamesFail() {
        String off = "{address: \"000c:01:00.0\", nodeName: altra, userName: admin, disableResourcePooling: true}";
        GenericKubernetesResource vmWithDot = yaml("""
                apiVersion: kubevirt.io/v1
                kind: VirtualMachine
                metadata: {name: docker-host, namespace: default}
                spec: {template: {spec: {domain: {devices: {hostDevices: [{name: gpu.lab-000001000, deviceName: nvidia.com/gpu.lab-000001000}]}}}}}
                """);
        table(List.of(
                new Row("pooled claim, pooled name", () -> PoolingCheck.pooling(
                        List.of(claim("altra-000c01000", OWNED, GPU_SPEC, ENABLED)), List.of(GPU), List.of()), List.of(), null),
                new Row("pooling off, per-device name", () -> PoolingCheck.pooling(
                        List.of(claim("altra-000c01000", OWNED, off, ENABLED)), List.of(GPU_PER_DEVICE), List.of()), List.of(), null),
                new Row("field set after creation: still pooled", () -> PoolingCheck.pooling(
                        List.of(claim("altra-000c01000", OWNED, off, ENABLED)), List.of(GPU), List.of()),
                        List.of("resource-pooling:FAIL"), "claim --force --no-pooling altra-000c01000"),
                new Row("field cleared after creation: still per device", () -> PoolingCheck.pooling(
                        List.of(claim("altra-000c01000", OWNED, GPU_SPEC, ENABLED)), List.of(GPU_PER_DEVICE), List.of()),
                        List.of("resource-pooling:FAIL"), "only takes effect when the claim is created"),
                new Row("node name with a dot", () -> PoolingCheck.pooling(
                        List.of(claim("gpu.lab-000001000", "", "{address: \"0000:01:00.0\", nodeName: gpu.lab, disableResourcePooling: true}", ENABLED)),
                        List.of(DOTTED), List.of()),
                        List.of("resource-name-dot:FAIL"), "PCI_RESOURCE_… not set for resource"),
                new Row("a VM asking for the dotted resource", () -> PoolingCheck.pooling(List.of(), List.of(DOTTED), List.of(vmWithDot)),
                        List.of("resource-name-dot:FAIL"), "harvester#9399"),
                new Row("a dotted entry name with a pooled resource (VmChecks' dotted-name, not repeated)", () -> PoolingCheck.pooling(
                        List.of(), List.of(GPU), List.of(yaml("""
                                apiVersion: kubevirt.io/v1
                                kind: VirtualMachine
                                metadata: {name: docker-host, namespace: default}
                                spec: {template: {spec: {domain: {devices: {hostDevices: [{name: gpu.1, deviceName: nvidia.com/GA102_GEFORCE_RTX_3090}]}}}}}
                                """))), List.of(), null)));
    }

    // ---- bare-metal GPU nodes -----------------------------------------------------------------------

    @Test
    void nvidiaGpusOnBaremetalLabelledNodesFail() {
        Node labelled = Serialization.unmarshal("apiVersion: v1\nkind: Node\nmetadata: {name: altra, labels: {harvesterhci.io/gpu-baremetal-workloads: \"true\"}}\n", Node.class);
        Node plain = Serialization.unmarshal("apiVersion: v1\nkind: Node\nmetadata: {name: altra, labels: {kubernetes.io/hostname: altra}}\n", Node.class);
        table(List.of(
                new Row("unlabelled node", () -> BaremetalCheck.baremetalNodes(List.of(plain), List.of(GPU, AUDIO), List.of("altra-000c01000")), List.of(), null),
                new Row("labelled node, GPU wanted", () -> BaremetalCheck.baremetalNodes(List.of(labelled), List.of(GPU, AUDIO), List.of("altra-000c01000")),
                        List.of("baremetal-gpu-node:FAIL"), "kubectl label node altra harvesterhci.io/gpu-baremetal-workloads-"),
                new Row("labelled node, only the audio function wanted", () -> BaremetalCheck.baremetalNodes(List.of(labelled), List.of(GPU, AUDIO),
                        List.of("altra-000c01001")), List.of(), null),
                new Row("denial on a labelled node", () -> BaremetalCheck.claimDenied("altra-000c01000", labelled, "some webhook words").stream().toList(),
                        List.of("baremetal-gpu-node:FAIL"), "some webhook words"),
                new Row("denial on an unlabelled node is something else", () -> BaremetalCheck.claimDenied("altra-000c01000", plain, "x").stream().toList(),
                        List.of(), null)));
    }

    // ---- permittedHostDevices ------------------------------------------------------------------------

    @Test
    void duplicatePermittedEntriesWarnAndMissingOnesFail() {
        Harvester.PciDevice gpu = Harvester.PciDevice.of(GPU);
        String entry = "{pciVendorSelector: \"10de:2204\", resourceName: nvidia.com/GA102_GEFORCE_RTX_3090, externalResourceProvider: true}";
        Supplier<GenericKubernetesResource> kv = () -> null;
        table(List.of(
                new Row("listed once", () -> PermittedCheck.permitted(kubevirt("[" + entry + "]"), List.of(gpu), List.of(ALTRA_READY)),
                        List.of("permitted:PASS"), null),
                new Row("listed twice (#10008)", () -> PermittedCheck.permitted(kubevirt("[" + entry + ", " + entry + "]"), List.of(gpu), List.of(ALTRA_READY)),
                        List.of("permitted-duplicates:WARN", "permitted:PASS"), "harvester#10008"),
                new Row("missing", () -> PermittedCheck.permitted(kubevirt("[]"), List.of(gpu), List.of(ALTRA_READY)),
                        List.of("permitted:FAIL"), "kubectl -n harvester-system delete pod harvester-pcidevices-controller-x7k2p"),
                new Row("no KubeVirt CR", () -> PermittedCheck.permitted(kv.get(), List.of(gpu), List.of()), List.of("permitted:FAIL"), "not found")));
    }

    static GenericKubernetesResource kubevirt(String pci) {
        return yaml("""
                apiVersion: kubevirt.io/v1
                kind: KubeVirt
                metadata: {name: kubevirt, namespace: harvester-system}
                spec: {configuration: {permittedHostDevices: {pciHostDevices: %s}}}
                status: {observedKubeVirtVersion: "1.8.4"}
                """.formatted(pci));
    }

    // ---- the add-on ----------------------------------------------------------------------------------

    static GenericKubernetesResource addon(boolean enabled, String status) {
        return yaml("""
                apiVersion: harvesterhci.io/v1beta1
                kind: Addon
                metadata: {name: pcidevices-controller, namespace: harvester-system}
                spec: {enabled: %s, chart: harvester-pcidevices-controller}
                status: {status: %s}
                """.formatted(enabled, status));
    }

    static ClusterVersions versions(String harvester, String kubevirt) {
        return ClusterVersions.of(harvester == null ? null : yaml("apiVersion: harvesterhci.io/v1beta1\nkind: Setting\nmetadata: {name: server-version}\nvalue: " + harvester + "\n"),
                kubevirt == null ? null : yaml("apiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: kubevirt}\nstatus: {observedKubeVirtVersion: \"" + kubevirt + "\"}\n"));
    }

    @Test
    void theAddOnMustBeEnabledDeployedAndDiscoveringDevices() {
        ClusterVersions v190 = versions("v1.9.0", "1.8.4");
        ClusterVersions rc4 = versions("v1.9.0-rc4", "1.8.3");
        Instant justStarted = Instant.parse("2026-12-01T04:51:00Z"); // pods started 04:50
        table(List.of(
                new Row("deployed with devices", () -> AddonCheck.addon(addon(true, "AddonDeploySuccessful"), List.of(GPU), List.of(ALTRA_READY), v190, NOW),
                        List.of("addon:PASS"), null),
                new Row("disabled (fresh install)", () -> AddonCheck.addon(addon(false, "AddonDisabled"), List.of(), List.of(), v190, NOW),
                        List.of("addon:FAIL"), Harvester.addonEnableCommand()),
                new Row("enabling", () -> AddonCheck.addon(addon(true, "AddonEnabling"), List.of(), List.of(), v190, NOW),
                        List.of("addon:WARN"), "expect AddonDeploySuccessful"),
                new Row("deployed, no devices yet, pods just started", () -> AddonCheck.addon(addon(true, "AddonDeploySuccessful"), List.of(),
                        List.of(ALTRA_READY), v190, justStarted), List.of("addon:PASS", "addon-no-devices:WARN"), null),
                new Row("deployed, no devices after 10 min on rc4", () -> AddonCheck.addon(addon(true, "AddonDeploySuccessful"), List.of(),
                        List.of(ALTRA_READY), rc4, NOW), List.of("addon:PASS", "addon-no-devices:FAIL"), "harvester#11360"),
                new Row("deployed, no devices after 10 min on GA", () -> AddonCheck.addon(addon(true, "AddonDeploySuccessful"), List.of(),
                        List.of(ALTRA_READY), v190, NOW), List.of("addon:PASS", "addon-no-devices:FAIL"), "logs -l app.kubernetes.io/name=harvester-pcidevices-controller"),
                new Row("no Addon object, no pods", () -> AddonCheck.addon(null, List.of(), List.of(), v190, NOW), List.of("addon:FAIL"), null)));
    }

    // ---- stale deviceAllocationDetails ---------------------------------------------------------------

    @Test
    void aStaleAllocationSaysWhichDeviceTheNextStartGets() {
        GenericKubernetesResource second = device("altra-000c02000", "altra", "000c:02:00.0", "10de", "0300", "nvidia.com/GA102_GEFORCE_RTX_3090");
        String gpuRes = "nvidia.com/GA102_GEFORCE_RTX_3090";
        java.util.function.BiFunction<String, String, GenericKubernetesResource> vm = (annotated, named) -> yaml("""
                apiVersion: kubevirt.io/v1
                kind: VirtualMachine
                metadata:
                  name: docker-host
                  namespace: default
                  annotations: {harvesterhci.io/deviceAllocationDetails: '{"hostdevices":{"%s":%s}}'}
                spec: {template: {spec: {domain: {devices: {hostDevices: %s}}}}}
                """.formatted(gpuRes, annotated, named));
        List<GenericKubernetesResource> devices = List.of(GPU, AUDIO, second);
        table(List.of(
                new Row("annotation matches the spec", () -> AllocationCheck.staleAllocation(
                        vm.apply("[\"altra-000c01000\"]", "[{name: altra-000c01000, deviceName: " + gpuRes + "}]"), devices), List.of(), null),
                new Row("spec changed to the second GPU", () -> AllocationCheck.staleAllocation(
                        vm.apply("[\"altra-000c01000\"]", "[{name: altra-000c02000, deviceName: " + gpuRes + "}]"), devices),
                        List.of("allocation-stale:FAIL"), "the next start really gets altra-000c01000"),
                new Row("spec changed (the safe order)", () -> AllocationCheck.staleAllocation(
                        vm.apply("[\"altra-000c01000\"]", "[{name: altra-000c02000, deviceName: " + gpuRes + "}]"), devices),
                        List.of("allocation-stale:FAIL"), "virtctl stop docker-host -n default && kubectl -n default annotate vm docker-host harvesterhci.io/deviceAllocationDetails- && virtctl start docker-host -n default"),
                new Row("device detached, annotation left", () -> AllocationCheck.staleAllocation(vm.apply("[\"altra-000c01000\"]", "[]"), devices),
                        List.of("allocation-stale:WARN"), "already in use"),
                new Row("entry not named after a PCIDevice: says nothing about which GPU", () -> AllocationCheck.staleAllocation(
                        vm.apply("[\"altra-000c01000\"]", "[{name: gpu1, deviceName: " + gpuRes + "}]"), devices), List.of(), null),
                new Row("USB entries are not PCIDevices", () -> AllocationCheck.staleAllocation(
                        vm.apply("[\"altra-0951-1666-003002\"]", "[]"), devices), List.of(), null)));
    }

    // ---- versions ------------------------------------------------------------------------------------

    @Test
    void versionsAreParsedAndDriveTheHotplugVolumeAdvice() {
        assertEquals("Harvester v1.9.0, KubeVirt 1.8.4", versions("v1.9.0", "1.8.4").describe());
        assertTrue(ReleaseVersion.parse("v1.9.0-rc4").isPreRelease());
        assertFalse(ReleaseVersion.parse("1.4.0-150600.5.9.1").isPreRelease());
        assertTrue(ReleaseVersion.parse("v1.9.0-rc4").compareTo(ReleaseVersion.parse("v1.9.0")) < 0);
        assertNull(ReleaseVersion.parse("dev"));
        assertTrue(versions("v1.9.0-rc4", null).atLeastV19());
        assertFalse(versions("v1.8.2", null).atLeastV19());
        String seen = "pci backend driver type 'default' is not supported";
        table(List.of(
                new Row("both known", () -> List.of(VersionCheck.versions(versions("v1.9.0", "1.8.4"))), List.of("versions:PASS"), "Harvester v1.9.0, KubeVirt 1.8.4"),
                new Row("setting unreadable", () -> List.of(VersionCheck.versions(versions(null, "1.8.4"))), List.of("versions:WARN"), "Harvester unknown"),
                new Row("v1.7.1: upgrade", () -> List.of(VersionCheck.hotplugVolumeGpu(versions("v1.7.1", "1.6.3"), "default/docker-host", seen)),
                        List.of("hotplug-volume-gpu:FAIL"), "upgrade to Harvester v1.7.2 or later"),
                new Row("v1.8.1: upgrade", () -> List.of(VersionCheck.hotplugVolumeGpu(versions("v1.8.1", "1.7.0"), "default/docker-host", seen)),
                        List.of("hotplug-volume-gpu:FAIL"), "upgrade to Harvester v1.8.2 or later"),
                new Row("v1.8.2 has the fix", () -> List.of(VersionCheck.hotplugVolumeGpu(versions("v1.8.2", "1.7.4"), "default/docker-host", seen)),
                        List.of("hotplug-volume-gpu:FAIL"), "already carries the fix"),
                new Row("v1.7.3 has the fix", () -> List.of(VersionCheck.hotplugVolumeGpu(versions("v1.7.3", "1.6.6"), "default/docker-host", seen)),
                        List.of("hotplug-volume-gpu:FAIL"), "already carries the fix"),
                new Row("unknown version", () -> List.of(VersionCheck.hotplugVolumeGpu(versions(null, null), "default/docker-host", seen)),
                        List.of("hotplug-volume-gpu:FAIL"), "virtctl removevolume docker-host -n default")));
    }
}
