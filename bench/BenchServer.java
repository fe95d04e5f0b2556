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
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
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

/**
 * Serves the simulated cluster (the same one the tests use, HTTPS with its own CA, a bearer token
 * and API discovery) to bench/run.sh, kubectl and our scripts alike, on 127.0.0.1 only. Usage:
 *
 * <pre>
 *   BenchServer STATE_DIR [--nodes N --devices M] [--ready] [--controller-delay-ms MS] [--vmi-phase-delay-ms MS]
 * </pre>
 *
 * When up it writes, in STATE_DIR: {@code kubeconfig} (a copy of the simulator's), {@code control}
 * (URL of a loopback endpoint: GET /requests lists the requests made by clients so far, one
 * "METHOD path" per line; GET /timeline lists them with their arrival time, merged with the VMI
 * phases the simulated KubeVirt wrote, see {@link #timeline}; GET /reset clears both) and {@code env} (shell-sourceable facts:
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
        addNodes(sim, nodes, devices);
        if (ready) makeReady(sim, "altra-000c01000", "altra-000c01001");
        sim.clearClientRequests();

        HttpServer control = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
        control.createContext("/requests", ex -> reply(ex, String.join("\n", sim.clientRequests()) + (sim.clientRequests().isEmpty() ? "" : "\n")));
        control.createContext("/timeline", ex -> reply(ex, timeline(sim)));
        control.createContext("/reset", ex -> {
            sim.clearClientRequests();
            KubeVirtController.of(sim).clearPhasesWritten();
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

    /**
     * One line per event, oldest first, times in seconds since the epoch (microseconds; the clock
     * strace -ttt and bash's EPOCHREALTIME read):
     * <pre>
     *   1764574800.123456 request PUT /apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachines/docker-host/restart
     *   1764574800.456789 vmi default/docker-host 5f0c…-uid Running
     * </pre>
     * A request is timed when the server dispatches it; a phase when the controller's write returned.
     */
    private static String timeline(SimCluster sim) {
        record Event(Instant at, String text) {}
        List<Event> events = new ArrayList<>();
        for (SimDispatcher.TimedRequest r : sim.dispatcher().timedClientRequests()) {
            events.add(new Event(r.at(), "request " + r.method() + " " + r.path()));
        }
        for (KubeVirtController.PhaseWritten p : KubeVirtController.of(sim).phasesWritten()) {
            events.add(new Event(p.at(), "vmi " + p.vmi() + " " + p.uid() + " " + p.phase()));
        }
        events.sort(Comparator.comparing(Event::at));
        StringBuilder out = new StringBuilder();
        for (Event e : events) {
            out.append("%d.%06d %s%n".formatted(e.at().getEpochSecond(), e.at().getNano() / 1000, e.text()));
        }
        return out.toString();
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
