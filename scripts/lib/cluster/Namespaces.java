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
        if (client.namespaces().withName(namespace).get() == null) {
            return new Cli.UserError(Cli.Exit.NOT_FOUND, what + " not found: namespace \"" + namespace
                    + "\" does not exist — check -n/--namespace (kubectl get namespaces lists them)");
        }
        return new Cli.UserError(Cli.Exit.NOT_FOUND, what + " not found in namespace \"" + namespace + "\" — " + fix);
    }
}
