/** Small text helpers for one-line messages. */
public final class Text {
    private Text() {}

    /** The first line of an exception's message (its class name when it has none): messages stay one line. */
    public static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
