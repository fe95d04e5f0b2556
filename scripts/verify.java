///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Prove the device is visible inside the guest: lspci -nn over SSH with verified host keys
//SOURCES lib/Cli.java lib/Kube.java lib/Harvester.java lib/KubeVirt.java lib/Render.java lib/GuestSsh.java lib/cli/Names.java

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Replaces the runbook's "validate inside the VM" step (ssh kalmyk@vm; sudo lspci -nn | grep -i nvidia):
 * checks the VMI runs with the host device, SSHes into the guest with a verified host key, and
 * passes only if the device's vendor:device id shows in the guest's lspci -nn.
 */
@Command(name = "verify", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Check that a VM's passed-through PCI device is visible inside the guest.",
                "Reads the running VMI's hostDevices, SSHes into the guest (key files only,",
                "host key checked against known_hosts) and looks for each device's",
                "vendor:device id in `lspci -nn`."},
        footer = {"", "Exit codes: 0 visible, 20 VM not running with the device,",
                "21 cannot connect, 22 key refused, 23 host key unknown or changed,",
                "24 device not visible in the guest, 25 sudo needs a password,",
                "8 lspci missing (or the driver, with --require-driver), 9 timeout."})
public class verify implements Cli.Command {
    /** `01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204] (rev a1)` */
    static final Pattern LSPCI_LINE = Pattern.compile(
            "^(\\S+) (.+?) \\[([0-9a-fA-F]{4})\\]: (.*) \\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\\](?: \\(rev ([0-9a-fA-F]{2})\\))?.*$");
    /** `GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-...)` */
    static final Pattern NVIDIA_SMI_LINE = Pattern.compile("^GPU (\\d+): (.+?) \\(UUID: ([^)]+)\\)$");
    static final String NVIDIA = "10de";

