//RUNTIME_OPTIONS -XX:TieredStopAtLevel=1 -XX:CompileThresholdScaling=2 -XX:+UseSerialGC -Xlog:disable -Xlog:all=warning:stderr -Xlog:cds*=off:stderr -Dsun.stdout.encoding=UTF-8 -Dsun.stderr.encoding=UTF-8 -Dstdout.encoding=UTF-8 -Dstderr.encoding=UTF-8 -Dio.netty.noUnsafe=true -Dpicocli.disable.closures=true -Dslf4j.provider=org.slf4j.nop.NOPServiceProvider -Dslf4j.internal.verbosity=WARN
//COMPILE_OPTIONS -encoding UTF-8 -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC
//DEPS info.picocli:picocli:4.7.7
// Above: C1 only, compiling a method after twice the usual calls (measured on inventory: 11% less
// CPU, the same wall time), and the serial GC; UTF-8 output whatever the locale (README "Locales and
// JDKs"); io.netty.noUnsafe keeps the simulator's Netty from printing sun.misc.Unsafe warnings on
// JDK 24+; picocli.disable.closures stops picocli looking for Groovy's Closure class through every
// jar of the class path at each start (~35 ms); slf4j.provider names the no-op logger every script
// depends on (slf4j-nop, in Kube.java), so SLF4J does not scan every jar for one either (~20 ms), and
// its verbosity WARN keeps it from announcing that on stderr. javac (a JVM JBang starts) gets C1 and the serial
// GC too: demo's 85 files took 3.5 s of CPU instead of 8.6 s.

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;

import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * How every script starts, reports errors and exits. One mapping from failures to exit codes:
 * a script throws {@link UserError} with an {@link Exit}; anything else is a bug (exit 1, with
 * a stack trace on --verbose only).
 */
public final class Cli {
    private Cli() {}

    /** Documented exit codes (README "Exit codes"). Numbers are part of our interface: never renumber. */
    public enum Exit {
        OK(0, "success"),
        INTERNAL(1, "unexpected error (a bug: please report it with --verbose output)"),
        USAGE(2, "bad command line or input file (unknown option, malformed address, bad template)"),
        CONFIG(3, "kubeconfig problem: none found, unreadable, empty, unknown --context or a context naming a missing cluster"),
        UNREACHABLE(4, "cannot reach or trust the API server (down, wrong address, certificate not signed by the kubeconfig's CA, no answer within --request-timeout)"),
        FORBIDDEN(5, "the API server refused our credentials (HTTP 401/403)"),
        NOT_FOUND(6, "a named node, device, claim or VM does not exist"),
        CONFLICT(7, "live state differs from what was asked (use --force to override)"),
        PRECONDITION(8, "a precondition is not met (device not claimed, not permitted, ...)"),
        TIMEOUT(9, "timed out waiting; what is still missing is printed"),
        REJECTED(10, "the API server or an admission webhook rejected the change"),
        PARTIAL(11, "failed halfway: what changed and how to undo it is printed"),
        VM_NOT_RUNNING(20, "verify: the VM instance is not Running with the device"),
        SSH_CONNECT(21, "verify: cannot connect to the guest (or a jump host) over SSH"),
        SSH_AUTH(22, "verify: the guest refused our SSH keys, or a passphrase key has no agent and no terminal"),
        SSH_HOST_KEY(23, "verify: the guest's host key is unknown, has changed or is revoked"),
        DEVICE_ABSENT(24, "verify: the device is not visible inside the guest"),
        SUDO_PASSWORD(25, "verify: sudo needs a password in the guest"),
        GUEST_SOFTWARE(26, "verify: with --docker, the NVIDIA driver, Docker or its NVIDIA runtime is missing or broken in the guest"),
        DIAGNOSE_WARN(30, "diagnose: worst result is WARN"),
        DIAGNOSE_FAIL(31, "diagnose: worst result is FAIL");

        public final int code;
        public final String meaning;

        Exit(int code, String meaning) {
            this.code = code;
            this.meaning = meaning;
        }

        /** The Exit with that code (INTERNAL for an unknown one), e.g. for a command run in-process. */
        public static Exit of(int code) {
            for (Exit e : values()) if (e.code == code) return e;
            return INTERNAL;
        }
    }

    /** A failure the user can fix: one line naming the problem and the fix, no stack trace. */
    public static class UserError extends RuntimeException {
        public final Exit exit;

        public UserError(Exit exit, String message) {
            super(message);
            this.exit = exit;
        }

