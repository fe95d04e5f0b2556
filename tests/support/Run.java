import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs a script the way a user does and captures exit code, stdout and stderr. */
public final class Run {
    private Run() {}

    public record Result(int exit, String out, String err) {
        /** stdout and stderr, for failure messages. */
        public String all() {
            return "exit=" + exit + "\n--- stdout ---\n" + out + "--- stderr ---\n" + err;
        }
    }

    /** Runs a script's command in this JVM (fast; for everything but environment-dependent cases). */
    public static Result script(Object command, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = Cli.run(command, new PrintWriter(out), new PrintWriter(err), args);
        return new Result(rc, out.toString(), err.toString());
    }

    /** Runs a script with --kubeconfig pointing at the simulated cluster. */
    public static Result against(SimCluster sim, Object command, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--kubeconfig");
        all.add(sim.kubeconfig().toString());
        return script(command, all.toArray(new String[0]));
    }

    /**
     * Runs a script's main class in a fresh JVM with exactly the given environment (plus PATH and
     * JAVA_HOME), so HOME and KUBECONFIG are what the test says, as for a user's shell.
     */
    public static Result process(Map<String, String> env, String mainClass, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        if (env.containsKey("HOME")) cmd.add("-Duser.home=" + env.get("HOME"));
        cmd.add(mainClass);
        cmd.addAll(List.of(args));
        return command(env, null, cmd);
    }

    /** Runs any command line with a clean environment (PATH, JAVA_HOME, LANG and the given variables). */
    public static Result command(Map<String, String> env, File dir, List<String> cmd) {
        return command(env, dir, cmd, true);
    }

    /** As {@link #command(Map, File, List)} with no locale at all (LANG/LC_* unset), as in many containers and cron jobs. */
    public static Result commandWithoutLocale(Map<String, String> env, File dir, List<String> cmd) {
        return command(env, dir, cmd, false);
    }

    private static Result command(Map<String, String> env, File dir, List<String> cmd, boolean keepLang) {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().clear();
        for (String keep : keepLang ? List.of("PATH", "JAVA_HOME", "LANG") : List.of("PATH", "JAVA_HOME")) {
            String v = System.getenv(keep);
            if (v != null) pb.environment().put(keep, v);
        }
        pb.environment().putAll(env);
        if (dir != null) pb.directory(dir);
        try {
            Path out = Files.createTempFile("run-out", ".txt");
            Path err = Files.createTempFile("run-err", ".txt");
            pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            Process p = pb.start();
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + cmd);
            }
            Result r = new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
            return r;
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** The repository root (where jbang-catalog.json is), found from the working directory. */
    public static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("jbang-catalog.json")) && Files.isDirectory(p.resolve("scripts"))) return p;
        }
        throw new AssertionError("run the tests from inside the repository (./jbang test)");
    }
}
