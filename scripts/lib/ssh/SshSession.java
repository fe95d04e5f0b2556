//DEPS com.hierynomus:sshj:0.40.0
//SOURCES ../cli/Cli.java SshException.java SshConfig.java SshTarget.java KnownHosts.java SshLogin.java

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.Timer;
import java.util.TimerTask;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

import net.schmizz.sshj.DefaultConfig;
import net.schmizz.sshj.SSHClient;
import net.schmizz.sshj.common.KeyType;
import net.schmizz.sshj.connection.ConnectionException;
import net.schmizz.sshj.connection.channel.direct.DirectConnection;
import net.schmizz.sshj.connection.channel.direct.Session;
import net.schmizz.sshj.transport.verification.HostKeyVerifier;

/**
 * An SSH login to a {@link SshTarget}, through its ProxyJump hops (each an sshj direct-tcpip
 * channel of the previous hop), as {@code ssh target 'command'} does: host keys checked against
 * known_hosts at every hop (unknown refused unless accept-new; changed or revoked always
 * refused); identities as OpenSSH orders them — agent keys matching an IdentityFile, other agent
 * keys (unless IdentitiesOnly), then the remaining key files; a passphrase asked on the terminal
 * without echo, never printed. Every failure is an {@link SshException}.
 *
 * <pre>{@code
 * SshConfig config = SshConfig.standard(sshConfigFlag);          // -F FILE, else ~/.ssh/config + /etc/ssh/ssh_config
 * SshTarget target = SshTarget.resolve(config, "harv-node-1",    // a Host alias when a block matches it ...
 *         internalIp, "node InternalIP", "rancher",              // ... else this address; default user
 *         new SshTarget.Overrides(userFlag, null, List.of(), null, false, null, System.getenv()));
 * try (SshSession ssh = SshSession.open(target, "node", note -> stderr.println("diagnose: " + note))) {
 *     SshSession.Result r = ssh.run("cat /proc/cmdline", Duration.ofSeconds(10));  // exit, out, err
 * } catch (SshException e) {
 *     // e.exit: SSH_CONNECT 21, SSH_AUTH 22, SSH_HOST_KEY 23, USAGE 2 (bad ssh_config), TIMEOUT 9 (run)
 * }
 * }</pre>
 */
public final class SshSession implements AutoCloseable {

    /** A finished remote command. */
    public record Result(int exit, String out, String err) {}

    /** One connected hop. */
    private record Hop(SshTarget target, SSHClient client, Verifier verifier, String auth) {}

    private final List<Hop> hops;
    private final String role;

    private SshSession(List<Hop> hops, String role) {
        this.hops = hops;
        this.role = role;
    }

    /**
     * Connects every hop of {@code target.route()}, verifies each host key and logs in.
     * {@code role} names the far end in messages ("guest", "node"); {@code notes} receives
     * one-line notes and warnings (config warnings, an unreachable agent, a recorded key).
     */
    public static SshSession open(SshTarget target, String role, Consumer<String> sink) {
        Set<String> said = new HashSet<>();
        Consumer<String> notes = line -> {
            if (said.add(line)) sink.accept(line); // each hop reads the same files: say each thing once
        };
        target.route().stream().flatMap(t -> t.warnings().stream()).forEach(w -> notes.accept("warning: " + w));
        List<Hop> hops = new ArrayList<>();
        try {
            for (SshTarget t : target.route()) {
                hops.add(connect(t, hops.isEmpty() ? null : hops.get(hops.size() - 1), t == target, role, notes));
            }
        } catch (RuntimeException e) {
            for (int i = hops.size() - 1; i >= 0; i--) closeQuietly(hops.get(i).client());
            throw e;
        }
        return new SshSession(hops, role);
    }

    public SshTarget target() {
        return last().target();
    }

    /** SHA256 fingerprint of the far end's host key, as ssh-keygen -l prints it, e.g. {@code ED25519 SHA256:...}. */
    public String hostKeyFingerprint() {
        Verifier v = last().verifier();
        return KnownHosts.typeName(KeyType.fromKey(v.seen).toString()) + " " + KnownHosts.fingerprint(v.seen);
    }

    /** True when this login recorded the far end's key (accept-new). */
    public boolean hostKeyRecorded() {
        return last().verifier().recorded != null;
    }

    /** The known_hosts line that vouched for (or now records) the far end's key, e.g. {@code /home/u/.ssh/known_hosts:3}. */
    public String hostKeyEntry() {
        Verifier v = last().verifier();
        KnownHosts.Entry e = v.recorded != null ? v.recorded : v.matched;
        return e == null ? null : e.where();
    }

