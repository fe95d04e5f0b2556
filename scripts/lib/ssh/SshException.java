//SOURCES ../cli/Cli.java

/**
 * Every failure of the SSH layer: one line naming the problem and the fix, with the exit code
 * verify documents (21 connect, 22 auth, 23 host key, 2 a bad ssh_config). Callers that treat
 * SSH as optional (diagnose --node-ssh) catch this one type and turn it into a WARN.
 */
public class SshException extends Cli.UserError {
    public SshException(Cli.Exit exit, String message) {
        super(exit, message);
    }

    /** Cannot reach or keep the SSH connection (exit 21). */
    public static SshException connect(String message) {
        return new SshException(Cli.Exit.SSH_CONNECT, message);
    }

    /** The server refused every identity, or no identity was usable (exit 22). */
    public static SshException auth(String message) {
        return new SshException(Cli.Exit.SSH_AUTH, message);
    }

    /** The host key is unknown, changed, revoked or cannot be recorded (exit 23). */
    public static SshException hostKey(String message) {
        return new SshException(Cli.Exit.SSH_HOST_KEY, message);
    }

    /** The ssh_config cannot be used as written (exit 2), e.g. a ProxyJump loop. */
    public static SshException config(String message) {
        return new SshException(Cli.Exit.USAGE, message);
    }
}
