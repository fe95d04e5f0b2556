/** Small text helpers for one-line messages. */
public final class Text {
    private Text() {}

    /** The first line of an exception's message (its class name when it has none): messages stay one line. */
    public static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    /**
     * The first line of what a program printed, for a one-line message ("no output" when it printed
     * nothing). Unlike RemoteShell.Result#firstLine it neither skips nor strips lines (callers strip
     * the output first) and says "no output" without parentheses, as verify's messages always have.
     */
    public static String firstOutputLine(String output) {
        return output == null || output.isBlank() ? "no output" : output.lines().findFirst().orElse(output);
    }
}
