import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Debian's real OpenSSH for tests: {@code sshd} on 127.0.0.1 (a guest whose commands run with
 * fake tools first in PATH, or a bastion that forwards), {@code ssh-agent} on a socket in a temp
 * directory, and {@code ssh-keygen}. Everything lives in the caller's temp directory; nothing
 * reads or writes the real ~/.ssh. .ci/run installs openssh-server and openssh-client.
 */
public final class OpenSsh {
    private OpenSsh() {}

    static final Path SSHD = Path.of("/usr/sbin/sshd");

    /** Fails the test (not skips it) when OpenSSH is missing: the suite needs it. */
    static void require() {
        for (String tool : List.of("/usr/sbin/sshd", "/usr/bin/ssh-agent", "/usr/bin/ssh-add", "/usr/bin/ssh-keygen")) {
            if (!Files.isExecutable(Path.of(tool))) {
                throw new AssertionError(tool + " is missing — install Debian's OpenSSH: apt-get install -y openssh-server openssh-client");
            }
        }
    }

    /** ssh-keygen -t TYPE -N PASSPHRASE -C COMMENT -f FILE (empty passphrase: unencrypted). */
    public static Path keygen(Path file, String type, String passphrase, String comment) {
        require();
        List<String> cmd = new ArrayList<>(List.of("ssh-keygen", "-q", "-t", type, "-N", passphrase, "-C", comment, "-f", file.toString()));
        if (type.equals("rsa")) cmd.addAll(List.of("-b", "2048"));
        exec(Map.of(), cmd);
        return file;
    }

