//SOURCES Diagnosis.java

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;

/**
 * The runbook's "get pods | grep harvester-pcidevices-controller" and "logs <pod> -c agent
 * --tail=200", read by a program: are the controller pods Ready, and what known errors did the
 * agent log recently.
 */
public final class ControllerHealth {
    private ControllerHealth() {}

    public static final String CONTAINER = "agent";
    public static final int LOG_TAIL = 200;

    public static List<Pod> pods(KubernetesClient c) {
        String[] kv = Harvester.CONTROLLER_POD_SELECTOR.split("=", 2);
        return c.pods().inNamespace(Harvester.CONTROLLER_NAMESPACE).withLabel(kv[0], kv[1]).list().getItems();
    }

    /** The controller pod on a node (the newest if several), or null. */
    public static Pod podOn(List<Pod> pods, String node) {
        Pod found = null;
        for (Pod p : pods) {
            if (node.equals(p.getSpec().getNodeName()) && p.getMetadata().getDeletionTimestamp() == null) found = p;
        }
        return found;
    }

    public static boolean ready(Pod p) {
        return p.getStatus() != null && p.getStatus().getConditions() != null && p.getStatus().getConditions().stream()
                .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    }

    /**
     * One finding per pod (FAIL for a node that matters, WARN elsewhere: the webhook service selects
     * every pod), a FAIL for a node that matters without a pod, and the agent log of those nodes' pods.
     */
    public static List<Diagnosis.Finding> check(KubernetesClient c, Collection<String> nodesThatMatter) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        List<Pod> pods = pods(c);
        if (pods.isEmpty()) {
            out.add(Diagnosis.Finding.fail("controller-pod", Harvester.CONTROLLER_NAMESPACE, "no pods with label "
                            + Harvester.CONTROLLER_POD_SELECTOR + ": the pcidevices-controller add-on is not enabled (or its DaemonSet is gone)",
                    "kubectl -n harvester-system patch addons.harvesterhci.io pcidevices-controller --type merge -p '{\"spec\":{\"enabled\":true}}'"));
            return out;
        }
        for (String node : nodesThatMatter) {
            if (podOn(pods, node) == null) {
                out.add(Diagnosis.Finding.fail("controller-pod", node, "no harvester-pcidevices-controller pod on node " + node
                                + ": nothing there binds vfio-pci or runs the device plugin",
                        "kubectl -n harvester-system describe daemonset harvester-pcidevices-controller"));
            }
        }
        for (Pod p : pods) {
            String node = p.getSpec().getNodeName();
            boolean matters = nodesThatMatter.isEmpty() || nodesThatMatter.contains(node);
            String subject = p.getMetadata().getName();
            if (ready(p)) {
                out.add(Diagnosis.Finding.pass("controller-pod", subject, "Ready on node " + node + state(p)));
            } else {
                String ev = "not Ready on node " + node + state(p)
                        + (matters ? "" : " (webhook requests sent to it fail or are admitted unvalidated)");
                Diagnosis.Finding f = matters ? Diagnosis.Finding.fail("controller-pod", subject, ev, null)
                        : Diagnosis.Finding.warn("controller-pod", subject, ev, null);
                out.add(f.with(Diagnosis.restartController(subject)));
            }
            if (matters) out.addAll(log(c, p));
        }
        return out;
    }

    /** ", agent waiting CrashLoopBackOff, restarts 7" */
    private static String state(Pod p) {
        if (p.getStatus() == null || p.getStatus().getContainerStatuses() == null) return "";
        for (ContainerStatus cs : p.getStatus().getContainerStatuses()) {
            if (!CONTAINER.equals(cs.getName())) continue;
            String s = "";
            if (cs.getState() != null && cs.getState().getWaiting() != null) {
                s = ", " + CONTAINER + " waiting " + cs.getState().getWaiting().getReason();
            } else if (cs.getState() != null && cs.getState().getTerminated() != null) {
                s = ", " + CONTAINER + " terminated " + cs.getState().getTerminated().getReason();
            }
            return s + ", restarts " + (cs.getRestartCount() == null ? 0 : cs.getRestartCount());
        }
        return "";
    }

    /** Known error lines in the last {@value #LOG_TAIL} lines of the agent log: the last of each kind. */
    static List<Diagnosis.Finding> log(KubernetesClient c, Pod p) {
        String pod = p.getMetadata().getName();
        String log;
        try {
            var container = c.pods().inNamespace(Harvester.CONTROLLER_NAMESPACE).withName(pod).inContainer(CONTAINER);
            log = container.tailingLines(LOG_TAIL).getLog();
            // A crash-looping agent said why in its previous run (kubectl logs --previous).
            if (restarts(p) > 0) log = previous(container) + "\n" + log;
        } catch (KubernetesClientException e) {
            return List.of(Diagnosis.Finding.warn("controller-log", pod, "cannot read the " + CONTAINER + " log: " + e.getMessage(),
                    "kubectl -n " + Harvester.CONTROLLER_NAMESPACE + " logs " + pod + " -c " + CONTAINER + " --previous --tail=" + LOG_TAIL));
        }
        Map<String, Map.Entry<Diagnosis.Known, Matcher>> last = new LinkedHashMap<>();
        Map<String, String> lines = new LinkedHashMap<>();
        for (String line : log == null ? List.<String>of() : log.lines().toList()) {
            var hit = Diagnosis.recognise(Diagnosis.AGENT_LOG, line);
            if (hit == null) continue;
            last.remove(hit.getKey().check());
            last.put(hit.getKey().check(), hit);
            lines.put(hit.getKey().check(), message(line));
        }
        if (last.isEmpty()) {
            return List.of(Diagnosis.Finding.pass("controller-log", pod, "no known errors in the last " + LOG_TAIL + " lines of the " + CONTAINER + " log"));
        }
        List<Diagnosis.Finding> out = new ArrayList<>();
        String node = p.getSpec().getNodeName();
        for (var e : last.entrySet()) {
            Diagnosis.Known k = e.getValue().getKey();
            Matcher m = e.getValue().getValue();
            String ev = CONTAINER + " log: \"" + lines.get(e.getKey()) + "\" — " + k.meaning();
            Diagnosis.Finding f = switch (k.check()) {
                case "claim-owner" -> Diagnosis.Finding.fail("controller-log", pod, ev, "claim --force " + m.group(1));
                case "iommu-missing" -> Diagnosis.Finding.fail("controller-log", pod, ev,
                        "enable IOMMU/SMMU in node " + node + "'s firmware and kernel command line, then reboot it");
                case "driver-still-bound" -> Diagnosis.Finding.warn("controller-log", pod, ev + "; if it persists, reboot node " + node,
                        "kubectl get pcidevices -l nodename=" + node + " -o custom-columns=NAME:.metadata.name,DRIVER:.status.kernelDriverInUse");
                case "vfio-bind" -> Diagnosis.Finding.fail("controller-log", pod, ev + "; maintainers advise a reboot (harvester#3833)",
                        "reboot node " + node + " (enable maintenance mode first), then: claim <device>");
                // group mismatch (a restart rescans the groups), KubeVirt CR update conflicts, any other sync error
                default -> Diagnosis.Finding.fail("controller-log", pod, ev, null).with(Diagnosis.restartController(pod));
            };
            out.add(f);
        }
        return out;
    }

    private static String previous(io.fabric8.kubernetes.client.dsl.ContainerResource container) {
        try {
            String prev = container.terminated().tailingLines(LOG_TAIL).getLog();
            return prev == null ? "" : prev;
        } catch (KubernetesClientException e) {
            return ""; // no previous container (yet): the current log is all there is
        }
    }

    private static int restarts(Pod p) {
        if (p.getStatus() == null || p.getStatus().getContainerStatuses() == null) return 0;
        return p.getStatus().getContainerStatuses().stream().filter(cs -> CONTAINER.equals(cs.getName()))
                .mapToInt(cs -> cs.getRestartCount() == null ? 0 : cs.getRestartCount()).max().orElse(0);
    }

    /** The message without klog's "I1124 21:00:00.000000       1 " prefix, shortened for one line. */
    private static String message(String line) {
        String s = line.replaceFirst("^[IWEF]\\d{4} \\d{2}:\\d{2}:\\d{2}\\.\\d+\\s+\\d+\\s+(\\S+\\.go:\\d+\\]\\s*)?", "");
        return s.length() > 160 ? s.substring(0, 157) + "..." : s;
    }
}
