import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/** The exit codes have one source, Cli.Exit: README's table says the same, code by code. */
class ExitCodesTest {
    @Test
    void readmeTableMatchesCliExit() throws Exception {
        String readme = Files.readString(Run.repoRoot().resolve("README.md"));
        String section = readme.substring(readme.indexOf("## Exit codes"), readme.indexOf("## From a remote catalog"));
        Map<Integer, String> documented = new LinkedHashMap<>();
        Matcher m = Pattern.compile("(?m)^\\| (\\d+) \\| (.+) \\|$").matcher(section);
        while (m.find()) documented.put(Integer.parseInt(m.group(1)), m.group(2));
        Map<Integer, String> source = new LinkedHashMap<>();
        for (Cli.Exit e : Cli.Exit.values()) source.put(e.code, e.meaning);
        assertEquals(source, documented);
    }
}
