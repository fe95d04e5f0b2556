//SOURCES ../model/Harvester.java SimDispatcher.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;

/**
 * What the API server tells kubectl about itself and the mock server does not: discovery
 * (GET /version, /api, /apis, /api/v1, /apis/GROUP/VERSION), so kubectl can resolve
 * "pcidevices", "vm,vmi" and "pcideviceclaims"; and PCIDevice lists as a server-side Table
 * (kubectl get asks for one) with the real CRD's printer columns. Our scripts never ask for
 * either. One implementation for the tests, the sandbox and bench/.
 */
public final class ApiDiscovery implements SimDispatcher.Interceptor {
    /** A resource the simulator stores, as discovery lists it. */
    private record Resource(String plural, String kind, boolean namespaced, List<String> shortNames) {}

    /** Group/version → resources, in the order kubectl prints them. */
    private static final Map<String, List<Resource>> RESOURCES = new LinkedHashMap<>();

    static {
        RESOURCES.put("v1", List.of(new Resource("nodes", "Node", false, List.of("no")),
                new Resource("pods", "Pod", true, List.of("po")),
                new Resource("namespaces", "Namespace", false, List.of("ns"))));
        RESOURCES.put(Harvester.API_VERSION, List.of(new Resource("pcidevices", "PCIDevice", false, List.of()),
                new Resource("pcideviceclaims", "PCIDeviceClaim", false, List.of()),
                new Resource("usbdevices", "USBDevice", false, List.of())));
        // Short names as in KubeVirt's CRDs.
        RESOURCES.put("kubevirt.io/v1", List.of(new Resource("virtualmachines", "VirtualMachine", true, List.of("vm", "vms")),
                new Resource("virtualmachineinstances", "VirtualMachineInstance", true, List.of("vmi", "vmis")),
                new Resource("kubevirts", "KubeVirt", true, List.of("kv", "kvs"))));
    }

    /** PCIDevice columns of the real CRD (additionalPrinterColumns), as the API server renders them. */
    private static final String[][] PCI_COLUMNS = {{"Address", "address"}, {"Vendor Id", "vendorId"}, {"Device Id", "deviceId"},
            {"Node Name", "nodeName"}, {"Description", "description"}, {"Kernel Driver In Use", "kernelDriverInUse"}};

    private final SimDispatcher store;

    public ApiDiscovery(SimDispatcher store) {
        this.store = store;
    }

    @Override
    public MockResponse intercept(RecordedRequest req, String path) {
        if (!"GET".equals(req.getMethod())) return null;
        String p = path.replaceFirst("\\?.*", "");
        MockResponse table = pciDeviceTable(req, p);
        if (table != null) return table;
        Object body = discovery(p);
        return body == null ? null : json(body);
    }

    private static Object discovery(String p) {
        if (p.equals("/version")) {
            // The Kubernetes version of Harvester v1.4 (RKE2 v1.30).
            return Map.of("major", "1", "minor", "30", "gitVersion", "v1.30.7+rke2r1", "platform", "linux/amd64",
                    "goVersion", "go1.22.8", "compiler", "gc", "gitCommit", "", "gitTreeState", "clean", "buildDate", "2024-11-20T00:00:00Z");
        }
        if (p.equals("/api")) {
            return Map.of("kind", "APIVersions", "versions", List.of("v1"),
                    "serverAddressByClientCIDRs", List.of(Map.of("clientCIDR", "0.0.0.0/0", "serverAddress", "127.0.0.1")));
        }
        if (p.equals("/apis")) {
            List<Object> groups = new ArrayList<>();
            RESOURCES.keySet().stream().filter(gv -> gv.contains("/")).forEach(gv -> {
                Map<String, String> v = Map.of("groupVersion", gv, "version", gv.substring(gv.indexOf('/') + 1));
                groups.add(Map.of("name", gv.substring(0, gv.indexOf('/')), "versions", List.of(v), "preferredVersion", v));
            });
            return Map.of("kind", "APIGroupList", "apiVersion", "v1", "groups", groups);
        }
        if (p.startsWith("/apis/") && p.chars().filter(ch -> ch == '/').count() == 2) {
            // GET /apis/GROUP: the group's versions.
            String group = p.substring("/apis/".length());
            for (String gv : RESOURCES.keySet()) {
                if (gv.startsWith(group + "/")) {
                    Map<String, String> v = Map.of("groupVersion", gv, "version", gv.substring(gv.indexOf('/') + 1));
                    return Map.of("kind", "APIGroup", "apiVersion", "v1", "name", group, "versions", List.of(v), "preferredVersion", v);
                }
            }
            return null;
        }
        String gv = p.equals("/api/v1") ? "v1" : p.startsWith("/apis/") ? p.substring("/apis/".length()) : null;
        if (gv == null || !RESOURCES.containsKey(gv)) return null;
        List<Object> resources = new ArrayList<>();
        for (Resource r : RESOURCES.get(gv)) {
            resources.add(Map.of("name", r.plural(), "singularName", r.kind().toLowerCase(java.util.Locale.ROOT), "kind", r.kind(),
                    "namespaced", r.namespaced(), "shortNames", r.shortNames(),
                    "verbs", List.of("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")));
            resources.add(Map.of("name", r.plural() + "/status", "singularName", "", "kind", r.kind(),
                    "namespaced", r.namespaced(), "verbs", List.of("get", "patch", "update")));
        }
        return Map.of("kind", "APIResourceList", "apiVersion", "v1", "groupVersion", gv, "resources", resources);
    }

    /**
     * A list of PCIDevices as a meta.k8s.io/v1 Table when asked for one (kubectl get does), so
     * kubectl prints the real columns and pays what it pays against a real API server.
     */
    @SuppressWarnings("unchecked")
    private MockResponse pciDeviceTable(RecordedRequest req, String p) {
        String accept = req.getHeader("Accept");
        if (accept == null || !accept.contains("as=Table") || !p.equals("/apis/" + Harvester.API_VERSION + "/pcidevices")) {
            return null;
        }
        GenericKubernetesResource list = store.read(p);
        List<Map<String, Object>> items = list == null ? List.of()
                : (List<Map<String, Object>>) list.getAdditionalProperties().getOrDefault("items", List.of());
        List<Object> columns = new ArrayList<>();
        columns.add(Map.of("name", "Name", "type", "string", "format", "name", "description", "Name of the object", "priority", 0));
        for (String[] c : PCI_COLUMNS) columns.add(Map.of("name", c[0], "type", "string", "format", "", "description", "", "priority", 0));
        List<Object> rows = new ArrayList<>();
        for (Map<String, Object> item : items) {
            Map<String, Object> metadata = (Map<String, Object>) item.get("metadata");
            Map<String, Object> status = (Map<String, Object>) item.getOrDefault("status", Map.of());
            List<Object> cells = new ArrayList<>();
            cells.add(metadata.get("name"));
            for (String[] c : PCI_COLUMNS) cells.add(status.getOrDefault(c[1], null));
            rows.add(Map.of("cells", cells, "object", Map.of("kind", "PartialObjectMetadata", "apiVersion", "meta.k8s.io/v1", "metadata", metadata)));
        }
        return json(Map.of("kind", "Table", "apiVersion", "meta.k8s.io/v1", "metadata", Map.of("resourceVersion", "1"),
                "columnDefinitions", columns, "rows", rows));
    }

    private static MockResponse json(Object body) {
        return new MockResponse().setResponseCode(200).setHeader("Content-Type", "application/json").setBody(Serialization.asJson(body));
    }
}
