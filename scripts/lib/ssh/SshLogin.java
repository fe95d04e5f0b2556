//DEPS com.hierynomus:sshj:0.40.0
//SOURCES SshException.java SshTarget.java KnownHosts.java SshAgent.java SshAgentConnection.java AgentAuth.java

import java.io.Console;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import net.schmizz.sshj.SSHClient;
import net.schmizz.sshj.common.Buffer;
import net.schmizz.sshj.userauth.UserAuthException;
import net.schmizz.sshj.userauth.keyprovider.KeyProvider;
import net.schmizz.sshj.userauth.method.AuthMethod;
import net.schmizz.sshj.userauth.method.AuthPublickey;
import net.schmizz.sshj.userauth.password.PasswordFinder;
import net.schmizz.sshj.userauth.password.Resource;

/** Public-key login with OpenSSH's identity order (sshconnect2.c pubkey_prepare). */
final class SshLogin {
    private SshLogin() {}

    /** A key file: its public key blob when readable without a passphrase (from FILE.pub or the file itself). */
    private record KeyFile(Path path, byte[] blob, boolean locked, String unusable) {}

    static String authenticate(SSHClient client, SshTarget t, String what, SshAgentConnection agent) {
        List<KeyFile> files = new ArrayList<>();
        for (Path p : t.identityFiles()) {
            if (Files.isRegularFile(p)) files.add(inspect(client, p));
        }
        List<AuthMethod> first = new ArrayList<>();
        List<String> tried = new ArrayList<>();
        // Agent keys that match a key file come first, then other agent keys unless IdentitiesOnly.
        List<AuthMethod> otherAgentKeys = new ArrayList<>();
        for (SshAgent.Identity id : agent.identities) {
            KeyFile match = files.stream().filter(f -> f.blob() != null && Arrays.equals(f.blob(), id.blob())).findFirst().orElse(null);
            if (match != null) {
                files.remove(match);
                first.add(new AgentAuth(agent.agent, id));
            } else if (!t.identitiesOnly()) {
                otherAgentKeys.add(new AgentAuth(agent.agent, id));
            }
        }
        first.addAll(otherAgentKeys);
        List<KeyFile> locked = new ArrayList<>();
        List<String> unusable = new ArrayList<>();
        for (KeyFile f : files) {
            if (f.unusable() != null) {
                unusable.add(f.path() + " (unusable: " + f.unusable() + ")");
            } else if (f.locked()) {
                locked.add(f);
            } else {
                first.add(fileMethod(client, f.path(), null));
            }
        }
        List<String> notSigned = new ArrayList<>();
        String ok = tryMethods(client, t, what, first, tried, notSigned);
        if (ok != null) return ok;
        // Keys with a passphrase last: asked for on the terminal (main thread, no echo), one at a time.
        Console console = terminal();
        List<Path> needAgent = new ArrayList<>();
        for (KeyFile f : locked) {
            if (console == null) {
                needAgent.add(f.path());
                continue;
            }
            AuthMethod m = fileMethod(client, f.path(), console);
            ok = tryMethods(client, t, what, List.of(m), tried, notSigned);
            if (ok != null) return ok;
        }
        if (!notSigned.isEmpty() && needAgent.isEmpty()) {
            throw SshException.auth("ssh-agent refused to sign with " + String.join(", ", notSigned)
                    + (tried.isEmpty() ? "" : "; " + what + " refused " + String.join(", ", tried))
                    + " — a key added with ssh-add -c needs its confirmation: confirm it in the agent's prompt, or add the key again without -c");
        }
        if (!needAgent.isEmpty()) {
            String keys = String.join(" ", needAgent.stream().map(Path::toString).toList());
            throw SshException.auth((tried.isEmpty() ? "" : what + " refused " + String.join(", ", tried) + "; ")
                    + keys + (needAgent.size() > 1 ? " are" : " is") + " protected by a passphrase and there is no terminal to ask for it"
                    + " — add it to your agent (ssh-add " + keys + ") and run again");
        }
        if (tried.isEmpty() && !unusable.isEmpty()) {
            throw SshException.auth("no usable SSH identity to log in to " + what + ": " + String.join(", ", unusable)
                    + " — check the key file, or load the key into ssh-agent (ssh-add)");
        }
        if (tried.isEmpty()) {
            throw SshException.auth("no SSH identity to log in to " + what + ": no agent key"
                    + (t.agentSocket() == null ? " (SSH_AUTH_SOCK is not set)" : "") + " and no key file"
                    + (t.identityFiles().isEmpty() ? " (none of ~/.ssh/id_rsa, id_ecdsa, id_ed25519 exists)"
                    : " (" + String.join(", ", t.identityFiles().stream().map(Path::toString).toList()) + " not found)")
                    + " — load your key into ssh-agent (ssh-add) or name it with IdentityFile / --identity FILE");
        }
        throw SshException.auth(what + " refused " + (tried.size() > 1 ? "our keys (" : "our key (") + String.join(", ", tried)
                + (unusable.isEmpty() ? "" : "; not tried: " + String.join(", ", unusable)) + ") — add the public key to ~" + t.user() + "/.ssh/authorized_keys there, or check the user (User / --user) and IdentityFile");
    }

