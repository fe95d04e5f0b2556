//SOURCES Harvester.java ../cli/Text.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * PCIDeviceClaims as Harvester's UI makes them (EnablePciPassthrough.vue): named after the
 * PCIDevice, owned by it (the controller finds the device only through ownerReferences[0]),
 * spec.address/nodeName/userName. Also reads claim YAML (templates, --file) strictly.
 */
public final class Claims {
    private Claims() {}

    public static final String KIND = "PCIDeviceClaim";
    /** Standalone Harvester's UI user: lets the Harvester UI manage the claim. */
    public static final String DEFAULT_USER = "admin";
    /** spec fields of the PCIDeviceClaim CRD (tests/crds): anything else would be pruned by the API server. */
    public static final Set<String> SPEC_FIELDS = Set.of("address", "nodeName", "userName", "disableResourcePooling");

    /** The claim for a device: same name, ownerReference with the live uid, nodename label (re-bind after reboot). */
    public static GenericKubernetesResource forDevice(Harvester.PciDevice d, String userName) {
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("address", d.address());
        spec.put("nodeName", d.node());
        spec.put("userName", userName);
        return withSpec(d, spec);
    }

    /** A claim with the given (validated) spec, owned by the device. */
    public static GenericKubernetesResource withSpec(Harvester.PciDevice d, Map<String, Object> spec) {
        GenericKubernetesResource r = new GenericKubernetesResource();
        r.setApiVersion(Harvester.API_VERSION);
        r.setKind(KIND);
        r.setMetadata(new ObjectMetaBuilder().withName(d.name())
                .withLabels(Map.of("nodename", d.node()))
                .withOwnerReferences(owner(d)).build());
        r.setAdditionalProperty("spec", new LinkedHashMap<>(spec));
        return r;
    }

    public static OwnerReference owner(Harvester.PciDevice d) {
        return new OwnerReferenceBuilder().withApiVersion(Harvester.API_VERSION).withKind("PCIDevice")
                .withName(d.name()).withUid(d.uid()).build();
    }

