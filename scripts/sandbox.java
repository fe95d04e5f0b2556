///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//DESCRIPTION Run a simulated Harvester node and VM on 127.0.0.1 to try every script without a cluster
//SOURCES lib/cli/Cli.java lib/sim/Sandbox.java

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;

import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** No cluster at hand? This stands one up on loopback, with the failure modes users really hit. */
@Command(name = "sandbox", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Start a simulated Harvester node 'altra' and VM 'default/docker-host' on 127.0.0.1,",
                "write a kubeconfig into --dir, print the commands to try, and run until Ctrl-C."})
public class sandbox implements Cli.Command {
    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Option(names = "--dir", paramLabel = "DIR", description = "Where to write kubeconfig.yaml (default: a new temp directory)")
    Path dir;

    @Option(names = "--fault", paramLabel = "NAME", converter = FaultConverter.class,
            description = "Switch on a failure mode (repeatable); see --list-faults")
    List<Fault> faults = new ArrayList<>();

    @Option(names = "--list-faults", description = "List the failure modes and exit")
    boolean listFaults;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "0", description = "API server port on 127.0.0.1 (default: any free port)")
    int port;

    @Option(names = "--controller-delay-ms", paramLabel = "MS", defaultValue = "500",
            description = "How long the simulated pcidevices controller takes per step (default: ${DEFAULT-VALUE})")
    long controllerDelayMs;

    @Option(names = "--vmi-phase-delay-ms", paramLabel = "MS", defaultValue = "500",
            description = "How long a VM instance spends in each start-up phase (default: ${DEFAULT-VALUE})")
    long vmiPhaseDelayMs;

    public static void main(String... args) {
        Cli.main(new sandbox(), args);
    }

    @Override
    public Cli.Exit execute() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (listFaults) {
            for (Fault f : Fault.values()) out.printf("%-24s %s%n", FaultConverter.name(f), f.description);
            out.flush();
            return Cli.Exit.OK;
        }
        if (port < 0 || port > 65535) throw new Cli.UserError(Cli.Exit.USAGE, "--port " + port + " is not a TCP port — use 1-65535, or 0 for any");
        if (controllerDelayMs < 0 || vmiPhaseDelayMs < 0) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--controller-delay-ms and --vmi-phase-delay-ms must be 0 or more (got "
                    + controllerDelayMs + ", " + vmiPhaseDelayMs + ")");
        }
        if (port != 0) {
            try (java.net.ServerSocket probe = new java.net.ServerSocket(port, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
                probe.setReuseAddress(true);
            } catch (java.io.IOException e) {
                throw new Cli.UserError(Cli.Exit.USAGE, "port " + port + " on 127.0.0.1 is in use (" + e.getMessage()
                        + ") — pick another --port, or 0 for any free one");
            }
        }
        if (dir != null) usableDir(dir);
        SimCluster.Options options = new SimCluster.Options();
        options.faults.addAll(faults);
        options.port = port;
        options.controllerDelay = Duration.ofMillis(controllerDelayMs);
        options.vmiPhaseDelay = Duration.ofMillis(vmiPhaseDelayMs);
        Path where = dir != null ? dir : Files.createTempDirectory("harvester-sandbox-");

        Sandbox box = Sandbox.start(where, options);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            box.close();
            stopped.countDown();
        }));
        box.instructions().forEach(out::println);
        out.println("");
        out.println("Running until Ctrl-C.");
        out.flush();
        stopped.await();
        return Cli.Exit.OK;
    }

    /** --dir must be a writable directory, or creatable as one. */
    private static void usableDir(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (java.io.IOException | RuntimeException e) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--dir " + dir + " cannot be used as a directory (" + e.getClass().getSimpleName()
                    + (e.getMessage() != null ? ": " + e.getMessage() : "") + ") — pick a writable directory");
        }
        if (!Files.isWritable(dir)) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--dir " + dir + " is not writable — pick a writable directory");
        }
    }

    /** Accepts WEBHOOK_RACE, webhook-race or webhook_race. */
    static class FaultConverter implements ITypeConverter<Fault> {
        @Override
        public Fault convert(String value) {
            try {
                return Fault.valueOf(value.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
            } catch (IllegalArgumentException e) {
                List<String> names = new ArrayList<>();
                for (Fault f : Fault.values()) names.add(name(f));
                throw new picocli.CommandLine.TypeConversionException("unknown fault '" + value + "' — one of: " + String.join(", ", names));
            }
        }

        static String name(Fault f) {
            return f.name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }
}
