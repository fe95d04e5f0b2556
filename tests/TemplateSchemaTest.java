import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

/**
 * The claims we ship (templates/) and the claims `claim` builds use only fields the real
 * PCIDeviceClaim CRD (tests/crds, from harvester/pcidevices) defines, with the right types:
 * the API server would silently prune anything else (preserveUnknownFields: false).
 */
class TemplateSchemaTest {
    /** ObjectMeta fields a claim may carry (the API server validates these, not the CRD schema). */
    static final Set<String> METADATA = Set.of("name", "labels", "annotations", "ownerReferences");

    @SuppressWarnings("unchecked")
    static Map<String, Object> claimSchema() throws Exception {
        String text = Files.readString(Run.repoRoot().resolve("tests/crds/harvester-pcidevices-crds.yaml"));
        for (GenericKubernetesResource crd : SimCluster.parseDocuments(text)) {
            if ("PCIDeviceClaim".equals(crd.get("spec", "names", "kind"))) {
                List<Map<String, Object>> versions = crd.get("spec", "versions");
                Map<String, Object> v1beta1 = versions.stream().filter(v -> "v1beta1".equals(v.get("name"))).findFirst().orElseThrow();
                return (Map<String, Object>) ((Map<String, Object>) v1beta1.get("schema")).get("openAPIV3Schema");
            }
        }
        throw new AssertionError("no PCIDeviceClaim CRD in tests/crds/harvester-pcidevices-crds.yaml");
    }

    /** Every field of value is declared in schema with a matching type; returns the problems. */
    @SuppressWarnings("unchecked")
    static List<String> violations(String path, Object value, Map<String, Object> schema) {
        List<String> out = new ArrayList<>();
        String type = (String) schema.get("type");
        if (value instanceof Map<?, ?> m) {
            if (!"object".equals(type)) return List.of(path + ": is an object, schema says " + type);
            Map<String, Object> props = (Map<String, Object>) schema.getOrDefault("properties", Map.of());
            for (var e : m.entrySet()) {
                String key = e.getKey().toString();
                Map<String, Object> sub = (Map<String, Object>) props.get(key);
                if (sub == null) out.add(path + "." + key + ": not in the CRD schema");
                else out.addAll(violations(path + "." + key, e.getValue(), sub));
            }
        } else if (value instanceof String) {
            if (!"string".equals(type)) out.add(path + ": is a string, schema says " + type);
        } else if (value instanceof Boolean) {
            if (!"boolean".equals(type)) out.add(path + ": is a boolean, schema says " + type);
        } else if (value != null) {
            out.add(path + ": unexpected " + value.getClass().getSimpleName());
        }
        return out;
    }

    static void assertFitsTheCrd(String what, Map<String, Object> claim) throws Exception {
        assertEquals("devices.harvesterhci.io/v1beta1", claim.get("apiVersion"), what);
        assertEquals("PCIDeviceClaim", claim.get("kind"), what);
        Map<?, ?> metadata = (Map<?, ?>) claim.get("metadata");
        assertNotNull(metadata, what);
        for (Object k : metadata.keySet()) assertTrue(METADATA.contains(k.toString()), what + ": metadata." + k);
        Map<String, Object> body = new java.util.LinkedHashMap<>(claim);
        body.keySet().removeAll(List.of("apiVersion", "kind", "metadata"));
        assertTrue(body.containsKey("spec"), what + " has a spec");
        assertEquals(List.of(), violations(what, body, claimSchema()));
    }

    @Test
    void theSchemaIsWhatTheFactsSay() throws Exception {
        Map<String, Object> schema = claimSchema();
        @SuppressWarnings("unchecked")
        Map<String, Object> spec = (Map<String, Object>) ((Map<String, Object>) schema.get("properties")).get("spec");
        assertEquals(Set.of("address", "nodeName", "userName", "disableResourcePooling"),
                ((Map<?, ?>) spec.get("properties")).keySet());
        assertEquals(Claims.SPEC_FIELDS, ((Map<?, ?>) spec.get("properties")).keySet());
        // the walk does catch a stray field
        assertFalse(violations("x", Map.of("spec", Map.of("iommuGroup", "18")), schema).isEmpty());
        assertFalse(violations("x", Map.of("spec", Map.of("address", true)), schema).isEmpty());
    }

    @Test
    @SuppressWarnings("unchecked")
    void templatesUseOnlyCrdFields() throws Exception {
        for (String t : Bundled.TEMPLATES) {
            Map<String, Object> claim = Serialization.unmarshal(Bundled.read(t), Map.class);
            assertFitsTheCrd(t, claim);
            Map<String, Object> spec = (Map<String, Object>) claim.get("spec");
            assertEquals("admin", spec.get("userName"), t);
            assertEquals(Harvester.pciDeviceName((String) spec.get("nodeName"), (String) spec.get("address")),
                    ((Map<?, ?>) claim.get("metadata")).get("name"), t + ": a claim is named after its PCIDevice");
            assertEquals(1, Claims.parse(t, Bundled.read(t)).size());
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void claimsThatClaimBuildsUseOnlyCrdFields() throws Exception {
        try (SimCluster sim = SimCluster.start()) {
            for (String[] args : List.of(new String[] {"altra-000c01000"}, new String[] {})) {
                List<String> all = new ArrayList<>(List.of(args));
                all.addAll(List.of("--dry-run", "-o", "json"));
                Run.Result r = Run.against(sim, new claim(), all.toArray(new String[0]));
                assertEquals(0, r.exit(), r.all());
                JsonNode claims = Serialization.jsonMapper().readTree(r.out()).get("claims");
                assertEquals(2, claims.size(), r.out());
                for (JsonNode c : claims) {
                    Map<String, Object> obj = Serialization.jsonMapper().convertValue(c.get("object"), Map.class);
                    assertFitsTheCrd("claim " + String.join(" ", args) + ": " + c.get("name").asText(), obj);
                    List<Map<String, Object>> owners = (List<Map<String, Object>>) ((Map<String, Object>) obj.get("metadata")).get("ownerReferences");
                    assertEquals("PCIDevice", owners.get(0).get("kind"));
                    assertEquals(Harvester.pciDevices(sim.admin()).withName(c.get("name").asText()).get().getMetadata().getUid(), owners.get(0).get("uid"));
                }
            }
        }
    }
}
