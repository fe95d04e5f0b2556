//SOURCES Diagnosis.java ../model/Harvester.java

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;

/**
 * Bare-metal GPU nodes (Harvester v1.9): a node labelled harvesterhci.io/gpu-baremetal-workloads=true
 * keeps its NVIDIA GPUs for containers, and the pcidevices claim webhook refuses claims for them
 * (pcidevices PR #296). Removing the label is refused while pods use the GPU (node webhook: "node %s
 * has pods %s scheduled which may be using the GPU").
 */
public final class BaremetalCheck {
    private BaremetalCheck() {}

    public static final String CHECK = "baremetal-gpu-node";

    /**
     * A FAIL per wanted NVIDIA GPU on a labelled node.
     *
     * @param nodes         every Node
     * @param pciDevices    every PCIDevice
     * @param wantedDevices the PCIDevice names the user wants passed through (e.g. a VM's, or claim's targets)
     */
    public static List<Diagnosis.Finding> baremetalNodes(List<Node> nodes, List<GenericKubernetesResource> pciDevices, Collection<String> wantedDevices) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (GenericKubernetesResource r : pciDevices) {
            Harvester.PciDevice d = Harvester.PciDevice.of(r);
            if (!wantedDevices.contains(d.name()) || !nvidiaGpu(d)) continue;
            Node node = nodes.stream().filter(n -> n.getMetadata().getName().equals(d.node())).findFirst().orElse(null);
            if (!labelled(node)) continue;
            out.add(finding(d.name(), d.node(), "NVIDIA GPU " + d.name() + " is on node " + d.node() + ", labelled "
                    + Harvester.BAREMETAL_GPU_LABEL + "=true: its GPUs are kept for bare-metal containers and claims for them are denied"));
        }
        return out;
    }

    /**
     * Reads a claim-CREATE denial: on a labelled node any denial is taken as this case (the
     * upstream message was not seen), else empty.
     */
    public static java.util.Optional<Diagnosis.Finding> claimDenied(String device, Node node, String deniedMessage) {
        if (!labelled(node)) return java.util.Optional.empty();
        String name = node.getMetadata().getName();
        return java.util.Optional.of(finding(device, name, "creating the claim for " + device + " was denied (" + deniedMessage
                + ") and node " + name + " is labelled " + Harvester.BAREMETAL_GPU_LABEL + "=true"));
    }

    private static Diagnosis.Finding finding(String device, String node, String evidence) {
        return Diagnosis.Finding.fail(CHECK, device, evidence, "pass through a GPU on another node (inventory), or, once no pod uses this GPU, "
                + "remove the label: kubectl label node " + node + " " + Harvester.BAREMETAL_GPU_LABEL + "-");
    }

    static boolean labelled(Node node) {
        Map<String, String> labels = node == null ? null : node.getMetadata().getLabels();
        return labels != null && "true".equals(labels.get(Harvester.BAREMETAL_GPU_LABEL));
    }

    /** An NVIDIA display controller (class 03xx), as the webhook sees GPUs. */
    static boolean nvidiaGpu(Harvester.PciDevice d) {
        return Harvester.NVIDIA_VENDOR_ID.equals(d.vendorId()) && d.classId() != null && d.classId().startsWith("03");
    }
}
