import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ./jbang launcher's fast path and class-data archive policy, on a copy of the launcher in a
 * throw-away checkout with a one-file script (so nothing here edits the real checkout).
 * The fast path runs the java command JBang printed last time without starting JBang; to see
 * which path ran, the tests break JBang (a bogus class path in a private bootstrap directory):
 * a run that still works did not start JBang.
 */
class LauncherTest {
    @TempDir Path tmp;

    private static final String HELLO = """
            ///usr/bin/env jbang "$0" "$@" ; exit $?
            //CDS
            //RUNTIME_OPTIONS -Xlog:disable -Xlog:all=warning:stderr -Xlog:cds*=off:stderr
            public class hello {
                public static void main(String... args) {
                    if (args.length > 0 && args[0].equals("--help")) {
                        System.out.println("usage: hello WORD...");
                        return;
                    }
                    if (args.length > 0 && args[0].equals("--fail")) System.exit(3);
                    StringBuilder b = new StringBuilder("args=");
                    for (String a : args) b.append('[').append(a).append(']');
                    System.out.println(b);
                }
            }
            """;

    private Path checkout;
    private Path bootstrap;

    /** A checkout with the launcher, a catalog aliasing hello, and a private copy of JBang's class path. */
    private void setUp() throws Exception {
        checkout = tmp.resolve("checkout");
        Files.createDirectories(checkout);
        Files.copy(Run.repoRoot().resolve("jbang"), checkout.resolve("jbang"), StandardCopyOption.COPY_ATTRIBUTES);
        Files.createDirectories(checkout.resolve("scripts/lib/launcher"));
        Files.copy(Run.repoRoot().resolve("scripts/lib/launcher/FetchJars.java"), checkout.resolve("scripts/lib/launcher/FetchJars.java"));
        Files.writeString(checkout.resolve("hello.java"), HELLO);
        Files.writeString(checkout.resolve("jbang-catalog.json"), """
                {"aliases": {"hello": {"script-ref": "hello.java", "description": "prints its arguments"}}}
                """);
        bootstrap = tmp.resolve("bootstrap");
        Path shared = sharedBootstrap().resolve("0.132.1/classpath.txt");
        if (Files.isRegularFile(shared)) {
            Files.createDirectories(bootstrap.resolve("0.132.1"));
            Files.copy(shared, bootstrap.resolve("0.132.1/classpath.txt"));
        }
    }

    private static Path sharedBootstrap() {
        String dir = System.getenv("JBANG_BOOTSTRAP_DIR");
        if (dir != null) return Path.of(dir);
        String xdg = System.getenv("XDG_CACHE_HOME");
        return Path.of(xdg != null ? xdg : System.getProperty("user.home") + "/.cache", "jbang-bootstrap");
    }

    private Run.Result jbang(Map<String, String> extraEnv, String... args) {
        Map<String, String> env = new HashMap<>();
        env.put("HOME", System.getProperty("user.home"));
        env.put("JBANG_CACHE_DIR", tmp.resolve("cache").toString());
        env.put("JBANG_DIR", tmp.resolve("jbang-dir").toString());
        env.put("JBANG_NO_VERSION_CHECK", "true");
        env.put("JBANG_BOOTSTRAP_DIR", bootstrap.toString());
        env.put("JBANG_WRAPPER_FORCE_BOOTSTRAP", "1");
        env.putAll(extraEnv);
        List<String> cmd = new ArrayList<>(List.of(checkout.resolve("jbang").toString()));
        cmd.addAll(List.of(args));
        return Run.command(env, checkout.toFile(), cmd);
    }

    private Run.Result jbang(String... args) {
        return jbang(Map.of(), args);
    }

    private void breakJBang() throws Exception {
        Files.writeString(bootstrap.resolve("0.132.1/classpath.txt"), tmp.resolve("no-such-jbang.jar") + "\n");
    }