        public UserError(Exit exit, String message, Throwable cause) {
            super(message, cause);
            this.exit = exit;
        }
    }

    /** Output format shared by every script. */
    public enum Output { table, wide, json, yaml }

    public static class OutputOptions {
        @Option(names = {"-o", "--output"}, defaultValue = "table", paramLabel = "FORMAT",
                description = "Output format: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})")
        public Output output;

        public boolean structured() {
            return output == Output.json || output == Output.yaml;
        }
    }

    public static class VerboseOption {
        @Option(names = {"-v", "--verbose"}, description = "Print stack traces for errors")
        public boolean verbose;
    }

    /** Runs a command with the given streams and returns its exit code (never calls System.exit). */
    public static int run(Object command, PrintWriter out, PrintWriter err, String... args) {
        CommandLine cmd = new CommandLine(command)
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setOut(out)
                .setErr(err);
        cmd.setExitCodeExceptionMapper(Cli::exitCodeOf);
        cmd.setParameterExceptionHandler(Cli::usageError);
        if (cmd.getCommandSpec().usageMessage().exitCodeList().isEmpty()) {
            cmd.getCommandSpec().usageMessage().exitCodeListHeading("%nExit codes:%n").exitCodeList(exitCodeList(cmd.getCommandName()));
        }
        cmd.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            Throwable e = Kube.translate(ex, serverOf(commandLine));
            String name = commandLine.getCommandName();
            if (e instanceof UserError) {
                commandLine.getErr().println(name + ": " + e.getMessage());
            } else {
                commandLine.getErr().println(name + ": unexpected error: " + e);
            }
            if (parseResult.hasMatchedOption("--verbose") || !(e instanceof UserError)) {
                e.printStackTrace(commandLine.getErr());
            }
            commandLine.getErr().flush();
            return exitCodeOf(e);
        });
        int rc = cmd.execute(args);
        out.flush();
        err.flush();
        return rc;
    }

    /** The API server URL of the command's cluster options, if it has read its kubeconfig (else null). */
    private static String serverOf(CommandLine commandLine) {
        for (Object mixin : commandLine.getCommandSpec().mixins().values().stream().map(m -> m.userObject()).toList()) {
            if (mixin instanceof Kube.Options k) return k.serverIfKnown();
        }
        return null;
    }

    /** A usage error: the problem on one line and where to read more, not the whole help (as git and kubectl do). */
    private static int usageError(ParameterException ex, String[] args) {
        CommandLine c = ex.getCommandLine();
        c.getErr().println(ex.getMessage());
        c.getErr().println("See '" + c.getCommandName() + " --help' for the options.");
        c.getErr().flush();
        return Exit.USAGE.code;
    }

    /**
     * The exit codes a command's --help lists, generated from {@link Exit} (the one source; README's
     * table matches it): the shared codes, plus those of this command ("verify: ...").
     */
    static java.util.Map<String, String> exitCodeList(String command) {
        java.util.Map<String, String> list = new java.util.LinkedHashMap<>();
        for (Exit e : Exit.values()) {
            int colon = e.meaning.indexOf(": ");
            boolean own = e.code >= 20 && colon > 0;
            if (own && !e.meaning.substring(0, colon).equals(command)) continue;
            // Padded by hand: String.format would set up java.util.Formatter on every start, only for this.
            String code = Integer.toString(e.code);
            list.put(" ".repeat(Math.max(0, 3 - code.length())) + code, own ? e.meaning.substring(colon + 2) : e.meaning);
        }
        return list;
    }

    public static int exitCodeOf(Throwable t) {
        if (t instanceof UserError u) return u.exit.code;
        if (t instanceof ParameterException) return Exit.USAGE.code;
        return Exit.INTERNAL.code;
    }

    /** main() of every script. */
    public static void main(Object command, String... args) {
        // UTF-8 whatever the locale, like kubectl (README "Locales and JDKs"); //RUNTIME_OPTIONS does
        // the same for System.out/err, which a PrintWriter over them would otherwise re-encode.
        System.exit(run(command, writer(System.out), writer(System.err), args));
    }

    /** A writer over the process's stdout or stderr: UTF-8 whatever the locale, flushed at each line. */
    public static PrintWriter writer(java.io.OutputStream stream) {
        return new PrintWriter(new OutputStreamWriter(stream, StandardCharsets.UTF_8), true);
    }

    /** For commands whose call() returns an Exit. */
    public interface Command extends Callable<Integer> {
        Exit execute() throws Exception;

        @Override
        default Integer call() throws Exception {
            return execute().code;
        }
    }
}
