//SOURCES ../cluster/Kube.java

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.client.utils.Serialization;

/** Output the way kubectl prints it: aligned upper-case columns, or JSON/YAML for scripts. */
public final class Render {
    private Render() {}

    /** Prints a value as JSON or YAML (for -o json / -o yaml). */
    public static void structured(PrintWriter out, Cli.Output format, Object value) {
        if (format == Cli.Output.yaml) {
            out.print(Serialization.asYaml(value));
        } else {
            out.println(pretty(value));
        }
        out.flush();
    }

    private static String pretty(Object value) {
        try {
            return Serialization.jsonMapper().writerWithDefaultPrettyPrinter().writeValueAsString(value);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** A kubectl-style table: three spaces between columns, "<none>"-free, empty cells as "-". */
    public static final class Table {
        private final List<String> headers;
        private final List<List<String>> rows = new ArrayList<>();

        public Table(String... headers) {
            this.headers = List.of(headers);
        }

        public Table row(Object... cells) {
            List<String> r = new ArrayList<>();
            for (Object c : cells) r.add(c == null || c.toString().isEmpty() ? "-" : c.toString());
            rows.add(r);
            return this;
        }

        public boolean isEmpty() {
            return rows.isEmpty();
        }

        public void print(PrintWriter out) {
            int[] width = new int[headers.size()];
            for (int i = 0; i < width.length; i++) width[i] = headers.get(i).length();
            for (List<String> r : rows) {
                for (int i = 0; i < width.length; i++) width[i] = Math.max(width[i], r.get(i).length());
            }
            line(out, headers, width);
            for (List<String> r : rows) line(out, r, width);
            out.flush();
        }

        private static void line(PrintWriter out, List<String> cells, int[] width) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < cells.size(); i++) {
                sb.append(cells.get(i));
                if (i < cells.size() - 1) sb.append(" ".repeat(width[i] - cells.get(i).length() + 3));
            }
            out.println(sb.toString().stripTrailing());
        }
    }
}
