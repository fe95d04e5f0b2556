//DEPS io.fabric8:kubernetes-client-bom:7.4.0@pom
//DEPS io.fabric8:kubernetes-client

import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.AuthInfo;
import io.fabric8.kubernetes.api.model.AuthProviderConfig;
import io.fabric8.kubernetes.api.model.Cluster;
import io.fabric8.kubernetes.api.model.Config;
import io.fabric8.kubernetes.api.model.Context;
import io.fabric8.kubernetes.api.model.ExecConfig;
import io.fabric8.kubernetes.api.model.ExecEnvVar;
import io.fabric8.kubernetes.api.model.NamedAuthInfo;
import io.fabric8.kubernetes.api.model.NamedCluster;
import io.fabric8.kubernetes.api.model.NamedContext;
import io.fabric8.kubernetes.client.internal.KubeConfigUtils;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;

/**
 * kubectl's rules for a KUBECONFIG list, on fabric8's model: read each file, merge them (the first
 * file that names a cluster, context or user wins; current-context comes from the first file that
 * sets one), with every relative file path made absolute against the file it is in, then let
 * fabric8 turn the chosen context into a client {@code Config} ({@link #clientConfig}).
 *
 * <p>Why the model is filled in here rather than by Jackson: binding YAML to fabric8's kubeconfig
 * classes builds bean deserializers for the whole model and registers every Kubernetes kind fabric8
 * knows (its NamedExtension field asks for that), about 0.2 s of every command's start
 * (bench/RESULTS.md). Reading the YAML into maps and setting the fields kubectl's kubeconfig has
 * costs a few milliseconds.
 */
public final class Kubeconfigs {
    private Kubeconfigs() {}

    private static final KubernetesSerialization YAML = new KubernetesSerialization();

    /**
     * The file's kubeconfig, or null when it holds no document (empty or only comments).
     * @throws NotAKubeconfig naming the field when the YAML is not a kubeconfig's shape
     */
    public static Config parse(String text) {
        if (text.lines().allMatch(l -> l.isBlank() || l.trim().startsWith("#"))) return null;
        // A Map, not Object: for Object fabric8 would bind a document with apiVersion and kind to its model class.
        @SuppressWarnings("unchecked")
        Map<String, Object> m = YAML.unmarshal(text, Map.class);
        if (m == null) return null;
        Config c = new Config();
        c.setApiVersion(string(m, "apiVersion", ""));
        c.setKind(string(m, "kind", ""));
        c.setCurrentContext(string(m, "current-context", ""));
        setIfPresent(c::setClusters, list(m, "clusters", "", e -> {
            NamedCluster nc = new NamedCluster(null, string(e.fields, "name", e.path));
            Map<String, Object> f = map(e.fields, "cluster", e.path);
            if (f != null) nc.setCluster(cluster(f, e.path + ".cluster"));
            return nc;
        }));
        setIfPresent(c::setContexts, list(m, "contexts", "", e -> {
            NamedContext nc = new NamedContext(null, string(e.fields, "name", e.path));
            Map<String, Object> f = map(e.fields, "context", e.path);
            if (f != null) {
                String at = e.path + ".context";
                Context ctx = new Context();
                ctx.setCluster(string(f, "cluster", at));
                ctx.setUser(string(f, "user", at));
                ctx.setNamespace(string(f, "namespace", at));
                nc.setContext(ctx);
            }
            return nc;
        }));
        setIfPresent(c::setUsers, list(m, "users", "", e -> {
            NamedAuthInfo nu = new NamedAuthInfo(string(e.fields, "name", e.path), null);
            Map<String, Object> f = map(e.fields, "user", e.path);
            if (f != null) nu.setUser(authInfo(f, e.path + ".user"));
            return nu;
        }));
        return c;
    }

    private static Cluster cluster(Map<String, Object> f, String at) {
        Cluster c = new Cluster();
        c.setServer(string(f, "server", at));
        c.setCertificateAuthority(string(f, "certificate-authority", at));
        c.setCertificateAuthorityData(string(f, "certificate-authority-data", at));
        c.setInsecureSkipTlsVerify(bool(f, "insecure-skip-tls-verify", at));
        c.setProxyUrl(string(f, "proxy-url", at));
        c.setTlsServerName(string(f, "tls-server-name", at));
        c.setDisableCompression(bool(f, "disable-compression", at));
        return c;
    }

