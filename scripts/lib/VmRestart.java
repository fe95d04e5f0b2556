//SOURCES KubeVirt.java

import java.io.PrintWriter;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Status;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.http.HttpClient;
import io.fabric8.kubernetes.client.http.HttpRequest;
import io.fabric8.kubernetes.client.http.HttpResponse;
import io.fabric8.kubernetes.client.utils.Serialization;

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
            if (timeoutSeconds <= 0) throw new Cli.UserError(Cli.Exit.USAGE, "--timeout must be positive, e.g. --timeout 300");
            return Duration.ofSeconds(timeoutSeconds);
        }
    }

    private VmRestart() {}

    public static final String NOT_PERMITTED = "is not permitted in permittedHostDevices configuration";

    /** A failed subresource call: HTTP code and the API server's message. */
    public static final class SubresourceError extends RuntimeException {
        public final int code;

        SubresourceError(int code, String message) {
            super(message);
            this.code = code;
        }
    }

    /** PUT /apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/{action} (restart, start, stop). */
    public static void subresource(KubernetesClient c, String ns, String name, String action) {
        String base = c.getConfiguration().getMasterUrl();
        if (!base.endsWith("/")) base += "/";
        URI uri = URI.create(base + "apis/subresources.kubevirt.io/v1/namespaces/" + ns + "/virtualmachines/" + name + "/" + action);
        HttpClient http = c.getHttpClient();
        HttpRequest req = http.newHttpRequestBuilder().uri(uri).put("application/json", "{}").build();
        HttpResponse<String> resp;
        try {
            resp = http.sendAsync(req, String.class).get(Math.max(1, c.getConfiguration().getRequestTimeout()), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new SubresourceError(0, "cannot reach the API server for " + action + " (" + e.getClass().getSimpleName() + ")");
        }
        if (resp.code() / 100 == 2) return;
        String msg = resp.body();
        try {
            Status s = Serialization.unmarshal(resp.body(), Status.class);
            if (s != null && s.getMessage() != null) msg = s.getMessage();
        } catch (RuntimeException ignored) {
            // not a Status body: keep the raw text
        }
        throw new SubresourceError(resp.code(), msg == null || msg.isBlank() ? "HTTP " + resp.code() : msg.trim());
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
        for (String field : List.of("hostDevices", "gpus")) {
            Object l = vmi.get("spec", "domain", "devices", field);
            if (l instanceof List<?> items) {
                for (Object o : items) {
                    if (o instanceof Map<?, ?> m && deviceName.equals(String.valueOf(m.get("deviceName")))) return true;
                }
            }
        }
        return false;
    }

    /** Condition {type} of the instance, or null. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> condition(GenericKubernetesResource vmi, String type) {
        Object l = vmi.get("status", "conditions");
        if (l instanceof List<?> items) {
            for (Object o : items) {
                if (o instanceof Map<?, ?> m && type.equals(m.get("type"))) return (Map<String, Object>) m;
            }
        }
        return null;
    }

    static boolean isFalse(Map<String, Object> cond) {
        return cond != null && "False".equals(String.valueOf(cond.get("status")));
    }

    /** How waiting ended: the Running instance, or why it cannot get there. */
    public record Outcome(GenericKubernetesResource vmi, boolean running, boolean timedOut, String problem) {}

    /**
     * Waits until an instance other than `oldUid` is Running and `wanted` holds for its spec.
     * Stops at once (without waiting for the timeout) when the instance can never start on its own:
     * Pending with KubeVirt's "not permitted in permittedHostDevices" error, or Failed. Progress is one
     * line per change (redrawn in place on a terminal).
     */
    public static Outcome await(KubernetesClient c, String ns, String name, String oldUid, Predicate<GenericKubernetesResource> wanted,
                                Duration timeout, PrintWriter progress) {
        Instant deadline = Instant.now().plus(timeout);
        boolean tty = System.console() != null;
        String last = null;
        GenericKubernetesResource vmi = null;
        // A watch on the VMI wakes the loop on every change; each wake re-reads the current state.
        java.util.concurrent.BlockingQueue<Object> changed = new java.util.concurrent.LinkedBlockingQueue<>();
        try (io.fabric8.kubernetes.client.Watch watch = KubeVirt.vmis(c).inNamespace(ns).withName(name)
                .watch(new io.fabric8.kubernetes.client.Watcher<GenericKubernetesResource>() {
                    @Override
                    public void eventReceived(Action action, GenericKubernetesResource resource) {
                        changed.offer(action);
                    }

                    @Override
                    public void onClose(io.fabric8.kubernetes.client.WatcherException cause) {
                        changed.offer("closed");
                    }
                })) {
            while (true) {
                vmi = vmi(c, ns, name);
                String line;
                if (vmi == null) {
                    line = name + ": no instance yet";
                } else if (oldUid != null && oldUid.equals(uid(vmi))) {
                    line = name + ": stopping the old instance (" + phase(vmi) + ")";
                } else {
                    String phase = phase(vmi);
                    Map<String, Object> sync = condition(vmi, "Synchronized");
                    Map<String, Object> sched = condition(vmi, "PodScheduled");
                    if ("Pending".equals(phase) && isFalse(sync) && String.valueOf(sync.get("message")).contains(NOT_PERMITTED)) {
                        finish(progress, tty, last);
                        return new Outcome(vmi, false, false, "instance Pending: " + sync.get("message"));
                    }
                    if ("Failed".equals(phase)) {
                        finish(progress, tty, last);
                        String why = isFalse(sync) && sync.get("message") != null ? ": " + sync.get("message") : "";
                        return new Outcome(vmi, false, false, "instance Failed" + why);
                    }
                    if ("Running".equals(phase)) {
                        if (wanted.test(vmi)) {
                            finish(progress, tty, last);
                            return new Outcome(vmi, true, false, null);
                        }
                        finish(progress, tty, last);
                        return new Outcome(vmi, false, false, "instance Running without the expected host device change (its spec differs from the VM's)");
                    }
                    line = name + ": " + phase + (node(vmi) != null ? " on " + node(vmi) : "");
                    if (isFalse(sched) && sched.get("message") != null) line += " — " + sched.get("reason") + ": " + sched.get("message");
                    else if (isFalse(sync) && sync.get("message") != null) line += " — " + sync.get("message");
                }
                if (!line.equals(last)) {
                    if (tty) progress.print("\r\033[K" + line);
                    else progress.println(line);
                    progress.flush();
                    last = line;
                }
                if (Instant.now().isAfter(deadline)) {
                    finish(progress, tty, last);
                    return new Outcome(vmi, false, true, "timed out after " + timeout.toSeconds() + "s; last state: " + line.substring(name.length() + 2));
                }
                // Wake on the next change, or after a second to re-check the deadline (and survive a dropped watch).
                long waitMs = Math.max(1, Math.min(1000, Duration.between(Instant.now(), deadline).toMillis()));
                try {
                    changed.poll(waitMs, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new Cli.UserError(Cli.Exit.INTERNAL, "interrupted");
                }
            }
        }
    }

    private static void finish(PrintWriter progress, boolean tty, String last) {
        if (tty && last != null) {
            progress.println();
            progress.flush();
        }
    }

    /** What was done to make the edit take effect. */
    public enum Action { NONE_NEEDED, RESTART_REQUIRED, STOPPED, RESTARTED, STARTED }

    public record Result(Action action, Outcome outcome) {}

    /**
     * Makes a VM's edited spec take effect: nothing when the running instance already matches,
     * the restart subresource for a running VM (unless noRestart), the start subresource for a
     * stopped VM only when `start` is set; then waits for the new instance.
     */
    public static Result takeEffect(KubernetesClient c, String ns, String name, GenericKubernetesResource vmiBefore,
                                    boolean alreadyInEffect, boolean noRestart, boolean start,
                                    Predicate<GenericKubernetesResource> wanted, Duration timeout, PrintWriter progress) {
        if (alreadyInEffect) return new Result(Action.NONE_NEEDED, new Outcome(vmiBefore, true, false, null));
        if (vmiBefore == null) {
            if (!start) return new Result(Action.STOPPED, null);
            progress.println("starting virtualmachine.kubevirt.io/" + name);
            progress.flush();
            subresource(c, ns, name, "start");
            return new Result(Action.STARTED, await(c, ns, name, null, wanted, timeout, progress));
        }
        if (noRestart) return new Result(Action.RESTART_REQUIRED, null);
        progress.println("restarting virtualmachine.kubevirt.io/" + name + " (instance " + uid(vmiBefore) + ")");
        progress.flush();
        subresource(c, ns, name, "restart");
        return new Result(Action.RESTARTED, await(c, ns, name, uid(vmiBefore), wanted, timeout, progress));
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