    /**
     * What a claim means to the controller, for comparing live with desired: its spec and
     * ownerReferences[0] (kind, name, uid). Labels and status are not intent.
     */
    public static Map<String, Object> intent(GenericKubernetesResource claim) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", claim.getMetadata().getName());
        List<OwnerReference> owners = claim.getMetadata().getOwnerReferences();
        if (owners != null && !owners.isEmpty()) {
            OwnerReference o = owners.get(0);
            m.put("owner", Map.of("kind", String.valueOf(o.getKind()), "name", String.valueOf(o.getName()),
                    "uid", String.valueOf(o.getUid())));
        } else {
            m.put("owner", null);
        }
        Object spec = claim.getAdditionalProperties().get("spec");
        Map<String, Object> s = new LinkedHashMap<>();
        if (spec instanceof Map<?, ?> sm) {
            sm.forEach((k, v) -> {
                // disableResourcePooling: false is the default; the UI sends it, we do not.
                if (!("disableResourcePooling".equals(k) && Boolean.FALSE.equals(v))) s.put(k.toString(), v);
            });
        }
        m.put("spec", new java.util.TreeMap<>(s));
        return m;
    }

    public static boolean matches(GenericKubernetesResource live, GenericKubernetesResource desired) {
        return intent(live).equals(intent(desired));
    }

    /** A claim as YAML, for --dry-run and diffs: only what we send. */
    public static String yaml(GenericKubernetesResource claim) {
        return Serialization.asYaml(claim);
    }

    /**
     * Line diff (LCS) of what claim manages — name, labels, ownerReferences, spec — live vs wanted.
     * Kept by hand: no diff library is among our dependencies, and a prefix/suffix cut would mark the
     * whole claim changed when only its ownerReferences block is missing (the usual conflict).
     */
    public static List<String> diff(GenericKubernetesResource live, GenericKubernetesResource wanted) {
        List<String> a = managed(live);
        List<String> b = managed(wanted);
        if (a.equals(b)) return List.of();
        int[][] lcs = new int[a.size() + 1][b.size() + 1];
        for (int i = a.size() - 1; i >= 0; i--) {
            for (int j = b.size() - 1; j >= 0; j--) {
                lcs[i][j] = a.get(i).equals(b.get(j)) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
            }
        }
        List<String> out = new ArrayList<>();
        out.add("--- live");
        out.add("+++ " + (wanted == null ? "deleted" : "wanted"));
        int i = 0, j = 0;
        while (i < a.size() || j < b.size()) {
            if (i < a.size() && j < b.size() && a.get(i).equals(b.get(j))) {
                out.add("  " + a.get(i++));
                j++;
            } else if (i < a.size() && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
                out.add("- " + a.get(i++)); // what goes before what comes, as diff -u prints a change
            } else {
                out.add("+ " + b.get(j++));
            }
        }
        return out;
    }

    private static List<String> managed(GenericKubernetesResource r) {
        if (r == null) return List.of();
        GenericKubernetesResource m = new GenericKubernetesResource();
        m.setApiVersion(r.getApiVersion());
        m.setKind(r.getKind());
        m.setMetadata(new ObjectMetaBuilder().withName(r.getMetadata().getName())
                .withLabels(r.getMetadata().getLabels()).withOwnerReferences(r.getMetadata().getOwnerReferences()).build());
        m.setAdditionalProperty("spec", r.getAdditionalProperties().get("spec"));
        return yaml(m).lines().filter(l -> !l.equals("---")).toList();
    }

    /**
     * Parses claim YAML (one or more documents) from a template or --file, refusing anything the
     * API server would reject or silently prune: wrong kind/apiVersion, missing name, unknown spec
     * fields, malformed address, a name that is not the PCIDevice's name.
     */
    public static List<GenericKubernetesResource> parse(String source, String text) {
        List<GenericKubernetesResource> out = new ArrayList<>();
        for (String doc : text.split("(?m)^---\\s*$")) {
            if (doc.lines().allMatch(l -> l.isBlank() || l.trim().startsWith("#"))) continue;
            Object parsed;
            try {
                parsed = Serialization.unmarshal(doc, Object.class);
            } catch (RuntimeException e) {
                throw bad(source, "is not valid YAML (" + Text.firstLine(e) + ")");
            }
            if (!(parsed instanceof Map<?, ?>)) throw bad(source, "is not a Kubernetes object (expected a YAML mapping)");
            GenericKubernetesResource r;
            try {
                r = Serialization.jsonMapper().convertValue(parsed, GenericKubernetesResource.class);
            } catch (RuntimeException e) {
                throw bad(source, "is not a Kubernetes object (" + Text.firstLine(e) + ")");
            }
            validate(source, r);
            out.add(r);
        }
        if (out.isEmpty()) throw bad(source, "holds no PCIDeviceClaim");
        return out;
    }

    private static void validate(String source, GenericKubernetesResource r) {
        if (!KIND.equals(r.getKind())) throw bad(source, "has kind \"" + r.getKind() + "\", expected " + KIND);
        if (!Harvester.API_VERSION.equals(r.getApiVersion())) {
            throw bad(source, "has apiVersion \"" + r.getApiVersion() + "\", expected " + Harvester.API_VERSION);
        }
        String name = r.getMetadata() == null ? null : r.getMetadata().getName();
        if (name == null || name.isBlank()) throw bad(source, "has no metadata.name (it must be the PCIDevice's name, e.g. altra-000c01000)");
        Object spec = r.getAdditionalProperties().get("spec");
        if (!(spec instanceof Map<?, ?> s)) throw bad(source, "claim " + name + " has no spec (address, nodeName, userName)");
        for (Object k : s.keySet()) {
            if (!SPEC_FIELDS.contains(String.valueOf(k))) {
                throw bad(source, "claim " + name + " has unknown field spec." + k + " (PCIDeviceClaim spec has only "
                        + String.join(", ", new java.util.TreeSet<>(SPEC_FIELDS)) + ")");
            }
        }
        for (String f : List.of("address", "nodeName", "userName")) {
            if (!(s.get(f) instanceof String v) || v.isBlank()) throw bad(source, "claim " + name + " needs a string spec." + f);
        }
        String address = (String) s.get("address");
        if (!Harvester.isValidAddress(address)) {
            throw bad(source, "claim " + name + " has malformed spec.address \"" + address
                    + "\" (use domain:bus:device.function in lower-case hex, e.g. 000c:01:00.0)");
        }
        String expected = Harvester.pciDeviceName((String) s.get("nodeName"), address);
        if (!expected.equals(name)) {
            throw bad(source, "claim " + name + " must be named after its PCIDevice: " + expected
                    + " (the webhook looks the device up by the claim's name)");
        }
    }

    private static Cli.UserError bad(String source, String problem) {
        return new Cli.UserError(Cli.Exit.USAGE, source + " " + problem + " — fix the file (see templates/ for a valid claim)");
    }
}
