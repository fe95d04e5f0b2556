import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.zjsonpatch.JsonPatch;

/**
 * The VirtualMachine validator of harvester/pcidevices (pkg/webhook/vm_validatation.go, v1.5–1.7),
 * registered as webhook "pcidevices.harvesterhci.io" with failurePolicy Ignore: it only answers
 * when the controller is up. Denials are plain errors, which Harvester turns into HTTP 500
 * InternalError. Requests from the simulator's own controllers are not validated.
 * Not yet version-aware: the fixture reports Harvester v1.9.0, whose pcidevices (v1.8+) converts
 * `gpus` into hostDevices in the mutator instead of rejecting them; the v1.5–1.7 rejection is kept
 * because attach --move-gpus and diagnose's gpus-field check are tested against it.
 */
final class PciDevicesWebhook implements SimDispatcher.Interceptor {
    static final String DENIED = "admission webhook \"pcidevices.harvesterhci.io\" denied the request: ";
    private static final Pattern VM = Pattern.compile("^/apis/kubevirt\\.io/v1/namespaces/([^/]+)/virtualmachines(/([^/?]+))?(\\?.*)?$");

    private final SimCluster sim;
    /** Fault WEBHOOK_RACE: how many client VM updates are denied as if the cache were still empty. */
    volatile int raceDenials = 2;
    final AtomicInteger raceDenied = new AtomicInteger();

    PciDevicesWebhook(SimCluster sim) {
        this.sim = sim;
    }

    @Override
    public MockResponse intercept(RecordedRequest req, String path) {
        Matcher m = VM.matcher(path);
        if (!m.matches() || SimDispatcher.fromSimulator(req) || sim.fault(Fault.CONTROLLER_DOWN) || sim.fault(Fault.ADDON_DISABLED)) return null;
        String method = req.getMethod();
        boolean create = "POST".equals(method) && m.group(3) == null;
        boolean update = ("PUT".equals(method) || "PATCH".equals(method)) && m.group(3) != null;
        if (!create && !update) return null;
        JsonNode vm = newObject(req, path, method);
        if (vm == null) return null; // the store answers (404, bad body)
        JsonNode devices = vm.path("spec").path("template").path("spec").path("domain").path("devices");
        JsonNode hostDevices = devices.path("hostDevices");
        String name = vm.path("metadata").path("name").asText(m.group(3));

        // The validator only runs for VMs with host devices.
        if (hostDevices.size() == 0 && devices.path("gpus").size() == 0) return null;
        Map<String, String> pciNodes = new LinkedHashMap<>();   // PCIDevice name → node
        Map<String, String> usbNodes = new LinkedHashMap<>();   // USBDevice name → node
        List<String> resources = new ArrayList<>();
        for (JsonNode d : items("/apis/devices.harvesterhci.io/v1beta1/pcidevices")) {
            pciNodes.put(d.path("metadata").path("name").asText(), d.path("status").path("nodeName").asText());
            resources.add(d.path("status").path("resourceName").asText());
        }
        List<String> pciResources = List.copyOf(resources);
        for (JsonNode d : items("/apis/devices.harvesterhci.io/v1beta1/usbdevices")) {
            usbNodes.put(d.path("metadata").path("name").asText(), d.path("status").path("nodeName").asText());
            resources.add(d.path("status").path("resourceName").asText());
        }
        // WEBHOOK_RACE: a freshly restarted pod answers before its PCIDevice cache is filled (USB devices are found).
        if (update && sim.fault(Fault.WEBHOOK_RACE) && raceDenied.get() < raceDenials) {
            for (JsonNode hd : hostDevices) {
                if (pciResources.contains(hd.path("deviceName").asText())) {
                    raceDenied.incrementAndGet();
                    return deny("hostdevice " + hd.path("name").asText() + ": resource name " + hd.path("deviceName").asText()
                            + " not found in pcidevice and usbdevice cache");
                }
            }
        }
        String node = null;
        for (JsonNode hd : hostDevices) {
            String hdName = hd.path("name").asText();
            String res = hd.path("deviceName").asText();
            if (!resources.contains(res)) {
                return deny("hostdevice " + hdName + ": resource name " + res + " not found in pcidevice and usbdevice cache");
            }
            String kind = pciNodes.containsKey(hdName) ? "pcidevice" : usbNodes.containsKey(hdName) ? "usbdevice" : null;
            if (kind == null) continue; // free-form names are not checked (pre-1.1.2 UI compatibility)
            String n = "pcidevice".equals(kind) ? pciNodes.get(hdName) : usbNodes.get(hdName);
            if (node == null) node = n;
            else if (!node.equals(n)) {
                return deny("device " + kind + "/" + hdName + " is not on the same node in "
                        + "VirtualMachine.Spec.Template.Spec.Domain.Devices.HostDevices " + name);
            }
        }
        // v1.5.0–v1.7.x validateGPUs(): gpus are looked up in the vGPU cache, where a passthrough GPU never is.
        for (JsonNode gpu : devices.path("gpus")) {
            return deny("gpu device " + gpu.path("name").asText() + ": resource name " + gpu.path("deviceName").asText()
                    + " not found in pcidevice cache");
        }
        return null;
    }

    static MockResponse deny(String message) {
        return SimDispatcher.status(500, "InternalError", DENIED + message);
    }

    /** The object as it would be stored: the body of a POST/PUT, or the current object with the PATCH applied. */
    private JsonNode newObject(RecordedRequest req, String path, String method) {
        byte[] body = req.getBody() == null ? new byte[0] : req.getBody().getBytes(); // getBytes does not consume the body
        String text = new String(body, StandardCharsets.UTF_8);
        try {
            if (!"PATCH".equals(method)) return Serialization.jsonMapper().readTree(text);
            String current = store(path.replaceFirst("\\?.*", ""));
            if (current == null) return null;
            JsonNode base = Serialization.jsonMapper().readTree(current);
            String type = String.valueOf(req.getHeader("Content-Type"));
            if (type.contains("json-patch")) return JsonPatch.apply(Serialization.jsonMapper().readTree(text), base);
            return sim.dispatcher().merge(base, text);
        } catch (Exception e) {
            return null;
        }
    }

    private String store(String path) {
        MockResponse r = sim.dispatcher().handleGet(path);
        return r == null || r.code() != 200 ? null : r.getBody().readUtf8();
    }

    private List<JsonNode> items(String listPath) {
        List<JsonNode> out = new ArrayList<>();
        try {
            String body = store(listPath);
            if (body != null) Serialization.jsonMapper().readTree(body).path("items").forEach(out::add);
        } catch (Exception ignored) {
            // an unreadable list is an empty cache
        }
        return out;
    }
}
