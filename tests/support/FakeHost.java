//SOURCES ../../scripts/lib/checks/RemoteShell.java

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A private copy of a host stand-in from tests/fixtures/ (a fake node root with fake dmesg/sudo, or
 * a guest with fake nvidia-smi/docker/sudo), editable per test, and a {@link RemoteShell} that runs
 * commands on it with /bin/sh and the fixture's bin/ first on PATH — what sshd does with an exec
 * request for a user whose PATH starts with those fakes. /usr/local/bin is left out so a real docker
 * or nvidia-smi on the test machine never answers.
 */
public final class FakeHost implements AutoCloseable {
    private final Path dir;

    private FakeHost(Path dir) {
        this.dir = dir;
    }

    /** Copies tests/fixtures/NAME (symlinks kept as symlinks) into a temporary directory. */
    public static FakeHost copy(String name) {
        try {
            Path from = Run.repoRoot().resolve("tests/fixtures").resolve(name);
            Path to = Files.createTempDirectory("fake-" + name);
            try (Stream<Path> all = Files.walk(from)) {
                for (Path p : (Iterable<Path>) all::iterator) {
                    Path t = to.resolve(from.relativize(p).toString());
                    if (Files.isSymbolicLink(p)) Files.createSymbolicLink(t, Files.readSymbolicLink(p));
                    else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) Files.createDirectories(t);
                    else Files.copy(p, t, java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
            return new FakeHost(to);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public Path dir() {
        return dir;
    }

    public Path path(String relative) {
        return dir.resolve(relative);
    }

    /** Writes a file under the copy (creating directories), e.g. write("state/driver", "unloaded\n"). */
    public FakeHost write(String relative, String text) {
        try {
            Path p = dir.resolve(relative);
            Files.createDirectories(p.getParent());
            Files.writeString(p, text, StandardCharsets.UTF_8);
            return this;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public FakeHost append(String relative, String text) {
        try {
            Files.writeString(dir.resolve(relative), text, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);
            return this;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Deletes a file or symlink (not what it points to), e.g. a fake program to make it "not installed". */
    public FakeHost delete(String relative) {
        try {
            Files.delete(dir.resolve(relative));
            return this;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Points a symlink somewhere else (replacing it), e.g. a device's driver link. */
    public FakeHost link(String relative, String target) {
        try {
            Path p = dir.resolve(relative);
            Files.deleteIfExists(p);
            Files.createDirectories(p.getParent());
            Files.createSymbolicLink(p, Path.of(target));
            return this;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Runs command lines as sshd would: /bin/sh -c COMMAND, bin/ first on PATH, a clean environment. */
    public RemoteShell shell() {
        return command -> {
            ProcessBuilder pb = new ProcessBuilder("/bin/sh", "-c", command);
            pb.environment().clear();
            pb.environment().put("PATH", dir.resolve("bin") + ":/usr/sbin:/usr/bin:/sbin:/bin");
            pb.environment().put("HOME", dir.toString());
            pb.environment().put("LANG", "C.UTF-8");
            try {
                Path out = Files.createTempFile(dir, "out", ".txt");
                Path err = Files.createTempFile(dir, "err", ".txt");
                Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    throw new AssertionError("timed out: " + command.lines().findFirst().orElse(command));
                }
                RemoteShell.Result r = new RemoteShell.Result(p.exitValue(), Files.readString(out), Files.readString(err));
                Files.delete(out);
                Files.delete(err);
                return r;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        };
    }

    @Override
    public void close() {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a temp dir left behind is harmless
        }
    }

    /** Lines as a file body. */
    public static String lines(List<String> lines) {
        return String.join("\n", lines) + "\n";
    }
}
