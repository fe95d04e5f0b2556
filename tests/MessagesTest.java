import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.stream.Stream;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Recognising the messages of the API server, its webhooks and KubeVirt, case by case, without a cluster. */
class MessagesTest {
    static final String RES = Seed.GPU_RES;

    static Stream<Arguments> webhookDenials() {
        String race = "admission webhook \"pcidevices.harvesterhci.io\" denied the request: hostdevice gpu1: resource name " + RES
                + " not found in pcidevice and usbdevice cache";
        return Stream.of(
                // case, HTTP code, message, is the webhook cache race for RES
                Arguments.of("the cache race for our resource", 500, race, true),
                Arguments.of("the same words for another resource", 500, race.replace(RES, "nvidia.com/TYPO"), false),
                Arguments.of("a gpus entry (not a race)", 500, "admission webhook \"pcidevices.harvesterhci.io\" denied the request: gpu device ga102: resource name "
                        + RES + " not found in pcidevice cache", false),
                Arguments.of("a 4xx is never the race", 400, race, false),
                Arguments.of("a conflict", 409, "the object has been modified", false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("webhookDenials")
    void webhookCacheRace(String name, int code, String message, boolean race) {
        var e = new KubernetesClientException(new StatusBuilder().withCode(code).withMessage(message).build());
        assertEquals(race, VmDeviceChange.isCacheRace(e, RES));
        assertEquals(message, VmRestart.message(e), "the API server's own words");
    }

    static Stream<Arguments> claimDenials() {
        return Stream.of(
                Arguments.of("pcideviceclaim altra-000c01000 has no iommuGroup available", "enable the IOMMU in the node's firmware (ARM: SMMU; x86: VT-d/AMD-Vi) and reboot it"),
                Arguments.of("pcidevice altra-0000ff000 not found", "a claim must be named after an existing PCIDevice: list them with inventory"),
                Arguments.of("pcideviceclaim altra-000c01000 is already in use with vm docker-host in namespace default",
                        "detach the device from that VM first (detach), then retry"),
                Arguments.of("something new", "see: diagnose --device altra-000c01000"));
    }

    @ParameterizedTest(name = "claim denial: {0}")
    @MethodSource("claimDenials")
    void claimDenialFix(String denial, String fix) {
        assertEquals(fix, Claiming.fixFor(denial, "altra-000c01000"));
    }

    static GenericKubernetesResource vmi(String uid, String phase, String conditions, boolean withDevice) {
        return Serialization.unmarshal("""
                apiVersion: kubevirt.io/v1
                kind: VirtualMachineInstance
                metadata: {name: docker-host, namespace: default, uid: %s}
                spec: {domain: {devices: {hostDevices: [%s]}}}
                status: {phase: %s, nodeName: altra, conditions: [%s]}
                """.formatted(uid, withDevice ? "{name: altra-000c01000, deviceName: " + RES + "}" : "", phase, conditions),
                GenericKubernetesResource.class);
    }

    static Stream<Arguments> instanceStates() {
        String notPermitted = "{type: Synchronized, status: \"False\", reason: FailedCreate, message: \"failed to render launch manifest: HostDevice "
                + RES + " is not permitted in permittedHostDevices configuration\"}";
        return Stream.of(
                // case, uid, phase, conditions, has the device, outcome (null: keep waiting), running
                Arguments.of("the old instance", "old", "Running", "", true, null, false),
                Arguments.of("a new instance still scheduling", "new", "Scheduling", "", true, null, false),
                Arguments.of("new, Running with the device", "new", "Running", "", true, "", true),
                Arguments.of("new, Running without it", "new", "Running", "", false,
                        "instance Running without the expected host device change (its spec differs from the VM's)", false),
                Arguments.of("Pending, not permitted: stop at once", "new", "Pending", notPermitted, true,
                        "instance Pending: failed to render launch manifest: HostDevice " + RES + " is not permitted in permittedHostDevices configuration", false),
                Arguments.of("Failed", "new", "Failed", "", true, "instance Failed", false));
    }

    @ParameterizedTest(name = "instance: {0}")
    @MethodSource("instanceStates")
    void judgeTheInstance(String name, String uid, String phase, String conditions, boolean withDevice, String problem, boolean running) {
        VmRestart.Outcome o = VmRestart.judge(vmi(uid, phase, conditions, withDevice), "old", v -> VmRestart.hasDevice(v, RES));
        if (problem == null) {
            assertEquals(null, o);
            return;
        }
        assertEquals(running, o.running());
        assertEquals(problem.isEmpty() ? null : problem, o.problem());
    }

    static Stream<Arguments> vmMessages() {
        return Stream.of(
                // message, check recognised (null: none)
                Arguments.of("HostDevice " + RES + " is not permitted in permittedHostDevices configuration", "not-permitted"),
                Arguments.of("gpu device ga102: resource name " + RES + " not found in pcidevice cache", "webhook-gpu-field"),
                Arguments.of("hostdevice gpu1: resource name " + RES + " not found in pcidevice and usbdevice cache", "webhook-cache"),
                Arguments.of("0/2 nodes are available: 2 Insufficient " + RES + ".", "insufficient-resource"),
                Arguments.of("vfio 0000:0c:00.0: group 18 is not viable", "group-not-viable"),
                Arguments.of("failed to open /dev/vfio/18: Device or resource busy", "vfio-busy"),
                Arguments.of("all fine", null));
    }

    @ParameterizedTest(name = "VM message: {1}")
    @MethodSource("vmMessages")
    void vmMessagesAreRecognised(String message, String check) {
        var hit = Diagnosis.recognise(Diagnosis.VM_MESSAGES, message);
        assertEquals(check, hit == null ? null : hit.getKey().check());
    }
}
