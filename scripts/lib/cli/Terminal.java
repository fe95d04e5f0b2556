import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Whether a writer goes to a terminal, judged for the stream written to (not System.console(),
 * which says nothing about stderr): only the process's own stdout/stderr writers, registered by
 * Launch.main, can be terminals, and only when /proc/self/fd/N links to a tty (Linux; elsewhere
 * no escape codes at all). Captured output (tests, in-process runs) is never a terminal.
 */
public final class Terminal {
    private Terminal() {}

    private static final Map<PrintWriter, Integer> FDS = Collections.synchronizedMap(new IdentityHashMap<>());

    /** The writers of the process's stdout (fd 1) and stderr (fd 2). */
    static void standardStreams(PrintWriter out, PrintWriter err) {
        FDS.put(out, 1);
        FDS.put(err, 2);
    }

    public static boolean isTerminal(PrintWriter w) {
        Integer fd = FDS.get(w);
        return fd != null && isTerminal(fd);
    }

    static boolean isTerminal(int fd) {
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (Exception notLinux) {
            return false;
        }
    }

    private static volatile int width;

    /** Columns of the terminal: $COLUMNS, else `stty size` on /dev/tty, else 80. */
    public static int width() {
        if (width > 0) return width;
        int w = 0;
        try {
            w = Integer.parseInt(System.getenv().getOrDefault("COLUMNS", "").trim());
        } catch (NumberFormatException unset) {
            try {
                Process p = new ProcessBuilder("stty", "size").redirectInput(new java.io.File("/dev/tty"))
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                String out = new String(p.getInputStream().readAllBytes()).trim();
                if (p.waitFor(2, TimeUnit.SECONDS) && out.matches("\\d+ \\d+")) w = Integer.parseInt(out.split(" ")[1]);
            } catch (Exception noTty) {
                w = 0;
            } 
        }
        width = w > 10 ? w : 80;
        return width;
    }

    /** The line cut to fit one terminal row (never wrapped: a wrapped line cannot be redrawn in place). */
    public static String fit(String line, int columns) {
        int max = Math.max(10, columns - 1);
        if (line.codePointCount(0, line.length()) <= max) return line;
        return line.substring(0, line.offsetByCodePoints(0, max - 1)) + "…";
    }
}
