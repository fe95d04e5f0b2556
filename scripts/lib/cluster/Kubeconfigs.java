//DEPS io.fabric8:kubernetes-client-bom:7.4.0@pom
//DEPS io.fabric8:kubernetes-client

import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.AuthInfo;
import io.fabric8.kubernetes.api.model.Cluster;
import io.fabric8.kubernetes.api.model.Config;
import io.fabric8.kubernetes.api.model.NamedAuthInfo;
import io.fabric8.kubernetes.api.model.NamedCluster;
import io.fabric8.kubernetes.api.model.NamedContext;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;

/**
 * kubectl's rules for a KUBECONFIG list, on fabric8's public model: read each file, merge them
 * (the first file that names a cluster, context or user wins; current-context comes from the first
 * file that sets one), with every relative file path made absolute against the file it is in, so
 * the one merged document can be handed to fabric8's public {@code Config.fromKubeconfig(String)}.
 */
public final class Kubeconfigs {
    private Kubeconfigs() {}

    private static final KubernetesSerialization YAML = new KubernetesSerialization();

    /** The file's kubeconfig, or null when it holds no document (empty or only comments). */
    public static Config parse(String text) {
        if (text.lines().allMatch(l -> l.isBlank() || l.trim().startsWith("#"))) return null;
        return YAML.unmarshal(text, Config.class);
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

    /** The merged document as YAML, for {@code io.fabric8.kubernetes.client.Config.fromKubeconfig}. */
    public static String yaml(Config merged) {
        return YAML.asYaml(merged);
    }

    private static void absolute(File dir, Supplier<String> get, Consumer<String> set) {
        String p = get.get();
        if (p != null && !p.isEmpty() && !new File(p).isAbsolute()) set.accept(new File(dir, p).getPath());
    }
}
