import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The start-up tuning (//CDS, JVM options in the script headers) must not change what users see:
 * the first run through ./jbang builds the script and dumps its class-data archive, and its
 * stdout must still be exactly the JSON document (the JVM logs CDS warnings to stdout unless
 * told otherwise); the second run uses the archive and prints the same.
 */
class StartupTest {
    @TempDir Path cache;

    @Test
    void jsonStaysCleanOnTheFirstRunThatDumpsTheClassDataArchive() throws Exception {
        try (SimCluster sim = SimCluster.start()) {
            Map<String, String> env = Map.of(
                    "HOME", System.getProperty("user.home"),
                    "JBANG_CACHE_DIR", cache.toString(),
                    "JBANG_NO_VERSION_CHECK", "true");
            List<String> cmd = List.of("./jbang", "--offline", "scripts/inventory.java", "-o", "json", "--kubeconfig", sim.kubeconfig().toString());

            Run.Result first = Run.command(env, Run.repoRoot().toFile(), cmd);
            assertEquals(0, first.exit(), first.all());
            assertInventoryJson(first.out());
            assertEquals(1, archives().size(), "the first run made a CDS archive: " + archives() + "\n" + first.all());
            assertTrue(first.err().lines().noneMatch(l -> l.contains("[cds]") || l.contains("[warning]")),
                    "no JVM log lines on stderr either:\n" + first.err());

            Run.Result second = Run.command(env, Run.repoRoot().toFile(), cmd);
            assertEquals(0, second.exit(), second.all());
            assertInventoryJson(second.out());
            assertEquals("", second.err(), "a cached run prints nothing on stderr");
        }
    }

    /**
     * A new user's shell has no locale (LANG unset): the scripts still compile (javac would read the
     * sources as ASCII) and print the same characters as under UTF-8, never '?'.
     */
    @Test
    void compilesAndPrintsUtf8WithNoLocaleInAFreshCache() {
        Map<String, String> env = Map.of(
                "HOME", System.getProperty("user.home"),
                "JBANG_CACHE_DIR", cache.toString(),
                "JBANG_NO_VERSION_CHECK", "true");
        Run.Result r = Run.commandWithoutLocale(env, Run.repoRoot().toFile(),
                List.of("./jbang", "--offline", "scripts/claim.java", "--node", "altra", "--address", "zzzz"));
        assertEquals(2, r.exit(), r.all());
        String expected = Run.script(new claim(), "--node", "altra", "--address", "zzzz").err().strip();
        assertTrue(expected.contains("—"), "the message has a non-ASCII character to check: " + expected);
        List<String> ours = r.err().lines().filter(l -> l.startsWith("claim: ")).toList();
        assertEquals(List.of(expected), ours, r.all());
    }

    private static void assertInventoryJson(String stdout) throws Exception {
        // Exactly one document: a log line before it or anything after it fails the parse.
        JsonNode doc = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).readTree(stdout);
        List<String> names = new ArrayList<>();
        doc.get("devices").forEach(d -> names.add(d.get("name").asText()));
        assertEquals(9, names.size(), stdout);
        assertTrue(names.contains("altra-000c01000"), stdout);
    }

    private List<Path> archives() throws Exception {
        try (Stream<Path> files = Files.walk(cache)) {
            return files.filter(p -> p.toString().endsWith(".jsa")).toList();
        }
    }
}