    @Test
    void rememberedCommandRunsWithoutJBangWithTheExactArgumentsUntilAFileChanges() throws Exception {
        setUp();
        Run.Result first = jbang("--offline", "hello", "a", "b c", "it's");
        assertEquals(0, first.exit(), first.all());
        assertEquals("args=[a][b c][it's]\n", first.out());
        String saved = Files.readString(bootstrap.resolve("0.132.1/classpath.txt"));

        breakJBang();
        // Arguments JBang would mangle or a shell would expand come through as given (JBang drops an empty one).
        Run.Result hit = jbang("--offline", "hello", "x", "", "$HOME", "*", "--offline");
        assertEquals(0, hit.exit(), "the remembered command did not run without JBang:\n" + hit.all());
        assertEquals("args=[x][][$HOME][*][--offline]\n", hit.out());
        assertEquals("", hit.err());

        // Other JBang options, another form of the script or another environment are other commands: JBang runs.
        assertNotEquals(0, jbang("hello", "x").exit(), "a run without --offline must ask JBang");
        assertNotEquals(0, jbang("--offline", "hello.java", "x").exit(), "the path form must ask JBang the first time");
        assertNotEquals(0, jbang(Map.of("JBANG_REPO", tmp.resolve("repo").toString()), "--offline", "hello", "x").exit(),
                "a changed JBANG_* variable must ask JBang");

        // Any edit in the checkout (here the script) makes the launcher ask JBang again.
        Files.writeString(checkout.resolve("hello.java"), HELLO + "// edited\n");
        Run.Result edited = jbang("--offline", "hello", "x");
        assertNotEquals(0, edited.exit(), "after an edit the launcher must ask JBang (which is broken here):\n" + edited.all());
        assertTrue(edited.err().contains("dev.jbang.Main"), edited.all());

        Files.writeString(bootstrap.resolve("0.132.1/classpath.txt"), saved);
        Run.Result rebuilt = jbang("--offline", "hello", "y");
        assertEquals(0, rebuilt.exit(), rebuilt.all());
        assertEquals("args=[y]\n", rebuilt.out());
        breakJBang();
        Run.Result again = jbang("--offline", "hello", "z");
        assertEquals(0, again.exit(), again.all());
        assertEquals("args=[z]\n", again.out());

        // A jar JBang built that is gone (jbang cache clear) is noticed before running anything.
        deleteTree(tmp.resolve("cache/jars"));
        Run.Result cleared = jbang("--offline", "hello", "z");
        assertNotEquals(0, cleared.exit(), cleared.all());
        assertTrue(cleared.err().contains("dev.jbang.Main"), "JBang must be asked when the jar is gone:\n" + cleared.all());
    }

    @Test
    void withoutAFingerprintOfTheCheckoutJBangIsAsked() throws Exception {
        setUp();
        // A find that fails (as a find without -printf does): no fingerprint, so nothing is remembered.
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        Files.writeString(bin.resolve("find"), "#!/bin/sh\nexit 1\n");
        assertTrue(bin.resolve("find").toFile().setExecutable(true));
        Map<String, String> noFind = Map.of("PATH", bin + ":" + System.getenv("PATH"));
        Run.Result first = jbang(noFind, "--offline", "hello", "a");
        assertEquals(0, first.exit(), first.all());
        breakJBang();
        Run.Result again = jbang(noFind, "--offline", "hello", "a");
        assertNotEquals(0, again.exit(), "the launcher must ask JBang (broken here) when it cannot fingerprint:\n" + again.all());
        assertTrue(again.err().contains("dev.jbang.Main"), again.all());
    }

