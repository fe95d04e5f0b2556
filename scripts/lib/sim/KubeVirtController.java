//SOURCES PciDevicesWebhook.java

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.Objects;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;

/**
 * KubeVirt's side of a VM, as kubevirt/kubevirt v1.5 does it, plus the pcidevices VM controller:
 * <ul>
 * <li>virt-api subresources PUT .../virtualmachines/{name}/restart|start|stop (pkg/virt-api/rest/subresource.go):
 *     the same checks and messages, 202 and VM status.stateChangeRequests;</li>
 * <li>virt-controller (pkg/virt-controller/watch/vm/vm.go): stateChangeRequests, runStrategy on a missing VMI
 *     (only Always recreates it), VMI phases Pending → Scheduling → Scheduled → Running with
 *     {@code options().vmiPhaseDelay}, the "not permitted in permittedHostDevices" FailedCreate, Unschedulable
 *     when node allocatable lacks the resource, QEMU's "group N is not viable" when an IOMMU sibling is not on
 *     vfio-pci, VM printableStatus (not the RestartRequired condition: writing it on every template edit would
 *     race the tests' own edits of the VM);</li>
 * <li>pcidevices (pkg/controller/virtualmachine): the harvesterhci.io/deviceAllocationDetails annotation when the VMI
 *     runs, and hostDevices[].name rewritten to the allocated device when it goes; a device the annotation still
 *     lists is the one a new VMI gets (harvester#10793);</li>
 * <li>virt-launcher's "PCI_RESOURCE_… not set for resource" failure for a per-device resource name with a "."
 *     (harvester#9399, #10517);</li>
 * <li>the pcidevices VM admission webhook ({@link PciDevicesWebhook}).</li>
 * </ul>
 */
public final class KubeVirtController implements AutoCloseable {
    private static final Map<SimCluster, KubeVirtController> BY_CLUSTER = Collections.synchronizedMap(new WeakHashMap<>());
    private static final Pattern SUBRESOURCE = Pattern.compile(
            "^/apis/subresources\\.kubevirt\\.io/v1/namespaces/([^/]+)/virtualmachines/([^/?]+)/(restart|start|stop)(\\?.*)?$");

