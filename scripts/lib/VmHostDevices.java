//SOURCES Harvester.java KubeVirt.java Bundled.java Render.java VmRestart.java

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * Editing a VM's spec.template.spec.domain.devices.hostDevices without wiping its other entries:
 * which device the user means (flags or patch file), the edit itself, and a read-modify-write
 * guarded by resourceVersion (a JSON merge patch would replace the whole list, RFC 7386).
 * Shared by attach and detach.
 */
public final class VmHostDevices {
    /** How attach and detach are told which device: a PCIDevice name, a resource name, or a merge-patch file. */
    public static class DeviceOptions {
        @picocli.CommandLine.Option(names = "--device", paramLabel = "NAME", description = "PCIDevice (= claim) name, e.g. altra-000c01000")
        public String device;

        @picocli.CommandLine.Option(names = "--device-name", paramLabel = "RESOURCE",
                description = "Resource name, e.g. nvidia.com/GA102_GEFORCE_RTX_3090 (narrowed by --node)")
        public String deviceName;

        @picocli.CommandLine.Option(names = "--node", paramLabel = "NODE", description = "Node of the device, with --device-name")
        public String node;

        @picocli.CommandLine.Option(names = "--patch", paramLabel = "FILE",
                description = "Take the device from this merge-patch file instead of the bundled one")
        public String patch;

        /** The device these options name; needPciDevice: it must be a PCIDevice (detach also takes a bare resource). */
        public Target resolve(KubernetesClient client, boolean needPciDevice) {
            return VmHostDevices.resolve(client, device, deviceName, node, patch, needPciDevice);
        }
    }

    private VmHostDevices() {}

    public static final String DEFAULT_PATCH = "patches/vm-docker-host-nvidia-gpu.patch.json";
    public static final String HOSTNAME_LABEL = "kubernetes.io/hostname";

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

