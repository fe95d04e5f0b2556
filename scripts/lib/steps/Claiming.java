//SOURCES ../cli/Cli.java ../cli/Journal.java ../cluster/Kube.java ../model/Harvester.java ../model/KubeVirt.java ../model/Passthrough.java ../model/Claims.java ../cli/Bundled.java
//SOURCES ../checks/ControllerHealth.java ../checks/ClaimRemovalCheck.java ../checks/BaremetalCheck.java ../checks/GuideClaimCheck.java Changes.java Waiting.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;

/**
 * The claim step (the runbook's "Apply the claims"), called by claim, attach --claim and
 * diagnose --fix on their one client: decide each claim's action before any change, create or
 * replace them, wait until passthrough is on; and the unclaim flow. Lines and progress go to the
 * writers given; failures are Cli.UserErrors (a failure halfway names what changed and the undo).
 */
public final class Claiming {
    public static final String TYPE = "pcideviceclaim." + Harvester.GROUP;

    /** What happens (or happened) to one claim; printed as the lower-case name, as kubectl apply does. */
    public enum Action {
        CREATED, UNCHANGED, CONFIGURED, CONFLICT, DELETED;

        public String word() {
            return name().toLowerCase();
        }
    }

    /** One claim to make or remove: the device, the claim we want, and why it is included. */
    public record Target(Harvester.PciDevice device, GenericKubernetesResource desired, String why) {
        public String name() {
            return device.name();
        }
    }

