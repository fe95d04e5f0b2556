import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The pure hostDevices edit of attach and detach (VmHostDevices), case by case, without a cluster. */
class HostDevicesEditTest {
    static final String GPU = Seed.GPU;
    static final String RES = Seed.GPU_RES;
    static final String USB_RES = "kubevirt.io/usb-stick";
    static final VmHostDevices.Target TARGET = new VmHostDevices.Target(GPU, RES, "altra");
    static final VmHostDevices.Target BY_RESOURCE = new VmHostDevices.Target(null, RES, null);

    static Map<String, Object> entry(String name, String deviceName) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", name);
        m.put("deviceName", deviceName);
        return m;
    }

    /** A VM with these hostDevices and gpus, pinned to `pinned` (or not). */
    static GenericKubernetesResource vm(List<Map<String, Object>> hostDevices, List<Map<String, Object>> gpus, String pinned) {
        GenericKubernetesResource vm = Serialization.unmarshal("""
                apiVersion: kubevirt.io/v1
                kind: VirtualMachine
                metadata: {name: docker-host, namespace: default, resourceVersion: "7"}
                spec: {runStrategy: RerunOnFailure, template: {spec: {domain: {devices: {disks: []}}}}}
                """, GenericKubernetesResource.class);
        VmHostDevices.setDevices(vm, new ArrayList<>(hostDevices), new ArrayList<>(gpus));
        if (pinned != null) VmHostDevices.pin(vm, pinned);
        return vm;
    }

    static Stream<Arguments> attachCases() {
        var usb = entry("usb1", USB_RES);
        var gpu = entry(GPU, RES);
        return Stream.of(
                // case, hostDevices before, gpus before, pinned, gpus to move, hostDevices after, gpus after, pinnedTo, changes
                Arguments.of("adds to an empty list and pins", List.of(), List.of(), null, false,
                        List.of(gpu), List.of(), "altra", List.of("hostDevices: +" + GPU)),
                Arguments.of("keeps the other entries", List.of(usb), List.of(), null, false,
                        List.of(usb, gpu), List.of(), "altra", List.of("hostDevices: +" + GPU)),
                Arguments.of("a VM already pinned is not pinned again", List.of(usb), List.of(), "altra", false,
                        List.of(usb, gpu), List.of(), null, List.of("hostDevices: +" + GPU)),
                Arguments.of("an entry with the resource under another name is the device", List.of(usb, entry("gpu1", RES)), List.of(), "altra", false,
                        List.of(usb, entry("gpu1", RES)), List.of(), null, List.of()),
                Arguments.of("present but unpinned: only the pin changes", List.of(gpu), List.of(), null, false,
                        List.of(gpu), List.of(), "altra", List.of()),
                Arguments.of("a passthrough gpus entry moves to hostDevices under the PCIDevice name", List.of(usb), List.of(entry("ga102", RES)), "altra", true,
                        List.of(usb, gpu), List.of(), null, List.of("gpus: -ga102 → hostDevices")),
                Arguments.of("a gpus entry already in hostDevices is only removed from gpus", List.of(gpu), List.of(entry("ga102", RES)), "altra", true,
                        List.of(gpu), List.of(), null, List.of("gpus: -ga102")));
    }

    @ParameterizedTest(name = "attach: {0}")
    @MethodSource("attachCases")
    void attach(String name, List<Map<String, Object>> before, List<Map<String, Object>> gpusBefore, String pinned, boolean moveGpus,
                List<Map<String, Object>> after, List<Map<String, Object>> gpusAfter, String pinnedTo, List<String> changes) {
        GenericKubernetesResource vm = vm(before, gpusBefore, pinned);
        GenericKubernetesResource untouched = Serialization.clone(vm);
        VmHostDevices.Edit edit = VmHostDevices.attach(vm, TARGET, moveGpus ? VmHostDevices.passthroughGpus(vm, List.of(RES)) : List.of());

        assertEquals(untouched, vm, "the edit is pure: the VM read is not changed");
        assertEquals(before, edit.before());
        assertEquals(after, edit.after());
        assertEquals(gpusAfter, edit.gpusAfter());
        assertEquals(pinnedTo, edit.pinnedTo());
        assertEquals(changes, edit.changes());
        assertEquals(after, VmHostDevices.list(edit.vm(), "hostDevices"), "the edited VM carries the new list");
        assertEquals(gpusAfter, VmHostDevices.list(edit.vm(), "gpus"));
        assertEquals(pinned != null ? pinned : pinnedTo, KubeVirt.pinnedNode(edit.vm()));
        assertEquals("7", edit.vm().getMetadata().getResourceVersion(), "written with the resourceVersion it was read at");
        if (edit.changed()) {
            Map<String, Object> devices = Serialization.jsonMapper().convertValue(edit.mergePatch(), Map.class);
            assertEquals(after, ((Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) devices.get("spec")).get("template"))
                    .get("spec")).get("domain")).get("devices")).get("hostDevices"), "a merge patch carries the whole list");
        }
    }

    static Stream<Arguments> detachCases() {
        var usb = entry("usb1", USB_RES);
        var gpu = entry(GPU, RES);
        var bravo = entry("bravo-000041000", RES);
        return Stream.of(
                // case, target, hostDevices before, gpus before, hostDevices after, gpus after, changes
                Arguments.of("removes the named entry, keeps the others", TARGET, List.of(usb, gpu), List.of(),
                        List.of(usb), List.of(), List.of("hostDevices: -" + GPU)),
                Arguments.of("a renamed entry (the only one with the resource) is the device", TARGET, List.of(entry("gpu1", RES), usb), List.of(),
                        List.of(usb), List.of(), List.of("hostDevices: -gpu1")),
                Arguments.of("nothing to remove is no change", TARGET, List.of(usb), List.of(),
                        List.of(usb), List.of(), List.of()),
                Arguments.of("by name among entries with the same resource", TARGET, List.of(gpu, bravo), List.of(),
                        List.of(bravo), List.of(), List.of("hostDevices: -" + GPU)),
                Arguments.of("by resource name alone", BY_RESOURCE, List.of(usb, entry("gpu1", RES)), List.of(),
                        List.of(usb), List.of(), List.of("hostDevices: -gpu1")),
                Arguments.of("passthrough gpus entries with the resource go too", TARGET, List.of(usb), List.of(entry("ga102", RES)),
                        List.of(usb), List.of(), List.of("gpus: -" + RES)));
    }

    @ParameterizedTest(name = "detach: {0}")
    @MethodSource("detachCases")
    void detach(String name, VmHostDevices.Target target, List<Map<String, Object>> before, List<Map<String, Object>> gpusBefore,
                List<Map<String, Object>> after, List<Map<String, Object>> gpusAfter, List<String> changes) {
        GenericKubernetesResource vm = vm(before, gpusBefore, "altra");
        GenericKubernetesResource untouched = Serialization.clone(vm);
        VmHostDevices.Edit edit = VmHostDevices.detach(vm, target);

        assertEquals(untouched, vm, "the edit is pure: the VM read is not changed");
        assertEquals(after, edit.after());
        assertEquals(gpusAfter, edit.gpusAfter());
        assertEquals(changes, edit.changes());
        assertEquals(null, edit.pinnedTo(), "detach never pins");
        assertEquals(!changes.isEmpty(), edit.changed());
        assertEquals(after, VmHostDevices.list(edit.vm(), "hostDevices"));
    }

    static Stream<Arguments> ambiguousDetachCases() {
        var gpu1 = entry("gpu1", RES);
        var gpu2 = entry("gpu2", RES);
        return Stream.of(
                // case, target, hostDevices, exit, message start
                Arguments.of("a name matching none of several entries", TARGET, List.of(gpu1, gpu2), Cli.Exit.NOT_FOUND,
                        "no hostDevices entry named " + GPU + "; 2 entries have deviceName " + RES),
                Arguments.of("a resource name shared by several entries", BY_RESOURCE, List.of(gpu1, gpu2), Cli.Exit.USAGE,
                        "2 hostDevices entries have deviceName " + RES));
    }

    @ParameterizedTest(name = "detach refuses: {0}")
    @MethodSource("ambiguousDetachCases")
    void ambiguousDetachIsRefused(String name, VmHostDevices.Target target, List<Map<String, Object>> before, Cli.Exit exit, String message) {
        var e = assertThrows(Cli.UserError.class, () -> VmHostDevices.detach(vm(before, List.of(), null), target));
        assertEquals(exit, e.exit);
        assertEquals(true, e.getMessage().startsWith(message), e.getMessage());
    }
}