    private final SimCluster sim;
    private final KubernetesClient admin;
    private final PciDevicesWebhook webhook;
    private final ScheduledExecutorService exec = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sim-kubevirt");
        t.setDaemon(true);
        return t;
    });
    /** VMI uid → when it entered its current phase. */
    private final Map<String, Instant> phaseSince = new ConcurrentHashMap<>();
    /** VM "ns/name" → uid of the VMI last seen, to notice deletions. */
    private final Map<String, String> lastVmi = new ConcurrentHashMap<>();
    /** uids of running VMIs whose allocation pcidevices has recorded (it acts on the VMI's Running event, once). */
    private final Set<String> allocationWritten = ConcurrentHashMap.newKeySet();
    /** Every VMI phase this controller wrote, in order (bench/ splits a restart's time with it). */
    private final List<PhaseWritten> phasesWritten = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final SimCluster.TickGate gate;
    /** Set by a tick that saw a VMI whose phase has not lasted vmiPhaseDelay yet. */
    private boolean timedStepPending;

    /** A VMI phase written to the store ("ns/name", its uid, the phase), timed when the write returned. */
    public record PhaseWritten(Instant at, String vmi, String uid, String phase) {}

    private KubeVirtController(SimCluster sim) {
        this.sim = sim;
        this.admin = sim.admin();
        this.webhook = new PciDevicesWebhook(sim);
        this.gate = sim.tickGate();
    }

    /** Registers the webhook and subresources and starts reconciling. */
    public static KubeVirtController start(SimCluster sim) {
        KubeVirtController c = new KubeVirtController(sim);
        BY_CLUSTER.put(sim, c);
        sim.addInterceptor(c.webhook);
        sim.addInterceptor(c::subresource);
        c.exec.scheduleWithFixedDelay(c::reconcileAll, 0, 50, TimeUnit.MILLISECONDS);
        return c;
    }

    /** The controller of a simulated cluster (for tests and the sandbox to tune). */
    public static KubeVirtController of(SimCluster sim) {
        return BY_CLUSTER.get(sim);
    }

    /** Fault WEBHOOK_RACE: how many client VM updates the webhook denies (default 2). */
    public KubeVirtController webhookRaceDenials(int n) {
        webhook.raceDenials = n;
        return this;
    }

    /** How many client VM updates the WEBHOOK_RACE fault has denied so far. */
    public int webhookRaceDenied() {
        return webhook.raceDenied.get();
    }

    /** The VMI phases written so far (Pending when an instance is created), oldest first. */
    public List<PhaseWritten> phasesWritten() {
        return List.copyOf(phasesWritten);
    }

    public void clearPhasesWritten() {
        phasesWritten.clear();
    }

    @Override
    public void close() {
        exec.shutdownNow();
        BY_CLUSTER.remove(sim);
    }

    // ---- virt-api subresources (server thread: read the store, never call a client) --------------------

    private MockResponse subresource(RecordedRequest req, String path) {
        Matcher m = SUBRESOURCE.matcher(path);
        if (!m.matches()) return null;
        if (!"PUT".equals(req.getMethod())) {
            return SimDispatcher.status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        }
        String ns = m.group(1);
        String name = m.group(2);
        String action = m.group(3);
        GenericKubernetesResource vm = sim.dispatcher().read(vmPath(ns, name));
        if (vm == null) return SimDispatcher.status(404, "NotFound", "virtualmachines.kubevirt.io \"" + name + "\" not found");
        GenericKubernetesResource vmi = sim.dispatcher().read(vmiPath(ns, name));
        String rs = KubeVirt.runStrategy(vm);
        String uid = vmi == null ? null : vmi.getMetadata().getUid();
        switch (action) {
            case "restart" -> {
                if (rs.equals("Halted") || rs.equals("Once")) return conflict(name, "RunStategy " + rs + " does not support manual restart requests");
                if (vmi == null) return conflict(name, "VM is not running: Halted");
                later(() -> requestStateChange(ns, name, List.of(stop(uid), start())));
            }
            case "start" -> {
                String phase = phase(vmi);
                if (vmi != null && !isFinal(phase) && !phase.equals("Unknown") && !phase.isEmpty()) return conflict(name, "VM is already running");
                switch (rs) {
                    case "Halted" -> later(() -> setRunStrategy(ns, name, "Always"));
                    case "RerunOnFailure", "Manual" -> {
                        if (rs.equals("RerunOnFailure") && "Failed".equals(phase)) {
                            return conflict(name, "RerunOnFailure does not support starting VM from failed state");
                        }
                        boolean needsRestart = vmi != null && (rs.equals("Manual") ? isFinal(phase) : "Succeeded".equals(phase));
                        later(() -> requestStateChange(ns, name, needsRestart ? List.of(stop(uid), start()) : List.of(start())));
                    }
                    default -> {
                        return conflict(name, rs + " does not support manual start requests");
                    }
                }
            }
            default -> { // stop
                if (vmi == null && !rs.equals("Always") && !rs.equals("Once")) return conflict(name, "VM is not running");
                if (rs.equals("Always") || rs.equals("Once")) later(() -> setRunStrategy(ns, name, "Halted"));
                else later(() -> requestStateChange(ns, name, List.of(stop(uid))));
            }
        }
        return new MockResponse().setResponseCode(202);
    }

    private static MockResponse conflict(String name, String why) {
        return SimDispatcher.status(409, "Conflict", "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"" + name + "\": " + why);
    }

    private static Map<String, Object> stop(String uid) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("action", "Stop");
        if (uid != null) m.put("uid", uid);
        return m;
    }

    private static Map<String, Object> start() {
        return Map.of("action", "Start");
    }

    private void later(Runnable r) {
        exec.execute(() -> {
            try {
                r.run();
            } catch (RuntimeException e) {
                e.printStackTrace();
            }
        });
    }

    // ---- virt-controller -----------------------------------------------------------------------------

    private void reconcileAll() {
        if (gate.skip()) return;
        Object before = sim.changeKey();
        List<Object> memory = memory();
        boolean failed = false;
        timedStepPending = false;
        try {
            for (GenericKubernetesResource vm : KubeVirt.vms(admin).inAnyNamespace().list().getItems()) {
                try {
                    reconcile(vm);
                } catch (KubernetesClientException e) {
                    // 409: a client changed the object meanwhile; the next tick sees the new version
                    failed = true;
                    if (e.getCode() != 409) throw e;
                }
            }
        } catch (RuntimeException e) {
            if (!exec.isShutdown()) e.printStackTrace();
        } finally {
            gate.ran(before, failed || !memory.equals(memory()), timedStepPending);
        }
    }

    /** What this controller remembers between ticks (a tick that changes it is followed by another). */
    private List<Object> memory() {
        return List.of(Map.copyOf(lastVmi), Map.copyOf(phaseSince), Set.copyOf(allocationWritten));
    }

    private void reconcile(GenericKubernetesResource vm) {
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        String key = ns + "/" + name;
        GenericKubernetesResource vmi = KubeVirt.vmis(admin).inNamespace(ns).withName(name).get();
        String seen = lastVmi.get(key);
        if (seen != null && (vmi == null || !seen.equals(vmi.getMetadata().getUid()))) {
            lastVmi.remove(key);
            phaseSince.remove(seen);
            renameToAllocated(ns, name);
            return;
        }
        if (vmi != null) lastVmi.put(key, vmi.getMetadata().getUid());

        List<Map<String, Object>> requests = stateChangeRequests(vm);
        if (!requests.isEmpty()) {
            Map<String, Object> first = requests.get(0);
            if ("Stop".equals(first.get("action"))) {
                if (vmi != null && (first.get("uid") == null || first.get("uid").equals(vmi.getMetadata().getUid()))) {
                    KubeVirt.vmis(admin).inNamespace(ns).withName(name).delete();
                    vmStatus(ns, name, s -> s.put("printableStatus", "Stopping"));
                    return; // the deletion is seen next tick
                }
            } else if (vmi == null) {
                createVmi(vm);
            } else {
                return; // Start waits until the old instance is gone
            }
            vmStatus(ns, name, s -> {
                List<Map<String, Object>> rest = new ArrayList<>(requests.subList(1, requests.size()));
                if (rest.isEmpty()) s.remove("stateChangeRequests");
                else s.put("stateChangeRequests", rest);
            });
            return;
        }
        String rs = KubeVirt.runStrategy(vm);
        if (vmi == null) {
            if (rs.equals("Always")) {
                createVmi(vm);
                return;
            }
            vmStatus(ns, name, s -> {
                s.put("printableStatus", "Stopped");
                s.put("ready", false);
                s.put("created", false);
                s.put("runStrategy", rs);
            });
            return;
        }
        if (rs.equals("Halted") && !isFinal(phase(vmi))) {
            KubeVirt.vmis(admin).inNamespace(ns).withName(name).delete(); // Halted: the instance is stopped
            vmStatus(ns, name, s -> s.put("printableStatus", "Stopping"));
            return;
        }
        advance(vm, vmi);
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> stateChangeRequests(GenericKubernetesResource vm) {
        Object l = vm.get("status", "stateChangeRequests");
        return l instanceof List<?> list ? (List<Map<String, Object>>) list : List.of();
    }

    /** The subresource's JSON patch of status.stateChangeRequests (refused while a change is underway). */
    private void requestStateChange(String ns, String name, List<Map<String, Object>> changes) {
        vmStatus(ns, name, s -> {
            Object existing = s.get("stateChangeRequests");
            if (existing instanceof List<?> l && !l.isEmpty()) return; // "unable to complete request: stop/start already underway"
            s.put("stateChangeRequests", changes);
        });
    }

    private void setRunStrategy(String ns, String name, String rs) {
        KubeVirt.vms(admin).inNamespace(ns).withName(name).edit(vm -> {
            @SuppressWarnings("unchecked")
            Map<String, Object> spec = (Map<String, Object>) vm.getAdditionalProperties().get("spec");
            if (spec.containsKey("running")) spec.put("running", rs.equals("Always"));
            else spec.put("runStrategy", rs);
            return vm;
        });
    }

    @SuppressWarnings("unchecked")
    private void createVmi(GenericKubernetesResource vm) {
        GenericKubernetesResource vmi = new GenericKubernetesResource();
        vmi.setApiVersion("kubevirt.io/v1");
        vmi.setKind("VirtualMachineInstance");
        vmi.setMetadata(new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
                .withName(vm.getMetadata().getName()).withNamespace(vm.getMetadata().getNamespace())
                .withLabels((Map<String, String>) vm.get("spec", "template", "metadata", "labels"))
                .withOwnerReferences(new OwnerReferenceBuilder().withApiVersion("kubevirt.io/v1").withKind("VirtualMachine")
                        .withName(vm.getMetadata().getName()).withUid(vm.getMetadata().getUid())
                        .withController(true).withBlockOwnerDeletion(true).build())
                .build());
        Object template = vm.get("spec", "template", "spec");
        vmi.setAdditionalProperty("spec", Serialization.clone(template == null ? new LinkedHashMap<>() : (Map<String, Object>) template));
        vmi.setAdditionalProperty("status", new LinkedHashMap<>(Map.of("phase", "Pending")));
        GenericKubernetesResource created = KubeVirt.vmis(admin).inNamespace(vm.getMetadata().getNamespace()).resource(vmi).create();
        phaseWritten(created, "Pending");
        phaseSince.put(created.getMetadata().getUid(), Instant.now());
        lastVmi.put(vm.getMetadata().getNamespace() + "/" + vm.getMetadata().getName(), created.getMetadata().getUid());
        vmStatus(vm.getMetadata().getNamespace(), vm.getMetadata().getName(), s -> {
            s.put("created", true);
            s.put("ready", false);
            s.put("printableStatus", "Starting");
        });
    }

    /** One step of the VMI's life, when its phase has lasted vmiPhaseDelay. */
    private void advance(GenericKubernetesResource vm, GenericKubernetesResource vmi) {
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        String uid = vmi.getMetadata().getUid();
        String phase = phase(vmi);
        boolean due = !Instant.now().isBefore(phaseSince.computeIfAbsent(uid, k -> Instant.now()).plus(sim.options().vmiPhaseDelay));
        if (!due) timedStepPending = true;
        switch (phase) {
            case "", "Pending" -> {
                String notPermitted = notPermitted(vmi);
                if (notPermitted != null) {
                    // renderresources.go → template.go "failed to render launch manifest: %v" → reason FailedCreate
                    vmiStatus(vmi, s -> putCondition(s, "Synchronized", condition("Synchronized", "False",
                            "FailedCreate", "failed to render launch manifest: " + notPermitted)));
                    return;
                }
                if (due) setPhase(vmi, "Scheduling", s -> putCondition(s, "Synchronized", null));
            }
            case "Scheduling" -> {
                List<Node> nodes = admin.nodes().list().getItems();
                String pinned = nodeSelector(vmi);
                List<String> resources = resources(vmi);
                Node fit = nodes.stream().filter(n -> pinned == null || pinned.equals(n.getMetadata().getName()))
                        .filter(n -> resources.stream().allMatch(r -> allocatable(n, r))).findFirst().orElse(null);
                if (fit == null) {
                    String message = unschedulable(nodes, pinned, resources);
                    vmiStatus(vmi, s -> putCondition(s, "PodScheduled",
                            condition("PodScheduled", "False", "Unschedulable", message)));
                    vmStatus(ns, name, s -> s.put("printableStatus", "ErrorUnschedulable"));
                    return;
                }
                if (due) setPhase(vmi, "Scheduled", s -> {
                    s.put("nodeName", fit.getMetadata().getName());
                    putCondition(s, "PodScheduled", null);
                });
            }
            case "Scheduled" -> {
                if (!due) return;
                String viable = notViable(vmi);
                String notViable = viable != null ? viable : pciResourceNotSet(vmi);
                if (notViable != null) {
                    setPhase(vmi, "Failed", s -> putCondition(s, "Synchronized", condition("Synchronized", "False",
                            "Synchronizing with the Domain failed.", notViable)));
                    // The sim does not re-run failed instances (KubeVirt would, with a start-failure backoff).
                    vmStatus(ns, name, s -> {
                        s.put("printableStatus", "CrashLoopBackOff");
                        s.put("ready", false);
                    });
                    return;
                }
                setPhase(vmi, "Running", s -> {
                    s.put("interfaces", List.of(Map.of("name", "default", "ipAddress", "127.0.0.1",
                            "ipAddresses", List.of("127.0.0.1"), "interfaceName", "eth0")));
                    List<Map<String, Object>> conds = new ArrayList<>();
                    conds.add(condition("Ready", "True", null, null));
                    if (!resources(vmi).isEmpty()) {
                        conds.add(condition("LiveMigratable", "False", "HostDeviceNotLiveMigratable",
                                "VMI uses a host device that is not live migratable"));
                    }
                    s.put("conditions", conds);
                });
                vmStatus(ns, name, s -> {
                    s.put("printableStatus", "Running");
                    s.put("ready", true);
                });
            }
            case "Running" -> {
                // Written once per running VMI, like pcidevices' VMI handler: a later edit of the
                // annotation (or of the spec) is not corrected, which is how stale annotations arise (#7398).
                if (!sim.fault(Fault.CONTROLLER_DOWN) && !sim.fault(Fault.ADDON_DISABLED) && !allocationWritten.contains(vmi.getMetadata().getUid())) {
                    writeAllocation(vm, vmi);
                    allocationWritten.add(vmi.getMetadata().getUid());
                }
                vmStatus(ns, name, s -> {
                    s.put("printableStatus", "Running");
                    s.put("ready", true);
                });
            }
            default -> { }
        }
    }

    private void setPhase(GenericKubernetesResource vmi, String phase, java.util.function.Consumer<Map<String, Object>> more) {
        boolean written = vmiStatus(vmi, s -> {
            s.put("phase", phase);
            more.accept(s);
        });
        if (written) phaseWritten(vmi, phase);
        phaseSince.put(vmi.getMetadata().getUid(), Instant.now());
        if ("Scheduled".equals(phase) || "Running".equals(phase)) {
            GenericKubernetesResource fresh = KubeVirt.vmis(admin).inNamespace(vmi.getMetadata().getNamespace())
                    .withName(vmi.getMetadata().getName()).get();
            if (fresh != null && fresh.get("status", "nodeName") != null) {
                String node = fresh.get("status", "nodeName").toString();
                if (!node.equals(fresh.getMetadata().getLabels() == null ? null : fresh.getMetadata().getLabels().get("kubevirt.io/nodeName"))) {
                    KubeVirt.vmis(admin).inNamespace(fresh.getMetadata().getNamespace()).withName(fresh.getMetadata().getName())
                            .edit(r -> {
                                Map<String, String> labels = r.getMetadata().getLabels() == null ? new LinkedHashMap<>()
                                        : new LinkedHashMap<>(r.getMetadata().getLabels());
                                labels.put("kubevirt.io/nodeName", node);
                                r.getMetadata().setLabels(labels);
                                return r;
                            });
                }
            }
        }
    }

    /** renderresources.go: every host device / GPU resource must be in permittedHostDevices (when that is set). */
    private String notPermitted(GenericKubernetesResource vmi) {
        GenericKubernetesResource kv = KubeVirt.kubevirts(admin).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME).get();
        Object phd = kv == null ? null : kv.get("spec", "configuration", "permittedHostDevices");
        if (!(phd instanceof Map<?, ?> permitted)) return null;
        List<String> allowed = new ArrayList<>();
        for (String kind : List.of("pciHostDevices", "mediatedDevices", "usb")) {
            if (permitted.get(kind) instanceof List<?> l) {
                for (Object o : l) if (o instanceof Map<?, ?> m && m.get("resourceName") != null) allowed.add(m.get("resourceName").toString());
            }
        }
        List<String> errors = new ArrayList<>();
        for (String res : deviceNames(vmi, "gpus")) {
            if (!allowed.contains(res)) errors.add("GPU " + res + " is not permitted in permittedHostDevices configuration");
        }
        for (String res : deviceNames(vmi, "hostDevices")) {
            if (!allowed.contains(res)) errors.add("HostDevice " + res + " is not permitted in permittedHostDevices configuration");
        }
        return errors.isEmpty() ? null : String.join(" ", errors);
    }

    /** kube-scheduler's FitError text for a launcher pod requesting the devices. */
    private static String unschedulable(List<Node> nodes, String pinned, List<String> resources) {
        Map<String, Integer> reasons = new java.util.TreeMap<>(); // the scheduler sorts its reason histogram
        for (Node n : nodes) {
            if (pinned != null && !pinned.equals(n.getMetadata().getName())) {
                reasons.merge("node(s) didn't match Pod's node affinity/selector", 1, Integer::sum);
                continue;
            }
            for (String r : resources) {
                if (!allocatable(n, r)) reasons.merge("Insufficient " + r, 1, Integer::sum);
            }
        }
        List<String> parts = new ArrayList<>();
        reasons.forEach((why, count) -> parts.add(count + " " + why));
        return "0/" + nodes.size() + " nodes are available: " + String.join(", ", parts) + ". preemption: 0/" + nodes.size()
                + " nodes are available: " + nodes.size() + " Preemption is not helpful for scheduling.";
    }

    private static boolean allocatable(Node n, String resource) {
        if (n.getStatus() == null || n.getStatus().getAllocatable() == null) return false;
        Quantity q = n.getStatus().getAllocatable().get(resource);
        return q != null && Quantity.getAmountInBytes(q).signum() > 0;
    }

    /** QEMU hw/vfio: every device in a passed-through device's IOMMU group must be on vfio-pci. */
    private String notViable(GenericKubernetesResource vmi) {
        String node = String.valueOf((Object) vmi.get("status", "nodeName"));
        List<Harvester.PciDevice> onNode = Harvester.pciDevices(admin).withLabel("nodename", node).list().getItems().stream()
                .map(Harvester.PciDevice::of).filter(d -> node.equals(d.node())).toList();
        for (Harvester.PciDevice d : allocate(onNode, vmi, node)) {
            for (Harvester.PciDevice sibling : onNode) {
                if (Objects.equals(sibling.iommuGroup(), d.iommuGroup()) && !Harvester.DRIVER_VFIO.equals(sibling.driver())) {
                    return "server error. command SyncVMI failed: \"LibvirtError(Code=1, Domain=10, Message='internal error: "
                            + "qemu unexpectedly closed the monitor: vfio " + d.address() + ": group " + d.iommuGroup()
                            + " is not viable\nPlease ensure all devices within the iommu_group are bound to their vfio bus driver.')\"";
                }
            }
        }
        return null;
    }

    /**
     * The PCIDevices the VMI really gets for its host devices: a device the VM's
     * harvesterhci.io/deviceAllocationDetails still lists for that resource (on vfio-pci, on this
     * node) first — harvester#10793: a stale mapping is applied at the next start, whatever
     * hostDevices[].name says — else the named one, else the first free.
     */
    private List<Harvester.PciDevice> allocate(List<Harvester.PciDevice> onNode, GenericKubernetesResource vmi, String node) {
        GenericKubernetesResource vm = KubeVirt.vms(admin).inNamespace(vmi.getMetadata().getNamespace()).withName(vmi.getMetadata().getName()).get();
        Map<String, List<String>> annotated = vm == null ? Map.of() : KubeVirt.allocatedDevices(vm);
        List<Harvester.PciDevice> out = new ArrayList<>();
        for (Map<String, Object> hd : entries(vmi, "spec")) {
            String res = String.valueOf((Object) hd.get("deviceName"));
            List<String> stale = annotated.getOrDefault(res, List.of());
            Harvester.PciDevice pick = onNode.stream().filter(d -> stale.contains(d.name()) && res.equals(d.resourceName())
                            && Harvester.DRIVER_VFIO.equals(d.driver()) && !out.contains(d)).findFirst()
                    .or(() -> onNode.stream().filter(d -> d.name().equals(hd.get("name")) && res.equals(d.resourceName()) && !out.contains(d)).findFirst())
                    .orElseGet(() -> onNode.stream().filter(d -> res.equals(d.resourceName()) && !out.contains(d))
                            .findFirst().orElse(null));
            if (pick != null) out.add(pick);
        }
        return out;
    }

    /**
     * harvester#9399/#10517: a resource name whose device part holds a "." (pooling off on a node
     * whose hostname has dots) leaves virt-launcher without its PCI_RESOURCE_* variable. The launcher
     * logs "<ENV> not set for resource <res>" (addresspool.go) and fails in hostdev.go ("failed to
     * create PCI device for <name>: ..."); the sim joins the two upstream strings in one message.
     */
    private static String pciResourceNotSet(GenericKubernetesResource vmi) {
        for (Map<String, Object> hd : entries(vmi, "spec")) {
            String res = String.valueOf((Object) hd.get("deviceName"));
            int slash = res.indexOf('/');
            if (slash < 0 || !res.substring(slash + 1).contains(".")) continue;
            String env = "PCI_RESOURCE_" + res.toUpperCase(java.util.Locale.ROOT).replace('/', '_').replace('.', '_');
            return "server error. command SyncVMI failed: \"failed to create PCI device for " + hd.get("name") + ": "
                    + env + " not set for resource " + res + "\"";
        }
        return null;
    }

    /** pcidevices' VM controller: the annotation listing what the running VMI really got. */
    private void writeAllocation(GenericKubernetesResource vm, GenericKubernetesResource vmi) {
        String node = String.valueOf((Object) vmi.get("status", "nodeName"));
        List<Harvester.PciDevice> onNode = Harvester.pciDevices(admin).withLabel("nodename", node).list().getItems().stream()
                .map(Harvester.PciDevice::of).filter(d -> node.equals(d.node())).toList();
        Map<String, List<String>> byResource = new LinkedHashMap<>();
        for (Harvester.PciDevice d : allocate(onNode, vmi, node)) {
            byResource.computeIfAbsent(d.resourceName(), k -> new ArrayList<>()).add(d.name());
        }
        for (GenericKubernetesResource usb : admin.genericKubernetesResources(SimCluster.USB_DEVICES).list().getItems()) {
            Object res = usb.get("status", "resourceName");
            if (node.equals(String.valueOf((Object) usb.get("status", "nodeName"))) && deviceNames(vmi, "hostDevices").contains(String.valueOf(res))) {
                byResource.computeIfAbsent(res.toString(), k -> new ArrayList<>()).add(usb.getMetadata().getName());
            }
        }
        String json = Serialization.asJson(Map.of("hostdevices", byResource));
        Map<String, String> ann = vm.getMetadata().getAnnotations();
        if (ann != null && json.equals(ann.get(Harvester.ALLOCATION_ANNOTATION))) return;
        KubeVirt.vms(admin).inNamespace(vm.getMetadata().getNamespace()).withName(vm.getMetadata().getName()).edit(r -> {
            Map<String, String> a = r.getMetadata().getAnnotations() == null ? new LinkedHashMap<>() : new LinkedHashMap<>(r.getMetadata().getAnnotations());
            a.put(Harvester.ALLOCATION_ANNOTATION, json);
            r.getMetadata().setAnnotations(a);
            return r;
        });
    }

    /** pcidevices on VMI deletion: hostDevices[i].name becomes the PCIDevice actually allocated (popped per deviceName). */
    @SuppressWarnings("unchecked")
    private void renameToAllocated(String ns, String name) {
        if (sim.fault(Fault.CONTROLLER_DOWN) || sim.fault(Fault.ADDON_DISABLED)) return;
        GenericKubernetesResource vm = KubeVirt.vms(admin).inNamespace(ns).withName(name).get();
        if (vm == null) return;
        Map<String, List<String>> allocated = new LinkedHashMap<>();
        KubeVirt.allocatedDevices(vm).forEach((k, v) -> allocated.put(k, new ArrayList<>(v)));
        List<Map<String, Object>> entries = entries(vm, "spec", "template", "spec");
        boolean changed = false;
        for (Map<String, Object> e : entries) {
            List<String> names = allocated.get(String.valueOf((Object) e.get("deviceName")));
            if (names == null || names.isEmpty()) continue;
            String real = names.remove(0);
            if (!real.equals(e.get("name"))) {
                e.put("name", real);
                changed = true;
            }
        }
        if (!changed) return;
        KubeVirt.vms(admin).inNamespace(ns).withName(name).edit(r -> {
            Map<String, Object> devices = (Map<String, Object>) r.get("spec", "template", "spec", "domain", "devices");
            devices.put("hostDevices", entries);
            return r;
        });
    }

    // ---- helpers ------------------------------------------------------------------------------------

    private static String vmPath(String ns, String name) {
        return "/apis/kubevirt.io/v1/namespaces/" + ns + "/virtualmachines/" + name;
    }

    private static String vmiPath(String ns, String name) {
        return "/apis/kubevirt.io/v1/namespaces/" + ns + "/virtualmachineinstances/" + name;
    }

    static String phase(GenericKubernetesResource vmi) {
        Object p = vmi == null ? null : vmi.get("status", "phase");
        return p == null ? "" : p.toString();
    }

    private static boolean isFinal(String phase) {
        return "Succeeded".equals(phase) || "Failed".equals(phase);
    }

    private static String nodeSelector(GenericKubernetesResource vmi) {
        Object n = vmi.get("spec", "nodeSelector", "kubernetes.io/hostname");
        return n == null ? null : n.toString();
    }

    /** hostDevices entries (as maps) under the given path prefix + domain.devices. */
    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> entries(GenericKubernetesResource r, Object... specPath) {
        Object[] path = new Object[specPath.length + 3];
        System.arraycopy(specPath, 0, path, 0, specPath.length);
        path[specPath.length] = "domain";
        path[specPath.length + 1] = "devices";
        path[specPath.length + 2] = "hostDevices";
        Object l = r.get(path);
        List<Map<String, Object>> out = new ArrayList<>();
        if (l instanceof List<?> list) for (Object o : list) if (o instanceof Map<?, ?> m) out.add(new LinkedHashMap<>((Map<String, Object>) m));
        return out;
    }

    private static List<String> deviceNames(GenericKubernetesResource vmi, String field) {
        Object l = vmi.get("spec", "domain", "devices", field);
        List<String> out = new ArrayList<>();
        if (l instanceof List<?> list) for (Object o : list) if (o instanceof Map<?, ?> m) out.add(String.valueOf((Object) m.get("deviceName")));
        return out;
    }

    private static List<String> resources(GenericKubernetesResource vmi) {
        List<String> out = new ArrayList<>(deviceNames(vmi, "hostDevices"));
        out.addAll(deviceNames(vmi, "gpus"));
        return out;
    }

    private static Map<String, Object> condition(String type, String status, String reason, String message) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("type", type);
        c.put("status", status);
        if (reason != null) c.put("reason", reason);
        if (message != null) c.put("message", message);
        return c;
    }

    /** Replaces condition `type` in the status by `c` (removes it when c is null). */
    @SuppressWarnings("unchecked")
    private static void putCondition(Map<String, Object> status, String type, Map<String, Object> c) {
        List<Map<String, Object>> out = new ArrayList<>();
        if (status.get("conditions") instanceof List<?> l) {
            for (Object o : l) if (o instanceof Map<?, ?> m && !type.equals(m.get("type"))) out.add((Map<String, Object>) m);
        }
        if (c != null) out.add(c);
        if (out.isEmpty()) status.remove("conditions");
        else status.put("conditions", out);
    }

    /** Edits a VM's status; writes only when it changed (every write bumps resourceVersion). */
    @SuppressWarnings("unchecked")
    private void vmStatus(String ns, String name, java.util.function.Consumer<Map<String, Object>> change) {
        GenericKubernetesResource vm = KubeVirt.vms(admin).inNamespace(ns).withName(name).get();
        if (vm == null) return;
        Map<String, Object> before = (Map<String, Object>) vm.getAdditionalProperties().getOrDefault("status", new LinkedHashMap<>());
        Map<String, Object> after = Serialization.clone(new LinkedHashMap<>(before));
        change.accept(after);
        if (Serialization.asJson(after).equals(Serialization.asJson(before))) return;
        vm.setAdditionalProperty("status", after);
        KubeVirt.vms(admin).inNamespace(ns).resource(vm).updateStatus();
    }

    private void phaseWritten(GenericKubernetesResource vmi, String phase) {
        phasesWritten.add(new PhaseWritten(Instant.now(), vmi.getMetadata().getNamespace() + "/" + vmi.getMetadata().getName(),
                vmi.getMetadata().getUid(), phase));
    }

    /** Edits a VMI's status (VMIs have no status subresource: a plain update); true when it wrote. */
    @SuppressWarnings("unchecked")
    private boolean vmiStatus(GenericKubernetesResource vmi, java.util.function.Consumer<Map<String, Object>> change) {
        GenericKubernetesResource fresh = KubeVirt.vmis(admin).inNamespace(vmi.getMetadata().getNamespace())
                .withName(vmi.getMetadata().getName()).get();
        if (fresh == null || !fresh.getMetadata().getUid().equals(vmi.getMetadata().getUid())) return false;
        Map<String, Object> before = (Map<String, Object>) fresh.getAdditionalProperties().getOrDefault("status", new LinkedHashMap<>());
        Map<String, Object> after = Serialization.clone(new LinkedHashMap<>(before));
        change.accept(after);
        if (Serialization.asJson(after).equals(Serialization.asJson(before))) return false;
        fresh.setAdditionalProperty("status", after);
        KubeVirt.vmis(admin).inNamespace(fresh.getMetadata().getNamespace()).resource(fresh).update();
        return true;
    }
}
