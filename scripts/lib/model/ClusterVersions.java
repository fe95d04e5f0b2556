//SOURCES ReleaseVersion.java Harvester.java

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/**
 * The versions that decide which upstream behaviour applies: Harvester's (setting
 * settings.harvesterhci.io/server-version, field `value`, else `default`) and KubeVirt's (the
 * KubeVirt CR's status.observedKubeVirtVersion). Either may be unknown (null): an old cluster,
 * or no permission to read it.
 */
public record ClusterVersions(ReleaseVersion harvester, ReleaseVersion kubevirt, String harvesterText, String kubevirtText) {

    /** From the server-version Setting and the KubeVirt CR, each possibly null. */
    public static ClusterVersions of(GenericKubernetesResource serverVersionSetting, GenericKubernetesResource kubevirtCr) {
        String h = null;
        if (serverVersionSetting != null) {
            Object v = serverVersionSetting.getAdditionalProperties().get("value");
            if (v == null || v.toString().isBlank()) v = serverVersionSetting.getAdditionalProperties().get("default");
            h = v == null || v.toString().isBlank() ? null : v.toString();
        }
        Object k = kubevirtCr == null ? null : kubevirtCr.get("status", "observedKubeVirtVersion");
        String kv = k == null || k.toString().isBlank() ? null : k.toString();
        return new ClusterVersions(ReleaseVersion.parse(h), ReleaseVersion.parse(kv), h, kv);
    }

    /** "Harvester v1.9.0, KubeVirt 1.8.4" with "unknown" for what is missing. */
    public String describe() {
        return "Harvester " + (harvesterText == null ? "unknown" : harvesterText) + ", KubeVirt " + (kubevirtText == null ? "unknown" : kubevirtText);
    }

    /** Whether the cluster runs Harvester v1.9 (release candidates included) or later: pooling off, bare-metal GPU label. Unknown: false. */
    public boolean atLeastV19() {
        return harvester != null && (harvester.major() > 1 || (harvester.major() == 1 && harvester.minor() >= 9));
    }
}