    /** The identity the far end accepted, e.g. {@code agent key ED25519 SHA256:... (me@laptop)} or {@code key file /home/u/.ssh/id_ed25519}. */
    public String authenticatedWith() {
        return last().auth();
    }

    /** The hops dialled before the far end, as user@host[:port], in order (empty when direct). */
    public List<String> via() {
        return hops.subList(0, hops.size() - 1).stream().map(h -> h.target().display()).toList();
    }

    private Hop last() {
        return hops.get(hops.size() - 1);
    }

    private static Hop connect(SshTarget t, Hop via, boolean farEnd, String role, Consumer<String> notes) {
        String what = farEnd ? role + " " + t.display() : "jump host " + t.name() + " (" + t.display() + ")";
        KnownHosts known = KnownHosts.load(t.knownHostsFiles(), t.globalKnownHostsFiles());
        known.warnings().forEach(w -> notes.accept("warning: " + w));
        Verifier verifier = new Verifier(t, known);
        SSHClient client = new SSHClient(new DefaultConfig());
        int ms = (int) Math.max(1, t.connectTimeout().toMillis());
        client.setConnectTimeout(ms);
        client.getTransport().setTimeoutMs(ms);
        client.getConnection().setTimeoutMs(ms);
        client.addHostKeyVerifier(verifier);
        // sshj bounds the TCP connect and the key exchange, not the wait for the server's greeting:
        // a server that accepts and stays silent would hang us, so connecting has a deadline.
        AtomicBoolean expired = new AtomicBoolean();
        Timer watchdog = new Timer("ssh-connect-timeout", true);
        watchdog.schedule(new TimerTask() {
            @Override
            public void run() {
                expired.set(true);
                closeQuietly(client);
                try {
                    if (client.getSocket() != null) client.getSocket().close();
                } catch (IOException ignored) {
                    // closing anyway
                }
            }
        }, ms);
        try {
            if (via == null) {
                client.connect(t.host(), t.port());
            } else {
                DirectConnection channel;
                try {
                    channel = via.client().newDirectConnection(t.host(), t.port());
                } catch (IOException e) {
                    throw SshException.connect("jump host " + via.target().name() + " (" + via.target().display() + ") cannot reach "
                            + t.host() + " port " + t.port() + " (" + reason(e) + ") — is the " + (farEnd ? role : "next hop")
                            + " up, and is its address right as seen from the jump host? (" + t.source() + ")");
                }
                client.connectVia(channel);
            }
        } catch (SshException e) {
            closeQuietly(client);
            throw e;
        } catch (IOException e) {
            closeQuietly(client);
            if (verifier.problem != null) throw verifier.error(farEnd ? role : "jump host");
            throw SshException.connect("cannot connect to " + (farEnd ? "" : "jump host " + t.name() + ", ") + t.host() + " port " + t.port()
                    + " (" + (expired.get() ? "no SSH greeting within " + t.connectTimeout().toSeconds() + " s" : reason(e)) + ")"
                    + " — is the " + (farEnd ? role : "jump host") + " up and sshd running, and is the address right? (from " + t.source() + ")");
        } finally {
            watchdog.cancel();
        }
        if (expired.get()) {
            closeQuietly(client);
            throw SshException.connect("SSH connection to " + what + " not set up within " + t.connectTimeout().toSeconds()
                    + " s — is it overloaded? raise the connect timeout (--connect-timeout or ConnectTimeout)");
        }
        // Each hop has its own IdentityAgent; the agent is needed only while logging in.
        try (SshAgentConnection agent = SshAgentConnection.open(t.agentSocket(), notes)) {
            String auth = SshLogin.authenticate(client, t, what, agent);
            return new Hop(t, client, verifier, auth);
        } catch (RuntimeException e) {
            closeQuietly(client);
            throw e;
        }
    }

