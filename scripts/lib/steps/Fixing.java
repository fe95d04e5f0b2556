//SOURCES ../cli/Cli.java ../cluster/Kube.java ../model/Harvester.java ../model/KubeVirt.java ../model/Claims.java ../checks/Diagnosis.java ../checks/ControllerHealth.java
//SOURCES ../model/VmHostDevices.java Claiming.java DeviceTarget.java Attaching.java VmDeviceChange.java

import java.io.PrintWriter;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;

/**
 * diagnose --fix: which remedies the findings offer and performing each through the library steps
 * (restart the controller pod, the claim step, attach's checks and change path), on the caller's client.
 */
public final class Fixing {
    private Fixing() {}

    /** Distinct remedies of the findings that did not pass, controller restarts first (claims need a live controller). */
    public static List<Diagnosis.Remedy> remedies(List<Diagnosis.Finding> findings) {
        Map<String, Diagnosis.Remedy> byCommand = new LinkedHashMap<>();
        for (Diagnosis.Remedy.Kind k : Diagnosis.Remedy.Kind.values()) {
            for (Diagnosis.Finding f : findings) {
                if (f.status() != Diagnosis.Status.PASS && f.remedy() != null && f.remedy().kind() == k) {
                    byCommand.putIfAbsent(f.remedy().command(), f.remedy());
                }
            }
        }
        return List.copyOf(byCommand.values());
    }

    /**
     * Why a remedy goes beyond restoring what the user already asked for (then only --fix-all runs
     * it), or null when it is safe: restarting a controller pod, and re-claiming a device group that
     * a VM references (its claim was deleted) are safe; a first claim (no VM references the group)
     * and attaching a device to a VM (a spec change that restarts a running VM) are not.
     */
    public static String beyondRestoring(KubernetesClient c, Diagnosis.Remedy r) {
        return switch (r.kind()) {
            case RESTART_CONTROLLER -> null;
            case CLAIM -> {
                List<Harvester.PciDevice> all = Harvester.pciDevices(c).list().getItems().stream().map(Harvester.PciDevice::of).toList();
                Harvester.PciDevice d = all.stream().filter(x -> x.name().equals(r.device())).findFirst().orElse(null);
                if (d == null) yield "PCIDevice " + r.device() + " not found";
                List<Harvester.PciDevice> group = all.stream().filter(x -> x.node().equals(d.node()) && d.iommuGroup() != null
                        && d.iommuGroup().equals(x.iommuGroup())).toList();
                boolean referenced = KubeVirt.vms(c).inAnyNamespace().list().getItems().stream()
                        .anyMatch(vm -> (group.isEmpty() ? List.of(d) : group).stream().anyMatch(x -> KubeVirt.uses(vm, x, all) != null));
                yield referenced ? null : "a first claim: no VM references " + r.device() + " or its IOMMU group";
            }
            case ATTACH -> {
                GenericKubernetesResource vmi = KubeVirt.vmis(c).inNamespace(r.namespace()).withName(r.subject()).get();
                yield "changes the spec of VM " + r.namespace() + "/" + r.subject()
                        + (vmi != null ? " and restarts it (it is running)" : "");
            }
        };
    }

    /** Performs one remedy, logging to stderr; a remedy failing is logged and does not stop the others. */
    public static Cli.Exit apply(KubernetesClient c, Diagnosis.Remedy r, Duration wait, PrintWriter stderr) {
        stderr.println("running: " + r.command());
        stderr.flush();
        Cli.Exit exit;
        try {
            exit = switch (r.kind()) {
                case RESTART_CONTROLLER -> restartController(c, r.subject(), wait, stderr);
                case CLAIM -> claim(c, r, wait, stderr);
                case ATTACH -> attach(c, r, wait, stderr);
            };
        } catch (RuntimeException e) {
            // One remedy failing does not stop the others; the check after --fix shows what is left.
            if (!(Kube.translate(e, String.valueOf(c.getMasterUrl())) instanceof Cli.UserError u)) throw e;
            stderr.println("  " + u.getMessage());
            exit = u.exit;
        }
        if (r.kind() != Diagnosis.Remedy.Kind.RESTART_CONTROLLER) stderr.println("  " + r.command() + " exited " + exit.code);
        stderr.flush();
        return exit;
    }

    /** The claim step, as `claim DEVICE` runs it: the device's whole IOMMU group, then wait until passthrough is on. */
    private static Cli.Exit claim(KubernetesClient c, Diagnosis.Remedy r, Duration wait, PrintWriter stderr) {
        Claiming step = new Claiming(c, new Claiming.Settings(false, false, false, Claims.DEFAULT_USER, wait), stderr, stderr);
        Claiming.Result result = step.claim(step.forDevice(Harvester.device(c, r.device())));
        if (result.exit() == Cli.Exit.OK) result.outcomes().forEach(o -> stderr.println(o.readyLine()));
        return result.exit();
    }

    /** attach's checks and its change path, as `attach VM --device DEVICE -n NS` runs them (restart and wait). */
    private static Cli.Exit attach(KubernetesClient c, Diagnosis.Remedy r, Duration wait, PrintWriter stderr) {
        GenericKubernetesResource vm = KubeVirt.vm(c, r.namespace(), r.subject());
        DeviceTarget.Found found = DeviceTarget.find(c, r.device(), null, null, null, true);
        var edit = Attaching.check(c, vm, found, false);
        var change = new VmDeviceChange.Request(r.namespace(), r.subject(), found.target(), VmDeviceChange.Direction.ATTACH, edit, false, false, wait);
        stderr.println(VmDeviceChange.run(c, change, vm, stderr).message());
        return Cli.Exit.OK;
    }

    /** Deletes the pod; its DaemonSet makes a new one on the same node. Waits (an informer, no polling) for that one to be Ready. */
    private static Cli.Exit restartController(KubernetesClient c, String pod, Duration wait, PrintWriter stderr) {
        var pods = c.pods().inNamespace(Harvester.CONTROLLER_NAMESPACE);
        Pod old = pods.withName(pod).get();
        if (old == null) {
            stderr.println("  pod " + pod + " is already gone");
            return Cli.Exit.OK;
        }
        String nodeName = old.getSpec().getNodeName();
        pods.withName(pod).delete();
        try {
            List<Pod> now = pods.withLabel(Harvester.CONTROLLER_POD_SELECTOR.split("=", 2)[0], Harvester.CONTROLLER_POD_SELECTOR.split("=", 2)[1])
                    .informOnCondition(l -> l.stream().anyMatch(p -> isNewReady(p, pod, nodeName)))
                    .get(wait.toMillis(), TimeUnit.MILLISECONDS);
            Pod fresh = now.stream().filter(p -> isNewReady(p, pod, nodeName)).findFirst().orElseThrow();
            stderr.println("  " + fresh.getMetadata().getName() + " is Ready on node " + nodeName);
            return Cli.Exit.OK;
        } catch (TimeoutException e) {
            stderr.println("  no new Ready controller pod on node " + nodeName + " after " + wait.toSeconds()
                    + "s — check: kubectl -n harvester-system get pods -l " + Harvester.CONTROLLER_POD_SELECTOR + " -o wide");
            return Cli.Exit.TIMEOUT;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Cli.Exit.TIMEOUT;
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        }
    }

    private static boolean isNewReady(Pod p, String oldName, String nodeName) {
        return !p.getMetadata().getName().equals(oldName) && nodeName.equals(p.getSpec().getNodeName())
                && p.getMetadata().getDeletionTimestamp() == null && ControllerHealth.ready(p);
    }
}