    /**
     * The device from --device NAME, or --device-name RES (+ --node), or else the single hostDevices
     * entry of the patch file (bundled default, or --patch FILE). needPciDevice: attach needs the
     * PCIDevice itself (to check and pin); detach can work from a resource name alone.
     */
    public static Target resolve(KubernetesClient c, String device, String deviceName, String node, String patchFile,
                                 boolean needPciDevice) {
        if (device != null && deviceName != null) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--device and --device-name both given — pass one: --device altra-000c01000 "
                    + "or --device-name nvidia.com/GA102_GEFORCE_RTX_3090 --node altra");
        }
        if ((device != null || deviceName != null) && patchFile != null) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--patch and a device flag both given — pass either the device or the patch file");
        }
        if (device != null) {
            Harvester.PciDevice d = Harvester.device(c, device);
            if (node != null && !node.equals(d.node())) {
                throw new Cli.UserError(Cli.Exit.USAGE, "PCIDevice " + d.name() + " is on node " + d.node() + ", not " + node
                        + " — drop --node or pick a device on " + node);
            }
            return fromDevice(d);
        }
        if (deviceName != null) return byResourceName(c, deviceName, node, null, needPciDevice);
        Map<String, Object> entry = patchEntry(patchFile);
        String name = (String) entry.get("name");
        String res = (String) entry.get("deviceName");
        return byResourceName(c, res, node, name, needPciDevice);
    }

    private static Target fromDevice(Harvester.PciDevice d) {
        if (d.resourceName() == null || d.resourceName().isBlank()) {
            throw new Cli.UserError(Cli.Exit.PRECONDITION, "PCIDevice " + d.name() + " has no status.resourceName yet — "
                    + "wait for the pcidevices controller's scan (diagnose --device " + d.name() + ")");
        }
        return new Target(d.name(), d.resourceName(), d.node());
    }

    /** The PCIDevice with that resource name (preferring one named `preferred`), on `node` when given. */
    private static Target byResourceName(KubernetesClient c, String res, String node, String preferred, boolean needPciDevice) {
        var op = Harvester.pciDevices(c);
        List<Harvester.PciDevice> all = (node != null ? op.withLabel("nodename", node).list() : op.list()).getItems().stream()
                .map(Harvester.PciDevice::of)
                .filter(d -> res.equals(d.resourceName()) && (node == null || node.equals(d.node())))
                .toList();
        var named = all.stream().filter(d -> d.name().equals(preferred)).findFirst();
        if (named.isPresent()) return fromDevice(named.get());
        if (!needPciDevice) return new Target(preferred, res, node);
        if (node == null && preferred == null) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--device-name needs --node (the same resource can exist on several nodes) "
                    + "— e.g. --device-name " + res + " --node altra, or pass --device NAME");
        }
        if (all.size() == 1) return fromDevice(all.get(0));
        if (all.isEmpty()) {
            throw new Cli.UserError(Cli.Exit.NOT_FOUND, "no PCIDevice has resource name " + res + (node != null ? " on node " + node : "")
                    + " — list devices with: inventory" + (node != null ? " --node " + node : "") + " -o wide");
        }
        throw new Cli.UserError(Cli.Exit.USAGE, all.size() + " PCIDevices have resource name " + res
                + (node != null ? " on node " + node : "") + " (" + String.join(", ", all.stream().map(Harvester.PciDevice::name).toList())
                + ") — pick one with --device NAME");
    }

    /** The one hostDevices entry of a merge-patch file such as patches/vm-docker-host-nvidia-gpu.patch.json. */
    static Map<String, Object> patchEntry(String patchFile) {
        String source = patchFile != null ? patchFile : DEFAULT_PATCH + " (bundled)";
        String text;
        if (patchFile != null) {
            try {
                text = Files.readString(Path.of(patchFile));
            } catch (Exception e) {
                throw new Cli.UserError(Cli.Exit.USAGE, "cannot read --patch " + patchFile + " (" + e.getClass().getSimpleName()
                        + ") — check the path");
            }
        } else {
            text = Bundled.read(DEFAULT_PATCH);
        }
        JsonNode devices;
        try {
            devices = Serialization.jsonMapper().readTree(text).path("spec").path("template").path("spec").path("domain").path("devices");
        } catch (Exception e) {
            throw new Cli.UserError(Cli.Exit.USAGE, "patch " + source + " is not valid JSON — fix it or pass --device NAME");
        }
        if (devices.path("gpus").size() > 0) {
            throw new Cli.UserError(Cli.Exit.USAGE, "patch " + source + " puts the device under domain.devices.gpus, which the "
                    + "pcidevices webhook rejects (\"not found in pcidevice cache\") — move the entry to hostDevices");
        }
        JsonNode list = devices.path("hostDevices");
        if (list.size() != 1 || !list.get(0).hasNonNull("deviceName")) {
            throw new Cli.UserError(Cli.Exit.USAGE, "patch " + source + " must hold exactly one "
                    + "spec.template.spec.domain.devices.hostDevices entry with a deviceName (found " + list.size()
                    + ") — or pass --device NAME");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", list.get(0).path("name").isMissingNode() ? null : list.get(0).path("name").asText());
        m.put("deviceName", list.get(0).get("deviceName").asText());
        return m;
    }

    // ---- the edit ---------------------------------------------------------------------------------

    /** What an edit does to a VM: lists before/after, the pin, and the summary ("hostDevices: +altra-000c01000"). */
    public record Edit(List<Map<String, Object>> before, List<Map<String, Object>> after,
                       List<Map<String, Object>> gpusBefore, List<Map<String, Object>> gpusAfter,
                       String pinnedTo, List<String> changes, GenericKubernetesResource vm) {
        public boolean changed() {
            return !changes.isEmpty() || pinnedTo != null;
        }

        /** The equivalent JSON merge patch (it carries the full hostDevices list: a merge patch replaces lists). */
        public Map<String, Object> mergePatch() {
            Map<String, Object> spec = new LinkedHashMap<>();
            if (pinnedTo != null) spec.put("nodeSelector", Map.of(HOSTNAME_LABEL, pinnedTo));
            Map<String, Object> devices = new LinkedHashMap<>();
            devices.put("hostDevices", after);
            if (!gpusAfter.equals(gpusBefore)) devices.put("gpus", gpusAfter.isEmpty() ? null : gpusAfter);
            spec.put("domain", Map.of("devices", devices));
            return Map.of("spec", Map.of("template", Map.of("spec", spec)));
        }

        /** "hostDevices: +altra-000c01000, pinned to node altra" */
        public String summary() {
            List<String> all = new ArrayList<>(changes);
            if (pinnedTo != null) all.add("pinned to node " + pinnedTo);
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

    /** Every PCIDevice resource name in the cluster. */
    public static List<String> pciResourceNames(KubernetesClient c) {
        return Harvester.pciDevices(c).list().getItems().stream().map(Harvester.PciDevice::of)
                .map(Harvester.PciDevice::resourceName).filter(r -> r != null).distinct().toList();
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
        return new Edit(before, after, gpus, gpusAfter, null, changes, edited);
    }

    static GenericKubernetesResource copy(GenericKubernetesResource r) {
        return Serialization.clone(r);
    }

    // ---- read-modify-write ------------------------------------------------------------------------

    /** How many times a 409 Conflict (someone else changed the VM) is retried. */
    public static final int CONFLICT_RETRIES = 5;
    /** Webhook race: bounded exponential backoff, as the runbook tells humans to "wait a few seconds and retry". */
    public static final int WEBHOOK_RETRIES = 6;
    public static final long WEBHOOK_FIRST_BACKOFF_MS = 500;

    /**
     * Reads the VM, computes the edit on the fresh copy, and PUTs it with that copy's
     * resourceVersion: a concurrent change gives 409 and the edit is recomputed. An admission
     * denial "not found in pcidevice and usbdevice cache" for our own (existing) resource name is
     * the webhook's cache lagging behind a pod restart: retried with backoff, each retry reported.
     * Returns the applied edit (unchanged edits are not written).
     */
    public static Edit apply(KubernetesClient c, String ns, String name, Function<GenericKubernetesResource, Edit> planner,
                             String resourceName, PrintWriter progress) {
        int conflicts = 0;
        int denials = 0;
        while (true) {
            GenericKubernetesResource vm = KubeVirt.vms(c).inNamespace(ns).withName(name).get();
            if (vm == null) {
                throw new Cli.UserError(Cli.Exit.NOT_FOUND, "virtualmachine \"" + name + "\" disappeared while we edited it (namespace " + ns + ")");
            }
            Edit edit = planner.apply(vm);
            if (!edit.changed()) return edit;
            try {
                KubeVirt.vms(c).inNamespace(ns).resource(edit.vm()).update();
                return edit;
            } catch (KubernetesClientException e) {
                if (e.getCode() == 409 && conflicts < CONFLICT_RETRIES) {
                    conflicts++;
                    progress.println("virtualmachine.kubevirt.io/" + name + " changed while we edited it (409 Conflict) — re-reading and retrying ("
                            + conflicts + "/" + CONFLICT_RETRIES + ")");
                    progress.flush();
                    continue;
                }
                if (isCacheRace(e, resourceName) && denials < WEBHOOK_RETRIES) {
                    long wait = WEBHOOK_FIRST_BACKOFF_MS << denials;
                    denials++;
                    progress.println("admission webhook: resource name " + resourceName + " not yet in the pcidevices cache — retrying in "
                            + String.format("%.1f", wait / 1000.0) + "s (" + denials + "/" + WEBHOOK_RETRIES + ")");
                    progress.flush();
                    VmRestart.sleep(wait);
                    continue;
                }
                if (isCacheRace(e, resourceName)) {
                    throw new Cli.UserError(Cli.Exit.REJECTED, "the pcidevices admission webhook still denies " + resourceName + " after "
                            + WEBHOOK_RETRIES + " retries (" + message(e) + ") — restart the harvester-pcidevices-controller pod "
                            + "(kubectl -n harvester-system delete pod -l app.kubernetes.io/name=harvester-pcidevices-controller) and re-run", e);
                }
                throw e;
            }
        }
    }

    /** The webhook's "hostdevice <n>: resource name <r> not found in pcidevice and usbdevice cache" for our resource. */
    static boolean isCacheRace(KubernetesClientException e, String resourceName) {
        String m = message(e);
        return e.getCode() >= 500 && m.contains("admission webhook") && m.contains("resource name " + resourceName + " not found in pcidevice and usbdevice cache");
    }

    static String message(KubernetesClientException e) {
        return e.getStatus() != null && e.getStatus().getMessage() != null ? e.getStatus().getMessage() : String.valueOf(e.getMessage());
    }


    // ---- report -----------------------------------------------------------------------------------

    /** --dry-run and -o json share the report. */
    public static Map<String, Object> report(String vm, String ns, VmHostDevices.Target t, VmHostDevices.Edit edit, boolean dryRun) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("vm", vm);
        m.put("namespace", ns);
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("name", t.name());
        d.put("deviceName", t.deviceName());
        d.put("node", t.node());
        m.put("device", d);
        m.put("changed", edit.changed());
        m.put("changes", edit.changes());
        m.put("pinnedTo", edit.pinnedTo());
        m.put("hostDevicesBefore", edit.before());
        m.put("hostDevicesAfter", edit.after());
        m.put("patch", edit.changed() ? edit.mergePatch() : null);
        m.put("dryRun", dryRun);
        return m;
    }

    public static Cli.Exit printDryRun(PrintWriter stdout, Cli.OutputOptions out, String vm, String ns, VmHostDevices.Target t, VmHostDevices.Edit edit) {
        if (out.structured()) {
            Render.structured(stdout, out.output, report(vm, ns, t, edit, true));
            stdout.flush();
            return Cli.Exit.OK;
        }
        stdout.println("hostDevices before: " + String.join(", ", VmHostDevices.describe(edit.before())));
        stdout.println("hostDevices after:  " + String.join(", ", VmHostDevices.describe(edit.after())));
        if (edit.changed()) {
            stdout.println("patch (merge; it carries the whole list):");
            stdout.println(Serialization.asJson(edit.mergePatch()));
            stdout.println("virtualmachine.kubevirt.io/" + vm + " patched (" + edit.summary() + ") (dry run)");
        } else {
            stdout.println("virtualmachine.kubevirt.io/" + vm + " unchanged (dry run)");
        }
        stdout.flush();
        return Cli.Exit.OK;
    }

    /** A failure after the VM may have been patched: what changed and how to undo it. */
    public static Cli.UserError failed(VmHostDevices.Edit edit, Cli.Exit exit, String problem, String undo) {
        if (!edit.changed()) return new Cli.UserError(exit == Cli.Exit.PARTIAL ? Cli.Exit.PRECONDITION : exit, problem + " (the VM spec was not changed)");
        return new Cli.UserError(exit, problem + " — changed: virtualmachine.kubevirt.io spec (" + edit.summary() + "); undo: " + undo);
    }

    /** The last line of attach/detach: the outcome sentence, or the JSON/YAML report with the instance it ended with. */
    public static void printOutcome(PrintWriter stdout, Cli.OutputOptions out, String vmName, String ns, Target target, Edit edit,
                                    VmRestart.Result result, String outcome) {
        VmRestart.Outcome o = result.outcome();
        if (out.structured()) {
            Map<String, Object> report = report(vmName, ns, target, edit, false);
            report.put("action", result.action().name());
            if (o != null && o.vmi() != null) report.put("vmi", Map.of("uid", VmRestart.uid(o.vmi()), "phase", VmRestart.phase(o.vmi()),
                    "node", String.valueOf(VmRestart.node(o.vmi()))));
            report.put("message", outcome);
            Render.structured(stdout, out.output, report);
        } else {
            stdout.println(outcome);
        }
        stdout.flush();
    }
}
