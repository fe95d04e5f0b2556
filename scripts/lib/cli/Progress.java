import java.io.PrintWriter;

/**
 * Progress while waiting, the one renderer of every command: on a terminal one line redrawn in
 * place; otherwise each new line printed once (logs and pipes get no escape codes).
 */
public final class Progress {
    private final PrintWriter out;
    private final boolean tty;
    private String last;

    public Progress(PrintWriter out) {
        this(out, System.console() != null);
    }

    public Progress(PrintWriter out, boolean tty) {
        this.out = out;
        this.tty = tty;
    }

    public boolean tty() {
        return tty;
    }

    /** Shows the current state; a line equal to the last one is not printed again. */
    public void show(String line) {
        if (line.equals(last)) return;
        if (tty) out.print("\r\033[K" + line);
        else out.println(line);
        out.flush();
        last = line;
    }

    /** A line that stays (printed below the redrawn one on a terminal). */
    public void note(String line) {
        if (tty && last != null) out.println();
        out.println(line);
        out.flush();
        last = null;
    }

    /** Ends the redrawn line so what follows starts on its own line. */
    public void done() {
        if (tty && last != null) out.println();
        out.flush();
        last = null;
    }
}
