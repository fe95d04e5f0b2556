import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;

/**
 * Harvester's add-on controller for Addon harvester-system/pcidevices-controller (the Helm chart
 * harvester-pcidevices-controller). Disabling it (spec.enabled=false) uninstalls the DaemonSet: the
 * controller pods go, nothing processes claims and the webhooks stop answering (failurePolicy
 * Ignore); PCIDevice objects already discovered stay, as nothing deletes them. Enabling it goes
 * AddonEnabling → pods recreated, devices (re)discovered → AddonDeploySuccessful. The state "add-on
 * not deployed" is the fault flag ADDON_DISABLED, which the other simulated parts read.
 */
final class AddonController implements AutoCloseable {
    private final SimCluster sim;
    private final KubernetesClient c;
    private final ScheduledExecutorService exec = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sim-addon-controller");
        t.setDaemon(true);
        return t;
    });
    /** The PCIDevices the nodes hold (the seeded ones): what discovery finds once the add-on runs. */
    private final List<GenericKubernetesResource> hardware = new ArrayList<>();
    private volatile Instant enablingSince;
    /** Whether this controller has put the cluster into the ADDON_DISABLED state (else the fault was just switched on). */
    private volatile boolean disabled;
    private final SimCluster.TickGate gate;
    /** Set by a tick that waits for controllerDelay to pass (AddonEnabling), or that failed. */
    private boolean again;

    static AddonController start(SimCluster sim) {
        return new AddonController(sim);
    }

    private AddonController(SimCluster sim) {
        this.sim = sim;
        this.c = sim.admin();
        for (GenericKubernetesResource d : Harvester.pciDevices(c).list().getItems()) hardware.add(discovered(d));
        this.gate = sim.tickGate();
        exec.scheduleWithFixedDelay(this::gatedTick, 0, 50, TimeUnit.MILLISECONDS);
    }

    private static GenericKubernetesResource discovered(GenericKubernetesResource d) {
        GenericKubernetesResource copy = new GenericKubernetesResource();
        copy.setApiVersion(d.getApiVersion());
        copy.setKind(d.getKind());
        copy.setMetadata(new ObjectMetaBuilder().withName(d.getMetadata().getName())
                .withLabels(d.getMetadata().getLabels()).withAnnotations(d.getMetadata().getAnnotations()).build());
        copy.setAdditionalProperty("spec", Map.of());
        copy.setAdditionalProperty("status", Serialization.clone(new LinkedHashMap<>(d.<Map<String, Object>>get("status"))));
        return copy;
    }

    /** A tick, skipped while nothing changed (see {@link SimCluster.TickGate}). */
    private void gatedTick() {
        if (gate.skip()) return;
        Object before = sim.changeKey();
        List<Object> memory = java.util.Arrays.asList(enablingSince, disabled);
        again = false;
        tick();
        gate.ran(before, !memory.equals(java.util.Arrays.asList(enablingSince, disabled)), again);
    }

    private void tick() {
        try {
            GenericKubernetesResource addon = addon();
            if (addon == null) return;
            if (sim.fault(Fault.ADDON_DISABLED) && !disabled) {
                disable(true); // the fault, switched on: a fresh install, where the add-on was never enabled
                return;
            }
            boolean enabled = Boolean.TRUE.equals(addon.get("spec", "enabled"));
            String status = String.valueOf((Object) addon.get("status", "status"));
            if (!enabled) {
                if (!sim.fault(Fault.ADDON_DISABLED)) disable(false); // a client disabled the deployed add-on
                return;
            }
            if (!sim.fault(Fault.ADDON_DISABLED)) return; // deployed
            if (!Harvester.ADDON_ENABLING.equals(status)) {
                enablingSince = Instant.now();
                setStatus(Harvester.ADDON_ENABLING);
                return;
            }
            if (Instant.now().isAfter(enablingSince.plus(sim.options().controllerDelay))) {
                sim.faults().remove(Fault.ADDON_DISABLED); // ControllerPods recreates the DaemonSet's pods
                disabled = false;
                for (GenericKubernetesResource d : hardware) {
                    if (Harvester.pciDevices(c).withName(d.getMetadata().getName()).get() == null) sim.create(Serialization.clone(d));
                }
                setStatus(Harvester.ADDON_DEPLOYED);
            } else {
                again = true;
            }
        } catch (RuntimeException e) {
            // the server is shutting down, or the add-on changed under us: next tick
            again = true;
        }
    }

    /**
     * The add-on is not deployed: no pods. A fresh install (never enabled) has no PCIDevices either;
     * disabling a deployed add-on leaves the discovered ones.
     */
    private void disable(boolean freshInstall) {
        disabled = true;
        sim.faults().add(Fault.ADDON_DISABLED);
        GenericKubernetesResource addon = addon();
        if (addon != null && !Boolean.FALSE.equals(addon.get("spec", "enabled"))) {
            Harvester.addons(c).withName(Harvester.ADDON_NAME).edit(a -> {
                a.<Map<String, Object>>get("spec").put("enabled", false);
                return a;
            });
        }
        setStatus(Harvester.ADDON_DISABLING);
        String[] kv = Harvester.CONTROLLER_POD_SELECTOR.split("=", 2);
        c.pods().inNamespace(Harvester.CONTROLLER_NAMESPACE).withLabel(kv[0], kv[1]).delete();
        if (freshInstall) Harvester.pciDevices(c).delete();
        setStatus(Harvester.ADDON_DISABLED);
    }

    private GenericKubernetesResource addon() {
        return Harvester.addons(c).withName(Harvester.ADDON_NAME).get();
    }

    @SuppressWarnings("unchecked")
    private void setStatus(String value) {
        Harvester.addons(c).withName(Harvester.ADDON_NAME).editStatus(a -> {
            Map<String, Object> s = (Map<String, Object>) a.getAdditionalProperties().computeIfAbsent("status", k -> new LinkedHashMap<>());
            s.put("status", value);
            return a;
        });
    }

    @Override
    public void close() {
        exec.shutdownNow();
    }
}
