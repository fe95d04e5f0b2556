//SOURCES ../cli/Cli.java ../cli/Journal.java ../cluster/Kube.java ../model/Harvester.java ../model/KubeVirt.java ../cli/Render.java ../model/VmHostDevices.java VmRestart.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * The one path attach and detach share (and diagnose --fix through attach): change a VM's host
 * devices, make the change take effect (restart, start, or leave it for the next start), and say
 * what changed — with the undo command when something fails after the VM was changed.
 */
public final class VmDeviceChange {
    private VmDeviceChange() {}

    /** Which way the change goes; the words of the report and the undo differ. */
    public enum Direction {
        ATTACH, DETACH;

        /** The command that undoes this one. */
        String undo() {
            return this == ATTACH ? "detach" : "attach";
        }

        /** The instance runs the change: it has the device on the device's node (attach) or no longer has it (detach). */
        boolean inEffect(GenericKubernetesResource vmi, VmHostDevices.Target t) {
            if (this == DETACH) return !VmRestart.hasDevice(vmi, t.deviceName());
            return VmRestart.hasDevice(vmi, t.deviceName()) && (VmRestart.node(vmi) == null || t.node().equals(VmRestart.node(vmi)));
        }

        /** The VM's spec still carries what this run changed (so undoing it is still needed). */
        boolean inSpec(GenericKubernetesResource vm, VmHostDevices.Target t) {
            return vm != null && KubeVirt.entries(vm).stream().anyMatch(h -> t.deviceName().equals(h.deviceName())) == (this == ATTACH);
        }
    }

    /** A change of one VM: the device, which way, the edit (as a function of the fresh VM), and how to make it take effect. */
    public record Request(String namespace, String vm, VmHostDevices.Target target, Direction direction,
                          Function<GenericKubernetesResource, VmHostDevices.Edit> planner,
                          boolean noRestart, boolean start, Duration timeout) {
        /** "detach docker-host --device altra-000c01000" (with -n when not default). */
        String undo() {
            return direction.undo() + " " + vm + (namespace.equals("default") ? "" : " -n " + namespace) + " " + target.flags();
        }
    }

    /** The edit written, what was done to make it take effect, and the outcome sentence. */
    public record Result(VmHostDevices.Edit edit, VmRestart.Result restart, String message) {}

