//SOURCES Terminal.java

import java.io.PrintWriter;
import java.util.Collections;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Progress while waiting, the one renderer of every command: on a terminal one line redrawn in
 * place, cut to the terminal's width (a wrapped line cannot be redrawn); otherwise each new line
 * printed once (logs, pipes and captured output get no escape codes). Whether the writer is a
 * terminal is judged for that writer's own stream (Terminal), not for the console.
 */
public final class Progress {
    private final PrintWriter out;
    private final boolean tty;
    private final int columns;
    private String last;

    /** Bars with a redrawn line on screen, ended by an interruption before its report. */
    private static final Set<Progress> ACTIVE = Collections.newSetFromMap(new ConcurrentHashMap<>());

    public Progress(PrintWriter out) {
        this(out, Terminal.isTerminal(out));
    }

    public Progress(PrintWriter out, boolean tty) {
        this(out, tty, tty ? Terminal.width() : 0);
    }

    public Progress(PrintWriter out, boolean tty, int columns) {
        this.out = out;
        this.tty = tty;
        this.columns = columns;
    }

    public boolean tty() {
        return tty;
    }

    /** Shows the current state; a line equal to the last one is not printed again. */
    public void show(String line) {
        if (line.equals(last)) return;
        if (tty) {
            out.print("\r\033[K" + Terminal.fit(line, columns));
            ACTIVE.add(this);
        } else {
            out.println(line);
        }
        out.flush();
        last = line;
    }

    /** A line that stays (printed below the redrawn one on a terminal). */
    public void note(String line) {
        if (tty && last != null) out.println();
        out.println(line);
        out.flush();
        last = null;
        ACTIVE.remove(this);
    }

    /** Ends the redrawn line so what follows starts on its own line. */
    public void done() {
        if (tty && last != null) out.println();
        out.flush();
        last = null;
        ACTIVE.remove(this);
    }

    /** Ends every redrawn line still on screen (an interruption's report then starts on its own line). */
    public static void endAll() {
        for (Progress p : ACTIVE) p.done();
    }
}
