import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Names that cannot be Kubernetes names: exit 2 naming the RFC 1123 rule, before any request (issue 13 item 10). */
class NamesTest {
    static final List<String> BAD = List.of("docker host", "docker%2Fhost", "default/docker-host", "Docker-Host", "x".repeat(254), "gpu-", "gpu.");

    SimCluster sim;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    /** Each command with a bad name in each of its name slots. */
    record Case(Supplier<Object> command, List<String> args) {}

    static List<Case> cases(String bad) {
        List<Case> all = new ArrayList<>();
        all.add(new Case(attach::new, List.of(bad, "--device", Seed.GPU)));
        all.add(new Case(attach::new, List.of("docker-host", "--device", bad)));
        all.add(new Case(attach::new, List.of("docker-host", "--device-name", Seed.GPU_RES, "--node", bad)));
        all.add(new Case(detach::new, List.of(bad, "--device", Seed.GPU)));
        all.add(new Case(detach::new, List.of("docker-host", "--device", bad)));
        all.add(new Case(claim::new, List.of(bad)));
        all.add(new Case(claim::new, List.of("--node", bad, "--address", "000c:01:00.0")));
        all.add(new Case(diagnose::new, List.of(bad)));
        all.add(new Case(diagnose::new, List.of("--device", bad)));
        all.add(new Case(diagnose::new, List.of("--node", bad)));
        all.add(new Case(verify::new, List.of(bad)));
        all.add(new Case(inventory::new, List.of("--node", bad)));
        return all;
    }

    @Test
    void badNamesAreUsageErrorsNamingTheRuleBeforeAnyRequest() {
        for (String bad : BAD) {
            for (Case c : cases(bad)) {
                sim.clearClientRequests();
                Run.Result r = Run.against(sim, c.command().get(), c.args().toArray(new String[0]));
                String what = c.command().get().getClass().getSimpleName() + " " + c.args() + ": ";
                assertEquals(Cli.Exit.USAGE.code, r.exit(), what + r.all());
                assertTrue(r.err().contains("RFC 1123"), what + r.all());
                assertTrue(r.err().contains("not found, and no such object can exist"), what + r.all());
                assertEquals(1, r.err().strip().lines().count(), what + "one line: " + r.all());
                assertEquals(List.of(), sim.clientRequests(), what + "no request: " + r.all());
            }
        }
    }

    @Test
    void badNamespacesAreUsageErrorsBeforeAnyRequest() {
        for (String bad : List.of("my ns", "My-Ns", "a.b", "n".repeat(64))) {
            for (Supplier<Object> cmd : List.<Supplier<Object>>of(attach::new, detach::new, diagnose::new, verify::new)) {
                sim.clearClientRequests();
                List<String> args = new ArrayList<>(List.of("docker-host", "-n", bad));
                if (!(cmd.get() instanceof diagnose) && !(cmd.get() instanceof verify)) args.addAll(List.of("--device", Seed.GPU));
                Run.Result r = Run.against(sim, cmd.get(), args.toArray(new String[0]));
                assertEquals(Cli.Exit.USAGE.code, r.exit(), args + r.all());
                assertTrue(r.err().contains("RFC 1123 label"), args + r.all());
                assertEquals(List.of(), sim.clientRequests(), args + r.all());
            }
        }
    }

    @Test
    void aPciAddressWithNodeIsStillADeviceForDiagnose() {
        Run.Result r = Run.against(sim, new diagnose(), "--device", "000c:01:00.0", "--node", "altra", "-o", "json");
        assertTrue(r.exit() != Cli.Exit.USAGE.code, r.all());
    }

    @Test
    void aNamespaceThatDoesNotExistIsSaidSo() {
        for (String ns : List.of("default", "harvester-system")) {
            if (sim.admin().namespaces().withName(ns).get() != null) continue; // the simulator may already serve it
            sim.admin().namespaces().resource(new io.fabric8.kubernetes.api.model.NamespaceBuilder().withNewMetadata().withName(ns).endMetadata().build()).create();
        }
        Run.Result r = Run.against(sim, new detach(), "docker-host", "-n", "other", "--device", Seed.GPU);
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        assertTrue(r.err().contains("namespace \"other\" does not exist"), r.all());
        Run.Result vm = Run.against(sim, new detach(), "no-such-vm", "--device", Seed.GPU);
        assertEquals(Cli.Exit.NOT_FOUND.code, vm.exit(), vm.all());
        assertTrue(vm.err().contains("virtualmachine \"no-such-vm\" not found in namespace \"default\""), vm.all());
    }
}
