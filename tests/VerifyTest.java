//SOURCES ../scripts/lib/sim/GuestSshServer.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.OutputStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.config.keys.PublicKeyEntry;
import org.apache.sshd.common.config.keys.writer.openssh.OpenSSHKeyPairResourceWriter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * verify against the simulated cluster and a real SSH server on 127.0.0.1 standing in for the
 * guest. Every run passes --identity/--known-hosts/--ssh-config (or a temp HOME): the real ~/.ssh
 * is never read, and only loopback is contacted (the fixture VMI's IP is 127.0.0.1).
 */
class VerifyTest {
    static final String GPU = "altra-000c01000";
    static final String GPU_RESOURCE = "nvidia.com/GA102_GEFORCE_RTX_3090";
    static final String AUDIO = "altra-000c01001";
    static final String AUDIO_RESOURCE = "nvidia.com/GA102_HIGH_DEFINITION_AUDIO_CONTROLLER";

    SimCluster sim;
    GuestSshServer guest;
    Path dir;
    KeyPair userKey;
    Path identity;
    Path knownHosts;
    Path sshConfig;

    @BeforeEach
    void start() throws Exception {
        sim = SimCluster.start();
        dir = Files.createTempDirectory("verify-test-");
        userKey = KeyUtils.generateKeyPair("ssh-ed25519", 256); // sshd's generator, OpenSSH-writable
        identity = writePrivateKey(dir.resolve("id_ed25519"), userKey);
        guest = GuestSshServer.start(new GuestSshServer.Options().authorizedKey(userKey.getPublic()));
        knownHosts = dir.resolve("known_hosts");
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        sshConfig = dir.resolve("ssh_config");
        // No agent: the test JVM's SSH_AUTH_SOCK (a developer's agent) must not take part.
        Files.writeString(sshConfig, "IdentityAgent none\n");
    }

    @AfterEach
    void stop() {
        if (guest != null) guest.close();
        sim.close();
    }

    static Path writePrivateKey(Path file, KeyPair kp) throws Exception {
        return GuestSshServer.writeIdentity(file, kp, "test@verify");
    }

    /** Adds hostDevices to the running VMI's spec, as KubeVirt copies them from the VM at start. */
    void vmiHostDevices(String... nameResourcePairs) {
        var op = KubeVirt.vmis(sim.admin()).inNamespace("default");
        GenericKubernetesResource vmi = op.withName("docker-host").get();
        @SuppressWarnings("unchecked")
        Map<String, Object> devices = (Map<String, Object>) vmi.get("spec", "domain", "devices");
        @SuppressWarnings("unchecked")
        List<Object> hostDevices = new ArrayList<>((List<Object>) devices.get("hostDevices"));
        for (int i = 0; i < nameResourcePairs.length; i += 2) {
            hostDevices.add(Map.of("name", nameResourcePairs[i], "deviceName", nameResourcePairs[i + 1]));
        }
        devices.put("hostDevices", hostDevices);
        op.resource(vmi).update();
    }

    void vmiPhase(String phase) {
        var op = KubeVirt.vmis(sim.admin()).inNamespace("default");
        GenericKubernetesResource vmi = op.withName("docker-host").get();
        @SuppressWarnings("unchecked")
        Map<String, Object> status = (Map<String, Object>) vmi.getAdditionalProperties().get("status");
        status.put("phase", phase);
        op.resource(vmi).update();
    }

    /** The usual command line: the VM, the test guest's port, and files that are not the real ~/.ssh. */
    List<String> args(String... extra) {
        List<String> a = new ArrayList<>(List.of("docker-host", "--user", "kalmyk", "--port", String.valueOf(guest.port()),
                "--identity", identity.toString(), "--known-hosts", knownHosts.toString(), "--ssh-config", sshConfig.toString(),
                "--connect-timeout", "5", "--command-timeout", "10"));
        a.addAll(List.of(extra));
        return a;
    }

    /** args() with one option's value replaced. */
    List<String> argsWith(String option, String value) {
        List<String> a = args();
        a.set(a.indexOf(option) + 1, value);
        return a;
    }

    Run.Result verify(List<String> args) {
        Run.Result r = Run.against(sim, new verify(), args.toArray(new String[0]));
        assertNoPrivateKey(r);
        return r;
    }

    Run.Result verify(String... extra) {
        return verify(args(extra));
    }

    void assertNoPrivateKey(Run.Result r) {
        String all = r.out() + r.err();
        assertFalse(all.contains("PRIVATE KEY"), "never print a private key: " + all);
        String priv = Base64.getEncoder().encodeToString(userKey.getPrivate().getEncoded());
        assertFalse(all.contains(priv.substring(priv.length() - 20)), "never print a private key");
    }

    static JsonNode json(String s) throws Exception {
        return Serialization.jsonMapper().readTree(s);
    }

    @Test
    void passesWhenTheGuestShowsTheGpu() {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify();
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().startsWith("VM:     default/docker-host (Running on altra)\n"), r.out());
        assertTrue(r.out().contains("GUEST:  kalmyk@127.0.0.1:" + guest.port() + ", host key ECDSA SHA256:"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches(
                "altra-000c01000\\s+nvidia.com/GA102_GEFORCE_RTX_3090\\s+10de:2204\\s+01:00.0\\s+PASS\\s+VGA compatible controller: NVIDIA Corporation GA102 \\[GeForce RTX 3090\\]")), r.out());
        assertTrue(r.out().contains("  01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204]\n"), r.out());
        assertTrue(r.out().endsWith("RESULT: PASS\n"), r.out());
        assertEquals("", r.err());
        assertEquals(List.of("sudo -n lspci -nn"), guest.commands(), "runs lspci through sudo -n, as the runbook does");
        assertFalse(r.out().contains("altra-0951-1666-003002"), "the USB hostDevice is not something lspci shows");
    }

    @Test
    void jsonReportsEveryExpectedFunctionAndTheDriversView() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE, AUDIO, AUDIO_RESOURCE);
        guest.close();
        guest = GuestSshServer.start(new GuestSshServer.Options().authorizedKey(userKey.getPublic())
                .attached(GuestSshServer.RTX_3090, GuestSshServer.RTX_3090_AUDIO));
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        Run.Result r = verify("-o", "json", "--nvidia-smi");
        assertEquals(0, r.exit(), r.all());
        JsonNode report = json(r.out());
        assertEquals("PASS", report.get("result").asText());
        assertEquals("default/docker-host", report.get("vm").asText());
        assertEquals("altra", report.get("node").asText());
        assertEquals("127.0.0.1", report.get("guest").get("host").asText());
        assertEquals(guest.port(), report.get("guest").get("port").asInt());
        assertEquals("kalmyk", report.get("guest").get("user").asText());
        assertFalse(report.get("guest").get("hostKeyRecorded").asBoolean());
        JsonNode expected = report.get("expected");
        assertEquals(2, expected.size(), r.out());
        assertEquals("10de:2204", expected.get(0).get("vendorDevice").asText());
        assertEquals("01:00.0", expected.get(0).get("guestSlot").asText());
        assertEquals("10de:1aef", expected.get(1).get("vendorDevice").asText());
        assertEquals("02:00.0", expected.get(1).get("guestSlot").asText());
        assertTrue(expected.get(1).get("present").asBoolean());
        assertEquals(2, report.get("nvidiaDevices").size());
        assertEquals(19, report.get("lspci").size(), "host bridge, 9 root ports, 2 NVIDIA functions, 7 virtio devices: " + r.out());
        JsonNode driver = report.get("driver");
        assertEquals("OK", driver.get("status").asText());
        assertEquals("NVIDIA GeForce RTX 3090", driver.get("gpus").get(0).get("name").asText());
        assertTrue(driver.get("gpus").get(0).get("uuid").asText().startsWith("GPU-"));
        assertEquals(List.of("sudo -n lspci -nn", "nvidia-smi -L"), guest.commands());
    }

    @Test
    void deviceAbsentInTheGuestIsExit24WithTheReport() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        sim.faults().add(Fault.GUEST_NO_DEVICE);
        guest.close();
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(userKey.getPublic());
        o.faults = sim::faults; // the sandbox's wiring: the cluster's live fault set
        guest = GuestSshServer.start(o);
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");

        Run.Result r = verify();
        assertEquals(24, r.exit(), r.all());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("altra-000c01000\\s+nvidia.com/GA102_GEFORCE_RTX_3090\\s+10de:2204\\s+-\\s+FAIL\\s+-")), r.out());
        assertTrue(r.out().contains("NVIDIA devices in the guest: none"), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("verify: [10de:2204] (altra-000c01000) not visible in the guest's lspci -nn"), r.err());

        JsonNode report = json(verify("-o", "json").out());
        assertEquals("FAIL", report.get("result").asText());
        assertFalse(report.get("expected").get(0).get("present").asBoolean());
        assertTrue(report.get("lspci").size() > 5, "the rest of the guest's devices are still listed");

        sim.faults().remove(Fault.GUEST_NO_DEVICE);
        assertEquals(0, verify().exit(), "the live fault set is read on every command");
    }

    @Test
    void anyNvidiaAcceptsAnotherNvidiaDeviceId() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        guest.close();
        guest = GuestSshServer.start(new GuestSshServer.Options().authorizedKey(userKey.getPublic()).attached("10de:1e89"));
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        assertEquals(24, verify().exit(), "the PCIDevice says 10de:2204");
        Run.Result any = verify("--any-nvidia");
        assertEquals(0, any.exit(), any.all());
        assertTrue(any.out().contains("[10de:1e89]"), any.out());
    }

    @Test
    void unknownHostKeyIsRefusedWithoutRunningAnything() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Files.writeString(knownHosts, "");
        Run.Result r = verify();
        assertEquals(23, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("verify: host key of [127.0.0.1]:" + guest.port() + " is not in " + knownHosts), r.err());
        assertTrue(r.err().contains("--accept-new"), r.err());
        assertTrue(r.err().contains(KnownHosts.fingerprint(guest.hostPublicKey())), r.err());
        assertEquals("", Files.readString(knownHosts), "nothing recorded without --accept-new");
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void changedHostKeyIsAlwaysRefused() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        String before = guest.knownHostsLine().replaceFirst("\\S+$", "") // same host and type, another key
                + PublicKeyEntry.toString(KeyUtils.generateKeyPair("ecdsa-sha2-nistp256", 256).getPublic()).split(" ")[1] + "\n";
        Files.writeString(knownHosts, before);
        for (List<String> a : List.of(args(), args("--accept-new"))) {
            Run.Result r = verify(a);
            assertEquals(23, r.exit(), r.all());
            assertTrue(r.err().startsWith("verify: HOST KEY CHANGED for [127.0.0.1]:" + guest.port()), r.err());
            assertTrue(r.err().contains("ssh-keygen -R '[127.0.0.1]:" + guest.port() + "' -f " + knownHosts), r.err());
            assertEquals(before, Files.readString(knownHosts), "known_hosts untouched");
        }
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void acceptNewRecordsTheKeyThenTrustsOnlyIt() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Path fresh = dir.resolve("new-ssh-dir/known_hosts"); // neither the file nor its directory exists yet
        List<String> a = new ArrayList<>(args("--accept-new", "-o", "json"));
        a.set(a.indexOf(knownHosts.toString()), fresh.toString());
        Run.Result r = verify(a);
        assertEquals(0, r.exit(), r.all());
        assertTrue(json(r.out()).get("guest").get("hostKeyRecorded").asBoolean());
        List<String> lines = Files.readAllLines(fresh);
        assertEquals(1, lines.size(), lines.toString());
        assertEquals(guest.knownHostsLine(), lines.get(0));

        a.remove("--accept-new");
        Run.Result again = verify(a);
        assertEquals(0, again.exit(), again.all());
        assertFalse(json(again.out()).get("guest").get("hostKeyRecorded").asBoolean());
        assertEquals(1, Files.readAllLines(fresh).size(), "recorded once");
    }

    @Test
    void refusedKeyOrUserIsAnAuthError() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Path other = writePrivateKey(dir.resolve("id_other"), KeyUtils.generateKeyPair("ssh-ed25519", 256));
        List<String> a = args();
        a.set(a.indexOf(identity.toString()), other.toString());
        Run.Result r = verify(a);
        assertEquals(22, r.exit(), r.all());
        assertEquals("verify: guest kalmyk@127.0.0.1:" + guest.port() + " refused our key (key file " + other
                + ") — add the public key to ~kalmyk/.ssh/authorized_keys there, or check the user (User / --user) and IdentityFile\n", r.err());

        List<String> wrongUser = args();
        wrongUser.set(wrongUser.indexOf("kalmyk"), "root");
        assertEquals(22, verify(wrongUser).exit());
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void sudoAskingForAPasswordIsExit25AndNoSudoWorks() {
        vmiHostDevices(GPU, GPU_RESOURCE);
        guest.close();
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(userKey.getPublic());
        o.faults = sim::faults;
        guest = GuestSshServer.start(o);
        sim.faults().add(Fault.GUEST_SUDO_PASSWORD);
        try {
            Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        Run.Result r = verify();
        assertEquals(25, r.exit(), r.all());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("verify: sudo in the guest needs a password for kalmyk (sudo: a password is required) — pass --no-sudo"), r.err());
        assertEquals("", r.out());

        Run.Result plain = verify("--no-sudo");
        assertEquals(0, plain.exit(), plain.all());
        assertEquals(List.of("sudo -n lspci -nn", "lspci -nn"), guest.commands());
    }

    @Test
    void aHungCommandTimesOut() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        guest.close();
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(userKey.getPublic());
        o.commandDelay = Duration.ofMinutes(5);
        guest = GuestSshServer.start(o);
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        Run.Result r = verify(argsWith("--command-timeout", "1"));
        assertEquals(9, r.exit(), r.all());
        assertEquals("verify: `sudo -n lspci -nn` did not finish within 1 s in the guest kalmyk@127.0.0.1:" + guest.port()
                + " — the guest may be overloaded; raise --command-timeout\n", r.err());
    }

    @Test
    void closedPortIsAConnectError() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        List<String> a = args();
        a.set(a.indexOf(String.valueOf(guest.port())), String.valueOf(closed));
        Run.Result r = verify(a);
        assertEquals(21, r.exit(), r.all());
        assertEquals("verify: cannot connect to 127.0.0.1 port " + closed + " (connection refused) — is the guest up and sshd running,"
                + " and is the address right? (from VMI IP 127.0.0.1 (no ssh_config Host block for docker-host))\n", r.err());
    }

    @Test
    void aSilentServerIsAConnectTimeout() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        // Accepts TCP (the backlog) but never sends an SSH banner: a hung sshd or a wrong port.
        try (ServerSocket silent = new ServerSocket(0, 5, java.net.InetAddress.getLoopbackAddress())) {
            List<String> a = argsWith("--port", String.valueOf(silent.getLocalPort()));
            a.set(a.indexOf("--connect-timeout") + 1, "1");
            Run.Result r = verify(a);
            assertEquals(21, r.exit(), r.all());
            assertTrue(r.err().startsWith("verify: cannot connect to 127.0.0.1 port " + silent.getLocalPort()), r.err());
            assertEquals(1, r.err().lines().count(), r.err());
        }
    }

    @Test
    void aPassphraseProtectedKeyIsNamedNotPrompted() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Path locked = dir.resolve("id_locked");
        var ctx = new org.apache.sshd.common.config.keys.writer.openssh.OpenSSHKeyEncryptionContext();
        ctx.setPassword("secret");
        ctx.setCipherName("AES");
        ctx.setCipherMode("CTR");
        ctx.setCipherType("256");
        try (OutputStream out = Files.newOutputStream(locked)) {
            OpenSSHKeyPairResourceWriter.INSTANCE.writePrivateKey(userKey, "locked", ctx, out);
        }
        Run.Result r = verify(argsWith("--identity", locked.toString()));
        assertEquals(22, r.exit(), r.all());
        assertEquals("verify: " + locked + " is protected by a passphrase and there is no terminal to ask for it"
                + " — add it to your agent (ssh-add " + locked + ") and run again\n", r.err());
        assertFalse(r.err().contains("secret"), "the passphrase is never printed");
        assertEquals(List.of(), guest.commands());
    }

    @Test
    void vmNotRunningIsExit20BeforeAnySsh() {
        Run.Result noGpu = verify();
        assertEquals(20, noGpu.exit(), noGpu.all());
        assertEquals("verify: VMI default/docker-host is Running without a PCI hostDevice (it has: altra-0951-1666-003002"
                + " (kubevirt.io/altra-0951-1666-003002)) — attach the device and restart the VM first: attach docker-host\n", noGpu.err());

        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result otherDevice = verify("--device", AUDIO);
        assertEquals(20, otherDevice.exit(), otherDevice.all());
        assertTrue(otherDevice.err().contains("without a hostDevice named altra-000c01001"), otherDevice.err());

        vmiPhase("Scheduling");
        Run.Result scheduling = verify();
        assertEquals(20, scheduling.exit(), scheduling.all());
        assertTrue(scheduling.err().startsWith("verify: VMI default/docker-host is Scheduling, not Running"), scheduling.err());

        KubeVirt.vmis(sim.admin()).inNamespace("default").withName("docker-host").delete();
        Run.Result deleted = verify();
        assertEquals(20, deleted.exit(), deleted.all());
        assertTrue(deleted.err().startsWith("verify: VM default/docker-host has no running instance (no VMI)"), deleted.err());

        Run.Result missing = verify(List.of("nope", "--identity", identity.toString(), "--known-hosts", knownHosts.toString()));
        assertEquals(6, missing.exit(), missing.all());
        assertEquals(List.of(), guest.commands(), "no SSH when the VM is not running");
    }

    @Test
    void deviceAndDeviceNameSelectTheHostDevice() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE, AUDIO, AUDIO_RESOURCE); // the guest shows only the GPU
        assertEquals(24, verify().exit(), "the audio function is expected too when it is in the VMI");
        JsonNode byName = json(verify("--device", GPU, "-o", "json").out());
        assertEquals("PASS", byName.get("result").asText());
        assertEquals(1, byName.get("expected").size());
        JsonNode byResource = json(verify("--device-name", GPU_RESOURCE, "-o", "json").out());
        assertEquals(GPU, byResource.get("expected").get(0).get("name").asText());
        Run.Result usb = verify("--device", "altra-0951-1666-003002");
        assertEquals(2, usb.exit(), usb.all());
        assertTrue(usb.err().contains("is not a PCI device Harvester knows"), usb.err());
    }

    @Test
    void missingDriverIsAWarningUnlessRequired() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        guest.close();
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(userKey.getPublic());
        o.nvidiaDriver = false;
        guest = GuestSshServer.start(o);
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
        Run.Result warn = verify("--nvidia-smi");
        assertEquals(0, warn.exit(), warn.all());
        assertTrue(warn.out().contains("DRIVER: WARN — nvidia-smi not found: the NVIDIA driver is not installed in the guest\n"), warn.out());
        Run.Result required = verify("--require-driver", "-o", "json");
        assertEquals(8, required.exit(), required.all());
        assertEquals("MISSING", json(required.out()).get("driver").get("status").asText());
        assertTrue(required.err().startsWith("verify: the device is visible but the NVIDIA driver is not working"), required.err());
    }

    @Test
    void sshConfigSuppliesHostNameUserPortAndIdentity() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Files.writeString(sshConfig, """
                # the runbook's VM, under a friendly name
                IdentityAgent none
                Host other
                    User nobody
                Host docker-host *.lab !bad.lab
                    HostName 127.0.0.1
                    User kalmyk
                    Port %d
                    IdentityFile %s
                Host *
                    User root
                    Port 1
                """.formatted(guest.port(), identity));
        Run.Result r = verify(List.of("docker-host", "--host", "docker-host", "--ssh-config", sshConfig.toString(),
                "--known-hosts", knownHosts.toString(), "-o", "json"));
        assertEquals(0, r.exit(), r.all());
        JsonNode g = json(r.out()).get("guest");
        assertEquals("kalmyk", g.get("user").asText());
        assertEquals(guest.port(), g.get("port").asInt());

        SshConfig config = new SshConfig(sshConfig, null, dir, "tester");
        SshConfig.Settings bad = config.resolve("bad.lab", Map.of());
        assertEquals(java.util.Arrays.asList(null, "root", 1, List.of()), java.util.Arrays.asList(bad.hostName(), bad.user(), bad.port(), bad.all("identityfile")));
        assertEquals("kalmyk", config.resolve("x.lab", Map.of()).user());
    }

    @Test
    void defaultsComeFromHomeDotSshInAFreshProcess() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Path home = dir.resolve("home");
        Path ssh = Files.createDirectories(home.resolve(".ssh"));
        writePrivateKey(ssh.resolve("id_ed25519"), userKey);
        Files.writeString(ssh.resolve("config"), "Host 127.0.0.1\n  User kalmyk\n  Port " + guest.port() + "\n");
        Run.Result r = Run.process(Map.of("HOME", home.toString()), "verify", "docker-host",
                "--kubeconfig", sim.kubeconfig().toString(), "--accept-new");
        assertNoPrivateKey(r);
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().contains("(new: recorded in " + ssh.resolve("known_hosts") + ")"), r.out());
        // One line for this guest's key: plain, or hashed when the system's /etc/ssh/ssh_config says HashKnownHosts yes (Debian).
        assertEquals(1, Files.readAllLines(ssh.resolve("known_hosts")).size());
        KnownHosts recorded = KnownHosts.load(List.of(ssh.resolve("known_hosts")), List.of());
        assertEquals(KnownHosts.Verdict.KNOWN, recorded.check("[127.0.0.1]:" + guest.port(), guest.hostPublicKey()).verdict());
        assertEquals(List.of(), recorded.warnings());
    }

    @Test
    void parsesLspciLines() {
        List<String> unparsed = new ArrayList<>();
        var devices = GuestLspci.parse("""
                01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204] (rev a1)
                0000:00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])
                garbage
                """, unparsed);
        assertEquals(2, devices.size());
        assertEquals(new GuestLspci.Device("01:00.0", "VGA compatible controller", "0300",
                "NVIDIA Corporation GA102 [GeForce RTX 3090]", "10de", "2204"), devices.get(0));
        assertEquals("8086:2922", devices.get(1).vendorDevice());
        assertEquals(List.of("garbage"), unparsed);
    }

    @Test
    void badInputIsAUsageErrorWithoutTouchingAnything() {
        Run.Result r = verify(argsWith("--port", "70000"));
        assertEquals(2, r.exit(), r.all());
        assertTrue(r.err().startsWith("verify: --port 70000 is not a TCP port"), r.err());
        Run.Result noKey = verify(List.of("docker-host", "--identity", dir.resolve("nope").toString()));
        assertEquals(2, noKey.exit(), noKey.all());
        assertEquals(List.of(), sim.clientRequests().stream().filter(s -> !s.startsWith("GET")).toList());
        assertEquals(List.of(), guest.commands());
    }

    // ---- --docker (the stand-in's nvidia-smi and docker; real sshd + fixture: tests/RealSshdNodeGuestTest.java) ----

    /** Replaces the guest with one whose driver, Docker and toolkit are as given. */
    void guestSoftware(boolean driver, boolean docker, boolean nvidiaRuntime) throws Exception {
        guest.close();
        GuestSshServer.Options o = new GuestSshServer.Options().authorizedKey(userKey.getPublic());
        o.nvidiaDriver = driver;
        o.docker = docker;
        o.nvidiaRuntime = nvidiaRuntime;
        guest = GuestSshServer.start(o);
        Files.writeString(knownHosts, guest.knownHostsLine() + "\n");
    }

    static final String CUDA = "nvidia/cuda:12.4.1-base-ubuntu22.04";

    @Test
    void dockerPassesWhenDriverDockerAndToolkitWork() throws Exception {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify("--docker", "--docker-image", CUDA);
        assertEquals(0, r.exit(), r.all());
        for (String check : List.of("guest-nvidia-driver", "guest-docker", "guest-nvidia-runtime", "guest-docker-gpu")) {
            assertTrue(r.out().lines().anyMatch(l -> l.matches(check + "\\s+PASS\\s+.*")), check + ": " + r.out());
        }
        assertTrue(r.out().contains("RESULT: PASS"), r.out());
        assertTrue(guest.commands().contains("docker run --rm --gpus all " + CUDA + " nvidia-smi -L"), guest.commands().toString());
        Run.Result json = verify("--docker", "-o", "json");
        assertEquals(0, json.exit(), json.all());
        JsonNode docker = Serialization.jsonMapper().readTree(json.out()).get("docker");
        assertEquals(3, docker.size(), json.out()); // no image: no container run
        assertEquals("guest-nvidia-runtime", docker.get(2).get("check").asText());
        assertEquals("PASS", docker.get(2).get("status").asText());
    }

    @Test
    void dockerWithoutTheNvidiaRuntimeIsExit26WithTheInstallHint() throws Exception {
        guestSoftware(true, true, false);
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify("--docker", "--docker-image", CUDA);
        assertEquals(Cli.Exit.GUEST_SOFTWARE.code, r.exit(), r.all());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("guest-nvidia-runtime\\s+FAIL\\s+.*do not include nvidia.*")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("guest-docker-gpu\\s+FAIL\\s+.*could not select device driver.*")), r.out());
        assertTrue(r.out().contains("FIX: install the NVIDIA Container Toolkit"), r.out());
        assertTrue(r.out().contains("RESULT: FAIL"), r.out());
    }

    @Test
    void dockerMissingIsExit26WithTheInstallHint() throws Exception {
        guestSoftware(true, false, false);
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify("--docker", "-o", "json");
        assertEquals(Cli.Exit.GUEST_SOFTWARE.code, r.exit(), r.all());
        JsonNode docker = Serialization.jsonMapper().readTree(r.out()).get("docker");
        assertEquals("guest-docker", docker.get(1).get("check").asText());
        assertEquals("FAIL", docker.get(1).get("status").asText());
        assertTrue(docker.get(1).get("fix").asText().contains("install Docker Engine"), r.out());
        assertEquals("FAIL", Serialization.jsonMapper().readTree(r.out()).get("result").asText());
    }

    @Test
    void dockerWithoutTheDriverIsExit26() throws Exception {
        guestSoftware(false, true, true);
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify("--docker");
        assertEquals(Cli.Exit.GUEST_SOFTWARE.code, r.exit(), r.all());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("guest-nvidia-driver\\s+FAIL\\s+.*nvidia-smi: command not found.*")), r.out());
    }

    @Test
    void aBadDockerImageIsAUsageErrorBeforeConnecting() {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify("--docker-image", "cuda; rm -rf /");
        assertEquals(Cli.Exit.USAGE.code, r.exit(), r.all());
        assertTrue(r.err().contains("is not an image reference"), r.err());
        assertEquals(List.of(), guest.commands(), "nothing ran in the guest");
    }

    @Test
    void withoutDockerTheGuestSoftwareIsNotChecked() {
        vmiHostDevices(GPU, GPU_RESOURCE);
        Run.Result r = verify();
        assertEquals(0, r.exit(), r.all());
        assertFalse(r.out().contains("guest-docker"), r.out());
        assertFalse(guest.commands().stream().anyMatch(c -> c.contains("docker")), guest.commands().toString());
    }
}
