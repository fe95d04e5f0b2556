import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;

import javax.xml.parsers.DocumentBuilderFactory;

import org.w3c.dom.Element;
import org.w3c.dom.Node;

/**
 * ./jbang's bootstrap of JBang: downloads a pinned list of jars (stdin: "group:artifact:version
 * SHA-256" per line) from Maven Central, or from the mirror of Central the Maven settings name,
 * several at a time, checks each against its SHA-256 and writes their paths, in list order, to
 * CLASSPATH_FILE. Resolving jbang-cli with Maven instead costs about 1,700 sequential requests
 * (Maven's dependency plugin and every POM), this costs one per jar.
 *
 * <pre>  java [$MAVEN_OPTS] scripts/lib/launcher/FetchJars.java DEST_DIR CLASSPATH_FILE [GLOBAL_SETTINGS_XML] &lt;list</pre>
 *
 * Reads Maven's settings the way mvn does (${user.home}/.m2/settings.xml, then the global one) but
 * handles only the plain case: no proxy, no credentials, not offline. Anything else, and any failure
 * to download, exits 3 with one line on stderr, and ./jbang lets Maven resolve JBang instead. A jar
 * that does not match its SHA-256 exits 4: ./jbang stops there (Maven would take the same jar).
 */
public class FetchJars {
    static final String CENTRAL = "https://repo.maven.apache.org/maven2/";
    static final int PARALLEL = 8;

    public static void main(String... args) throws Exception {
        try {
            Path dest = Path.of(args[0]);
            List<String[]> jars = new ArrayList<>();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.isBlank()) jars.add(line.trim().split("\\s+"));
            }
            List<Path> settings = new ArrayList<>(List.of(Path.of(System.getProperty("user.home"), ".m2", "settings.xml")));
            if (args.length > 2) settings.add(Path.of(args[2]));
            String base = repositoryUrl(settings);

            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10))
                    .followRedirects(HttpClient.Redirect.NORMAL).build();
            Semaphore slots = new Semaphore(PARALLEL);
            List<CompletableFuture<Path>> files = new ArrayList<>();
            for (String[] jar : jars) files.add(fetch(http, slots, base, dest, jar[0], jar[1]));
            StringBuilder classpath = new StringBuilder();
            for (CompletableFuture<Path> f : files) classpath.append(classpath.isEmpty() ? "" : ":").append(f.join());
            Files.writeString(Path.of(args[1]), classpath + "\n");
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof WrongChecksum) {
                System.err.println("jbang: " + cause.getMessage() + ": not using it (a bad download or a tampered mirror); retry, or check the mirror in your Maven settings");
                System.exit(4);
            }
            System.err.println("jbang: could not download JBang's jars directly (" + cause.getMessage() + ")");
            System.exit(3);
        }
    }

    /** DEST/group/path/artifact/version/artifact-version.jar, downloaded unless it is there with the right SHA-256. */
    static CompletableFuture<Path> fetch(HttpClient http, Semaphore slots, String base, Path dest, String gav, String sha256) throws Exception {
        String[] c = gav.split(":");
        String path = c[0].replace('.', '/') + "/" + c[1] + "/" + c[2] + "/" + c[1] + "-" + c[2] + ".jar";
        Path file = dest.resolve(path);
        if (Files.isRegularFile(file) && sha256.equals(sha256(Files.readAllBytes(file)))) return CompletableFuture.completedFuture(file);
        slots.acquire();
        return http.sendAsync(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60)).build(),
                        HttpResponse.BodyHandlers.ofByteArray())
                .whenComplete((r, e) -> slots.release())
                .thenApply(r -> {
                    try {
                        if (r.statusCode() != 200) throw new IllegalStateException("HTTP " + r.statusCode() + " for " + base + path);
                        if (!sha256.equals(sha256(r.body()))) throw new WrongChecksum(base + path + " does not match its pinned SHA-256");
                        Files.createDirectories(file.getParent());
                        Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".part");
                        Files.write(tmp, r.body());
                        return Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                    } catch (WrongChecksum e) {
                        throw e;
                    } catch (Exception e) {
                        throw new IllegalStateException(e.getMessage(), e);
                    }
                });
    }

    /** A download that is not the pinned jar: never used, and Maven is not asked for it either. */
    static class WrongChecksum extends RuntimeException {
        WrongChecksum(String message) {
            super(message);
        }
    }

    static String sha256(byte[] data) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }

    /**
     * Central, or the mirror Maven would use for it: a mirror whose mirrorOf names "central" wins,
     * then the first whose pattern matches (*, external:*, lists, !central excludes), user settings
     * before global ones.
     */
    static String repositoryUrl(List<Path> settingsFiles) throws Exception {
        List<Element> mirrors = new ArrayList<>();
        List<String> servers = new ArrayList<>();
        for (Path p : settingsFiles) {
            if (!Files.isRegularFile(p)) continue;
            Element root = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(p.toFile()).getDocumentElement();
            if ("true".equals(text(root, "offline"))) throw new IllegalStateException("Maven is offline in " + p);
            for (Element proxy : children(child(root, "proxies"), "proxy")) {
                if (!"false".equals(text(proxy, "active"))) throw new IllegalStateException("a proxy in " + p);
            }
            for (Element server : children(child(root, "servers"), "server")) servers.add(text(server, "id"));
            mirrors.addAll(children(child(root, "mirrors"), "mirror"));
        }
        Element chosen = null;
        for (Element m : mirrors) if ("central".equals(text(m, "mirrorOf"))) { chosen = m; break; }
        if (chosen == null) for (Element m : mirrors) if (mirrorsCentral(text(m, "mirrorOf"))) { chosen = m; break; }
        if (chosen == null) return CENTRAL;
        String url = text(chosen, "url");
        if ("true".equals(text(chosen, "blocked")) || url == null || url.contains("${") || servers.contains(text(chosen, "id"))) {
            throw new IllegalStateException("mirror " + text(chosen, "id") + " is blocked, needs credentials or has no plain URL");
        }
        return url.endsWith("/") ? url : url + "/";
    }

    static boolean mirrorsCentral(String mirrorOf) {
        if (mirrorOf == null) return false;
        boolean match = false;
        for (String p : mirrorOf.split(",")) {
            p = p.trim();
            if (p.equals("!central")) return false;
            if (p.equals("*") || p.equals("external:*") || p.equals("central")) match = true;
        }
        return match;
    }

    static Element child(Element parent, String name) {
        List<Element> all = children(parent, name);
        return all.isEmpty() ? null : all.get(0);
    }

    static List<Element> children(Element parent, String name) {
        List<Element> out = new ArrayList<>();
        if (parent == null) return out;
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals(name)) out.add(e);
        }
        return out;
    }

    static String text(Element parent, String name) {
        Element e = child(parent, name);
        return e == null ? null : e.getTextContent().trim();
    }
}
