///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Remove exactly one PCI device from a VM's hostDevices, restart it and wait
//SOURCES lib/Cli.java lib/Kube.java lib/Harvester.java lib/KubeVirt.java lib/Render.java lib/Bundled.java
//SOURCES lib/VmHostDevices.java lib/VmRestart.java

import java.io.PrintWriter;
import java.time.Duration;

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
    @Mixin VmHostDevices.DeviceOptions which;
    @Mixin VmRestart.Options restart;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "VM", description = "The VirtualMachine, e.g. docker-host")
    String vmName;

    public static void main(String... args) {
        Cli.main(new detach(), args);
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter progress = out.structured() ? spec.commandLine().getErr() : stdout;
        Duration timeout = restart.timeout();
        KubernetesClient client = kube.client();
        String ns = kube.namespace();

        // Preconditions.
        GenericKubernetesResource vm = KubeVirt.vm(client, ns, vmName);
        VmHostDevices.Target target = which.resolve(client, false);
        VmHostDevices.detach(vm, target); // fails now, before any change, when the entry is ambiguous

        if (restart.dryRun) return VmHostDevices.printDryRun(stdout, out, vmName, ns, target, VmHostDevices.detach(vm, target));

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
            result = VmRestart.takeEffect(client, ns, vmName, vmiBefore, inEffect, restart.noRestart, restart.start,
                    vmi -> !VmRestart.hasDevice(vmi, target.deviceName()), timeout, progress);
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
        VmHostDevices.printOutcome(stdout, out, vmName, ns, target, edit, result, outcome);
        return Cli.Exit.OK;
    }
}
