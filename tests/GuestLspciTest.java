//SOURCES ../scripts/lib/checks/GuestLspci.java

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** verify's reading of the guest's `lspci -nn`: line parsing, finding each expected id, and what a failed run means. */
class GuestLspciTest {
    static Stream<Arguments> lines() {
        return Stream.of(
                Arguments.of("01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204] (rev a1)",
                        new GuestLspci.Device("01:00.0", "VGA compatible controller", "0300", "NVIDIA Corporation GA102 [GeForce RTX 3090]", "10de", "2204")),
                // Upper-case ids are read lower-case, as PCIDevices spell them.
                Arguments.of("02:00.0 Audio device [0403]: NVIDIA Corporation GA102 High Definition Audio Controller [10DE:1AEF] (rev a1)",
                        new GuestLspci.Device("02:00.0", "Audio device", "0403", "NVIDIA Corporation GA102 High Definition Audio Controller", "10de", "1aef")),
                // A domain in the slot, brackets in the description and text after the revision.
                Arguments.of("0000:00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])",
                        new GuestLspci.Device("0000:00:1f.2", "SATA controller", "0106",
                                "Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]", "8086", "2922")),
                // No revision.
                Arguments.of("00:01.0 PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c]",
                        new GuestLspci.Device("00:01.0", "PCI bridge", "0604", "Red Hat, Inc. QEMU PCIe Root port", "1b36", "000c")),
                // Indented: read as the line it is.
                Arguments.of("   06:00.0 SCSI storage controller [0100]: Red Hat, Inc. Virtio 1.0 block device [1af4:1042] (rev 01)  ",
                        new GuestLspci.Device("06:00.0", "SCSI storage controller", "0100", "Red Hat, Inc. Virtio 1.0 block device", "1af4", "1042")),
                // Not lspci -nn (no ids), an error, anything else: not a device.
                Arguments.of("01:00.0 VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090] (rev a1)", null),
                Arguments.of("pcilib: Cannot open /proc/bus/pci", null),
                Arguments.of("  garbage ", null));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("lines")
    void parsesOneLine(String line, GuestLspci.Device expected) {
        List<String> unparsed = new ArrayList<>();
        List<GuestLspci.Device> devices = GuestLspci.parse(line + "\n", unparsed);
        assertEquals(expected == null ? List.of() : List.of(expected), devices);
        // A line that is not a device is reported as printed.
        assertEquals(expected == null ? List.of(line) : List.of(), unparsed);
    }

    @Test
    void blankLinesAreNeitherDevicesNorUnparsed() {
        List<String> unparsed = new ArrayList<>();
        List<GuestLspci.Device> devices = GuestLspci.parse("\n  \n00:01.0 PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c]\n\n", unparsed);
        assertEquals(List.of("1b36:000c"), devices.stream().map(GuestLspci.Device::vendorDevice).toList());
        assertEquals(List.of(), unparsed);
    }

    static GuestVmi.Expected expected(String name, String vendorDevice) {
        return new GuestVmi.Expected(name, "nvidia.com/X", vendorDevice, "altra-" + name, null);
    }

    static GuestLspci.Device guest(String slot, String vendorId, String deviceId) {
        return new GuestLspci.Device(slot, "VGA compatible controller", "0300", "NVIDIA", vendorId, deviceId);
    }

    static Stream<Arguments> finds() {
        GuestLspci.Device gpu = guest("01:00.0", "10de", "2204");
        GuestLspci.Device audio = guest("02:00.0", "10de", "1aef");
        GuestLspci.Device secondGpu = guest("03:00.0", "10de", "2204");
        return Stream.of(
                // expected ids, guest devices, slot each expected device is found at (null: not visible)
                Arguments.of(List.of("10de:2204", "10de:1aef"), List.of(audio, gpu), List.of("01:00.0", "02:00.0")),
                Arguments.of(List.of("10DE:2204"), List.of(gpu), List.of("01:00.0")),
                Arguments.of(List.of("10de:2204", "10de:1aef"), List.of(gpu), java.util.Arrays.asList("01:00.0", null)),
                // Two identical GPUs: each guest device answers one expected device only.
                Arguments.of(List.of("10de:2204", "10de:2204"), List.of(gpu), java.util.Arrays.asList("01:00.0", null)),
                Arguments.of(List.of("10de:2204", "10de:2204"), List.of(gpu, secondGpu), List.of("01:00.0", "03:00.0")),
                Arguments.of(List.of("10de:2204"), List.of(), java.util.Arrays.asList((String) null)));
    }

    @ParameterizedTest
    @MethodSource("finds")
    void findsEachExpectedDeviceByItsId(List<String> ids, List<GuestLspci.Device> guest, List<String> slots) {
        List<GuestVmi.Expected> wanted = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) wanted.add(expected("d" + i, ids.get(i)));
        List<GuestLspci.Presence> found = GuestLspci.find(wanted, guest);
        assertEquals(wanted, found.stream().map(GuestLspci.Presence::expected).toList());
        assertEquals(slots, found.stream().map(p -> p.present() ? p.seen().slot() : null).toList());
    }