    @Mixin Kube.Options kube;
    @Mixin Cli.OutputOptions out;
    @Mixin Cli.VerboseOption verbose;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "VM", description = "Name of the VirtualMachine (its running instance is checked)")
    String vmName;

    @Option(names = "--device", paramLabel = "NAME", description = "Only this hostDevice entry (its name, e.g. altra-000c01000)")
    String device;

    @Option(names = "--device-name", paramLabel = "RESOURCE", description = "Only hostDevices with this resource (deviceName, e.g. nvidia.com/GA102_GEFORCE_RTX_3090)")
    String deviceName;

    @Option(names = "--any-nvidia", description = "Pass if any NVIDIA (10de) device is visible, whatever its device id")
    boolean anyNvidia;

    @Option(names = "--host", paramLabel = "HOST", description = "Guest address or ~/.ssh/config Host (default: the VMI's IP address)")
    String host;

    @Option(names = "--user", paramLabel = "USER", description = "Guest user (default: ~/.ssh/config User, else your user name)")
    String user;

    @Option(names = "--port", paramLabel = "PORT", description = "Guest SSH port (default: ~/.ssh/config Port, else 22)")
    Integer port;

    @Option(names = {"-i", "--identity"}, paramLabel = "FILE", description = "Private key file (repeatable; default: ~/.ssh/config IdentityFile, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa). No ssh-agent is used.")
    List<Path> identities = new ArrayList<>();

    @Option(names = "--ssh-config", paramLabel = "FILE", description = "OpenSSH client config to read Host/HostName/User/Port/IdentityFile from (default: ~/.ssh/config)")
    Path sshConfig;

    @Option(names = "--known-hosts", paramLabel = "FILE", description = "known_hosts file (default: ~/.ssh/known_hosts)")
    Path knownHosts;

    @Option(names = "--accept-new", description = "Record the host key of a guest not yet in known_hosts (like StrictHostKeyChecking=accept-new); a changed key is still refused")
    boolean acceptNew;

    @Option(names = "--sudo", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Run lspci through `sudo -n` as the runbook does (default: on; --no-sudo runs plain lspci -nn)")
    boolean sudo;

    @Option(names = "--nvidia-smi", description = "Also run `nvidia-smi -L` and report the driver's view (a missing driver is a WARN)")
    boolean nvidiaSmi;

    @Option(names = "--require-driver", description = "Fail (exit 8) when the NVIDIA driver is missing or sees no GPU; implies --nvidia-smi")
    boolean requireDriver;

    @Option(names = "--connect-timeout", paramLabel = "SECONDS", defaultValue = "10", description = "SSH connect and login timeout (default: ${DEFAULT-VALUE})")
    int connectTimeout;

    @Option(names = "--command-timeout", paramLabel = "SECONDS", defaultValue = "30", description = "Timeout of each command in the guest (default: ${DEFAULT-VALUE})")
    int commandTimeout;

    public static void main(String... args) {
        Cli.main(new verify(), args);
    }

    /** A hostDevice of the VMI that is a Harvester PCIDevice, with the id the guest should show. */
    record Expected(String name, String resourceName, String vendorDevice, String pciDevice) {}

    /** One parsed `lspci -nn` line. */
    record GuestDevice(String slot, String className, String classId, String description, String vendorId, String deviceId) {
        String vendorDevice() {
            return vendorId + ":" + deviceId;
        }
    }

    @Override
    public Cli.Exit execute() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter stderr = spec.commandLine().getErr();
        if (connectTimeout <= 0 || commandTimeout <= 0) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--connect-timeout and --command-timeout must be positive seconds, e.g. --command-timeout 30");
        }
        if (port != null && (port < 1 || port > 65535)) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--port " + port + " is not a TCP port — use 1-65535, e.g. --port 22");
        }
        for (Path id : identities) {
            if (!Files.isRegularFile(id)) {
                throw new Cli.UserError(Cli.Exit.USAGE, "--identity " + id + " does not exist — pass the path of a private key file, e.g. ~/.ssh/id_ed25519");
            }
        }
        if (requireDriver) nvidiaSmi = true;
        Names.object("VM", vmName);
        Names.namespace(kube.namespace);

        // Preconditions: the VM runs, with the device in its instance's spec.
        String ns = kube.namespace();
        GenericKubernetesResource vmi;
        String node;
        List<Expected> expected;
        try (KubernetesClient client = kube.client()) {
            vmi = runningVmi(client, ns);
            node = str(vmi.get("status", "nodeName"));
            expected = expectedDevices(client, vmi, node);
        }

        // Where to connect: flags, then ~/.ssh/config, then the VMI's address.
        Path home = Path.of(System.getProperty("user.home"));
        Path ssh = home.resolve(".ssh");
        String alias = host != null ? host : guestIp(vmi);
        GuestSsh.SshConfig cfg = GuestSsh.SshConfig.lookup(sshConfig != null ? sshConfig : ssh.resolve("config"), alias);
        List<Path> keys = new ArrayList<>(identities);
        if (keys.isEmpty()) {
            for (String f : cfg.identityFiles()) keys.add(expandHome(f, home));
        }
        if (keys.isEmpty()) {
            for (String f : List.of("id_ed25519", "id_ecdsa", "id_rsa")) {
                if (Files.isRegularFile(ssh.resolve(f))) keys.add(ssh.resolve(f));
            }
        }
        GuestSsh.Target target = new GuestSsh.Target(
                cfg.hostName() != null ? cfg.hostName() : alias,
                port != null ? port : cfg.port() != null ? cfg.port() : 22,
                user != null ? user : cfg.user() != null ? cfg.user() : System.getProperty("user.name"),
                keys,
                knownHosts != null ? knownHosts : ssh.resolve("known_hosts"),
                acceptNew,
                Duration.ofSeconds(connectTimeout));

        // Action: lspci -nn (and nvidia-smi -L) in the guest.
        List<GuestDevice> guest;
        List<String> unparsed = new ArrayList<>();
        Map<String, Object> driver = null;
        String hostKey;
        boolean recorded;
        try (GuestSsh session = GuestSsh.connect(target)) {
            hostKey = session.hostKeyFingerprint();
            recorded = session.hostKeyRecorded();
            String lspciCommand = sudo ? "sudo -n lspci -nn" : "lspci -nn";
            GuestSsh.Result lspci = session.run(lspciCommand, Duration.ofSeconds(commandTimeout));
            checkLspciRan(lspci, target);
            guest = parseLspci(lspci.out(), unparsed);
            if (nvidiaSmi) driver = driverView(session.run("nvidia-smi -L", Duration.ofSeconds(commandTimeout)));
        }

        // Report: each expected device found (or not) in the guest.
        List<Map<String, Object>> devices = new ArrayList<>();
        List<GuestDevice> unmatched = new ArrayList<>(guest);
        boolean allPresent = true;
        for (Expected e : expected) {
            GuestDevice seen = unmatched.stream().filter(g -> g.vendorDevice().equalsIgnoreCase(e.vendorDevice())).findFirst().orElse(null);
            if (seen != null) unmatched.remove(seen);
            allPresent &= seen != null;
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("name", e.name());
            d.put("resourceName", e.resourceName());
            d.put("pciDevice", e.pciDevice());
            d.put("vendorDevice", e.vendorDevice());
            d.put("present", seen != null);
            d.put("guestSlot", seen == null ? null : seen.slot());
            d.put("guestDescription", seen == null ? null : seen.className() + ": " + seen.description());
            devices.add(d);
        }
        List<GuestDevice> nvidia = guest.stream().filter(g -> NVIDIA.equalsIgnoreCase(g.vendorId())).toList();
        boolean pass = anyNvidia ? !nvidia.isEmpty() : allPresent;
        boolean driverFails = requireDriver && driver != null && !"OK".equals(driver.get("status"));

        Map<String, Object> report = new LinkedHashMap<>();
        report.put("vm", ns + "/" + vmName);
        report.put("phase", "Running");
        report.put("node", node);
        Map<String, Object> g = new LinkedHashMap<>();
        g.put("host", target.host());
        g.put("port", target.port());
        g.put("user", target.user());
        g.put("hostKey", hostKey);
        g.put("hostKeyRecorded", recorded);
        g.put("sudo", sudo);
        report.put("guest", g);
        report.put("expected", devices);
        report.put("anyNvidia", anyNvidia);
        report.put("nvidiaDevices", nvidia.stream().map(verify::guestMap).toList());
        report.put("lspci", guest.stream().map(verify::guestMap).toList());
        if (!unparsed.isEmpty()) report.put("unparsedLspciLines", unparsed);
        if (driver != null) report.put("driver", driver);
        report.put("result", pass && !driverFails ? "PASS" : "FAIL");

        if (out.structured()) {
            Render.structured(stdout, out.output, report);
        } else {
            printTable(stdout, report, devices, nvidia, driver, target, hostKey, recorded, pass);
        }
        if (!pass) {
            String missing = anyNvidia ? "no NVIDIA (10de) device"
                    : String.join(", ", devices.stream().filter(d -> !Boolean.TRUE.equals(d.get("present")))
                    .map(d -> "[" + d.get("vendorDevice") + "] (" + d.get("name") + ")").toList());
            stderr.println("verify: " + missing + " not visible in the guest's lspci -nn although the VMI has the hostDevice"
                    + " — restart the VM so it boots with the device (virtctl restart " + vmName + "), then run: diagnose " + vmName);
            stderr.flush();
            return Cli.Exit.DEVICE_ABSENT;
        }
        if (driverFails) {
            stderr.println("verify: the device is visible but the NVIDIA driver is not working in the guest (" + driver.get("message")
                    + ") — install the driver in the guest (e.g. sudo ubuntu-drivers install) or drop --require-driver");
            stderr.flush();
            return Cli.Exit.PRECONDITION;
        }
        return Cli.Exit.OK;
    }

    private GenericKubernetesResource runningVmi(KubernetesClient client, String ns) {
        GenericKubernetesResource vmi = KubeVirt.vmis(client).inNamespace(ns).withName(vmName).get();
        if (vmi == null) {
            KubeVirt.vm(client, ns, vmName); // an unknown VM is NOT_FOUND, not "not running"
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VM " + ns + "/" + vmName + " has no running instance (no VMI)"
                    + " — start it (virtctl start " + vmName + ") and wait for it to be Running, then verify again");
        }
        String phase = str(vmi.get("status", "phase"));
        if (!"Running".equals(phase)) {
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VMI " + ns + "/" + vmName + " is " + (phase == null ? "without a phase" : phase)
                    + ", not Running — wait for it (kubectl get vmi " + vmName + " -n " + ns + " -w), or run: diagnose " + vmName);
        }
        return vmi;
    }

    /** The VMI's hostDevices (and gpus) that are PCIDevices, narrowed by --device / --device-name. */
    private List<Expected> expectedDevices(KubernetesClient client, GenericKubernetesResource vmi, String node) {
        List<KubeVirt.HostDevice> entries = new ArrayList<>(KubeVirt.hostDevices(vmi));
        entries.addAll(KubeVirt.gpus(vmi));
        List<Harvester.PciDevice> pci = Harvester.pciDevices(client).list().getItems().stream().map(Harvester.PciDevice::of).toList();
        List<Expected> expected = new ArrayList<>();
        List<String> present = new ArrayList<>();
        for (KubeVirt.HostDevice hd : entries) {
            present.add(hd.name() + " (" + hd.deviceName() + ")");
            if (device != null && !device.equals(hd.name())) continue;
            if (deviceName != null && !deviceName.equals(hd.deviceName())) continue;
            Harvester.PciDevice d = KubeVirt.pciDeviceFor(hd, pci, node).orElse(null);
            if (d == null) {
                if (device != null || deviceName != null) {
                    throw new Cli.UserError(Cli.Exit.USAGE, "hostDevice " + hd.name() + " (" + hd.deviceName()
                            + ") is not a PCI device Harvester knows (no PCIDevice with that resource) — verify checks PCI devices only");
                }
                continue; // e.g. a USB device: not something lspci shows
            }
            expected.add(new Expected(hd.name(), hd.deviceName(), d.vendorDevice(), d.name()));
        }
        if (expected.isEmpty() && !(anyNvidia && device == null && deviceName == null)) {
            String which = device != null ? "hostDevice named " + device : deviceName != null ? "hostDevice with resource " + deviceName : "PCI hostDevice";
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VMI " + KubeVirt.ref(vmi) + " is Running without a " + which
                    + " (it has: " + (present.isEmpty() ? "none" : String.join(", ", present)) + ")"
                    + " — attach the device and restart the VM first: attach " + vmName);
        }
        return expected;
    }

    /** The first IP the VMI reports (status.interfaces[].ipAddress, filled by the guest agent or DHCP). */
    private String guestIp(GenericKubernetesResource vmi) {
        if (vmi.get("status", "interfaces") instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> m && m.get("ipAddress") != null && !m.get("ipAddress").toString().isBlank()) {
                    return m.get("ipAddress").toString().replaceFirst("/\\d+$", "");
                }
            }
        }
        throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "VMI " + KubeVirt.ref(vmi) + " reports no IP address (status.interfaces)"
                + " — is the qemu-guest-agent running in the guest? Pass the guest's address with --host");
    }

    private void checkLspciRan(GuestSsh.Result r, GuestSsh.Target t) {
        if (r.exit() == 0) return;
        String err = r.err().strip();
        if (sudo && (err.contains("a password is required") || err.contains("a terminal is required"))) {
            throw new Cli.UserError(Cli.Exit.SUDO_PASSWORD, "sudo in the guest needs a password for " + t.user() + " (" + firstLine(err) + ")"
                    + " — pass --no-sudo (lspci -nn works unprivileged), or allow it in the guest: echo '" + t.user()
                    + " ALL=(root) NOPASSWD: /usr/bin/lspci' | sudo tee /etc/sudoers.d/lspci");
        }
        if (r.exit() == 127 || err.contains("command not found")) {
            throw new Cli.UserError(Cli.Exit.PRECONDITION, "lspci is not installed in the guest (" + firstLine(err) + ")"
                    + " — install pciutils in the guest (sudo apt-get install pciutils)");
        }
        throw new Cli.UserError(Cli.Exit.PRECONDITION, "lspci -nn failed in the guest (exit " + r.exit() + ": " + firstLine(err)
                + ") — run it by hand: ssh " + t.display() + " lspci -nn");
    }

    static List<GuestDevice> parseLspci(String text, List<String> unparsed) {
        List<GuestDevice> out = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) continue;
            Matcher m = LSPCI_LINE.matcher(line.strip());
            if (m.matches()) {
                out.add(new GuestDevice(m.group(1), m.group(2), m.group(3).toLowerCase(), m.group(4),
                        m.group(5).toLowerCase(), m.group(6).toLowerCase()));
            } else {
                unparsed.add(line);
            }
        }
        return out;
    }

    /** nvidia-smi -L: OK with the GPUs it lists, or MISSING (not installed) / FAILING (installed, sees no GPU). */
    private static Map<String, Object> driverView(GuestSsh.Result r) {
        Map<String, Object> d = new LinkedHashMap<>();
        List<Map<String, Object>> gpus = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            Matcher m = NVIDIA_SMI_LINE.matcher(line.strip());
            if (m.matches()) {
                Map<String, Object> gpu = new LinkedHashMap<>();
                gpu.put("index", Integer.parseInt(m.group(1)));
                gpu.put("name", m.group(2));
                gpu.put("uuid", m.group(3));
                gpus.add(gpu);
            }
        }
        if (r.exit() == 127 || r.err().contains("command not found")) {
            d.put("status", "MISSING");
            d.put("message", "nvidia-smi not found: the NVIDIA driver is not installed in the guest");
        } else if (r.exit() != 0 || gpus.isEmpty()) {
            d.put("status", "FAILING");
            d.put("message", "nvidia-smi -L exited " + r.exit() + ": " + firstLine((r.out() + "\n" + r.err()).strip()));
        } else {
            d.put("status", "OK");
            d.put("message", gpus.size() + " GPU(s) seen by the driver");
        }
        d.put("gpus", gpus);
        return d;
    }

    private void printTable(PrintWriter stdout, Map<String, Object> report, List<Map<String, Object>> devices,
                            List<GuestDevice> nvidia, Map<String, Object> driver, GuestSsh.Target target,
                            String hostKey, boolean recorded, boolean pass) {
        stdout.println("VM:     " + report.get("vm") + " (Running on " + report.get("node") + ")");
        stdout.println("GUEST:  " + target.display() + ", host key " + hostKey + (recorded ? " (new: recorded in " + target.knownHosts() + ")" : " (known)"));
        stdout.println();
        if (!devices.isEmpty()) {
            Render.Table t = new Render.Table("HOSTDEVICE", "RESOURCE", "ID", "GUEST SLOT", "RESULT", "GUEST DESCRIPTION");
            for (Map<String, Object> d : devices) {
                t.row(d.get("name"), d.get("resourceName"), d.get("vendorDevice"), d.get("guestSlot"),
                        Boolean.TRUE.equals(d.get("present")) ? "PASS" : "FAIL", d.get("guestDescription"));
            }
            t.print(stdout);
            stdout.println();
        }
        if (nvidia.isEmpty()) {
            stdout.println("NVIDIA devices in the guest: none");
        } else {
            stdout.println("NVIDIA devices in the guest:");
            for (GuestDevice n : nvidia) {
                stdout.println("  " + n.slot() + " " + n.className() + " [" + n.classId() + "]: " + n.description() + " [" + n.vendorDevice() + "]");
            }
        }
        if (driver != null) {
            String status = String.valueOf(driver.get("status"));
            stdout.println("DRIVER: " + ("OK".equals(status) ? "OK" : requireDriver ? "FAIL" : "WARN") + " — " + driver.get("message"));
            for (Object o : (List<?>) driver.get("gpus")) {
                Map<?, ?> gpu = (Map<?, ?>) o;
                stdout.println("  GPU " + gpu.get("index") + ": " + gpu.get("name") + " (UUID: " + gpu.get("uuid") + ")");
            }
        }
        stdout.println("RESULT: " + report.get("result") + (pass ? "" : anyNvidia ? " — no NVIDIA device in the guest" : " — expected device missing in the guest"));
        stdout.flush();
    }

    private static Map<String, Object> guestMap(GuestDevice g) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("slot", g.slot());
        m.put("class", g.className());
        m.put("classId", g.classId());
        m.put("description", g.description());
        m.put("vendorId", g.vendorId());
        m.put("deviceId", g.deviceId());
        return m;
    }

    private static Path expandHome(String f, Path home) {
        return f.equals("~") ? home : f.startsWith("~/") ? home.resolve(f.substring(2)) : Path.of(f);
    }

    private static String firstLine(String s) {
        return s == null || s.isBlank() ? "no output" : s.lines().findFirst().orElse(s);
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }
}
