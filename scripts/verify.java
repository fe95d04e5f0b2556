///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Prove the device is visible inside the guest: lspci -nn over SSH (ssh_config, ssh-agent, ProxyJump, verified host keys)
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/cli/Render.java lib/ssh/SshSession.java lib/ssh/SshOptions.java
//SOURCES lib/checks/GuestDocker.java lib/cli/Names.java

import java.io.PrintWriter;
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
                "Reads the running VMI's hostDevices, SSHes into the guest as ssh would",
                "(ssh_config Host/Match/Include/ProxyJump, ssh-agent then key files, host",
                "key checked against known_hosts) and looks for each device's",
                "vendor:device id in `lspci -nn`. The VM name is an ssh_config Host alias",
                "when a Host block matches it; otherwise verify uses the VMI's IP address.",
                "With --docker, also the guest's NVIDIA driver, Docker and its nvidia runtime."})
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

    @Option(names = "--host", paramLabel = "HOST", description = "Guest address or ssh_config Host alias (default: the VM name when an ssh_config Host block matches it, else the VMI's IP address)")
    String host;

    @Option(names = "--user", paramLabel = "USER", description = "Guest user (default: ssh_config User, else your user name)")
    String user;

    @Option(names = "--port", paramLabel = "PORT", description = "Guest SSH port (default: ssh_config Port, else 22)")
    Integer port;

    @Mixin SshOptions ssh;

    @Option(names = "--sudo", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Run lspci through `sudo -n` as the runbook does (default: on; --no-sudo runs plain lspci -nn)")
    boolean sudo;

    @Option(names = "--nvidia-smi", description = "Also run `nvidia-smi -L` and report the driver's view (a missing driver is a WARN)")
    boolean nvidiaSmi;

    @Option(names = "--require-driver", description = "Fail (exit 8) when the NVIDIA driver is missing or sees no GPU; implies --nvidia-smi")
    boolean requireDriver;

    @Option(names = "--command-timeout", paramLabel = "SECONDS", defaultValue = "30", description = "Timeout of each command in the guest (default: ${DEFAULT-VALUE})")
    int commandTimeout;

    @Option(names = "--docker", description = "Also check the guest's software: nvidia-smi -L lists the attached GPU, Docker runs and its runtimes include nvidia (NVIDIA Container Toolkit); each missing piece is a FAIL with the install command (exit 26)")
    boolean docker;

    @Option(names = "--docker-image", paramLabel = "IMAGE", description = "With --docker: also run `docker run --rm --gpus all IMAGE nvidia-smi -L` and look for the GPU (e.g. nvidia/cuda:12.4.1-base-ubuntu22.04; implies --docker)")
    String dockerImage;

    @Option(names = "--docker-timeout", paramLabel = "SECONDS", defaultValue = "600", description = "Timeout of docker run, which may pull the image first (default: ${DEFAULT-VALUE})")
    int dockerTimeout;

    public static void main(String... args) {
        Cli.main(new verify(), args);
    }

    /** A hostDevice of the VMI that is a Harvester PCIDevice, with the id the guest should show. */
    record Expected(String name, String resourceName, String vendorDevice, String pciDevice, Harvester.PciDevice device) {}

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
        if (commandTimeout <= 0 || dockerTimeout <= 0) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--command-timeout and --docker-timeout must be positive seconds, e.g. --command-timeout 30");
        }
        ssh.validate();
        if (port != null && (port < 1 || port > 65535)) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--port " + port + " is not a TCP port — use 1-65535, e.g. --port 22");
        }
        if (requireDriver) nvidiaSmi = true;
        if (dockerImage != null) docker = true;
        GuestDocker.checkImage(dockerImage);
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

        // Where to connect: flags, then ssh_config (the VM name as a Host alias, else the VMI's IP), then defaults.
        SshConfig config = ssh.config();
        SshTarget.Overrides overrides = ssh.overrides(user, port);
        SshTarget target;
        if (host != null) {
            target = SshTarget.resolve(config, host, null, "--host", null, overrides);
        } else {
            String ip = guestIp(vmi);
            if (ip == null && config.resolve(vmName, Map.of()).specificBlocks().isEmpty()) {
                throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "VMI " + KubeVirt.ref(vmi) + " reports no IP address (status.interfaces)"
                        + " and no ssh_config Host block matches " + vmName + " — is the qemu-guest-agent running in the guest?"
                        + " Add a Host " + vmName + " block with its HostName, or pass --host");
            }
            target = SshTarget.resolve(config, vmName, ip, "VMI IP", null, overrides);
        }

        // Action: lspci -nn (and nvidia-smi -L) in the guest.
        List<GuestDevice> guest;
        List<String> unparsed = new ArrayList<>();
        Map<String, Object> driver = null;
        List<Diagnosis.Finding> software = List.of();
        Map<String, Object> guestReport = new LinkedHashMap<>();
        try (SshSession session = SshSession.open(target, "guest", note -> {
            stderr.println("verify: " + note);
            stderr.flush();
        })) {
            guestReport.put("host", target.host());
            guestReport.put("port", target.port());
            guestReport.put("user", target.user());
            guestReport.put("source", target.source());
            guestReport.put("via", session.via());
            guestReport.put("auth", session.authenticatedWith());
            guestReport.put("hostKey", session.hostKeyFingerprint());
            guestReport.put("hostKeyRecorded", session.hostKeyRecorded());
            guestReport.put("knownHostsEntry", session.hostKeyEntry());
            guestReport.put("sudo", sudo);
            String lspciCommand = sudo ? "sudo -n lspci -nn" : "lspci -nn";
            SshSession.Result lspci = session.run(lspciCommand, Duration.ofSeconds(commandTimeout));
            checkLspciRan(lspci, target);
            guest = parseLspci(lspci.out(), unparsed);
            if (nvidiaSmi) driver = driverView(session.run("nvidia-smi -L", Duration.ofSeconds(commandTimeout)));
            if (docker) software = GuestDocker.check(guestShell(session), GuestDocker.gpus(expected.stream().map(Expected::device).toList()), dockerImage);
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
        boolean softwareFails = Diagnosis.worst(software) == Diagnosis.Status.FAIL;

        Map<String, Object> report = new LinkedHashMap<>();
        report.put("vm", ns + "/" + vmName);
        report.put("phase", "Running");
        report.put("node", node);
        report.put("guest", guestReport);
        report.put("expected", devices);
        report.put("anyNvidia", anyNvidia);
        report.put("nvidiaDevices", nvidia.stream().map(verify::guestMap).toList());
        report.put("lspci", guest.stream().map(verify::guestMap).toList());
        if (!unparsed.isEmpty()) report.put("unparsedLspciLines", unparsed);
        if (driver != null) report.put("driver", driver);
        if (docker) report.put("docker", software.stream().map(Diagnosis.Finding::asMap).toList());
        report.put("result", pass && !driverFails && !softwareFails ? "PASS" : "FAIL");

        if (out.structured()) {
            Render.structured(stdout, out.output, report);
        } else {
            printTable(stdout, report, devices, nvidia, driver, software, target, guestReport, pass);
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
        if (softwareFails) {
            stderr.println("verify: the device is visible but " + String.join(", ", software.stream()
                    .filter(f -> f.status() == Diagnosis.Status.FAIL).map(Diagnosis.Finding::check).toList())
                    + " failed in the guest — run the FIX commands above in the guest, then verify again with --docker");
            stderr.flush();
            return Cli.Exit.GUEST_SOFTWARE;
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
            expected.add(new Expected(hd.name(), hd.deviceName(), d.vendorDevice(), d.name(), d));
        }
        if (expected.isEmpty() && !(anyNvidia && device == null && deviceName == null)) {
            String which = device != null ? "hostDevice named " + device : deviceName != null ? "hostDevice with resource " + deviceName : "PCI hostDevice";
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VMI " + KubeVirt.ref(vmi) + " is Running without a " + which
                    + " (it has: " + (present.isEmpty() ? "none" : String.join(", ", present)) + ")"
                    + " — attach the device and restart the VM first: attach " + vmName);
        }
        return expected;
    }

    /** The first IP the VMI reports (status.interfaces[].ipAddress, filled by the guest agent or DHCP), or null. */
    private static String guestIp(GenericKubernetesResource vmi) {
        if (vmi.get("status", "interfaces") instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> m && m.get("ipAddress") != null && !m.get("ipAddress").toString().isBlank()) {
                    return m.get("ipAddress").toString().replaceFirst("/\\d+$", "");
                }
            }
        }
        return null;
    }

    private void checkLspciRan(SshSession.Result r, SshTarget t) {
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
    private static Map<String, Object> driverView(SshSession.Result r) {
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
                            List<GuestDevice> nvidia, Map<String, Object> driver, List<Diagnosis.Finding> software, SshTarget target,
                            Map<String, Object> guest, boolean pass) {
        stdout.println("VM:     " + report.get("vm") + " (Running on " + report.get("node") + ")");
        String entry = String.valueOf(guest.get("knownHostsEntry"));
        stdout.println("GUEST:  " + target.display() + ", host key " + guest.get("hostKey")
                + (Boolean.TRUE.equals(guest.get("hostKeyRecorded")) ? " (new: recorded in " + entry.replaceFirst(":\\d+$", "") + ")" : " (known)"));
        List<?> via = (List<?>) guest.get("via");
        stdout.println("SSH:    " + target.source() + (via.isEmpty() ? "" : "; via " + String.join(", ", via.stream().map(String::valueOf).toList()))
                + "; " + guest.get("auth"));
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
        if (!software.isEmpty()) {
            stdout.println();
            Render.Table t = new Render.Table("CHECK", "STATUS", "SUBJECT", "EVIDENCE");
            for (Diagnosis.Finding f : software) t.row(f.check(), f.status(), f.subject(), f.evidence());
            t.print(stdout);
            // One FIX line per distinct fix, naming the checks it answers (as diagnose prints them).
            Map<String, List<String>> fixes = new LinkedHashMap<>();
            for (Diagnosis.Finding f : software) {
                if (f.status() != Diagnosis.Status.PASS && f.fix() != null) fixes.computeIfAbsent(f.fix(), k -> new ArrayList<>()).add(f.check());
            }
            fixes.forEach((fix, checks) -> stdout.println("FIX: " + fix + "   # " + String.join(", ", checks)));
        }
        stdout.println("RESULT: " + report.get("result") + (!pass ? (anyNvidia ? " — no NVIDIA device in the guest" : " — expected device missing in the guest")
                : Diagnosis.worst(software) == Diagnosis.Status.FAIL ? " — the guest's driver or Docker is not ready (FIX above)" : ""));
        stdout.flush();
    }

    /** The SSH session as the guest checks see it; docker run may pull the image first, so it gets --docker-timeout. */
    private RemoteShell guestShell(SshSession session) {
        return command -> {
            Duration limit = Duration.ofSeconds(command.contains("docker run ") ? dockerTimeout : commandTimeout);
            SshSession.Result r = session.run(command, limit);
            return new RemoteShell.Result(r.exit(), r.out(), r.err());
        };
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

    private static String firstLine(String s) {
        return s == null || s.isBlank() ? "no output" : s.lines().findFirst().orElse(s);
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }
}