    /** One failing check of a claimed device, as reported (JSON field names are part of the output). */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.ALWAYS)
    public record Missing(String check, String subject, String evidence, String fix) {
        static Missing of(Passthrough.Check c) {
            return new Missing(c.id(), c.subject(), c.evidence(), c.fix());
        }
    }

    /** What happened to one claim: its action, the live claim before, and readiness after (null: not looked at). */
    public record Outcome(Target target, Action action, GenericKubernetesResource live, Boolean ready, List<Missing> missing) {
        Outcome withReadiness(List<Missing> m) {
            return new Outcome(target, action, live, m.isEmpty(), m);
        }

        Outcome notReady() {
            return new Outcome(target, action, live, false, List.of());
        }

        /** "pcideviceclaim.devices.harvesterhci.io/altra-000c01001 created (shares IOMMU group 18 with altra-000c01000)" */
        public String line(boolean dryRun) {
            String why = target.why().equals("requested") ? "" : " (" + target.why() + ")";
            return TYPE + "/" + target.name() + " " + action.word() + (dryRun ? " (dry run)" : "") + why;
        }

        /** The line kubectl wait prints once the claim is ready. */
        public String readyLine() {
            return TYPE + "/" + target.name() + " condition met (passthrough ready)";
        }

        /** The diff of the live claim against what the step wants (nothing, when unclaiming). */
        public List<String> diff(boolean unclaiming) {
            return Claims.diff(live, unclaiming ? null : target.desired());
        }
    }

    /** How the step behaves: --only, --force, --dry-run, --user, and how long to wait (timeout null: do not wait). */
    public record Settings(boolean only, boolean force, boolean dryRun, String userName, Duration timeout, boolean noPooling) {
        public Settings(boolean only, boolean force, boolean dryRun, String userName, Duration timeout) {
            this(only, force, dryRun, userName, timeout, false);
        }
    }

    /**
     * The claim as asked: with --no-pooling spec.disableResourcePooling: true (Harvester v1.9: the
     * device gets its own resource name). A live claim whose setting differs is a conflict, as any
     * other spec difference (Claims.intent), since the controller reads it only once.
     */
    private GenericKubernetesResource pooling(GenericKubernetesResource claim) {
        if (settings.noPooling()) {
            @SuppressWarnings("unchecked")
            Map<String, Object> spec = (Map<String, Object>) claim.getAdditionalProperties().get("spec");
            spec.put("disableResourcePooling", true);
        }
        return claim;
    }

    /** The step's result: every claim's outcome, and OK, CONFLICT (dry run) or TIMEOUT. */
    public record Result(Cli.Exit exit, List<Outcome> outcomes) {}

    private final KubernetesClient client;
    private final Settings settings;
    private final PrintWriter lines;
    private final PrintWriter progress;

    /** lines: one line per claim as it is applied (null: none, e.g. for -o json); progress: warnings and waiting. */
    public Claiming(KubernetesClient client, Settings settings, PrintWriter lines, PrintWriter progress) {
        this.client = client;
        this.settings = settings;
        this.lines = lines;
        this.progress = progress;
    }

    // ---- which claims ------------------------------------------------------------------------

    /** A device and, unless --only, every other function of its IOMMU group. */
    public List<Target> forDevice(Harvester.PciDevice d) {
        // No IOMMU group (IOMMU off): nothing to expand; the webhook will say so.
        if (settings.only() || d.iommuGroup() == null || d.iommuGroup().isEmpty()) {
            return List.of(new Target(d, pooling(Claims.forDevice(d, settings.userName())), "requested"));
        }
        List<Target> group = new ArrayList<>();
        for (Harvester.PciDevice m : Passthrough.read(client, d).group()) {
            String why = m.name().equals(d.name()) ? "requested" : "shares IOMMU group " + d.iommuGroup() + " with " + d.name();
            group.add(new Target(m, pooling(Claims.forDevice(m, settings.userName())), why));
        }
        return group;
    }

    /** The claims in YAML sources (file name → text), each checked against its live PCIDevice. */
    public List<Target> fromYaml(Map<String, String> sources) {
        List<Target> targets = new ArrayList<>();
        for (var src : sources.entrySet()) {
            for (GenericKubernetesResource r : Claims.parse(src.getKey(), src.getValue())) {
                String name = r.getMetadata().getName();
                GenericKubernetesResource pd = Harvester.pciDevices(client).withName(name).get();
                if (pd == null) {
                    throw new Cli.UserError(Cli.Exit.NOT_FOUND, src.getKey() + ": PCIDevice \"" + name
                            + "\" not found (a claim must be named after its PCIDevice) — list devices with: inventory");
                }
                @SuppressWarnings("unchecked")
                Map<String, Object> wanted = (Map<String, Object>) r.getAdditionalProperties().get("spec");
                Harvester.PciDevice d = Harvester.PciDevice.of(pd);
                targets.add(new Target(d, pooling(Claims.withSpec(d, wanted)), "from " + src.getKey()));
            }
        }
        return targets;
    }

    // ---- claim -------------------------------------------------------------------------------

    /** Creates (or with --force replaces) the claims, then waits until passthrough is on. */
    public Result claim(List<Target> targets) {
        // Preconditions: decide every claim's action before changing anything.
        List<Outcome> planned = new ArrayList<>();
        for (Target t : targets) {
            GenericKubernetesResource live = Harvester.pciDeviceClaims(client).withName(t.name()).get();
            Action a = live == null ? Action.CREATED : Claims.matches(live, t.desired()) ? Action.UNCHANGED
                    : settings.force() ? Action.CONFIGURED : Action.CONFLICT;
            planned.add(new Outcome(t, a, live, null, List.of()));
        }
        warnAboutPartialGroups(targets, false);
        List<Outcome> conflicts = planned.stream().filter(o -> o.action() == Action.CONFLICT).toList();
        if (settings.dryRun()) {
            return new Result(conflicts.isEmpty() ? Cli.Exit.OK : Cli.Exit.CONFLICT, withReadiness(planned, targets));
        }
        if (!conflicts.isEmpty()) {
            for (Outcome o : conflicts) {
                progress.println("conflict: " + TYPE + "/" + o.target().name() + " exists with a different spec or owner:");
                Claims.diff(o.live(), o.target().desired()).forEach(l -> progress.println("  " + l));
            }
            throw new Cli.UserError(Cli.Exit.CONFLICT, conflicts.size() + " claim(s) differ from what was asked ("
                    + String.join(", ", conflicts.stream().map(o -> o.target().name()).toList())
                    + "); nothing was changed — re-run with --force to replace them");
        }

        // Change: create or replace, in group order; anything failing halfway says what changed.
        List<String> changed = new ArrayList<>();
        removeGuideClaims(targets, changed);
        for (Outcome o : planned) {
            try {
                apply(o);
            } catch (RuntimeException e) {
                throw partial(e, changed, "created or replaced", "claim --delete --only ");
            }
            if (o.action() != Action.UNCHANGED) {
                changed.add(o.target().name());
                Journal.changed(TYPE + "/" + o.target().name() + " " + o.action().word(), "claim --delete --only " + o.target().name());
            }
            print(o.line(false));
        }

        // Wait until the pcidevices controller has done its part, for every claim we made.
        Cli.Exit exit = Cli.Exit.OK;
        if (settings.timeout() != null) {
            Set<String> names = names(targets);
            List<Passthrough.Check> left;
            try {
                left = waitFor(targets, () -> failing(targets, names), CHECKS, "passthrough on " + String.join(", ", names));
            } catch (RuntimeException e) {
                throw lostWhileWaiting(e, changed, "created or replaced", "claim --delete --only ");
            }
            if (!left.isEmpty()) exit = Cli.Exit.TIMEOUT;
        }
        return new Result(exit, withReadiness(planned, targets));
    }

    /**
     * Claims from public guides under another name (e.g. gpu-claim, no ownerReferences) that mean
     * one of our devices: never bound (the controller cannot find their PCIDevice) and their OnRemove
     * finalizer never goes. With --force they are deleted and that finalizer removed; without, a warning.
     */
    private void removeGuideClaims(List<Target> targets, List<String> changed) {
        List<Harvester.PciDevice> devices = targets.stream().map(Target::device).toList();
        Set<String> ours = names(targets);
        for (GenericKubernetesResource r : Harvester.pciDeviceClaims(client).list().getItems()) {
            Harvester.PciDeviceClaim claim = Harvester.PciDeviceClaim.of(r);
            if (ours.contains(claim.name()) || !claim.owners().isEmpty()) continue;
            Harvester.PciDevice d = GuideClaimCheck.deviceFor(claim, devices);
            if (d == null) continue;
            if (!settings.force()) {
                progress.println("WARNING: claim " + claim.name() + " (no ownerReferences, from a public guide) also means " + d.name()
                        + "; it was never bound — re-run with --force to remove it");
                progress.flush();
                continue;
            }
            try {
                Harvester.pciDeviceClaims(client).withName(claim.name()).delete();
                Harvester.pciDeviceClaims(client).withName(claim.name()).edit(x -> {
                    x.getMetadata().setFinalizers(List.of());
                    return x;
                });
            } catch (KubernetesClientException e) {
                if (e.getCode() != 404) throw partial(rejected(e, "deleting", claim.name()), changed, "created or replaced", "claim --delete --only ");
            }
            print(TYPE + "/" + claim.name() + " deleted (a guide's claim for " + d.name() + ", never bound: finalizer removed)");
            Journal.changed(TYPE + "/" + claim.name() + " deleted", "kubectl apply -f <the guide's claim " + claim.name() + ">");
        }
    }

    private void apply(Outcome o) {
        var claims = Harvester.pciDeviceClaims(client);
        String verb = o.action() == Action.CONFIGURED ? "replacing" : "creating";
        try {
            switch (o.action()) {
                case CREATED -> claims.resource(o.target().desired()).create();
                case CONFIGURED -> {
                    GenericKubernetesResource live = claims.withName(o.target().name()).get();
                    if (live != null && (live.getMetadata().getOwnerReferences() == null || live.getMetadata().getOwnerReferences().isEmpty())) {
                        // No owner (a public guide's claim): the controller never found its PCIDevice, so nothing was
                        // bound, and its OnRemove finalizer would never go (harvester/pcidevices getPCIDeviceForClaim).
                        // Updated in place: the owner and spec we want, the finalizer and status kept.
                        GenericKubernetesResource replaced = io.fabric8.kubernetes.client.utils.Serialization.clone(o.target().desired());
                        replaced.getMetadata().setResourceVersion(live.getMetadata().getResourceVersion());
                        replaced.getMetadata().setFinalizers(live.getMetadata().getFinalizers());
                        replaced.getMetadata().setUid(live.getMetadata().getUid());
                        if (live.getAdditionalProperties().get("status") != null) replaced.setAdditionalProperty("status", live.getAdditionalProperties().get("status"));
                        claims.resource(replaced).update();
                        return;
                    }
                    // Replace, as kubectl replace --force: the controller rebinds on remove and reconciles the new claim.
                    verb = "deleting (to replace)";
                    claims.withName(o.target().name()).delete();
                    long seconds = settings.timeout() != null ? settings.timeout().toSeconds() : 300;
                    claims.withName(o.target().name()).waitUntilCondition(Objects::isNull, seconds, TimeUnit.SECONDS);
                    verb = "creating";
                    claims.resource(o.target().desired()).create();
                }
                default -> { }
            }
        } catch (KubernetesClientException e) {
            if (verb.equals("creating") && e.getStatus() != null && e.getStatus().getMessage() != null) {
                // Harvester v1.9: a node labelled for bare-metal GPU workloads keeps its GPUs; the webhook denies the claim.
                var node = client.nodes().withName(o.target().device().node()).get();
                var bare = BaremetalCheck.claimDenied(o.target().name(), node, e.getStatus().getMessage().trim());
                if (bare.isPresent()) {
                    throw new Cli.UserError(Cli.Exit.REJECTED, bare.get().evidence() + " — fix: " + bare.get().fix(), e);
                }
            }
            throw rejected(e, verb, o.target().name());
        }
    }

    // ---- unclaim -----------------------------------------------------------------------------

    /** Deletes the claims (refused while a VM references a device, unless --force) and waits for the original drivers. */
    public Result unclaim(List<Target> targets) {
        warnAboutPartialGroups(targets, true);
        List<Outcome> planned = new ArrayList<>();
        for (Target t : targets) {
            GenericKubernetesResource live = Harvester.pciDeviceClaims(client).withName(t.name()).get();
            planned.add(new Outcome(t, live == null ? Action.UNCHANGED : Action.DELETED, live, null, List.of()));
        }
        // Precondition: no VM still asks for the device (its resource, on its node) or has it allocated.
        List<String> users = new ArrayList<>();
        List<GenericKubernetesResource> vms = KubeVirt.vms(client).inAnyNamespace().list().getItems();
        List<Harvester.PciDevice> devices = Harvester.pciDevices(client).list().getItems().stream().map(Harvester.PciDevice::of).toList();
        for (Outcome o : planned) {
            if (o.action() == Action.UNCHANGED) continue;
            for (GenericKubernetesResource vm : vms) {
                String how = KubeVirt.uses(vm, o.target().device(), devices);
                if (how != null) users.add("VM " + KubeVirt.ref(vm) + " still references " + o.target().name() + " (" + how + ")");
            }
        }
        if (!users.isEmpty() && !settings.force()) {
            throw new Cli.UserError(Cli.Exit.PRECONDITION, String.join("; ", users)
                    + " — detach it from the VM first (detach), or pass --force; nothing was changed");
        }
        users.forEach(u -> progress.println("WARNING: --force: " + u));
        if (settings.dryRun()) return new Result(Cli.Exit.OK, planned);

        List<String> deleted = new ArrayList<>();
        for (Outcome o : planned) {
            if (o.action() == Action.DELETED) {
                try {
                    Harvester.pciDeviceClaims(client).withName(o.target().name()).delete();
                } catch (KubernetesClientException e) {
                    throw partial(rejected(e, "deleting", o.target().name()), deleted, "deleted", "claim --only ");
                }
                deleted.add(o.target().name());
                Journal.changed(TYPE + "/" + o.target().name() + " deleted", "claim --only " + o.target().name());
            }
            print(o.line(false));
        }
        Cli.Exit exit = Cli.Exit.OK;
        List<Target> removed = targets.stream().filter(t -> deleted.contains(t.name())).toList();
        if (settings.timeout() != null && !removed.isEmpty()) {
            // The controller gives the device back to its original driver: wait so no half-done state is left.
            List<String> left;
            try {
                left = waitFor(removed, () -> stillBound(removed), LINES,
                        "the claims to be gone and the original drivers of " + String.join(", ", deleted));
            } catch (RuntimeException e) {
                throw lostWhileWaiting(e, deleted, "deleted", "claim --only ");
            }
            if (!left.isEmpty()) {
                whyStillTerminating(removed);
                exit = Cli.Exit.TIMEOUT;
            }
        }
        return new Result(exit, planned.stream().map(Outcome::notReady).toList());
    }

    /**
     * After a timed-out unclaim: why each claim is still Terminating — only the pcidevices agent on
     * the claim's node releases its finalizer, so that node's controller pod and its state are named.
     */
    private void whyStillTerminating(List<Target> removed) {
        List<GenericKubernetesResource> live = new ArrayList<>();
        for (Target t : removed) {
            GenericKubernetesResource claim = Harvester.pciDeviceClaims(client).withName(t.name()).get();
            if (claim != null) live.add(claim);
        }
        for (var f : ClaimRemovalCheck.terminatingClaims(live, ControllerHealth.pods(client), java.time.Instant.now())) {
            progress.println(f.subject() + ": " + f.evidence() + " — fix: " + f.fix());
        }
        progress.flush();
    }

    private List<String> stillBound(List<Target> removed) {
        List<String> left = new ArrayList<>();
        for (Target t : removed) {
            GenericKubernetesResource pd = Harvester.pciDevices(client).withName(t.name()).get();
            if (Harvester.pciDeviceClaims(client).withName(t.name()).get() != null) left.add(t.name() + ": claim still exists");
            else if (pd != null && Harvester.DRIVER_VFIO.equals(Harvester.PciDevice.of(pd).driver())) {
                left.add(t.name() + ": still on vfio-pci (status.kernelDriverInUse) — the controller rebinds its original driver");
            }
        }
        return left;
    }

    /** --dry-run as a table: the line kubectl would print, then the new object or the diff against the live one. */
    public static void printPlan(PrintWriter w, List<Outcome> outcomes, boolean unclaiming) {
        for (Outcome o : outcomes) {
            w.println(o.line(true));
            if (!unclaiming && o.live() == null) {
                Claims.yaml(o.target().desired()).lines().filter(l -> !l.equals("---")).forEach(l -> w.println("    " + l));
            } else {
                o.diff(unclaiming).forEach(l -> w.println("    " + l));
            }
        }
        w.flush();
    }

    // ---- shared ------------------------------------------------------------------------------

    private void print(String line) {
        if (lines == null) return;
        lines.println(line);
        lines.flush();
    }

    private static Set<String> names(List<Target> targets) {
        Set<String> names = new LinkedHashSet<>();
        targets.forEach(t -> names.add(t.name()));
        return names;
    }

    /** QEMU needs every function of an IOMMU group on vfio-pci; the controller will not tell you. */
    private void warnAboutPartialGroups(List<Target> targets, boolean unclaiming) {
        Set<String> names = names(targets);
        Set<String> seenGroups = new LinkedHashSet<>();
        for (Target t : targets) {
            if (t.device().iommuGroup() == null || t.device().iommuGroup().isEmpty() || !seenGroups.add(t.device().groupKey())) continue;
            Passthrough.State s = Passthrough.read(client, t.device());
            for (Harvester.PciDevice m : s.group()) {
                // Claiming: warn about members left unclaimed; unclaiming: about members left claimed.
                if (names.contains(m.name()) || s.claims().containsKey(m.name()) != unclaiming) continue;
                progress.println("WARNING: " + (unclaiming ? "unclaiming " : "claiming ") + t.name() + " only: " + m.name()
                        + " shares IOMMU group " + m.iommuGroup() + " and "
                        + (unclaiming ? "stays claimed" : "stays on " + (m.driver() == null ? "no driver" : m.driver()))
                        + " — QEMU refuses a group not wholly on vfio-pci (\"group " + m.iommuGroup() + " is not viable\"); "
                        + (unclaiming ? "unclaim the whole group with: claim --delete " : "claim the whole group with: claim ") + t.name());
            }
        }
        progress.flush();
    }

    /** The API server's URL, named when it cannot be reached. */
    private String server() {
        return String.valueOf(client.getMasterUrl());
    }

    /** Webhook denials as one line with the webhook's own words and the fix. */
    static RuntimeException rejected(KubernetesClientException e, String verb, String name) {
        Throwable t = Kube.translate(e);
        if (t instanceof Cli.UserError u && u.exit == Cli.Exit.REJECTED && e.getStatus() != null) {
            String msg = e.getStatus().getMessage();
            return new Cli.UserError(Cli.Exit.REJECTED, verb + " " + TYPE + "/" + name + " was rejected: " + msg + " — " + fixFor(msg, name), e);
        }
        return t instanceof RuntimeException r ? r : e;
    }

    /** The fix for a webhook's denial message (pcidevices' PCIDeviceClaim validator words). */
    public static String fixFor(String denial, String device) {
        if (denial.contains("has no iommuGroup available")) return "enable the IOMMU in the node's firmware (ARM: SMMU; x86: VT-d/AMD-Vi) and reboot it";
        if (denial.contains("not found")) return "a claim must be named after an existing PCIDevice: list them with inventory";
        if (denial.contains("already in use with vm")) return "detach the device from that VM first (detach), then retry";
        return "see: diagnose --device " + device;
    }

    /** A failure after some changes: PARTIAL, naming what changed and the command undoing each. */
    private RuntimeException partial(RuntimeException e, List<String> changed, String done, String undo) {
        Throwable t = Kube.translate(e, server());
        if (changed.isEmpty()) return t instanceof RuntimeException r ? r : e;
        String why = t instanceof Cli.UserError u ? u.getMessage() : t.toString();
        return new Cli.UserError(Cli.Exit.PARTIAL, why + "; already " + done + ": " + String.join(", ", changed)
                + " — undo with: " + String.join("; ", changed.stream().map(n -> undo + n).toList()), e);
    }

    /**
     * A read failing while waiting (the API server died or stopped answering): its exit code (4 for
     * an unreachable server), and what this run already changed with the undo of each.
     */
    private RuntimeException lostWhileWaiting(RuntimeException e, List<String> changed, String done, String undo) {
        Throwable t = Kube.translate(e, server());
        if (!(t instanceof Cli.UserError u)) return e;
        String already = changed.isEmpty() ? "; nothing was changed"
                : "; already " + done + ": " + String.join(", ", changed) + " — undo (once the server answers): "
                + String.join("; ", changed.stream().map(n -> undo + n).toList());
        return new Cli.UserError(u.exit, "while waiting: " + u.getMessage() + already, e);
    }

    /** The failing Passthrough checks of the claimed devices (a sibling left out with --only is not waited for). */
    private List<Passthrough.Check> failing(List<Target> targets, Set<String> names) {
        Map<String, Passthrough.Check> out = new LinkedHashMap<>();
        for (Target t : targets) {
            Harvester.PciDevice fresh = Harvester.device(client, t.name());
            for (Passthrough.Check c : Passthrough.read(client, fresh).failing()) {
                if (names.contains(c.subject())) out.putIfAbsent(c.id() + "/" + c.subject(), c);
            }
        }
        return List.copyOf(out.values());
    }

    private List<Outcome> withReadiness(List<Outcome> outcomes, List<Target> targets) {
        Set<String> names = names(targets);
        return outcomes.stream()
                .map(o -> o.withReadiness(failing(List.of(o.target()), names).stream().map(Missing::of).toList()))
                .toList();
    }

    private static final Waiting.Naming<Passthrough.Check> CHECKS = new Waiting.Naming<>(
            c -> c.subject() + " " + c.id(), c -> c.subject() + " " + c.id() + ": " + c.evidence() + " — fix: " + c.fix());
    private static final Waiting.Naming<String> LINES = new Waiting.Naming<>(l -> l, l -> l);

    /**
     * Waits, woken by informers on claims, the nodes' PCIDevices, the KubeVirt CR and the nodes
     * (everything Passthrough reads), until {@code missing} is empty or the timeout passes.
     * Returns what is still missing (empty = done).
     */
    private <T> List<T> waitFor(List<Target> targets, Supplier<List<T>> missing, Waiting.Naming<T> naming, String what) {
        Set<String> nodes = new TreeSet<>();
        targets.forEach(t -> nodes.add(t.device().node()));
        try (Changes changes = new Changes()) {
            changes.on(Harvester.pciDeviceClaims(client))
                    .on(KubeVirt.kubevirts(client).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME));
            for (String n : nodes) {
                changes.on(Harvester.pciDevices(client).withLabel("nodename", n)).on(client.nodes().withName(n));
            }
            return Waiting.until(changes, missing, naming, settings.timeout(), what, progress);
        }
    }
}
