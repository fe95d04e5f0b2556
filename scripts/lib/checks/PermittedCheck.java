//SOURCES Diagnosis.java ../model/Harvester.java AgentPods.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;

/**
 * The KubeVirt CR's permittedHostDevices.pciHostDevices: a resource listed twice is harmless noise
 * (harvester#10008: "does not cause issues with actual device operation"); a resource not listed
 * is the real fault (virt-controller: "HostDevice … is not permitted in permittedHostDevices configuration").
 */
public final class PermittedCheck {
    private PermittedCheck() {}

    public static final String CHECK = "permitted";
    public static final String DUPLICATES_CHECK = "permitted-duplicates";

    /**
     * FAIL per wanted device whose resource is missing; WARN per resource listed more than once;
     * PASS per wanted device listed once.
     *
     * @param kubevirt       the KubeVirt CR harvester-system/kubevirt (null: FAIL)
     * @param wanted         the devices that must be permitted
     * @param controllerPods the controller pods (the fix restarts the one on the device's node)
     */
    public static List<Diagnosis.Finding> permitted(GenericKubernetesResource kubevirt, List<Harvester.PciDevice> wanted, List<Pod> controllerPods) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        if (kubevirt == null) {
            out.add(Diagnosis.Finding.fail(CHECK, Harvester.KUBEVIRT_NAMESPACE + "/" + Harvester.KUBEVIRT_NAME,
                    "KubeVirt CR " + Harvester.KUBEVIRT_NAMESPACE + "/" + Harvester.KUBEVIRT_NAME + " not found", "check that KubeVirt is deployed"));
            return out;
        }
        Map<String, Integer> count = new LinkedHashMap<>();
        Object list = kubevirt.get("spec", "configuration", "permittedHostDevices", "pciHostDevices");
        if (list instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> m && m.get("resourceName") != null) count.merge(m.get("resourceName").toString(), 1, Integer::sum);
            }
        }
        for (Map.Entry<String, Integer> e : count.entrySet()) {
            if (e.getValue() > 1) {
                out.add(Diagnosis.Finding.warn(DUPLICATES_CHECK, e.getKey(), e.getKey() + " is listed " + e.getValue()
                                + " times in permittedHostDevices.pciHostDevices: harmless (harvester#10008), the CR only grows",
                        "nothing to do; to tidy, keep one entry per resourceName: kubectl -n " + Harvester.KUBEVIRT_NAMESPACE + " edit kubevirt " + Harvester.KUBEVIRT_NAME));
            }
        }
        for (Harvester.PciDevice d : wanted) {
            if (count.containsKey(d.resourceName())) {
                out.add(Diagnosis.Finding.pass(CHECK, d.name(), "in kubevirt permittedHostDevices.pciHostDevices: " + d.resourceName()));
                continue;
            }
            Pod pod = AgentPods.on(controllerPods, d.node());
            Diagnosis.Finding f = Diagnosis.Finding.fail(CHECK, d.name(), "not in kubevirt permittedHostDevices.pciHostDevices: " + d.resourceName()
                    + " (VMs using it stay Pending: \"HostDevice " + d.resourceName() + " is not permitted in permittedHostDevices configuration\")",
                    pod == null ? "claim " + d.name() + " (the claim controller adds the entry)" : AgentPods.restartCommand(pod));
            out.add(pod == null ? f : f.with(Diagnosis.restartController(pod.getMetadata().getName())));
        }
        return out;
    }
}
