//SOURCES ../cli/Cli.java ../cli/Text.java ../model/Harvester.java RemoteShell.java GuestVmi.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * verify's proof that a device reached the guest: `lspci -nn` in the guest, parsed line by line,
 * and each device the VMI has (GuestVmi.java) found by its vendor:device id. The command runs
 * through a {@link RemoteShell}; nothing in the guest changes.
 */
public final class GuestLspci {
    private GuestLspci() {}

    /** `01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] [10de:2204] (rev a1)` */
    public static final Pattern LINE = Pattern.compile(
            "^(\\S+) (.+?) \\[([0-9a-fA-F]{4})\\]: (.*) \\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\\](?: \\(rev ([0-9a-fA-F]{2})\\))?.*$");

    /** One parsed `lspci -nn` line. */
    public record Device(String slot, String className, String classId, String description, String vendorId, String deviceId) {
        public String vendorDevice() {
            return vendorId + ":" + deviceId;
        }

        public boolean isNvidia() {
            return Harvester.NVIDIA_VENDOR_ID.equalsIgnoreCase(vendorId);
        }

        /** The -o json/yaml form (field names are part of the output). */
        public Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("slot", slot);
            m.put("class", className);
            m.put("classId", classId);
            m.put("description", description);
            m.put("vendorId", vendorId);
            m.put("deviceId", deviceId);
            return m;
        }
    }

    /** What `lspci -nn` listed: the lines it parsed, and those it could not (reported, not dropped). */
    public record Listing(List<Device> devices, List<String> unparsed) {}

    /** An expected device and the guest's device showing its id (null: not visible in the guest). */
    public record Presence(GuestVmi.Expected expected, Device seen) {
        public boolean present() {
            return seen != null;
        }

        /** The -o json/yaml form (field names are part of the output). */
        public Map<String, Object> asMap() {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("name", expected.name());
            d.put("resourceName", expected.resourceName());
            d.put("pciDevice", expected.pciDevice());
            d.put("vendorDevice", expected.vendorDevice());
            d.put("present", present());
            d.put("guestSlot", seen == null ? null : seen.slot());
            d.put("guestDescription", guestDescription());
            return d;
        }

        public String guestDescription() {
            return seen == null ? null : seen.className() + ": " + seen.description();
        }
    }

    /** The guest's command: through `sudo -n` as the runbook does, or plain. */
    public static String command(boolean sudo) {
        return sudo ? "sudo -n lspci -nn" : "lspci -nn";
    }

    /**
     * Runs lspci -nn in the guest and parses what it lists. When it fails, a user error says why and
     * what to do: sudo wants a password (exit 25), lspci is missing or fails (exit 8).
     */
    public static Listing run(RemoteShell guest, boolean sudo, String user, String display) {
        RemoteShell.Result r = guest.run(command(sudo));
        if (r.exit() != 0) throw failure(r, sudo, user, display);
        List<String> unparsed = new ArrayList<>();
        return new Listing(parse(r.out(), unparsed), unparsed);
    }

    static Cli.UserError failure(RemoteShell.Result r, boolean sudo, String user, String display) {
        String err = r.err().strip();
        if (sudo && (err.contains("a password is required") || err.contains("a terminal is required"))) {
            return new Cli.UserError(Cli.Exit.SUDO_PASSWORD, "sudo in the guest needs a password for " + user + " (" + Text.firstOutputLine(err) + ")"
                    + " — pass --no-sudo (lspci -nn works unprivileged), or allow it in the guest: echo '" + user
                    + " ALL=(root) NOPASSWD: /usr/bin/lspci' | sudo tee /etc/sudoers.d/lspci");
        }
        if (r.exit() == 127 || err.contains("command not found")) {
            return new Cli.UserError(Cli.Exit.PRECONDITION, "lspci is not installed in the guest (" + Text.firstOutputLine(err) + ")"
                    + " — install pciutils in the guest (sudo apt-get install pciutils)");
        }
        return new Cli.UserError(Cli.Exit.PRECONDITION, "lspci -nn failed in the guest (exit " + r.exit() + ": " + Text.firstOutputLine(err)
                + ") — run it by hand: ssh " + display + " lspci -nn");
    }

    /** The devices of lspci -nn's output; lines that are not a device go to {@code unparsed} as printed. */
    public static List<Device> parse(String text, List<String> unparsed) {
        List<Device> out = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) continue;
            Matcher m = LINE.matcher(line.strip());
            if (m.matches()) {
                out.add(new Device(m.group(1), m.group(2), m.group(3).toLowerCase(), m.group(4),
                        m.group(5).toLowerCase(), m.group(6).toLowerCase()));
            } else {
                unparsed.add(line);
            }
        }
        return out;
    }

    /** Each expected device, in order, with the first guest device of its id not already taken by an earlier one. */
    public static List<Presence> find(List<GuestVmi.Expected> expected, List<Device> guest) {
        List<Device> unmatched = new ArrayList<>(guest);
        List<Presence> out = new ArrayList<>();
        for (GuestVmi.Expected e : expected) {
            Device seen = unmatched.stream().filter(g -> g.vendorDevice().equalsIgnoreCase(e.vendorDevice())).findFirst().orElse(null);
            if (seen != null) unmatched.remove(seen);
            out.add(new Presence(e, seen));
        }
        return out;
    }
}
