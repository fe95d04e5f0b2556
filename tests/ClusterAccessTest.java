import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How every script finds and talks to the cluster: kubectl's rules, one-line errors, exit codes. */
class ClusterAccessTest {
    @TempDir Path home;

    static void assertOneLineError(Run.Result r, int exit, String... fragments) {
        assertEquals(exit, r.exit(), r.all());
        assertEquals("", r.out(), r.all());
        assertEquals(1, r.err().lines().count(), "exactly one line, no stack trace:\n" + r.err());
        for (String f : fragments) assertTrue(r.err().contains(f), "missing '" + f + "' in: " + r.err());
    }

    @Test
    void noKubeconfigAnywhere() {
        Run.Result r = Run.process(Map.of("HOME", home.toString()), "inventory");
        assertOneLineError(r, 3, "inventory: no kubeconfig found", "pass --kubeconfig FILE");
    }

    @Test
    void kubeconfigEnvironmentVariableIsHonouredLikeKubectl() {
        try (SimCluster sim = SimCluster.start()) {
            Run.Result r = Run.process(Map.of("HOME", home.toString(), "KUBECONFIG", "/nonexistent:" + sim.kubeconfig()),
                    "inventory", "--node", "altra");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains("altra-000c01000"), r.out());
        }
        Run.Result missing = Run.process(Map.of("HOME", home.toString(), "KUBECONFIG", "/nonexistent"), "inventory");
        assertOneLineError(missing, 3, "KUBECONFIG=/nonexistent names no existing file");
    }

    @Test
    void defaultKubeconfigInHomeAndNamespaceFromContext() throws Exception {
        try (SimCluster sim = SimCluster.start()) {
            Files.createDirectories(home.resolve(".kube"));
            Files.copy(sim.kubeconfig(), home.resolve(".kube/config"));
            Run.Result r = Run.process(Map.of("HOME", home.toString()), "inventory", "-o", "json");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains("\"altra-000c01000\""), r.out());
        }
    }

    @Test
    void missingKubeconfigFile() {
        Run.Result r = Run.script(new inventory(), "--kubeconfig", home.resolve("nope.yaml").toString());
        assertOneLineError(r, 3, "kubeconfig " + home.resolve("nope.yaml") + " does not exist");
    }

    @Test
    void malformedKubeconfig() throws Exception {
        Path bad = home.resolve("bad.yaml");
        Files.writeString(bad, "clusters: [ {name: x\n");
        Run.Result r = Run.script(new inventory(), "--kubeconfig", bad.toString());
        assertOneLineError(r, 3, "is not valid YAML");
    }

    @Test
    void unknownContext() {
        try (SimCluster sim = SimCluster.start()) {
            Run.Result r = Run.against(sim, new inventory(), "--context", "prod");
            assertOneLineError(r, 3, "context \"prod\" not found in kubeconfig", "one of: harvester-sim");
            assertTrue(sim.clientRequests().isEmpty(), "no request is sent for a bad context");
        }
    }

    @Test
    void unreachableApiServer() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Path kc = home.resolve("down.yaml");
        SimCluster.writeKubeconfig(kc, "http://127.0.0.1:" + port, "secret-token-xyz");
        long t0 = System.nanoTime();
        Run.Result r = Run.script(new inventory(), "--kubeconfig", kc.toString());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertOneLineError(r, 4, "inventory: cannot reach the API server", "kubeconfig's server address");
        assertFalse(r.err().contains("secret-token-xyz"));
        assertTrue(ms < 8000, "fails fast like kubectl, took " + ms + " ms");
    }
}
