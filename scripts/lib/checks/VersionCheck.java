//SOURCES Diagnosis.java ../model/ClusterVersions.java

/**
 * The versions diagnose reports (Harvester's server-version, KubeVirt's observedKubeVirtVersion) and
 * the advice that depends on them.
 */
public final class VersionCheck {
    private VersionCheck() {}

    public static final String CHECK = "versions";
    public static final String HOTPLUG_CHECK = "hotplug-volume-gpu";

    /** PASS with both versions; WARN when one is unknown (version-bound advice then stays generic). */
    public static Diagnosis.Finding versions(ClusterVersions v) {
        if (v.harvester() == null || v.kubevirt() == null) {
            return Diagnosis.Finding.warn(CHECK, "cluster", v.describe() + ": advice that depends on the version is generic",
                    "allow reading settings.harvesterhci.io/server-version and kubevirts.kubevirt.io harvester-system/kubevirt");
        }
        return Diagnosis.Finding.pass(CHECK, "cluster", v.describe());
    }

    /**
     * The fix for a GPU VM that fails to start with a hot-plugged volume ("pci backend driver type
     * 'default' is not supported", kubevirt#17124, harvester#10029/#11029): kubevirt PR #17527, in
     * KubeVirt 1.6.6 / 1.7.4 / 1.8.3 / 1.9.0, i.e. Harvester v1.7.2+, v1.8.2+ and v1.9.0.
     *
     * @param v        the cluster's versions
     * @param vmRef    namespace/name of the VM
     * @param evidence the failure seen (message)
     */
    public static Diagnosis.Finding hotplugVolumeGpu(ClusterVersions v, String vmRef, String evidence) {
        String upgrade = upgradeFor(v);
        String removeVolume = "or unplug the hot-plugged volume(s) before starting the VM (virtctl removevolume " + vmRef.substring(vmRef.indexOf('/') + 1)
                + " -n " + vmRef.substring(0, vmRef.indexOf('/')) + " --volume-name=NAME)";
        if (upgrade == null) {
            if (v.harvester() == null) {
                return Diagnosis.Finding.fail(HOTPLUG_CHECK, vmRef, evidence + " (Harvester version unknown; fixed in v1.7.2, v1.8.2 and v1.9.0)",
                        "upgrade to Harvester v1.8.2 or later " + removeVolume);
            }
            return Diagnosis.Finding.fail(HOTPLUG_CHECK, vmRef, evidence + " (" + v.describe() + " already carries the fix of kubevirt#17124: "
                    + "the cause is elsewhere)", "unplug the hot-plugged volume(s) to confirm, and read the virt-launcher log");
        }
        return Diagnosis.Finding.fail(HOTPLUG_CHECK, vmRef, evidence + " (" + v.describe() + ": the known KubeVirt bug kubevirt#17124 with "
                + "hot-plugged volumes, fixed in " + upgrade + ")", "upgrade to Harvester " + upgrade + " " + removeVolume);
    }

    /** The first fixed Harvester release for the cluster's line, or null when it has the fix (or is unknown). */
    static String upgradeFor(ClusterVersions v) {
        ReleaseVersion h = v.harvester();
        if (h == null) return null;
        if (h.major() == 1 && h.minor() < 7) return "v1.7.2 or later";
        if (h.inLine(1, 7) && !h.atLeast(1, 7, 2)) return "v1.7.2 or later";
        if (h.inLine(1, 8) && !h.atLeast(1, 8, 2)) return "v1.8.2 or later";
        return null;
    }
}
