import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `jbang inventory@<catalog>` from an unrelated directory, as a user of a remote catalog runs it. */
class CatalogTest {
    @TempDir Path elsewhere;

    /**
     * The launcher, with a private JBANG_DIR. Alias runs pass --offline: otherwise JBang's built-in
     * catalog makes every alias lookup fetch the jbanghub catalog from the internet.
     * The user's catalogs stay untouched; the caches are shared.
     */
    static Run.Result jbang(Path cwd, Path jbangDir, String... args) {
        Map<String, String> env = new HashMap<>();
        env.put("HOME", System.getProperty("user.home"));
        env.put("JBANG_DIR", jbangDir.toString());
        String cache = System.getenv("JBANG_CACHE_DIR");
        env.put("JBANG_CACHE_DIR", cache != null ? cache : Path.of(System.getProperty("user.home"), ".jbang", "cache").toString());
        env.put("JBANG_NO_VERSION_CHECK", "true");
        List<String> cmd = new java.util.ArrayList<>(List.of(Run.repoRoot().resolve("jbang").toString()));
        cmd.addAll(List.of(args));
        return Run.command(env, cwd.toFile(), cmd);
    }

    @Test
    void inventoryRunsFromACatalogAddedByPathWithBundledFiles() throws Exception {
        Path jbangDir = elsewhere.resolve("jbang-home");
        Path work = elsewhere.resolve("work");
        java.nio.file.Files.createDirectories(work);
        Run.Result add = jbang(work, jbangDir, "catalog", "add", "--name", "hv", Run.repoRoot().resolve("jbang-catalog.json").toString());
        assertEquals(0, add.exit(), add.all());

        try (SimCluster sim = SimCluster.start()) {
            Run.Result inv = jbang(work, jbangDir, "--offline", "inventory@hv", "--kubeconfig", sim.kubeconfig().toString(), "--node", "altra");
            assertEquals(0, inv.exit(), inv.all());
            assertTrue(inv.out().lines().anyMatch(l -> l.startsWith("altra-000c01000 ") && l.contains("10de:2204")), inv.all());
        }

        // The README's first command, through the catalog: every script, the simulator and its fixture travel.
        Run.Result demo = jbang(work, jbangDir, "--offline", "demo@hv", "--delay-ms", "50");
        assertEquals(0, demo.exit(), demo.all());
        assertTrue(demo.out().contains("RESULT: PASS"), demo.all());
        // diagnose --node-ssh sends scripts/lib/node/inspect-node.sh (//FILES): it travels too
        assertTrue(demo.out().lines().anyMatch(l -> l.matches("node-iommu\\s+PASS\\s+.*")), demo.all());

        Run.Result info = jbang(work, jbangDir, "--offline", "info", "tools", "inventory@hv");
        assertEquals(0, info.exit(), info.all());
        for (String f : Bundled.TEMPLATES) assertTrue(info.out().contains("\"" + f + "\""), f + " not bundled:\n" + info.out());
        for (String f : Bundled.PATCHES) assertTrue(info.out().contains("\"" + f + "\""), f + " not bundled:\n" + info.out());
    }
}
