//SOURCES Cli.java

import java.time.Duration;

/** --timeout, validated in one place with one message for every command. */
public final class Timeouts {
    private Timeouts() {}

    /** The --timeout value as a Duration; zero or negative is a usage error. */
    public static Duration positive(int seconds) {
        if (seconds <= 0) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--timeout " + seconds + " is not a positive number of seconds — give seconds, e.g. --timeout 300");
        }
        return Duration.ofSeconds(seconds);
    }
}
