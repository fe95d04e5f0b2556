//SOURCES ../cli/Cli.java

import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * "Not found" that says why: a name looked up in a namespace that does not exist is a wrong -n,
 * not a missing object (kubectl says only `… not found`, which sends users looking for the object).
 */
public final class Namespaces {
    private Namespaces() {}

    /**
     * The error for "what" (e.g. {@code virtualmachine.kubevirt.io "docker-host"}) not found in
     * namespace: NOT_FOUND either way, naming the namespace as the cause when it does not exist.
     */
    public static Cli.UserError notFound(KubernetesClient client, String namespace, String what, String fix) {
        if (missing(client, namespace)) {
            return new Cli.UserError(Cli.Exit.NOT_FOUND, what + " not found: namespace \"" + namespace
                    + "\" does not exist — check -n/--namespace (kubectl get namespaces lists them)");
        }
        return new Cli.UserError(Cli.Exit.NOT_FOUND, what + " not found in namespace \"" + namespace + "\" — " + fix);
    }

    /**
     * True only when the namespace is known not to exist: the server lists namespaces and this one
     * is not among them (a user without rights to list namespaces, or an empty list, gets false).
     */
    public static boolean missing(KubernetesClient client, String namespace) {
        try {
            var all = client.namespaces().list().getItems();
            return !all.isEmpty() && all.stream().noneMatch(n -> namespace.equals(n.getMetadata().getName()));
        } catch (io.fabric8.kubernetes.client.KubernetesClientException cannotTell) {
            return false;
        }
    }
}
