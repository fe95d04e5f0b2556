//SOURCES ../scripts/lib/checks/GuestDriver.java

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** `verify --nvidia-smi`: the driver's view read from nvidia-smi -L, and the first line its messages quote. */
class GuestDriverTest {
    static final String RTX_3090 = "GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-5a3f0c1e-8f2b-4c7d-9e61-0a1b2c3d4e5f)";

    static Stream<Arguments> views() {
        return Stream.of(
                // exit, stdout, stderr → status, message, GPUs listed
                Arguments.of(0, RTX_3090 + "\n", "", GuestDriver.Status.OK, "1 GPU(s) seen by the driver",
                        List.of(new GuestDriver.Gpu(0, "NVIDIA GeForce RTX 3090", "GPU-5a3f0c1e-8f2b-4c7d-9e61-0a1b2c3d4e5f"))),
                Arguments.of(0, RTX_3090 + "\n  GPU 1: NVIDIA A2 (UUID: GPU-1)  \n", "", GuestDriver.Status.OK, "2 GPU(s) seen by the driver",
                        List.of(new GuestDriver.Gpu(0, "NVIDIA GeForce RTX 3090", "GPU-5a3f0c1e-8f2b-4c7d-9e61-0a1b2c3d4e5f"),
                                new GuestDriver.Gpu(1, "NVIDIA A2", "GPU-1"))),
                Arguments.of(127, "", "bash: line 1: nvidia-smi: command not found\n", GuestDriver.Status.MISSING,
                        "nvidia-smi not found: the NVIDIA driver is not installed in the guest", List.of()),
                Arguments.of(1, "", "sh: nvidia-smi: command not found\n", GuestDriver.Status.MISSING,
                        "nvidia-smi not found: the NVIDIA driver is not installed in the guest", List.of()),
                Arguments.of(9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n",
                        "", GuestDriver.Status.FAILING, "nvidia-smi -L exited 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA"
                                + " driver. Make sure that the latest NVIDIA driver is installed and running.", List.of()),
                // Exit 0 without a GPU line is a driver that sees nothing.
                Arguments.of(0, "No devices found.\n", "", GuestDriver.Status.FAILING, "nvidia-smi -L exited 0: No devices found.", List.of()),
                Arguments.of(6, "", "", GuestDriver.Status.FAILING, "nvidia-smi -L exited 6: no output", List.of()),
                // stderr only: its first line.
                Arguments.of(4, "", "\nFailed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.54\n",
                        GuestDriver.Status.FAILING, "nvidia-smi -L exited 4: Failed to initialize NVML: Driver/library version mismatch", List.of()));
    }

    @ParameterizedTest
    @MethodSource("views")
    void readsTheDriversView(int exit, String out, String err, GuestDriver.Status status, String message, List<GuestDriver.Gpu> gpus) {
        assertEquals(new GuestDriver.View(status, message, gpus), GuestDriver.of(new RemoteShell.Result(exit, out, err)));
    }

    @Test
    void jsonFormKeepsItsFieldNames() {
        Map<String, Object> m = GuestDriver.of(new RemoteShell.Result(0, RTX_3090, "")).asMap();
        assertEquals(List.of("status", "message", "gpus"), List.copyOf(m.keySet()));
        assertEquals("OK", m.get("status"));
        assertEquals(List.of(Map.of("index", 0, "name", "NVIDIA GeForce RTX 3090", "uuid", "GPU-5a3f0c1e-8f2b-4c7d-9e61-0a1b2c3d4e5f")), m.get("gpus"));
    }

    static Stream<Arguments> firstLines() {
        return Stream.of(
                Arguments.of(null, "no output"),
                Arguments.of("", "no output"),
                Arguments.of(" \n\t\n", "no output"),
                Arguments.of("one", "one"),
                Arguments.of("first\nsecond", "first"),
                // Taken as printed: the caller strips the output first.
                Arguments.of("first  \nsecond", "first  "));
    }

    @ParameterizedTest
    @MethodSource("firstLines")
    void firstOutputLine(String output, String expected) {
        assertEquals(expected, Text.firstOutputLine(output));
    }
}
