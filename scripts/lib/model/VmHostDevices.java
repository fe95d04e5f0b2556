//SOURCES ../cli/Cli.java Harvester.java KubeVirt.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * The edit of a VM's spec.template.spec.domain.devices.hostDevices, as pure functions of the VM
 * object: add or remove one device without wiping its other entries (a JSON merge patch would
 * replace the whole list, RFC 7386), move passthrough gpus entries, pin to the device's node.
 * Which device the user means: steps/DeviceTarget.java; writing it: steps/VmDeviceChange.java.
 */
public final class VmHostDevices {

    private VmHostDevices() {}

    public static final String DEFAULT_PATCH = "patches/vm-docker-host-nvidia-gpu.patch.json";
    public static final String HOSTNAME_LABEL = "kubernetes.io/hostname";
    /**
     * Annotation by which attach records, visibly on the VM, that it added the node pin and for
     * which hostDevices entries: {"node":"altra","devices":["altra-000c01000"]}. detach removes the
     * pin with the last of those entries, so claim → attach → detach → unclaim leaves the spec as it was.
     */
    public static final String PINNED_BY_ATTACH = "passthrough.harvester-tools.io/pinned-by-attach";

    /**
     * The device an entry is about. name: the PCIDevice name (null when only a resource name was
     * given); deviceName: its status.resourceName; node: its node (null when unknown).
     */
    public record Target(String name, String deviceName, String node) {
        /** How the device is named in messages: altra-000c01000, else the resource name. */
        public String label() {
            return name != null ? name : deviceName;
        }

        /** "altra-000c01000 (nvidia.com/GA102_GEFORCE_RTX_3090)", or the resource name alone. */
        public String describe() {
            return name != null ? name + " (" + deviceName + ")" : deviceName;
        }

        /** The flags that select this device again, e.g. for the undo hint. */
        public String flags() {
            return name != null ? "--device " + name : "--device-name " + deviceName + (node != null ? " --node " + node : "");
        }

