//FILES node/inspect-node.sh=../node/inspect-node.sh
//SOURCES ../cli/Bundled.java RemoteShell.java

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The node side of `diagnose --node-ssh`: the read-only script scripts/lib/node/inspect-node.sh
 * (bundled with //FILES, sent as one `sh -c` command line so nothing is copied to the node) and
 * the report it prints, parsed into a {@link Report}. The same script reads a real node's /sys
 * (root "") and the fake trees the tests pass as root.
 */
public final class NodeInspection {
    private NodeInspection() {}

    public static final String SCRIPT = "node/inspect-node.sh";
    /** $0 of the script inside `sh -c`: names it in the node's process list and lets stand-ins recognise it. */
    public static final String NAME = "inspect-node";

    /** What to inspect: root prefix ("" = the node's own /), the IOMMU group the cluster reports, and PCI addresses. */
    public record Request(String root, String group, List<String> addresses) {
        /** The command line for the node: {@code sh -c '<script>' inspect-node ROOT GROUP ADDR...}. */
        public String command() {
            StringBuilder sb = new StringBuilder("sh -c ").append(RemoteShell.quote(Bundled.read(SCRIPT))).append(' ').append(NAME);
            sb.append(' ').append(RemoteShell.quote(root)).append(' ').append(RemoteShell.quote(group == null ? "" : group));
            for (String a : addresses) sb.append(' ').append(RemoteShell.quote(a));
            return sb.toString();
        }

        /** The request in a command line built by {@link #command()}, or empty for any other command (used by stand-ins). */
        public static Optional<Request> parse(String command) {
            List<String> words = shellWords(command);
            if (words.size() < 6 || !words.get(0).equals("sh") || !words.get(1).equals("-c") || !words.get(3).equals(NAME)) {
                return Optional.empty();
            }
            return Optional.of(new Request(words.get(4), words.get(5), List.copyOf(words.subList(6, words.size()))));
        }
    }

    /** One PCI function as sysfs shows it; attribute values as the kernel prints them ("0x030000", "0x10de"), "-" when absent. */
    public record Function(String address, boolean present, String classCode, String vendor, String device,
                           String driver, String iommuGroup, String bootVga) {
        /** "10de:2204", comparable with a PCIDevice's vendorDevice(). */
        public String vendorDevice() {
            return hex(vendor) + ":" + hex(device);
        }

        /** The class without "0x" and prog-if: "0300" for a VGA controller (PCIDevice status.classId). */
        public String classId() {
            String c = hex(classCode);
            return c.length() >= 4 ? c.substring(0, 4) : c;
        }

        public boolean bridge() {
            return classId().equals("0604");
        }

        public boolean hasDriver() {
            return !"-".equals(driver);
        }

        private static String hex(String v) {
            return v == null ? "-" : v.toLowerCase().replaceFirst("^0x", "");
        }

        String render(String key) {
            if (!present) return key + "=" + address + " present=no";
            return key + "=" + address + " present=yes class=" + classCode + " vendor=" + vendor + " device=" + device
                    + " driver=" + driver + " iommu_group=" + iommuGroup + " boot_vga=" + bootVga;
        }

        static Function parse(String value) {
            String[] fields = value.split(" ");
            Map<String, String> f = new LinkedHashMap<>();
            for (int i = 1; i < fields.length; i++) {
                int eq = fields[i].indexOf('=');
                if (eq > 0) f.put(fields[i].substring(0, eq), fields[i].substring(eq + 1));
            }
            return new Function(fields[0], "yes".equals(f.get("present")), f.getOrDefault("class", "-"), f.getOrDefault("vendor", "-"),
                    f.getOrDefault("device", "-"), f.getOrDefault("driver", "-"), f.getOrDefault("iommu_group", "-"), f.getOrDefault("boot_vga", "-"));
        }
    }

    /** A virtual console: bound to a framebuffer driver when bind=1. */
    public record VtCon(String name, String bind, String driver) {}

    /**
     * What the script printed. {@code dmesgSource} is "dmesg", "sudo" or "none"; when "none",
     * {@code sudoPassword} says sudo asked for a password and {@code dmesgDenied} says why otherwise.
     * {@code uptime} is seconds since boot, -1 when unknown.
     */
    public record Report(String cmdline, double uptime, List<String> iommuUnits, int iommuGroups, String group, boolean groupMissing,
                         List<Function> members, List<Function> functions, List<VtCon> vtcons, List<String> framebuffers,
                         String user, String dmesgSource, boolean sudoPassword, String dmesgDenied, int groupAdds,
                         List<String> dmesg, boolean complete) {

        public boolean dmesgRead() {
            return !"none".equals(dmesgSource);
        }

        /** The report as the script prints it (the sandbox's node stand-in answers with this). */
        public String render() {
            List<String> l = new ArrayList<>();
            l.add("format=1");
            l.add(cmdline == null ? "cmdline.unreadable=/proc/cmdline" : "cmdline=" + cmdline);
            if (uptime >= 0) l.add("uptime=" + uptime);
            iommuUnits.forEach(u -> l.add("iommu=" + u));
            l.add("iommu_groups=" + iommuGroups);
            if (group != null && !group.isEmpty()) {
                l.add("group=" + group);
                if (groupMissing) l.add("group.missing=" + group);
            }
            members.forEach(m -> l.add(m.render("member")));
            functions.forEach(f -> l.add(f.render("function")));
            vtcons.forEach(v -> l.add("vtcon=" + v.name() + " bind=" + v.bind() + " name=" + v.driver()));
            framebuffers.forEach(f -> l.add("framebuffer=" + f));
            l.add("user=" + user);
            l.add("dmesg.source=" + dmesgSource);
            if (sudoPassword) l.add("sudo=password");
            if (dmesgDenied != null) l.add("dmesg.denied=" + dmesgDenied);
            if (dmesgRead()) l.add("dmesg.group_adds=" + groupAdds);
            dmesg.forEach(d -> l.add("dmesg=" + d));
            if (complete) l.add("end=ok");
            return String.join("\n", l) + "\n";
        }
    }

    /** Parses the script's output; unknown keys are ignored (a newer script may say more). */
    public static Report parse(String text) {
        String cmdline = null;
        double uptime = -1;
        List<String> units = new ArrayList<>();
        int groups = 0;
        String group = null;
        boolean groupMissing = false;
        List<Function> members = new ArrayList<>();
        List<Function> functions = new ArrayList<>();
        List<VtCon> vtcons = new ArrayList<>();
        List<String> framebuffers = new ArrayList<>();
        String user = "?";
        String source = "none";
        boolean sudoPassword = false;
        String denied = null;
        int adds = 0;
        List<String> dmesg = new ArrayList<>();
        boolean complete = false;
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq <= 0) continue;
            String key = line.substring(0, eq);
            String value = line.substring(eq + 1);
            switch (key) {
                case "cmdline" -> cmdline = value.strip();
                case "uptime" -> uptime = parseDouble(value);
                case "iommu" -> units.add(value);
                case "iommu_groups" -> groups = parseInt(value);
                case "group" -> group = value;
                case "group.missing" -> groupMissing = true;
                case "member" -> members.add(Function.parse(value));
                case "function" -> functions.add(Function.parse(value));
                case "vtcon" -> {
                    String[] f = value.split(" ", 3);
                    vtcons.add(new VtCon(f[0], f.length > 1 ? f[1].replaceFirst("^bind=", "") : "-",
                            f.length > 2 ? f[2].replaceFirst("^name=", "") : "-"));
                }
                case "framebuffer" -> framebuffers.add(value);
                case "user" -> user = value;
                case "dmesg.source" -> source = value;
                case "sudo" -> sudoPassword = "password".equals(value);
                case "dmesg.denied" -> denied = value;
                case "dmesg.group_adds" -> adds = parseInt(value);
                case "dmesg" -> dmesg.add(value);
                case "end" -> complete = true;
                default -> { }
            }
        }
        return new Report(cmdline, uptime, units, groups, group, groupMissing, members, functions, vtcons, framebuffers,
                user, source, sudoPassword, denied, adds, dmesg, complete);
    }

    private static double parseDouble(String s) {
        try {
            return Double.parseDouble(s.strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static int parseInt(String s) {
        try {
            return Integer.parseInt(s.strip());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** Splits a command line into words the way sh does for '...' quoting, \' and blanks (all {@link Request#command()} uses). */
    static List<String> shellWords(String command) {
        List<String> words = new ArrayList<>();
        StringBuilder w = null;
        for (int i = 0; i < command.length(); i++) {
            char c = command.charAt(i);
            if (c == '\'') {
                int end = command.indexOf('\'', i + 1);
                if (end < 0) end = command.length();
                if (w == null) w = new StringBuilder();
                w.append(command, i + 1, end);
                i = end;
            } else if (c == '\\' && i + 1 < command.length()) {
                if (w == null) w = new StringBuilder();
                w.append(command.charAt(++i));
            } else if (Character.isWhitespace(c)) {
                if (w != null) words.add(w.toString());
                w = null;
            } else {
                if (w == null) w = new StringBuilder();
                w.append(c);
            }
        }
        if (w != null) words.add(w.toString());
        return words;
    }
}
