//SOURCES Diagnosis.java ../model/Harvester.java ../model/KubeVirt.java

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/**
 * harvester#10793: the VM annotation harvesterhci.io/deviceAllocationDetails (written by pcidevices
 * with what the running VMI got) wins over hostDevices[].name at the next start: after the VM's
 * hostDevices were changed to another PCIDevice, QEMU still got the old one. Removing the
 * annotation while the VM runs does not stick (the controller writes it back); with the VM stopped
 * the pcidevices webhook rebuilds it from the spec on the next update. So: stop → fix → start.
 */
public final class AllocationCheck {
    private AllocationCheck() {}

    public static final String CHECK = "allocation-stale";

    /**
     * FAIL per resource whose annotated device is not the one hostDevices names (the next start
     * gets the annotated one); WARN per annotated device whose resource hostDevices no longer has;
     * nothing when the VM has no annotation.
     *
     * @param vm         the VirtualMachine
     * @param pciDevices every PCIDevice (annotation entries that are not PCIDevices, e.g. USB, are ignored)
     */
    public static List<Diagnosis.Finding> staleAllocation(GenericKubernetesResource vm, List<GenericKubernetesResource> pciDevices) {
        Set<String> pciNames = pciDevices.stream().map(d -> d.getMetadata().getName()).collect(Collectors.toSet());
        Map<String, List<String>> annotated = KubeVirt.allocatedDevices(vm);
        List<KubeVirt.HostDevice> entries = KubeVirt.hostDevices(vm);
        String ref = KubeVirt.ref(vm);
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (Map.Entry<String, List<String>> e : annotated.entrySet()) {
            String resource = e.getKey();
            List<String> got = e.getValue().stream().filter(pciNames::contains).toList();
            if (got.isEmpty()) continue;
            List<KubeVirt.HostDevice> forResource = entries.stream().filter(hd -> resource.equals(hd.deviceName())).toList();
            // Entries named after no PCIDevice (hand-written names) say nothing about which device is meant.
            List<String> named = forResource.stream().map(KubeVirt.HostDevice::name).filter(pciNames::contains).toList();
            if (!forResource.isEmpty() && named.isEmpty()) continue;
            if (forResource.isEmpty()) {
                out.add(Diagnosis.Finding.warn(CHECK, ref, "annotation " + Harvester.ALLOCATION_ANNOTATION + " still lists " + got + " for " + resource
                        + ", which hostDevices no longer has: unclaiming " + String.join(", ", got) + " is refused (\"already in use\") until it is cleared",
                        fix(vm)));
                continue;
            }
            List<String> stale = got.stream().filter(d -> !named.contains(d)).toList();
            if (stale.isEmpty()) continue;
            List<String> wanted = named.stream().filter(n -> !got.contains(n)).toList();
            out.add(Diagnosis.Finding.fail(CHECK, ref, "annotation " + Harvester.ALLOCATION_ANNOTATION + " maps " + resource + " to " + stale
                    + " but hostDevices names " + (wanted.isEmpty() ? named : wanted) + ": the next start really gets " + String.join(", ", stale)
                    + " (harvester#10793, stale mapping applied)", fix(vm)));
        }
        return out;
    }

    /** Stop, drop the annotation (rebuilt from the spec while stopped), start — in that order. */
    static String fix(GenericKubernetesResource vm) {
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        return "virtctl stop " + name + " -n " + ns + " && kubectl -n " + ns + " annotate vm " + name + " " + Harvester.ALLOCATION_ANNOTATION
                + "- && virtctl start " + name + " -n " + ns + "   (in this order: while the VM runs the annotation is written back)";
    }
}
