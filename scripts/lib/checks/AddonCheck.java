//SOURCES Diagnosis.java ../model/Harvester.java ../model/ClusterVersions.java AgentPods.java

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;

/**
 * The pcidevices-controller add-on (Addon harvester-system/pcidevices-controller): Harvester
 * installs it disabled; "enabled" means spec.enabled and status.status AddonDeploySuccessful. Once
 * it runs, each node's agent creates PCIDevice objects within a discovery period (30 s). Zero after
 * minutes is the v1.9.0-rc4 regression harvester#11360 (the node reconcile looped on nil vs []
 * gpuAddresses), fixed by pcidevices PR #313 in the v1.9 line before GA.
 */
public final class AddonCheck {
    private AddonCheck() {}

    public static final String CHECK = "addon";
    public static final String NO_DEVICES_CHECK = "addon-no-devices";
    /** Several discovery periods (30 s each, pkg/controller/nodes): "after minutes". */
    static final Duration DISCOVERY_DEADLINE = Duration.ofMinutes(3);

    /**
     * @param addon          the Addon harvester-system/pcidevices-controller, or null if absent
     * @param pciDevices     every PCIDevice
     * @param controllerPods the controller pods
     * @param versions       the cluster's versions (for naming the regression)
     * @param now            the time to measure how long the pods have been running
     */
    public static List<Diagnosis.Finding> addon(GenericKubernetesResource addon, List<GenericKubernetesResource> pciDevices,
                                                List<Pod> controllerPods, ClusterVersions versions, Instant now) {
        String subject = Harvester.ADDON_NAMESPACE + "/" + Harvester.ADDON_NAME;
        List<Diagnosis.Finding> out = new ArrayList<>();
        if (addon == null) {
            if (controllerPods.isEmpty()) {
                out.add(Diagnosis.Finding.fail(CHECK, subject, "no Addon " + subject + " and no controller pods: PCI passthrough needs the pcidevices-controller add-on",
                        "enable the add-on (Harvester UI: Advanced → Add-ons → pcidevices-controller)"));
            } else {
                out.add(Diagnosis.Finding.warn(CHECK, subject, "no Addon " + subject + ", but " + controllerPods.size() + " controller pod(s) run",
                        "nothing to do if the controller was deployed another way"));
            }
            return out;
        }
        boolean enabled = Boolean.TRUE.equals(addon.get("spec", "enabled"));
        Object s = addon.get("status", "status");
        String status = s == null ? "" : s.toString();
        String state = "spec.enabled=" + enabled + ", status.status=" + (status.isEmpty() ? "<none>" : status);
        if (!enabled) {
            out.add(Diagnosis.Finding.fail(CHECK, subject, state + ": the add-on is disabled (Harvester installs it disabled), so there are no "
                    + "controller pods, no PCIDevices and no claim processing", Harvester.addonEnableCommand()));
            return out;
        }
        if (status.isEmpty() || Harvester.ADDON_ENABLING.equals(status) || Harvester.ADDON_UPDATING.equals(status)) {
            out.add(Diagnosis.Finding.warn(CHECK, subject, state + ": the add-on is being deployed",
                    "wait, then check: kubectl -n " + Harvester.ADDON_NAMESPACE + " get addons.harvesterhci.io " + Harvester.ADDON_NAME
                            + " -o jsonpath='{.status.status}'   (expect " + Harvester.ADDON_DEPLOYED + ")"));
            return out;
        }
        if (!Harvester.ADDON_DEPLOYED.equals(status)) {
            out.add(Diagnosis.Finding.fail(CHECK, subject, state + ": not deployed",
                    "kubectl -n " + Harvester.ADDON_NAMESPACE + " describe addons.harvesterhci.io " + Harvester.ADDON_NAME));
            return out;
        }
        out.add(Diagnosis.Finding.pass(CHECK, subject, state + ", " + pciDevices.size() + " PCIDevice(s)"));
        if (!pciDevices.isEmpty()) return out;
        Instant since = runningSince(controllerPods);
        if (since == null) return out; // no Ready pod: the controller-pod check says why
        Duration running = Duration.between(since, now);
        if (running.compareTo(DISCOVERY_DEADLINE) < 0) {
            out.add(Diagnosis.Finding.warn(NO_DEVICES_CHECK, subject, "no PCIDevice objects yet; the controller pods run for "
                    + running.toSeconds() + "s and discover devices every 30 s", "wait a minute and look again: kubectl get pcidevices"));
            return out;
        }
        String evidence = "the add-on is deployed and its pods have run for " + running.toMinutes() + " min, yet no PCIDevice objects exist ("
                + versions.describe() + ")";
        boolean v19PreRelease = versions.harvester() != null && versions.harvester().inLine(1, 9) && versions.harvester().isPreRelease();
        if (versions.harvester() == null || v19PreRelease) {
            out.add(Diagnosis.Finding.fail(NO_DEVICES_CHECK, subject, evidence + ": the v1.9.0-rc4 regression harvester#11360 "
                    + "(\"pcidevices are not created\"), fixed by harvester/pcidevices PR #313", "upgrade to Harvester v1.9.0 or later"));
        } else {
            out.add(Diagnosis.Finding.fail(NO_DEVICES_CHECK, subject, evidence + " (harvester#11360 was a v1.9.0-rc4 regression; this version should not have it)",
                    "read the agent log: kubectl -n " + Harvester.CONTROLLER_NAMESPACE + " logs -l " + Harvester.CONTROLLER_POD_SELECTOR + " -c agent --tail=200"));
        }
        return out;
    }

    /** When the earliest Ready controller pod's agent container started, or null. */
    static Instant runningSince(List<Pod> pods) {
        Instant since = null;
        for (Pod p : pods) {
            if (!AgentPods.ready(p) || p.getStatus().getContainerStatuses() == null) continue;
            for (ContainerStatus c : p.getStatus().getContainerStatuses()) {
                if (c.getState() == null || c.getState().getRunning() == null || c.getState().getRunning().getStartedAt() == null) continue;
                try {
                    Instant t = Instant.parse(c.getState().getRunning().getStartedAt());
                    if (since == null || t.isBefore(since)) since = t;
                } catch (RuntimeException ignored) {
                    // an unparseable time: not evidence either way
                }
            }
        }
        return since;
    }
}