    @Test
    void presenceReportsTheGuestsDescription() {
        GuestLspci.Presence seen = new GuestLspci.Presence(expected("gpu", "10de:2204"), guest("01:00.0", "10de", "2204"));
        assertEquals("VGA compatible controller: NVIDIA", seen.guestDescription());
        assertEquals(List.of("name", "resourceName", "pciDevice", "vendorDevice", "present", "guestSlot", "guestDescription"),
                List.copyOf(seen.asMap().keySet()));
        GuestLspci.Presence missing = new GuestLspci.Presence(expected("gpu", "10de:2204"), null);
        assertNull(missing.guestDescription());
        assertNull(missing.asMap().get("guestSlot"));
        assertEquals(false, missing.asMap().get("present"));
    }

    static Stream<Arguments> failures() {
        return Stream.of(
                // exit, stderr, sudo → exit code, message
                Arguments.of(1, "sudo: a password is required\n", true, Cli.Exit.SUDO_PASSWORD,
                        "sudo in the guest needs a password for kalmyk (sudo: a password is required) — pass --no-sudo (lspci -nn works"
                                + " unprivileged), or allow it in the guest: echo 'kalmyk ALL=(root) NOPASSWD: /usr/bin/lspci' | sudo tee /etc/sudoers.d/lspci"),
                Arguments.of(1, "sudo: a terminal is required to read the password; either use the -S option\nsudo: a password is required\n", true,
                        Cli.Exit.SUDO_PASSWORD, "sudo in the guest needs a password for kalmyk (sudo: a terminal is required to read the password;"
                                + " either use the -S option) — pass --no-sudo (lspci -nn works unprivileged), or allow it in the guest:"
                                + " echo 'kalmyk ALL=(root) NOPASSWD: /usr/bin/lspci' | sudo tee /etc/sudoers.d/lspci"),
                // Without sudo, sudo's words mean nothing special.
                Arguments.of(1, "sudo: a password is required", false, Cli.Exit.PRECONDITION,
                        "lspci -nn failed in the guest (exit 1: sudo: a password is required) — run it by hand: ssh kalmyk@192.0.2.5 lspci -nn"),
                Arguments.of(127, "bash: line 1: lspci: command not found\n", false, Cli.Exit.PRECONDITION,
                        "lspci is not installed in the guest (bash: line 1: lspci: command not found) — install pciutils in the guest (sudo apt-get install pciutils)"),
                Arguments.of(1, "sudo: lspci: command not found\n", true, Cli.Exit.PRECONDITION,
                        "lspci is not installed in the guest (sudo: lspci: command not found) — install pciutils in the guest (sudo apt-get install pciutils)"),
                Arguments.of(1, "", true, Cli.Exit.PRECONDITION,
                        "lspci -nn failed in the guest (exit 1: no output) — run it by hand: ssh kalmyk@192.0.2.5 lspci -nn"),
                Arguments.of(2, "\n  pcilib: Cannot open /sys/bus/pci/devices\nlspci: Cannot find any working access method.\n", false, Cli.Exit.PRECONDITION,
                        "lspci -nn failed in the guest (exit 2: pcilib: Cannot open /sys/bus/pci/devices) — run it by hand: ssh kalmyk@192.0.2.5 lspci -nn"));
    }

    @ParameterizedTest
    @MethodSource("failures")
    void aFailedRunSaysWhyAndWhatToDo(int exit, String err, boolean sudo, Cli.Exit code, String message) {
        List<String> ran = new ArrayList<>();
        Cli.UserError e = org.junit.jupiter.api.Assertions.assertThrows(Cli.UserError.class, () -> GuestLspci.run(command -> {
            ran.add(command);
            return new RemoteShell.Result(exit, "", err);
        }, sudo, "kalmyk", "kalmyk@192.0.2.5"));
        assertEquals(code, e.exit);
        assertEquals(message, e.getMessage());
        assertEquals(List.of(sudo ? "sudo -n lspci -nn" : "lspci -nn"), ran);
    }

    @Test
    void aSuccessfulRunListsDevicesAndKeepsWhatItCouldNotRead() {
        GuestLspci.Listing listing = GuestLspci.run(command -> new RemoteShell.Result(0,
                "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204] (rev a1)\nodd line\n", ""),
                true, "kalmyk", "kalmyk@192.0.2.5");
        assertEquals(List.of("10de:2204"), listing.devices().stream().map(GuestLspci.Device::vendorDevice).toList());
        assertEquals(List.of("odd line"), listing.unparsed());
    }
}
