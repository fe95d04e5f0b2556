import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import io.fabric8.kubernetes.api.model.ContainerStateBuilder;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * The harvester-pcidevices-controller DaemonSet's pods: one per node, as seeded. With fault
 * CONTROLLER_DOWN the `agent` container crash-loops (Ready=False, waiting CrashLoopBackOff,
 * restartCount growing, crash lines in its log). Deleting a pod makes the DaemonSet create a new
 * one on the same node (new generated name), Ready after controllerDelay — and a restart clears
 * CONTROLLER_DOWN, as a restart fixes a wedged controller. CLAIM_STUCK_TERMINATING crash-loops only
 * the pod on {@link Fault#NODE} (its restart clears it). While the add-on is disabled
 * (ADDON_DISABLED) the DaemonSet does not exist: no pod is recreated.
 */
final class ControllerPods implements AutoCloseable {
    private static final String NS = Harvester.CONTROLLER_NAMESPACE;
    private static final String NAME = "harvester-pcidevices-controller";

    private final SimCluster sim;
    private final KubernetesClient admin;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sim-controller-pods");
        t.setDaemon(true);
        return t;
    });
    /** The pod spec per node (the DaemonSet's template), learned from the seeded pods. */
    private final Map<String, Pod> template = new ConcurrentHashMap<>();
    /** When a recreated pod was created: Ready once controllerDelay has passed. */
    private final Map<String, Instant> starting = new ConcurrentHashMap<>();
    /** When each pod last crashed: the kubelet restarts a crashing container with a back-off, not continuously. */
    private final Map<String, Instant> crashed = new ConcurrentHashMap<>();
    private final SimCluster.TickGate gate;
    /** Set by a tick that failed. */
    private boolean failed;

    ControllerPods(SimCluster sim) {
        this.sim = sim;
        this.admin = sim.admin();
        for (Pod p : pods()) template.put(p.getSpec().getNodeName(), p);
        long period = Math.max(10, Math.min(50, sim.options().controllerDelay.toMillis()));
        this.gate = sim.tickGate();
        timer.scheduleWithFixedDelay(this::gatedTick, 0, period, TimeUnit.MILLISECONDS);
    }

    private List<Pod> pods() {
        return admin.pods().inNamespace(NS).withLabel("app.kubernetes.io/name", NAME).list().getItems();
    }

    /** A tick, skipped while nothing changed (see {@link SimCluster.TickGate}); starting and crashing pods act on time. */
    private void gatedTick() {
        if (gate.skip()) return;
        Object before = sim.changeKey();
        List<Object> memory = List.of(Map.copyOf(starting), Map.copyOf(crashed));
        failed = false;
        tick();
        boolean timed = !starting.isEmpty() || sim.fault(Fault.CONTROLLER_DOWN) || sim.fault(Fault.CLAIM_STUCK_TERMINATING);
        gate.ran(before, failed || !memory.equals(List.of(Map.copyOf(starting), Map.copyOf(crashed))), timed);
    }

    private void tick() {
        try {
            if (sim.fault(Fault.ADDON_DISABLED)) return; // no DaemonSet: AddonController removed the pods
            List<Pod> pods = pods();
            for (var e : template.entrySet()) {
                String node = e.getKey();
                Pod pod = pods.stream().filter(p -> node.equals(p.getSpec().getNodeName())).findFirst().orElse(null);
                if (pod == null) {
                    recreate(e.getValue());
                } else if (starting.containsKey(pod.getMetadata().getName())) {
                    if (Instant.now().isAfter(starting.get(pod.getMetadata().getName()).plus(sim.options().controllerDelay))) {
                        starting.remove(pod.getMetadata().getName());
                        setStatus(pod, running(pod));
                        sim.agentLog(node, "Starting harvester-pcidevices-controller agent on node " + node);
                    }
                } else if (crashing(node) && backOffOver(pod.getMetadata().getName())) {
                    crashed.put(pod.getMetadata().getName(), Instant.now());
                    crash(pod);
                }
            }
        } catch (RuntimeException e) {
            // the server is shutting down, or a pod changed under us: next tick
            failed = true;
        }
    }

    private boolean crashing(String node) {
        return sim.fault(Fault.CONTROLLER_DOWN) || (sim.fault(Fault.CLAIM_STUCK_TERMINATING) && Fault.NODE.equals(node));
    }

    private boolean backOffOver(String pod) {
        Instant last = crashed.get(pod);
        return last == null || Instant.now().isAfter(last.plus(sim.options().controllerDelay.multipliedBy(10)));
    }

    /** The DaemonSet's answer to a deleted pod; the restart unwedges the controller. */
    private void recreate(Pod old) {
        sim.faults().remove(Fault.CONTROLLER_DOWN);
        if (Fault.NODE.equals(old.getSpec().getNodeName())) sim.faults().remove(Fault.CLAIM_STUCK_TERMINATING);
        sim.clearAgentLog(old.getSpec().getNodeName()); // a new pod starts a new log
        String name = NAME + "-" + suffix();
        Pod fresh = new PodBuilder().withNewMetadata().withName(name).withNamespace(NS)
                .withLabels(old.getMetadata().getLabels()).endMetadata()
                .withSpec(old.getSpec())
                .build();
        admin.pods().inNamespace(NS).resource(fresh).create();
        starting.put(name, Instant.now());
        Pod created = admin.pods().inNamespace(NS).withName(name).get();
        setStatus(created, new PodStatusBuilder().withPhase("Pending")
                .withConditions(new PodConditionBuilder().withType("Ready").withStatus("False").withReason("ContainersNotReady").build())
                .withContainerStatuses(new ContainerStatusBuilder().withName("agent").withReady(false).withRestartCount(0)
                        .withImage(image(old)).withImageID("")
                        .withState(new ContainerStateBuilder().withNewWaiting().withReason("ContainerCreating").endWaiting().build()).build())
                .build());
    }

    /** One more crash: NotReady, CrashLoopBackOff, restartCount + 1, and what the agent logged before dying. */
    private void crash(Pod pod) {
        int restarts = 0;
        if (pod.getStatus() != null && pod.getStatus().getContainerStatuses() != null && !pod.getStatus().getContainerStatuses().isEmpty()) {
            Integer r = pod.getStatus().getContainerStatuses().get(0).getRestartCount();
            restarts = r == null ? 0 : r;
        }
        setStatus(pod, new PodStatusBuilder().withPhase("Running")
                .withConditions(new PodConditionBuilder().withType("Ready").withStatus("False").withReason("ContainersNotReady")
                        .withMessage("containers with unready status: [agent]").build())
                .withContainerStatuses(new ContainerStatusBuilder().withName("agent").withReady(false).withRestartCount(restarts + 1)
                        .withImage(image(pod)).withImageID("")
                        .withState(new ContainerStateBuilder().withNewWaiting().withReason("CrashLoopBackOff")
                                .withMessage("back-off 5m0s restarting failed container=agent pod=" + pod.getMetadata().getName()).endWaiting().build())
                        .build())
                .build());
        String node = pod.getSpec().getNodeName();
        if (restarts == 0) {
            sim.agentLog(node, "Sleeping for 15 seconds then applying webhook config");
            sim.agentLog(node, "error syncing 'pcidevices-webhook-ca': handler harvester-pcidevices-controller-webhook: context deadline exceeded, requeuing");
        }
    }

    private static PodStatus running(Pod pod) {
        return new PodStatusBuilder().withPhase("Running")
                .withConditions(new PodConditionBuilder().withType("Ready").withStatus("True").build())
                .withContainerStatuses(new ContainerStatusBuilder().withName("agent").withReady(true).withRestartCount(0)
                        .withImage(image(pod)).withImageID("")
                        .withState(new ContainerStateBuilder().withNewRunning().withStartedAt(Instant.now().toString()).endRunning().build()).build())
                .build();
    }

    private void setStatus(Pod pod, PodStatus status) {
        pod.setStatus(status);
        admin.pods().inNamespace(NS).resource(pod).updateStatus();
    }

    private static String image(Pod pod) {
        return pod.getSpec().getContainers().get(0).getImage();
    }

    /** Like the API server's generateName: five lower-case alphanumerics. */
    private static String suffix() {
        String chars = "bcdfghjklmnpqrstvwxz2456789";
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 5; i++) sb.append(chars.charAt(ThreadLocalRandom.current().nextInt(chars.length())));
        return sb.toString();
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
