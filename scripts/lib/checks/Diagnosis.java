//SOURCES ../model/Passthrough.java

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Quantity;

/**
 * What `diagnose` reports: findings (check, status, subject, evidence, fix), the catalogue of
 * known error messages (VM_MESSAGES below; the simulator produces each, scripts/lib/sim/Fault.java)
 * and the device checks, which are
 * Passthrough's definition of "ready" plus what only a diagnosis needs.
 */
public final class Diagnosis {
    private Diagnosis() {}

    public enum Status { PASS, WARN, FAIL }

    /** A remediation --fix may perform itself; {@code command} is exactly what is printed as the fix. */
    /**
     * A fix diagnose --fix can perform itself: the command to show, and what it acts on (typed, so
     * --fix calls the library step directly). subject: the pod (RESTART_CONTROLLER), the device
     * (CLAIM), the VM (ATTACH, with device and namespace).
     */
    public record Remedy(Kind kind, String command, String subject, String device, String namespace) {
        public enum Kind { RESTART_CONTROLLER, CLAIM, ATTACH }
    }

    public record Finding(String check, Status status, String subject, String evidence, String fix, Remedy remedy) {
        public static Finding pass(String check, String subject, String evidence) {
            return new Finding(check, Status.PASS, subject, evidence, "", null);
        }

        public static Finding warn(String check, String subject, String evidence, String fix) {
            return new Finding(check, Status.WARN, subject, evidence, fix, null);
        }

        public static Finding fail(String check, String subject, String evidence, String fix) {
            return new Finding(check, Status.FAIL, subject, evidence, fix, null);
        }

        /** The same finding, fixed by a remedy --fix can run (its command becomes the fix). */
        public Finding with(Remedy r) {
            return new Finding(check, status, subject, evidence, r.command(), r);
        }

        /** The JSON/YAML shape: {check, status, subject, evidence, fix}. */
        public Map<String, Object> asMap() {
            Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("check", check);
            m.put("status", status.name());
            m.put("subject", subject);
            m.put("evidence", evidence);
            m.put("fix", fix == null ? "" : fix);
            return m;
        }
    }

    public static Remedy restartController(String pod) {
        return new Remedy(Remedy.Kind.RESTART_CONTROLLER,
                "kubectl -n " + Harvester.CONTROLLER_NAMESPACE + " delete pod " + pod, pod, null, null);
    }

    public static Remedy claim(String device) {
        return new Remedy(Remedy.Kind.CLAIM, "claim " + device, device, device, null);
    }

    public static Remedy attach(String namespace, String vm, String device) {
        return new Remedy(Remedy.Kind.ATTACH, "attach " + vm + " --device " + device + " -n " + namespace,
                vm, device, namespace);
    }

    /** The worst status of the findings (PASS when there are none). */
    public static Status worst(List<Finding> findings) {
        Status w = Status.PASS;
        for (Finding f : findings) if (f.status().compareTo(w) > 0) w = f.status();
        return w;
    }

    public static Cli.Exit exitFor(Status worst) {
        return switch (worst) {
            case PASS -> Cli.Exit.OK;
            case WARN -> Cli.Exit.DIAGNOSE_WARN;
            case FAIL -> Cli.Exit.DIAGNOSE_FAIL;
        };
    }

    // ---- messages we recognise, wherever they show up (agent log, VMI conditions, VM conditions, events) ----

    /** A known message: the check it names, and what it means. */
    public record Known(String check, Pattern pattern, String meaning) {
        public Matcher match(String text) {
            Matcher m = pattern.matcher(text);
            return m.find() ? m : null;
        }
    }