    @Test
    void classDataArchiveComesOnlyFromARunThatWorkedAndIsRemadeWhenTheJarChanges() throws Exception {
        setUp();
        // A one-class script's archive is small: accept any size here (the default minimum is 8 MB).
        Map<String, String> anySize = Map.of("JBANG_WRAPPER_CDS_MIN_MB", "0");
        Run.Result help = jbang(anySize, "--offline", "hello", "--help");
        assertEquals(0, help.exit(), help.all());
        assertEquals("usage: hello WORD...\n", help.out());
        assertEquals(List.of(), archives(), "a --help run must not leave an archive");

        Run.Result failed = jbang(anySize, "--offline", "hello", "--fail");
        assertEquals(3, failed.exit(), failed.all());
        assertEquals(List.of(), archives(), "a failed run must not leave an archive");

        Run.Result worked = jbang(anySize, "--offline", "hello", "a");
        assertEquals(0, worked.exit(), worked.all());
        assertEquals("args=[a]\n", worked.out());
        assertEquals(1, archives().size(), "a run that worked leaves one archive: " + archives());
        Path archive = archives().get(0);
        assertTrue(archive.getFileName().toString().startsWith("hello."), archive.toString());

        Run.Result used = jbang(anySize, "--offline", "hello", "b");
        assertEquals(0, used.exit(), used.all());
        assertEquals("args=[b]\n", used.out());
        assertEquals("", used.err());

        // The jar changed after the archive was made (here: the archive is made older): it is made again.
        Path jar = archive.resolveSibling("hello.jar");
        FileTime before = FileTime.fromMillis(Files.getLastModifiedTime(jar).toMillis() - 60_000);
        Files.setLastModifiedTime(archive, before);
        Run.Result remade = jbang(anySize, "--offline", "hello", "c");
        assertEquals(0, remade.exit(), remade.all());
        assertEquals("args=[c]\n", remade.out());
        assertTrue(Files.isRegularFile(archive), "the stale archive was not made again");
        assertTrue(Files.getLastModifiedTime(archive).compareTo(Files.getLastModifiedTime(jar)) > 0, "the stale archive was not made again");

        // Too small for the default minimum: a real run of a one-class script keeps nothing.
        Files.delete(archive);
        Run.Result small = jbang("--offline", "hello", "d");
        assertEquals(0, small.exit(), small.all());
        assertEquals(List.of(), archives(), "an archive under the minimum size must not be kept");
    }

    @Test
    void inventoryKeepsNoArchiveFromHelpAndOneFromARealRun() throws Exception {
        Map<String, String> env = Map.of(
                "HOME", System.getProperty("user.home"),
                "JBANG_CACHE_DIR", tmp.resolve("cache").toString(),
                "JBANG_NO_VERSION_CHECK", "true",
                "JBANG_WRAPPER_FORCE_BOOTSTRAP", "1");
        Run.Result help = Run.command(env, Run.repoRoot().toFile(), List.of("./jbang", "--offline", "scripts/inventory.java", "--help"));
        assertEquals(0, help.exit(), help.all());
        assertTrue(help.out().startsWith("Usage: inventory"), help.all());
        assertEquals(List.of(), archives(), "inventory --help must not leave an archive");

        try (SimCluster sim = SimCluster.start()) {
            Run.Result run = Run.command(env, Run.repoRoot().toFile(),
                    List.of("./jbang", "--offline", "scripts/inventory.java", "-o", "json", "--kubeconfig", sim.kubeconfig().toString()));
            assertEquals(0, run.exit(), run.all());
            assertTrue(run.out().startsWith("{"), run.all());
        }
        assertEquals(1, archives().size(), "a real inventory run leaves one archive: " + archives());
        long size = Files.size(archives().get(0));
        assertTrue(size >= 8L << 20, "the archive of a real run holds the client's classes (>= 8 MB), not " + size + " bytes");
    }

