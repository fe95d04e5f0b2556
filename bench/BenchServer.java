///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//DESCRIPTION The simulated Harvester cluster on 127.0.0.1 for bench/run.sh: kubeconfig and request counts in a state directory
//SOURCES ../scripts/lib/sim/SimCluster.java

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;

/**
 * Serves the simulated cluster (the same one the tests use) to bench/run.sh, kubectl and our
 * scripts alike, on 127.0.0.1 only. Usage:
 *
 * <pre>
 *   BenchServer STATE_DIR [--nodes N --devices M] [--ready] [--controller-delay-ms MS] [--vmi-phase-delay-ms MS]
 * </pre>
 *
 * When up it writes, in STATE_DIR: {@code kubeconfig} (a copy of the simulator's), {@code control}
 * (URL of a loopback endpoint: GET /requests lists the requests made by clients so far, one
 * "METHOD path" per line; GET /reset clears them) and {@code env} (shell-sourceable facts:
 * DEVICES, CONTROLLER_DELAY_MS, VMI_PHASE_DELAY_MS), then {@code ready} last. It stays up until
 * stdin closes or it is killed.
 */
public class BenchServer {
    public static void main(String... args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: BenchServer STATE_DIR [--nodes N --devices M] [--ready] [--controller-delay-ms MS] [--vmi-phase-delay-ms MS]");
            System.exit(2);
        }
        Path state = Path.of(args[0]);
        int nodes = 0;
        int devices = 0;
        boolean ready = false;
        SimCluster.Options options = new SimCluster.Options();
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--nodes" -> nodes = Integer.parseInt(args[++i]);
                case "--devices" -> devices = Integer.parseInt(args[++i]);
                case "--ready" -> ready = true;
                case "--controller-delay-ms" -> options.controllerDelay = Duration.ofMillis(Long.parseLong(args[++i]));
                case "--vmi-phase-delay-ms" -> options.vmiPhaseDelay = Duration.ofMillis(Long.parseLong(args[++i]));
                default -> {
                    System.err.println("BenchServer: unknown argument " + args[i]);
                    System.exit(2);
                }
            }
        }
        Files.createDirectories(state);

        SimCluster sim = SimCluster.start(options);
        sim.addInterceptor(BenchServer::discovery);
        sim.addInterceptor((req, path) -> pciDeviceTable(sim, req, path));
        addNodes(sim, nodes, devices);
        if (ready) makeReady(sim, "altra-000c01000", "altra-000c01001");
        sim.clearClientRequests();

        HttpServer control = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
        control.createContext("/requests", ex -> reply(ex, String.join("\n", sim.clientRequests()) + (sim.clientRequests().isEmpty() ? "" : "\n")));
        control.createContext("/reset", ex -> {
            sim.clearClientRequests();
            reply(ex, "");
        });
        control.start();

        int total = Harvester.pciDevices(sim.admin()).list().getItems().size();
        Files.copy(sim.kubeconfig(), state.resolve("kubeconfig"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.writeString(state.resolve("control"), "http://127.0.0.1:" + control.getAddress().getPort() + "\n");
        Files.writeString(state.resolve("env"), "DEVICES=" + total + "\n"
                + "CONTROLLER_DELAY_MS=" + sim.options().controllerDelay.toMillis() + "\n"
                + "VMI_PHASE_DELAY_MS=" + sim.options().vmiPhaseDelay.toMillis() + "\n");
        Files.writeString(state.resolve("ready"), sim.url() + "\n");
        System.err.println("BenchServer: " + sim.url() + " with " + total + " PCIDevices; state in " + state);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            control.stop(0);
            sim.close();
        }));
        // Up until the driving script closes our stdin (or kills us).
        while (System.in.read() != -1) {
            // discard
        }
        System.exit(0);
    }

    /** API groups and resources the simulator stores, as kubectl reads them from a real API server. */
    private static final Map<String, List<String[]>> RESOURCES = Map.of(
            "v1", List.of(new String[] {"nodes", "Node", "false"}, new String[] {"pods", "Pod", "true"}),
            Harvester.API_VERSION, List.of(new String[] {"pcidevices", "PCIDevice", "false"},
                    new String[] {"pcideviceclaims", "PCIDeviceClaim", "false"}, new String[] {"usbdevices", "USBDevice", "false"}),
            "kubevirt.io/v1", List.of(new String[] {"virtualmachines", "VirtualMachine", "true"},
                    new String[] {"virtualmachineinstances", "VirtualMachineInstance", "true"}, new String[] {"kubevirts", "KubeVirt", "true"}));

    /**
     * Discovery (GET /api, /apis, /api/v1, /apis/GROUP/VERSION), which the mock server does not serve:
     * kubectl needs it to resolve "pcidevices.devices.harvesterhci.io"; our scripts never ask.
     */
    private static MockResponse discovery(RecordedRequest req, String path) {
        if (!"GET".equals(req.getMethod())) return null;
        String p = path.replaceFirst("\\?.*", "");
        Object body = null;
        if (p.equals("/api")) {
            body = Map.of("kind", "APIVersions", "versions", List.of("v1"),
                    "serverAddressByClientCIDRs", List.of(Map.of("clientCIDR", "0.0.0.0/0", "serverAddress", "127.0.0.1")));
        } else if (p.equals("/apis")) {
            List<Object> groups = new ArrayList<>();
            RESOURCES.keySet().stream().filter(gv -> gv.contains("/")).sorted().forEach(gv -> {
                String group = gv.substring(0, gv.indexOf('/'));
                Map<String, String> v = Map.of("groupVersion", gv, "version", gv.substring(gv.indexOf('/') + 1));
                groups.add(Map.of("name", group, "versions", List.of(v), "preferredVersion", v));
            });
            body = Map.of("kind", "APIGroupList", "apiVersion", "v1", "groups", groups);
        } else {
            String gv = p.equals("/api/v1") ? "v1" : p.startsWith("/apis/") ? p.substring("/apis/".length()) : null;
            if (gv == null || !RESOURCES.containsKey(gv)) return null;
            List<Object> resources = new ArrayList<>();
            for (String[] r : RESOURCES.get(gv)) {
                resources.add(Map.of("name", r[0], "singularName", r[1].toLowerCase(), "kind", r[1],
                        "namespaced", Boolean.parseBoolean(r[2]),
                        "verbs", List.of("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")));
                resources.add(Map.of("name", r[0] + "/status", "singularName", "", "kind", r[1],
                        "namespaced", Boolean.parseBoolean(r[2]), "verbs", List.of("get", "patch", "update")));
            }
            body = Map.of("kind", "APIResourceList", "apiVersion", "v1", "groupVersion", gv, "resources", resources);
        }
        return body == null ? null : json(200, body);
    }

    /** PCIDevice columns of the real CRD (additionalPrinterColumns), as the API server renders them. */
    private static final String[][] PCI_COLUMNS = {{"Address", "address"}, {"Vendor Id", "vendorId"}, {"Device Id", "deviceId"},
            {"Node Name", "nodeName"}, {"Description", "description"}, {"Kernel Driver In Use", "kernelDriverInUse"}};

    /**
     * A list of PCIDevices as a meta.k8s.io/v1 Table when asked for one (kubectl get does), so
     * kubectl prints the real columns and pays what it pays against a real API server.
     */
    @SuppressWarnings("unchecked")
    private static MockResponse pciDeviceTable(SimCluster sim, RecordedRequest req, String path) {
        String accept = req.getHeader("Accept");
        String p = path.replaceFirst("\\?.*", "");
        if (!"GET".equals(req.getMethod()) || accept == null || !accept.contains("as=Table")
                || !p.equals("/apis/" + Harvester.API_VERSION + "/pcidevices")) {
            return null;
        }
        GenericKubernetesResource list = sim.dispatcher().read(p);
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
        return json(200, Map.of("kind", "Table", "apiVersion", "meta.k8s.io/v1", "metadata", Map.of("resourceVersion", "1"),
                "columnDefinitions", columns, "rows", rows));
    }

    private static MockResponse json(int code, Object body) {
        return new MockResponse().setResponseCode(code).setHeader("Content-Type", "application/json").setBody(Serialization.asJson(body));
    }

    private static void reply(HttpExchange ex, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        ex.sendResponseHeaders(200, bytes.length == 0 ? -1 : bytes.length);
        try (OutputStream o = ex.getResponseBody()) {
            o.write(bytes);
        }
    }

    /** N more nodes named bench-001.., each with M PCIDevices, one per IOMMU group (as on a plain server). */
    private static void addNodes(SimCluster sim, int nodes, int devices) throws Exception {
        List<GenericKubernetesResource> objects = new ArrayList<>();
        for (int n = 1; n <= nodes; n++) {
            String node = "bench-%03d".formatted(n);
            objects.add(Serialization.unmarshal("""
                    apiVersion: v1
                    kind: Node
                    metadata:
                      name: %s
                      labels: {kubernetes.io/hostname: %s, kubernetes.io/arch: amd64, kubernetes.io/os: linux}
                    status:
                      allocatable: {cpu: "64", memory: 263746036Ki, pods: "200"}
                      conditions: [{type: Ready, status: "True", reason: KubeletReady}]
                    """.formatted(node, node), GenericKubernetesResource.class));
            for (int d = 0; d < devices; d++) {
                String address = "0000:%02x:%02x.0".formatted(d / 32 + 1, d % 32);
                objects.add(Serialization.unmarshal("""
                        apiVersion: devices.harvesterhci.io/v1beta1
                        kind: PCIDevice
                        metadata:
                          name: %s
                          labels: {nodename: %s}
                          annotations: {harvesterhci.io/pcideviceDriver: e1000e}
                        spec: {}
                        status:
                          address: "%s"
                          vendorId: "8086"
                          deviceId: "10d3"
                          classId: "0200"
                          iommuGroup: "%d"
                          nodeName: %s
                          resourceName: intel.com/82574L_GIGABIT_NETWORK_CONNECTION
                          description: "Ethernet controller: Intel Corporation 82574L Gigabit Network Connection"
                          kernelDriverInUse: e1000e
                        """.formatted(Harvester.pciDeviceName(node, address), node, address, 100 + d, node),
                        GenericKubernetesResource.class));
            }
        }
        // The store is thread-safe; creating 5,000 objects one by one takes long on 2 cores.
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<?>> done = new ArrayList<>();
        for (GenericKubernetesResource r : objects) done.add(pool.submit(() -> sim.create(r)));
        for (Future<?> f : done) f.get();
        pool.shutdown();
    }

    /**
     * The state the pcidevices controller leaves after `claim`: each device of the group claimed
     * (owned by its PCIDevice, passthrough enabled), bound to vfio-pci, permitted in the KubeVirt
     * CR and allocatable on its node — so `attach` has only its own work to do.
     */
    @SuppressWarnings("unchecked")
    private static void makeReady(SimCluster sim, String... names) {
        var admin = sim.admin();
        for (String name : names) {
            GenericKubernetesResource dev = Harvester.pciDevices(admin).withName(name).get();
            Harvester.PciDevice d = Harvester.PciDevice.of(dev);
            GenericKubernetesResource claim = Serialization.unmarshal("""
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDeviceClaim
                    metadata:
                      name: %s
                      labels: {nodename: %s}
                    spec: {address: "%s", nodeName: %s, userName: admin}
                    status: {kernelDriverToUnbind: %s, passthroughEnabled: true}
                    """.formatted(name, d.node(), d.address(), d.node(), d.driver()), GenericKubernetesResource.class);
            claim.getMetadata().setOwnerReferences(List.of(new OwnerReferenceBuilder()
                    .withApiVersion(Harvester.API_VERSION).withKind("PCIDevice").withName(name)
                    .withUid(dev.getMetadata().getUid()).build()));
            sim.create(claim);
            ((Map<String, Object>) dev.getAdditionalProperties().get("status")).put("kernelDriverInUse", Harvester.DRIVER_VFIO);
            Harvester.pciDevices(admin).resource(dev).updateStatus();

            GenericKubernetesResource kv = KubeVirt.kubevirts(admin).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME).get();
            Map<String, Object> permitted = (Map<String, Object>) ((Map<String, Object>) ((Map<String, Object>) kv.getAdditionalProperties()
                    .get("spec")).get("configuration")).get("permittedHostDevices");
            List<Object> pci = (List<Object>) permitted.computeIfAbsent("pciHostDevices", k -> new ArrayList<>());
            pci.add(Map.of("pciVendorSelector", dev.get("status", "vendorId") + ":" + dev.get("status", "deviceId"),
                    "resourceName", d.resourceName(), "externalResourceProvider", true));
            KubeVirt.kubevirts(admin).inNamespace(Harvester.KUBEVIRT_NAMESPACE).resource(kv).update();

            var node = admin.nodes().withName(d.node()).get();
            node.getStatus().getCapacity().put(d.resourceName(), new io.fabric8.kubernetes.api.model.Quantity("1"));
            node.getStatus().getAllocatable().put(d.resourceName(), new io.fabric8.kubernetes.api.model.Quantity("1"));
            admin.nodes().resource(node).updateStatus();
        }
    }
}
