//SOURCES ../model/Harvester.java

import java.util.List;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;

/** The harvester-pcidevices-controller pods as the checks need them: which one runs on a node, and in what state. */
final class AgentPods {
    private AgentPods() {}

    /** The (newest, not deleting) controller pod on a node, or null. */
    static Pod on(List<Pod> pods, String node) {
        Pod found = null;
        for (Pod p : pods) {
            if (node != null && node.equals(p.getSpec().getNodeName()) && p.getMetadata().getDeletionTimestamp() == null) found = p;
        }
        return found;
    }

    static boolean ready(Pod p) {
        return p != null && p.getStatus() != null && p.getStatus().getConditions() != null && p.getStatus().getConditions().stream()
                .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    }

    /** "Ready" or "NotReady (CrashLoopBackOff, 7 restarts)". */
    static String state(Pod p) {
        if (ready(p)) return "Ready";
        String why = p.getStatus() == null ? null : p.getStatus().getPhase();
        int restarts = 0;
        if (p.getStatus() != null && p.getStatus().getContainerStatuses() != null) {
            for (ContainerStatus c : p.getStatus().getContainerStatuses()) {
                if (c.getRestartCount() != null) restarts += c.getRestartCount();
                if (c.getState() != null && c.getState().getWaiting() != null && c.getState().getWaiting().getReason() != null) {
                    why = c.getState().getWaiting().getReason();
                }
            }
        }
        return "NotReady (" + (why == null ? "no status" : why) + ", " + restarts + " restart" + (restarts == 1 ? "" : "s") + ")";
    }

    static String restartCommand(Pod p) {
        return "kubectl -n " + Harvester.CONTROLLER_NAMESPACE + " delete pod " + p.getMetadata().getName();
    }
}
