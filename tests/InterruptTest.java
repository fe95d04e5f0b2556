import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A run that ends early (issue 13 items 8–9): the API server dying while claim waits or after
 * attach patched, and SIGTERM to a real process. Each says what was changed and the undo.
 */
class InterruptTest {
    SimCluster sim;

    @AfterEach
    void stop() {
        if (sim != null) sim.close();
    }

    /** Runs the command in this JVM in the background; the future's result is its report. */
    CompletableFuture<Run.Result> background(Object command, String... args) {
        return CompletableFuture.supplyAsync(() -> Run.against(sim, command, args));
    }

    static Run.Result within(CompletableFuture<Run.Result> run, int seconds) throws Exception {
        // A bound against a hang, far below the command's own --timeout (120s): not a performance assertion.
        return run.get(seconds, TimeUnit.SECONDS);
    }

    @Test
    void theServerDyingWhileClaimWaitsIsNoticedAndTheCreatedClaimsAreNamed() throws Exception {
        sim = SimCluster.start(new SimCluster.Options().fault(Fault.CONTROLLER_DOWN));
        CompletableFuture<Run.Result> run = background(new claim(), Seed.GPU, "--timeout", "120");
        DockerHost.eventually(() -> Harvester.pciDeviceClaims(sim.admin()).withName(Seed.AUDIO).get(), "both claims created");
        Thread.sleep(300);
        sim.close();
        Run.Result r = within(run, 60);
        assertEquals(Cli.Exit.UNREACHABLE.code, r.exit(), r.all());
        assertTrue(r.err().contains("while waiting: "), r.all());
        assertTrue(r.err().contains("already created or replaced: altra-000c01000, altra-000c01001"), r.all());
        assertTrue(r.err().contains("undo (once the server answers): claim --delete --only altra-000c01000; claim --delete --only altra-000c01001"), r.all());
        assertFalse(r.all().contains("timed out after"), "no stale 'still missing' list: " + r.all());
    }

    @Test
    void theServerDyingWhileUnclaimWaitsIsExit4AndNamesTheDeletedClaims() throws Exception {
        sim = SimCluster.start();
        Run.Result made = Run.against(sim, new claim(), Seed.GPU, "--timeout", "60");
        assertEquals(0, made.exit(), made.all());
        sim.faults().add(Fault.CLAIM_STUCK_TERMINATING);
        CompletableFuture<Run.Result> run = background(new claim(), Seed.GPU, "--delete", "--timeout", "120");
        DockerHost.eventually(() -> Harvester.pciDeviceClaims(sim.admin()).withName(Seed.AUDIO).get().getMetadata().getDeletionTimestamp() != null,
                "both claims deleted");
        Thread.sleep(300);
        sim.close();
        Run.Result r = within(run, 60);
        assertEquals(Cli.Exit.UNREACHABLE.code, r.exit(), r.all());
        assertTrue(r.err().contains("already deleted: altra-000c01000, altra-000c01001"), r.all());
        assertTrue(r.err().contains("claim --only altra-000c01000"), r.all());
    }

    @Test
    void theServerDyingAfterAttachPatchedIsExit11WithWhatChangedAndTheUndo() throws Exception {
        SimCluster.Options slow = new SimCluster.Options();
        slow.vmiPhaseDelay = Duration.ofSeconds(60);
        sim = SimCluster.start(slow);
        Seed.gpuReady(sim);
        CompletableFuture<Run.Result> run = background(new attach(), "docker-host", "--device", Seed.GPU, "--timeout", "120");
        DockerHost.eventually(() -> DockerHost.hostDevices(sim).contains(DockerHost.GPU_ENTRY), "the VM patched");
        Thread.sleep(500);
        sim.close();
        Run.Result r = within(run, 60);
        assertEquals(Cli.Exit.PARTIAL.code, r.exit(), r.all());
        assertTrue(r.err().contains("changed: virtualmachine.kubevirt.io spec (hostDevices: +altra-000c01000, pinned to node altra)"), r.all());
        assertTrue(r.err().contains("undo: detach docker-host --device altra-000c01000"), r.all());
    }

    @Test
    void sigtermWhileClaimWaitsSaysWhatWasChangedAndTheUndo() throws Exception {
        sim = SimCluster.start(new SimCluster.Options().fault(Fault.CONTROLLER_DOWN));
        for (boolean json : List.of(false, true)) {
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-cp", System.getProperty("java.class.path"), "claim", json ? "altra-000c01000" : "altra-000c01000",
                    "--timeout", "120", "--kubeconfig", sim.kubeconfig().toString()));
            if (json) cmd.addAll(List.of("-o", "json"));
            Path out = Files.createTempFile("sigterm-out", ".txt");
            Path err = Files.createTempFile("sigterm-err", ".txt");
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            try {
                DockerHost.eventually(() -> Harvester.pciDeviceClaims(sim.admin()).withName(Seed.AUDIO).get(), "claims created");
                Thread.sleep(500);
                p.destroy(); // SIGTERM
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the process ends");
            } finally {
                p.destroyForcibly();
            }
            String stdout = Files.readString(out, StandardCharsets.UTF_8);
            String stderr = Files.readString(err, StandardCharsets.UTF_8);
            String all = "exit=" + p.exitValue() + "\n--- stdout ---\n" + stdout + "--- stderr ---\n" + stderr;
            assertEquals(143, p.exitValue(), all);
            assertTrue(stderr.contains("claim: interrupted (SIGINT/SIGTERM) — changed: pcideviceclaim.devices.harvesterhci.io/altra-000c01000 created; "
                    + "pcideviceclaim.devices.harvesterhci.io/altra-000c01001 created — undo: claim --delete --only altra-000c01000; "
                    + "claim --delete --only altra-000c01001"), all);
            assertFalse(stdout.contains("\033") || stderr.contains("\033"), "no escape codes to a file: " + all);
            if (json) {
                var report = io.fabric8.kubernetes.client.utils.Serialization.jsonMapper().readTree(stdout);
                assertEquals("SIGINT/SIGTERM", report.get("interrupted").asText(), all);
                assertEquals("claim --delete --only altra-000c01000", report.get("changes").get(0).get("undo").asText(), all);
            }
            // Next round starts clean.
            for (String n : List.of(Seed.GPU, Seed.AUDIO)) Harvester.pciDeviceClaims(sim.admin()).withName(n).withGracePeriod(0).delete();
            DockerHost.eventually(() -> Harvester.pciDeviceClaims(sim.admin()).list().getItems().isEmpty(), "claims gone");
        }
    }
}
