import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.stream.Stream;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The one rule "which PCIDevice does this hostDevices entry mean?" (KubeVirt.match / uses), case by case. */
class MatchRuleTest {
    static final String RES = Seed.GPU_RES;

    static Harvester.PciDevice device(String name, String node, String resource) {
        return new Harvester.PciDevice(name, "uid-" + name, node, "0000:00:00.0", "10de", "2204", "0300", "18", resource, "RTX 3090", "vfio-pci");
    }

    static final Harvester.PciDevice ALTRA_GPU = device("altra-000c01000", "altra", RES);
    static final Harvester.PciDevice ALTRA_GPU2 = device("altra-000d01000", "altra", RES);
    static final Harvester.PciDevice BRAVO_GPU = device("bravo-000041000", "bravo", RES);
    static final Harvester.PciDevice AUDIO = device("altra-000c01001", "altra", Seed.AUDIO_RES);
    static final List<Harvester.PciDevice> ALL = List.of(ALTRA_GPU, ALTRA_GPU2, BRAVO_GPU, AUDIO);

    static Stream<Arguments> cases() {
        return Stream.of(
                // case, entry name, entry deviceName, pinned node, candidates, exact
                Arguments.of("named after a device with its resource: that device", "altra-000c01000", RES, null, List.of(ALTRA_GPU), true),
                Arguments.of("named after it, pinned elsewhere: still that device", "altra-000c01000", RES, "bravo", List.of(ALTRA_GPU), true),
                Arguments.of("a free name, unpinned: every device with the resource", "gpu1", RES, null, List.of(ALTRA_GPU, ALTRA_GPU2, BRAVO_GPU), false),
                Arguments.of("a free name, pinned: the devices on that node", "gpu1", RES, "altra", List.of(ALTRA_GPU, ALTRA_GPU2), false),
                Arguments.of("pinned to a node without the resource: none", "gpu1", RES, "charlie", List.of(), false),
                Arguments.of("named after a device but with another resource: pooled by the resource", "altra-000c01001", RES, "bravo", List.of(BRAVO_GPU), false),
                Arguments.of("an unknown resource: none", "gpu1", "nvidia.com/TYPO", null, List.of(), false),
                Arguments.of("no deviceName: none", "altra-000c01000", null, null, List.of(), false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void match(String name, String entryName, String deviceName, String pinned, List<Harvester.PciDevice> candidates, boolean exact) {
        KubeVirt.Match m = KubeVirt.match(new KubeVirt.HostDevice(entryName, deviceName), ALL, pinned);
        assertEquals(candidates, m.devices());
        assertEquals(exact, m.exact());
        assertEquals(candidates.stream().findFirst(), KubeVirt.pciDeviceFor(new KubeVirt.HostDevice(entryName, deviceName), ALL, pinned));
    }

    static GenericKubernetesResource vm(String entries, String pinned, String allocation) {
        return Serialization.unmarshal("""
                apiVersion: kubevirt.io/v1
                kind: VirtualMachine
                metadata: {name: docker-host, namespace: default, annotations: {%s}}
                spec: {template: {spec: {nodeSelector: {%s}, domain: {devices: {hostDevices: [%s]}}}}}
                """.formatted(allocation == null ? "" : "harvesterhci.io/deviceAllocationDetails: '" + allocation + "'",
                pinned == null ? "" : "kubernetes.io/hostname: " + pinned, entries), GenericKubernetesResource.class);
    }

    static Stream<Arguments> usesCases() {
        return Stream.of(
                // case, VM hostDevices, pinned, allocation annotation, device, how (null: not used)
                Arguments.of("by name", "{name: altra-000c01000, deviceName: " + RES + "}", null, null, ALTRA_GPU, "hostDevices name altra-000c01000"),
                Arguments.of("another named device is not this one", "{name: altra-000d01000, deviceName: " + RES + "}", null, null, ALTRA_GPU, null),
                Arguments.of("pooled on its pinned node", "{name: gpu1, deviceName: " + RES + "}", "altra", null, ALTRA_GPU, "hostDevices deviceName " + RES),
                Arguments.of("pooled, pinned to another node", "{name: gpu1, deviceName: " + RES + "}", "bravo", null, ALTRA_GPU, null),
                Arguments.of("allocated by the controller", "", null, "{\"hostdevices\":{\"" + RES + "\":[\"altra-000c01000\"]}}", ALTRA_GPU,
                        "allocated: annotation harvesterhci.io/deviceAllocationDetails"),
                Arguments.of("another resource", "{name: gpu1, deviceName: " + RES + "}", null, null, AUDIO, null));
    }

    @ParameterizedTest(name = "uses: {0}")
    @MethodSource("usesCases")
    void uses(String name, String entries, String pinned, String allocation, Harvester.PciDevice d, String how) {
        assertEquals(how, KubeVirt.uses(vm(entries, pinned, allocation), d, ALL));
    }
}
