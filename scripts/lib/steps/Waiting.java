//SOURCES ../cli/Progress.java Changes.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Waiting until nothing is missing: re-judges the state on every change the informers report,
 * shows progress (one redrawn line on a terminal; otherwise "pending" once and a "done" line per
 * item), and on timeout prints what is still missing.
 */
public final class Waiting {
    private Waiting() {}

    /** How an item still missing is named: a short key for progress, a full line for the timeout report. */
    public record Naming<T>(Function<T, String> key, Function<T, String> describe) {}

    /**
     * At most this long between two reads of the state: informers reconnect silently, so a server
     * that died is noticed by the next read failing, within seconds, not at the timeout.
     */
    static final long REREAD_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(2);

    /** Returns what is still missing when the wait ends (empty: done); a failed read propagates. */
    public static <T> List<T> until(Changes changes, Supplier<List<T>> missing, Naming<T> naming, Duration timeout, String what,
                                    PrintWriter progress) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Progress bar = new Progress(progress);
        progress.println("waiting up to " + timeout.toSeconds() + "s for " + what);
        progress.flush();
        Set<String> reported = new LinkedHashSet<>();
        while (true) {
            List<T> left;
            try {
                left = missing.get();
            } catch (RuntimeException e) {
                bar.done(); // the failure's message starts on its own line
                throw e;
            }
            show(bar, progress, left, reported, naming);
            if (left.isEmpty()) {
                bar.done();
                return left;
            }
            long remaining = deadline - System.nanoTime();
            if (remaining > 0) {
                changes.await(Math.min(remaining, REREAD_NANOS)); // woken by a change or not: read the state again
                continue;
            }
            bar.done();
            progress.println("timed out after " + timeout.toSeconds() + "s waiting for " + what + "; still missing:");
            for (T m : left) progress.println("  " + naming.describe().apply(m));
            progress.flush();
            return left;
        }
    }

    private static <T> void show(Progress bar, PrintWriter progress, List<T> left, Set<String> reported, Naming<T> naming) {
        if (bar.tty()) {
            bar.show(left.isEmpty() ? "ready" : "waiting: " + left.size() + " left, next: " + naming.describe().apply(left.get(0)));
            return;
        }
        Set<String> now = new LinkedHashSet<>();
        left.forEach(m -> now.add(naming.key().apply(m)));
        if (reported.isEmpty() && !left.isEmpty()) {
            reported.addAll(now);
            progress.println("  pending: " + String.join(", ", now));
        }
        for (String r : new ArrayList<>(reported)) {
            if (!now.contains(r)) {
                progress.println("  done: " + r);
                reported.remove(r);
            }
        }
        reported.addAll(now);
        progress.flush();
    }
}
