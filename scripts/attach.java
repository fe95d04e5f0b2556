///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Add a claimed PCI device to a VM's hostDevices without wiping others, restart it and wait until it runs with the device
//SOURCES lib/Cli.java lib/Kube.java lib/Harvester.java lib/KubeVirt.java lib/Passthrough.java lib/Render.java lib/Bundled.java
//SOURCES lib/VmHostDevices.java lib/VmRestart.java
//SOURCES claim.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Replaces the runbook's "Patch the VM" (kubectl patch --type merge, which replaced the whole
 * hostDevices list) and "Restart the running instance" (kubectl delete vmi, which leaves a
 * RerunOnFailure VM stopped), and waits for the instance as "Verify" did by hand.
 */
@Command(name = "attach", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Add a PCI device to a VM's hostDevices (keeping its other host devices), pin the VM to the",
                "device's node, restart it with KubeVirt's restart subresource and wait until the new instance",
                "runs with the device. The device must be claimed with passthrough enabled (see: claim).",
                "Without a device flag the device comes from the bundled patch " + VmHostDevices.DEFAULT_PATCH + "."})
public class attach implements Cli.Command {
    @Mixin Kube.Options kube;
    @Mixin Cli.OutputOptions out;
    @Mixin Cli.VerboseOption verbose;
    @Mixin VmHostDevices.DeviceOptions which;
    @Mixin VmRestart.Options restart;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "VM", description = "The VirtualMachine, e.g. docker-host")
    String vmName;

    @Option(names = "--move-gpus", description = "Move PCI devices found under domain.devices.gpus to hostDevices (pcidevices v1.5–1.7 rejects them there)")
    boolean moveGpus;

    @Option(names = "--claim", description = "Run the claim step first (claim the device's whole IOMMU group and wait) if it is not ready")
    boolean claimFirst;

    public static void main(String... args) {
        Cli.main(new attach(), args);
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter progress = out.structured() ? spec.commandLine().getErr() : stdout;
        Duration timeout = restart.timeout();
        KubernetesClient client = kube.client();
        String ns = kube.namespace();

        // Preconditions, all before any change.
        GenericKubernetesResource vm = KubeVirt.vm(client, ns, vmName);
        VmHostDevices.Target target = which.resolve(client, true);
        Harvester.PciDevice pci = Harvester.device(client, target.name());
        List<String> pciResources = VmHostDevices.pciResourceNames(client);
        List<Map<String, Object>> gpus = VmHostDevices.passthroughGpus(vm, pciResources);
        if (!gpus.isEmpty() && !moveGpus) {
            Map<String, Object> g = gpus.get(0);
            throw new Cli.UserError(Cli.Exit.PRECONDITION, vmName + " has PCI device " + g.get("name") + " (" + g.get("deviceName")
                    + ") under domain.devices.gpus, which pcidevices v1.5–1.7 rejects on every update (\"gpu device " + g.get("name")
                    + ": resource name " + g.get("deviceName") + " not found in pcidevice cache\") — re-run with --move-gpus to move it to hostDevices");
        }
        List<Passthrough.Check> failing = Passthrough.read(client, pci).failing();
        if (!failing.isEmpty() && claimFirst) {
            // The runbook's "Apply the claims" step, by the claim command itself; nothing on the VM has changed yet.
            List<String> args = new java.util.ArrayList<>(List.of(pci.name(), "--timeout", String.valueOf(restart.timeoutSeconds)));
            if (restart.dryRun) args.add("--dry-run");
            args.addAll(kube.asArgs());
            progress.println("claiming first: claim " + pci.name());
            progress.flush();
            int rc = Cli.run(new claim(), progress, spec.commandLine().getErr(), args.toArray(new String[0]));
            if (rc != 0) {
                throw new Cli.UserError(Cli.Exit.of(rc), "the claim step failed (see above); " + vmName + " was not changed");
            }
            if (!restart.dryRun) failing = Passthrough.read(client, pci).failing();
        }
        if (!failing.isEmpty() && !(restart.dryRun && claimFirst)) {
            Passthrough.Check first = failing.get(0);
            throw new Cli.UserError(Cli.Exit.PRECONDITION, pci.name() + " is not ready for passthrough: "
                    + String.join("; ", failing.stream().map(Passthrough.Check::evidence).toList())
                    + " — run: " + first.fix());
        }
        String pinned = KubeVirt.pinnedNode(vm);
        if (pinned != null && !pinned.equals(target.node())) {
            throw new Cli.UserError(Cli.Exit.PRECONDITION, vmName + " is pinned to node " + pinned + " (nodeSelector "
                    + VmHostDevices.HOSTNAME_LABEL + "=" + pinned + ") but " + pci.name() + " is on node " + target.node()
                    + " — pick a device on " + pinned + " (inventory --node " + pinned + ") or change the VM's node selector");
        }
        Function<GenericKubernetesResource, VmHostDevices.Edit> planner = v -> VmHostDevices.attach(v, target,
                moveGpus ? VmHostDevices.passthroughGpus(v, pciResources) : List.of());

        if (restart.dryRun) {
            VmHostDevices.Edit edit = planner.apply(vm);
            return VmHostDevices.printDryRun(stdout, out, vmName, ns, target, edit);
        }

        // Action: read-modify-write of the VM (retried on 409 and on the webhook's cache race).
        GenericKubernetesResource vmiBefore = VmRestart.vmi(client, ns, vmName);
        VmHostDevices.Edit edit = VmHostDevices.apply(client, ns, vmName, planner, target.deviceName(), progress);
        String ref = "virtualmachine.kubevirt.io/" + vmName;
        if (!edit.changes().isEmpty()) progress.println(ref + " patched (" + String.join(", ", edit.changes()) + ")");
        else if (edit.pinnedTo() == null) progress.println(ref + " unchanged (" + target.label() + " already in hostDevices)");
        if (edit.pinnedTo() != null) {
            progress.println(ref + " pinned to node " + edit.pinnedTo() + " (nodeSelector " + VmHostDevices.HOSTNAME_LABEL
                    + ": the same resource may exist on other nodes)");
        }
        progress.flush();

        // Restart and wait.
        boolean inEffect = vmiBefore != null && "Running".equals(VmRestart.phase(vmiBefore))
                && VmRestart.hasDevice(vmiBefore, target.deviceName()) && target.node().equals(VmRestart.node(vmiBefore));
        String undo = "detach " + vmName + (ns.equals("default") ? "" : " -n " + ns) + " " + target.flags();
        VmRestart.Result result;
        try {
            result = VmRestart.takeEffect(client, ns, vmName, vmiBefore, inEffect, restart.noRestart, restart.start,
                    vmi -> VmRestart.hasDevice(vmi, target.deviceName()), timeout, progress);
        } catch (VmRestart.SubresourceError e) {
            throw VmHostDevices.failed(edit, Cli.Exit.REJECTED, "restart of " + vmName + " refused (" + e.code + "): " + e.getMessage(), undo);
        }
        VmRestart.Outcome o = result.outcome();
        if (o != null && !o.running()) {
            String problem = vmName + " " + o.problem();
            if (o.problem().contains(VmRestart.NOT_PERMITTED)) {
                problem += " — the KubeVirt CR " + Harvester.KUBEVIRT_NAMESPACE + "/" + Harvester.KUBEVIRT_NAME + " no longer permits "
                        + target.deviceName() + " (diagnose --device " + pci.name() + ")";
            }
            throw VmHostDevices.failed(edit, o.timedOut() ? Cli.Exit.TIMEOUT : Cli.Exit.PARTIAL, problem, undo);
        }

        // Report.
        String outcome = switch (result.action()) {
            case STOPPED -> vmName + " is stopped: " + target.label() + " is used from its next start (start it now with --start)";
            case RESTART_REQUIRED -> vmName + " RestartRequired: the running instance does not have " + target.label()
                    + " until it restarts (virtctl restart " + vmName + ", or re-run without --no-restart)";
            default -> vmName + " Running on " + VmRestart.node(o.vmi()) + " with " + target.describe();
        };
        VmHostDevices.printOutcome(stdout, out, vmName, ns, target, edit, result, outcome);
        return Cli.Exit.OK;
    }
}
