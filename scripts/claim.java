///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Claim a PCI device and its whole IOMMU group (PCIDeviceClaim), idempotently, and wait until passthrough is on
//SOURCES lib/Cli.java lib/Kube.java lib/Harvester.java lib/KubeVirt.java lib/Passthrough.java lib/Render.java lib/Bundled.java lib/Claims.java

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Replaces the runbook's "Apply the claims" step (kubectl apply -f of two PCIDeviceClaims), and
 * does what that step leaves to the reader: the live ownerReference, the whole IOMMU group,
 * idempotent re-runs, and waiting until the device is really ready for a VM.
 */
@Command(name = "claim", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Claim a PCI device for passthrough (PCIDeviceClaim) with every function of its IOMMU group,",
                "then wait until passthrough is on: claim enabled, vfio-pci bound, permitted in KubeVirt, allocatable.",
                "Without DEVICE (or --node/--address, --file) it applies the claims in templates/.",
                "With --delete it removes the claims instead (unclaim)."})
public class claim implements Cli.Command {
    static final String TYPE = "pcideviceclaim." + Harvester.GROUP;

    @Mixin Kube.Options kube;
    @Mixin Cli.OutputOptions out;
    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Parameters(arity = "0..1", paramLabel = "DEVICE", description = "PCIDevice name, e.g. altra-000c01000 (see: inventory)")
    String deviceName;

    @Option(names = "--node", paramLabel = "NODE", description = "Node of the device (with --address)")
    String node;

