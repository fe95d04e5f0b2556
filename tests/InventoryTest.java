import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class InventoryTest {
    SimCluster sim;

    @BeforeEach
    void start() {
        sim = SimCluster.start();
    }

    @AfterEach
    void stop() {
        sim.close();
    }

    static JsonNode json(String s) throws Exception {
        return Serialization.jsonMapper().readTree(s);
    }

    static JsonNode device(JsonNode report, String name) {
        for (JsonNode d : report.get("devices")) if (d.get("name").asText().equals(name)) return d;
        throw new AssertionError("no device " + name + " in " + report);
    }

    @Test
    void tableListsEveryDeviceGroupedByNodeAndIommuGroup() {
        Run.Result r = Run.against(sim, new inventory());
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.get(0).matches("NAME\\s+NODE\\s+ADDRESS\\s+ID\\s+IOMMU\\s+DRIVER\\s+CLAIM\\s+VM\\s+DESCRIPTION"), lines.get(0));
        assertEquals(10, lines.size(), r.out()); // header + 9 devices, no warnings
        String gpu = lines.stream().filter(l -> l.startsWith("altra-000c01000 ")).findFirst().orElseThrow();
        assertTrue(gpu.matches("altra-000c01000\\s+altra\\s+000c:01:00.0\\s+10de:2204\\s+18\\s+nouveau\\s+none\\s+-\\s+VGA compatible controller: NVIDIA Corporation GA102 \\[GeForce RTX 3090\\]"), gpu);
        // altra's groups in numeric order (7, 9, 10, 18, 21), then bravo's (12, 30)
        List<String> order = lines.subList(1, lines.size()).stream().map(l -> l.split("\\s+")[0]).toList();
        assertEquals(List.of("altra-000401000", "altra-000501000", "altra-000501001", "altra-000c01000", "altra-000c01001",
                "altra-000d01000", "bravo-000002000", "bravo-000041000", "bravo-000041001"), order);
    }

    @Test
    void wideAddsResourceNameAndClass() {
        Run.Result r = Run.against(sim, new inventory(), "-o", "wide", "--node", "altra");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().lines().findFirst().orElseThrow().contains("RESOURCE"), r.out());
        assertTrue(r.out().contains("nvidia.com/GA102_GEFORCE_RTX_3090"), r.out());
        assertTrue(r.out().contains("nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER"), r.out());
        assertFalse(r.out().contains("bravo"), r.out());
    }

    @Test
    void jsonOutputCarriesEveryFieldAndTheGroups() throws Exception {
        Run.Result r = Run.against(sim, new inventory(), "-o", "json");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        JsonNode report = json(r.out());
        JsonNode gpu = device(report, "altra-000c01000");
        assertEquals("000c:01:00.0", gpu.get("address").asText());
        assertEquals("10de", gpu.get("vendorId").asText());
        assertEquals("2204", gpu.get("deviceId").asText());
        assertEquals("18", gpu.get("iommuGroup").asText());
        assertEquals("nvidia.com/GA102_GEFORCE_RTX_3090", gpu.get("resourceName").asText());
        assertEquals("nouveau", gpu.get("kernelDriverInUse").asText());
        assertEquals("none", gpu.get("claim").asText());
        assertEquals(9, report.get("devices").size());
        JsonNode group18 = null;
        for (JsonNode g : report.get("iommuGroups")) {
            if (g.get("node").asText().equals("altra") && g.get("iommuGroup").asText().equals("18")) group18 = g;
        }
        assertEquals(List.of("altra-000c01000", "altra-000c01001"),
                Serialization.jsonMapper().convertValue(group18.get("devices"), List.class));
        assertEquals(0, report.get("warnings").size());
    }

    @Test
    void yamlOutputParses() {
        Run.Result r = Run.against(sim, new inventory(), "-o", "yaml", "--vendor", "10de");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        Map<?, ?> report = Serialization.unmarshal(r.out(), Map.class);
        assertEquals(4, ((List<?>) report.get("devices")).size(), r.out());
    }

    @Test
    void filtersByVendorIdVendorNameAndText() throws Exception {
        assertEquals(4, json(Run.against(sim, new inventory(), "-o", "json", "--vendor", "10de").out()).get("devices").size());
        assertEquals(4, json(Run.against(sim, new inventory(), "-o", "json", "--vendor", "nvidia").out()).get("devices").size());
        JsonNode audio = json(Run.against(sim, new inventory(), "-o", "json", "--node", "altra", "audio").out());
        assertEquals(1, audio.get("devices").size());
        assertEquals("altra-000c01001", audio.get("devices").get(0).get("name").asText());
    }

    @Test
    void flagsAnIommuGroupThatIsOnlyPartlyClaimed() throws Exception {
        claim("altra-000c01000", true);
        Run.Result r = Run.against(sim, new inventory(), "--node", "altra");
        assertEquals(Cli.Exit.OK.code, r.exit(), r.all());
        assertTrue(r.out().contains("WARNING: IOMMU group 18 on node altra is only partly claimed (claimed: altra-000c01000; not claimed: altra-000c01001)"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("altra-000c01001 ") && l.contains("18 (partial!)") && l.contains(" none ")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("altra-000c01000 ") && l.contains(" passthrough ")), r.out());
        JsonNode report = json(Run.against(sim, new inventory(), "-o", "json").out());
        assertTrue(device(report, "altra-000c01001").get("groupPartiallyClaimed").asBoolean());
        assertFalse(device(report, "bravo-000041000").get("groupPartiallyClaimed").asBoolean());
        assertEquals(1, report.get("warnings").size());

        claim("altra-000c01001", false);
        Run.Result whole = Run.against(sim, new inventory(), "--node", "altra");
        assertFalse(whole.out().contains("WARNING"), whole.out());
        assertTrue(whole.out().lines().anyMatch(l -> l.startsWith("altra-000c01001 ") && l.contains(" claimed ")), whole.out());
    }

    @Test
    void showsTheVmUsingEachDevice() throws Exception {
        addHostDevice("altra-000c01000", "nvidia.com/GA102_GEFORCE_RTX_3090", null);
        JsonNode report = json(Run.against(sim, new inventory(), "-o", "json").out());
        assertEquals("[\"default/docker-host\"]", device(report, "altra-000c01000").get("usedBy").toString());
        assertEquals("[]", device(report, "bravo-000041000").get("usedBy").toString());
        assertEquals("[]", device(report, "altra-000c01001").get("usedBy").toString());
    }

    @Test
    void pooledResourceNamesAreResolvedByPinnedNodeOrMarkedUncertain() throws Exception {
        addHostDevice("gpu1", "nvidia.com/GA102_GEFORCE_RTX_3090", null);
        JsonNode unpinned = json(Run.against(sim, new inventory(), "-o", "json").out());
        assertEquals("[\"default/docker-host?\"]", device(unpinned, "altra-000c01000").get("usedBy").toString());
        assertEquals("[\"default/docker-host?\"]", device(unpinned, "bravo-000041000").get("usedBy").toString());

        addHostDevice(null, null, "bravo");
        JsonNode pinned = json(Run.against(sim, new inventory(), "-o", "json").out());
        assertEquals("[]", device(pinned, "altra-000c01000").get("usedBy").toString());
        assertEquals("[\"default/docker-host\"]", device(pinned, "bravo-000041000").get("usedBy").toString());
    }

    @Test
    void requestCountDoesNotGrowWithDeviceCount() {
        Run.against(sim, new inventory());
        List<String> few = sim.clientRequests();
        sim.clearClientRequests();
        List<GenericKubernetesResource> many = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            String addr = String.format("0001:%02x:%02x.0", i / 32, i % 32);
            many.add(Serialization.unmarshal("""
                    apiVersion: devices.harvesterhci.io/v1beta1
                    kind: PCIDevice
                    metadata: {name: %s, labels: {nodename: charlie}}
                    status: {address: "%s", vendorId: "8086", deviceId: "1521", classId: "0200", iommuGroup: "%d",
                             nodeName: charlie, resourceName: intel.com/I350, description: "Ethernet controller", kernelDriverInUse: igb}
                    """.formatted(Harvester.pciDeviceName("charlie", addr), addr, 100 + i), GenericKubernetesResource.class));
        }
        sim.seed(many);
        Run.Result r = Run.against(sim, new inventory());
        assertEquals(309, r.out().lines().count() - 1, r.all());
        assertEquals(few, sim.clientRequests());
        assertEquals(3, few.size(), few.toString());
    }

    @Test
    void unknownNodeIsAOneLineNotFoundError() {
        Run.Result r = Run.against(sim, new inventory(), "--node", "nope");
        assertEquals(Cli.Exit.NOT_FOUND.code, r.exit(), r.all());
        assertEquals("inventory: node \"nope\" not found — run inventory without --node to see all nodes\n", r.err());
        assertEquals("", r.out());
    }

    @Test
    void forbiddenIsAOneLineErrorNamingRbac() {
        sim.faults().add(Fault.FORBIDDEN);
        Run.Result r = Run.against(sim, new inventory());
        assertEquals(Cli.Exit.FORBIDDEN.code, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("inventory: forbidden (403"), r.err());
        assertTrue(r.err().contains("RBAC"), r.err());
        assertFalse(r.err().contains("sim-token"), "never print the token");
    }

    @Test
    void badOptionIsAUsageError() {
        Run.Result r = Run.against(sim, new inventory(), "--colour");
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertTrue(r.err().startsWith("Unknown option: '--colour'"), r.err());
        Run.Result badFormat = Run.against(sim, new inventory(), "-o", "xml");
        assertEquals(Cli.Exit.USAGE.code, badFormat.exit(), badFormat.all());
    }

    @Test
    void simulatedAgentLogIsServedLikeKubectlLogs() {
        sim.agentLog("altra", "Adding altra-000c01000 to KubeVirt list of permitted devices");
        sim.agentLog("bravo", "other node");
        String log = sim.admin().pods().inNamespace("harvester-system").withName("harvester-pcidevices-controller-x7k2p")
                .inContainer("agent").tailingLines(200).getLog();
        assertTrue(log.endsWith("Adding altra-000c01000 to KubeVirt list of permitted devices\n"), log);
        assertFalse(log.contains("other node"), log);
    }

    private void claim(String name, boolean passthrough) {
        Seed.claim(sim, name, "admin", passthrough);
    }

    /** Adds a hostDevices entry and/or pins the VM, as a user's edit would. */
    @SuppressWarnings("unchecked")
    private void addHostDevice(String name, String deviceName, String pinTo) {
        KubeVirt.vms(sim.admin()).inNamespace("default").withName("docker-host").edit(vm -> {
            Map<String, Object> spec = (Map<String, Object>) ((Map<String, Object>) vm.get("spec", "template")).get("spec");
            if (name != null) {
                Map<String, Object> devices = (Map<String, Object>) ((Map<String, Object>) spec.get("domain")).get("devices");
                ((List<Object>) devices.get("hostDevices")).add(Map.of("name", name, "deviceName", deviceName));
            }
            if (pinTo != null) spec.put("nodeSelector", Map.of("kubernetes.io/hostname", pinTo));
            return vm;
        });
    }
}
