//SOURCES ../cli/Cli.java ../cli/Render.java Diagnosis.java GuestVmi.java GuestLspci.java GuestDriver.java ../ssh/SshSession.java ../ssh/SshTarget.java

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What verify found in the guest, judged: each expected device visible or not, the guest's NVIDIA
 * devices, the driver's view (--nvidia-smi) and the Docker checks (--docker, else null). Printed
 * as a table or as the -o json/yaml document ({@link #asMap()}, whose field names are part of the output).
 */
public record GuestReport(String vm, String node, Connection guest, List<GuestLspci.Presence> expected, boolean anyNvidia,
                          GuestLspci.Listing lspci, GuestDriver.View driver, boolean requireDriver, List<Diagnosis.Finding> docker) {

    /** How verify reached the guest. */
    public record Connection(String display, String host, int port, String user, String source, List<String> via, String auth,
                             String hostKey, boolean hostKeyRecorded, String knownHostsEntry, boolean sudo) {
        public static Connection of(SshTarget target, SshSession session, boolean sudo) {
            return new Connection(target.display(), target.host(), target.port(), target.user(), target.source(), session.via(),
                    session.authenticatedWith(), session.hostKeyFingerprint(), session.hostKeyRecorded(), session.hostKeyEntry(), sudo);
        }

        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("host", host);
            m.put("port", port);
            m.put("user", user);
            m.put("source", source);
            m.put("via", via);
            m.put("auth", auth);
            m.put("hostKey", hostKey);
            m.put("hostKeyRecorded", hostKeyRecorded);
            m.put("knownHostsEntry", knownHostsEntry);
            m.put("sudo", sudo);
            return m;
        }
    }

    /** Why verify fails, in one line, and its exit code. */
    public record Failure(Cli.Exit exit, String message) {}

    public List<GuestLspci.Device> nvidiaDevices() {
        return lspci.devices().stream().filter(GuestLspci.Device::isNvidia).toList();
    }

    /** The devices verify looks for are visible: every expected one, or with --any-nvidia any NVIDIA device. */
    public boolean devicesVisible() {
        return anyNvidia ? !nvidiaDevices().isEmpty() : expected.stream().allMatch(GuestLspci.Presence::present);
    }

    public boolean driverFails() {
        return requireDriver && driver != null && driver.status() != GuestDriver.Status.OK;
    }

    public boolean softwareFails() {
        return docker != null && Diagnosis.worst(docker) == Diagnosis.Status.FAIL;
    }

    public boolean pass() {
        return devicesVisible() && !driverFails() && !softwareFails();
    }

    /** The first failure (devices, then the Docker checks, then the driver), null when verify passes. */
    public Failure failure(String vmName) {
        if (!devicesVisible()) {
            String missing = anyNvidia ? "no NVIDIA (10de) device"
                    : String.join(", ", expected.stream().filter(p -> !p.present())
                    .map(p -> "[" + p.expected().vendorDevice() + "] (" + p.expected().name() + ")").toList());
            return new Failure(Cli.Exit.DEVICE_ABSENT, missing + " not visible in the guest's lspci -nn although the VMI has the hostDevice"
                    + " — restart the VM so it boots with the device (virtctl restart " + vmName + "), then run: diagnose " + vmName);
        }
        if (softwareFails()) {
            return new Failure(Cli.Exit.GUEST_SOFTWARE, "the device is visible but " + String.join(", ", docker.stream()
                    .filter(f -> f.status() == Diagnosis.Status.FAIL).map(Diagnosis.Finding::check).toList())
                    + " failed in the guest — run the FIX commands above in the guest, then verify again with --docker");
        }
        if (driverFails()) {
            return new Failure(Cli.Exit.PRECONDITION, "the device is visible but the NVIDIA driver is not working in the guest (" + driver.message()
                    + ") — install the driver in the guest (e.g. sudo ubuntu-drivers install) or drop --require-driver");
        }
        return null;
    }

    public Map<String, Object> asMap() {
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("vm", vm);
        report.put("phase", "Running");
        report.put("node", node);
        report.put("guest", guest.asMap());
        report.put("expected", expected.stream().map(GuestLspci.Presence::asMap).toList());
        report.put("anyNvidia", anyNvidia);
        report.put("nvidiaDevices", nvidiaDevices().stream().map(GuestLspci.Device::asMap).toList());
        report.put("lspci", lspci.devices().stream().map(GuestLspci.Device::asMap).toList());
        if (!lspci.unparsed().isEmpty()) report.put("unparsedLspciLines", lspci.unparsed());
        if (driver != null) report.put("driver", driver.asMap());
        if (docker != null) report.put("docker", docker.stream().map(Diagnosis.Finding::asMap).toList());
        report.put("result", pass() ? "PASS" : "FAIL");
        return report;
    }

    public void print(PrintWriter out) {
        out.println("VM:     " + vm + " (Running on " + node + ")");
        String entry = String.valueOf(guest.knownHostsEntry());
        out.println("GUEST:  " + guest.display() + ", host key " + guest.hostKey()
                + (guest.hostKeyRecorded() ? " (new: recorded in " + entry.replaceFirst(":\\d+$", "") + ")" : " (known)"));
        out.println("SSH:    " + guest.source() + (guest.via().isEmpty() ? "" : "; via " + String.join(", ", guest.via())) + "; " + guest.auth());
        out.println();
        if (!expected.isEmpty()) {
            Render.Table t = new Render.Table("HOSTDEVICE", "RESOURCE", "ID", "GUEST SLOT", "RESULT", "GUEST DESCRIPTION");
            for (GuestLspci.Presence p : expected) {
                t.row(p.expected().name(), p.expected().resourceName(), p.expected().vendorDevice(), p.present() ? p.seen().slot() : null,
                        p.present() ? "PASS" : "FAIL", p.guestDescription());
            }
            t.print(out);
            out.println();
        }
        List<GuestLspci.Device> nvidia = nvidiaDevices();
        out.println(nvidia.isEmpty() ? "NVIDIA devices in the guest: none" : "NVIDIA devices in the guest:");
        for (GuestLspci.Device n : nvidia) {
            out.println("  " + n.slot() + " " + n.className() + " [" + n.classId() + "]: " + n.description() + " [" + n.vendorDevice() + "]");
        }
        if (driver != null) {
            out.println("DRIVER: " + (driver.status() == GuestDriver.Status.OK ? "OK" : requireDriver ? "FAIL" : "WARN") + " — " + driver.message());
            for (GuestDriver.Gpu gpu : driver.gpus()) out.println("  GPU " + gpu.index() + ": " + gpu.name() + " (UUID: " + gpu.uuid() + ")");
        }
        if (docker != null && !docker.isEmpty()) {
            out.println();
            Render.Table t = new Render.Table("CHECK", "STATUS", "SUBJECT", "EVIDENCE");
            for (Diagnosis.Finding f : docker) t.row(f.check(), f.status(), f.subject(), f.evidence());
            t.print(out);
            // One FIX line per distinct fix, naming the checks it answers (as diagnose prints them).
            Map<String, List<String>> fixes = new LinkedHashMap<>();
            for (Diagnosis.Finding f : docker) {
                if (f.status() != Diagnosis.Status.PASS && f.fix() != null) fixes.computeIfAbsent(f.fix(), k -> new ArrayList<>()).add(f.check());
            }
            fixes.forEach((fix, checks) -> out.println("FIX: " + fix + "   # " + String.join(", ", checks)));
        }
        out.println("RESULT: " + (pass() ? "PASS" : "FAIL") + (!devicesVisible() ? (anyNvidia ? " — no NVIDIA device in the guest" : " — expected device missing in the guest")
                : softwareFails() ? " — the guest's driver or Docker is not ready (FIX above)" : ""));
        out.flush();
    }
}
