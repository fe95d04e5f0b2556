///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Add a claimed PCI device to a VM's hostDevices without wiping others, restart it and wait until it runs with the device
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/model/Passthrough.java lib/cli/Render.java lib/cli/Bundled.java
//SOURCES lib/model/Claims.java lib/model/VmHostDevices.java lib/steps/VmRestart.java lib/cli/Names.java
//SOURCES lib/steps/Claiming.java lib/steps/DeviceTarget.java lib/steps/Attaching.java lib/steps/VmDeviceChange.java
//SOURCES lib/cli/Launch.java

import java.io.PrintWriter;
import java.util.List;
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
    @Mixin DeviceTarget.Options which;
    @Mixin VmRestart.Options restart;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "VM", description = "The VirtualMachine, e.g. docker-host")
    String vmName;

    @Option(names = "--move-gpus", description = "Move PCI devices found under domain.devices.gpus to hostDevices (pcidevices v1.5–1.7 rejects them there)")
    boolean moveGpus;

    @Option(names = "--claim", description = "Run the claim step first (claim the device's whole IOMMU group and wait) if it is not ready")
    boolean claimFirst;

    public static void main(String... args) {
        Launch.main(new attach(), args);
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

            // Preconditions, all before any change.
            GenericKubernetesResource vm = KubeVirt.vm(client, ns, vmName);
            DeviceTarget.Found found = which.find(client, true);
            VmHostDevices.Target target = found.target();
            Harvester.PciDevice pci = found.device();
            List<String> pciResources = Attaching.pciResourceNames(client, vm, moveGpus);
            Attaching.requireNoPassthroughGpus(vm, pciResources, moveGpus);
            List<Passthrough.Check> failing = Attaching.notReady(client, pci);
            List<String> claimed = List.of();
            if (!failing.isEmpty() && claimFirst) {
                // The runbook's "Apply the claims" step; nothing on the VM has changed yet.
                claimed = claim(client, pci, timeout, progress);
                if (!restart.dryRun) failing = Attaching.notReady(client, pci);
            }
            try {
                // The VM as read above is edited in the first write attempt unless the claim step ran in between.
                return attach(client, ns, vm, claimed.isEmpty() ? vm : null, target, pci, failing, pciResources, timeout, stdout, progress);
            } catch (Cli.UserError e) {
                if (claimed.isEmpty()) throw e;
                // The claim step changed the cluster before this failure: say so, with its undo.
                throw new Cli.UserError(e.exit, e.getMessage() + "; the claim step had created or replaced: " + String.join(", ", claimed)
                        + " — undo: " + String.join("; ", claimed.stream().map(n -> "claim --delete --only " + n).toList()), e);
            }
        }
    }

    /** The preconditions left after the claim step, the change, the wait and the report. */
    private Cli.Exit attach(KubernetesClient client, String ns, GenericKubernetesResource vm, GenericKubernetesResource toEdit,
                            VmHostDevices.Target target,
                            Harvester.PciDevice pci, List<Passthrough.Check> failing, List<String> pciResources,
                            java.time.Duration timeout, PrintWriter stdout, PrintWriter progress) {
        if (!(restart.dryRun && claimFirst)) Attaching.requireReady(pci, failing);
        Attaching.requireSameNode(vm, target);
        Function<GenericKubernetesResource, VmHostDevices.Edit> edit = Attaching.edit(target, moveGpus, pciResources);
        var change = new VmDeviceChange.Request(ns, vmName, target, VmDeviceChange.Direction.ATTACH, edit,
                restart.noRestart, restart.start, timeout);
        if (restart.dryRun) {
            VmDeviceChange.printDryRun(stdout, out, change, edit.apply(vm));
            return Cli.Exit.OK;
        }

        // Change, restart, wait (failures after the change name it and the undo).
        VmDeviceChange.Result result = VmDeviceChange.run(client, change, toEdit, progress);

        // Report.
        VmDeviceChange.print(stdout, out, change, result);
        return Cli.Exit.OK;
    }

    /** The claim step on the device's whole IOMMU group, waiting until passthrough is on (with --dry-run: the plan); the claims it made. */
    private List<String> claim(KubernetesClient client, Harvester.PciDevice pci, java.time.Duration timeout, PrintWriter progress) {
        progress.println("claiming first: claim " + pci.name());
        progress.flush();
        Claiming claiming = new Claiming(client, new Claiming.Settings(false, false, restart.dryRun, Claims.DEFAULT_USER, timeout),
                restart.dryRun ? null : progress, spec.commandLine().getErr());
        Claiming.Result claimed;
        try {
            claimed = claiming.claim(claiming.forDevice(pci));
        } catch (Cli.UserError e) {
            throw new Cli.UserError(e.exit, "the claim step failed: " + e.getMessage() + "; " + vmName + " was not changed", e);
        }
        if (restart.dryRun) Claiming.printPlan(progress, claimed.outcomes(), false);
        if (claimed.exit() != Cli.Exit.OK) {
            throw new Cli.UserError(claimed.exit(), "the claim step failed (see above); " + vmName + " was not changed");
        }
        if (!restart.dryRun) claimed.outcomes().forEach(o -> progress.println(o.readyLine()));
        if (restart.dryRun) return List.of();
        return claimed.outcomes().stream().filter(o -> o.action() != Claiming.Action.UNCHANGED).map(o -> o.target().name()).toList();
    }
}
