//SOURCES SimCluster.java GuestSshServer.java NodeSshServer.java

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/**
 * A simulated Harvester node `altra` and VM `default/docker-host` on 127.0.0.1, for trying the
 * scripts without a cluster: the tests' SimCluster plus the files a user points the scripts at.
 */
public final class Sandbox implements AutoCloseable {
    public static final String VM_NAMESPACE = "default";
    public static final String VM_NAME = "docker-host";
    public static final String NODE_NAME = "altra";

    private final SimCluster cluster;
    private final GuestSshServer guest;
    private final NodeSshServer node;
    private final Path dir;
    private final Path kubeconfig;
    private final Path identity;
    private final Path knownHosts;
    private final Path sshConfig;

    private Sandbox(SimCluster cluster, Path dir) throws IOException {
        this.cluster = cluster;
        this.dir = dir;
        this.kubeconfig = dir.resolve("kubeconfig.yaml");
        cluster.writeKubeconfig(kubeconfig);
        // The guest: an SSH server on loopback that answers lspci with whatever the running VMI holds.
        KeyPair user = GuestSshServer.newUserKey();
        this.identity = GuestSshServer.writeIdentity(dir.resolve("id_ed25519"), user, "sandbox");
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(user.getPublic());
        o.faults = cluster::faults;
        o.attached = this::attachedIds;
        this.guest = GuestSshServer.start(o);
        this.knownHosts = dir.resolve("known_hosts");
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        // The VMI reports IP 127.0.0.1; ssh_config supplies the guest's port, user and key, as a user's would.
        this.sshConfig = dir.resolve("ssh_config");
        Files.writeString(sshConfig, "Host " + guest.host() + "\n  Port " + guest.port() + "\n  User " + GuestSshServer.DEFAULT_USER
                + "\n  IdentityFile " + identity + "\n");
        try {
            this.node = startNode(user);
        } catch (IOException | RuntimeException e) {
            guest.close();
            throw e;
        }
    }

    /**
     * The node altra's SSH (for diagnose --node-ssh): same key, its own host key, and the Host block
     * a Harvester user writes for a node (the node name as alias, user rancher).
     */
    private NodeSshServer startNode(KeyPair user) throws IOException {
        NodeSshServer.Options o = new NodeSshServer.Options();
        o.authorizedKey = user.getPublic();
        o.faults = cluster::faults;
        o.devices = () -> Harvester.pciDevices(cluster.admin()).list().getItems().stream()
                .map(Harvester.PciDevice::of).filter(d -> NODE_NAME.equals(d.node())).toList();
        NodeSshServer n = NodeSshServer.start(o);
        Files.writeString(knownHosts, n.knownHostsLine() + "\n", java.nio.file.StandardOpenOption.APPEND);
        Files.writeString(sshConfig, "\nHost " + NODE_NAME + "\n  HostName " + n.host() + "\n  Port " + n.port()
                + "\n  User " + NodeSshServer.USER + "\n  IdentityFile " + identity + "\n", java.nio.file.StandardOpenOption.APPEND);
        return n;
    }

    /** vendor:device of every PCI host device in the running VMI's spec (what lspci shows in the guest). */
    private List<String> attachedIds() {
        GenericKubernetesResource vmi = KubeVirt.vmis(cluster.admin()).inNamespace(VM_NAMESPACE).withName(VM_NAME).get();
        if (vmi == null || !"Running".equals(String.valueOf((Object) vmi.get("status", "phase")))) return List.of();
        Object node = vmi.get("status", "nodeName");
        List<Harvester.PciDevice> devices = Harvester.pciDevices(cluster.admin()).list().getItems().stream()
                .map(Harvester.PciDevice::of).filter(d -> node == null || node.toString().equals(d.node())).toList();
        List<String> ids = new ArrayList<>();
        for (KubeVirt.HostDevice hd : KubeVirt.hostDevices(vmi)) {
            KubeVirt.pciDeviceFor(hd, devices, null).ifPresent(d -> ids.add(d.vendorDevice()));
        }
        return ids;
    }

    /** Starts the sandbox and writes its files into dir (created if missing). */
    public static Sandbox start(Path dir, SimCluster.Options options) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        SimCluster cluster = SimCluster.start(options);
        try {
            return new Sandbox(cluster, dir);
        } catch (IOException | RuntimeException e) {
            cluster.close();
            throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
        }
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

    public GuestSshServer guest() {
        return guest;
    }

    public NodeSshServer node() {
        return node;
    }

    /** The flags that point a script at this sandbox. */
    public List<String> kubeFlags() {
        return List.of("--kubeconfig", kubeconfig.toString());
    }

    /** The flags that point verify at this sandbox's guest. */
    public List<String> sshFlags() {
        return List.of("--ssh-config", sshConfig.toString(), "--known-hosts", knownHosts.toString());
    }

    /** What to tell the user: where things are and the exact commands to run. */
    public List<String> instructions() {
        List<String> out = new ArrayList<>();
        out.add("Sandbox: simulated Harvester node altra (RTX 3090 at 000c:01:00.0 + audio 000c:01:00.1, IOMMU group 18)");
        out.add("         and VM default/docker-host, on 127.0.0.1 only.");
        out.add("  API server:  " + cluster.url());
        out.add("  guest SSH:   " + guest.host() + ":" + guest.port() + " (user " + GuestSshServer.DEFAULT_USER + ")");
        out.add("  node SSH:    " + node.host() + ":" + node.port() + " (user " + NodeSshServer.USER + ", ssh_config Host " + NODE_NAME + ")");
        out.add("  files:       " + dir + " (kubeconfig.yaml, id_ed25519, known_hosts, ssh_config)");
        out.add("  faults on:   " + (cluster.faults().isEmpty() ? "none" : cluster.faults()));
        out.add("");
        out.add("Point the scripts at it, then run the runbook:");
        out.add("  export KUBECONFIG=" + kubeconfig);
        out.add("  ./jbang inventory --node altra");
        out.add("  ./jbang claim altra-000c01000");
        out.add("  ./jbang attach docker-host --device altra-000c01000");
        out.add("  ./jbang verify docker-host --docker --ssh-config " + sshConfig + " --known-hosts " + knownHosts);
        out.add("  ./jbang diagnose docker-host --node-ssh --ssh-config " + sshConfig + " --known-hosts " + knownHosts);
        return out;
    }

    @Override
    public void close() {
        node.close();
        guest.close();
        cluster.close();
    }
}