    /** harvester-pcidevices-controller `agent` log lines (pcideviceclaim_controller.go, iommu.go, lasso). */
    public static final List<Known> AGENT_LOG = List.of(
            new Known("claim-owner", Pattern.compile("Cannot find PCIDevice that owns (\\S+)"),
                    "the claim has no ownerReference to its PCIDevice, so the controller never processes it"),
            new Known("iommu-group-mismatch", Pattern.compile("group mismatch: sys (\\S+) pd (\\S+)"),
                    "the IOMMU groups changed since the devices were scanned (kernel regrouping after an upgrade)"),
            new Known("iommu-missing", Pattern.compile("missing group for address:? ?(\\S*)"),
                    "the device has no IOMMU group: IOMMU/SMMU is off in firmware or on the kernel command line"),
            new Known("driver-still-bound", Pattern.compile("device still bound to driver"),
                    "the host driver did not release the device (the controller retries)"),
            new Known("vfio-bind", Pattern.compile("no device (\\S+) found at /sys/bus/pci/drivers/vfio-pci"),
                    "binding to vfio-pci failed: the host driver holds the device"),
            new Known("vfio-bind", Pattern.compile("vfio-pci/bind: invalid argument"),
                    "binding to vfio-pci failed: the host driver holds the device"),
            new Known("vfio-bind", Pattern.compile("(?i)device or resource busy"),
                    "the device is busy: the host driver holds it"),
            new Known("kubevirt-cr-update", Pattern.compile("error updating kubevirt CR:? ?(.*)"),
                    "the controller could not add the device to the KubeVirt CR's permittedHostDevices"),
            new Known("claim-sync-error", Pattern.compile("error syncing '([^']+)': (.*)"),
                    "a controller handler keeps failing on this object and requeues it"));

    /** Messages in VMI/VM conditions and events (kubevirt, QEMU, pcidevices webhook, kube-scheduler). */
    public static final List<Known> VM_MESSAGES = List.of(
            new Known("not-permitted", Pattern.compile("(HostDevice|GPU) (\\S+) is not permitted in permittedHostDevices configuration"),
                    "KubeVirt refuses to render the launcher pod: the resource is not in the KubeVirt CR's permittedHostDevices"),
            new Known("webhook-gpu-field", Pattern.compile("gpu device (\\S+): resource name (\\S+) not found in pcidevice cache"),
                    "the device is under domain.devices.gpus: pcidevices v1.5-1.7 look gpus up in the vGPU cache, so a passthrough GPU is never found (not a cache race)"),
            new Known("webhook-cache", Pattern.compile("hostdevice (\\S+): resource name (\\S+) not found in pcidevice and usbdevice cache"),
                    "no PCIDevice/USBDevice has that resource name (typo, stale name) or the controller pod just restarted"),
            new Known("webhook-same-node", Pattern.compile("device (\\S+) is not on the same node"),
                    "the VM's host devices are on different nodes"),
            new Known("insufficient-resource", Pattern.compile("Insufficient (\\S+)"),
                    "no node advertises a free device: the device plugin is not registered, or another VM holds the device"),
            new Known("group-not-viable", Pattern.compile("group (\\d+) is not viable"),
                    "QEMU refuses the IOMMU group: another function of the group is not on vfio-pci"),
            new Known("vfio-busy", Pattern.compile("failed to open /dev/vfio/(\\d+): Device or resource busy"),
                    "another VM (or the host) has the device open"),
            new Known("vfio-missing", Pattern.compile("lstat /dev/vfio/(\\d+): no such file or directory"),
                    "the vfio binding is stale (device reassigned, node rebooted or upgraded)"),
            new Known("dma-no-memory", Pattern.compile("VFIO_MAP_DMA failed: Cannot allocate memory"),
                    "the node cannot pin the guest memory for DMA"),
            new Known("hotplug-volume", Pattern.compile("pci backend driver type 'default' is not supported|host doesn't support passthrough of host PCI devices"),
                    "KubeVirt 1.7 bug: a hot-pluggable volume breaks host-device passthrough (harvester#10029)"),
            new Known("dotted-name", Pattern.compile("(PCI_RESOURCE_\\S+) not set for resource (\\S+)"),
                    "a node hostname or hostDevices name contains \".\" (harvester#9399)"),
            new Known("stale-allocation", Pattern.compile("pcideviceclaim (\\S+) is already in use with vm (\\S+)"),
                    "the VM's harvesterhci.io/deviceAllocationDetails annotation still lists the device"));

