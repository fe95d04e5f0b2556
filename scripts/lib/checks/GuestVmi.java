//SOURCES ../cli/Cli.java ../model/Harvester.java ../model/KubeVirt.java

import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * What verify requires of the cluster before it SSHes into the guest: the VM's instance is
 * Running, and has PCI hostDevices whose vendor:device ids the guest should show (GuestLspci.java).
 */
public final class GuestVmi {
    private GuestVmi() {}

    /** A hostDevice of the VMI that is a Harvester PCIDevice, with the id the guest should show. */
    public record Expected(String name, String resourceName, String vendorDevice, String pciDevice, Harvester.PciDevice device) {}

    /** The VM's running instance; an unknown VM is NOT_FOUND, one without a Running VMI is VM_NOT_RUNNING. */
    public static GenericKubernetesResource running(KubernetesClient client, String ns, String vmName) {
        GenericKubernetesResource vmi = KubeVirt.vmis(client).inNamespace(ns).withName(vmName).get();
        if (vmi == null) {
            KubeVirt.vm(client, ns, vmName); // an unknown VM is NOT_FOUND, not "not running"
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VM " + ns + "/" + vmName + " has no running instance (no VMI)"
                    + " — start it (virtctl start " + vmName + ") and wait for it to be Running, then verify again");
        }
        String phase = Harvester.str(vmi, "status", "phase");
        if (!"Running".equals(phase)) {
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VMI " + ns + "/" + vmName + " is " + (phase == null ? "without a phase" : phase)
                    + ", not Running — wait for it (kubectl get vmi " + vmName + " -n " + ns + " -w), or run: diagnose " + vmName);
        }
        return vmi;
    }

    /**
     * The VMI's hostDevices (and gpus) that are PCIDevices on its node, narrowed to the entry named
     * {@code device} and to the resource {@code deviceName} (null: any). A narrowed-to entry that is
     * not a PCIDevice is a usage error; unnarrowed, such entries (e.g. USB devices) are skipped. None
     * at all is a VM_NOT_RUNNING error, unless --any-nvidia without a narrowing says any will do.
     */
    public static List<Expected> expected(GenericKubernetesResource vmi, List<Harvester.PciDevice> pci,
                                          String device, String deviceName, boolean anyNvidia) {
        String node = Harvester.str(vmi, "status", "nodeName");
        List<Expected> expected = new ArrayList<>();
        for (KubeVirt.HostDevice hd : KubeVirt.entries(vmi)) {
            if (device != null && !device.equals(hd.name())) continue;
            if (deviceName != null && !deviceName.equals(hd.deviceName())) continue;
            Harvester.PciDevice d = KubeVirt.pciDeviceFor(hd, pci, node).orElse(null);
            if (d == null) {
                if (device != null || deviceName != null) {
                    throw new Cli.UserError(Cli.Exit.USAGE, "hostDevice " + hd.name() + " (" + hd.deviceName()
                            + ") is not a PCI device Harvester knows (no PCIDevice with that resource) — verify checks PCI devices only");
                }
                continue; // e.g. a USB device: not something lspci shows
            }
            expected.add(new Expected(hd.name(), hd.deviceName(), d.vendorDevice(), d.name(), d));
        }
        if (expected.isEmpty() && !(anyNvidia && device == null && deviceName == null)) {
            String which = device != null ? "hostDevice named " + device : deviceName != null ? "hostDevice with resource " + deviceName : "PCI hostDevice";
            List<String> present = KubeVirt.entries(vmi).stream().map(hd -> hd.name() + " (" + hd.deviceName() + ")").toList();
            throw new Cli.UserError(Cli.Exit.VM_NOT_RUNNING, "VMI " + KubeVirt.ref(vmi) + " is Running without a " + which
                    + " (it has: " + (present.isEmpty() ? "none" : String.join(", ", present)) + ")"
                    + " — attach the device and restart the VM first: attach " + vmi.getMetadata().getName());
        }
        return expected;
    }
}
