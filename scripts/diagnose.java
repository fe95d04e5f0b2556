///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Check every known way PCI passthrough fails and print the fix for each
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/model/Passthrough.java lib/cli/Render.java
//SOURCES lib/checks/Diagnosis.java lib/cli/Timeouts.java lib/cli/Names.java lib/checks/Checkup.java lib/steps/Fixing.java lib/checks/VersionCheck.java
//SOURCES lib/checks/NodeSshCheck.java lib/cli/Launch.java

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.client.KubernetesClient;
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
                "With --node-ssh, also the node itself over SSH (read-only).",
                "Exit code: 0 all pass, 30 worst is WARN, 31 worst is FAIL (a node that",
                "cannot be reached over SSH is a WARN that alone leaves the exit code as it is)."})
public class diagnose implements Cli.Command {
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

    @Option(names = "--fix-all", description = {"With --fix (implies it): also the fixes that go beyond restoring what was asked for:",
            "first claims, and attaching a device to a VM (which restarts it when it runs)"})
    boolean fixAll;

    @Option(names = "--yes", description = "With --fix: do not ask for confirmation")
    boolean yes;

    @Option(names = "--timeout", defaultValue = "120", paramLabel = "SECONDS",
            description = "With --fix: how long each remediation may wait (pod Ready, claim ready) (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Mixin NodeSshCheck.Options nodeSsh;

    /** Why each remedy of the plan is safe, or which --fix-all reason it runs under. */
    private final Map<Diagnosis.Remedy, String> planNotes = new LinkedHashMap<>();

    public static void main(String... args) {
        Launch.main(new diagnose(), args);
    }

    @Override
    public Cli.Exit execute() throws Exception {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter stderr = spec.commandLine().getErr();
        Duration wait = Timeouts.positive(timeoutSeconds);
        nodeSsh.validate();
        if (fixAll) fix = true;
        Names.object("VM", vmName);
        Names.namespace(kube.namespace);
        Names.object("node", node);
        if (device != null && !device.contains(":")) Names.object("PCIDevice", device); // a PCI address: judged as one by Checkup.scope
        if (fix && !yes && System.console() == null) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--fix needs confirmation and stdin is not a terminal — add --yes to fix without asking");
        }
        try (KubernetesClient client = kube.client()) {
            String ns = kube.namespace();
            List<Diagnosis.Finding> findings = check(client, ns, stderr);
            if (!fix) {
                report(stdout, findings);
                return NodeSshCheck.exitFor(findings);
            }
            // With --fix, -o json/yaml prints only the final report, so stdout stays one document.
            if (!out.structured()) report(stdout, findings);

            // Safe fixes restore what was already asked for; the others run only with --fix-all (the plan says which is which).
            List<Diagnosis.Remedy> remedies = new ArrayList<>();
            Map<Diagnosis.Remedy, String> skipped = new LinkedHashMap<>();
            for (Diagnosis.Remedy r : Fixing.remedies(findings)) {
                String beyond = Fixing.beyondRestoring(client, r);
                if (beyond == null || fixAll) remedies.add(r);
                else skipped.put(r, beyond);
                planNotes.put(r, beyond == null ? "safe: restores what was asked for" : "--fix-all: " + beyond);
            }
            if (!skipped.isEmpty()) {
                stderr.println("--fix skips (not a restore; run it yourself, or re-run with --fix-all):");
                skipped.forEach((r, why) -> stderr.println("  " + r.command() + "   # " + why));
            }
            if (remedies.isEmpty() || (!yes && !confirm(stderr, remedies))) {
                stderr.println(remedies.isEmpty() ? "--fix: nothing here is safe to fix automatically; run the FIX commands yourself"
                        : "--fix: nothing changed");
                if (out.structured()) report(stdout, findings);
                return NodeSshCheck.exitFor(findings);
            }
            if (yes) {
                stderr.println("--fix will run:");
                remedies.forEach(r -> stderr.println("  " + r.command() + "   # " + planNotes.get(r)));
            }
            for (Diagnosis.Remedy r : remedies) Fixing.apply(client, r, wait, stderr);
            stderr.println("checking again:");
            stderr.flush();
            findings = check(client, ns, stderr);
            report(stdout, findings);
            return NodeSshCheck.exitFor(findings);
        }
    }

    /** The API checks, then (with --node-ssh) what only the node can tell. */
    private List<Diagnosis.Finding> check(KubernetesClient client, String ns, PrintWriter stderr) {
        Checkup.Scope scope = Checkup.scope(client, ns, vmName, device, node);
        List<Diagnosis.Finding> findings = new ArrayList<>(Checkup.run(client, scope));
        findings.addAll(NodeSshCheck.run(client, scope, nodeSsh, note -> {
            stderr.println("diagnose: " + note);
            stderr.flush();
        }));
        return findings;
    }

    // ---- report ----

    private void report(PrintWriter stdout, List<Diagnosis.Finding> findings) {
        if (out.structured()) {
            Render.structured(stdout, out.output, findings.stream().map(Diagnosis.Finding::asMap).toList());
            return;
        }
        // The versions head the report (advice depends on them); their finding is not repeated in the table.
        findings.stream().filter(f -> f.check().equals(VersionCheck.CHECK)).findFirst().ifPresent(v -> stdout.println(v.evidence()));
        boolean wide = out.output == Cli.Output.wide;
        Render.Table t = wide ? new Render.Table("CHECK", "STATUS", "SUBJECT", "EVIDENCE", "FIX")
                : new Render.Table("CHECK", "STATUS", "SUBJECT", "EVIDENCE");
        for (Diagnosis.Finding f : findings) {
            if (f.check().equals(VersionCheck.CHECK) && f.status() == Diagnosis.Status.PASS) continue;
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

    private boolean confirm(PrintWriter stderr, List<Diagnosis.Remedy> remedies) throws Exception {
        stderr.println("--fix would run:");
        remedies.forEach(r -> stderr.println("  " + r.command() + "   # " + planNotes.get(r)));
        stderr.print("Proceed? [y/N] ");
        stderr.flush();
        String answer = new BufferedReader(new InputStreamReader(System.in)).readLine();
        return answer != null && (answer.trim().equalsIgnoreCase("y") || answer.trim().equalsIgnoreCase("yes"));
    }
}