    /**
     * A fresh machine: JBang's pinned jars come from the mirror named in ~/.m2/settings.xml (here a
     * repository on 127.0.0.1 holding the jars this machine runs JBang with), one request per jar and
     * nothing else (no Maven). A jar that is not the pinned one is refused and not kept, and Maven
     * is not asked for it instead (it would take the same jar).
     */
    @Test
    void bootstrapFetchesThePinnedJarsFromTheMavenMirrorAndRefusesAnyOther() throws Exception {
        setUp();
        // The jars this machine runs JBang with (in a local Maven repository's layout), by file name.
        Map<String, Path> jars = new HashMap<>();
        for (String entry : Files.readString(sharedBootstrap().resolve("0.132.1/classpath.txt")).strip().split(":")) {
            jars.put(Path.of(entry).getFileName().toString(), Path.of(entry));
        }
        List<String> requests = java.util.Collections.synchronizedList(new ArrayList<>());
        boolean[] tamper = {false};
        com.sun.net.httpserver.HttpServer mirror = com.sun.net.httpserver.HttpServer.create(
                new java.net.InetSocketAddress(java.net.InetAddress.getByName("127.0.0.1"), 0), 0);
        mirror.createContext("/", ex -> {
            try (ex) {
                String path = ex.getRequestURI().getPath();
                requests.add(path);
                Path file = jars.get(path.substring(path.lastIndexOf('/') + 1));
                if (file == null || !path.startsWith("/maven2/") || !file.toString().endsWith(path.substring("/maven2".length()))) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                byte[] body = Files.readAllBytes(file);
                if (tamper[0] && path.endsWith("/jbang-cli-0.132.1.jar")) body = java.util.Arrays.copyOf(body, body.length + 1);
                ex.sendResponseHeaders(200, body.length);
                ex.getResponseBody().write(body);
            }
        });
        mirror.start();
        try {
            Path home = Files.createDirectories(tmp.resolve("home/.m2")).getParent();
            Files.writeString(home.resolve(".m2/settings.xml"), "<settings><mirrors><mirror><id>local</id><mirrorOf>*</mirrorOf><url>http://127.0.0.1:"
                    + mirror.getAddress().getPort() + "/maven2</url></mirror></mirrors></settings>\n");
            Path fresh = tmp.resolve("fresh-bootstrap");
            Map<String, String> env = Map.of("HOME", home.toString(), "MAVEN_OPTS", "-Duser.home=" + home,
                    "JBANG_BOOTSTRAP_DIR", fresh.toString());

            Run.Result r = jbang(env, "--version");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.all().contains("0.132.1"), r.all());
            assertEquals(57, requests.size(), "one request per pinned jar: " + requests);
            assertTrue(requests.stream().allMatch(p -> p.startsWith("/maven2/") && p.endsWith(".jar")), "only jars, from the mirror: " + requests);
            String[] classpath = Files.readString(fresh.resolve("0.132.1/classpath.txt")).strip().split(":");
            assertEquals(57, classpath.length);
            for (String entry : classpath) {
                assertTrue(entry.startsWith(fresh.resolve("0.132.1/repository") + "/") && Files.isRegularFile(Path.of(entry)), entry);
            }
            assertTrue(classpath[0].endsWith("/dev/jbang/jbang-cli/0.132.1/jbang-cli-0.132.1.jar"), classpath[0]);
            assertTrue(List.of(classpath).stream().anyMatch(e -> e.endsWith("/gson-2.13.1.jar")), "JBang's own gson, not Maven's pick");
            assertTrue(Files.notExists(fresh.resolve("0.132.1/pom.xml")), "Maven was not needed");

            requests.clear();
            tamper[0] = true;
            Path other = tmp.resolve("tampered-bootstrap");
            Run.Result refused = jbang(Map.of("HOME", home.toString(), "MAVEN_OPTS", "-Duser.home=" + home,
                    "JBANG_BOOTSTRAP_DIR", other.toString()), "--version");
            assertNotEquals(0, refused.exit(), refused.all());
            assertTrue(refused.err().contains("/dev/jbang/jbang-cli/0.132.1/jbang-cli-0.132.1.jar does not match its pinned SHA-256"), refused.all());
            assertTrue(Files.notExists(other.resolve("0.132.1/classpath.txt")), "no class path from a refused jar");
            assertTrue(Files.notExists(other.resolve("0.132.1/repository/dev/jbang/jbang-cli/0.132.1/jbang-cli-0.132.1.jar")), "the refused jar is not kept");
            assertTrue(Files.notExists(other.resolve("0.132.1/pom.xml")), "Maven is not asked for a jar that was refused");
            assertTrue(requests.stream().noneMatch(p -> p.endsWith(".pom")), "no Maven resolution: " + requests);
        } finally {
            mirror.stop(0);
        }
    }

    private List<Path> archives() throws Exception {
        Path cache = tmp.resolve("cache");
        if (!Files.isDirectory(cache)) return List.of();
        try (Stream<Path> files = Files.walk(cache)) {
            return files.filter(p -> p.toString().endsWith(".jsa") || p.toString().endsWith(".aot")).sorted().toList();
        }
    }

    private static void deleteTree(Path dir) throws Exception {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
