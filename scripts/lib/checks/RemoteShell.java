/**
 * Runs one command line on another machine — a node or a guest — over whatever SSH session the
 * caller holds, and returns how it ended. The checks in this folder take one of these, so they
 * work with any session and can be tested against local fake commands. Failing to run at all
 * (connection lost, timeout) is thrown, not returned.
 */
@FunctionalInterface
public interface RemoteShell {
    /** A finished command: its exit status, stdout and stderr. */
    record Result(int exit, String out, String err) {
        /** stdout then stderr, for matching messages wherever a program printed them. */
        public String all() {
            return out + (out.isEmpty() || out.endsWith("\n") ? "" : "\n") + err;
        }

        /** The first non-blank line of stdout+stderr, for evidence. */
        public String firstLine() {
            return all().lines().map(String::strip).filter(l -> !l.isEmpty()).findFirst().orElse("(no output)");
        }
    }

    Result run(String command);

    /** A word quoted for a POSIX shell: '...' with every ' written as '\''. */
    static String quote(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }
}
