//SOURCES ../scripts/lib/checks/GuestDocker.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * `verify --docker` checks against a guest stand-in (tests/fixtures/guest-docker-host: fake
 * nvidia-smi, docker and sudo driven by state files), run through /bin/sh as sshd would.
 */
class GuestDockerTest {
    static final String IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04";
    static final List<GuestDocker.Gpu> RTX_3090 = GuestDocker.gpus(List.of(NodeChecksTest.GPU, NodeChecksTest.AUDIO));

    static String show(List<Diagnosis.Finding> all) {
        return NodeChecksTest.show(all);
    }

    @Test
    void gpuIsTakenFromTheAttachedPciDevicesOnly() {
        assertEquals(List.of(new GuestDocker.Gpu("10de:2204", "GeForce RTX 3090")), RTX_3090);
    }

    @Test
    void healthyGuestPassesEveryCheck() {
        try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
            List<Diagnosis.Finding> all = GuestDocker.check(guest.shell(), RTX_3090, IMAGE);
            assertEquals(List.of(GuestDocker.DRIVER, GuestDocker.DOCKER, GuestDocker.RUNTIME, GuestDocker.CONTAINER),
                    all.stream().map(Diagnosis.Finding::check).toList(), show(all));
            assertTrue(all.stream().allMatch(f -> f.status() == Diagnosis.Status.PASS), show(all));
            assertTrue(all.get(0).evidence().contains("GPU 0: NVIDIA GeForce RTX 3090"), show(all));
            assertTrue(all.get(3).evidence().contains("GeForce RTX 3090"), show(all));
        }
    }

    @Test
    void withoutAnImageNoContainerRuns() {
        try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
            List<String> commands = new ArrayList<>();
            RemoteShell shell = guest.shell();
            List<Diagnosis.Finding> all = GuestDocker.check(c -> {
                commands.add(c);
                return shell.run(c);
            }, RTX_3090, null);
            assertEquals(3, all.size(), show(all));
            assertEquals(List.of(GuestDocker.NVIDIA_SMI, GuestDocker.DOCKER_RUNTIMES), commands);
        }
    }

    record Case(String name, Consumer<FakeHost> change, List<GuestDocker.Gpu> gpus, String check, Diagnosis.Status status, List<String> says) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                new Case("no NVIDIA driver", g -> g.delete("bin/nvidia-smi"), RTX_3090, GuestDocker.DRIVER, Diagnosis.Status.FAIL,
                        List.of("not installed", "ubuntu-drivers install")),
                new Case("driver installed but not loaded", g -> g.write("state/driver", "unloaded\n"), RTX_3090, GuestDocker.DRIVER, Diagnosis.Status.FAIL,
                        List.of("couldn't communicate with the NVIDIA driver", "reboot the VM")),
                new Case("driver sees no GPU", g -> g.write("state/gpus", ""), RTX_3090, GuestDocker.DRIVER, Diagnosis.Status.FAIL,
                        List.of("No devices were found", "verify")),
                new Case("driver sees another GPU", g -> g.write("state/gpus", "NVIDIA GeForce RTX 2060,0x1E8910DE,00000000:01:00.0\n"), RTX_3090,
                        GuestDocker.DRIVER, Diagnosis.Status.FAIL, List.of("RTX 2060", "GeForce RTX 3090 [10de:2204]")),
                new Case("matched by PCI id when the name differs", g -> g.write("state/gpus", "NVIDIA Graphics Device,0x220410DE,00000000:01:00.0\n"), RTX_3090,
                        GuestDocker.DRIVER, Diagnosis.Status.PASS, List.of("0x220410DE", "matched by PCI id")),
                new Case("matched by PCI id when the PCIDevice has no marketing name", g -> { }, List.of(new GuestDocker.Gpu("10de:2204", null)),
                        GuestDocker.DRIVER, Diagnosis.Status.PASS, List.of("matched by PCI id")),
                new Case("no Docker", g -> g.delete("bin/docker"), RTX_3090, GuestDocker.DOCKER, Diagnosis.Status.FAIL,
                        List.of("Docker is not installed", "docker.io")),
                new Case("Docker daemon stopped", g -> g.write("state/docker", "stopped\n"), RTX_3090, GuestDocker.DOCKER, Diagnosis.Status.FAIL,
                        List.of("Cannot connect to the Docker daemon", "systemctl enable --now docker")),
                new Case("user not in the docker group, sudo -n works", g -> g.write("state/docker", "root-only\n"), RTX_3090, GuestDocker.DOCKER,
                        Diagnosis.Status.PASS, List.of("through sudo", "nvidia")),
                new Case("user not in the docker group, sudo asks a password", g -> g.write("state/docker", "root-only\n").write("state/sudo", "password\n"),
                        RTX_3090, GuestDocker.DOCKER, Diagnosis.Status.FAIL, List.of("permission denied", "a password is required", "usermod -aG docker")),
                new Case("no NVIDIA runtime", g -> g.write("state/runtimes.json", "{\"io.containerd.runc.v2\":{\"path\":\"runc\"},\"runc\":{\"path\":\"runc\"}}\n"),
                        RTX_3090, GuestDocker.RUNTIME, Diagnosis.Status.FAIL,
                        List.of("do not include nvidia", "nvidia-container-toolkit", "nvidia-ctk runtime configure --runtime=docker", "restart docker")),
                new Case("container cannot get GPUs", g -> g.write("state/runtimes.json", "{\"runc\":{\"path\":\"runc\"}}\n"), RTX_3090,
                        GuestDocker.CONTAINER, Diagnosis.Status.FAIL, List.of("could not select device driver", "nvidia-ctk runtime configure")),
                new Case("container: toolkit cannot reach the driver", g -> g.write("state/driver", "unloaded\n"), RTX_3090,
                        GuestDocker.CONTAINER, Diagnosis.Status.FAIL, List.of("nvml error: driver not loaded", "ubuntu-drivers install")),
                new Case("image does not exist", g -> g.write("state/images", "ubuntu:24.04\n"), RTX_3090, GuestDocker.CONTAINER, Diagnosis.Status.FAIL,
                        List.of("pull access denied for nvidia/cuda", "--docker-image")),
                new Case("no Docker: the container is not tried", g -> g.delete("bin/docker"), RTX_3090, GuestDocker.CONTAINER, Diagnosis.Status.FAIL,
                        List.of("not run: Docker does not work")))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void eachCheckPassesAndFails(Case c) {
        try (FakeHost guest = FakeHost.copy("guest-docker-host")) {
            c.change().accept(guest);
            List<Diagnosis.Finding> all = GuestDocker.check(guest.shell(), c.gpus(), IMAGE);
            List<Diagnosis.Finding> found = all.stream().filter(f -> f.check().equals(c.check()) && f.status() == c.status()).toList();
            assertFalse(found.isEmpty(), "no " + c.status() + " " + c.check() + ":\n" + show(all));
            String text = show(found);
            for (String s : c.says()) assertTrue(text.contains(s), "\"" + s + "\" missing from:\n" + text);
        }
    }

    @Test
    void anImageThatIsNotAReferenceIsRefusedBeforeAnythingRuns() {
        List<String> commands = new ArrayList<>();
        Cli.UserError e = assertThrows(Cli.UserError.class,
                () -> GuestDocker.check(c -> { commands.add(c); return new RemoteShell.Result(0, "", ""); }, RTX_3090, "ubuntu; rm -rf ~"));
        assertEquals(Cli.Exit.USAGE, e.exit);
        assertTrue(commands.isEmpty());
    }
}