    /** The first known message in text, or null. */
    public static Map.Entry<Known, Matcher> recognise(List<Known> catalogue, String text) {
        if (text == null) return null;
        for (Known k : catalogue) {
            Matcher m = k.match(text);
            if (m != null) return Map.entry(k, m);
        }
        return null;
    }

    // ---- the device: Passthrough's checks, with diagnose's fixes, plus what only a diagnosis needs ----

    /**
     * Findings for one device and its IOMMU group. {@code controllerPod} is the controller pod on the
     * device's node (null if none): restarting it is the fix for a claim the controller did not finish.
     */
    public static List<Finding> device(Passthrough.State s, String controllerPod, List<GenericKubernetesResource> usbDevices) {
        List<Finding> out = new ArrayList<>();
        Harvester.PciDevice d = s.device();
        if (d.iommuGroup() == null || d.iommuGroup().isBlank()) {
            out.add(Finding.fail("pcidevice", d.name(), "PCIDevice " + d.name() + " on node " + d.node()
                            + " has no status.iommuGroup (webhook: \"pcidevice " + d.name() + " has no iommuGroup available\")",
                    "enable IOMMU/SMMU in node " + d.node() + "'s firmware and kernel command line, reboot it, then: inventory --node " + d.node()));
        } else {
            out.add(Finding.pass("pcidevice", d.name(), "PCIDevice on node " + d.node() + " at " + d.address() + " ["
                    + d.vendorDevice() + "], IOMMU group " + d.iommuGroup() + ": " + s.group().stream().map(Harvester.PciDevice::name).toList()));
        }
        for (Passthrough.Check c : s.checks()) {
            if (c.ok()) {
                out.add(Finding.pass(c.id(), c.subject(), c.evidence()));
                continue;
            }
            Finding f = Finding.fail(c.id(), c.subject(), c.evidence(), c.fix());
            switch (c.id()) {
                case Passthrough.CLAIMED -> f = f.with(claim(d.name()));
                case Passthrough.PERMITTED, Passthrough.ALLOCATABLE -> {
                    // Both follow from the claim: without one there is nothing for the controller to do.
                    if (!s.claims().containsKey(d.name())) {
                        f = new Finding(c.id(), Status.FAIL, c.subject(), c.evidence() + " (" + d.name() + " is not claimed)", null, null).with(claim(d.name()));
                        break;
                    }
                    f = restartOrLook(c, controllerPod, c.id().equals(Passthrough.PERMITTED)
                            ? " (the controller re-adds permittedHostDevices when it reconciles the claim)" : capacity(s.node(), d));
                }
                case Passthrough.PASSTHROUGH_ENABLED, Passthrough.VFIO_DRIVER ->
                        f = restartOrLook(c, controllerPod, " (the controller did not finish the claim; see controller-log)");
                default -> { }
            }
            out.add(f);
        }
        out.addAll(selector(s));
        for (Harvester.PciDevice m : s.group()) {
            Harvester.PciDeviceClaim c = s.claims().get(m.name());
            if (c == null) {
                usbOnController(m, usbDevices).ifPresent(out::add);
                continue;
            }
            if (c.address() != null && !c.address().equals(m.address())) {
                out.add(Finding.fail("claim-address", m.name(), "claim spec.address=" + c.address() + " but PCIDevice status.address="
                        + m.address() + " (addresses shifted after a hardware change or upgrade)",
                        "kubectl delete pcideviceclaim " + m.name() + " && claim " + m.name()));
            }
            if (!"admin".equals(c.userName())) {
                out.add(Finding.warn("claim-user", m.name(), "claim spec.userName=" + (c.userName() == null ? "<none>" : c.userName())
                                + ": the Harvester UI cannot disable or attach a device claimed by another user",
                        "kubectl patch pcideviceclaim " + m.name() + " --type merge -p '{\"spec\":{\"userName\":\"admin\"}}'"));
            }
        }
        return out;
    }