    /** ssh-keygen -H: hashes every host name in a known_hosts file, as HashKnownHosts yes files look. */
    public static void hashKnownHosts(Path file) {
        exec(Map.of(), List.of("ssh-keygen", "-q", "-H", "-f", file.toString()));
        try {
            Files.deleteIfExists(file.resolveSibling(file.getFileName() + ".old"));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** ssh-keygen -F NAME -f FILE: OpenSSH's own lookup; the matching lines, or "" when none. */
    public static String findHost(Path file, String name) {
        ProcessResult r = run(Map.of(), List.of("ssh-keygen", "-F", name, "-f", file.toString()));
        return r.exit() == 0 ? r.out() : "";
    }

    /** The current user: tests log in as themselves (root in CI) with key auth. */
    public static String user() {
        return System.getProperty("user.name");
    }

    /** A running sshd on 127.0.0.1. */
    public static final class Sshd implements AutoCloseable {
        private final Path dir;
        private final Process process;
        private final int port;

        private Sshd(Path dir, Process process, int port) {
            this.dir = dir;
            this.process = process;
            this.port = port;
        }

        /**
         * A guest: the client's commands run through a ForceCommand wrapper that logs them and
         * puts {@code dir/bin} first in PATH, so the given fake tools (name → sh script body)
         * answer instead of the real ones, whatever the login shell's rc files do.
         */
        public static Sshd guest(Path dir, List<Path> authorizedPublicKeys, Map<String, String> fakeTools) {
            return start(dir, authorizedPublicKeys, fakeTools, true, List.of("ed25519"));
        }

        /** A guest offering host keys of these types (ed25519, ecdsa, rsa), e.g. to test a known_hosts that holds only one. */
        public static Sshd guest(Path dir, List<Path> authorizedPublicKeys, Map<String, String> fakeTools, List<String> hostKeyTypes) {
            return start(dir, authorizedPublicKeys, fakeTools, true, hostKeyTypes);
        }

        /** A bastion: logs in the same keys and forwards (direct-tcpip); logs at DEBUG1 so tests can see the forwarding. */
        public static Sshd bastion(Path dir, List<Path> authorizedPublicKeys) {
            return start(dir, authorizedPublicKeys, Map.of(), false, List.of("ed25519"));
        }

        private static Sshd start(Path dir, List<Path> authorizedPublicKeys, Map<String, String> fakeTools, boolean guest,
                                  List<String> hostKeyTypes) {
            require();
            try {
                Files.createDirectories(dir);
                Files.createDirectories(Path.of("/run/sshd")); // sshd's privilege-separation directory
                StringBuilder hostKeys = new StringBuilder();
                for (String type : hostKeyTypes) {
                    Path hostKey = dir.resolve("ssh_host_" + type + "_key");
                    if (!Files.exists(hostKey)) keygen(hostKey, type, "", "host");
                    hostKeys.append("HostKey ").append(hostKey).append('\n');
                }
                StringBuilder keys = new StringBuilder();
                for (Path pub : authorizedPublicKeys) keys.append(Files.readString(pub, StandardCharsets.UTF_8).strip()).append('\n');
                Files.writeString(dir.resolve("authorized_keys"), keys.toString());
                Path bin = Files.createDirectories(dir.resolve("bin"));
                for (Map.Entry<String, String> tool : fakeTools.entrySet()) {
                    script(bin.resolve(tool.getKey()), "#!/bin/sh\n" + tool.getValue() + "\n");
                }
                Path wrapper = script(dir.resolve("force-command"), """
                        #!/bin/sh
                        # Logs the client's command, then runs it with the fake tools first in PATH.
                        printf '%%s\\n' "$SSH_ORIGINAL_COMMAND" >> %s
                        PATH=%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
                        export PATH
                        exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
                        """.formatted(dir.resolve("commands.log"), bin));
                Path config = dir.resolve("sshd_config");
                Files.writeString(config, """
                        ListenAddress 127.0.0.1
                        %sPidFile %s
                        AuthorizedKeysFile %s
                        PermitRootLogin prohibit-password
                        PasswordAuthentication no
                        KbdInteractiveAuthentication no
                        UsePAM no
                        StrictModes no
                        AllowTcpForwarding yes
                        LogLevel %s
                        %s
                        """.formatted(hostKeys, dir.resolve("sshd.pid"), dir.resolve("authorized_keys"),
                        guest ? "VERBOSE" : "DEBUG1", guest ? "ForceCommand " + wrapper : ""));
                int port = freePort();
                ProcessBuilder pb = new ProcessBuilder(SSHD.toString(), "-D", "-e", "-f", config.toString(), "-p", String.valueOf(port));
                pb.redirectErrorStream(true).redirectOutput(dir.resolve("sshd.log").toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
                Process p = pb.start();
                Sshd sshd = new Sshd(dir, p, port);
                sshd.awaitListening();
                return sshd;
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        private void awaitListening() {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) throw new AssertionError("sshd exited " + process.exitValue() + ":\n" + log());
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                    return;
                } catch (IOException e) {
                    sleep(50);
                }
            }
            throw new AssertionError("sshd did not listen on 127.0.0.1:" + port + ":\n" + log());
        }

        public String host() {
            return "127.0.0.1";
        }

        public int port() {
            return port;
        }

        public Path hostPublicKey() {
            return hostPublicKey("ed25519");
        }

        public Path hostPublicKey(String type) {
            return dir.resolve("ssh_host_" + type + "_key.pub");
        }

        /** The known_hosts line for this server's ed25519 key, plain: {@code [127.0.0.1]:PORT ssh-ed25519 AAAA...}. */
        public String knownHostsLine() {
            return knownHostsLine("ed25519");
        }

        public String knownHostsLine(String type) {
            try {
                String[] pub = Files.readString(hostPublicKey(type), StandardCharsets.UTF_8).strip().split("\\s+");
                return "[" + host() + "]:" + port + " " + pub[0] + " " + pub[1];
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        /** The commands clients ran (guest only), in order. */
        public List<String> commands() {
            try {
                Path log = dir.resolve("commands.log");
                return Files.exists(log) ? Files.readAllLines(log) : List.of();
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        /** sshd's own log (stderr, -e). */
        public String log() {
            try {
                return Files.readString(dir.resolve("sshd.log"), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "";
            }
        }

        @Override
        public void close() {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** A running ssh-agent (foreground, -D) on a socket in the test's directory. */
    public static final class Agent implements AutoCloseable {
        private final Path dir;
        private final Path socket;
        private final Process process;

        private Agent(Path dir, Path socket, Process process) {
            this.dir = dir;
            this.socket = socket;
            this.process = process;
        }

        public static Agent start(Path dir) {
            require();
            try {
                Files.createDirectories(dir);
                Path socket = dir.resolve("agent.sock");
                ProcessBuilder pb = new ProcessBuilder("ssh-agent", "-D", "-a", socket.toString());
                pb.redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
                Process p = pb.start();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!Files.exists(socket)) {
                    if (!p.isAlive() || System.nanoTime() > deadline) {
                        throw new AssertionError("ssh-agent did not start: " + Files.readString(dir.resolve("agent.log")));
                    }
                    sleep(20);
                }
                return new Agent(dir, socket, p);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        public Path socket() {
            return socket;
        }

        /** ssh-add KEY, answering the passphrase through SSH_ASKPASS (SSH_ASKPASS_REQUIRE=force), as a desktop session would. */
        public void add(Path key, String passphrase) {
            add(key, passphrase, List.of());
        }

        /** ssh-add with options, e.g. -c (confirm each use: this agent has no askpass, so it refuses to sign). */
        public void add(Path key, String passphrase, List<String> options) {
            try {
                Path askpass = script(dir.resolve("askpass-" + key.getFileName()), "#!/bin/sh\nprintf '%s\\n' '" + passphrase + "'\n");
                Map<String, String> env = new LinkedHashMap<>();
                env.put("SSH_AUTH_SOCK", socket.toString());
                env.put("SSH_ASKPASS", askpass.toString());
                env.put("SSH_ASKPASS_REQUIRE", "force");
                env.put("DISPLAY", ":0");
                List<String> cmd = new ArrayList<>(List.of("ssh-add"));
                cmd.addAll(options);
                cmd.add(key.toString());
                exec(env, cmd);
                Files.delete(askpass);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        /** ssh-add -L: the public keys the agent holds. */
        public List<String> list() {
            ProcessResult r = run(Map.of("SSH_AUTH_SOCK", socket.toString()), List.of("ssh-add", "-L"));
            return r.exit() == 0 ? r.out().lines().toList() : List.of();
        }

        @Override
        public void close() {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    record ProcessResult(int exit, String out) {}

    static ProcessResult run(Map<String, String> env, List<String> cmd) {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().remove("SSH_AUTH_SOCK");
        pb.environment().putAll(env);
        try {
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + cmd);
            }
            return new ProcessResult(p.exitValue(), out);
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    static String exec(Map<String, String> env, List<String> cmd) {
        ProcessResult r = run(env, cmd);
        if (r.exit() != 0) throw new AssertionError(String.join(" ", cmd) + " exited " + r.exit() + ": " + r.out());
        return r.out();
    }

    static Path script(Path file, String text) throws IOException {
        Files.writeString(file, text);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
        return file;
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
