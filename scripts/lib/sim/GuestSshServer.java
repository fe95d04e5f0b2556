//DEPS org.apache.sshd:sshd-core:2.15.0
//SOURCES Fault.java

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.config.keys.PublicKeyEntry;
import org.apache.sshd.common.config.keys.writer.openssh.OpenSSHKeyPairResourceWriter;
import org.apache.sshd.common.keyprovider.KeyPairProvider;
import org.apache.sshd.server.Environment;
import org.apache.sshd.server.ExitCallback;
import org.apache.sshd.server.SshServer;
import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.command.Command;

/**
 * Stands in for the guest OS of the simulated VM: an SSH server (Apache MINA sshd) on 127.0.0.1
 * that accepts one user's public key and answers the commands verify runs — {@code lspci -nn},
 * {@code sudo -n lspci -nn}, {@code nvidia-smi -L} (and its {@code --query-gpu} form), and for
 * {@code verify --docker} {@code docker info --format '{{json .Runtimes}}'} and
 * {@code docker run --rm --gpus all IMAGE nvidia-smi -L} — the way an Ubuntu guest on KubeVirt
 * (aarch64 "virt" machine, virtio devices) with Docker and the NVIDIA Container Toolkit does.
 * Nothing else is executed: unknown commands answer bash's "command not found" unless
 * {@link Options#more} answers them (the node stand-in, NodeSshServer, uses that). Used by the
 * tests and by the sandbox.
 */
public final class GuestSshServer implements AutoCloseable {
    public static final String DEFAULT_USER = "kalmyk";
    public static final String RTX_3090 = "10de:2204";
    public static final String RTX_3090_AUDIO = "10de:1aef";

    /** lspci -nn text (class, name) of the vendor:device ids a hostDevice can put in the guest. */
    private static final Map<String, String> KNOWN = Map.of(
            RTX_3090, "VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204] (rev a1)",
            RTX_3090_AUDIO, "Audio device [0403]: NVIDIA Corporation GA102 High Definition Audio Controller [10de:1aef] (rev a1)",
            "10de:1e89", "VGA compatible controller [0300]: NVIDIA Corporation TU104 [GeForce RTX 2060] [10de:1e89] (rev a1)",
            "10de:10f8", "Audio device [0403]: NVIDIA Corporation TU104 HD Audio Controller [10de:10f8] (rev a1)");

    /** What the guest has besides passed-through devices (KubeVirt's virtio devices on PCIe root ports). */
    private static final List<String> VIRTIO = List.of(
            "Ethernet controller [0200]: Red Hat, Inc. Virtio 1.0 network device [1af4:1041] (rev 01)",
            "USB controller [0c03]: Red Hat, Inc. QEMU XHCI Host Controller [1b36:000d] (rev 01)",
            "SCSI storage controller [0100]: Red Hat, Inc. Virtio 1.0 SCSI [1af4:1048] (rev 01)",
            "Communication controller [0780]: Red Hat, Inc. Virtio 1.0 console [1af4:1043] (rev 01)",
            "SCSI storage controller [0100]: Red Hat, Inc. Virtio 1.0 block device [1af4:1042] (rev 01)",
            "Unclassified device [00ff]: Red Hat, Inc. Virtio 1.0 memory balloon [1af4:1045] (rev 01)",
            "Unclassified device [00ff]: Red Hat, Inc. Virtio 1.0 RNG [1af4:1044] (rev 01)");

    /** How the guest behaves; every switch is read again for each command (live). */
    public static final class Options {
        public String user = DEFAULT_USER;
        /** The one key in ~user/.ssh/authorized_keys. */
        public PublicKey authorizedKey;
        /** The guest's host key; generated (ECDSA P-256) when null. */
        public KeyPair hostKey;
        /** Faults in force (GUEST_NO_DEVICE, GUEST_SUDO_PASSWORD); the sandbox passes SimCluster::faults. */
        public Supplier<Set<Fault>> faults = Set::of;
        /** vendor:device ids passed through to the guest now, e.g. [10de:2204]; the sandbox reads the VMI. */
        public Supplier<List<String>> attached = () -> List.of(RTX_3090);
        /** Whether the NVIDIA driver (nvidia-smi) is installed in the guest. */
        public boolean nvidiaDriver = true;
        /** How long every command takes before answering (a hung guest). */
        public Duration commandDelay = Duration.ZERO;
        /** Whether Docker Engine is installed (and running) in the guest. */
        public boolean docker = true;
        /** Whether Docker's runtimes include nvidia (NVIDIA Container Toolkit installed and configured). */
        public boolean nvidiaRuntime = true;
        /** Answers for commands this guest does not know (null = "command not found"); read for each command. */
        public Function<String, Answer> more = command -> null;

