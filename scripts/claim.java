///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Claim a PCI device and its whole IOMMU group (PCIDeviceClaim), idempotently, and wait until passthrough is on
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/model/Passthrough.java lib/cli/Render.java lib/cli/Bundled.java lib/model/Claims.java
//SOURCES lib/cli/Timeouts.java lib/cli/Names.java lib/steps/Claiming.java
//SOURCES lib/cli/Launch.java

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.client.KubernetesClient;
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

    @Option(names = "--no-pooling", description = {"Set spec.disableResourcePooling: true (Harvester v1.9): the device gets its own",
            "resource name instead of the shared vendor/model one; a live claim set otherwise is a conflict (--force recreates it)"})
    boolean noPooling;

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

    public static void main(String... args) {
        Launch.main(new claim(), args);
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter stderr = spec.commandLine().getErr();
        checkOptions();
        if (out.structured()) Journal.structured(stdout);
        Claiming.Settings settings = new Claiming.Settings(only, force, dryRun, userName, noWait ? null : Timeouts.positive(timeoutSeconds), noPooling);
        try (KubernetesClient client = kube.client()) {
            // Preconditions: which claims (unknown devices and bad files fail here, before any change).
            Claiming step = new Claiming(client, settings, out.structured() || dryRun ? null : stdout, stderr);
            List<Claiming.Target> targets = targets(client, step);

            // Change and wait (the step decides every action first, and refuses conflicts without --force).
            Claiming.Result result = delete ? step.unclaim(targets) : step.claim(targets);

            // Report.
            if (out.structured() || dryRun) {
                report(stdout, result);
            } else if (!delete && !noWait && result.exit() == Cli.Exit.OK) {
                result.outcomes().forEach(o -> stdout.println(o.readyLine()));
            }
            stdout.flush();
            return result.exit();
        }
    }

    private void checkOptions() {
        Names.object("PCIDevice", deviceName);
        Names.object("node", node);
        if (deviceName != null && (node != null || address != null)) {
            throw usage("give either DEVICE or --node/--address, not both");
        }
        if ((node == null) != (address == null)) throw usage("--node and --address go together, e.g. --node altra --address 000c:01:00.0");
        if (file != null && (deviceName != null || node != null)) throw usage("--file cannot be combined with DEVICE or --node/--address");
        if (only && deviceName == null && node == null) throw usage("--only needs a device: claim --only DEVICE");
        if (address != null && !Harvester.isValidAddress(address)) {
            throw usage("malformed PCI address \"" + address + "\" — use the full form domain:bus:device.function in lower-case hex, e.g. 000c:01:00.0");
        }
        Timeouts.positive(timeoutSeconds);
        if (userName == null || userName.isBlank()) throw usage("--user is empty — pass the Harvester user, e.g. admin");
    }

    private static Cli.UserError usage(String message) {
        return new Cli.UserError(Cli.Exit.USAGE, message);
    }

    /** The three ways in: a device (and its group), a file, or the bundled templates. */
    private List<Claiming.Target> targets(KubernetesClient client, Claiming step) {
        if (deviceName != null) return step.forDevice(Harvester.device(client, deviceName));
        if (node != null) return step.forDevice(deviceAt(client));
        Map<String, String> sources = new LinkedHashMap<>();
        if (file != null) sources.put(file.toString(), readFile(file));
        else for (String t : Bundled.TEMPLATES) sources.put(t, Bundled.read(t));
        return step.fromYaml(sources);
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

    // ---- report ----------------------------------------------------------------------------

    /** The JSON/YAML document: {dryRun, claims: [{name, node, address, action, reason, ready, missing[, object, diff]}]}. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Report(boolean dryRun, List<ClaimReport> claims) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ClaimReport(String name, String node, String address, String action, String reason, Boolean ready,
                       List<Claiming.Missing> missing,
                       @JsonInclude(JsonInclude.Include.NON_NULL) Object object,
                       @JsonInclude(JsonInclude.Include.NON_NULL) List<String> diff) {}

    private void report(PrintWriter stdout, Claiming.Result result) {
        if (!out.structured()) {
            Claiming.printPlan(stdout, result.outcomes(), delete);
            return;
        }
        List<ClaimReport> claims = new ArrayList<>();
        for (Claiming.Outcome o : result.outcomes()) {
            var d = o.target().device();
            claims.add(new ClaimReport(d.name(), d.node(), d.address(), o.action().word(), o.target().why(), o.ready(), o.missing(),
                    dryRun ? o.target().desired() : null, dryRun ? o.diff(delete) : null));
        }
        Render.structured(stdout, out.output, new Report(dryRun, claims));
    }
}