    /** Restarting the controller pod re-reconciles every claim of its node; without a pod, look for one. */
    private static Finding restartOrLook(Passthrough.Check c, String controllerPod, String why) {
        return controllerPod != null
                ? new Finding(c.id(), Status.FAIL, c.subject(), c.evidence() + why, null, null).with(restartController(controllerPod))
                : Finding.fail(c.id(), c.subject(), c.evidence() + why,
                        "kubectl -n " + Harvester.CONTROLLER_NAMESPACE + " get pods -l " + Harvester.CONTROLLER_POD_SELECTOR + " -o wide");
    }

    /** Capacity tells why allocatable is missing: absent = no plugin registered, present = the device is unhealthy in it. */
    private static String capacity(Node node, Harvester.PciDevice d) {
        Quantity cap = node == null || node.getStatus() == null || node.getStatus().getCapacity() == null
                ? null : node.getStatus().getCapacity().get(d.resourceName());
        return ", capacity[" + d.resourceName() + "]=" + (cap == null ? "<absent>" : cap.toString())
                + (cap == null ? " (no device plugin serves it on " + d.node() + ": kubelet restarted, or the plugin never started)"
                        : " (the device plugin marks it unhealthy: /dev/vfio/" + d.iommuGroup() + " missing)");
    }

    /** The CR entry's pciVendorSelector must be the device's vendor:device, with an external provider. */
    private static List<Finding> selector(Passthrough.State s) {
        Harvester.PciDevice d = s.device();
        Object list = s.kubevirt() == null ? null : s.kubevirt().get("spec", "configuration", "permittedHostDevices", "pciHostDevices");
        if (!(list instanceof List<?> l)) return List.of();
        for (Object o : l) {
            if (!(o instanceof Map<?, ?> m) || !d.resourceName().equals(String.valueOf(m.get("resourceName")))) continue;
            String sel = String.valueOf(m.get("pciVendorSelector"));
            boolean external = Boolean.TRUE.equals(m.get("externalResourceProvider"));
            if (sel.equalsIgnoreCase(d.vendorDevice()) && external) {
                return List.of(Finding.pass("permitted-selector", d.name(), "pciVendorSelector " + sel + ", externalResourceProvider true"));
            }
            return List.of(Finding.warn("permitted-selector", d.name(), "KubeVirt CR entry for " + d.resourceName() + " has pciVendorSelector "
                            + sel + ", externalResourceProvider " + external + " (expected " + d.vendorDevice() + ", true)",
                    "kubectl -n " + Harvester.KUBEVIRT_NAMESPACE + " edit kubevirt " + Harvester.KUBEVIRT_NAME
                            + "   # set pciVendorSelector: \"" + d.vendorDevice() + "\", externalResourceProvider: true"));
        }
        return List.of();
    }

    /** A PCI USB controller with enabled USBDevices cannot be claimed (pcidevices webhook). */
    private static java.util.Optional<Finding> usbOnController(Harvester.PciDevice m, List<GenericKubernetesResource> usbDevices) {
        List<String> using = usbDevices.stream()
                .filter(u -> m.address().equals(Harvester.str(u, "status", "pciAddress")) && m.node().equals(Harvester.str(u, "status", "nodeName")))
                .filter(u -> Boolean.TRUE.equals(u.get("status", "enabled")))
                .map(u -> u.getMetadata().getName()).toList();
        if (using.isEmpty()) return java.util.Optional.empty();
        return java.util.Optional.of(Finding.fail("usb-controller", m.name(), "USB devices " + using + " are passed through from this PCI USB controller: "
                        + "claiming it is denied (\"these USB devices ... are using the PCI USB Controller\")",
                "kubectl delete usbdeviceclaim " + String.join(" ", using) + "   # after detaching them from their VMs"));
    }
}
