//SOURCES ../cli/Cli.java Diagnosis.java ../model/Harvester.java RemoteShell.java

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * `verify --docker`: inside the guest, the reason the VM exists — the NVIDIA driver sees the GPU
 * that was attached, Docker runs, its runtimes include `nvidia` (NVIDIA Container Toolkit), and
 * (with an image) a container started with `--gpus all` sees the GPU. Each missing piece is a FAIL
 * with the command that installs it. Commands run through a {@link RemoteShell}, so any SSH
 * session will do; nothing in the guest is changed.
 */
public final class GuestDocker {
    private GuestDocker() {}

    public static final String DRIVER = "guest-nvidia-driver";
    public static final String DOCKER = "guest-docker";
    public static final String RUNTIME = "guest-nvidia-runtime";
    public static final String CONTAINER = "guest-docker-gpu";

    public static final String NVIDIA_SMI = "nvidia-smi -L";
    /** Asked only when no listed GPU carries the expected name: the PCI id decides then. */
    public static final String NVIDIA_SMI_IDS = "nvidia-smi --query-gpu=pci.device_id,pci.bus_id,name --format=csv,noheader";
    public static final String DOCKER_RUNTIMES = "docker info --format '{{json .Runtimes}}'";

    static final String DRIVER_HINT = "install the NVIDIA driver in the guest: sudo ubuntu-drivers install (Ubuntu; elsewhere the distribution's"
            + " nvidia-driver package), then reboot the VM";
    static final String DOCKER_HINT = "install Docker Engine in the guest (Ubuntu: sudo apt-get install -y docker.io, or docker-ce from"
            + " https://docs.docker.com/engine/install/), then sudo usermod -aG docker $USER and log in again";
    static final String TOOLKIT_HINT = "install the NVIDIA Container Toolkit in the guest (package nvidia-container-toolkit from NVIDIA's apt repository),"
            + " then: sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker";

    /** A GPU the guest should have: the PCIDevice's vendor:device and its marketing name from the description ("GeForce RTX 3090"). */
    public record Gpu(String vendorDevice, String name) {
        private static final Pattern BRACKETED = Pattern.compile("\\[([^\\]]+)\\]\\s*$");

        /** The GPU of a PCIDevice, or null when the device is not an NVIDIA display controller (e.g. the HDMI audio function). */
        public static Gpu of(Harvester.PciDevice d) {
            if (!"10de".equalsIgnoreCase(d.vendorId()) || d.classId() == null || !d.classId().startsWith("03")) return null;
            Matcher m = BRACKETED.matcher(d.description() == null ? "" : d.description());
            return new Gpu(d.vendorDevice().toLowerCase(Locale.ROOT), m.find() ? m.group(1) : null);
        }

        /** nvidia-smi's pci.device_id: device then vendor, e.g. 0x220410DE. */
        String nvidiaSmiId() {
            String[] vd = vendorDevice.split(":");
            return ("0x" + vd[1] + vd[0]).toUpperCase(Locale.ROOT).replace("0X", "0x");
        }

        String display() {
            return (name == null ? "NVIDIA GPU" : name) + " [" + vendorDevice + "]";
        }
    }

