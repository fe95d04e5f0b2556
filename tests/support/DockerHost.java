import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.jdkhttp.JdkHttpClientFactory;

/**
 * Reading back the simulated VM default/docker-host that attach and detach change, and the
 * requests a command made: what the attach and detach tests assert on.
 */
public final class DockerHost {
    private DockerHost() {}

    public static final String USB_RES = "kubevirt.io/altra-0951-1666-003002";
    /** The USB stick the VM starts with: attach and detach must keep it. */
    public static final KubeVirt.HostDevice USB = new KubeVirt.HostDevice("altra-0951-1666-003002", USB_RES);
    /** The entry attach writes for the GPU. */
    public static final KubeVirt.HostDevice GPU_ENTRY = new KubeVirt.HostDevice(Seed.GPU, Seed.GPU_RES);

    public static GenericKubernetesResource vm(SimCluster sim) {
        return KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").get();
    }

    public static GenericKubernetesResource vmi(SimCluster sim) {
        return KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").get();
    }

    public static List<KubeVirt.HostDevice> hostDevices(SimCluster sim) {
        return KubeVirt.hostDevices(vm(sim));
    }

    /** Bounded polling on cluster state (never a fixed sleep): the probe's first non-null, non-false value. */
    public static <T> T eventually(Supplier<T> probe, String what) {
        Instant end = Instant.now().plus(Duration.ofSeconds(20));
        while (Instant.now().isBefore(end)) {
            T v = probe.get();
            if (v != null && !Boolean.FALSE.equals(v)) return v;
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
        throw new AssertionError("timed out waiting for " + what);
    }

    /** Requests by the command that could change something. */
    public static List<String> writes(SimCluster sim) {
        return sim.clientRequests().stream().filter(r -> !r.startsWith("GET ")).toList();
    }

    /** A client as a user has it (counted and faulted, unlike sim.admin()). */
    public static KubernetesClient userClient(SimCluster sim) throws Exception {
        return new KubernetesClientBuilder().withConfig(Config.fromKubeconfig(Files.readString(sim.kubeconfig())))
                .withHttpClientFactory(new JdkHttpClientFactory()).build();
    }
}
