//SOURCES ../cli/Text.java RemoteShell.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * `verify --nvidia-smi`: the NVIDIA driver's own view of the guest's GPUs, from `nvidia-smi -L`.
 * Informational (a WARN) unless --require-driver; `verify --docker` judges the driver against the
 * attached GPU instead (GuestDocker.java).
 */
public final class GuestDriver {
    private GuestDriver() {}

    /** `GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-...)` */
    public static final Pattern NVIDIA_SMI_LINE = Pattern.compile("^GPU (\\d+): (.+?) \\(UUID: ([^)]+)\\)$");

    /** OK: the driver lists GPUs; MISSING: nvidia-smi is not installed; FAILING: installed, but it sees no GPU. */
    public enum Status { OK, MISSING, FAILING }

    /** One GPU as nvidia-smi -L lists it. */
    public record Gpu(int index, String name, String uuid) {
        Map<String, Object> asMap() {
            Map<String, Object> gpu = new LinkedHashMap<>();
            gpu.put("index", index);
            gpu.put("name", name);
            gpu.put("uuid", uuid);
            return gpu;
        }
    }

    /** What the driver said. */
    public record View(Status status, String message, List<Gpu> gpus) {
        /** The -o json/yaml form (field names are part of the output). */
        public Map<String, Object> asMap() {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("status", status.name());
            d.put("message", message);
            d.put("gpus", gpus.stream().map(Gpu::asMap).toList());
            return d;
        }
    }

    /** The view from nvidia-smi -L's result (GuestDocker.NVIDIA_SMI). */
    public static View of(RemoteShell.Result r) {
        List<Gpu> gpus = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            Matcher m = NVIDIA_SMI_LINE.matcher(line.strip());
            if (m.matches()) gpus.add(new Gpu(Integer.parseInt(m.group(1)), m.group(2), m.group(3)));
        }
        if (r.exit() == 127 || r.err().contains("command not found")) {
            return new View(Status.MISSING, "nvidia-smi not found: the NVIDIA driver is not installed in the guest", gpus);
        }
        if (r.exit() != 0 || gpus.isEmpty()) {
            return new View(Status.FAILING, "nvidia-smi -L exited " + r.exit() + ": " + Text.firstOutputLine((r.out() + "\n" + r.err()).strip()), gpus);
        }
        return new View(Status.OK, gpus.size() + " GPU(s) seen by the driver", gpus);
    }
}
