import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The README's first command: the whole runbook on the sandbox, and each fault caught where it bites. */
class DemoTest {
    static Run.Result demo(String... args) {
        List<String> all = new ArrayList<>(List.of("--delay-ms", "50"));
        all.addAll(List.of(args));
        return Run.script(new demo(), all.toArray(new String[0]));
    }

    @Test
    void theRunbookPassesEndToEnd() {
        Run.Result r = demo();
        assertEquals(0, r.exit(), r.all());
        String out = r.out();
        int inv = out.indexOf("━━ 1/5 inventory"), claim = out.indexOf("━━ 2/5 claim"), attach = out.indexOf("━━ 3/5 attach"),
                verify = out.indexOf("━━ 4/5 verify"), diagnose = out.indexOf("━━ 5/5 diagnose");
        assertTrue(inv >= 0 && inv < claim && claim < attach && attach < verify && verify < diagnose, out);
        assertTrue(out.contains("pcideviceclaim.devices.harvesterhci.io/altra-000c01001 created (shares IOMMU group 18 with altra-000c01000)"), out);
        assertTrue(out.contains("virtualmachine.kubevirt.io/docker-host patched (hostDevices: +altra-000c01000)"), out);
        assertTrue(out.contains("docker-host Running on altra with altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)"), out);
        assertTrue(out.contains("[10de:2204]") && out.contains("RESULT: PASS"), out);
        assertTrue(out.lines().anyMatch(l -> l.matches("\\d+ passed, \\d+ warnings, 0 failed")), out);
        assertTrue(out.contains("Done: the RTX 3090 is visible inside default/docker-host."), out);
        // verify --docker: the guest's driver, Docker and its nvidia runtime, and a container that sees the GPU
        assertTrue(out.contains("$ verify docker-host --docker --docker-image nvidia/cuda:12.4.1-base-ubuntu22.04"), out);
        for (String check : List.of("guest-nvidia-driver", "guest-docker", "guest-nvidia-runtime", "guest-docker-gpu")) {
            assertTrue(out.lines().anyMatch(l -> l.matches(check + "\\s+PASS\\s+.*")), check + ": " + out);
        }
        // diagnose --node-ssh: the node stand-in answers over SSH (Host altra in the sandbox's ssh_config)
        assertTrue(out.contains("$ diagnose docker-host --device altra-000c01000 --node-ssh"), out);
        for (String check : List.of("node-iommu", "node-iommu-group", "node-driver", "node-boot-console", "node-dmesg")) {
            assertTrue(out.lines().anyMatch(l -> l.matches(check + "\\s+PASS\\s+.*")), check + ": " + out);
        }
    }

    static Stream<Arguments> faults() {
        return Stream.of(
                // fault, exit code, failing step, what names the cause (in the demo's stdout+stderr)
                Arguments.of("forbidden", 5, "Step 1 (inventory)", "forbidden (403"),
                Arguments.of("controller-down", 9, "Step 2 (claim)", "controller-pod        FAIL"),
                Arguments.of("bind-fails", 9, "Step 2 (claim)", "vfio-pci/bind: invalid argument"),
                Arguments.of("not-permitted", 9, "Step 2 (claim)", "permitted             FAIL"),
                Arguments.of("device-plugin-missing", 9, "Step 2 (claim)", "allocatable           FAIL"),
                // Harvester v1.9: the claim meets the fault; diagnose's FIX line names the fix and the check (after "#")
                Arguments.of("claim-stuck-terminating", 9, "Step 2 (claim)", "FIX: kubectl -n harvester-system delete pod harvester-pcidevices-controller-x7k2p   # controller-pod"),
                Arguments.of("baremetal-gpu-node", 10, "Step 2 (claim)", "remove the label: kubectl label node altra harvesterhci.io/gpu-baremetal-workloads-   # claimed"),
                Arguments.of("addon-disabled", 6, "Step 2 (claim)", "FIX: kubectl -n harvester-system patch addons.harvesterhci.io pcidevices-controller --type merge -p '{\"spec\":{\"enabled\":true}}'   # addon"),
                Arguments.of("addon-no-devices", 6, "Step 2 (claim)", "FIX: upgrade to Harvester v1.9.0 or later   # addon-no-devices"),
                Arguments.of("guest-no-device", 24, "Step 4 (verify)", "not visible in the guest"),
                Arguments.of("guest-sudo-password", 25, "Step 4 (verify)", "sudo"),
                Arguments.of("no-nvidia-runtime", 26, "Step 4 (verify)", "do not include nvidia: the NVIDIA Container Toolkit"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("faults")
    void eachFaultFailsAtItsStepAndIsNamed(String fault, int exit, String step, String cause) {
        Run.Result r = demo("--fault", fault, "--timeout", "3");
        assertEquals(exit, r.exit(), r.all());
        assertTrue(r.out().contains(step + " failed with exit code " + exit), r.all());
        assertTrue(r.out().contains("━━ 5/5 diagnose"), "diagnose runs after the failure: " + r.all());
        assertTrue((r.out() + r.err()).contains(cause), "the cause '" + cause + "' is named: " + r.all());
        assertFalse(r.out().contains("Done: the RTX 3090 is visible"), r.all());
    }

    @Test
    void duplicatePermittedEntriesAreHarmlessTheRunbookPassesAndDiagnoseWarns() {
        Run.Result r = demo("--fault", "duplicate-permitted");
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().contains("RESULT: PASS") && r.out().contains("Done: the RTX 3090 is visible"), r.all());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("permitted-duplicates\\s+WARN\\s+nvidia.com/GA102_GEFORCE_RTX_3090\\s+.*harmless \\(harvester#10008\\).*")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\d+ passed, [1-9]\\d* warnings, 0 failed")), r.out());
    }

    @Test
    void theWebhookRaceIsRetriedAndTheRunbookStillPasses() {
        Run.Result r = demo("--fault", "webhook-race");
        assertEquals(0, r.exit(), r.all());
        assertTrue((r.out() + r.err()).contains("not yet in the pcidevices cache — retrying in"), r.all());
        assertTrue(r.out().contains("RESULT: PASS"), r.all());
    }
}
