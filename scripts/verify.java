///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//CDS
//DESCRIPTION Prove the device is visible inside the guest: lspci -nn over SSH (ssh_config, ssh-agent, ProxyJump, verified host keys)
//SOURCES lib/cli/Cli.java lib/cluster/Kube.java lib/model/Harvester.java lib/model/KubeVirt.java lib/cli/Render.java lib/cli/Names.java
//SOURCES lib/ssh/SshSession.java lib/ssh/SshOptions.java lib/ssh/SshTarget.java lib/ssh/SshConfig.java
//SOURCES lib/checks/Diagnosis.java lib/checks/RemoteShell.java lib/checks/GuestVmi.java lib/checks/GuestLspci.java lib/checks/GuestDriver.java lib/checks/GuestDocker.java lib/checks/GuestReport.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.Map;

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
        List<GuestVmi.Expected> expected;
        try (KubernetesClient client = kube.client()) {
            vmi = GuestVmi.running(client, ns, vmName);
            List<Harvester.PciDevice> pci = Harvester.pciDevices(client).list().getItems().stream().map(Harvester.PciDevice::of).toList();
            expected = GuestVmi.expected(vmi, pci, device, deviceName, anyNvidia);
        }
        SshTarget target = guestTarget(vmi);

        // Action (read-only): lspci -nn, then nvidia-smi -L and the Docker checks, in the guest.
        GuestReport report;
        try (SshSession session = SshSession.open(target, "guest", note -> {
            stderr.println("verify: " + note);
            stderr.flush();
        })) {
            RemoteShell guest = guestShell(session);
            GuestReport.Connection connection = GuestReport.Connection.of(target, session, sudo);
            GuestLspci.Listing lspci = GuestLspci.run(guest, sudo, target.user(), target.display());
            GuestDriver.View driver = nvidiaSmi ? GuestDriver.of(guest.run(GuestDocker.NVIDIA_SMI)) : null;
            List<Diagnosis.Finding> software = docker
                    ? GuestDocker.check(guest, GuestDocker.gpus(expected.stream().map(GuestVmi.Expected::device).toList()), dockerImage) : null;
            report = new GuestReport(ns + "/" + vmName, Harvester.str(vmi, "status", "nodeName"), connection, GuestLspci.find(expected, lspci.devices()),
                    anyNvidia, lspci, driver, requireDriver, software);
        }

        // Report: each expected device found (or not) in the guest, then why verify fails, if it does.
        if (out.structured()) {
            Render.structured(stdout, out.output, report.asMap());
        } else {
            report.print(stdout);
        }
        GuestReport.Failure failure = report.failure(vmName);
        if (failure == null) return Cli.Exit.OK;
        stderr.println("verify: " + failure.message());
        stderr.flush();
        return failure.exit();
    }

    /** Where to connect: flags, then ssh_config (the VM name as a Host alias, else the VMI's IP), then defaults. */
    private SshTarget guestTarget(GenericKubernetesResource vmi) {
        SshConfig config = ssh.config();
        SshTarget.Overrides overrides = ssh.overrides(user, port);
        if (host != null) return SshTarget.resolve(config, host, null, "--host", null, overrides);
        String ip = KubeVirt.guestIp(vmi);
        if (ip == null && config.resolve(vmName, Map.of()).specificBlocks().isEmpty()) {
            throw new Cli.UserError(Cli.Exit.SSH_CONNECT, "VMI " + KubeVirt.ref(vmi) + " reports no IP address (status.interfaces)"
                    + " and no ssh_config Host block matches " + vmName + " — is the qemu-guest-agent running in the guest?"
                    + " Add a Host " + vmName + " block with its HostName, or pass --host");
        }
        return SshTarget.resolve(config, vmName, ip, "VMI IP", null, overrides);
    }

    /** The SSH session as the guest checks see it; docker run may pull the image first, so it gets --docker-timeout. */
    private RemoteShell guestShell(SshSession session) {
        return command -> {
            Duration limit = Duration.ofSeconds(command.contains("docker run ") ? dockerTimeout : commandTimeout);
            SshSession.Result r = session.run(command, limit);
            return new RemoteShell.Result(r.exit(), r.out(), r.err());
        };
    }
}
