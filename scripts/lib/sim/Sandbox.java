//SOURCES SimCluster.java

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A simulated Harvester node `altra` and VM `default/docker-host` on 127.0.0.1, for trying the
 * scripts without a cluster: the tests' SimCluster plus the files a user points the scripts at.
 */
public final class Sandbox implements AutoCloseable {
    private final SimCluster cluster;
    private final Path dir;
    private final Path kubeconfig;

    private Sandbox(SimCluster cluster, Path dir) {
        this.cluster = cluster;
        this.dir = dir;
        this.kubeconfig = dir.resolve("kubeconfig.yaml");
        SimCluster.writeKubeconfig(kubeconfig, cluster.url(), "sandbox-" + UUID.randomUUID());
    }

    /** Starts the sandbox and writes its files into dir (created if missing). */
    public static Sandbox start(Path dir, SimCluster.Options options) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new Sandbox(SimCluster.start(options), dir);
    }

    public SimCluster cluster() {
        return cluster;
    }

    public Path dir() {
        return dir;
    }

    public Path kubeconfig() {
        return kubeconfig;
    }

    /** The flags that point a script at this sandbox. */
    public List<String> kubeFlags() {
        return List.of("--kubeconfig", kubeconfig.toString());
    }

    /** What to tell the user: where things are and the exact commands to run. */
    public List<String> instructions() {
        List<String> out = new ArrayList<>();
        out.add("Sandbox: simulated Harvester node altra (RTX 3090 at 000c:01:00.0 + audio 000c:01:00.1, IOMMU group 18)");
        out.add("         and VM default/docker-host, on 127.0.0.1 only.");
        out.add("  API server:  " + cluster.url());
        out.add("  files:       " + dir + " (kubeconfig.yaml)");
        out.add("  faults on:   " + (cluster.faults().isEmpty() ? "none" : cluster.faults()));
        out.add("");
        out.add("Point the scripts at it, then run the runbook:");
        out.add("  export KUBECONFIG=" + kubeconfig);
        out.add("  ./jbang inventory --node altra");
        out.add("  ./jbang claim altra-000c01000");
        out.add("  ./jbang attach docker-host --device altra-000c01000");
        out.add("  ./jbang diagnose docker-host");
        return out;
    }

    @Override
    public void close() {
        cluster.close();
    }
}