    /** Image references Docker accepts; anything else is refused before it reaches a shell. */
    private static final Pattern IMAGE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/:@+-]*");

    /** The GPUs to expect among the devices attached to the VM. */
    public static List<Gpu> gpus(List<Harvester.PciDevice> attached) {
        return attached.stream().map(Gpu::of).filter(g -> g != null).toList();
    }

    /**
     * Every check, in order; {@code image} is null to skip the container run. An image that Docker
     * would not accept as a reference is a usage error (exit 2) before anything runs.
     */
    public static List<Diagnosis.Finding> check(RemoteShell guest, List<Gpu> gpus, String image) {
        checkImage(image);
        List<Diagnosis.Finding> out = new ArrayList<>();
        out.add(driver(guest, gpus));
        Docker docker = docker(guest);
        out.add(docker.finding());
        if (docker.runtimes() != null) out.add(runtime(docker.runtimes()));
        if (image != null) out.add(docker.prefix() == null
                ? Diagnosis.Finding.fail(CONTAINER, image, "not run: Docker does not work in the guest (see " + DOCKER + ")", DOCKER_HINT)
                : container(guest, docker.prefix(), gpus, image));
        return out;
    }

    /** An image Docker would not accept as a reference is a usage error (exit 2); null (no image) is fine. */
    public static void checkImage(String image) {
        if (image != null && !IMAGE.matcher(image).matches()) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--docker-image \"" + image + "\" is not an image reference — pass e.g. nvidia/cuda:12.4.1-base-ubuntu22.04");
        }
    }

    // ---- the NVIDIA driver ----

    static Diagnosis.Finding driver(RemoteShell guest, List<Gpu> gpus) {
        String subject = gpus.isEmpty() ? "nvidia-smi" : gpus.get(0).display();
        RemoteShell.Result r = guest.run(NVIDIA_SMI);
        if (notFound(r)) {
            return Diagnosis.Finding.fail(DRIVER, subject, "nvidia-smi: command not found: the NVIDIA driver is not installed", DRIVER_HINT);
        }
        if (r.exit() != 0) {
            String first = r.firstLine();
            if (first.contains("couldn't communicate with the NVIDIA driver")) {
                return Diagnosis.Finding.fail(DRIVER, subject, "nvidia-smi: " + first + " (installed but not loaded: a kernel update without"
                        + " the matching module, or Secure Boot refusing it)", "reboot the VM; if it persists: sudo dmesg | grep -i nvrm, and reinstall: "
                        + DRIVER_HINT.substring("install the NVIDIA driver in the guest: ".length()));
            }
            return Diagnosis.Finding.fail(DRIVER, subject, "nvidia-smi -L exited " + r.exit() + ": " + first
                    + " (the driver sees no GPU)", "check that the GPU reached the guest: verify (lspci -nn), and attach it if it did not");
        }
        String listed = r.out().strip();
        List<Gpu> missing = missing(listed, gpus);
        if (missing.isEmpty()) return Diagnosis.Finding.pass(DRIVER, subject, "nvidia-smi -L: " + oneLine(listed));
        // No name matched: the PCI ids decide (a renamed board, a description without the marketing name).
        RemoteShell.Result ids = guest.run(NVIDIA_SMI_IDS);
        List<Gpu> stillMissing = ids.exit() == 0
                ? missing.stream().filter(g -> !ids.out().toUpperCase(Locale.ROOT).contains(g.nvidiaSmiId().toUpperCase(Locale.ROOT))).toList()
                : missing;
        if (stillMissing.isEmpty()) {
            return Diagnosis.Finding.pass(DRIVER, subject, "nvidia-smi: " + oneLine(ids.out().strip()) + " (matched by PCI id)");
        }
        return Diagnosis.Finding.fail(DRIVER, subject, "nvidia-smi -L lists " + oneLine(listed) + " but not "
                        + stillMissing.stream().map(Gpu::display).toList() + " (the GPU attached to the VM)",
                "the guest's driver sees another GPU: check the VM's hostDevices (verify) and the node's claim");
    }

    private static List<Gpu> missing(String listed, List<Gpu> gpus) {
        String l = listed.toLowerCase(Locale.ROOT);
        return gpus.stream().filter(g -> g.name() == null || !l.contains(g.name().toLowerCase(Locale.ROOT))).toList();
    }

    // ---- Docker and its runtimes ----

    /** What docker info said: the finding, the runtimes (null if unknown) and how docker must be called (null if it cannot). */
    record Docker(Diagnosis.Finding finding, List<String> runtimes, String prefix) {}

    static Docker docker(RemoteShell guest) {
        RemoteShell.Result r = guest.run(DOCKER_RUNTIMES);
        if (notFound(r)) {
            return new Docker(Diagnosis.Finding.fail(DOCKER, "docker", "docker: command not found: Docker is not installed", DOCKER_HINT), null, null);
        }
        String prefix = "";
        String note = "";
        if (r.exit() != 0 && r.all().contains("permission denied")) {
            // The user is not in the docker group; sudo -n works only without a password prompt.
            RemoteShell.Result s = guest.run("sudo -n " + DOCKER_RUNTIMES);
            if (s.exit() != 0) {
                return new Docker(Diagnosis.Finding.fail(DOCKER, "docker", "docker: " + r.firstLine() + "; sudo -n docker: " + s.firstLine(),
                        "let the guest user use Docker: sudo usermod -aG docker $USER, then log in again"), null, null);
            }
            r = s;
            prefix = "sudo -n ";
            note = " (through sudo: the user is not in the docker group)";
        }
        if (r.exit() != 0) {
            String first = r.firstLine();
            String fix = first.contains("Cannot connect to the Docker daemon") || first.contains("Is the docker daemon running")
                    ? "start Docker in the guest: sudo systemctl enable --now docker" : DOCKER_HINT;
            return new Docker(Diagnosis.Finding.fail(DOCKER, "docker", "docker info exited " + r.exit() + ": " + first, fix), null, null);
        }
        List<String> runtimes;
        try {
            JsonNode json = new ObjectMapper().readTree(r.out());
            runtimes = new ArrayList<>();
            for (Iterator<String> it = json.fieldNames(); it.hasNext(); ) runtimes.add(it.next());
        } catch (Exception e) {
            return new Docker(Diagnosis.Finding.fail(DOCKER, "docker", "docker info printed no runtimes (" + oneLine(r.out().strip()) + ")",
                    "check Docker in the guest: docker info"), null, prefix);
        }
        return new Docker(Diagnosis.Finding.pass(DOCKER, "docker", "docker info: runtimes " + runtimes + note), runtimes, prefix);
    }

    static Diagnosis.Finding runtime(List<String> runtimes) {
        if (runtimes.contains("nvidia")) {
            return Diagnosis.Finding.pass(RUNTIME, "docker", "Docker has the nvidia runtime (NVIDIA Container Toolkit)");
        }
        return Diagnosis.Finding.fail(RUNTIME, "docker", "Docker's runtimes " + runtimes + " do not include nvidia: the NVIDIA Container Toolkit"
                + " is not installed or not configured for Docker", TOOLKIT_HINT);
    }

    // ---- a container with --gpus all ----

    static Diagnosis.Finding container(RemoteShell guest, String prefix, List<Gpu> gpus, String image) {
        String command = prefix + "docker run --rm --gpus all " + image + " nvidia-smi -L";
        RemoteShell.Result r = guest.run(command);
        String first = firstDockerError(r);
        if (r.exit() == 0) {
            String listed = r.out().strip();
            List<Gpu> missing = missing(listed, gpus);
            if (missing.isEmpty() && !listed.isEmpty()) {
                return Diagnosis.Finding.pass(CONTAINER, image, "`docker run --rm --gpus all " + image + " nvidia-smi -L`: " + oneLine(listed));
            }
            return Diagnosis.Finding.fail(CONTAINER, image, "the container's nvidia-smi -L lists " + (listed.isEmpty() ? "nothing" : oneLine(listed))
                    + ", not " + missing.stream().map(Gpu::display).toList(), TOOLKIT_HINT);
        }
        if (first.contains("could not select device driver") || first.contains("unknown or invalid runtime name: nvidia")) {
            return Diagnosis.Finding.fail(CONTAINER, image, "docker run --gpus all: " + first + " (Docker cannot hand GPUs to containers)", TOOLKIT_HINT);
        }
        if (first.contains("nvidia-container-cli") || first.contains("nvml error")) {
            return Diagnosis.Finding.fail(CONTAINER, image, "docker run --gpus all: " + first + " (the toolkit cannot reach the driver)", DRIVER_HINT);
        }
        if (first.contains("pull access denied") || first.contains("manifest unknown") || first.contains("not found")) {
            return Diagnosis.Finding.fail(CONTAINER, image, "docker run: " + first,
                    "pass an image that exists and ships nvidia-smi, e.g. --docker-image nvidia/cuda:12.4.1-base-ubuntu22.04 (check with: docker pull IMAGE)");
        }
        return Diagnosis.Finding.fail(CONTAINER, image, "docker run --gpus all exited " + r.exit() + ": " + first,
                "run it in the guest to see more: " + command);
    }

    /** Docker prints progress ("Unable to find image ... locally") before the error: prefer the line that says what failed. */
    private static String firstDockerError(RemoteShell.Result r) {
        return r.all().lines().map(String::strip).filter(l -> l.startsWith("docker:") || l.contains("Error") || l.contains("error"))
                .findFirst().orElse(r.firstLine());
    }

    /** A missing program: exit 127 or the shell's "command not found". */
    private static boolean notFound(RemoteShell.Result r) {
        return r.exit() == 127 || r.err().contains("command not found");
    }

    private static String oneLine(String s) {
        return s.replaceAll("\\s*\\n\\s*", "; ");
    }
}
