import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Collectors;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Real races on the simulator (issue 13 items 1–2): two attaches (or two detaches) of the two
 * functions of the GPU at once, many rounds. Every run's report is checked against the state the
 * cluster ends in: exit 0 only when the running instance has the change, never "is stopped" for a
 * VM that runs, and no undo for something that is running as asked.
 */
class RaceTest {
    static final String GPU = Seed.GPU;
    static final String AUDIO = Seed.AUDIO;
    /** Attach rounds + detach rounds: at least 20 races per CI run. */
    static final int CYCLES = 11;

    SimCluster sim;

    @BeforeEach
    void start() {
        SimCluster.Options fast = new SimCluster.Options();
        fast.vmiPhaseDelay = Duration.ofMillis(20);
        fast.controllerDelay = Duration.ofMillis(20);
        sim = SimCluster.start(fast);
        Seed.gpuReady(sim);
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    @Test
    void concurrentAttachesAndDetachesReportWhatTheRunningInstanceHas() {
        for (int round = 0; round < CYCLES; round++) {
            race(new attach(), new attach(), true, "attach round " + round);
            race(new detach(), new detach(), false, "detach round " + round);
        }
    }

    /** Runs the two commands at once (GPU and AUDIO), waits for both, and checks each report against the end state. */
    private void race(Object one, Object two, boolean attach, String round) {
        CompletableFuture<Run.Result> a = CompletableFuture.supplyAsync(() -> Run.against(sim, one, "docker-host", "--device", GPU, "--timeout", "60"));
        CompletableFuture<Run.Result> b = CompletableFuture.supplyAsync(() -> Run.against(sim, two, "docker-host", "--device", AUDIO, "--timeout", "60"));
        List<Run.Result> results = List.of(a.join(), b.join());
        List<String> devices = List.of(GPU, AUDIO);

        GenericKubernetesResource vmi = DockerHost.vmi(sim);
        Set<String> running = vmi == null ? Set.of()
                : KubeVirt.entries(vmi).stream().map(KubeVirt.HostDevice::name).collect(Collectors.toSet());
        Set<String> spec = DockerHost.hostDevices(sim).stream().map(KubeVirt.HostDevice::name).collect(Collectors.toSet());
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Run.Result r = results.get(i);
            String device = devices.get(i);
            String where = round + ", " + device + ": ";
            if (r.exit() == 0) {
                // Exit 0: the running instance has the change (the VM runs all along: "is stopped" is false).
                if (r.all().contains("is stopped")) problems.add(where + "reported stopped although the VM runs\n" + r.all());
                if (vmi == null || !"Running".equals(VmRestart.phase(vmi))) problems.add(where + "exit 0 but no running instance\n" + r.all());
                if (running.contains(device) != attach) problems.add(where + "exit 0 but the running instance " + (attach ? "lacks" : "has") + " it\n" + r.all());
            } else {
                // A failure may only hand out an undo for what is still in the spec and not running as asked.
                boolean harmful = r.err().contains("undo: " + (attach ? "detach" : "attach")) && running.contains(device) == attach;
                if (harmful) problems.add(where + "undo for a change that is running as asked\n" + r.all());
                problems.add(where + "failed (exit " + r.exit() + ")\n" + r.all());
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n\n", problems));
        // The end state both runs asked for, in the spec and in the running instance; the USB stick kept.
        assertEquals(attach, spec.containsAll(devices), round + ": spec " + spec);
        assertFalse(!attach && (spec.contains(GPU) || spec.contains(AUDIO)), round + ": spec " + spec);
        assertTrue(spec.contains(DockerHost.USB.name()), round + ": USB kept " + spec);
        assertEquals(Set.copyOf(spec), running, round + ": running instance vs spec");
    }
}
