import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * templates/ and patches/ travel inside the scripts' jars via one //FILES line each (JBang drops
 * globs and directories when run from a catalog URL). A file added without its line fails here.
 */
class BundledFilesTest {
    @Test
    void everyTemplateAndPatchIsListedAndReadable() throws Exception {
        Path root = Run.repoRoot();
        List<String> onDisk = new ArrayList<>();
        for (String dir : List.of("templates", "patches")) {
            try (Stream<Path> files = Files.walk(root.resolve(dir))) {
                files.filter(Files::isRegularFile).forEach(p -> onDisk.add(root.relativize(p).toString()));
            }
        }
        onDisk.sort(null);
        List<String> listed = new ArrayList<>(Bundled.TEMPLATES);
        listed.addAll(Bundled.PATCHES);
        listed.sort(null);
        assertEquals(onDisk, listed, "Bundled.TEMPLATES/PATCHES must list every file in templates/ and patches/");

        String source = Files.readString(root.resolve("scripts/lib/cli/Bundled.java"));
        for (String f : onDisk) {
            assertTrue(source.contains("//FILES " + f + "=../../../" + f + "\n"), "missing //FILES line for " + f);
            assertEquals(Files.readString(root.resolve(f)), Bundled.read(f), f + " bundled copy differs");
        }
    }
}
