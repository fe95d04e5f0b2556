//SOURCES Diagnosis.java

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * What the VM side can get wrong: its spec (hostDevices vs gpus, names, pinning, hot-plug volumes),
 * its instance (node, phase, conditions, events) and other VMs holding the same device. The
 * cluster is read once ({@link #read}: a fixed number of requests whatever its size), then judged.
 */
public final class VmChecks {
    private VmChecks() {}

    /** What the VM checks look at: every VM and VMI, and the events of the VM's namespace. */
    public record Cluster(List<GenericKubernetesResource> vms, Map<String, GenericKubernetesResource> vmis, List<Event> events) {
        /** The instance of a VM (by namespace/name), or null. */
        public GenericKubernetesResource vmiOf(GenericKubernetesResource vm) {
            return vmis.get(KubeVirt.ref(vm));
        }
    }

    /** Three requests: all VMs, all VMIs, and the events of the namespace (none when ns is null). */
    public static Cluster read(KubernetesClient c, String eventsNamespace) {
        List<GenericKubernetesResource> vms = KubeVirt.vms(c).inAnyNamespace().list().getItems();
        Map<String, GenericKubernetesResource> vmis = new LinkedHashMap<>();
        KubeVirt.vmis(c).inAnyNamespace().list().getItems().forEach(v -> vmis.put(KubeVirt.ref(v), v));
        List<Event> events = eventsNamespace == null ? List.of() : c.v1().events().inNamespace(eventsNamespace).list().getItems();
        return new Cluster(vms, vmis, events);
    }

    private static final String DEVICES_PATH = "/spec/template/spec/domain/devices/";

    /** Findings for one VM and the devices it should have. */
    public static List<Diagnosis.Finding> check(Cluster c, GenericKubernetesResource vm, List<Harvester.PciDevice> devices,
                                                List<Harvester.PciDevice> allDevices, List<GenericKubernetesResource> usbDevices) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        String ref = KubeVirt.ref(vm);
        GenericKubernetesResource vmi = c.vmiOf(vm);
        List<KubeVirt.HostDevice> hostDevices = KubeVirt.hostDevices(vm);
        List<KubeVirt.HostDevice> gpus = KubeVirt.gpus(vm);
        Set<String> pciNames = new LinkedHashSet<>();
        allDevices.forEach(d -> pciNames.add(d.name()));
        Set<String> resources = new LinkedHashSet<>();
        allDevices.forEach(d -> resources.add(d.resourceName()));
        usbDevices.forEach(u -> resources.add(Harvester.str(u, "status", "resourceName")));

        for (Harvester.PciDevice d : devices) {
            int inHost = indexOf(hostDevices, d);
            int inGpus = indexOf(gpus, d);
            if (inGpus >= 0) {
                KubeVirt.HostDevice g = gpus.get(inGpus);
                out.add(Diagnosis.Finding.fail("gpus-field", ref, "domain.devices.gpus[" + inGpus + "] = {name: " + g.name() + ", deviceName: "
                                + g.deviceName() + "}: pcidevices v1.5-1.7 deny it (\"gpu device " + g.name() + ": resource name " + g.deviceName()
                                + " not found in pcidevice cache\" — not a cache race); KubeVirt wants passthrough GPUs in hostDevices",
                        "kubectl -n " + ns + " patch vm " + name + " --type json -p '[{\"op\":\"remove\",\"path\":\"" + DEVICES_PATH + "gpus/" + inGpus
                                + "\"}]' && attach " + name + " --device " + d.name() + " -n " + ns));
            } else if (inHost >= 0) {
                out.add(Diagnosis.Finding.pass("vm-device", ref, "hostDevices[" + inHost + "] = {name: " + hostDevices.get(inHost).name()
                        + ", deviceName: " + d.resourceName() + "}"));
            } else {
                out.add(Diagnosis.Finding.fail("vm-device", ref, "spec.template.spec.domain.devices.hostDevices has no " + d.resourceName()
                        + " (" + d.name() + ")", null).with(Diagnosis.attach(ns, name, d.name())));
            }
        }
        // Every hostDevices entry: its resource must exist (webhook), its name should be a PCIDevice name (UI), no dots (#9399).
        for (int i = 0; i < hostDevices.size(); i++) {
            KubeVirt.HostDevice h = hostDevices.get(i);
            String at = "hostDevices[" + i + "] = {name: " + h.name() + ", deviceName: " + h.deviceName() + "}";
            if (!resources.contains(h.deviceName())) {
                out.add(Diagnosis.Finding.fail("hostdevice-resource", ref, at + ": no PCIDevice or USBDevice has that resource name; the webhook denies "
                                + "every update (\"hostdevice " + h.name() + ": resource name " + h.deviceName() + " not found in pcidevice and usbdevice cache\")",
                        "kubectl -n " + ns + " patch vm " + name + " --type json -p '[{\"op\":\"remove\",\"path\":\"" + DEVICES_PATH + "hostDevices/" + i + "\"}]'"
                                + "   # then attach the device by name (inventory lists them)"));
                continue;
            }
            boolean pci = allDevices.stream().anyMatch(d -> java.util.Objects.equals(d.resourceName(), h.deviceName()));
            if (pci && !pciNames.contains(h.name())) {
                String target = devices.stream().filter(d -> java.util.Objects.equals(d.resourceName(), h.deviceName())).map(Harvester.PciDevice::name)
                        .findFirst().orElse("<pcidevice name>");
                out.add(Diagnosis.Finding.warn("hostdevice-name", ref, at + ": the name is not a PCIDevice name, so the Harvester UI does not show "
                                + "the device in the VM's PCI tab and the webhook does not claim its IOMMU group",
                        "kubectl -n " + ns + " patch vm " + name + " --type json -p '[{\"op\":\"replace\",\"path\":\"" + DEVICES_PATH + "hostDevices/"
                                + i + "/name\",\"value\":\"" + target + "\"}]'"));
            }
            if (h.name() != null && h.name().contains(".")) {
                out.add(Diagnosis.Finding.warn("dotted-name", ref, at + ": a \".\" in a hostDevices name leaves PCI_RESOURCE_... unset in "
                                + "virt-launcher on Harvester v1.7 (harvester#9399)",
                        "kubectl -n " + ns + " patch vm " + name + " --type json -p '[{\"op\":\"replace\",\"path\":\"" + DEVICES_PATH + "hostDevices/"
                                + i + "/name\",\"value\":\"" + h.name().replace('.', '-') + "\"}]'"));
            }
        }
        out.addAll(sameNode(vm, hostDevices, allDevices));
        out.addAll(placement(vm, vmi, devices, allDevices));
        out.addAll(hotplug(vm, hostDevices.size() + gpus.size()));
        out.addAll(instance(c, vm, vmi, devices));
        out.addAll(staleAllocation(vm, vmi));
        return out;
    }

    /** Index of the entry naming the device, else of the first entry with its resource name; -1 if none. */
    static int indexOf(List<KubeVirt.HostDevice> entries, Harvester.PciDevice d) {
        for (int i = 0; i < entries.size(); i++) if (d.name().equals(entries.get(i).name())) return i;
        for (int i = 0; i < entries.size(); i++) if (d.resourceName().equals(entries.get(i).deviceName())) return i;
        return -1;
    }

    /** The pcidevices webhook refuses host devices from two nodes. */
    private static List<Diagnosis.Finding> sameNode(GenericKubernetesResource vm, List<KubeVirt.HostDevice> entries, List<Harvester.PciDevice> all) {
        Map<String, String> nodeOf = new LinkedHashMap<>();
        for (KubeVirt.HostDevice h : entries) {
            all.stream().filter(d -> d.name().equals(h.name())).findFirst().ifPresent(d -> nodeOf.put(d.name(), d.node()));
        }
        if (new LinkedHashSet<>(nodeOf.values()).size() <= 1) return List.of();
        return List.of(Diagnosis.Finding.fail("same-node", KubeVirt.ref(vm), "hostDevices are on different nodes " + nodeOf
                        + ": the webhook denies it (\"device pcidevice/... is not on the same node\")",
                "detach " + vm.getMetadata().getName() + " --device <the device on the other node> -n " + vm.getMetadata().getNamespace()));
    }

    /** Pinning (#6648): the VM must run where the device is. */
    private static List<Diagnosis.Finding> placement(GenericKubernetesResource vm, GenericKubernetesResource vmi,
                                                     List<Harvester.PciDevice> devices, List<Harvester.PciDevice> all) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        String ref = KubeVirt.ref(vm);
        String pinned = KubeVirt.pinnedNode(vm);
        String pin = "kubectl -n " + vm.getMetadata().getNamespace() + " patch vm " + vm.getMetadata().getName()
                + " --type merge -p '{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"%s\"}}}}}'";
        for (Harvester.PciDevice d : devices) {
            if (d.node().contains(".")) {
                out.add(Diagnosis.Finding.warn("dotted-name", d.node(), "node name " + d.node() + " contains \".\": virt-launcher reports "
                        + "\"PCI_RESOURCE_... not set for resource\" on Harvester v1.7 (harvester#9399)", "rename the node so its hostname has no \".\" (what resolved harvester#10517); until then expect this failure at the VM's start"));
            }
            if (pinned != null && !pinned.equals(d.node())) {
                out.add(Diagnosis.Finding.fail("vm-pinned", ref, "nodeSelector kubernetes.io/hostname=" + pinned + " but " + d.name() + " is on node " + d.node(),
                        pin.formatted(d.node())));
            } else if (pinned == null) {
                List<String> elsewhere = all.stream().filter(o -> java.util.Objects.equals(o.resourceName(), d.resourceName()) && !o.node().equals(d.node()))
                        .map(Harvester.PciDevice::node).distinct().toList();
                if (!elsewhere.isEmpty()) {
                    out.add(Diagnosis.Finding.warn("vm-pinned", ref, "not pinned to node " + d.node() + ", and node(s) " + elsewhere + " also offer "
                            + d.resourceName() + ": the VM may start there (harvester#6648)", pin.formatted(d.node())));
                } else {
                    out.add(Diagnosis.Finding.pass("vm-pinned", ref, "not pinned, but only node " + d.node() + " offers " + d.resourceName()));
                }
            } else {
                out.add(Diagnosis.Finding.pass("vm-pinned", ref, "nodeSelector kubernetes.io/hostname=" + pinned));
            }
            String vmiNode = vmi == null ? null : Harvester.str(vmi, "status", "nodeName");
            if (vmiNode != null && !vmiNode.equals(d.node())) {
                out.add(Diagnosis.Finding.fail("vmi-node", ref, "VMI runs on node " + vmiNode + " but " + d.name() + " is on node " + d.node(),
                        pin.formatted(d.node()) + " && virtctl restart " + vm.getMetadata().getName() + " -n " + vm.getMetadata().getNamespace()));
            }
        }
        return out;
    }

    /** KubeVirt 1.7 cannot pass through host devices when a volume is hot-pluggable (#10029). */
    private static List<Diagnosis.Finding> hotplug(GenericKubernetesResource vm, int hostDeviceCount) {
        if (hostDeviceCount == 0) return List.of();
        Object vols = vm.get("spec", "template", "spec", "volumes");
        List<String> hot = new ArrayList<>();
        if (vols instanceof List<?> l) {
            for (Object o : l) {
                if (!(o instanceof Map<?, ?> v)) continue;
                for (String src : List.of("persistentVolumeClaim", "dataVolume")) {
                    if (v.get(src) instanceof Map<?, ?> s && Boolean.TRUE.equals(s.get("hotpluggable"))) hot.add(String.valueOf(v.get("name")));
                }
            }
        }
        if (hot.isEmpty()) return List.of();
        return List.of(Diagnosis.Finding.warn("hotplug-volume", KubeVirt.ref(vm), "hot-pluggable volume(s) " + hot + " with host devices: on KubeVirt 1.7 "
                        + "the VM fails with \"pci backend driver type 'default' is not supported\" (harvester#10029)",
                "virtctl removevolume " + vm.getMetadata().getName() + " --volume-name=" + hot.get(0) + " -n " + vm.getMetadata().getNamespace()));
    }

    /** runStrategy, the VMI's phase and conditions, the VM's conditions and recent events, explained. */
    private static List<Diagnosis.Finding> instance(Cluster c, GenericKubernetesResource vm, GenericKubernetesResource vmi,
                                                    List<Harvester.PciDevice> devices) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        String ref = KubeVirt.ref(vm);
        String rs = KubeVirt.runStrategy(vm);
        String restart = "virtctl restart " + name + " -n " + ns;
        boolean deleteLeavesStopped = rs.equals("RerunOnFailure") || rs.equals("Manual");
        if (vmi == null) {
            if (rs.equals("Halted")) {
                out.add(Diagnosis.Finding.warn("vmi-status", ref, "no VMI: the VM is stopped (runStrategy Halted)", "virtctl start " + name + " -n " + ns));
            } else if (deleteLeavesStopped) {
                out.add(Diagnosis.Finding.warn("run-strategy", ref, "no VMI and runStrategy " + rs + ": `kubectl delete vmi` stops this VM for good "
                        + "(only Always recreates it); restart it instead", "virtctl start " + name + " -n " + ns
                        + "   # next time: attach (restarts for you) or " + restart));
            } else {
                out.add(Diagnosis.Finding.warn("vmi-status", ref, "no VMI yet (runStrategy " + rs + ")", "kubectl -n " + ns + " get vmi " + name + " -w"));
            }
        } else {
            out.add(deleteLeavesStopped
                    ? Diagnosis.Finding.pass("run-strategy", ref, "runStrategy " + rs + ": restart with `" + restart + "` — `kubectl delete vmi` would leave it stopped")
                    : Diagnosis.Finding.pass("run-strategy", ref, "runStrategy " + rs));
            String phase = Harvester.str(vmi, "status", "phase");
            boolean ready = KubeVirt.conditions(vmi).stream().anyMatch(m -> "Ready".equals(m.get("type")) && "True".equals(String.valueOf(m.get("status"))));
            List<String> missing = new ArrayList<>();
            for (Harvester.PciDevice d : devices) {
                if (KubeVirt.hostDevices(vm).stream().anyMatch(h -> d.resourceName().equals(h.deviceName()))
                        && !vmiDeviceNames(vmi).contains(d.resourceName())) missing.add(d.name());
            }
            if ("Running".equals(phase) && ready && missing.isEmpty()) {
                out.add(Diagnosis.Finding.pass("vmi-status", ref, "VMI Running and Ready on node " + Harvester.str(vmi, "status", "nodeName")));
            } else if ("Running".equals(phase) && ready) {
                out.add(Diagnosis.Finding.warn("vmi-status", ref, "VMI Running without " + missing + ": it started before the VM spec changed", restart));
            } else {
                out.add(Diagnosis.Finding.fail("vmi-status", ref, "VMI phase " + phase + ", Ready " + ready + summary(vmi),
                        "kubectl -n " + ns + " describe vmi " + name));
            }
        }
        for (Map<?, ?> m : KubeVirt.conditions(vm)) {
            if ("RestartRequired".equals(m.get("type")) && "True".equals(String.valueOf(m.get("status")))) {
                out.add(Diagnosis.Finding.warn("restart-required", ref, "VM condition RestartRequired: " + m.get("message"), restart));
            }
        }
        // Known messages in VMI/VM conditions and in recent events about either: one finding per kind.
        List<String[]> messages = new ArrayList<>();
        if (vmi != null) KubeVirt.conditions(vmi).forEach(m -> messages.add(new String[] {"VMI condition " + m.get("type"), String.valueOf(m.get("message"))}));
        KubeVirt.conditions(vm).forEach(m -> messages.add(new String[] {"VM condition " + m.get("type"), String.valueOf(m.get("message"))}));
        for (Event e : events(c.events(), name)) messages.add(new String[] {"event " + e.getReason() + " on " + e.getInvolvedObject().getKind(), e.getMessage()});
        Set<String> seen = new LinkedHashSet<>();
        for (String[] msg : messages) {
            var hit = Diagnosis.recognise(Diagnosis.VM_MESSAGES, msg[1]);
            if (hit == null || !seen.add(hit.getKey().check())) continue;
            out.add(explain(hit.getKey(), hit.getValue(), msg[0] + ": \"" + shorten(msg[1]) + "\"", vm, devices));
        }
        return out;
    }

    private static Diagnosis.Finding explain(Diagnosis.Known k, Matcher m, String where, GenericKubernetesResource vm, List<Harvester.PciDevice> devices) {
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        String ref = KubeVirt.ref(vm);
        String device = devices.isEmpty() ? "<device>" : devices.get(0).name();
        String ev = where + " — " + k.meaning();
        String restart = "virtctl restart " + name + " -n " + ns;
        return switch (k.check()) {
            case "not-permitted" -> m.group(1).equals("GPU")
                    ? Diagnosis.Finding.fail(k.check(), ref, ev + "; the \"GPU\" prefix means it is under domain.devices.gpus",
                            "kubectl -n " + ns + " patch vm " + name + " --type json -p '[{\"op\":\"remove\",\"path\":\"" + DEVICES_PATH
                                    + "gpus/0\"}]' && attach " + name + " --device " + device + " -n " + ns)
                    : Diagnosis.Finding.fail(k.check(), ref, ev, null).with(Diagnosis.claim(device));
            case "webhook-gpu-field" -> Diagnosis.Finding.fail(k.check(), ref, ev,
                    "kubectl -n " + ns + " patch vm " + name + " --type json -p '[{\"op\":\"remove\",\"path\":\"" + DEVICES_PATH
                            + "gpus/0\"}]' && attach " + name + " --device " + device + " -n " + ns);
            case "webhook-cache" -> Diagnosis.Finding.warn(k.check(), ref, ev + "; if the name is right, retrying the patch works", null)
                    .with(Diagnosis.attach(ns, name, device));
            case "insufficient-resource" -> Diagnosis.Finding.fail(k.check(), ref, ev + " (see allocatable and shared-device)",
                    "kubectl -n harvester-system get pods -l " + Harvester.CONTROLLER_POD_SELECTOR + " -o wide   # then delete the pod on the device's node");
            case "group-not-viable" -> Diagnosis.Finding.fail(k.check(), ref, ev, null).with(Diagnosis.claim(device));
            case "vfio-busy" -> Diagnosis.Finding.fail(k.check(), ref, ev + " (see shared-device)", "virtctl stop <the other VM> -n <its namespace>");
            case "vfio-missing" -> Diagnosis.Finding.fail(k.check(), ref, ev, "claim " + device + " && " + restart);
            case "dma-no-memory" -> Diagnosis.Finding.fail(k.check(), ref, ev,
                    "raise the node's reserved memory or lower the VM's memory; use cpu model host-passthrough (harvester#3735)");
            case "hotplug-volume" -> Diagnosis.Finding.fail(k.check(), ref, ev, "virtctl removevolume " + name + " --volume-name=<hot-plugged volume> -n " + ns);
            case "dotted-name" -> Diagnosis.Finding.fail(k.check(), ref, ev, "rename hostDevices entries without \".\" (attach uses PCIDevice names)");
            case "stale-allocation" -> Diagnosis.Finding.warn(k.check(), ref, ev, restart);
            default -> Diagnosis.Finding.fail(k.check(), ref, ev, "kubectl -n " + ns + " describe vmi " + name);
        };
    }

    /** Other VMs holding the device, and VMs whose allocation annotation lists it although their spec no longer has it. */
    public static List<Diagnosis.Finding> sharing(Cluster c, GenericKubernetesResource vm, Harvester.PciDevice d,
                                                  List<Harvester.PciDevice> allDevices) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        List<String> running = new ArrayList<>();
        List<String> stopped = new ArrayList<>();
        for (GenericKubernetesResource other : c.vms()) {
            if (vm != null && KubeVirt.ref(other).equals(KubeVirt.ref(vm))) continue;
            if (KubeVirt.allocatedDevices(other).values().stream().anyMatch(l -> l.contains(d.name()))) {
                out.addAll(staleAllocation(other, c.vmiOf(other)));
            }
            if (!requests(other, d, allDevices)) continue;
            (c.vmiOf(other) != null ? running : stopped).add(KubeVirt.ref(other));
        }
        if (vm == null) return withoutVm(out, d, running, stopped);
        String self = " besides " + KubeVirt.ref(vm);
        if (!running.isEmpty()) {
            String o = running.get(0);
            out.add(Diagnosis.Finding.fail("shared-device", d.name(), "also requested by running VM(s) " + running + self
                            + ": only one VM can hold it (\"failed to open /dev/vfio/" + d.iommuGroup() + ": Device or resource busy\")",
                    detach(o, d)));
        } else if (!stopped.isEmpty()) {
            out.add(Diagnosis.Finding.warn("shared-device", d.name(), "also requested by stopped VM(s) " + stopped + self
                            + ": they cannot run at the same time",
                    detach(stopped.get(0), d)));
        } else {
            out.add(Diagnosis.Finding.pass("shared-device", d.name(), "no other VM requests it"));
        }
        return out;
    }

    /**
     * Without a VM to diagnose (diagnose --device, --node, bare) every requester was counted: one VM
     * using the device is the healthy setup; only two or more share it.
     */
    private static List<Diagnosis.Finding> withoutVm(List<Diagnosis.Finding> out, Harvester.PciDevice d, List<String> running, List<String> stopped) {
        if (running.size() >= 2) {
            out.add(Diagnosis.Finding.fail("shared-device", d.name(), "requested by " + running.size() + " running VMs " + running
                            + ": only one VM can hold it (\"failed to open /dev/vfio/" + d.iommuGroup() + ": Device or resource busy\")",
                    detach(running.get(running.size() - 1), d)));
        } else if (running.size() + stopped.size() >= 2) {
            List<String> all = new ArrayList<>(running);
            all.addAll(stopped);
            out.add(Diagnosis.Finding.warn("shared-device", d.name(), "requested by " + all.size() + " VMs " + all
                    + ": they cannot run at the same time", detach(stopped.get(stopped.size() - 1), d)));
        } else {
            List<String> one = new ArrayList<>(running);
            one.addAll(stopped);
            out.add(Diagnosis.Finding.pass("shared-device", d.name(), one.isEmpty() ? "no VM requests it" : "requested by one VM only " + one));
        }
        return out;
    }

    /** "detach docker-host --device altra-000c01000 -n default" for "default/docker-host". */
    private static String detach(String ref, Harvester.PciDevice d) {
        return "detach " + ref.substring(ref.indexOf('/') + 1) + " --device " + d.name() + " -n " + ref.substring(0, ref.indexOf('/'));
    }

    /**
     * Whether a VM asks for this device: allocated to it while its spec still has the resource, or
     * one of its entries means the device by the one rule (KubeVirt.java).
     */
    static boolean requests(GenericKubernetesResource vm, Harvester.PciDevice d, List<Harvester.PciDevice> all) {
        if (KubeVirt.allocatedDevices(vm).values().stream().anyMatch(l -> l.contains(d.name()))
                && specHas(vm, d.resourceName())) return true;
        String pinned = KubeVirt.pinnedNode(vm);
        return KubeVirt.entries(vm).stream()
                .anyMatch(h -> KubeVirt.match(h, all, pinned).devices().stream().anyMatch(x -> x.name().equals(d.name())));
    }

    private static boolean specHas(GenericKubernetesResource vm, String resource) {
        return KubeVirt.hostDevices(vm).stream().anyMatch(h -> resource.equals(h.deviceName()))
                || KubeVirt.gpus(vm).stream().anyMatch(h -> resource.equals(h.deviceName()));
    }

    /** deviceAllocationDetails listing a resource the spec no longer has: blocks deleting that device's claim. */
    static List<Diagnosis.Finding> staleAllocation(GenericKubernetesResource vm, GenericKubernetesResource vmi) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        String ns = vm.getMetadata().getNamespace();
        String name = vm.getMetadata().getName();
        for (var e : KubeVirt.allocatedDevices(vm).entrySet()) {
            if (specHas(vm, e.getKey())) continue;
            String first = e.getValue().isEmpty() ? "<claim>" : e.getValue().get(0);
            out.add(Diagnosis.Finding.warn("stale-allocation", KubeVirt.ref(vm), "annotation " + Harvester.ALLOCATION_ANNOTATION + " lists " + e.getValue()
                            + " (" + e.getKey() + ") but the spec no longer has it: deleting the claim is denied (\"pcideviceclaim " + first
                            + " is already in use with vm " + name + " in namespace " + ns + "\")",
                    vmi != null ? "virtctl restart " + name + " -n " + ns
                            : "virtctl start " + name + " -n " + ns + " && virtctl stop " + name + " -n " + ns + "   # the controller rewrites the annotation"));
        }
        return out;
    }

    /** deviceNames of a VMI's spec.domain.devices.hostDevices and gpus (a VMI has no template). */
    static Set<String> vmiDeviceNames(GenericKubernetesResource vmi) {
        Set<String> out = new LinkedHashSet<>();
        KubeVirt.entries(vmi).forEach(h -> {
            if (h.deviceName() != null) out.add(h.deviceName());
        });
        return out;
    }

    /** Core v1 Events whose involvedObject is the VM or its VMI (same name), newest last, at most 20. */
    static List<Event> events(List<Event> namespaceEvents, String name) {
        List<Event> about = namespaceEvents.stream()
                .filter(e -> e.getInvolvedObject() != null && name.equals(e.getInvolvedObject().getName())
                        && List.of("VirtualMachine", "VirtualMachineInstance").contains(e.getInvolvedObject().getKind()))
                .sorted(Comparator.comparing(e -> e.getLastTimestamp() == null ? "" : e.getLastTimestamp()))
                .toList();
        return about.subList(Math.max(0, about.size() - 20), about.size());
    }

    private static String summary(GenericKubernetesResource vmi) {
        StringBuilder sb = new StringBuilder();
        for (Map<String, Object> m : KubeVirt.conditions(vmi)) {
            if ("False".equals(String.valueOf(m.get("status"))) && m.get("message") != null && !"LiveMigratable".equals(m.get("type"))) {
                sb.append("; ").append(m.get("type")).append("=False ").append(m.get("reason")).append(": ").append(shorten(String.valueOf(m.get("message"))));
            }
        }
        return sb.toString();
    }

    private static String shorten(String s) {
        return s.length() > 200 ? s.substring(0, 197) + "..." : s;
    }
}