    /**
     * Writes the edit, makes it take effect and waits; failures after the write name the change and
     * the undo. The first attempt edits `read` (the VM as the caller read it for its checks; null:
     * read it now): the write is guarded by its resourceVersion, so a VM changed since gives 409 and
     * is read again; an unchanged one saves a request.
     */
    public static Result run(KubernetesClient c, Request r, GenericKubernetesResource read, PrintWriter progress) {
        VmHostDevices.Target t = r.target();

        // Change: read-modify-write of the VM (retried on 409 and on the webhook's cache race).
        VmHostDevices.Edit edit = write(c, r.namespace(), r.vm(), read, r.planner(), t.deviceName(), progress);
        String ref = "virtualmachine.kubevirt.io/" + r.vm();
        if (edit.changed()) Journal.changed(ref + " spec (" + edit.summary() + ")", r.undo());
        if (!edit.changes().isEmpty()) progress.println(ref + " patched (" + String.join(", ", edit.changes()) + ")");
        else if (edit.pinnedTo() == null) {
            progress.println(ref + " unchanged (" + (r.direction() == Direction.ATTACH ? t.label() + " already in hostDevices"
                    : "no hostDevices entry " + t.label()) + ")");
        }
        if (edit.pinnedTo() != null) {
            progress.println(ref + " pinned to node " + edit.pinnedTo() + " (nodeSelector " + VmHostDevices.HOSTNAME_LABEL
                    + ": the same resource may exist on other nodes)");
        }
        if (edit.unpinnedFrom() != null) {
            progress.println(ref + " unpinned from node " + edit.unpinnedFrom() + " (nodeSelector " + VmHostDevices.HOSTNAME_LABEL
                    + " removed: attach had added it for the devices now gone; annotation " + VmHostDevices.PINNED_BY_ATTACH + ")");
        }
        progress.flush();

        // Take effect and wait, judged from the state after the write (a concurrent run may have restarted the VM meanwhile).
        Predicate<GenericKubernetesResource> wanted = vmi -> r.direction().inEffect(vmi, t);
        VmRestart.Result result;
        try {
            result = VmRestart.takeEffect(c, r.namespace(), r.vm(), r.noRestart(), r.start(), wanted, r.timeout(), progress);
        } catch (KubernetesClientException e) {
            if (e.getCode() <= 0) {
                // No answer from the API server (unreachable, timed out; fabric8 says 0 or -1): failed halfway, and still what changed.
                Throwable why = Kube.translate(e, String.valueOf(c.getMasterUrl()));
                throw failed(c, r, edit, Cli.Exit.PARTIAL, "lost the API server after the change (" + why.getMessage() + ")");
            }
            throw failed(c, r, edit, Cli.Exit.REJECTED, "restart of " + r.vm() + " refused (" + e.getCode() + "): " + VmRestart.message(e));
        } catch (Cli.UserError e) {
            throw failed(c, r, edit, e.exit == Cli.Exit.UNREACHABLE ? Cli.Exit.PARTIAL : e.exit, e.getMessage());
        }
        VmRestart.Outcome o = result.outcome();
        if (o != null && !o.running()) {
            String problem = r.vm() + " " + o.problem();
            if (r.direction() == Direction.ATTACH && o.problem().contains(VmRestart.NOT_PERMITTED)) {
                problem += " — the KubeVirt CR " + Harvester.KUBEVIRT_NAMESPACE + "/" + Harvester.KUBEVIRT_NAME + " no longer permits "
                        + t.deviceName() + " (diagnose --device " + t.label() + ")";
            }
            throw failed(c, r, edit, o.timedOut() ? Cli.Exit.TIMEOUT : Cli.Exit.PARTIAL, problem);
        }
        return new Result(edit, result, message(r, result));
    }

    private static String message(Request r, VmRestart.Result result) {
        String vm = r.vm();
        String label = r.target().label();
        boolean attach = r.direction() == Direction.ATTACH;
        return switch (result.action()) {
            case STOPPED -> vm + " is stopped: " + (attach ? label + " is used from its next start" : "it starts without " + label)
                    + " (start it now with --start)";
            case RESTART_REQUIRED -> vm + " RestartRequired: the running instance " + (attach ? "does not have " : "keeps ") + label
                    + " until it restarts (virtctl restart " + vm + ", or re-run without --no-restart)";
            default -> vm + " Running on " + VmRestart.node(result.outcome().vmi()) + (attach ? " with " : " without ") + r.target().describe();
        };
    }

    /**
     * A failure after the VM may have been patched: what this run changed and, when the VM's spec
     * still carries it, how to undo it (a concurrent run may already have undone it: then no undo).
     */
    static Cli.UserError failed(KubernetesClient c, Request r, VmHostDevices.Edit edit, Cli.Exit exit, String problem) {
        if (!edit.changed()) return new Cli.UserError(exit == Cli.Exit.PARTIAL ? Cli.Exit.PRECONDITION : exit, problem + " (the VM spec was not changed)");
        String changed = " — changed: virtualmachine.kubevirt.io spec (" + edit.summary() + ")";
        Boolean stillThere;
        try {
            stillThere = r.direction().inSpec(KubeVirt.vms(c).inNamespace(r.namespace()).withName(r.vm()).get(), r.target());
        } catch (RuntimeException unreadable) {
            stillThere = null; // the server cannot say: give the undo, it is harmless when already undone
        }
        if (Boolean.FALSE.equals(stillThere)) {
            return new Cli.UserError(exit, problem + changed + "; since undone by someone else (the VM spec no longer has it): nothing to undo");
        }
        return new Cli.UserError(exit, problem + changed + "; undo: " + r.undo());
    }

