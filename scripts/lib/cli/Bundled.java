//FILES templates/pcideviceclaim-altra-000c01000.yaml=../../../templates/pcideviceclaim-altra-000c01000.yaml
//FILES templates/pcideviceclaim-altra-000c01001.yaml=../../../templates/pcideviceclaim-altra-000c01001.yaml
//FILES patches/vm-docker-host-nvidia-gpu.patch.json=../../../patches/vm-docker-host-nvidia-gpu.patch.json
//SOURCES Cli.java

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The in-repo source of intent (templates/, patches/), packed into every script's jar by the
 * //FILES lines above so they travel with `jbang x@catalog` too. One line per file: JBang drops
 * globs and directories when a script runs from a URL (a test guards this list).
 */
public final class Bundled {
    private Bundled() {}

    public static final List<String> TEMPLATES = List.of(
            "templates/pcideviceclaim-altra-000c01000.yaml",
            "templates/pcideviceclaim-altra-000c01001.yaml");
    public static final List<String> PATCHES = List.of(
            "patches/vm-docker-host-nvidia-gpu.patch.json");

    /** Text of a bundled file, e.g. "templates/pcideviceclaim-altra-000c01000.yaml". */
    public static String read(String path) {
        try (InputStream in = Bundled.class.getResourceAsStream("/" + path)) {
            if (in == null) {
                throw new Cli.UserError(Cli.Exit.INTERNAL, path + " is not bundled with this script — "
                        + "add a //FILES line for it in scripts/lib/cli/Bundled.java");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Cli.UserError(Cli.Exit.INTERNAL, "cannot read bundled " + path + ": " + e.getMessage());
        }
    }
}
