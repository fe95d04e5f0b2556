//SOURCES Diagnosis.java ../model/Harvester.java AgentPods.java

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;

/**
 * Claims stuck Terminating. A deleted claim keeps its finalizer wrangler.cattle.io/PCIDeviceClaimOnRemove
 * until the pcidevices agent on spec.nodeName has given the device back; agents on other nodes
 * refuse ("controller <node> cannot process claims for node <node>"). So the cause is that node's
 * agent: no pod, a pod not Ready, or (pod Ready) a claim OnRemove cannot resolve (no ownerReferences).
 */
public final class ClaimRemovalCheck {
    private ClaimRemovalCheck() {}

    public static final String CHECK = "claim-terminating";
    /** OnRemove sleeps 5 s after removing the device from its plugin; longer than this is not "in progress" any more. */
    static final Duration GRACE = Duration.ofSeconds(30);

    /**
     * One finding per claim with a deletionTimestamp (none when there are none).
     *
     * @param claims         every PCIDeviceClaim
     * @param controllerPods the harvester-pcidevices-controller pods (label app.kubernetes.io/name=harvester-pcidevices-controller)
     * @param now            the time to measure how long the claim has been Terminating
     */
    public static List<Diagnosis.Finding> terminatingClaims(List<GenericKubernetesResource> claims, List<Pod> controllerPods, Instant now) {
        List<Diagnosis.Finding> out = new ArrayList<>();
        for (GenericKubernetesResource claim : claims) {
            String deleted = claim.getMetadata().getDeletionTimestamp();
            if (deleted == null) continue;
            String name = claim.getMetadata().getName();
            Object n = claim.get("spec", "nodeName");
            String node = n == null ? null : n.toString();
            Duration age = age(deleted, now);
            String since = "Terminating since " + deleted + (age == null ? "" : " (" + age.toSeconds() + "s)")
                    + (Harvester.hasClaimFinalizer(claim) ? ", finalizer " + Harvester.CLAIM_FINALIZER + " still set" : "");
            if (!Harvester.hasClaimFinalizer(claim)) {
                List<String> others = claim.getMetadata().getFinalizers() == null ? List.of() : claim.getMetadata().getFinalizers();
                out.add(Diagnosis.Finding.fail(CHECK, name, since + "; held by other finalizers " + others + ", not the pcidevices controller's",
                        "find what owns finalizers " + others + " on pcideviceclaims.devices.harvesterhci.io/" + name));
                continue;
            }
            Pod pod = AgentPods.on(controllerPods, node);
            if (pod == null) {
                out.add(Diagnosis.Finding.fail(CHECK, name, since + "; only the pcidevices agent on node " + node
                                + " removes it and no harvester-pcidevices-controller pod runs there",
                        "bring node " + node + " back (its DaemonSet pod then releases the claim); if the add-on is disabled: " + Harvester.addonEnableCommand()));
            } else if (!AgentPods.ready(pod)) {
                out.add(Diagnosis.Finding.fail(CHECK, name, since + "; only the pcidevices agent on node " + node + " removes it and pod "
                                + pod.getMetadata().getName() + " is " + AgentPods.state(pod),
                        AgentPods.restartCommand(pod)).with(Diagnosis.restartController(pod.getMetadata().getName())));
            } else if (claim.getMetadata().getOwnerReferences() == null || claim.getMetadata().getOwnerReferences().isEmpty()) {
                // OnRemove → getPCIDeviceForClaim fails on every retry; nothing was ever bound for such a claim.
                out.add(Diagnosis.Finding.fail(CHECK, name, since + "; the claim has no ownerReferences, so the agent's OnRemove fails "
                                + "(\"Cannot find PCIDevice that owns " + name + "\") and never removes the finalizer",
                        "kubectl patch pcideviceclaims.devices.harvesterhci.io " + name + " --type merge -p '{\"metadata\":{\"finalizers\":null}}'"));
            } else if (age != null && age.compareTo(GRACE) <= 0) {
                out.add(Diagnosis.Finding.warn(CHECK, name, since + "; pod " + pod.getMetadata().getName() + " on " + node
                        + " is Ready and giving the device back", "wait a few seconds"));
            } else {
                out.add(Diagnosis.Finding.fail(CHECK, name, since + "; pod " + pod.getMetadata().getName() + " on " + node
                                + " is Ready but has not released it (see its agent log: error syncing '" + name + "')",
                        AgentPods.restartCommand(pod)).with(Diagnosis.restartController(pod.getMetadata().getName())));
            }
        }
        return out;
    }

    private static Duration age(String timestamp, Instant now) {
        try {
            return Duration.between(Instant.parse(timestamp), now);
        } catch (RuntimeException e) {
            return null;
        }
    }
}