    // ---- read-modify-write ------------------------------------------------------------------------

    /** How many times a 409 Conflict (someone else changed the VM) is retried. */
    public static final int CONFLICT_RETRIES = 5;
    /** Webhook race: bounded exponential backoff, as the runbook tells humans to "wait a few seconds and retry". */
    public static final int WEBHOOK_RETRIES = 6;
    public static final long WEBHOOK_FIRST_BACKOFF_MS = 500;

    /**
     * Reads the VM, computes the edit on the fresh copy, and PUTs it with that copy's
     * resourceVersion: a concurrent change gives 409 and the edit is recomputed. Kept by hand rather
     * than fabric8's edit()/patch(): those either overwrite a concurrent change or give up on the
     * 409, and a merge patch would replace the whole hostDevices list. An admission denial "not
     * found in pcidevice and usbdevice cache" for our own (existing) resource name is the webhook's
     * cache lagging behind a pod restart: retried with backoff, each retry reported.
     * Returns the applied edit (unchanged edits are not written). `read`: the VM as the caller read
     * it, edited in the first attempt instead of reading it again (null: read it).
     */
    public static VmHostDevices.Edit write(KubernetesClient c, String ns, String name, GenericKubernetesResource read,
                                           Function<GenericKubernetesResource, VmHostDevices.Edit> planner,
                                           String resourceName, PrintWriter progress) {
        int conflicts = 0;
        int denials = 0;
        GenericKubernetesResource known = read;
        while (true) {
            boolean fresh = known == null;
            GenericKubernetesResource vm = fresh ? KubeVirt.vms(c).inNamespace(ns).withName(name).get() : known;
            known = null; // every later attempt (after a 409 or a denial) edits a fresh read
            if (vm == null) {
                throw new Cli.UserError(Cli.Exit.NOT_FOUND, "virtualmachine \"" + name + "\" disappeared while we edited it (namespace " + ns + ")");
            }
            VmHostDevices.Edit edit = planner.apply(vm);
            if (!edit.changed() && !fresh) continue; // "nothing to write" is decided on a fresh read, never on the caller's older one
            if (!edit.changed()) return edit;
            try {
                KubeVirt.vms(c).inNamespace(ns).resource(edit.vm()).update();
                return edit;
            } catch (KubernetesClientException e) {
                if (e.getCode() == 409 && conflicts < CONFLICT_RETRIES) {
                    conflicts++;
                    progress.println("virtualmachine.kubevirt.io/" + name + " changed while we edited it (409 Conflict) — re-reading and retrying ("
                            + conflicts + "/" + CONFLICT_RETRIES + ")");
                    progress.flush();
                    continue;
                }
                if (isCacheRace(e, resourceName) && denials < WEBHOOK_RETRIES) {
                    long wait = WEBHOOK_FIRST_BACKOFF_MS << denials;
                    denials++;
                    progress.println("admission webhook: resource name " + resourceName + " not yet in the pcidevices cache — retrying in "
                            + String.format("%.1f", wait / 1000.0) + "s (" + denials + "/" + WEBHOOK_RETRIES + ")");
                    progress.flush();
                    VmRestart.sleep(wait);
                    continue;
                }
                if (isCacheRace(e, resourceName)) {
                    throw new Cli.UserError(Cli.Exit.REJECTED, "the pcidevices admission webhook still denies " + resourceName + " after "
                            + WEBHOOK_RETRIES + " retries (" + VmRestart.message(e) + ") — restart the harvester-pcidevices-controller pod "
                            + "(kubectl -n harvester-system delete pod -l app.kubernetes.io/name=harvester-pcidevices-controller) and re-run", e);
                }
                throw e;
            }
        }
    }

