//DEPS io.fabric8:kubernetes-client-bom:7.4.0@pom
//DEPS com.fasterxml.jackson:jackson-bom:2.19.2@pom
//DEPS io.fabric8:kubernetes-client
//DEPS io.fabric8:kubernetes-httpclient-jdk
//DEPS com.fasterxml.jackson.core:jackson-databind
//DEPS org.slf4j:slf4j-nop:2.0.17
//SOURCES ../cli/Cli.java ../cli/Text.java BodyTimeout.java Kubeconfigs.java CaOnlyHttpClientFactory.java Namespaces.java

import java.io.File;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.net.http.HttpConnectTimeoutException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import io.fabric8.kubernetes.api.model.NamedContext;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import picocli.CommandLine.Option;

/** Cluster access shared by every script: kubectl's flags, kubectl's kubeconfig rules, one client. */
public final class Kube {
    private Kube() {}

    /**
     * At exit the JVM waits up to 300 ms for every thread blocked in native code, and the JDK HTTP
     * client's selector thread always is (measured: 0.33 s between a script's last output and its
     * exit; bench/RESULTS.md). Interrupted, it closes its selector and ends, so the JVM exits at once.
     */
    static void stopHttpSelectors() {
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("HttpClient-") && t.getName().endsWith("-SelectorManager")) {
                t.interrupt();
                try {
                    t.join(100);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }

    /** Picocli mixin: --kubeconfig, --context, -n/--namespace, resolved the way kubectl does. */
    public static class Options {
        static {
            Runtime.getRuntime().addShutdownHook(new Thread(Kube::stopHttpSelectors, "stop-http-selectors"));
            // The TLS handshake's server-name check asks whether the chain ends at one of the JDK's public
            // roots, and the JDK parses its ~140 root certificates for that on first use: ~30 ms of CPU
            // inside our first request. Done on a second core meanwhile; the handshake waits for it if
            // it has not finished (class initialisation), and a JDK without that class skips it.
            Thread roots = new Thread(() -> {
                try {
                    Class.forName("sun.security.util.AnchorCertificates");
                } catch (ClassNotFoundException | LinkageError e) {
                    // another JDK: nothing to start early
                }
            }, "load-jdk-root-list");
            roots.setDaemon(true);
            roots.start();
        }

        @Option(names = "--kubeconfig", paramLabel = "FILE",
                description = "Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
        public String kubeconfig;

        @Option(names = "--context", paramLabel = "NAME", description = "Kubeconfig context (default: current-context)")
        public String context;

        @Option(names = {"-n", "--namespace"}, paramLabel = "NS",
                description = "Namespace of the VM (default: the context's namespace, else 'default')")
        public String namespace;

        @Option(names = "--request-timeout", paramLabel = "SECONDS", defaultValue = "10",
                description = "Timeout of a single API request, 0 for none as in kubectl (default: ${DEFAULT-VALUE})")
        public int requestTimeoutSeconds;

        /** The command this mixin belongs to: warnings go to its stderr. */
        @picocli.CommandLine.Spec(picocli.CommandLine.Spec.Target.MIXEE)
        picocli.CommandLine.Model.CommandSpec mixee;

        private KubernetesClient client;
        private Config config;

        /** The client, built on first use (commands that fail on bad input never pay for it). */
        public KubernetesClient client() {
            if (client == null) {
                client = new KubernetesClientBuilder()
                        .withConfig(config())
                        .withHttpClientFactory(new CaOnlyHttpClientFactory())
                        .withHttpClientBuilderConsumer(b -> b.addOrReplaceInterceptor(BodyTimeout.NAME,
                                new BodyTimeout(java.time.Duration.ofSeconds(requestTimeoutSeconds))))
                        .build();
            }
            return client;
        }

        public String namespace() {
            return config().getNamespace();
        }

        /** Server URL for messages; never includes credentials. */
        public String server() {
            return config().getMasterUrl();
        }

        /** The server URL if the kubeconfig was already read (for error messages), else null. */
        public String serverIfKnown() {
            return config == null || config.getMasterUrl() == null ? null : config.getMasterUrl().replaceFirst("/$", "");
        }

        public Config config() {
            if (config == null) {
                Config c = resolve();
                if (c.isTrustCerts()) warn("warning: insecure-skip-tls-verify is set for " + c.getMasterUrl()
                        + " in the kubeconfig: the API server's certificate is not checked");
                config = c;
            }
            return config;
        }

        private void warn(String line) {
            java.io.PrintWriter err = mixee != null ? mixee.commandLine().getErr() : new java.io.PrintWriter(System.err, true);
            err.println(line);
            err.flush();
        }

        private Config resolve() {
            if (requestTimeoutSeconds < 0) {
                throw new Cli.UserError(Cli.Exit.USAGE, "--request-timeout " + requestTimeoutSeconds
                        + " is negative — give seconds, or 0 for no timeout");
            }
            List<File> files = kubeconfigFiles();
            List<io.fabric8.kubernetes.api.model.Config> parsed = new ArrayList<>();
            Set<String> contexts = new LinkedHashSet<>();
            String current = null;
            for (File f : files) {
                io.fabric8.kubernetes.api.model.Config kc;
                String text = read(f);
                try {
                    kc = Kubeconfigs.parse(text);
                } catch (Kubeconfigs.NotAKubeconfig e) {
                    throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + f + " is not a kubeconfig (" + e.getMessage()
                            + ") — fix the file or point --kubeconfig at another one");
                } catch (RuntimeException e) {
                    throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + f + " is not valid YAML ("
                            + Text.firstLine(e) + ") — fix the file or point --kubeconfig at another one");
                }
                if (kc == null) {
                    throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + f + " is empty — point --kubeconfig at the "
                            + "cluster's kubeconfig (Harvester: Support page → Download KubeConfig)");
                }
                parsed.add(kc);
                if (kc.getContexts() != null) kc.getContexts().forEach(c -> contexts.add(c.getName()));
                if (current == null && kc.getCurrentContext() != null && !kc.getCurrentContext().isEmpty()) {
                    current = kc.getCurrentContext();
                }
            }
            String wanted = context != null ? context : current;
            if (wanted == null) {
                throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + describe(files)
                        + " has no current-context — pass --context NAME (available: " + String.join(", ", contexts) + ")");
            }
            if (!contexts.contains(wanted)) {
                throw new Cli.UserError(Cli.Exit.CONFIG, "context \"" + wanted + "\" not found in kubeconfig "
                        + describe(files) + " — pass --context with one of: "
                        + (contexts.isEmpty() ? "(none defined)" : String.join(", ", contexts)));
            }
            String clusterName = null;
            Set<String> clusters = new LinkedHashSet<>();
            for (io.fabric8.kubernetes.api.model.Config kc : parsed) {
                if (kc.getClusters() != null) kc.getClusters().forEach(nc -> clusters.add(nc.getName()));
                if (clusterName == null && kc.getContexts() != null) {
                    for (NamedContext nc : kc.getContexts()) {
                        if (wanted.equals(nc.getName()) && nc.getContext() != null) clusterName = nc.getContext().getCluster();
                    }
                }
            }
            if (clusterName == null || !clusters.contains(clusterName)) {
                throw new Cli.UserError(Cli.Exit.CONFIG, "context \"" + wanted + "\" names cluster \"" + clusterName
                        + "\", which kubeconfig " + describe(files) + " does not define (clusters: "
                        + (clusters.isEmpty() ? "none" : String.join(", ", clusters)) + ") — fix the context or the clusters section");
            }
            // fabric8's kubeconfig rules, on the merged document (kubectl's merge rules: Kubeconfigs).
            Config c;
            try {
                c = Kubeconfigs.clientConfig(Kubeconfigs.merge(files, parsed), wanted);
            } catch (RuntimeException e) {
                throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + describe(files) + " cannot be used with context \""
                        + wanted + "\" (" + Text.firstLine(e) + ") — fix the file or point --kubeconfig at another one");
            }
            if (c.getMasterUrl() == null || c.getMasterUrl().isEmpty()) {
                throw new Cli.UserError(Cli.Exit.CONFIG, "context \"" + wanted + "\" names cluster \"" + clusterName
                        + "\" which has no server in kubeconfig " + describe(files) + " — fix the clusters section");
            }
            if (namespace != null) c.setNamespace(namespace);
            if (c.getNamespace() == null || c.getNamespace().isEmpty()) c.setNamespace("default");
            // 0 = no timeout, as kubectl's --request-timeout=0.
            int ms = requestTimeoutSeconds * 1000;
            c.setConnectionTimeout(ms);
            c.setRequestTimeout(ms);
            // kubectl fails fast when the server is down; fabric8's default retries for seconds.
            c.setRequestRetryBackoffLimit(1);
            c.setRequestRetryBackoffInterval(200);
            // Plain-http servers (the sandbox) get HTTP/1.1: the JDK client's h2c upgrade breaks on large lists.
            if (c.getMasterUrl().startsWith("http://")) c.setHttp2Disable(true);
            return c;
        }

        private List<File> kubeconfigFiles() {
            if (kubeconfig != null) {
                File f = new File(kubeconfig);
                if (!f.isFile()) {
                    throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + kubeconfig
                            + " does not exist — check the --kubeconfig path");
                }
                return List.of(f);
            }
            String env = System.getenv("KUBECONFIG");
            List<File> found = new ArrayList<>();
            if (env != null && !env.isBlank()) {
                for (String p : env.split(File.pathSeparator)) {
                    if (!p.isBlank() && new File(p).isFile()) found.add(new File(p));
                }
                if (found.isEmpty()) {
                    throw new Cli.UserError(Cli.Exit.CONFIG, "KUBECONFIG=" + env
                            + " names no existing file — fix KUBECONFIG or pass --kubeconfig FILE");
                }
                return found;
            }
            File home = new File(System.getProperty("user.home"), ".kube/config");
            if (!home.isFile()) {
                throw new Cli.UserError(Cli.Exit.CONFIG, "no kubeconfig found (no --kubeconfig, KUBECONFIG unset, "
                        + home + " missing) — pass --kubeconfig FILE, e.g. --kubeconfig ~/.kube/altra.yaml");
            }
            return List.of(home);
        }
    }

    private static String read(File f) {
        try {
            return java.nio.file.Files.readString(f.toPath());
        } catch (IOException e) {
            throw new Cli.UserError(Cli.Exit.CONFIG, "cannot read kubeconfig " + f + " (" + Text.firstLine(e) + ") — check its permissions");
        }
    }

    private static String describe(List<File> files) {
        return files.size() == 1 ? files.get(0).toString() : files.toString();
    }

    /**
     * Turns fabric8 failures into one-line {@link Cli.UserError}s (the single mapping from API
     * failures to exit codes). Anything unrecognised is returned unchanged: it is a bug.
     */
    public static Throwable translate(Throwable t) {
        return translate(t, null);
    }

    /** As {@link #translate(Throwable)}; server (may be null) is the API server's URL, named in the message. */
    public static Throwable translate(Throwable t, String server) {
        if (t instanceof Cli.UserError) return t;
        String at = server == null ? "" : " at " + server;
        javax.net.ssl.SSLException tls = find(t, javax.net.ssl.SSLException.class);
        if (tls != null && find(tls, java.security.cert.CertificateException.class) != null) {
            return new Cli.UserError(Cli.Exit.UNREACHABLE, "cannot verify the API server" + at + ": its certificate does not "
                    + "match the kubeconfig's certificate-authority(-data) (" + Text.firstLine(rootCause(tls)) + ") — put the "
                    + "cluster's CA in certificate-authority-data (Harvester: download the kubeconfig again), or for a "
                    + "throw-away test cluster only set insecure-skip-tls-verify: true", tls);
        }
        if (tls != null) {
            return new Cli.UserError(Cli.Exit.UNREACHABLE, "cannot reach the API server" + at + ": the TLS handshake failed ("
                    + Text.firstLine(rootCause(tls)) + ") — is the kubeconfig's server address (scheme and port) right?", tls);
        }
        KubernetesClientException kce = find(t, KubernetesClientException.class);
        if (kce == null) return t;
        int code = kce.getCode();
        String reason = statusMessage(kce);
        if (code == 401 && reason.equals(": Unauthorized")) reason = "";
        if (code == 401) {
            return new Cli.UserError(Cli.Exit.FORBIDDEN, "the API server" + at + " rejected our credentials (401 Unauthorized"
                    + reason + ") — refresh the token or client certificate in your kubeconfig", kce);
        }
        if (code == 403) {
            return new Cli.UserError(Cli.Exit.FORBIDDEN, "forbidden (403" + reason
                    + ") — your kubeconfig user lacks RBAC permission for this; use an admin kubeconfig "
                    + "(Harvester: Support page → Download KubeConfig)", kce);
        }
        if (code == 404) {
            return new Cli.UserError(Cli.Exit.NOT_FOUND, "not found (404" + reason
                    + ") — is the pcidevices-controller add-on enabled and the name right?", kce);
        }
        if (code == 409) {
            return new Cli.UserError(Cli.Exit.CONFLICT, "conflict (409" + reason
                    + ") — the object changed while we worked; re-run the command", kce);
        }
        if (code == 400 || code == 422 || (code >= 500 && reason.contains("admission webhook"))) {
            return new Cli.UserError(Cli.Exit.REJECTED, "the API server rejected the request (" + code + reason + ")", kce);
        }
        if (code < 400 || code >= 500) {
            Throwable net = networkCause(kce);
            if (net != null) {
                return new Cli.UserError(Cli.Exit.UNREACHABLE, "cannot reach the API server" + at + " ("
                        + net.getClass().getSimpleName() + (net.getMessage() != null ? ": " + net.getMessage() : "")
                        + ") — is the cluster up and is the kubeconfig's server address right?", kce);
            }
        }
        return t;
    }

    private static String statusMessage(KubernetesClientException e) {
        if (e.getStatus() != null && e.getStatus().getMessage() != null && !e.getStatus().getMessage().isEmpty()) {
            return ": " + e.getStatus().getMessage();
        }
        return "";
    }

    private static Throwable networkCause(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof ConnectException || c instanceof UnknownHostException || c instanceof NoRouteToHostException
                    || c instanceof HttpConnectTimeoutException || c instanceof InterruptedIOException
                    || (c instanceof IOException && c.getClass().getName().startsWith("java.net"))) {
                return c;
            }
            if (c.getCause() == c) break;
        }
        return null;
    }

    private static Throwable rootCause(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) c = c.getCause();
        return c;
    }

    private static <T extends Throwable> T find(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) return type.cast(c);
            if (c.getCause() == c) break;
        }
        return null;
    }
}
