import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * What this run has changed so far, with the undo of each, for an interruption (SIGINT/SIGTERM):
 * Launch's shutdown hook prints it (after ending a redrawn progress line), and with -o json/yaml
 * also writes a report to stdout recording the changes. Steps add a line right after each change.
 */
public final class Journal {
    private Journal() {}

    public record Change(String what, String undo) {}

    private static final List<Change> CHANGES = new ArrayList<>();
    private static volatile PrintWriter structuredOut;

    public static synchronized void changed(String what, String undo) {
        CHANGES.add(new Change(what, undo));
    }

    /** A change this run made was undone again (e.g. by the run itself): no undo line for it. */
    public static synchronized void forget(String what) {
        CHANGES.removeIf(c -> c.what().equals(what));
    }

    public static synchronized List<Change> changes() {
        return List.copyOf(CHANGES);
    }

    /** With -o json/yaml: an interruption also writes {interrupted, changed, undo} to this stdout. */
    public static void structured(PrintWriter stdout) {
        structuredOut = stdout;
    }

    /** The interruption report: one line on stderr, and the structured record on stdout when asked for. */
    static void interrupted(String command, String signal, PrintWriter err) {
        List<Change> all = changes();
        if (all.isEmpty()) {
            err.println(command + ": interrupted (" + signal + ") — nothing was changed");
        } else {
            err.println(command + ": interrupted (" + signal + ") — changed: " + String.join("; ", all.stream().map(Change::what).toList())
                    + " — undo: " + String.join("; ", all.stream().map(Change::undo).toList()));
        }
        err.flush();
        PrintWriter out = structuredOut;
        if (out != null) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("interrupted", signal);
            List<Map<String, String>> changed = new ArrayList<>();
            all.forEach(c -> changed.add(Map.of("changed", c.what(), "undo", c.undo())));
            m.put("changes", changed);
            out.println(Serialization.asJson(m));
            out.flush();
        }
    }
}
