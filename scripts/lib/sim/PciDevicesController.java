import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;

/**
 * The claim side of harvester/pcidevices' agent (pkg/controller/pcideviceclaim): reconciles each
 * PCIDeviceClaim in the order the real controller does (facts §3.2: ownerReferences[0] lookup,
 * permit in the KubeVirt CR, bind to vfio-pci, device plugin, status), one step per
 * {@code controllerDelay}, logging the agent's real lines; on removal rebinds the original driver
 * and withdraws the device from the node (§3.3). It also installs the claim admission webhook.
 * Faults: BIND_FAILS, NOT_PERMITTED, DEVICE_PLUGIN_MISSING; while CONTROLLER_DOWN it does nothing
 * and catches up afterwards. Partly claimed IOMMU groups are bound without complaint, as upstream.
 */
final class PciDevicesController implements AutoCloseable {
    static final String DRIVER_ANNOTATION = "harvesterhci.io/pcideviceDriver";
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(5);

    private final SimCluster sim;
    private final KubernetesClient c;
    private final ScheduledExecutorService exec = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sim-pcidevices-controller");
        t.setDaemon(true);
        return t;
    });
    private final SharedIndexInformer<GenericKubernetesResource> informer;
    /** Claims queued for a reconcile (deduplicated, like a workqueue). */
    private final Set<String> queued = ConcurrentHashMap.newKeySet();
    /** Claims (by uid) whose status this controller wrote; other claims with a status are fixture state. */
    private final Set<String> ours = ConcurrentHashMap.newKeySet();
    private final Set<String> fixtures = ConcurrentHashMap.newKeySet();
    /** The driver each claimed device had before vfio-pci (status.kernelDriverToUnbind), by claim uid. */
    private final Map<String, String> originalDriver = new ConcurrentHashMap<>();
    private final Map<String, Duration> backoff = new ConcurrentHashMap<>();
    /** Device plugins started, "node/resource" (one per resource per node). */
    private final Set<String> plugins = ConcurrentHashMap.newKeySet();

    static PciDevicesController start(SimCluster sim) {
        return new PciDevicesController(sim);
    }

    private PciDevicesController(SimCluster sim) {
        this.sim = sim;
        this.c = sim.admin();
        sim.addInterceptor(new PciDeviceClaimWebhook(sim));
        this.informer = Harvester.pciDeviceClaims(c).inform(new ResourceEventHandler<>() {
            @Override
            public void onAdd(GenericKubernetesResource claim) {
                enqueue(claim.getMetadata().getName(), delay());
            }

            @Override
            public void onUpdate(GenericKubernetesResource old, GenericKubernetesResource claim) {
                enqueue(claim.getMetadata().getName(), delay());
            }

            @Override
            public void onDelete(GenericKubernetesResource claim, boolean unknownFinalState) {
                exec.schedule(() -> remove(claim), delay().toMillis(), TimeUnit.MILLISECONDS);
            }
        });
    }

    private Duration delay() {
        return sim.options().controllerDelay;
    }

    private void enqueue(String name, Duration after) {
        if (queued.add(name)) exec.schedule(() -> reconcileSafely(name), after.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void reconcileSafely(String name) {
        queued.remove(name);
        try {
            reconcile(name);
        } catch (RuntimeException e) {
            if (!exec.isShutdown()) requeueWithError(name, e.getMessage());
        }
    }

    /** lasso logs handler errors this way and requeues with exponential backoff. */
    private void requeueWithError(String name, String error) {
        GenericKubernetesResource claim = Harvester.pciDeviceClaims(c).withName(name).get();
        if (claim != null) {
            sim.agentLog(node(claim), "error syncing '" + name + "': handler PCIDeviceClaimReconcile: " + error + ", requeuing");
        }
        Duration next = backoff.merge(name, delay(), (a, b) -> a.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : a.multipliedBy(2));
        enqueue(name, next);
    }

    /** One step of reconcilePCIDeviceClaims(); requeues itself until passthrough is on. */
    private void reconcile(String name) {
        GenericKubernetesResource claim = Harvester.pciDeviceClaims(c).withName(name).get();
        if (claim == null || claim.getMetadata().getDeletionTimestamp() != null) return;
        if (sim.fault(Fault.CONTROLLER_DOWN)) {
            enqueue(name, delay()); // no pod is running: nothing happens until it is back
            return;
        }
        String uid = claim.getMetadata().getUid();
        Map<String, Object> status = claim.get("status");
        if (fixtures.contains(uid) || (!ours.contains(uid) && status != null && !status.isEmpty())) {
            fixtures.add(uid); // a fixture seeded this claim's state: leave it as given
            return;
        }
        if (Boolean.TRUE.equals(claim.get("status", "passthroughEnabled"))) return;
        String node = node(claim);
        if (node == null || c.nodes().withName(node).get() == null) return; // no agent runs there
        List<OwnerReference> owners = claim.getMetadata().getOwnerReferences();
        if (owners == null || owners.isEmpty() || !"PCIDevice".equals(owners.get(0).getKind())) {
            requeueWithError(name, "Cannot find PCIDevice that owns " + name);
            return;
        }
        GenericKubernetesResource pd = Harvester.pciDevices(c).withName(owners.get(0).getName()).get();
        if (pd == null) {
            requeueWithError(name, "pcidevices." + Harvester.GROUP + " \"" + owners.get(0).getName() + "\" not found");
            return;
        }
        Harvester.PciDevice device = Harvester.PciDevice.of(pd);
        if (device.iommuGroup() == null || device.iommuGroup().isEmpty()) {
            requeueWithError(name, "missing group for address: " + device.address());
            return;
        }
        originalDriver.putIfAbsent(uid, device.driver() == null ? "" : device.driver());

        if (!permitted(device.resourceName())) {
            sim.agentLog(node, "Adding " + device.name() + " to KubeVirt list of permitted devices");
            if (sim.fault(Fault.NOT_PERMITTED)) {
                requeueWithError(name, "error updating kubevirt CR: Operation cannot be fulfilled on kubevirts.kubevirt.io \""
                        + Harvester.KUBEVIRT_NAME + "\": the object has been modified; please apply your changes to the latest version and try again");
                return;
            }
            permit(device);
            enqueue(name, delay());
            return;
        }
        if (!Harvester.DRIVER_VFIO.equals(device.driver())) {
            sim.agentLog(node, "Enabling passthrough for PDC: " + name);
            sim.agentLog(node, "Binding device " + device.name() + " [" + device.vendorId() + " " + device.deviceId() + "] to vfio-pci");
            if (sim.fault(Fault.BIND_FAILS)) {
                requeueWithError(name, "write /sys/bus/pci/drivers/vfio-pci/bind: invalid argument");
                return;
            }
            setDriver(device.name(), Harvester.DRIVER_VFIO);
            enqueue(name, delay());
            return;
        }
        String plugin = node + "/" + device.resourceName();
        if (plugins.add(plugin)) {
            sim.agentLog(node, "Started DevicePlugin: " + device.resourceName());
        } else {
            sim.agentLog(node, "Adding new claimed " + device.resourceName() + " to device plugin");
        }
        ours.add(uid);
        backoff.remove(name);
        Harvester.pciDeviceClaims(c).withName(name).editStatus(x -> {
            Map<String, Object> s = new HashMap<>();
            s.put("kernelDriverToUnbind", originalDriver.get(uid));
            s.put("passthroughEnabled", true);
            x.setAdditionalProperty("status", s);
            return x;
        });
        if (sim.fault(Fault.DEVICE_PLUGIN_MISSING)) {
            sim.agentLog(node, "device socket file for device " + device.resourceName() + " was removed, kubelet probably restarted.");
        } else {
            sim.agentLog(node, "Initialized DevicePlugin: " + device.resourceName());
            advertise(node, device.resourceName());
        }
    }

    /** PCIDeviceClaimOnRemove: rebind the original driver, take the device out of the plugin; the KubeVirt CR keeps its entry. */
    private void remove(GenericKubernetesResource claim) {
        if (exec.isShutdown()) return;
        if (sim.fault(Fault.CONTROLLER_DOWN)) {
            exec.schedule(() -> remove(claim), delay().toMillis(), TimeUnit.MILLISECONDS);
            return;
        }
        String uid = claim.getMetadata().getUid();
        ours.remove(uid);
        fixtures.remove(uid);
        originalDriver.remove(uid);
        GenericKubernetesResource pd = Harvester.pciDevices(c).withName(claim.getMetadata().getName()).get();
        if (pd == null) return;
        Harvester.PciDevice device = Harvester.PciDevice.of(pd);
        String node = device.node();
        if (Harvester.DRIVER_VFIO.equals(device.driver())) {
            Map<String, String> ann = pd.getMetadata().getAnnotations();
            String original = ann == null ? null : ann.get(DRIVER_ANNOTATION);
            setDriver(device.name(), original == null || original.isEmpty() ? null : original);
        }
        sim.agentLog(node, "Removing " + device.resourceName() + " from device plugin");
        advertise(node, device.resourceName());
    }

    private String node(GenericKubernetesResource claim) {
        Object n = claim.get("spec", "nodeName");
        return n == null ? null : n.toString();
    }

    private boolean permitted(String resource) {
        GenericKubernetesResource kv = KubeVirt.kubevirts(c).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME).get();
        Object list = kv == null ? null : kv.get("spec", "configuration", "permittedHostDevices", "pciHostDevices");
        return list instanceof List<?> l && l.stream().anyMatch(o -> o instanceof Map<?, ?> m
                && resource.equals(m.get("resourceName")) && Boolean.TRUE.equals(m.get("externalResourceProvider")));
    }

    /** reconcileKubevirtCR(): add {pciVendorSelector, resourceName, externalResourceProvider: true}. */
    @SuppressWarnings("unchecked")
    private void permit(Harvester.PciDevice device) {
        KubeVirt.kubevirts(c).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME).edit(kv -> {
            Map<String, Object> spec = (Map<String, Object>) kv.getAdditionalProperties().computeIfAbsent("spec", k -> new HashMap<>());
            Map<String, Object> conf = (Map<String, Object>) spec.computeIfAbsent("configuration", k -> new HashMap<>());
            Map<String, Object> phd = (Map<String, Object>) conf.computeIfAbsent("permittedHostDevices", k -> new HashMap<>());
            List<Object> pci = new java.util.ArrayList<>((List<Object>) phd.getOrDefault("pciHostDevices", List.of()));
            // An entry with externalResourceProvider: false is removed and re-added (§5).
            pci.removeIf(o -> o instanceof Map<?, ?> m && device.resourceName().equals(m.get("resourceName")));
            Map<String, Object> entry = new java.util.LinkedHashMap<>();
            entry.put("pciVendorSelector", device.vendorId() + ":" + device.deviceId());
            entry.put("resourceName", device.resourceName());
            entry.put("externalResourceProvider", true);
            pci.add(entry);
            phd.put("pciHostDevices", pci);
            return kv;
        });
    }

    @SuppressWarnings("unchecked")
    private void setDriver(String device, String driver) {
        Harvester.pciDevices(c).withName(device).editStatus(pd -> {
            Map<String, Object> s = (Map<String, Object>) pd.getAdditionalProperties().get("status");
            if (driver == null) s.remove("kernelDriverInUse");
            else s.put("kernelDriverInUse", driver);
            return pd;
        });
    }

    /** Device plugin → kubelet: capacity/allocatable[resource] = healthy (claimed, passthrough) devices on the node. */
    private void advertise(String node, String resource) {
        Map<String, String> resourceOf = new HashMap<>();
        Harvester.pciDevices(c).withLabel("nodename", node).list().getItems()
                .forEach(d -> resourceOf.put(d.getMetadata().getName(), Harvester.PciDevice.of(d).resourceName()));
        long healthy = Harvester.pciDeviceClaims(c).list().getItems().stream()
                .map(Harvester.PciDeviceClaim::of)
                .filter(cl -> node.equals(cl.node()) && cl.passthroughEnabled() && resource.equals(resourceOf.get(cl.name())))
                .count();
        c.nodes().withName(node).editStatus(n -> {
            for (Map<String, Quantity> m : List.of(n.getStatus().getCapacity(), n.getStatus().getAllocatable())) {
                if (healthy > 0) m.put(resource, new Quantity(Long.toString(healthy)));
                else m.remove(resource);
            }
            return n;
        });
    }

    @Override
    public void close() {
        exec.shutdownNow();
        informer.close();
    }
}
