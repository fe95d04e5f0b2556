//SOURCES Cli.java Terminal.java Journal.java Progress.java

import java.io.PrintWriter;

/**
 * main() of the commands that change the cluster: as Cli.main, plus the process's writers
 * registered as stdout/stderr (so progress knows which is a terminal) and a shutdown hook that,
 * when SIGINT/SIGTERM ends the run early, ends the progress line and says what was changed and
 * the undo (Journal).
 */
public final class Launch {
    private Launch() {}

    private static volatile boolean finished;

    public static void main(Object command, String... args) {
        PrintWriter out = Cli.writer(System.out);
        PrintWriter err = Cli.writer(System.err);
        Terminal.standardStreams(out, err);
        String name = command.getClass().getSimpleName();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (finished) return;
            Progress.endAll();
            // The JVM does not say which signal; both end the run the same way (exit 130 / 143).
            Journal.interrupted(name, "SIGINT/SIGTERM", err);
        }, "interrupted-report"));
        int rc = Cli.run(command, out, err, args);
        finished = true;
        System.exit(rc);
    }
}
