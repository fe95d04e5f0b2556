//SOURCES ../cli/Cli.java ../cli/Names.java ../model/Harvester.java ../cli/Bundled.java ../model/VmHostDevices.java

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * Which device attach and detach are about: --device NAME, --device-name RES (+ --node), or the
 * single hostDevices entry of a merge-patch file (the bundled one by default), resolved against
 * the cluster's PCIDevices before any change.
 */
public final class DeviceTarget {
    private DeviceTarget() {}

    /** How attach and detach are told which device: a PCIDevice name, a resource name, or a merge-patch file. */
    public static class Options {
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

        /** Names that can never exist are usage errors, before any request. */
        public void checkNames() {
            Names.object("PCIDevice", device);
            Names.object("node", node);
        }

        /** The device these options name; needPciDevice: it must be a PCIDevice (detach also takes a bare resource). */
        public VmHostDevices.Target resolve(KubernetesClient client, boolean needPciDevice) {
            return find(client, needPciDevice).target();
        }

        /** As resolve, with the PCIDevice it was resolved from (so attach checks it without reading it again). */
        public Found find(KubernetesClient client, boolean needPciDevice) {
            return DeviceTarget.find(client, device, deviceName, node, patch, needPciDevice);
        }
    }

    /** The device as attach and detach name it, and the PCIDevice read to resolve it (null: a bare resource name, detach only). */
    public record Found(VmHostDevices.Target target, Harvester.PciDevice device) {}

    /**
     * The device from --device NAME, or --device-name RES (+ --node), or else the single hostDevices
     * entry of the patch file (bundled default, or --patch FILE), with the PCIDevice read on the way.
     * needPciDevice: attach needs the PCIDevice itself (to check and pin), so it is always there;
     * detach can work from a resource name alone.
     */
    public static Found find(KubernetesClient c, String device, String deviceName, String node, String patchFile,
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

    private static Found fromDevice(Harvester.PciDevice d) {
        if (d.resourceName() == null || d.resourceName().isBlank()) {
            throw new Cli.UserError(Cli.Exit.PRECONDITION, "PCIDevice " + d.name() + " has no status.resourceName yet — "
                    + "wait for the pcidevices controller's scan (diagnose --device " + d.name() + ")");
        }
        return new Found(new VmHostDevices.Target(d.name(), d.resourceName(), d.node()), d);
    }

    /** The PCIDevice with that resource name (preferring one named `preferred`), on `node` when given. */
    private static Found byResourceName(KubernetesClient c, String res, String node, String preferred, boolean needPciDevice) {
        var op = Harvester.pciDevices(c);
        List<Harvester.PciDevice> listed = (node != null ? op.withLabel("nodename", node).list() : op.list()).getItems().stream()
                .map(Harvester.PciDevice::of)
                .filter(d -> node == null || node.equals(d.node()))
                .toList();
        List<Harvester.PciDevice> all = listed.stream().filter(d -> res.equals(d.resourceName())).toList();
        var named = all.stream().filter(d -> d.name().equals(preferred)).findFirst();
        if (named.isPresent()) return fromDevice(named.get());
        // The named device was claimed with resource pooling off: it is that device, under its own resource name
        // (the pooled name may still belong to the same model on another node).
        var perDevice = listed.stream().filter(d -> d.name().equals(preferred) && Harvester.isPerDeviceResourceName(d.resourceName(), d.name())).findFirst();
        if (perDevice.isPresent()) return fromDevice(perDevice.get());
        if (!needPciDevice) {
            if (all.isEmpty()) requireNotUsb(c, res);
            return new Found(new VmHostDevices.Target(preferred, res, node), null);
        }
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

    private static final io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext USB_DEVICES =
            new io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext.Builder().withGroup(Harvester.GROUP).withVersion("v1beta1")
                    .withKind("USBDevice").withPlural("usbdevices").withNamespaced(false).build();

    /**
     * detach takes PCI devices only: a resource name that is a Harvester USBDevice's (the docker-host
     * VM's USB stick) is refused, never removed silently.
     */
    static void requireNotUsb(KubernetesClient c, String res) {
        List<io.fabric8.kubernetes.api.model.GenericKubernetesResource> usb;
        try {
            usb = c.genericKubernetesResources(USB_DEVICES).list().getItems();
        } catch (io.fabric8.kubernetes.client.KubernetesClientException noUsbApi) {
            if (noUsbApi.getCode() == 404) return; // no USB devices API: no USB device to protect
            throw noUsbApi;
        }
        for (var u : usb) {
            if (res.equals(u.get("status", "resourceName"))) {
                throw new Cli.UserError(Cli.Exit.USAGE, res + " is USB device " + u.getMetadata().getName()
                        + " (usbdevices." + Harvester.GROUP + "), not a PCI device — detach removes PCI devices only; "
                        + "remove a USB device in the Harvester UI (VM > Edit > USB Devices)");
            }
        }
    }

    /** The one hostDevices entry of a merge-patch file such as patches/vm-docker-host-nvidia-gpu.patch.json. */
    static Map<String, Object> patchEntry(String patchFile) {
        String source = patchFile != null ? patchFile : VmHostDevices.DEFAULT_PATCH + " (bundled)";
        String text;
        if (patchFile != null) {
            try {
                text = Files.readString(Path.of(patchFile), StandardCharsets.UTF_8);
            } catch (Exception e) {
                throw new Cli.UserError(Cli.Exit.USAGE, "cannot read --patch " + patchFile + " (" + e.getClass().getSimpleName()
                        + ") — check the path");
            }
        } else {
            text = Bundled.read(VmHostDevices.DEFAULT_PATCH);
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
}