        public Map<String, Object> entry() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", name);
            m.put("deviceName", deviceName);
            return m;
        }
    }


    // ---- the edit ---------------------------------------------------------------------------------

    /** What an edit does to a VM: lists before/after, the pin, and the summary ("hostDevices: +altra-000c01000"). */
    public record Edit(List<Map<String, Object>> before, List<Map<String, Object>> after,
                       List<Map<String, Object>> gpusBefore, List<Map<String, Object>> gpusAfter,
                       String pinnedTo, List<String> changes, GenericKubernetesResource vm, String unpinnedFrom) {
        public Edit(List<Map<String, Object>> before, List<Map<String, Object>> after,
                    List<Map<String, Object>> gpusBefore, List<Map<String, Object>> gpusAfter,
                    String pinnedTo, List<String> changes, GenericKubernetesResource vm) {
            this(before, after, gpusBefore, gpusAfter, pinnedTo, changes, vm, null);
        }

        public boolean changed() {
            return !changes.isEmpty() || pinnedTo != null || unpinnedFrom != null;
        }

        /** The equivalent JSON merge patch (it carries the full hostDevices list: a merge patch replaces lists). */
        public Map<String, Object> mergePatch() {
            Map<String, Object> spec = new LinkedHashMap<>();
            if (pinnedTo != null) spec.put("nodeSelector", Map.of(HOSTNAME_LABEL, pinnedTo));
            if (unpinnedFrom != null) spec.put("nodeSelector", java.util.Collections.singletonMap(HOSTNAME_LABEL, null));
            Map<String, Object> devices = new LinkedHashMap<>();
            devices.put("hostDevices", after);
            if (!gpusAfter.equals(gpusBefore)) devices.put("gpus", gpusAfter.isEmpty() ? null : gpusAfter);
            spec.put("domain", Map.of("devices", devices));
            Map<String, Object> patch = new LinkedHashMap<>();
            Object record = vm.getMetadata().getAnnotations() == null ? null : vm.getMetadata().getAnnotations().get(PINNED_BY_ATTACH);
            if (pinnedTo != null || unpinnedFrom != null || record != null) {
                patch.put("metadata", Map.of("annotations", java.util.Collections.singletonMap(PINNED_BY_ATTACH, record)));
            }
            patch.put("spec", Map.of("template", Map.of("spec", spec)));
            return patch;
        }

        /** "hostDevices: +altra-000c01000, pinned to node altra" */
        public String summary() {
            List<String> all = new ArrayList<>(changes);
            if (pinnedTo != null) all.add("pinned to node " + pinnedTo);
            if (unpinnedFrom != null) all.add("unpinned from node " + unpinnedFrom + " (attach had pinned it)");
            return String.join(", ", all);
        }
    }

    /** spec.template.spec of a VM (created when absent). */
    @SuppressWarnings("unchecked")
    static Map<String, Object> templateSpec(GenericKubernetesResource vm) {
        Map<String, Object> spec = (Map<String, Object>) vm.getAdditionalProperties().computeIfAbsent("spec", k -> new LinkedHashMap<>());
        Map<String, Object> template = (Map<String, Object>) spec.computeIfAbsent("template", k -> new LinkedHashMap<>());
        return (Map<String, Object>) template.computeIfAbsent("spec", k -> new LinkedHashMap<>());
    }

    /** spec.template.spec.domain.devices of a VM (created when absent). */
    @SuppressWarnings("unchecked")
    static Map<String, Object> devicesOf(GenericKubernetesResource vm) {
        Map<String, Object> domain = (Map<String, Object>) templateSpec(vm).computeIfAbsent("domain", k -> new LinkedHashMap<>());
        return (Map<String, Object>) domain.computeIfAbsent("devices", k -> new LinkedHashMap<>());
    }

    /** A copy of a device list of the VM (hostDevices or gpus), entries as maps. */
    @SuppressWarnings("unchecked")
    public static List<Map<String, Object>> list(GenericKubernetesResource vm, String field) {
        Object l = vm.get("spec", "template", "spec", "domain", "devices", field);
        List<Map<String, Object>> out = new ArrayList<>();
        if (l instanceof List<?> items) {
            for (Object o : items) if (o instanceof Map<?, ?> m) out.add(new LinkedHashMap<>((Map<String, Object>) m));
        }
        return out;
    }

    static String str(Map<String, Object> entry, String key) {
        Object v = entry.get(key);
        return v == null ? null : v.toString();
    }

    /** "name (deviceName)" for each entry. */
    public static List<String> describe(List<Map<String, Object>> entries) {
        return entries.stream().map(e -> str(e, "name") + " (" + str(e, "deviceName") + ")").toList();
    }

    /**
     * gpus entries that are really PCI passthrough devices (deviceName is a PCIDevice resource name):
     * pcidevices v1.5–1.7 rejects every update of such a VM with the misleading
     * "gpu device <n>: resource name <r> not found in pcidevice cache".
     */
    public static List<Map<String, Object>> passthroughGpus(GenericKubernetesResource vm, List<String> pciResourceNames) {
        return list(vm, "gpus").stream().filter(g -> pciResourceNames.contains(str(g, "deviceName"))).toList();
    }

    /** Sets hostDevices (and gpus) of the VM object in place. */
    static void setDevices(GenericKubernetesResource vm, List<Map<String, Object>> hostDevices, List<Map<String, Object>> gpus) {
        Map<String, Object> devices = devicesOf(vm);
        devices.put("hostDevices", hostDevices);
        if (gpus.isEmpty()) devices.remove("gpus");
        else devices.put("gpus", gpus);
    }

    /** nodeSelector kubernetes.io/hostname=node: the same resource may exist on other nodes (bravo has an RTX 3090 too). */
    @SuppressWarnings("unchecked")
    static void pin(GenericKubernetesResource vm, String node) {
        Map<String, Object> selector = (Map<String, Object>) templateSpec(vm).computeIfAbsent("nodeSelector", k -> new LinkedHashMap<>());
        selector.put(HOSTNAME_LABEL, node);
    }

    /** Removes nodeSelector kubernetes.io/hostname (and an empty nodeSelector). */
    @SuppressWarnings("unchecked")
    static void unpin(GenericKubernetesResource vm) {
        Map<String, Object> spec = templateSpec(vm);
        if (spec.get("nodeSelector") instanceof Map<?, ?> sel) {
            ((Map<String, Object>) sel).remove(HOSTNAME_LABEL);
            if (sel.isEmpty()) spec.remove("nodeSelector");
        }
    }

    /**
     * Adds the target (an entry named after the PCIDevice), moving passthrough gpus entries to
     * hostDevices when asked, and pins the VM to the device's node when it is not pinned. An
     * existing entry is recognised by deviceName: the pcidevices controller renames `name`.
     */
    public static Edit attach(GenericKubernetesResource vm, Target t, List<Map<String, Object>> gpusToMove) {
        List<Map<String, Object>> before = list(vm, "hostDevices");
        List<Map<String, Object>> after = new ArrayList<>(before);
        List<Map<String, Object>> gpusBefore = list(vm, "gpus");
        List<Map<String, Object>> gpus = new ArrayList<>(gpusBefore);
        List<String> changes = new ArrayList<>();
        for (Map<String, Object> g : gpusToMove) {
            gpus.remove(g);
            String res = str(g, "deviceName");
            boolean present = after.stream().anyMatch(e -> res != null && res.equals(str(e, "deviceName")));
            if (!present) {
                Map<String, Object> moved = new LinkedHashMap<>();
                // Named after the PCIDevice when it is ours: the Harvester UI shows only such entries.
                moved.put("name", t.deviceName().equals(res) && t.name() != null ? t.name() : str(g, "name"));
                moved.put("deviceName", res);
                after.add(moved);
            }
            changes.add("gpus: -" + str(g, "name") + (present ? "" : " → hostDevices"));
        }
        if (after.stream().noneMatch(e -> t.deviceName().equals(str(e, "deviceName")))) {
            after.add(t.entry());
            changes.add("hostDevices: +" + t.label());
        }
        String pinnedTo = KubeVirt.pinnedNode(vm) == null && t.node() != null ? t.node() : null;
        GenericKubernetesResource edited = copy(vm);
        setDevices(edited, after, gpus);
        if (pinnedTo != null) pin(edited, pinnedTo);
        // Record the pin (or add this entry to attach's existing pin on the same node) so detach can take it back.
        PinRecord record = PinRecord.of(vm);
        String entry = t.label();
        if (pinnedTo != null) new PinRecord(pinnedTo, List.of(entry)).writeTo(edited);
        else if (record != null && record.node().equals(KubeVirt.pinnedNode(vm)) && !record.devices().contains(entry) && !changes.isEmpty()) {
            List<String> devices = new ArrayList<>(record.devices());
            devices.add(entry);
            new PinRecord(record.node(), devices).writeTo(edited);
        }
        return new Edit(before, after, gpusBefore, gpus, pinnedTo, changes, edited);
    }

    /**
     * Removes exactly the target: entries with its deviceName and, when a PCIDevice name is given,
     * that name; if no entry has the name but exactly one has the deviceName (the name was
     * rewritten), that one. Passthrough gpus entries with the deviceName go too.
     */
    public static Edit detach(GenericKubernetesResource vm, Target t) {
        List<Map<String, Object>> before = list(vm, "hostDevices");
        List<Map<String, Object>> sameResource = before.stream().filter(e -> t.deviceName().equals(str(e, "deviceName"))).toList();
        List<Map<String, Object>> remove = sameResource;
        if (t.name() != null) {
            List<Map<String, Object>> exact = sameResource.stream().filter(e -> t.name().equals(str(e, "name"))).toList();
            remove = !exact.isEmpty() ? exact : sameResource.size() == 1 ? sameResource : List.of();
            if (exact.isEmpty() && sameResource.size() > 1) {
                throw new Cli.UserError(Cli.Exit.NOT_FOUND, "no hostDevices entry named " + t.name() + "; " + sameResource.size()
                        + " entries have deviceName " + t.deviceName() + " (" + String.join(", ", describe(sameResource))
                        + ") — pass the entry's PCIDevice name with --device");
            }
        } else if (sameResource.size() > 1) {
            throw new Cli.UserError(Cli.Exit.USAGE, sameResource.size() + " hostDevices entries have deviceName " + t.deviceName()
                    + " (" + String.join(", ", describe(sameResource)) + ") — pick one with --device NAME");
        }
        List<Map<String, Object>> after = new ArrayList<>(before);
        List<String> changes = new ArrayList<>();
        for (Map<String, Object> e : remove) {
            after.remove(e);
            changes.add("hostDevices: -" + str(e, "name"));
        }
        List<Map<String, Object>> gpus = list(vm, "gpus");
        List<Map<String, Object>> gpusAfter = gpus.stream().filter(g -> !t.deviceName().equals(str(g, "deviceName"))).toList();
        if (gpusAfter.size() != gpus.size()) changes.add("gpus: -" + t.deviceName());
        GenericKubernetesResource edited = copy(vm);
        setDevices(edited, after, gpusAfter);
        // The pin attach added goes with the last entry it was added for (a pin the user set has no record: kept).
        String unpinnedFrom = null;
        PinRecord record = PinRecord.of(vm);
        if (record != null && !remove.isEmpty()) {
            List<String> removed = remove.stream().map(e -> str(e, "name")).toList();
            List<String> left = record.devices().stream().filter(d -> !removed.contains(d)
                    && after.stream().anyMatch(e -> d.equals(str(e, "name")))).toList();
            if (left.isEmpty() && record.node().equals(KubeVirt.pinnedNode(vm))) {
                unpin(edited);
                unpinnedFrom = record.node();
            }
            new PinRecord(record.node(), left).writeTo(edited);
        }
        return new Edit(before, after, gpus, gpusAfter, null, changes, edited, unpinnedFrom);
    }

    /** attach's pin record: the node and the entries it pinned for, or null. */
    public record PinRecord(String node, List<String> devices) {
        static PinRecord of(GenericKubernetesResource vm) {
            Map<String, String> a = vm.getMetadata().getAnnotations();
            String json = a == null ? null : a.get(PINNED_BY_ATTACH);
            if (json == null) return null;
            try {
                return Serialization.unmarshal(json, PinRecord.class);
            } catch (RuntimeException unreadable) {
                return null; // edited by hand into something else: leave the pin alone
            }
        }

        void writeTo(GenericKubernetesResource vm) {
            Map<String, String> a = vm.getMetadata().getAnnotations();
            if (a == null) {
                a = new LinkedHashMap<>();
                vm.getMetadata().setAnnotations(a);
            }
            if (devices.isEmpty()) a.remove(PINNED_BY_ATTACH);
            else {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("node", node);
                m.put("devices", devices);
                a.put(PINNED_BY_ATTACH, Serialization.asJson(m));
            }
        }
    }

    static GenericKubernetesResource copy(GenericKubernetesResource r) {
        return Serialization.clone(r);
    }
}