    /** The webhook's "hostdevice <n>: resource name <r> not found in pcidevice and usbdevice cache" for our resource. */
    public static boolean isCacheRace(KubernetesClientException e, String resourceName) {
        String m = VmRestart.message(e);
        return e.getCode() >= 500 && m.contains("admission webhook") && m.contains("resource name " + resourceName + " not found in pcidevice and usbdevice cache");
    }

    // ---- report -----------------------------------------------------------------------------------

    /** The device of the report. */
    @JsonInclude(JsonInclude.Include.ALWAYS) public record DeviceRef(String name, String deviceName, String node) {}

    /** The instance the change ended with. */
    @JsonInclude(JsonInclude.Include.ALWAYS) public record VmiRef(String uid, String phase, String node) {}

    /** The JSON/YAML report of attach and detach (--dry-run and -o json); field names are part of the output. */
    /* ALWAYS: a null field is printed as null, in YAML too (as the map this replaced did). */
    @JsonInclude(JsonInclude.Include.ALWAYS) public record Report(String vm, String namespace, DeviceRef device, boolean changed, List<String> changes, String pinnedTo,
                         List<Map<String, Object>> hostDevicesBefore, List<Map<String, Object>> hostDevicesAfter,
                         Map<String, Object> patch, boolean dryRun,
                         @JsonInclude(JsonInclude.Include.NON_NULL) String action,
                         @JsonInclude(JsonInclude.Include.NON_NULL) VmiRef vmi,
                         @JsonInclude(JsonInclude.Include.NON_NULL) String message) {
        static Report of(Request r, VmHostDevices.Edit edit, boolean dryRun) {
            VmHostDevices.Target t = r.target();
            return new Report(r.vm(), r.namespace(), new DeviceRef(t.name(), t.deviceName(), t.node()), edit.changed(), edit.changes(),
                    edit.pinnedTo(), edit.before(), edit.after(), edit.changed() ? edit.mergePatch() : null, dryRun, null, null, null);
        }

        Report finished(VmRestart.Result result, String message) {
            VmRestart.Outcome o = result.outcome();
            GenericKubernetesResource v = o == null ? null : o.vmi();
            VmiRef ref = v == null ? null : new VmiRef(VmRestart.uid(v), VmRestart.phase(v), String.valueOf(VmRestart.node(v)));
            return new Report(vm, namespace, device, changed, changes, pinnedTo, hostDevicesBefore, hostDevicesAfter, patch, dryRun,
                    result.action().name(), ref, message);
        }
    }

    /** --dry-run: the hostDevices before and after and the equivalent merge patch, or the report. */
    public static void printDryRun(PrintWriter stdout, Cli.OutputOptions out, Request r, VmHostDevices.Edit edit) {
        if (out.structured()) {
            Render.structured(stdout, out.output, Report.of(r, edit, true));
            stdout.flush();
            return;
        }
        stdout.println("hostDevices before: " + String.join(", ", VmHostDevices.describe(edit.before())));
        stdout.println("hostDevices after:  " + String.join(", ", VmHostDevices.describe(edit.after())));
        if (edit.changed()) {
            stdout.println("patch (merge; it carries the whole list):");
            stdout.println(Serialization.asJson(edit.mergePatch()));
            stdout.println("virtualmachine.kubevirt.io/" + r.vm() + " patched (" + edit.summary() + ") (dry run)");
        } else {
            stdout.println("virtualmachine.kubevirt.io/" + r.vm() + " unchanged (dry run)");
        }
        stdout.flush();
    }

    /** The last line of attach/detach: the outcome sentence, or the JSON/YAML report with the instance it ended with. */
    public static void print(PrintWriter stdout, Cli.OutputOptions out, Request r, Result result) {
        if (out.structured()) Render.structured(stdout, out.output, Report.of(r, result.edit(), false).finished(result.restart(), result.message()));
        else stdout.println(result.message());
        stdout.flush();
    }
}