    /** Runs one command on the far end; a command still running after the timeout ends the connection. */
    public Result run(String command, Duration timeout) {
        SSHClient client = last().client();
        String where = role + " " + target().display();
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            Session session = client.startSession();
            Session.Command cmd = session.exec(command);
            CompletableFuture<byte[]> out = readAll(cmd.getInputStream());
            CompletableFuture<byte[]> err = readAll(cmd.getErrorStream());
            try {
                byte[] o = out.get(remaining(deadline), TimeUnit.NANOSECONDS);
                byte[] e = err.get(remaining(deadline), TimeUnit.NANOSECONDS);
                cmd.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(remaining(deadline))), TimeUnit.MILLISECONDS);
                Integer exit = cmd.getExitStatus();
                session.close();
                return new Result(exit == null ? -1 : exit, new String(o, StandardCharsets.UTF_8), new String(e, StandardCharsets.UTF_8));
            } catch (TimeoutException | ConnectionException te) {
                close(); // a hung command: drop the connection rather than wait for a polite close
                throw new SshException(Cli.Exit.TIMEOUT, "`" + command + "` did not finish within " + timeout.toSeconds()
                        + " s in the " + where + " — the " + role + " may be overloaded; raise --command-timeout");
            }
        } catch (IOException | ExecutionException e) {
            close();
            throw SshException.connect("SSH connection to " + where + " broke while running `" + command + "` (" + reason(e) + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SshException(Cli.Exit.INTERNAL, "interrupted");
        }
    }

    @Override
    public void close() {
        for (int i = hops.size() - 1; i >= 0; i--) closeQuietly(hops.get(i).client());
    }

    static void closeQuietly(SSHClient client) {
        try {
            client.disconnect();
        } catch (IOException | RuntimeException ignored) {
            // closing anyway
        }
    }

    private static long remaining(long deadline) {
        return Math.max(0, deadline - System.nanoTime());
    }

    private static CompletableFuture<byte[]> readAll(InputStream in) {
        CompletableFuture<byte[]> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                ByteArrayOutputStream buf = new ByteArrayOutputStream();
                in.transferTo(buf);
                f.complete(buf.toByteArray());
            } catch (IOException e) {
                f.completeExceptionally(e);
            }
        }, "ssh-read");
        t.setDaemon(true);
        t.start();
        return f;
    }

    static String reason(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        if (root instanceof ConnectException) return "connection refused";
        if (root instanceof SocketTimeoutException) return "timed out";
        if (root instanceof UnknownHostException) return "unknown host " + root.getMessage();
        if (root instanceof NoRouteToHostException) return "no route to host";
        String m = root.getMessage();
        return m == null || m.isBlank() ? root.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    /** Host key check of one hop against its known_hosts files, recording why a key was refused. */
    static final class Verifier implements HostKeyVerifier {
        private final SshTarget target;
        private final KnownHosts known;
        PublicKey seen;
        String problem; // unknown, changed, revoked
        KnownHosts.Entry matched;
        KnownHosts.Entry recorded;

        Verifier(SshTarget target, KnownHosts known) {
            this.target = target;
            this.known = known;
        }

        @Override
        public boolean verify(String hostname, int port, PublicKey key) {
            seen = key;
            KnownHosts.Check c = known.check(target.hostKeyName(), key);
            matched = c.entry();
            switch (c.verdict()) {
                case KNOWN -> {
                    return true;
                }
                case UNKNOWN -> {
                    if (!target.acceptNew()) {
                        problem = "unknown";
                        return false;
                    }
                    recorded = known.record(target.hostKeyName(), key, target.hashKnownHosts());
                    return true;
                }
                case CHANGED -> problem = "changed";
                case REVOKED -> problem = "revoked";
            }
            return false;
        }

        @Override
        public List<String> findExistingAlgorithms(String hostname, int port) {
            return known.knownTypes(target.hostKeyName());
        }

        SshException error(String role) {
            String name = target.hostKeyName();
            String fp = KnownHosts.typeName(KeyType.fromKey(seen).toString()) + " key " + KnownHosts.fingerprint(seen);
            String files = String.join(", ", target.knownHostsFiles().stream().map(Path::toString).toList());
            return switch (problem) {
                case "changed" -> SshException.hostKey("HOST KEY CHANGED for " + name + ": " + matched.file() + " line " + matched.line()
                        + " has a different key than the one offered (" + fp + ") — refusing to connect (possible man-in-the-middle);"
                        + " if the " + role + " was reinstalled, remove the old key with: ssh-keygen -R '" + name + "' -f " + matched.file());
                case "revoked" -> SshException.hostKey("host key of " + name + " (" + fp + ") is marked @revoked in " + matched.where()
                        + " — refusing to connect; ask whoever runs the " + role + " for its current host key");
                default -> SshException.hostKey("host key of " + name + " is not in " + (files.isEmpty() ? "any known_hosts file" : files)
                        + " (offered " + fp + ") — compare it with the " + role + "'s (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on its console),"
                        + " then re-run with --accept-new to record it");
            };
        }
    }
}
