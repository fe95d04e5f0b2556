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
 * PCIDeviceClaim in the order the real controller does (ownerReferences[0] lookup,
 * permit in the KubeVirt CR, bind to vfio-pci, device plugin, status), one step per
 * {@code controllerDelay}, logging the agent's real lines; on removal rebinds the original driver
 * and withdraws the device from the node (OnRemove). It also installs the claim admission webhook.
 * Faults: BIND_FAILS, NOT_PERMITTED, DEVICE_PLUGIN_MISSING, DUPLICATE_PERMITTED; while
 * CONTROLLER_DOWN (or the add-on is disabled) it does nothing and catches up afterwards. Partly
 * claimed IOMMU groups are bound without complaint, as upstream.
 * <p>
 * Removal goes through wrangler's OnRemove finalizer {@value Harvester#CLAIM_FINALIZER}: every
 * agent adds it to every claim it sees; on delete (the API server only sets deletionTimestamp while
 * a finalizer is left) agents on other nodes refuse ("controller bravo cannot process claims for
 * node altra") and only a Ready agent on the claim's node gives the device back and drops the
 * finalizer — so with that agent down (CLAIM_STUCK_TERMINATING) the claim stays Terminating. A claim
 * without ownerReferences (public guides) gets the finalizer too and then never loses it: OnRemove
 * fails at getPCIDeviceForClaim ("Cannot find PCIDevice that owns ..."). Claims a test seeded with a
 * status are fixture state: left as given, no finalizer, given back as soon as they are deleted.
 * <p>
 * spec.disableResourcePooling (v1.9) is read once, when the claim is first seen (a later edit does
 * nothing, as upstream: "user will need to recreate the pcideviceclaim"): the device's resource
 * becomes {@code <vendor prefix>/<PCIDevice name>} (override annotation + status.resourceName),
 * permitted and advertised under that name; the pooled name comes back when the claim is removed.
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
    /** spec.disableResourcePooling as it was when each claim (by uid) was first seen. */
    private final Map<String, Boolean> poolingOff = new ConcurrentHashMap<>();
    /** The pooled resource name of each device whose name was overridden, to restore on removal. */
    private final Map<String, String> pooledName = new ConcurrentHashMap<>();
    /** Claims (by uid) given back through the finalizer: their final delete needs nothing more. */
    private final Set<String> givenBack = ConcurrentHashMap.newKeySet();
    /** "node/claim uid" refusals already logged by agents on other nodes (lasso logs each retry; once is enough here). */
    private final Set<String> refusalsLogged = ConcurrentHashMap.newKeySet();

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
                String uid = claim.getMetadata().getUid();
                poolingOff.remove(uid);
                if (givenBack.remove(uid)) return; // OnRemove already gave the device back
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
        requeueWithError(name, "PCIDeviceClaimReconcile", error);
    }

    private void requeueWithError(String name, String handler, String error) {
        GenericKubernetesResource claim = Harvester.pciDeviceClaims(c).withName(name).get();
        if (claim != null) {
            sim.agentLog(node(claim), "error syncing '" + name + "': handler " + handler + ": " + error + ", requeuing");
        }
        requeue(name);
    }

    private void requeue(String name) {
        Duration next = backoff.merge(name, delay(), (a, b) -> a.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : a.multipliedBy(2));
        enqueue(name, next);
    }

    /** One step of reconcilePCIDeviceClaims(); requeues itself until passthrough is on. */
    private void reconcile(String name) {
        GenericKubernetesResource claim = Harvester.pciDeviceClaims(c).withName(name).get();
        if (claim == null) return;
        if (sim.fault(Fault.CONTROLLER_DOWN) || sim.fault(Fault.ADDON_DISABLED)) {
            enqueue(name, delay()); // no pod is running: nothing happens until it is back
            return;
        }
        if (claim.getMetadata().getDeletionTimestamp() != null) {
            onRemove(claim);
            return;
        }
        String uid = claim.getMetadata().getUid();
        Map<String, Object> status = claim.get("status");
        if (fixtures.contains(uid) || (!ours.contains(uid) && status != null && !status.isEmpty())) {
            fixtures.add(uid); // a fixture seeded this claim's state: leave it as given
            return;
        }
        poolingOff.putIfAbsent(uid, Harvester.poolingDisabled(claim));
        if (!Harvester.hasClaimFinalizer(claim)) {
            addFinalizer(name); // wrangler's OnRemove registration, on whichever agent sees the claim first
            return; // the update is an event: the claim is queued again
        }
        if (Boolean.TRUE.equals(claim.get("status", "passthroughEnabled"))) return;
        String node = node(claim);
        if (node == null || c.nodes().withName(node).get() == null) return; // no agent runs there
        if (sim.fault(Fault.CLAIM_STUCK_TERMINATING) && Fault.NODE.equals(node)) {
            enqueue(name, delay()); // that node's agent crash-loops: the claim waits for it
            return;
        }
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
        if (Boolean.TRUE.equals(poolingOff.get(uid)) && !Harvester.isPerDeviceResourceName(device.resourceName(), device.name())) {
            overrideResourceName(device, Harvester.perDeviceResourceName(device.resourceName(), device.name()));
            enqueue(name, delay());
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

    /**
     * wrangler's OnRemove for a claim with a deletionTimestamp: only a Ready agent on spec.nodeName
     * processes it; then the device is given back and the finalizer dropped (the API server then
     * deletes the claim).
     */
    private void onRemove(GenericKubernetesResource claim) {
        String name = claim.getMetadata().getName();
        String uid = claim.getMetadata().getUid();
        if (!Harvester.hasClaimFinalizer(claim)) return; // nothing holds it: the API server deletes it
        String node = node(claim);
        for (String other : agentNodes()) {
            if (!other.equals(node) && agentUp(other) && refusalsLogged.add(other + "/" + uid)) {
                sim.agentLog(other, "error syncing '" + name + "': handler PCIDeviceClaimOnRemove: controller " + other
                        + " cannot process claims for node " + node + ", requeuing");
            }
        }
        if (node == null || !agentUp(node)) {
            requeue(name); // stays Terminating until that node's agent runs again
            return;
        }
        List<OwnerReference> owners = claim.getMetadata().getOwnerReferences();
        if (owners == null || owners.isEmpty()) {
            sim.agentLog(node, "Error getting claim's device: Cannot find PCIDevice that owns " + name);
            requeueWithError(name, "PCIDeviceClaimOnRemove", "Cannot find PCIDevice that owns " + name);
            return;
        }
        GenericKubernetesResource pd = Harvester.pciDevices(c).withName(owners.get(0).getName()).get();
        if (pd == null) {
            requeueWithError(name, "PCIDeviceClaimOnRemove", "pcidevices." + Harvester.GROUP + " \"" + owners.get(0).getName() + "\" not found");
            return;
        }
        backoff.remove(name);
        givenBack.add(uid);
        // As upstream: the finalizer goes after the handler (rebind, plugin removal) has returned, so a
        // claim that is gone means the device is back (claim --delete waits until the claim is gone).
        giveBack(claim, pd);
        removeFinalizer(name);
    }

    /** PCIDeviceClaimOnRemove for a claim deleted without a finalizer (fixture state): give the device back. */
    private void remove(GenericKubernetesResource claim) {
        if (exec.isShutdown()) return;
        if (sim.fault(Fault.ADDON_DISABLED)) {
            forget(claim); // no agent ever saw it: nothing was bound, nothing to give back
            return;
        }
        if (sim.fault(Fault.CONTROLLER_DOWN)) {
            exec.schedule(() -> remove(claim), delay().toMillis(), TimeUnit.MILLISECONDS);
            return;
        }
        GenericKubernetesResource pd = Harvester.pciDevices(c).withName(claim.getMetadata().getName()).get();
        if (pd == null) {
            forget(claim);
            return;
        }
        giveBack(claim, pd);
    }

    private void forget(GenericKubernetesResource claim) {
        String uid = claim.getMetadata().getUid();
        ours.remove(uid);
        fixtures.remove(uid);
        originalDriver.remove(uid);
        refusalsLogged.removeIf(k -> k.endsWith("/" + uid));
    }

    /** Rebind the original driver, take the device out of the plugin, restore a pooled name; the KubeVirt CR keeps its entry. */
    private void giveBack(GenericKubernetesResource claim, GenericKubernetesResource pd) {
        forget(claim);
        Harvester.PciDevice device = Harvester.PciDevice.of(pd);
        String node = device.node();
        if (Harvester.DRIVER_VFIO.equals(device.driver())) {
            Map<String, String> ann = pd.getMetadata().getAnnotations();
            String original = ann == null ? null : ann.get(DRIVER_ANNOTATION);
            setDriver(device.name(), original == null || original.isEmpty() ? null : original);
        }
        sim.agentLog(node, "Removing " + device.resourceName() + " from device plugin");
        advertise(node, device.resourceName());
        String pooled = pooledName.remove(device.name());
        if (pooled != null) restoreResourceName(device.name(), pooled); // (inference) the per-device name lives only as long as its claim
    }

    /**
     * Whether the pcidevices agent on a node runs: a controller pod is there and no fault stops it.
     * (The faults, not pod readiness, say whether an agent works: a test may switch a fault off
     * without the crash-looping pod's status being rewritten.)
     */
    private boolean agentUp(String node) {
        if (sim.fault(Fault.CONTROLLER_DOWN) || sim.fault(Fault.ADDON_DISABLED)) return false;
        if (sim.fault(Fault.CLAIM_STUCK_TERMINATING) && Fault.NODE.equals(node)) return false;
        return agentNodes().contains(node);
    }

    /** Nodes with a harvester-pcidevices-controller pod (not being deleted). */
    private Set<String> agentNodes() {
        String[] kv = Harvester.CONTROLLER_POD_SELECTOR.split("=", 2);
        Set<String> out = new java.util.TreeSet<>();
        for (var p : c.pods().inNamespace(Harvester.CONTROLLER_NAMESPACE).withLabel(kv[0], kv[1]).list().getItems()) {
            if (p.getMetadata().getDeletionTimestamp() == null && p.getSpec().getNodeName() != null) out.add(p.getSpec().getNodeName());
        }
        return out;
    }

    private void addFinalizer(String name) {
        Harvester.pciDeviceClaims(c).withName(name).edit(x -> {
            List<String> f = x.getMetadata().getFinalizers() == null ? new java.util.ArrayList<>() : new java.util.ArrayList<>(x.getMetadata().getFinalizers());
            if (!f.contains(Harvester.CLAIM_FINALIZER)) f.add(Harvester.CLAIM_FINALIZER);
            x.getMetadata().setFinalizers(f);
            return x;
        });
    }

    private void removeFinalizer(String name) {
        Harvester.pciDeviceClaims(c).withName(name).edit(x -> {
            List<String> f = x.getMetadata().getFinalizers() == null ? new java.util.ArrayList<>() : new java.util.ArrayList<>(x.getMetadata().getFinalizers());
            f.remove(Harvester.CLAIM_FINALIZER);
            x.getMetadata().setFinalizers(f);
            return x;
        });
    }

    /** ensureIndividualDeviceResourceName: the override annotation, and the resource name the device then reports. */
    @SuppressWarnings("unchecked")
    private void overrideResourceName(Harvester.PciDevice device, String resource) {
        pooledName.putIfAbsent(device.name(), device.resourceName());
        Harvester.pciDevices(c).withName(device.name()).edit(pd -> {
            Map<String, String> ann = pd.getMetadata().getAnnotations() == null ? new HashMap<>() : new HashMap<>(pd.getMetadata().getAnnotations());
            ann.put(Harvester.OVERRIDE_RESOURCE_NAME_ANNOTATION, resource);
            pd.getMetadata().setAnnotations(ann);
            return pd;
        });
        Harvester.pciDevices(c).withName(device.name()).editStatus(pd -> {
            ((Map<String, Object>) pd.getAdditionalProperties().get("status")).put("resourceName", resource);
            return pd;
        });
    }

    @SuppressWarnings("unchecked")
    private void restoreResourceName(String device, String pooled) {
        Harvester.pciDevices(c).withName(device).edit(pd -> {
            if (pd.getMetadata().getAnnotations() != null) {
                Map<String, String> ann = new HashMap<>(pd.getMetadata().getAnnotations());
                ann.remove(Harvester.OVERRIDE_RESOURCE_NAME_ANNOTATION);
                pd.getMetadata().setAnnotations(ann);
            }
            return pd;
        });
        Harvester.pciDevices(c).withName(device).editStatus(pd -> {
            ((Map<String, Object>) pd.getAdditionalProperties().get("status")).put("resourceName", pooled);
            return pd;
        });
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
            // An entry with externalResourceProvider: false is removed and re-added (with the flag set to true).
            pci.removeIf(o -> o instanceof Map<?, ?> m && device.resourceName().equals(m.get("resourceName")));
            Map<String, Object> entry = new java.util.LinkedHashMap<>();
            entry.put("pciVendorSelector", device.vendorId() + ":" + device.deviceId());
            entry.put("resourceName", device.resourceName());
            entry.put("externalResourceProvider", true);
            pci.add(entry);
            // harvester#10008: devices enabled in a short period end up listed twice
            if (sim.fault(Fault.DUPLICATE_PERMITTED)) pci.add(new java.util.LinkedHashMap<>(entry));
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
                .filter(cl -> cl.getMetadata().getDeletionTimestamp() == null) // OnRemove took it out of the plugin
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
