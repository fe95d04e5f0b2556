//SOURCES ../model/KubeVirt.java ../cli/Progress.java ../cli/Timeouts.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.KubernetesClientTimeoutException;

/**
 * Restarting a VM so a changed hostDevices list takes effect, and waiting for the new instance.
 * Uses KubeVirt's restart/start subresources (what virtctl and the Harvester UI use): deleting the
 * VMI, as the runbook did, leaves a RerunOnFailure (Harvester's default) or Manual VM stopped.
 */
public final class VmRestart {
    /** How attach and detach make the change take effect, and how long they wait for it. */
    public static class Options {
        @picocli.CommandLine.Option(names = "--no-restart", description = "Only patch; the running instance changes at its next restart")
        public boolean noRestart;

        @picocli.CommandLine.Option(names = "--start", description = "Start the VM if it is stopped (default: leave a stopped VM stopped)")
        public boolean start;

        @picocli.CommandLine.Option(names = "--dry-run", description = "Print the patch and the hostDevices before/after; change nothing")
        public boolean dryRun;

        @picocli.CommandLine.Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300",
                description = "How long to wait for the new instance to run (default: ${DEFAULT-VALUE})")
        public int timeoutSeconds;

        public Duration timeout() {
            return Timeouts.positive(timeoutSeconds);
        }
    }

    private VmRestart() {}

    static final String WITHOUT_CHANGE = "instance Running without the expected host device change";
    public static final String NOT_PERMITTED = "is not permitted in permittedHostDevices configuration";

    /**
     * PUT /apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/{action} (restart,
     * start, stop) through fabric8's raw call: a refusal is an ordinary KubernetesClientException
     * carrying virt-api's Status. fabric8 answers a 404 with null, so null is checked against the VM.
     */
    public static void subresource(KubernetesClient c, String ns, String name, String action) {
        String path = "/apis/subresources.kubevirt.io/v1/namespaces/" + ns + "/virtualmachines/" + name + "/" + action;
        if (c.raw(path, "PUT", "{}") == null && KubeVirt.vms(c).inNamespace(ns).withName(name).get() == null) {
            String msg = "virtualmachine.kubevirt.io \"" + name + "\" not found";
            throw new KubernetesClientException(new StatusBuilder().withCode(404).withReason("NotFound").withMessage(msg).build());
        }
    }

    /** The API server's own words for a failed call (its Status message), else the exception's. */
    public static String message(KubernetesClientException e) {
        return e.getStatus() != null && e.getStatus().getMessage() != null ? e.getStatus().getMessage().trim() : String.valueOf(e.getMessage());
    }

    /** The VM's current instance, or null. */
    public static GenericKubernetesResource vmi(KubernetesClient c, String ns, String name) {
        return KubeVirt.vmis(c).inNamespace(ns).withName(name).get();
    }

    public static String uid(GenericKubernetesResource r) {
        return r == null ? null : r.getMetadata().getUid();
    }

    public static String phase(GenericKubernetesResource vmi) {
        Object p = vmi == null ? null : vmi.get("status", "phase");
        return p == null || p.toString().isEmpty() ? "Pending" : p.toString();
    }

    public static String node(GenericKubernetesResource vmi) {
        Object n = vmi == null ? null : vmi.get("status", "nodeName");
        return n == null ? null : n.toString();
    }

    /** True when the instance's spec has a hostDevices (or gpus) entry with this deviceName. */
    public static boolean hasDevice(GenericKubernetesResource vmi, String deviceName) {
        return KubeVirt.entries(vmi).stream().anyMatch(h -> deviceName.equals(h.deviceName()));
    }

    static boolean isFalse(Map<String, Object> cond) {
        return cond != null && "False".equals(String.valueOf(cond.get("status")));
    }

    /** How waiting ended: the Running instance, or why it cannot get there. */
    public record Outcome(GenericKubernetesResource vmi, boolean running, boolean timedOut, String problem) {}

    /**
     * Waits until an instance other than `oldUid` is Running and `wanted` holds for its spec.
     * Stops at once (without waiting for the timeout) when the instance can never start on its own:
     * Pending with KubeVirt's "not permitted in permittedHostDevices" error, or Failed. fabric8's
     * waitUntilCondition (an informer: it relists and reconnects) calls the judge on every change;
     * progress is one line per state, redrawn in place on a terminal.
     */
    public static Outcome await(KubernetesClient c, String ns, String name, String oldUid, Predicate<GenericKubernetesResource> wanted,
                                Duration timeout, PrintWriter progress) {
        return await(c, ns, name, oldUid, wanted, timeout, timeout, progress);
    }

    /** await for what is left of a longer wait: a timeout names the whole wait (`total`). */
    static Outcome await(KubernetesClient c, String ns, String name, String oldUid, Predicate<GenericKubernetesResource> wanted,
                         Duration timeout, Duration total, PrintWriter progress) {
        Progress bar = new Progress(progress);
        AtomicReference<Outcome> end = new AtomicReference<>();
        AtomicReference<String> last = new AtomicReference<>(name + ": no instance yet");
        AtomicReference<GenericKubernetesResource> seen = new AtomicReference<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            // Slices of at most 2s: the informer reconnects silently, so a dead server is noticed by the direct read between slices.
            long slice = Math.max(1, Math.min(deadline - System.nanoTime(), REREAD.toNanos()));
            try {
                KubeVirt.vmis(c).inNamespace(ns).withName(name).waitUntilCondition(vmi -> {
                    seen.set(vmi);
                    Outcome o = judge(vmi, oldUid, wanted);
                    if (o != null) {
                        end.set(o);
                        return true;
                    }
                    String line = describe(name, vmi, oldUid);
                    last.set(line);
                    bar.show(line);
                    return false;
                }, slice, TimeUnit.NANOSECONDS);
                break;
            } catch (KubernetesClientTimeoutException e) {
                if (System.nanoTime() >= deadline) {
                    bar.done();
                    return new Outcome(seen.get(), false, true, "timed out after " + total.toSeconds() + "s; last state: "
                            + last.get().substring(name.length() + 2));
                }
                try {
                    vmi(c, ns, name);
                } catch (RuntimeException serverGone) {
                    bar.done();
                    throw serverGone;
                }
            }
        }
        bar.done();
        return end.get();
    }

    /** The end of waiting for this instance state, or null while it may still get there. */
    static Outcome judge(GenericKubernetesResource vmi, String oldUid, Predicate<GenericKubernetesResource> wanted) {
        if (vmi == null || (oldUid != null && oldUid.equals(uid(vmi)))) return null;
        String phase = phase(vmi);
        Map<String, Object> sync = KubeVirt.condition(vmi, "Synchronized");
        if ("Pending".equals(phase) && isFalse(sync) && String.valueOf(sync.get("message")).contains(NOT_PERMITTED)) {
            return new Outcome(vmi, false, false, "instance Pending: " + sync.get("message"));
        }
        if ("Failed".equals(phase)) {
            String why = isFalse(sync) && sync.get("message") != null ? ": " + sync.get("message") : "";
            return new Outcome(vmi, false, false, "instance Failed" + why);
        }
        if (!"Running".equals(phase)) return null;
        return wanted.test(vmi) ? new Outcome(vmi, true, false, null)
                : new Outcome(vmi, false, false, WITHOUT_CHANGE + " (its spec differs from the VM's)");
    }

    /** "docker-host: Scheduling on altra — Unschedulable: 0/2 nodes are available: ..." */
    static String describe(String name, GenericKubernetesResource vmi, String oldUid) {
        if (vmi == null) return name + ": no instance yet";
        if (oldUid != null && oldUid.equals(uid(vmi))) return name + ": stopping the old instance (" + phase(vmi) + ")";
        Map<String, Object> sync = KubeVirt.condition(vmi, "Synchronized");
        Map<String, Object> sched = KubeVirt.condition(vmi, "PodScheduled");
        String line = name + ": " + phase(vmi) + (node(vmi) != null ? " on " + node(vmi) : "");
        if (isFalse(sched) && sched.get("message") != null) line += " — " + sched.get("reason") + ": " + sched.get("message");
        else if (isFalse(sync) && sync.get("message") != null) line += " — " + sync.get("message");
        return line;
    }

    /** What was done to make the edit take effect. */
    public enum Action { NONE_NEEDED, RESTART_REQUIRED, STOPPED, RESTARTED, STARTED }

    public record Result(Action action, Outcome outcome) {}

    /** At most this long between two direct reads while waiting. */
    static final Duration REREAD = Duration.ofSeconds(2);

    /** How long to wait before asking again when virt-api refuses a restart/start because one is in flight. */
    static final long IN_FLIGHT_PAUSE_MS = 200;

    /**
     * Makes a VM's edited spec take effect, judging from the state read after the edit (never from a
     * snapshot taken before it: a concurrent run may restart the VM in between). Nothing when the
     * running instance already has it; the restart subresource for an instance without it (unless
     * noRestart); the start subresource for a truly stopped VM only when `start` is set. An instance
     * on its way (someone else's restart or start) is waited for and judged like our own; a restart or
     * start refused with 409 because one is in flight is waited out and the state read again. Ends
     * Running only when the running instance has the change (`wanted`).
     */
    public static Result takeEffect(KubernetesClient c, String ns, String name, boolean noRestart, boolean start,
                                    Predicate<GenericKubernetesResource> wanted, Duration timeout, PrintWriter progress) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Action did = Action.NONE_NEEDED;
        while (true) {
            Duration left = Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
            GenericKubernetesResource vmi = vmi(c, ns, name);
            boolean leaving = vmi != null && vmi.getMetadata().getDeletionTimestamp() != null;
            String phase = phase(vmi);
            Outcome o;
            if (vmi != null && !leaving && "Running".equals(phase) && wanted.test(vmi)) {
                return new Result(did, new Outcome(vmi, true, false, null));
            } else if (vmi == null && stopped(KubeVirt.vm(c, ns, name))) {
                if (!start) return new Result(Action.STOPPED, null);
                progress.println("starting virtualmachine.kubevirt.io/" + name);
                progress.flush();
                if (!ask(c, ns, name, "start", progress)) continue;
                did = Action.STARTED;
                o = await(c, ns, name, null, wanted, left, timeout, progress);
            } else if (vmi == null || leaving || !("Running".equals(phase) || isFinal(phase))) {
                // An instance is on its way (a restart or start in flight, ours or another's): judge it when it settles.
                o = await(c, ns, name, leaving ? uid(vmi) : null, wanted, left, timeout, progress);
            } else if (isFinal(phase) && wanted.test(vmi) && judge(vmi, null, wanted) != null) {
                return new Result(did, judge(vmi, null, wanted)); // it has the change and ended: restarting would not help
            } else {
                if (noRestart) return new Result(Action.RESTART_REQUIRED, null);
                progress.println("restarting virtualmachine.kubevirt.io/" + name + " (instance " + uid(vmi) + ")");
                progress.flush();
                if (!ask(c, ns, name, "restart", progress)) continue;
                did = Action.RESTARTED;
                o = await(c, ns, name, uid(vmi), wanted, left, timeout, progress);
            }
            if (o.running() || o.timedOut() || !o.problem().startsWith(WITHOUT_CHANGE)) return new Result(did, o);
            // Running without the change: it was created before our edit (a concurrent restart); go round again.
            if (System.nanoTime() >= deadline) return new Result(did, new Outcome(o.vmi(), false, true, "timed out after "
                    + timeout.toSeconds() + "s; last state: " + o.problem()));
        }
    }

    /**
     * The restart/start subresource; false (after a short pause) when virt-api refuses it with 409
     * because a stop/start is in flight or the instance is just gone — the caller reads the state again.
     */
    static boolean ask(KubernetesClient c, String ns, String name, String action, PrintWriter progress) {
        try {
            subresource(c, ns, name, action);
            return true;
        } catch (KubernetesClientException e) {
            if (e.getCode() != 409 || !inFlight(message(e))) throw e;
            progress.println(action + " of " + name + " refused (" + message(e) + ") — a stop/start is in flight; waiting it out");
            progress.flush();
            sleep(IN_FLIGHT_PAUSE_MS);
            return false;
        }
    }

    /** virt-api's 409s that mean "a stop/start is underway", not "this VM can never do that". */
    static boolean inFlight(String message) {
        return message.contains("VM is not running") || message.contains("VM is already running") || message.contains("already underway");
    }

    /** No instance and none coming: no stop/start request pending and a run strategy that does not start one by itself. */
    static boolean stopped(GenericKubernetesResource vm) {
        Object pending = vm.get("status", "stateChangeRequests");
        if (pending instanceof List<?> l && !l.isEmpty()) return false;
        return !"Always".equals(KubeVirt.runStrategy(vm));
    }

    static boolean isFinal(String phase) {
        return "Succeeded".equals(phase) || "Failed".equals(phase);
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Cli.UserError(Cli.Exit.INTERNAL, "interrupted");
        }
    }
}