    @Option(names = "--address", paramLabel = "ADDR", description = "PCI address of the device, e.g. 000c:01:00.0 (with --node)")
    String address;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "Apply the PCIDeviceClaim(s) in this YAML file, like kubectl apply -f")
    Path file;

    @Option(names = "--only", description = "Claim (or unclaim) just this device, not the rest of its IOMMU group (QEMU will refuse a partly claimed group)")
    boolean only;

    @Option(names = "--delete", description = "Remove the claims (unclaim); refused while a VM still references the device")
    boolean delete;

    @Option(names = "--force", description = "Replace a claim whose spec or owner differs; with --delete, delete even if a VM references the device")
    boolean force;

    @Option(names = "--dry-run", description = "Print the claims and the diff against the cluster; change nothing")
    boolean dryRun;

    @Option(names = "--user", paramLabel = "USER", defaultValue = Claims.DEFAULT_USER,
            description = "spec.userName (default: ${DEFAULT-VALUE}, so the Harvester UI can manage the claim)")
    String userName;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300",
            description = "How long to wait until passthrough is ready (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Option(names = "--no-wait", description = "Do not wait for the controller")
    boolean noWait;

    /** One claim to make or remove: the device, the claim we want, and why it is included. */
    record Target(Harvester.PciDevice device, GenericKubernetesResource desired, String why) {
        String name() {
            return device.name();
        }
    }

    /** What happened to one claim, for the report. */
    static final class Outcome {
        final Target target;
        String action;
        Boolean ready;
        List<Map<String, Object>> missing = List.of();

        Outcome(Target target, String action) {
            this.target = target;
            this.action = action;
        }
    }

    private PrintWriter stdout;
    private PrintWriter stderr;

    public static void main(String... args) {
        Cli.main(new claim(), args);
    }

    @Override
    public Cli.Exit execute() {
        stdout = spec.commandLine().getOut();
        stderr = spec.commandLine().getErr();
        checkOptions();
        KubernetesClient client = kube.client();

        List<Target> targets = targets(client);
        if (delete) return unclaim(client, targets);

        // Preconditions: decide every claim's action before changing anything.
        List<Outcome> outcomes = new ArrayList<>();
        Map<String, GenericKubernetesResource> live = new LinkedHashMap<>();
        for (Target t : targets) {
            GenericKubernetesResource current = Harvester.pciDeviceClaims(client).withName(t.name()).get();
            live.put(t.name(), current);
            String action = current == null ? "created" : Claims.matches(current, t.desired()) ? "unchanged"
                    : force ? "configured" : "conflict";
            outcomes.add(new Outcome(t, action));
        }
        warnAboutPartialGroups(client, targets);
        List<Outcome> conflicts = outcomes.stream().filter(o -> o.action.equals("conflict")).toList();

        if (dryRun) {
            for (Outcome o : outcomes) readiness(client, o, targetNames(targets));
            report(outcomes, live);
            return conflicts.isEmpty() ? Cli.Exit.OK : Cli.Exit.CONFLICT;
        }
        if (!conflicts.isEmpty()) {
            for (Outcome o : conflicts) {
                stderr.println("conflict: " + TYPE + "/" + o.target.name() + " exists with a different spec or owner:");
                Claims.diff(live.get(o.target.name()), o.target.desired()).forEach(l -> stderr.println("  " + l));
            }
            throw new Cli.UserError(Cli.Exit.CONFLICT, conflicts.size() + " claim(s) differ from what was asked ("
                    + String.join(", ", conflicts.stream().map(o -> o.target.name()).toList())
                    + "); nothing was changed — re-run with --force to replace them");
        }

        // Action: create or replace, in group order; anything failing halfway says what changed.
        List<String> changed = new ArrayList<>();
        for (Outcome o : outcomes) {
            try {
                apply(client, o);
            } catch (RuntimeException e) {
                throw partial(e, changed, "created or replaced", "claim --delete --only ");
            }
            if (!o.action.equals("unchanged")) changed.add(o.target.name());
            if (!out.structured()) stdout.println(line(o));
            stdout.flush();
        }

        // Wait until the pcidevices controller has done its part, for every claim we made.
        Cli.Exit exit = Cli.Exit.OK;
        if (!noWait) {
            Set<String> names = targetNames(targets);
            List<Passthrough.Check> missing = waitFor(client, targets, () -> missing(client, targets, names),
                    "passthrough on " + String.join(", ", names));
            if (!missing.isEmpty()) exit = Cli.Exit.TIMEOUT;
        }
        for (Outcome o : outcomes) readiness(client, o, targetNames(targets));
        if (out.structured()) {
            report(outcomes, live);
        } else if (!noWait && exit == Cli.Exit.OK) {
            for (Outcome o : outcomes) stdout.println(TYPE + "/" + o.target.name() + " condition met (passthrough ready)");
        }
        stdout.flush();
        return exit;
    }

    private void checkOptions() {
        if (deviceName != null && (node != null || address != null)) {
            throw usage("give either DEVICE or --node/--address, not both");
        }
        if ((node == null) != (address == null)) throw usage("--node and --address go together, e.g. --node altra --address 000c:01:00.0");
        if (file != null && (deviceName != null || node != null)) throw usage("--file cannot be combined with DEVICE or --node/--address");
        if (only && deviceName == null && node == null) throw usage("--only needs a device: claim --only DEVICE");
        if (address != null && !Harvester.isValidAddress(address)) {
            throw usage("malformed PCI address \"" + address + "\" — use the full form domain:bus:device.function in lower-case hex, e.g. 000c:01:00.0");
        }
        if (timeoutSeconds <= 0) throw usage("--timeout must be a positive number of seconds (or use --no-wait)");
        if (userName == null || userName.isBlank()) throw usage("--user is empty — pass the Harvester user, e.g. admin");
    }

    private static Cli.UserError usage(String message) {
        return new Cli.UserError(Cli.Exit.USAGE, message);
    }

    /** The three ways in: a device (and its group), a file, or the bundled templates. */
    private List<Target> targets(KubernetesClient client) {
        if (deviceName != null || node != null) {
            Harvester.PciDevice d = deviceName != null ? Harvester.device(client, deviceName) : deviceAt(client);
            // No IOMMU group (IOMMU off): nothing to expand; the webhook will say so.
            if (only || d.iommuGroup() == null || d.iommuGroup().isEmpty()) {
                return List.of(new Target(d, Claims.forDevice(d, userName), "requested"));
            }
            List<Target> group = new ArrayList<>();
            for (Harvester.PciDevice m : Passthrough.read(client, d).group()) {
                String why = m.name().equals(d.name()) ? "requested"
                        : "shares IOMMU group " + d.iommuGroup() + " with " + d.name();
                group.add(new Target(m, Claims.forDevice(m, userName), why));
            }
            return group;
        }
        List<Target> targets = new ArrayList<>();
        Map<String, String> sources = new LinkedHashMap<>();
        if (file != null) {
            sources.put(file.toString(), readFile(file));
        } else {
            for (String t : Bundled.TEMPLATES) sources.put(t, Bundled.read(t));
        }
        List<Map.Entry<String, GenericKubernetesResource>> parsed = new ArrayList<>();
        for (var src : sources.entrySet()) {
            for (GenericKubernetesResource r : Claims.parse(src.getKey(), src.getValue())) parsed.add(Map.entry(src.getKey(), r));
        }
        for (var p : parsed) {
            String name = p.getValue().getMetadata().getName();
            GenericKubernetesResource pd = Harvester.pciDevices(client).withName(name).get();
            if (pd == null) {
                throw new Cli.UserError(Cli.Exit.NOT_FOUND, p.getKey() + ": PCIDevice \"" + name
                        + "\" not found (a claim must be named after its PCIDevice) — list devices with: inventory");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> wanted = (Map<String, Object>) p.getValue().getAdditionalProperties().get("spec");
            targets.add(new Target(Harvester.PciDevice.of(pd), Claims.withSpec(Harvester.PciDevice.of(pd), wanted), "from " + p.getKey()));
        }
        return targets;
    }

    private Harvester.PciDevice deviceAt(KubernetesClient client) {
        try {
            return Harvester.device(client, node, address);
        } catch (Cli.UserError e) {
            if (e.exit == Cli.Exit.NOT_FOUND && client.nodes().withName(node).get() == null) {
                throw new Cli.UserError(Cli.Exit.NOT_FOUND, "node \"" + node + "\" not found — list nodes and their devices with: inventory");
            }
            throw e;
        }
    }

    private static String readFile(Path f) {
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Cli.UserError(Cli.Exit.USAGE, "cannot read " + f + " (" + e.getClass().getSimpleName()
                    + ") — check the --file path");
        }
    }

    private static Set<String> targetNames(List<Target> targets) {
        Set<String> names = new LinkedHashSet<>();
        targets.forEach(t -> names.add(t.name()));
        return names;
    }

    /** QEMU needs every function of an IOMMU group on vfio-pci; the controller will not tell you. */
    private void warnAboutPartialGroups(KubernetesClient client, List<Target> targets) {
        Set<String> names = targetNames(targets);
        Set<String> seenGroups = new LinkedHashSet<>();
        for (Target t : targets) {
            if (t.device().iommuGroup() == null || t.device().iommuGroup().isEmpty() || !seenGroups.add(t.device().groupKey())) continue;
            Passthrough.State s = Passthrough.read(client, t.device());
            for (Harvester.PciDevice m : s.group()) {
                // Claiming: warn about members left unclaimed; unclaiming: about members left claimed.
                if (names.contains(m.name()) || s.claims().containsKey(m.name()) != delete) continue;
                String msg = (delete ? "unclaiming " : "claiming ") + t.name() + " only: " + m.name() + " shares IOMMU group "
                        + m.iommuGroup() + " and " + (delete ? "stays claimed" : "stays on " + (m.driver() == null ? "no driver" : m.driver()))
                        + " — QEMU refuses a group not wholly on vfio-pci (\"group " + m.iommuGroup() + " is not viable\"); "
                        + (delete ? "unclaim the whole group with: claim --delete " : "claim the whole group with: claim ") + t.name();
                stderr.println("WARNING: " + msg);
            }
        }
        stderr.flush();
    }

    private void apply(KubernetesClient client, Outcome o) {
        var claims = Harvester.pciDeviceClaims(client);
        try {
            switch (o.action) {
                case "created" -> claims.resource(o.target.desired()).create();
                case "configured" -> {
                    // Replace, as kubectl replace --force: the controller rebinds on remove and reconciles the new claim.
                    claims.withName(o.target.name()).delete();
                    claims.withName(o.target.name()).waitUntilCondition(Objects::isNull, timeoutSeconds, TimeUnit.SECONDS);
                    claims.resource(o.target.desired()).create();
                }
                default -> { }
            }
        } catch (KubernetesClientException e) {
            throw rejected(e, "creating", o.target.name());
        }
    }

    /** Webhook denials as one line with the webhook's own words and the fix. */
    private static RuntimeException rejected(KubernetesClientException e, String verb, String name) {
        Throwable t = Kube.translate(e);
        if (t instanceof Cli.UserError u && u.exit == Cli.Exit.REJECTED && e.getStatus() != null) {
            String msg = e.getStatus().getMessage();
            String fix = msg.contains("has no iommuGroup available")
                    ? "enable the IOMMU in the node's firmware (ARM: SMMU; x86: VT-d/AMD-Vi) and reboot it"
                    : msg.contains("not found") ? "a claim must be named after an existing PCIDevice: list them with inventory"
                    : msg.contains("already in use with vm") ? "detach the device from that VM first (detach), then retry"
                    : "see: diagnose --device " + name;
            return new Cli.UserError(Cli.Exit.REJECTED, verb + " " + TYPE + "/" + name + " was rejected: " + msg + " — " + fix, e);
        }
        return t instanceof RuntimeException r ? r : e;
    }

    /** A failure after some changes: PARTIAL, naming what changed and the command undoing each. */
    private static RuntimeException partial(RuntimeException e, List<String> changed, String done, String undo) {
        Throwable t = Kube.translate(e);
        if (changed.isEmpty()) return t instanceof RuntimeException r ? r : e;
        String why = t instanceof Cli.UserError u ? u.getMessage() : t.toString();
        return new Cli.UserError(Cli.Exit.PARTIAL, why + "; already " + done + ": " + String.join(", ", changed)
                + " — undo with: " + String.join("; ", changed.stream().map(n -> undo + n).toList()), e);
    }

    /** The failing Passthrough checks of the claimed devices (a sibling left out with --only is not waited for). */
    private static List<Passthrough.Check> missing(KubernetesClient client, List<Target> targets, Set<String> names) {
        Map<String, Passthrough.Check> out = new LinkedHashMap<>();
        for (Target t : targets) {
            Harvester.PciDevice fresh = Harvester.device(client, t.name());
            for (Passthrough.Check c : Passthrough.read(client, fresh).failing()) {
                if (names.contains(c.subject())) out.putIfAbsent(c.id() + "/" + c.subject(), c);
            }
        }
        return List.copyOf(out.values());
    }

    private void readiness(KubernetesClient client, Outcome o, Set<String> names) {
        List<Passthrough.Check> failing = missing(client, List.of(o.target), names);
        o.ready = failing.isEmpty();
        List<Map<String, Object>> m = new ArrayList<>();
        for (Passthrough.Check c : failing) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("check", c.id());
            e.put("subject", c.subject());
            e.put("evidence", c.evidence());
            e.put("fix", c.fix());
            m.add(e);
        }
        o.missing = m;
    }

    /**
     * Waits, driven by watches on claims, the nodes' PCIDevices, the KubeVirt CR and the nodes, until
     * {@code missing} is empty or the timeout passes. Returns what is still missing (empty = done).
     */
    private <T> List<T> waitFor(KubernetesClient client, List<Target> targets, Supplier<List<T>> missing, String what) {
        Semaphore changed = new Semaphore(0);
        AtomicBoolean lost = new AtomicBoolean();
        Set<String> nodes = new TreeSet<>();
        targets.forEach(t -> nodes.add(t.device().node()));
        List<Watch> watches = watch(client, nodes, changed, lost);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            boolean tty = System.console() != null;
            stderr.println("waiting up to " + timeoutSeconds + "s for " + what);
            stderr.flush();
            Set<String> reported = new LinkedHashSet<>();
            while (true) {
                if (lost.getAndSet(false)) {
                    // A watch ended for good (e.g. 410 Gone): open new ones, then read the state again.
                    watches.forEach(Watch::close);
                    watches = watch(client, nodes, changed, lost);
                }
                List<T> left = missing.get();
                progress(left, reported, tty);
                if (left.isEmpty()) {
                    if (tty) stderr.println();
                    return left;
                }
                long wait = deadline - System.nanoTime();
                if (wait <= 0 || !changed.tryAcquire(wait, TimeUnit.NANOSECONDS)) {
                    if (tty) stderr.println();
                    stderr.println("timed out after " + timeoutSeconds + "s waiting for " + what + "; still missing:");
                    for (T m : left) stderr.println("  " + describe(m));
                    stderr.flush();
                    return left;
                }
                changed.drainPermits();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Cli.UserError(Cli.Exit.TIMEOUT, "interrupted while waiting for " + what);
        } finally {
            watches.forEach(Watch::close);
        }
    }

    /** Watches on everything Passthrough reads: claims, the KubeVirt CR, and each node with its PCIDevices. */
    private static List<Watch> watch(KubernetesClient client, Set<String> nodes, Semaphore changed, AtomicBoolean lost) {
        List<Watch> watches = new ArrayList<>();
        watches.add(Harvester.pciDeviceClaims(client).watch(signal(changed, lost)));
        watches.add(KubeVirt.kubevirts(client).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME)
                .watch(signal(changed, lost)));
        for (String n : nodes) {
            watches.add(Harvester.pciDevices(client).withLabel("nodename", n).watch(signal(changed, lost)));
            watches.add(client.nodes().withName(n).watch(signal(changed, lost)));
        }
        return watches;
    }

    private static <T> Watcher<T> signal(Semaphore changed, AtomicBoolean lost) {
        return new Watcher<>() {
            @Override
            public void eventReceived(Action action, T resource) {
                changed.release();
            }

            @Override
            public void onClose(WatcherException cause) {
                lost.set(true);
                changed.release();
            }
        };
    }

    /** On a terminal one redrawn line; otherwise one plain line per item that is newly done. */
    private <T> void progress(List<T> left, Set<String> reported, boolean tty) {
        if (tty) {
            stderr.print("\r\033[K" + (left.isEmpty() ? "ready" : "waiting: " + left.size() + " left, next: " + describe(left.get(0))));
        } else {
            Set<String> now = new LinkedHashSet<>();
            left.forEach(m -> now.add(key(m)));
            if (reported.isEmpty() && !left.isEmpty()) {
                left.forEach(m -> reported.add(key(m)));
                stderr.println("  pending: " + String.join(", ", now));
            }
            for (String r : new ArrayList<>(reported)) {
                if (!now.contains(r)) {
                    stderr.println("  done: " + r);
                    reported.remove(r);
                }
            }
            left.forEach(m -> reported.add(key(m)));
        }
        stderr.flush();
    }

    private static String key(Object m) {
        return m instanceof Passthrough.Check c ? c.subject() + " " + c.id() : m.toString();
    }

    private static String describe(Object m) {
        return m instanceof Passthrough.Check c ? c.subject() + " " + c.id() + ": " + c.evidence() + " — fix: " + c.fix() : m.toString();
    }

    // ---- unclaim ---------------------------------------------------------------------------

    private Cli.Exit unclaim(KubernetesClient client, List<Target> targets) {
        warnAboutPartialGroups(client, targets);
        List<Outcome> outcomes = new ArrayList<>();
        Map<String, GenericKubernetesResource> live = new LinkedHashMap<>();
        for (Target t : targets) {
            GenericKubernetesResource current = Harvester.pciDeviceClaims(client).withName(t.name()).get();
            live.put(t.name(), current);
            outcomes.add(new Outcome(t, current == null ? "unchanged" : "deleted"));
        }
        // Precondition: no VM still asks for the device (its resource, on its node) or has it allocated.
        List<String> users = new ArrayList<>();
        List<GenericKubernetesResource> vms = KubeVirt.vms(client).inAnyNamespace().list().getItems();
        for (Outcome o : outcomes) {
            if (o.action.equals("unchanged")) continue;
            for (GenericKubernetesResource vm : vms) {
                String how = uses(vm, o.target.device());
                if (how != null) users.add("VM " + KubeVirt.ref(vm) + " still references " + o.target.name() + " (" + how + ")");
            }
        }
        if (!users.isEmpty() && !force) {
            throw new Cli.UserError(Cli.Exit.PRECONDITION, String.join("; ", users)
                    + " — detach it from the VM first (detach), or pass --force; nothing was changed");
        }
        users.forEach(u -> stderr.println("WARNING: --force: " + u));
        if (dryRun) {
            report(outcomes, live);
            return Cli.Exit.OK;
        }
        List<String> deleted = new ArrayList<>();
        for (Outcome o : outcomes) {
            if (o.action.equals("deleted")) {
                try {
                    Harvester.pciDeviceClaims(client).withName(o.target.name()).delete();
                } catch (KubernetesClientException e) {
                    throw partial(rejected(e, "deleting", o.target.name()), deleted, "deleted", "claim --only ");
                }
                deleted.add(o.target.name());
            }
            if (!out.structured()) stdout.println(line(o));
            stdout.flush();
        }
        Cli.Exit exit = Cli.Exit.OK;
        List<Target> removed = targets.stream().filter(t -> deleted.contains(t.name())).toList();
        if (!noWait && !removed.isEmpty()) {
            // The controller gives the device back to its original driver: wait so no half-done state is left.
            List<String> left = waitFor(client, removed, () -> stillBound(client, removed), "the original drivers of " + String.join(", ", deleted));
            if (!left.isEmpty()) exit = Cli.Exit.TIMEOUT;
        }
        for (Outcome o : outcomes) o.ready = false;
        if (out.structured()) report(outcomes, live);
        return exit;
    }

    /** How a VM references a device: by name, by its resource name (on its node), or by allocation. */
    static String uses(GenericKubernetesResource vm, Harvester.PciDevice d) {
        for (var e : KubeVirt.allocatedDevices(vm).entrySet()) {
            if (e.getValue().contains(d.name())) return "allocated: annotation " + Harvester.ALLOCATION_ANNOTATION;
        }
        String pinned = KubeVirt.pinnedNode(vm);
        List<KubeVirt.HostDevice> entries = new ArrayList<>(KubeVirt.hostDevices(vm));
        entries.addAll(KubeVirt.gpus(vm));
        for (KubeVirt.HostDevice hd : entries) {
            if (d.name().equals(hd.name())) return "hostDevices name " + hd.name();
            if (d.resourceName() != null && d.resourceName().equals(hd.deviceName()) && (pinned == null || pinned.equals(d.node()))) {
                return "hostDevices deviceName " + hd.deviceName();
            }
        }
        return null;
    }

    private static List<String> stillBound(KubernetesClient client, List<Target> removed) {
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

    // ---- report ----------------------------------------------------------------------------

    private String line(Outcome o) {
        String why = o.target.why().equals("requested") ? "" : " (" + o.target.why() + ")";
        return TYPE + "/" + o.target.name() + " " + o.action + (dryRun ? " (dry run)" : "") + why;
    }

    private void report(List<Outcome> outcomes, Map<String, GenericKubernetesResource> live) {
        if (out.structured()) {
            List<Map<String, Object>> claims = new ArrayList<>();
            for (Outcome o : outcomes) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("name", o.target.name());
                m.put("node", o.target.device().node());
                m.put("address", o.target.device().address());
                m.put("action", o.action);
                m.put("reason", o.target.why());
                m.put("ready", o.ready);
                m.put("missing", o.missing);
                if (dryRun) {
                    m.put("object", o.target.desired());
                    m.put("diff", delete ? Claims.diff(live.get(o.target.name()), null) : Claims.diff(live.get(o.target.name()), o.target.desired()));
                }
                claims.add(m);
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("dryRun", dryRun);
            r.put("claims", claims);
            Render.structured(stdout, out.output, r);
            return;
        }
        // --dry-run, table: the line kubectl would print, the object, and the diff against live state.
        for (Outcome o : outcomes) {
            stdout.println(line(o));
            GenericKubernetesResource current = live.get(o.target.name());
            if (!delete && current == null) {
                stdout.print(indent(Claims.yaml(o.target.desired())));
            } else {
                for (String l : delete ? Claims.diff(current, null) : Claims.diff(current, o.target.desired())) stdout.println("    " + l);
            }
        }
        stdout.flush();
    }

    private static String indent(String yaml) {
        StringBuilder sb = new StringBuilder();
        yaml.lines().filter(l -> !l.equals("---")).forEach(l -> sb.append("    ").append(l).append('\n'));
        return sb.toString();
    }
}