    private static AuthInfo authInfo(Map<String, Object> f, String at) {
        AuthInfo u = new AuthInfo();
        u.setClientCertificate(string(f, "client-certificate", at));
        u.setClientCertificateData(string(f, "client-certificate-data", at));
        u.setClientKey(string(f, "client-key", at));
        u.setClientKeyData(string(f, "client-key-data", at));
        u.setToken(string(f, "token", at));
        u.setTokenFile(string(f, "tokenFile", at));
        u.setUsername(string(f, "username", at));
        u.setPassword(string(f, "password", at));
        u.setAs(string(f, "as", at));
        u.setAsUid(string(f, "as-uid", at));
        setIfPresent(u::setAsGroups, strings(f, "as-groups", at));
        Map<String, Object> provider = map(f, "auth-provider", at);
        if (provider != null) {
            String p = at + ".auth-provider";
            Map<String, Object> config = map(provider, "config", p);
            Map<String, String> values = new LinkedHashMap<>();
            if (config != null) config.keySet().forEach(k -> values.put(k, string(config, k, p + ".config")));
            u.setAuthProvider(new AuthProviderConfig(values, string(provider, "name", p)));
        }
        Map<String, Object> exec = map(f, "exec", at);
        if (exec != null) {
            String x = at + ".exec";
            ExecConfig e = new ExecConfig();
            e.setApiVersion(string(exec, "apiVersion", x));
            e.setCommand(string(exec, "command", x));
            setIfPresent(e::setArgs, strings(exec, "args", x));
            setIfPresent(e::setEnv, list(exec, "env", x, v -> new ExecEnvVar(string(v.fields, "name", v.path), string(v.fields, "value", v.path))));
            e.setInstallHint(string(exec, "installHint", x));
            e.setInteractiveMode(string(exec, "interactiveMode", x));
            e.setProvideClusterInfo(bool(exec, "provideClusterInfo", x));
            u.setExec(e);
        }
        return u;
    }

    /** Merges parsed kubeconfigs, given in KUBECONFIG order with the file each came from. */
    public static Config merge(List<File> files, List<Config> configs) {
        Map<String, NamedCluster> clusters = new LinkedHashMap<>();
        Map<String, NamedContext> contexts = new LinkedHashMap<>();
        Map<String, NamedAuthInfo> users = new LinkedHashMap<>();
        String current = null;
        for (int i = 0; i < configs.size(); i++) {
            Config kc = configs.get(i);
            File dir = files.get(i).getAbsoluteFile().getParentFile();
            if (kc.getClusters() != null) {
                for (NamedCluster nc : kc.getClusters()) {
                    if (nc.getCluster() != null) absolute(dir, nc.getCluster()::getCertificateAuthority, nc.getCluster()::setCertificateAuthority);
                    clusters.putIfAbsent(nc.getName(), nc);
                }
            }
            if (kc.getContexts() != null) kc.getContexts().forEach(nc -> contexts.putIfAbsent(nc.getName(), nc));
            if (kc.getUsers() != null) {
                for (NamedAuthInfo nu : kc.getUsers()) {
                    AuthInfo u = nu.getUser();
                    if (u != null) {
                        absolute(dir, u::getClientCertificate, u::setClientCertificate);
                        absolute(dir, u::getClientKey, u::setClientKey);
                        absolute(dir, u::getTokenFile, u::setTokenFile);
                    }
                    users.putIfAbsent(nu.getName(), nu);
                }
            }
            if (current == null && kc.getCurrentContext() != null && !kc.getCurrentContext().isEmpty()) current = kc.getCurrentContext();
        }
        Config merged = new Config();
        merged.setApiVersion("v1");
        merged.setKind("Config");
        merged.setClusters(new ArrayList<>(clusters.values()));
        merged.setContexts(new ArrayList<>(contexts.values()));
        merged.setUsers(new ArrayList<>(users.values()));
        merged.setCurrentContext(current);
        return merged;
    }

