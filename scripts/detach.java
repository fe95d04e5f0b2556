///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Remove exactly one PCI device from a VM's hostDevices, restart it and wait
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/cli/Render.java lib/cli/Bundled.java
//SOURCES lib/model/VmHostDevices.java lib/steps/VmRestart.java lib/cli/Names.java lib/steps/DeviceTarget.java lib/steps/VmDeviceChange.java
//SOURCES lib/cli/Launch.java

import java.io.PrintWriter;

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
    @Mixin DeviceTarget.Options which;
    @Mixin VmRestart.Options restart;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "VM", description = "The VirtualMachine, e.g. docker-host")
    String vmName;

    public static void main(String... args) {
        Launch.main(new detach(), args);
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter progress = out.structured() ? spec.commandLine().getErr() : stdout;
        var timeout = restart.timeout();
        if (out.structured()) Journal.structured(stdout);
        Names.object("VM", vmName);
        Names.namespace(kube.namespace);
        which.checkNames();
        try (KubernetesClient client = kube.client()) {
            String ns = kube.namespace();

            // Preconditions.
            GenericKubernetesResource vm = KubeVirt.vm(client, ns, vmName);
            VmHostDevices.Target target = which.resolve(client, false);
            VmHostDevices.Edit planned = VmHostDevices.detach(vm, target); // fails now, before any change, when the entry is ambiguous
            var change = new VmDeviceChange.Request(ns, vmName, target, VmDeviceChange.Direction.DETACH,
                    v -> VmHostDevices.detach(v, target), restart.noRestart, restart.start, timeout);
            if (restart.dryRun) {
                VmDeviceChange.printDryRun(stdout, out, change, planned);
                return Cli.Exit.OK;
            }

            // Change, restart, wait (failures after the change name it and the undo).
            VmDeviceChange.Result result = VmDeviceChange.run(client, change, vm, progress);

            // Report.
            VmDeviceChange.print(stdout, out, change, result);
            return Cli.Exit.OK;
        }
    }
}