        public Options authorizedKey(PublicKey key) {
            this.authorizedKey = key;
            return this;
        }

        public Options attached(String... ids) {
            List<String> fixed = List.of(ids);
            this.attached = () -> fixed;
            return this;
        }
    }

    private final Options options;
    private final SshServer server;
    private final KeyPair hostKey;
    private final List<String> commands = new CopyOnWriteArrayList<>();

    private GuestSshServer(Options options) throws IOException, GeneralSecurityException {
        if (options.authorizedKey == null) throw new IllegalArgumentException("the guest needs an authorized public key");
        this.options = options;
        this.hostKey = options.hostKey != null ? options.hostKey : generateHostKey();
        server = SshServer.setUpDefaultServer();
        server.setHost("127.0.0.1");
        server.setPort(0);
        server.setKeyPairProvider(KeyPairProvider.wrap(hostKey));
        server.setPublickeyAuthenticator((user, key, session) ->
                options.user.equals(user) && KeyUtils.compareKeys(options.authorizedKey, key));
        server.setPasswordAuthenticator(null);
        server.setKeyboardInteractiveAuthenticator(null);
        server.setCommandFactory((channel, command) -> new GuestCommand(command));
        server.start();
    }

    public static GuestSshServer start(Options options) {
        try {
            return new GuestSshServer(options);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static KeyPair generateHostKey() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    public String host() {
        return "127.0.0.1";
    }

    public int port() {
        return server.getPort();
    }

    public PublicKey hostPublicKey() {
        return hostKey.getPublic();
    }

    /** This server's line for a known_hosts file: {@code [127.0.0.1]:PORT ecdsa-sha2-nistp256 AAAA...}. */
    public String knownHostsLine() {
        return "[" + host() + "]:" + port() + " " + PublicKeyEntry.toString(hostKey.getPublic());
    }

    /**
     * Writes a user key pair as OpenSSH files {@code file} (private, mode 600) and {@code file.pub},
     * as ssh-keygen would: the identity a client presents to this guest.
     */
    public static Path writeIdentity(Path file, KeyPair kp, String comment) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            OpenSSHKeyPairResourceWriter.INSTANCE.writePrivateKey(kp, comment, null, out);
        } catch (GeneralSecurityException e) {
            throw new IOException(e);
        }
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not POSIX: the file stays in the caller's private directory
        }
        Files.writeString(file.resolveSibling(file.getFileName() + ".pub"), PublicKeyEntry.toString(kp.getPublic()) + " " + comment + "\n");
        return file;
    }

    /** A new Ed25519 user key pair. */
    public static KeyPair newUserKey() {
        try {
            return KeyUtils.generateKeyPair("ssh-ed25519", 256);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Every command line received, in order. */
    public List<String> commands() {
        return List.copyOf(commands);
    }

    /** The guest's {@code lspci -nn} output for the given passed-through ids (each on its own root port, as KubeVirt places them). */
    public static String lspci(List<String> attached) {
        List<String> lines = new ArrayList<>();
        lines.add("00:00.0 Host bridge [0600]: Red Hat, Inc. QEMU PCIe Host bridge [1b36:0008]");
        int ports = attached.size() + VIRTIO.size();
        for (int i = 0; i < ports; i++) {
            lines.add(String.format("00:%02x.%d PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c]", 1 + i / 8, i % 8));
        }
        int bus = 1;
        for (String id : attached) {
            String text = KNOWN.getOrDefault(id, "Non-VGA unclassified device [0000]: Device [" + id + "]");
            lines.add(String.format("%02x:00.0 %s", bus++, text));
        }
        for (String text : VIRTIO) lines.add(String.format("%02x:00.0 %s", bus++, text));
        return String.join("\n", lines) + "\n";
    }

    /** The ids the guest sees now: the attached ones, minus NVIDIA's under GUEST_NO_DEVICE. */
    private List<String> visible() {
        List<String> ids = new ArrayList<>(options.attached.get());
        if (options.faults.get().contains(Fault.GUEST_NO_DEVICE)) ids.removeIf(id -> id.startsWith("10de:"));
        return ids;
    }

    /** How a command ended: exit status, stdout, stderr. */
    public record Answer(int exit, String out, String err) {}

    private static final Pattern DOCKER_RUN_GPU = Pattern.compile("docker run --rm --gpus all (\\S+) nvidia-smi -L");

    private Answer answer(String command) {
        String cmd = command.trim().replaceAll("\\s+", " ");
        switch (cmd) {
            case "lspci -nn":
                return new Answer(0, lspci(visible()), "");
            case "sudo -n lspci -nn":
                if (options.faults.get().contains(Fault.GUEST_SUDO_PASSWORD)) {
                    return new Answer(1, "", "sudo: a password is required\n");
                }
                return new Answer(0, lspci(visible()), "");
            case "nvidia-smi -L":
                if (!options.nvidiaDriver) return notFound("nvidia-smi");
                return nvidiaSmi(false);
            case "nvidia-smi --query-gpu=pci.device_id,pci.bus_id,name --format=csv,noheader":
                if (!options.nvidiaDriver) return notFound("nvidia-smi");
                return nvidiaSmi(true);
            case "docker info --format '{{json .Runtimes}}'":
                if (!options.docker) return notFound("docker");
                return new Answer(0, "{\"io.containerd.runc.v2\":{\"path\":\"runc\"}," + (nvidiaRuntime()
                        ? "\"nvidia\":{\"path\":\"nvidia-container-runtime\"}," : "") + "\"runc\":{\"path\":\"runc\"}}\n", "");
            default:
                Matcher run = DOCKER_RUN_GPU.matcher(cmd);
                if (run.matches()) return dockerRunGpus(run.group(1));
                Answer more = options.more.apply(command);
                return more != null ? more : notFound(cmd.split(" ")[0]);
        }
    }

    /** Docker's runtimes include nvidia: the toolkit is installed and no NO_NVIDIA_RUNTIME fault is on. */
    private boolean nvidiaRuntime() {
        return options.nvidiaRuntime && !options.faults.get().contains(Fault.NO_NVIDIA_RUNTIME);
    }

    /** nvidia-smi as the NVIDIA driver answers it: -L lines, or the CSV of --query-gpu=pci.device_id,pci.bus_id,name. */
    private Answer nvidiaSmi(boolean csv) {
        List<String> gpus = visible().stream().filter(RTX_3090::equals).toList();
        if (gpus.isEmpty()) return new Answer(6, "No devices were found\n", "");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < gpus.size(); i++) {
            if (csv) sb.append("0x220410DE, 00000000:").append(String.format("%02X", i + 1)).append(":00.0, NVIDIA GeForce RTX 3090\n");
            else sb.append("GPU ").append(i).append(": NVIDIA GeForce RTX 3090 (UUID: GPU-5f0c2a4e-8b1d-3c7e-9a26-41d7e0b3c9f").append(i).append(")\n");
        }
        return new Answer(0, sb.toString(), "");
    }

    /** `docker run --rm --gpus all IMAGE nvidia-smi -L` with Docker's own errors when a piece is missing (any image "pulls"). */
    private Answer dockerRunGpus(String image) {
        if (!options.docker) return notFound("docker");
        if (!nvidiaRuntime()) {
            return new Answer(125, "", "docker: Error response from daemon: could not select device driver \"\" with capabilities: [[gpu]].\n");
        }
        if (!options.nvidiaDriver) {
            return new Answer(125, "", "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed:"
                    + " runc create failed: unable to start container process: error during container init: error running hook #0: error running hook:"
                    + " exit status 1, stdout: , stderr: nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown.\n");
        }
        return nvidiaSmi(false);
    }

    private static Answer notFound(String program) {
        return new Answer(127, "", "bash: line 1: " + program + ": command not found\n");
    }

    /** One exec request, answered on its own thread so a slow guest never blocks the server. */
    private final class GuestCommand implements Command {
        private final String command;
        private OutputStream out;
        private OutputStream err;
        private ExitCallback exit;
        private Thread worker;

        GuestCommand(String command) {
            this.command = command;
        }

        @Override public void setInputStream(java.io.InputStream in) {}
        @Override public void setOutputStream(OutputStream out) { this.out = out; }
        @Override public void setErrorStream(OutputStream err) { this.err = err; }
        @Override public void setExitCallback(ExitCallback callback) { this.exit = callback; }

        @Override
        public void start(ChannelSession channel, Environment env) {
            commands.add(command);
            worker = new Thread(() -> {
                try {
                    if (!options.commandDelay.isZero()) Thread.sleep(options.commandDelay.toMillis());
                    Answer a = answer(command);
                    out.write(a.out().getBytes(StandardCharsets.UTF_8));
                    out.flush();
                    err.write(a.err().getBytes(StandardCharsets.UTF_8));
                    err.flush();
                    exit.onExit(a.exit());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (IOException e) {
                    exit.onExit(255, e.toString());
                }
            }, "guest-command");
            worker.setDaemon(true);
            worker.start();
        }

        @Override
        public void destroy(ChannelSession channel) {
            if (worker != null) worker.interrupt();
        }
    }

    @Override
    public void close() {
        try {
            server.stop(true);
        } catch (IOException ignored) {
            // stopping anyway
        }
    }
}
