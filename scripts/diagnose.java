///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Check every known way PCI passthrough fails and print the fix for each
//SOURCES lib/Cli.java lib/Kube.java lib/Harvester.java lib/KubeVirt.java lib/Passthrough.java lib/Render.java
//SOURCES lib/Diagnosis.java lib/ControllerHealth.java lib/VmChecks.java lib/Claims.java lib/VmHostDevices.java lib/VmRestart.java
//SOURCES lib/cli/Timeouts.java
//SOURCES lib/steps/Claiming.java lib/steps/DeviceTarget.java lib/steps/Attaching.java lib/steps/VmDeviceChange.java

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Replaces the runbook's "Troubleshooting" section: looks at everything the runbook tells you to
 * look at by hand (controller pods and their agent log, claims, drivers, the KubeVirt CR, node
 * allocatable, the VM and its instance) and every failure mode the simulator models (scripts/lib/sim/Fault.java) that the
 * API shows, and prints one line per check with its evidence and the command that fixes it.
 */
@Command(name = "diagnose", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Check every known way PCI passthrough fails and print the fix for each.",
                "One line per check: PASS / WARN / FAIL, the evidence, then FIX: lines to paste.",
                "Exit code: 0 all pass, 30 worst is WARN, 31 worst is FAIL."})
public class diagnose implements Cli.Command {
    private static final ResourceDefinitionContext USB_DEVICES = new ResourceDefinitionContext.Builder()
            .withGroup(Harvester.GROUP).withVersion("v1beta1").withKind("USBDevice").withPlural("usbdevices").withNamespaced(false).build();

    @Mixin Kube.Options kube;
    @Mixin Cli.OutputOptions out;
    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Parameters(arity = "0..1", paramLabel = "VM", description = "The VM that should have the device (in -n NAMESPACE)")
    String vmName;

    @Option(names = "--device", paramLabel = "DEVICE", description = "PCIDevice name (altra-000c01000), or a PCI address with --node")
    String device;

    @Option(names = "--node", paramLabel = "NODE", description = "The device's node (default: the node of --device or of the VM's devices)")
    String node;

    @Option(names = "--fix", description = "Perform the safe fixes (restart the controller pod, re-claim, re-attach), then check again")
    boolean fix;

    @Option(names = "--yes", description = "With --fix: do not ask for confirmation")
    boolean yes;

    @Option(names = "--timeout", defaultValue = "120", paramLabel = "SECONDS",
            description = "With --fix: how long each remediation may wait (pod Ready, claim ready) (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    public static void main(String... args) {
        Cli.main(new diagnose(), args);
    }