    /**
     * fabric8's client settings for one context of the merged kubeconfig: the same code its public
     * {@code Config.fromKubeconfig} runs once it has parsed a file (server, CA, TLS, client
     * certificate, token, auth-provider and exec plugins), without parsing YAML again.
     */
    public static io.fabric8.kubernetes.client.Config clientConfig(Config merged, String context) {
        io.fabric8.kubernetes.client.Config c = io.fabric8.kubernetes.client.Config.empty();
        KubeConfigUtils.merge(c, context, merged);
        return c;
    }

    /** Lists are set only when the file has them: fabric8's model starts them empty, as its YAML binding leaves them. */
    private static <T> void setIfPresent(Consumer<List<T>> setter, List<T> value) {
        if (value != null) setter.accept(value);
    }

    private static void absolute(File dir, Supplier<String> get, Consumer<String> set) {
        String p = get.get();
        if (p != null && !p.isEmpty() && !new File(p).isAbsolute()) set.accept(new File(dir, p).getPath());
    }

    // ---- reading the YAML's maps, naming the field when its shape is wrong ----------------------------

    /** Valid YAML of the wrong shape; the message names the field, e.g. "clusters[0].cluster is a string, not a mapping". */
    public static final class NotAKubeconfig extends RuntimeException {
        NotAKubeconfig(String message) {
            super(message);
        }
    }

    /** One entry of a list of mappings, with its path for messages (e.g. "clusters[0]"). */
    private record Entry(Map<String, Object> fields, String path) {}

    private static String path(String at, String key) {
        return at.isEmpty() ? key : at + "." + key;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object v, String what) {
        if (v instanceof Map<?, ?> m) return (Map<String, Object>) m;
        throw new NotAKubeconfig(what + " is " + kind(v) + ", not a mapping");
    }

    private static Map<String, Object> map(Map<String, Object> m, String key, String at) {
        Object v = m.get(key);
        return v == null ? null : map(v, path(at, key));
    }

    private static String string(Map<String, Object> m, String key, String at) {
        Object v = m.get(key);
        if (v == null) return null;
        if (v instanceof Map || v instanceof List) throw new NotAKubeconfig(path(at, key) + " is " + kind(v) + ", not a string");
        return String.valueOf(v);
    }

    private static Boolean bool(Map<String, Object> m, String key, String at) {
        Object v = m.get(key);
        if (v == null) return null;
        if (v instanceof Boolean b) return b;
        if (v instanceof String s && (s.equals("true") || s.equals("false"))) return Boolean.valueOf(s);
        throw new NotAKubeconfig(path(at, key) + " is " + kind(v) + " '" + v + "', not true or false");
    }

    private static List<String> strings(Map<String, Object> m, String key, String at) {
        Object v = m.get(key);
        if (v == null) return null;
        if (!(v instanceof List<?> l)) throw new NotAKubeconfig(path(at, key) + " is " + kind(v) + ", not a list");
        List<String> out = new ArrayList<>();
        for (int i = 0; i < l.size(); i++) {
            Object s = l.get(i);
            if (s instanceof Map || s instanceof List) throw new NotAKubeconfig(path(at, key) + "[" + i + "] is " + kind(s) + ", not a string");
            out.add(s == null ? null : String.valueOf(s));
        }
        return out;
    }

    private static <T> List<T> list(Map<String, Object> m, String key, String at, Function<Entry, T> each) {
        Object v = m.get(key);
        if (v == null) return null;
        if (!(v instanceof List<?> l)) throw new NotAKubeconfig(path(at, key) + " is " + kind(v) + ", not a list");
        List<T> out = new ArrayList<>();
        for (int i = 0; i < l.size(); i++) {
            String p = path(at, key) + "[" + i + "]";
            out.add(each.apply(new Entry(map(l.get(i), p), p)));
        }
        return out;
    }

    private static String kind(Object v) {
        if (v == null) return "empty";
        if (v instanceof Map) return "a mapping";
        if (v instanceof List) return "a list";
        if (v instanceof String) return "a string";
        if (v instanceof Boolean) return "a boolean";
        if (v instanceof Number) return "a number";
        return "a " + v.getClass().getSimpleName();
    }
}
