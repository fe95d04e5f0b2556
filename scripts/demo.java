///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//DESCRIPTION Run the whole runbook (inventory, claim, attach, verify, diagnose) against the sandbox
//SOURCES lib/cli/Cli.java lib/sim/Sandbox.java
//SOURCES inventory.java claim.java attach.java verify.java diagnose.java sandbox.java

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The runbook, start to finish, on a simulated Harvester: what a user sees on a real cluster,
 * step by step. With --fault, the step that breaks and diagnose's explanation of why.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Start the sandbox in-process and run the runbook as a user would:",
                "inventory → claim → attach (restart, wait) → verify --docker → diagnose --node-ssh.",
                "Exits 0 only if the GPU is verified inside the guest."})
public class demo implements Cli.Command {
    static final String VM = "docker-host";
    static final String GPU = "altra-000c01000";
    /** The image verify --docker runs with --gpus all (the sandbox's guest answers for any image). */
    static final String CUDA_IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04";

    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Option(names = "--fault", paramLabel = "NAME", converter = sandbox.FaultConverter.class,
            description = "Switch on a failure mode (repeatable; see: sandbox --list-faults)")
    List<Fault> faults = new ArrayList<>();

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "60",
            description = "How long claim and attach may wait (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Option(names = "--delay-ms", paramLabel = "MS", defaultValue = "300",
            description = "Simulated controller and VM start-up latency per step (default: ${DEFAULT-VALUE})")
    long delayMs;

    public static void main(String... args) {
        Cli.main(new demo(), args);
    }

    /** One runbook step: what it replaces, and our command that does it. */
    record Step(String title, String replaces, Object command, List<String> args) {}

    @Override
    public Cli.Exit execute() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (timeoutSeconds <= 0) throw new Cli.UserError(Cli.Exit.USAGE, "--timeout must be positive seconds, e.g. --timeout 60");
        SimCluster.Options options = new SimCluster.Options();
        options.faults.addAll(faults);
        options.controllerDelay = Duration.ofMillis(delayMs);
        options.vmiPhaseDelay = Duration.ofMillis(delayMs);
        Path dir = Files.createTempDirectory("harvester-demo-");

        try (Sandbox box = Sandbox.start(dir, options)) {
            out.println("Sandbox up: node altra with an RTX 3090 (000c:01:00.0) and its audio function (000c:01:00.1),");
            out.println("VM default/docker-host (runStrategy RerunOnFailure, a USB stick attached). Faults: "
                    + (faults.isEmpty() ? "none" : box.cluster().faults()) + ".");
            String t = String.valueOf(timeoutSeconds);
            List<String> verifyArgs = new ArrayList<>(List.of(VM, "--docker", "--docker-image", CUDA_IMAGE));
            verifyArgs.addAll(box.sshFlags());
            List<Step> steps = List.of(
                    new Step("inventory: the node's PCI devices by IOMMU group", "kubectl get pcidevices -o wide",
                            new inventory(), List.of("--node", "altra")),
                    new Step("claim: the GPU and every function of its IOMMU group; wait for passthrough", "kubectl apply -f <two claims>",
                            new claim(), List.of(GPU, "--timeout", t)),
                    new Step("attach: add the GPU to the VM (other host devices kept), restart, wait", "kubectl patch --type merge; kubectl delete vmi",
                            new attach(), List.of(VM, "--device", GPU, "--timeout", t)),
                    new Step("verify: the GPU inside the guest over SSH, its driver and Docker's nvidia runtime",
                            "ssh ... 'sudo lspci -nn | grep -i nvidia'; nvidia-smi; docker run --gpus all",
                            new verify(), verifyArgs));

            int n = 0;
            for (Step s : steps) {
                n++;
                int rc = run(out, err, box, n, s);
                if (rc != 0) {
                    out.println();
                    out.println("Step " + n + " (" + s.title().split(":")[0] + ") failed with exit code " + rc + " (" + Cli.Exit.of(rc).meaning + ").");
                    diagnose(out, err, box);
                    out.flush();
                    return Cli.Exit.of(rc);
                }
            }
            diagnose(out, err, box);
            out.println();
            out.println("Done: the RTX 3090 is visible inside default/docker-host. Every step above is a script you can run");
            out.println("against your own cluster with --kubeconfig (see README).");
            out.flush();
            return Cli.Exit.OK;
        }
    }

    private int run(PrintWriter out, PrintWriter err, Sandbox box, int n, Step s) {
        String name = s.title().split(":")[0];
        out.println();
        out.println("━━ " + n + "/5 " + s.title() + "   (runbook: " + s.replaces() + ")");
        out.println("$ " + name + " " + String.join(" ", s.args()));
        out.flush();
        List<String> args = new ArrayList<>(s.args());
        args.addAll(box.kubeFlags());
        return Cli.run(s.command(), out, err, args.toArray(new String[0]));
    }

    /** Always the last step: on success it should find nothing to fix; on failure it names the cause. With --node-ssh it also looks at the node. */
    private void diagnose(PrintWriter out, PrintWriter err, Sandbox box) {
        List<String> args = new ArrayList<>(List.of(VM, "--device", GPU, "--node-ssh"));
        args.addAll(box.sshFlags());
        run(out, err, box, 5, new Step("diagnose: every known failure mode, the node's IOMMU and drivers over SSH, with the fix",
                "the Troubleshooting section; ssh rancher@node dmesg", new diagnose(), args));
    }
}