    @Override
    public Cli.Exit execute() throws Exception {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter stderr = spec.commandLine().getErr();
        Duration wait = Timeouts.positive(timeoutSeconds);
        if (fix && !yes && System.console() == null) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--fix needs confirmation and stdin is not a terminal — add --yes to fix without asking");
        }
        try (KubernetesClient client = kube.client()) {
            Target target = resolve(client);

            List<Diagnosis.Finding> findings = checks(client, target);
            if (!fix) {
                report(stdout, findings);
                return Diagnosis.exitFor(Diagnosis.worst(findings));
            }
            // With --fix, -o json/yaml prints only the final report, so stdout stays one document.
            if (!out.structured()) report(stdout, findings);

            List<Diagnosis.Remedy> remedies = remedies(findings);
            if (remedies.isEmpty() || (!yes && !confirm(stderr, remedies))) {
                stderr.println(remedies.isEmpty() ? "--fix: nothing here is safe to fix automatically; run the FIX commands yourself"
                        : "--fix: nothing changed");
                if (out.structured()) report(stdout, findings);
                return Diagnosis.exitFor(Diagnosis.worst(findings));
            }
            if (yes) {
                stderr.println("--fix will run:");
                remedies.forEach(r -> stderr.println("  " + r.command()));
            }
            for (Diagnosis.Remedy r : remedies) apply(client, r, wait, stderr);
            stderr.println("checking again:");
            stderr.flush();
            findings = checks(client, resolve(client));
            report(stdout, findings);
            return Diagnosis.exitFor(Diagnosis.worst(findings));
        }
    }

    // ---- preconditions: what to look at (unknown names are errors, not findings) ----

    /** The VM (or null), the devices to check, and the nodes whose controller pods matter. */
    record Target(GenericKubernetesResource vm, List<Harvester.PciDevice> devices, List<Harvester.PciDevice> allDevices,
                  Set<String> nodes, boolean pciApi) {}

    private Target resolve(KubernetesClient c) {
        String ns = kube.namespace();
        if (node != null && c.nodes().withName(node).get() == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "node \"" + node + "\" not found — list nodes with: kubectl get nodes");
        }
        GenericKubernetesResource vm = null;
        if (vmName != null) {
            vm = KubeVirt.vm(c, ns, vmName);
        }
        List<Harvester.PciDevice> all;
        try {
            all = Harvester.pciDevices(c).list().getItems().stream().map(Harvester.PciDevice::of).toList();
        } catch (KubernetesClientException e) {
            if (e.getCode() != 404) throw e;
            Set<String> nodes = new LinkedHashSet<>();
            if (node != null) nodes.add(node);
            return new Target(vm, List.of(), List.of(), nodes, false);
        }
        List<Harvester.PciDevice> devices = new ArrayList<>();
        if (device != null) {
            if (device.contains(":") && node == null) {
                throw new Cli.UserError(Cli.Exit.USAGE, "--device " + device + " is a PCI address — add --node NODE, or pass the PCIDevice name (inventory lists them)");
            }
            devices.add(device.contains(":") ? Harvester.device(c, node, device) : Harvester.device(c, device));
        } else if (vm != null) {
            devices.addAll(devicesOf(vm, all));
        } else {
            Set<String> claimed = new LinkedHashSet<>();
            Harvester.pciDeviceClaims(c).list().getItems().forEach(r -> claimed.add(r.getMetadata().getName()));
            all.stream().filter(d -> claimed.contains(d.name()) && (node == null || node.equals(d.node()))).forEach(devices::add);
        }
        if (node != null && device != null && !node.equals(devices.get(0).node())) {
            throw new Cli.UserError(Cli.Exit.USAGE, "PCIDevice " + devices.get(0).name() + " is on node " + devices.get(0).node()
                    + ", not " + node + " — drop --node or pick a device of " + node);
        }
        Set<String> nodes = new LinkedHashSet<>();
        if (node != null) nodes.add(node);
        devices.forEach(d -> nodes.add(d.node()));
        return new Target(vm, devices, all, nodes, true);
    }

    /** The PCIDevices a VM's hostDevices/gpus mean (KubeVirt.match; pooled entries: the first candidate on the pinned node). */
    private List<Harvester.PciDevice> devicesOf(GenericKubernetesResource vm, List<Harvester.PciDevice> all) {
        String pinned = node != null ? node : KubeVirt.pinnedNode(vm);
        Map<String, Harvester.PciDevice> out = new LinkedHashMap<>();
        for (KubeVirt.HostDevice h : KubeVirt.entries(vm)) {
            KubeVirt.Match m = KubeVirt.match(h, all, pinned);
            if (!m.isEmpty()) out.putIfAbsent(m.devices().get(0).name(), m.devices().get(0));
        }
        return List.copyOf(out.values());
    }

    // ---- the checks ----

    private List<Diagnosis.Finding> checks(KubernetesClient c, Target t) {
        List<Diagnosis.Finding> findings = new ArrayList<>(ControllerHealth.check(c, t.nodes()));
        if (!t.pciApi()) {
            findings.add(Diagnosis.Finding.fail("pcidevices-api", Harvester.GROUP, "the server has no resource type pcidevices."
                            + Harvester.GROUP + ": the pcidevices-controller add-on is not enabled",
                    "kubectl -n harvester-system patch addons.harvesterhci.io pcidevices-controller --type merge -p '{\"spec\":{\"enabled\":true}}'"));
            return findings;
        }
        if (t.devices().isEmpty()) {
            findings.add(Diagnosis.Finding.warn("pcidevice", t.vm() != null ? KubeVirt.ref(t.vm()) : "-",
                    t.vm() != null ? "the VM has no PCI host device" : "no claimed PCI devices" + (node != null ? " on node " + node : ""),
                    "inventory" + (node != null ? " --node " + node : "") + "   # then: diagnose " + (t.vm() != null ? t.vm().getMetadata().getName() + " " : "")
                            + "--device <name>"));
        }
        List<GenericKubernetesResource> usb = listOrEmpty(c);
        List<Pod> pods = ControllerHealth.pods(c);
        VmChecks.Cluster vms = VmChecks.read(c, t.vm() == null ? null : t.vm().getMetadata().getNamespace());
        for (Harvester.PciDevice d : t.devices()) {
            Pod pod = ControllerHealth.podOn(pods, d.node());
            Passthrough.State state = Passthrough.read(c, d);
            findings.addAll(Diagnosis.device(state, pod == null ? null : pod.getMetadata().getName(), usb));
            findings.addAll(nodeFindings(state));
            findings.addAll(VmChecks.sharing(vms, t.vm(), d, t.allDevices()));
        }
        if (t.vm() != null) findings.addAll(VmChecks.check(vms, t.vm(), t.devices(), t.allDevices(), usb));
        return findings;
    }

    /** Maintenance (#4888): a cordoned node stops VMs with host devices, which cannot migrate. */
    private static List<Diagnosis.Finding> nodeFindings(Passthrough.State s) {
        if (s.node() == null || s.node().getSpec() == null || !Boolean.TRUE.equals(s.node().getSpec().getUnschedulable())) return List.of();
        String n = s.node().getMetadata().getName();
        return List.of(Diagnosis.Finding.warn("node-schedulable", n, "node " + n + " is cordoned (maintenance?): VMs with host devices are not "
                + "live-migratable, so they stop and cannot start until it is back", "kubectl uncordon " + n));
    }

    private static List<GenericKubernetesResource> listOrEmpty(KubernetesClient c) {
        try {
            return c.genericKubernetesResources(USB_DEVICES).list().getItems();
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404) return List.of();
            throw e;
        }
    }

    // ---- report ----

    private void report(PrintWriter stdout, List<Diagnosis.Finding> findings) {
        if (out.structured()) {
            Render.structured(stdout, out.output, findings.stream().map(Diagnosis.Finding::asMap).toList());
            return;
        }
        boolean wide = out.output == Cli.Output.wide;
        Render.Table t = wide ? new Render.Table("CHECK", "STATUS", "SUBJECT", "EVIDENCE", "FIX")
                : new Render.Table("CHECK", "STATUS", "SUBJECT", "EVIDENCE");
        for (Diagnosis.Finding f : findings) {
            if (wide) t.row(f.check(), f.status(), f.subject(), f.evidence(), f.fix());
            else t.row(f.check(), f.status(), f.subject(), f.evidence());
        }
        t.print(stdout);
        if (!wide) {
            Map<String, List<String>> fixes = new LinkedHashMap<>();
            for (Diagnosis.Finding f : findings) {
                if (f.status() != Diagnosis.Status.PASS && f.fix() != null && !f.fix().isEmpty()) {
                    fixes.computeIfAbsent(f.fix(), k -> new ArrayList<>()).add(f.check());
                }
            }
            if (!fixes.isEmpty()) stdout.println();
            fixes.forEach((cmd, checks) -> stdout.println("FIX: " + cmd + "   # " + String.join(", ", new LinkedHashSet<>(checks))));
        }
        long pass = findings.stream().filter(f -> f.status() == Diagnosis.Status.PASS).count();
        long warn = findings.stream().filter(f -> f.status() == Diagnosis.Status.WARN).count();
        long fail = findings.stream().filter(f -> f.status() == Diagnosis.Status.FAIL).count();
        stdout.println();
        stdout.println(pass + " passed, " + warn + " warnings, " + fail + " failed");
        stdout.flush();
    }

    // ---- --fix ----

    /** Distinct remedies of the findings that did not pass, controller restarts first (claims need a live controller). */
    private static List<Diagnosis.Remedy> remedies(List<Diagnosis.Finding> findings) {
        Map<String, Diagnosis.Remedy> byCommand = new LinkedHashMap<>();
        for (Diagnosis.Remedy.Kind k : Diagnosis.Remedy.Kind.values()) {
            for (Diagnosis.Finding f : findings) {
                if (f.status() != Diagnosis.Status.PASS && f.remedy() != null && f.remedy().kind() == k) {
                    byCommand.putIfAbsent(f.remedy().command(), f.remedy());
                }
            }
        }
        return List.copyOf(byCommand.values());
    }

    private boolean confirm(PrintWriter stderr, List<Diagnosis.Remedy> remedies) throws Exception {
        stderr.println("--fix would run:");
        remedies.forEach(r -> stderr.println("  " + r.command()));
        stderr.print("Proceed? [y/N] ");
        stderr.flush();
        String answer = new BufferedReader(new InputStreamReader(System.in)).readLine();
        return answer != null && (answer.trim().equalsIgnoreCase("y") || answer.trim().equalsIgnoreCase("yes"));
    }

    private void apply(KubernetesClient c, Diagnosis.Remedy r, Duration wait, PrintWriter stderr) {
        stderr.println("running: " + r.command());
        stderr.flush();
        Cli.Exit exit;
        try {
            exit = switch (r.kind()) {
                case RESTART_CONTROLLER -> restartController(c, r.subject(), wait, stderr);
                case CLAIM -> claim(c, r, wait, stderr);
                case ATTACH -> attach(c, r, wait, stderr);
            };
        } catch (RuntimeException e) {
            // One remedy failing does not stop the others; the check after --fix shows what is left.
            if (!(Kube.translate(e) instanceof Cli.UserError u)) throw e;
            stderr.println("  " + u.getMessage());
            exit = u.exit;
        }
        if (r.kind() != Diagnosis.Remedy.Kind.RESTART_CONTROLLER) stderr.println("  " + r.command() + " exited " + exit.code);
        stderr.flush();
    }

    /** The claim step, as `claim DEVICE` runs it: the device's whole IOMMU group, then wait until passthrough is on. */
    private static Cli.Exit claim(KubernetesClient c, Diagnosis.Remedy r, Duration wait, PrintWriter stderr) {
        Claiming step = new Claiming(c, new Claiming.Settings(false, false, false, Claims.DEFAULT_USER, wait), stderr, stderr);
        Claiming.Result result = step.claim(step.forDevice(Harvester.device(c, r.device())));
        if (result.exit() == Cli.Exit.OK) result.outcomes().forEach(o -> stderr.println(o.readyLine()));
        return result.exit();
    }

    /** attach's checks and its change path, as `attach VM --device DEVICE -n NS` runs them (restart and wait). */
    private static Cli.Exit attach(KubernetesClient c, Diagnosis.Remedy r, Duration wait, PrintWriter stderr) {
        GenericKubernetesResource vm = KubeVirt.vm(c, r.namespace(), r.subject());
        VmHostDevices.Target target = DeviceTarget.resolve(c, r.device(), null, null, null, true);
        var edit = Attaching.check(c, vm, target, false);
        var change = new VmDeviceChange.Request(r.namespace(), r.subject(), target, VmDeviceChange.Direction.ATTACH, edit, false, false, wait);
        stderr.println(VmDeviceChange.run(c, change, stderr).message());
        return Cli.Exit.OK;
    }

    /** Deletes the pod; its DaemonSet makes a new one on the same node. Waits (an informer, no polling) for that one to be Ready. */
    private static Cli.Exit restartController(KubernetesClient c, String pod, Duration wait, PrintWriter stderr) {
        var pods = c.pods().inNamespace(Harvester.CONTROLLER_NAMESPACE);
        Pod old = pods.withName(pod).get();
        if (old == null) {
            stderr.println("  pod " + pod + " is already gone");
            return Cli.Exit.OK;
        }
        String nodeName = old.getSpec().getNodeName();
        pods.withName(pod).delete();
        try {
            List<Pod> now = pods.withLabel(Harvester.CONTROLLER_POD_SELECTOR.split("=", 2)[0], Harvester.CONTROLLER_POD_SELECTOR.split("=", 2)[1])
                    .informOnCondition(l -> l.stream().anyMatch(p -> isNewReady(p, pod, nodeName)))
                    .get(wait.toMillis(), TimeUnit.MILLISECONDS);
            Pod fresh = now.stream().filter(p -> isNewReady(p, pod, nodeName)).findFirst().orElseThrow();
            stderr.println("  " + fresh.getMetadata().getName() + " is Ready on node " + nodeName);
            return Cli.Exit.OK;
        } catch (TimeoutException e) {
            stderr.println("  no new Ready controller pod on node " + nodeName + " after " + wait.toSeconds()
                    + "s — check: kubectl -n harvester-system get pods -l " + Harvester.CONTROLLER_POD_SELECTOR + " -o wide");
            return Cli.Exit.TIMEOUT;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Cli.Exit.TIMEOUT;
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        }
    }

    private static boolean isNewReady(Pod p, String oldName, String nodeName) {
        return !p.getMetadata().getName().equals(oldName) && nodeName.equals(p.getSpec().getNodeName())
                && p.getMetadata().getDeletionTimestamp() == null && ControllerHealth.ready(p);
    }
}
