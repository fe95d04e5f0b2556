//SOURCES ../cli/Cli.java ../model/Harvester.java ../model/KubeVirt.java Diagnosis.java ControllerHealth.java ../model/ClusterVersions.java
//SOURCES ClaimRemovalCheck.java GuideClaimCheck.java PoolingCheck.java BaremetalCheck.java PermittedCheck.java AddonCheck.java
//SOURCES AllocationCheck.java VersionCheck.java

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;

/**
 * diagnose's checks for what Harvester v1.7–v1.9 changed (versions, the add-on, the claim
 * finalizer, guide-written claims, resource pooling off, bare-metal GPU nodes, duplicate
 * permittedHostDevices, stale deviceAllocationDetails), run on one read of the cluster, and the
 * rules that keep each finding once when an older check sees the same cause.
 */
public final class ReleaseChecks {
    private ReleaseChecks() {}

    /** What these checks look at; any of it may be missing (null / empty) on an older or restricted cluster. */
    public record Cluster(ClusterVersions versions, GenericKubernetesResource addon, GenericKubernetesResource kubevirt,
                          List<GenericKubernetesResource> claims, List<GenericKubernetesResource> pciDevices, List<Node> nodes,
                          List<Pod> controllerPods) {}

    /** Seven requests whatever the cluster's size: the server-version Setting, the KubeVirt CR, the Addon, claims, PCIDevices, nodes, controller pods. */
    public static Cluster read(KubernetesClient c) {
        GenericKubernetesResource setting = orNull(() -> Harvester.settings(c).withName(Harvester.SERVER_VERSION_SETTING).get());
        GenericKubernetesResource kubevirt = orNull(() -> KubeVirt.kubevirts(c).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME).get());
        GenericKubernetesResource addon = orNull(() -> Harvester.addons(c).withName(Harvester.ADDON_NAME).get());
        List<GenericKubernetesResource> claims = orEmpty(() -> Harvester.pciDeviceClaims(c).list().getItems());
        List<GenericKubernetesResource> devices = orEmpty(() -> Harvester.pciDevices(c).list().getItems());
        List<Node> nodes = c.nodes().list().getItems();
        List<Pod> pods = ControllerHealth.pods(c);
        return new Cluster(ClusterVersions.of(setting, kubevirt), addon, kubevirt, claims, devices, nodes, pods);
    }

    /** The versions finding (first: diagnose prints it as its header) and the add-on's. */
    public static List<Diagnosis.Finding> cluster(Cluster s, Instant now) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        out.add(VersionCheck.versions(s.versions()));
        out.addAll(AddonCheck.addon(s.addon(), s.pciDevices(), s.controllerPods(), s.versions(), now));
        return out;
    }

    /**
     * Claims (Terminating, guide-written, pooling), the wanted devices' nodes (bare-metal GPU label),
     * the KubeVirt CR (duplicates only: a missing entry is Passthrough's "permitted" check) and the
     * VMs' allocation annotations (the device the next start really gets).
     *
     * @param wanted the devices diagnose looks at
     * @param vms    the VMs to judge: the one asked about, or those whose annotation lists a wanted device
     */
    public static List<Diagnosis.Finding> claimsAndDevices(Cluster s, List<Harvester.PciDevice> wanted, List<GenericKubernetesResource> vms, Instant now) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        out.addAll(ClaimRemovalCheck.terminatingClaims(s.claims(), s.controllerPods(), now));
        out.addAll(GuideClaimCheck.guideClaims(s.claims(), s.pciDevices()));
        out.addAll(PoolingCheck.pooling(s.claims(), s.pciDevices(), vms));
        out.addAll(BaremetalCheck.baremetalNodes(s.nodes(), s.pciDevices(), wanted.stream().map(Harvester.PciDevice::name).toList()));
        if (s.kubevirt() != null) out.addAll(PermittedCheck.permitted(s.kubevirt(), List.of(), s.controllerPods()));
        for (GenericKubernetesResource vm : vms) {
            // Only the wrong-device case: an annotation for a resource the spec no longer has is VmChecks' stale-allocation.
            AllocationCheck.staleAllocation(vm, s.pciDevices()).stream().filter(f -> f.status() == Diagnosis.Status.FAIL).forEach(out::add);
        }
        return out;
    }

    /** The VMs whose deviceAllocationDetails lists one of the devices (for a diagnosis without a VM). */
    public static List<GenericKubernetesResource> allocatedTo(List<GenericKubernetesResource> vms, List<Harvester.PciDevice> devices) {
        Set<String> names = new HashSet<>();
        devices.forEach(d -> names.add(d.name()));
        return vms.stream().filter(vm -> KubeVirt.allocatedDevices(vm).values().stream().flatMap(List::stream).anyMatch(names::contains)).toList();
    }

    /**
     * Each cause once, with the advice of the cluster's version:
     * <ul>
     * <li>add-on disabled, deploying or not discovering: "no controller pods", "no pcidevices API" and "no devices to look at" are its consequences;
     *     no pcidevices API at all: then "no PCIDevices" is that, not the rc4 regression;</li>
     * <li>a guide-written claim (wrong name, short address): its owner-reference and claim-address findings are part of claim-shape's
     *     evidence; a claim that only lacks its ownerReference is the owner-reference check's (when its device is looked at);</li>
     * <li>a per-device resource name with a ".": the node-name dotted-name warning says less;</li>
     * <li>a bare-metal GPU node: claiming the GPU (the fix of claimed/permitted/allocatable) is denied there, so those take its fix,
     *     and neither the claim nor the attach that needs it is a remedy --fix may try;</li>
     * <li>hot-pluggable volumes with host devices (kubevirt#17124): the upgrade is the fix below Harvester v1.7.2 / v1.8.2,
     *     nothing to do from there on; an actual start failure replaces the warning about the spec.</li>
     * </ul>
     */
    public static List<Diagnosis.Finding> reconcile(List<Diagnosis.Finding> findings, Cluster cluster) {
        ClusterVersions versions = cluster.versions();
        boolean apiMissing = findings.stream().anyMatch(f -> f.check().equals("pcidevices-api"));
        boolean addonDown = findings.stream().anyMatch(f -> f.check().equals(AddonCheck.CHECK) && f.status() != Diagnosis.Status.PASS);
        boolean noDevices = findings.stream().anyMatch(f -> f.check().equals(AddonCheck.NO_DEVICES_CHECK) && f.status() != Diagnosis.Status.PASS);
        Set<String> guideClaims = guideWritten(subjects(findings, GuideClaimCheck.CHECK), cluster);
        boolean dottedResource = findings.stream().anyMatch(f -> f.check().equals(PoolingCheck.DOT_CHECK));
        List<Diagnosis.Finding> baremetal = findings.stream().filter(f -> f.check().equals(BaremetalCheck.CHECK)).toList();
        boolean hotplugFailed = findings.stream().anyMatch(f -> f.check().equals(HOTPLUG) && f.status() == Diagnosis.Status.FAIL);

        List<Diagnosis.Finding> out = new ArrayList<>();
        for (Diagnosis.Finding f : findings) {
            if (addonDown && f.check().equals("controller-pod") && f.subject().equals(Harvester.CONTROLLER_NAMESPACE)) continue;
            if (addonDown && f.check().equals("pcidevices-api")) continue;
            if (apiMissing && f.check().equals(AddonCheck.NO_DEVICES_CHECK)) continue;
            if ((addonDown || noDevices) && f.check().equals("pcidevice") && f.status() == Diagnosis.Status.WARN) continue;
            if (f.check().equals(GuideClaimCheck.CHECK) && !guideClaims.contains(f.subject())
                    && findings.stream().anyMatch(o -> o.check().equals("owner-reference") && o.subject().equals(f.subject()))) continue;
            if (guideClaims.contains(f.subject()) && (f.check().equals("owner-reference") || f.check().equals("claim-address"))) continue;
            if (dottedResource && f.check().equals("dotted-name") && f.status() == Diagnosis.Status.WARN && !f.subject().contains("/")) continue;
            Diagnosis.Finding denied = baremetal.stream().filter(b -> f.remedy() != null && f.remedy().kind() != Diagnosis.Remedy.Kind.RESTART_CONTROLLER
                    && b.subject().equals(f.remedy().device())).findFirst().orElse(null);
            if (denied != null) {
                // Neither claiming nor attaching (which needs the claim) can work there: --fix must not try them.
                boolean claim = f.remedy().kind() == Diagnosis.Remedy.Kind.CLAIM;
                out.add(new Diagnosis.Finding(f.check(), f.status(), f.subject(), f.evidence() + " (claims for it are denied: see "
                        + BaremetalCheck.CHECK + ")", claim ? denied.fix() : f.fix(), null));
                continue;
            }
            if (f.check().equals(HOTPLUG)) {
                Diagnosis.Finding advised = hotplugAdvice(f, versions, hotplugFailed);
                if (advised != null) out.add(advised);
                continue;
            }
            out.add(f);
        }
        return out;
    }

    /** VmChecks' check name for hot-pluggable volumes with host devices (the spec WARN and the start-failure FAIL). */
    static final String HOTPLUG = "hotplug-volume";

    private static Diagnosis.Finding hotplugAdvice(Diagnosis.Finding f, ClusterVersions v, boolean failed) {
        if (f.status() == Diagnosis.Status.FAIL) return VersionCheck.hotplugVolumeGpu(v, f.subject(), f.evidence());
        if (failed) return null; // the failure itself says it, with the version's fix
        if (v.harvester() == null) return f;
        String upgrade = VersionCheck.upgradeFor(v);
        if (upgrade == null) {
            return Diagnosis.Finding.pass(VersionCheck.HOTPLUG_CHECK, f.subject(), "hot-pluggable volume(s) with host devices: fine on "
                    + v.describe() + " (kubevirt#17124 is fixed in Harvester v1.7.2, v1.8.2 and v1.9.0)");
        }
        return Diagnosis.Finding.warn(VersionCheck.HOTPLUG_CHECK, f.subject(), f.evidence() + "; " + v.describe()
                + " has the bug (kubevirt#17124), fixed in " + upgrade, "upgrade to Harvester " + upgrade + ", or before starting: " + f.fix());
    }

    /**
     * The claims that look written from a guide (wrong name or short address), not just missing their
     * ownerReference: that alone is Passthrough's owner-reference check when the device is looked at.
     */
    private static Set<String> guideWritten(Set<String> flagged, Cluster cluster) {
        Set<String> devices = new HashSet<>();
        cluster.pciDevices().forEach(d -> devices.add(d.getMetadata().getName()));
        Set<String> out = new LinkedHashSet<>();
        for (GenericKubernetesResource r : cluster.claims()) {
            Harvester.PciDeviceClaim claim = Harvester.PciDeviceClaim.of(r);
            if (flagged.contains(claim.name()) && (!devices.contains(claim.name()) || !Harvester.isValidAddress(claim.address()))) out.add(claim.name());
        }
        return out;
    }

    private static Set<String> subjects(List<Diagnosis.Finding> findings, String check) {
        Set<String> out = new LinkedHashSet<>();
        findings.stream().filter(f -> f.check().equals(check)).forEach(f -> out.add(f.subject()));
        return out;
    }

    /** Not there, or not ours to read (403): the checks then say what is unknown. */
    private static GenericKubernetesResource orNull(Supplier<GenericKubernetesResource> get) {
        try {
            return get.get();
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404 || e.getCode() == 403) return null;
            throw e;
        }
    }

    private static List<GenericKubernetesResource> orEmpty(Supplier<List<GenericKubernetesResource>> list) {
        try {
            return list.get();
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404) return List.of();
            throw e;
        }
    }
}
