//SOURCES Cli.java

import java.util.regex.Pattern;

/**
 * The one check of names the user types for Kubernetes objects (VMs, namespaces, PCIDevices,
 * claims, nodes), before any request: a name the API server could never hold is a usage error
 * naming the rule (RFC 1123, as in k8s.io/apimachinery/pkg/util/validation), not a 404, a stack
 * trace or a request on a wrong path (a "/" or "%" would change the URL).
 */
public final class Names {
    private Names() {}

    private static final Pattern LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
    private static final Pattern SUBDOMAIN = Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");

    /** VMs, PCIDevices, claims and nodes: an RFC 1123 subdomain (lower case letters, digits, '-', '.'; at most 253). */
    public static String object(String what, String name) {
        if (name == null) return null;
        if (name.length() <= 253 && SUBDOMAIN.matcher(name).matches()) return name;
        throw invalid(what, name, "a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', "
                + "starting and ending with a letter or digit");
    }

    /** Namespaces: an RFC 1123 label (no '.', at most 63). */
    public static String namespace(String name) {
        if (name == null) return null;
        if (name.length() <= 63 && LABEL.matcher(name).matches()) return name;
        throw invalid("namespace", name, "a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', "
                + "starting and ending with a letter or digit");
    }

    private static Cli.UserError invalid(String what, String name, String rule) {
        String shown = name.length() > 60 ? name.substring(0, 60) + "… (" + name.length() + " characters)" : name;
        return new Cli.UserError(Cli.Exit.USAGE, "invalid " + what + " name \"" + shown + "\": not found, and no such object can exist — a "
                + what + " name must be " + rule);
    }
}
