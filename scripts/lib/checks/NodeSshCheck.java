//SOURCES ../cli/Cli.java Diagnosis.java ../model/Harvester.java Checkup.java NodeChecks.java NodeInspection.java RemoteShell.java
//SOURCES ../ssh/SshSession.java ../ssh/SshOptions.java

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeAddress;
import io.fabric8.kubernetes.client.KubernetesClient;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * `diagnose --node-ssh`: for each node under diagnosis, one SSH login (as ssh would: the node name
 * as an ssh_config Host alias, else its InternalIP; user rancher unless ssh_config or --node-user
 * say otherwise) and one read-only inspection per IOMMU group ({@link NodeChecks}). SSH is
 * optional here: a node that cannot be reached is one WARN saying why, and the API checks stand.
 */
public final class NodeSshCheck {
    private NodeSshCheck() {}

    /** Harvester nodes take SSH logins as rancher. */
    public static final String DEFAULT_USER = "rancher";
    static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);

    /** diagnose's options for it. */
    public static class Options {
        @Option(names = "--node-ssh", description = "Also look at the node over SSH (read-only): IOMMU on, the IOMMU group's real members, the driver of each function, the GPU held by the host console, vfio/IOMMU errors in dmesg")
        public boolean enabled;

        @Option(names = "--node-user", paramLabel = "USER", description = "With --node-ssh: the node's SSH user (default: ssh_config User for the node, else " + DEFAULT_USER + ")")
        public String user;

        /** A tree standing in for the node's / (the tests' fake /proc and /sys); "" is the node's own. */
        @Option(names = "--node-root", paramLabel = "DIR", hidden = true, defaultValue = "")
        public String root;

        @Mixin public SshOptions ssh;

        /** Bad SSH options are usage errors before anything runs. */
        public void validate() {
            if (enabled) ssh.validate();
        }
    }

    /** The node findings for the scope, or none without --node-ssh. */
    public static List<Diagnosis.Finding> run(KubernetesClient c, Checkup.Scope scope, Options o, Consumer<String> notes) {
        if (!o.enabled) return List.of();
        if (scope.nodes().isEmpty()) {
            return List.of(Diagnosis.Finding.warn(NodeChecks.SSH, "(no node)", "no node to inspect: no VM, device or --node given, and no claimed device",
                    "name what to look at: diagnose VM --node-ssh, or --node NODE --node-ssh"));
        }
        Map<String, Harvester.PciDeviceClaim> claims = new LinkedHashMap<>();
        if (scope.pciApi()) {
            Harvester.pciDeviceClaims(c).list().getItems().stream().map(Harvester.PciDeviceClaim::of).forEach(cl -> claims.put(cl.name(), cl));
        }
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (String node : scope.nodes()) out.addAll(node(c, scope, node, claims, o, notes));
        return out;
    }

    private static List<Diagnosis.Finding> node(KubernetesClient c, Checkup.Scope scope, String node,
                                                Map<String, Harvester.PciDeviceClaim> claims, Options o, Consumer<String> notes) {
        List<Harvester.PciDevice> nodeDevices = scope.allDevices().stream().filter(d -> node.equals(d.node())).toList();
        // One inspection per IOMMU group under diagnosis; a node with none still gets the IOMMU and dmesg checks.
        Set<String> groups = new LinkedHashSet<>();
        scope.devices().stream().filter(d -> node.equals(d.node()) && d.iommuGroup() != null).forEach(d -> groups.add(d.iommuGroup()));
        if (groups.isEmpty()) groups.add("");

        String where = node;
        try {
            SshTarget target = SshTarget.resolve(o.ssh.config(), node, internalIp(c, node), "node InternalIP", DEFAULT_USER, o.ssh.overrides(o.user, null));
            where = target.display();
            try (SshSession session = SshSession.open(target, "node", notes)) {
                RemoteShell shell = command -> {
                    SshSession.Result r = session.run(command, COMMAND_TIMEOUT);
                    return new RemoteShell.Result(r.exit(), r.out(), r.err());
                };
                List<Diagnosis.Finding> out = new ArrayList<>();
                for (String group : groups) {
                    NodeChecks.Subject s = new NodeChecks.Subject(node, group.isEmpty() ? null : group, nodeDevices, claims);
                    List<Diagnosis.Finding> found = NodeChecks.inspect(shell, where, s, NodeChecks.request(s, o.root));
                    // The IOMMU, dmesg and sudo findings are about the node, not the group: say them once.
                    found.stream().filter(f -> out.stream().noneMatch(p -> p.check().equals(f.check()) && p.subject().equals(f.subject())
                            && p.evidence().equals(f.evidence()))).forEach(out::add);
                }
                return out;
            }
        } catch (SshException e) {
            return List.of(NodeChecks.unreachable(node, where, e.getMessage()));
        }
    }

    /** The node's InternalIP (status.addresses), or null. */
    static String internalIp(KubernetesClient c, String node) {
        Node n = c.nodes().withName(node).get();
        if (n == null || n.getStatus() == null || n.getStatus().getAddresses() == null) return null;
        return n.getStatus().getAddresses().stream().filter(a -> "InternalIP".equals(a.getType())).map(NodeAddress::getAddress)
                .findFirst().orElse(null);
    }

    /** diagnose's exit code: the worst finding, leaving out a node that could not be reached (that alone changes nothing). */
    public static Cli.Exit exitFor(List<Diagnosis.Finding> findings) {
        return Diagnosis.exitFor(Diagnosis.worst(findings.stream().filter(NodeChecks::countsForExit).toList()));
    }
}