    /** The terminal to ask a passphrase on, or null (JDK 22+ returns a Console even without one: ask isTerminal()). */
    private static Console terminal() {
        Console c = System.console();
        if (c == null) return null;
        try {
            return (Boolean) Console.class.getMethod("isTerminal").invoke(c) ? c : null;
        } catch (NoSuchMethodException e) {
            return c; // JDK 17-21: a Console exists only on a terminal
        } catch (ReflectiveOperationException e) {
            return null;
        }
    }

    /**
     * Tries the methods in order; returns the one that logged in (its description), or null when
     * all failed, each added to {@code refused} (by the server) or {@code notSigned} (by the agent).
     */
    private static String tryMethods(SSHClient client, SshTarget t, String what, List<AuthMethod> methods,
                                     List<String> refused, List<String> notSigned) {
        for (AuthMethod m : methods) {
            try {
                client.auth(t.user(), m);
                return m.toString();
            } catch (UserAuthException e) {
                // refused (or the key could not be used): next identity, as ssh does
                if (m instanceof AgentAuth a && a.signFailure() != null) {
                    notSigned.add(a + (a.signFailure().isEmpty() ? "" : " (" + a.signFailure() + ")"));
                } else {
                    refused.add(m.toString());
                }
            } catch (IOException e) {
                throw SshException.connect("SSH login to " + what + " failed (" + SshSession.reason(e) + ") — retry; if it persists check its sshd log");
            }
            if (!client.isConnected()) {
                throw SshException.connect("SSH login to " + what + " failed (the server closed the connection) — check its sshd log (MaxAuthTries?)");
            }
        }
        return null;
    }

    /** Reads what can be read without a passphrase: FILE.pub, else the private file if it is not encrypted. */
    private static KeyFile inspect(SSHClient client, Path p) {
        byte[] blob = null;
        Path pub = p.resolveSibling(p.getFileName() + ".pub");
        if (Files.isRegularFile(pub)) {
            try {
                String[] f = Files.readString(pub, StandardCharsets.UTF_8).strip().split("\\s+");
                byte[] b = Base64.getDecoder().decode(f[1]);
                new Buffer.PlainBuffer(b).readPublicKey();
                blob = b;
            } catch (IOException | RuntimeException e) {
                blob = null; // an unreadable .pub: fall back to the private file
            }
        }
        AtomicBoolean asked = new AtomicBoolean();
        try {
            KeyProvider kp = client.loadKeys(p.toString(), new PasswordFinder() {
                @Override
                public char[] reqPassword(Resource<?> resource) {
                    asked.set(true);
                    return null;
                }

                @Override
                public boolean shouldRetry(Resource<?> resource) {
                    return false;
                }
            });
            kp.getPrivate();
            if (blob == null) blob = KnownHosts.blob(kp.getPublic());
            return new KeyFile(p, blob, false, null);
        } catch (IOException | RuntimeException e) {
            return new KeyFile(p, blob, asked.get(), asked.get() ? null : SshSession.reason(e));
        }
    }

    /** sshj's publickey method for a key file; with a console, the passphrase is read there without echo (3 tries, as ssh). */
    private static AuthMethod fileMethod(SSHClient client, Path p, Console console) {
        int[] tries = {0};
        PasswordFinder finder = new PasswordFinder() {
            @Override
            public char[] reqPassword(Resource<?> resource) {
                tries[0]++;
                return console == null ? null : console.readPassword("Enter passphrase for key '%s': ", p);
            }

            @Override
            public boolean shouldRetry(Resource<?> resource) {
                return console != null && tries[0] < 3;
            }
        };
        try {
            KeyProvider kp = client.loadKeys(p.toString(), finder);
            if (console != null) kp.getPrivate(); // ask now, on this thread, not inside the SSH reader thread
            return new AuthPublickey(kp) {
                @Override
                public String toString() {
                    return "key file " + p;
                }
            };
        } catch (IOException e) {
            throw SshException.auth("cannot use the key " + p + " (" + SshSession.reason(e) + ")"
                    + (tries[0] > 0 ? " — wrong passphrase? add it to your agent with: ssh-add " + p : " — check the file or drop it from IdentityFile"));
        }
    }
}
