//SOURCES Diagnosis.java ../model/Harvester.java

import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.OwnerReference;

/**
 * Claims written from public guides (e.g. name "gpu-claim", address "01:00.0", no ownerReferences)
 * cannot work: the controller finds a claim's device only through ownerReferences[0] ("Cannot find
 * PCIDevice that owns ..."), the webhook wants the claim named like its PCIDevice, and the address
 * must be the full domain:bus:device.function. The fix is a claim made the way the UI makes it.
 */
public final class GuideClaimCheck {
    private GuideClaimCheck() {}

    public static final String CHECK = "claim-shape";

    /**
     * A FAIL per claim that is not shaped like a UI claim (none for good claims).
     *
     * @param claims     every PCIDeviceClaim
     * @param pciDevices every PCIDevice
     */
    public static List<Diagnosis.Finding> guideClaims(List<GenericKubernetesResource> claims, List<GenericKubernetesResource> pciDevices) {
        List<Harvester.PciDevice> devices = pciDevices.stream().map(Harvester.PciDevice::of).toList();
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (GenericKubernetesResource r : claims) {
            Harvester.PciDeviceClaim claim = Harvester.PciDeviceClaim.of(r);
            List<String> wrong = new ArrayList<>();
            boolean named = devices.stream().anyMatch(d -> d.name().equals(claim.name()));
            if (!named) wrong.add("no PCIDevice is named " + claim.name() + " (a claim must carry its PCIDevice's name)");
            if (!Harvester.isValidAddress(claim.address())) {
                wrong.add("spec.address \"" + claim.address() + "\" is not a full domain:bus:device.function address");
            }
            List<OwnerReference> owners = claim.owners();
            if (owners.isEmpty() || !"PCIDevice".equals(owners.get(0).getKind())) {
                wrong.add("no ownerReference to its PCIDevice (the controller logs \"Cannot find PCIDevice that owns " + claim.name() + "\")");
            }
            if (wrong.isEmpty()) continue;
            Harvester.PciDevice device = deviceFor(claim, devices);
            String fix = device == null
                    ? "find the device with: inventory" + (claim.node() == null ? "" : " --node " + claim.node()) + ", then: claim --force DEVICE"
                    : "claim --force " + device.name();
            out.add(Diagnosis.Finding.fail(CHECK, claim.name(), "claim " + claim.name() + " looks written from a public guide: "
                    + String.join("; ", wrong) + (device == null ? "" : " — it means PCIDevice " + device.name()), fix));
        }
        return out;
    }

    /** The PCIDevice a claim means: its name, else its node and (possibly short) address. */
    static Harvester.PciDevice deviceFor(Harvester.PciDeviceClaim claim, List<Harvester.PciDevice> devices) {
        for (Harvester.PciDevice d : devices) if (d.name().equals(claim.name())) return d;
        if (claim.address() == null || claim.address().isBlank()) return null;
        String address = claim.address().trim().toLowerCase(java.util.Locale.ROOT);
        List<Harvester.PciDevice> matches = devices.stream()
                .filter(d -> claim.node() == null || claim.node().equals(d.node()))
                .filter(d -> d.address() != null && (d.address().equals(address) || d.address().endsWith(":" + address)))
                .toList();
        return matches.size() == 1 ? matches.get(0) : null;
    }
}
