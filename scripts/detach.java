///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Remove exactly one PCI device from a VM's hostDevices, restart it and wait
//SOURCES lib/Cli.java lib/Kube.java lib/Harvester.java lib/KubeVirt.java lib/Render.java lib/Bundled.java
//SOURCES lib/VmHostDevices.java lib/VmRestart.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The undo of attach: removes one entry from a VM's hostDevices (matched by deviceName, and by
 * name when a PCIDevice is named), keeping every other host device; restarts and waits.
 */
@Command(name = "detach", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Remove exactly one PCI device from a VM's hostDevices (keeping the others), restart the VM",
                "with KubeVirt's restart subresource and wait until the new instance runs without it.",
                "Without a device flag the device comes from the bundled patch " + VmHostDevices.DEFAULT_PATCH + "."})
public class detach implements Cli.Command {
    @Mixin Kube.Options kube;
    @Mixin Cli.OutputOptions out;
    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "VM", description = "The VirtualMachine, e.g. docker-host")
    String vmName;

    @Option(names = "--device", paramLabel = "NAME", description = "PCIDevice name of the entry, e.g. altra-000c01000")
    String device;

    @Option(names = "--device-name", paramLabel = "RESOURCE", description = "Resource name of the entry, e.g. nvidia.com/GA102_GEFORCE_RTX_3090")
    String deviceName;

    @Option(names = "--node", paramLabel = "NODE", description = "Node of the device (only narrows --device-name)")
    String node;

    @Option(names = "--patch", paramLabel = "FILE", description = "Take the device from this merge-patch file instead of the bundled one")
    String patch;

    @Option(names = "--no-restart", description = "Only patch; the running instance keeps the device until you restart it")
    boolean noRestart;

    @Option(names = "--start", description = "Start the VM if it is stopped (default: leave a stopped VM stopped)")
    boolean start;

    @Option(names = "--dry-run", description = "Print the patch and the hostDevices before/after; change nothing")
    boolean dryRun;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300",
            description = "How long to wait for the new instance to run (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    public static void main(String... args) {
        Cli.main(new detach(), args);
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter progress = out.structured() ? spec.commandLine().getErr() : stdout;
        if (timeoutSeconds <= 0) throw new Cli.UserError(Cli.Exit.USAGE, "--timeout must be positive, e.g. --timeout 300");
        KubernetesClient client = kube.client();
        String ns = kube.namespace();

        // Preconditions.
        GenericKubernetesResource vm = KubeVirt.vms(client).inNamespace(ns).withName(vmName).get();
        if (vm == null) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "virtualmachine \"" + vmName + "\" not found in namespace \"" + ns
                    + "\" — check the name, or pass -n NAMESPACE (kubectl get vm -A)");
        }
        VmHostDevices.Target target = VmHostDevices.resolve(client, device, deviceName, node, patch, false);
        VmHostDevices.detach(vm, target); // fails now, before any change, when the entry is ambiguous

        if (dryRun) return VmHostDevices.printDryRun(stdout, out, vmName, ns, target, VmHostDevices.detach(vm, target));

        // Action: read-modify-write of the VM (retried on 409 and on the webhook's cache race).
        GenericKubernetesResource vmiBefore = VmRestart.vmi(client, ns, vmName);
        VmHostDevices.Edit edit = VmHostDevices.apply(client, ns, vmName, v -> VmHostDevices.detach(v, target),
                target.deviceName(), progress);
        String ref = "virtualmachine.kubevirt.io/" + vmName;
        progress.println(edit.changed() ? ref + " patched (" + edit.summary() + ")"
                : ref + " unchanged (no hostDevices entry " + target.label() + ")");
        progress.flush();

        // Restart and wait.
        boolean inEffect = vmiBefore != null && "Running".equals(VmRestart.phase(vmiBefore))
                && !VmRestart.hasDevice(vmiBefore, target.deviceName());
        String undo = "attach " + vmName + (ns.equals("default") ? "" : " -n " + ns) + " " + target.flags();
        VmRestart.Result result;
        try {
            result = VmRestart.takeEffect(client, ns, vmName, vmiBefore, inEffect, noRestart, start,
                    vmi -> !VmRestart.hasDevice(vmi, target.deviceName()), Duration.ofSeconds(timeoutSeconds), progress);
        } catch (VmRestart.SubresourceError e) {
            throw VmHostDevices.failed(edit, Cli.Exit.REJECTED, "restart of " + vmName + " refused (" + e.code + "): " + e.getMessage(), undo);
        }
        VmRestart.Outcome o = result.outcome();
        if (o != null && !o.running()) {
            throw VmHostDevices.failed(edit, o.timedOut() ? Cli.Exit.TIMEOUT : Cli.Exit.PARTIAL, vmName + " " + o.problem(), undo);
        }

        // Report.
        String outcome = switch (result.action()) {
            case STOPPED -> vmName + " is stopped: it starts without " + target.label() + " (start it now with --start)";
            case RESTART_REQUIRED -> vmName + " RestartRequired: the running instance keeps " + target.label()
                    + " until it restarts (virtctl restart " + vmName + ", or re-run without --no-restart)";
            default -> vmName + " Running on " + VmRestart.node(o.vmi()) + " without " + target.describe();
        };
        if (out.structured()) {
            Map<String, Object> report = VmHostDevices.report(vmName, ns, target, edit, false);
            report.put("action", result.action().name());
            if (o != null && o.vmi() != null) report.put("vmi", Map.of("uid", VmRestart.uid(o.vmi()), "phase", VmRestart.phase(o.vmi()),
                    "node", String.valueOf(VmRestart.node(o.vmi()))));
            report.put("message", outcome);
            Render.structured(stdout, out.output, report);
        } else {
            stdout.println(outcome);
        }
        stdout.flush();
        return Cli.Exit.OK;
    }
}
