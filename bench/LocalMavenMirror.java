import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

/**
 * A Maven repository on 127.0.0.1 served from a local one (~/.m2/repository), so bench/run.sh can
 * time a first run on a fresh machine (empty Maven repository and JBang cache) without leaving the
 * machine. Maven stores a remote's metadata as maven-metadata-ID.xml; it is served under its
 * remote name. Usage (JDK source launcher, no dependencies):
 *
 * <pre>  java bench/LocalMavenMirror.java REPOSITORY STATE_DIR</pre>
 *
 * Writes STATE_DIR/url when up; STATE_DIR/bytes holds the bytes served so far. Stops when stdin closes.
 */
public class LocalMavenMirror {
    public static void main(String... args) throws Exception {
        Path repo = Path.of(args[0]).toAbsolutePath().normalize();
        Path state = Path.of(args[1]);
        AtomicLong served = new AtomicLong();
        // Without TCP_NODELAY each response on a kept-alive connection waits for the client's delayed
        // ACK (50-75 ms a request instead of ~27 ms), slower than the network this mirror stands in for.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.createContext("/", ex -> {
            try (ex) {
                Path file = find(repo, ex.getRequestURI().getPath());
                if (file == null) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                long size = Files.size(file);
                if ("HEAD".equals(ex.getRequestMethod())) {
                    ex.getResponseHeaders().set("Content-Length", String.valueOf(size));
                    ex.sendResponseHeaders(200, -1);
                    return;
                }
                ex.sendResponseHeaders(200, size);
                try (OutputStream out = ex.getResponseBody()) {
                    Files.copy(file, out);
                }
                served.addAndGet(size);
                Files.writeString(state.resolve("bytes"), served + "\n");
            } catch (IOException e) {
                // the client went away; nothing to do
            }
        });
        server.start();
        Files.writeString(state.resolve("url"), "http://127.0.0.1:" + server.getAddress().getPort() + "/\n");
        while (System.in.read() != -1) {
            // up until stdin closes
        }
        server.stop(0);
        System.exit(0);
    }

    /** The file for a request path, inside the repository only; remote metadata under its local name. */
    private static Path find(Path repo, String path) throws IOException {
        Path p = repo.resolve(path.replaceFirst("^/+", "")).normalize();
        if (!p.startsWith(repo)) return null;
        if (Files.isRegularFile(p)) return p;
        String name = p.getFileName().toString();
        if (name.startsWith("maven-metadata.xml")) {
            String suffix = name.substring("maven-metadata.xml".length());
            for (String id : new String[] {"central", "local"}) {
                Path m = p.resolveSibling("maven-metadata-" + id + ".xml" + suffix);
                if (Files.isRegularFile(m)) return m;
            }
        }
        return null;
    }
}
