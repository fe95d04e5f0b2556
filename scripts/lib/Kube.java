//DEPS io.fabric8:kubernetes-client-bom:7.4.0@pom
//DEPS com.fasterxml.jackson:jackson-bom:2.19.2@pom
//DEPS io.fabric8:kubernetes-client
//DEPS io.fabric8:kubernetes-httpclient-jdk
//DEPS com.fasterxml.jackson.core:jackson-databind
//DEPS org.slf4j:slf4j-nop:2.0.17
//SOURCES Cli.java

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
import io.fabric8.kubernetes.client.internal.KubeConfigUtils;
import io.fabric8.kubernetes.client.jdkhttp.JdkHttpClientFactory;
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
                description = "Timeout of a single API request (default: ${DEFAULT-VALUE})")
        public int requestTimeoutSeconds;

        private KubernetesClient client;
        private Config config;

        /** The client, built on first use (commands that fail on bad input never pay for it). */
        public KubernetesClient client() {
            if (client == null) {
                client = new KubernetesClientBuilder()
                        .withConfig(config())
                        .withHttpClientFactory(new JdkHttpClientFactory())
                        .build();
            }
            return client;
        }

        public String namespace() {
            return config().getNamespace();
        }

        /** The cluster-access options (not -n) as arguments, for a command run in-process on the same cluster. */
        public java.util.List<String> asArgs() {
            java.util.List<String> a = new ArrayList<>();
            if (kubeconfig != null) a.addAll(List.of("--kubeconfig", kubeconfig));
            if (context != null) a.addAll(List.of("--context", context));
            a.addAll(List.of("--request-timeout", String.valueOf(requestTimeoutSeconds)));
            return a;
        }

        /** Server URL for messages; never includes credentials. */
        public String server() {
            return config().getMasterUrl();
        }

        public Config config() {
            if (config == null) config = resolve();
            return config;
        }

        private Config resolve() {
            List<File> files = kubeconfigFiles();
            List<io.fabric8.kubernetes.api.model.Config> parsed = new ArrayList<>();
            Set<String> contexts = new LinkedHashSet<>();
            String current = null;
            for (File f : files) {
                io.fabric8.kubernetes.api.model.Config kc;
                try {
                    kc = KubeConfigUtils.parseConfig(f);
                } catch (RuntimeException e) {
                    throw new Cli.UserError(Cli.Exit.CONFIG, "kubeconfig " + f + " is not valid YAML ("
                            + firstLine(e) + ") — fix the file or point --kubeconfig at another one");
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
            Config c = Config.empty();
            KubeConfigUtils.merge(c, wanted, parsed.toArray(new io.fabric8.kubernetes.api.model.Config[0]));
            if (c.getMasterUrl() == null || c.getMasterUrl().isEmpty()) {
                NamedContext nc = c.getCurrentContext();
                String cluster = nc != null && nc.getContext() != null ? nc.getContext().getCluster() : "?";
                throw new Cli.UserError(Cli.Exit.CONFIG, "context \"" + wanted + "\" names cluster \"" + cluster
                        + "\" which has no server in kubeconfig " + describe(files) + " — fix the clusters section");
            }
            if (namespace != null) c.setNamespace(namespace);
            if (c.getNamespace() == null || c.getNamespace().isEmpty()) c.setNamespace("default");
            int ms = Math.max(1, requestTimeoutSeconds) * 1000;
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

    private static String describe(List<File> files) {
        return files.size() == 1 ? files.get(0).toString() : files.toString();
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    /**
     * Turns fabric8 failures into one-line {@link Cli.UserError}s (the single mapping from API
     * failures to exit codes). Anything unrecognised is returned unchanged: it is a bug.
     */
    public static Throwable translate(Throwable t) {
        if (t instanceof Cli.UserError) return t;
        KubernetesClientException kce = find(t, KubernetesClientException.class);
        if (kce == null) return t;
        int code = kce.getCode();
        String reason = statusMessage(kce);
        if (code == 401) {
            return new Cli.UserError(Cli.Exit.FORBIDDEN, "the API server rejected our credentials (401 Unauthorized"
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
                return new Cli.UserError(Cli.Exit.UNREACHABLE, "cannot reach the API server ("
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

    private static <T extends Throwable> T find(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) return type.cast(c);
            if (c.getCause() == c) break;
        }
        return null;
    }
}
