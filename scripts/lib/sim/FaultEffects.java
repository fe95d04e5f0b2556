import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * Faults that are cluster state rather than controller behaviour: applied once when switched on
 * (from the start or later), some undone when switched off. ADDON_DISABLED is AddonController's.
 */
final class FaultEffects implements AutoCloseable {
    /** What Harvester v1.9.0-rc4 reports (the release with harvester#11360). */
    static final String RC4 = "v1.9.0-rc4";

    private final SimCluster sim;
    private final KubernetesClient c;
    private final Set<Fault> applied = EnumSet.noneOf(Fault.class);
    private final ScheduledExecutorService exec = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sim-fault-effects");
        t.setDaemon(true);
        return t;
    });

    static FaultEffects start(SimCluster sim) {
        return new FaultEffects(sim);
    }

    private FaultEffects(SimCluster sim) {
        this.sim = sim;
        this.c = sim.admin();
        exec.scheduleWithFixedDelay(this::tick, 0, 50, TimeUnit.MILLISECONDS);
    }

    private void tick() {
        for (Fault f : List.of(Fault.BAREMETAL_GPU_NODE, Fault.DUPLICATE_PERMITTED, Fault.ADDON_NO_DEVICES)) {
            try {
                boolean on = sim.fault(f);
                if (on && !applied.contains(f)) {
                    apply(f);
                    applied.add(f);
                } else if (!on && applied.remove(f)) {
                    undo(f);
                }
            } catch (RuntimeException e) {
                // the server is shutting down: nothing to apply
            }
        }
    }

    private void apply(Fault f) {
        switch (f) {
            case BAREMETAL_GPU_NODE -> label(Fault.NODE, "true");
            case DUPLICATE_PERMITTED -> duplicatePermitted();
            case ADDON_NO_DEVICES -> {
                // The add-on and its pods are fine; the node reconcile loops on nil vs [] gpuAddresses and never creates devices.
                Harvester.pciDevices(c).delete();
                Harvester.settings(c).withName(Harvester.SERVER_VERSION_SETTING).edit(s -> {
                    s.setAdditionalProperty("value", RC4);
                    return s;
                });
                Harvester.addons(c).withName(Harvester.ADDON_NAME).edit(a -> {
                    a.<Map<String, Object>>get("spec").put("version", RC4.substring(1));
                    return a;
                });
            }
            default -> { }
        }
    }

    private void undo(Fault f) {
        if (f == Fault.BAREMETAL_GPU_NODE) label(Fault.NODE, null);
    }

    private void label(String node, String value) {
        c.nodes().withName(node).edit(n -> {
            Map<String, String> labels = n.getMetadata().getLabels() == null ? new LinkedHashMap<>() : new LinkedHashMap<>(n.getMetadata().getLabels());
            if (value == null) labels.remove(Harvester.BAREMETAL_GPU_LABEL);
            else labels.put(Harvester.BAREMETAL_GPU_LABEL, value);
            n.getMetadata().setLabels(labels);
            return n;
        });
    }

    /** Every entry already in permittedHostDevices.pciHostDevices listed twice (later ones: the claim controller). */
    @SuppressWarnings("unchecked")
    private void duplicatePermitted() {
        KubeVirt.kubevirts(c).inNamespace(Harvester.KUBEVIRT_NAMESPACE).withName(Harvester.KUBEVIRT_NAME).edit(kv -> {
            Object l = kv.get("spec", "configuration", "permittedHostDevices", "pciHostDevices");
            if (!(l instanceof List<?> list) || list.isEmpty()) return kv;
            List<Object> doubled = new ArrayList<>();
            for (Object o : list) {
                doubled.add(o);
                doubled.add(new LinkedHashMap<>((Map<String, Object>) o));
            }
            kv.<Map<String, Object>>get("spec", "configuration", "permittedHostDevices").put("pciHostDevices", doubled);
            return kv;
        });
    }

    @Override
    public void close() {
        exec.shutdownNow();
    }
}
