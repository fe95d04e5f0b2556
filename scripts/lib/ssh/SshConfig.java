//SOURCES SshException.java

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * ssh_config(5) read the way OpenSSH reads it: files in order (the user's, then the system's),
 * the first obtained value of each keyword wins (IdentityFile and CertificateFile accumulate),
 * {@code Host} patterns with *, ? and !, {@code Match host/originalhost/user/localuser/all}
 * (criteria ANDed, ! negates), {@code Include} (relative to ~/.ssh for the user's file, globs,
 * conditional when inside a block), {@code ProxyJump} and {@code ProxyCommand} competing as in
 * ssh (whichever comes first). What cannot be honoured is a one-line warning, never ignored silently.
 */
public final class SshConfig {
    /** OpenSSH's READCONF_MAX_DEPTH: deeper Include nesting is a loop. */
    private static final int MAX_INCLUDE_DEPTH = 16;
    /** Keywords whose values accumulate instead of first-wins. */
    private static final Set<String> ACCUMULATE = Set.of("identityfile", "certificatefile");
    /** Directives that change where or how ssh connects and that we cannot honour: warned about when they apply. */
    private static final Map<String, String> UNSUPPORTED = Map.of(
            "certificatefile", "certificates are not supported: authenticating with the plain keys",
            "pkcs11provider", "PKCS#11 keys are not supported: using the agent and key files only",
            "securitykeyprovider", "security-key providers are not supported: using the agent and key files only",
            "knownhostscommand", "KnownHostsCommand is not supported: only known_hosts files are checked",
            "canonicalizehostname", "CanonicalizeHostname is not supported: host names are used as written");

    /** One directive's arguments as written, and where it is (file:line) for messages. */
    public record Value(List<String> args, String where) {
        public String first() {
            return args.isEmpty() ? "" : args.get(0);
        }
    }

    private final Path userFile;
    private final Path systemFile;
    private final Path home;
    private final String localUser;

    /**
     * @param userFile   the user's config (~/.ssh/config, or --ssh-config FILE); missing is fine
     * @param systemFile the system-wide config read after it (/etc/ssh/ssh_config), or null to skip
     *                   (ssh -F skips it too)
     * @param home       the home directory for ~ and relative Includes (~/.ssh)
     * @param localUser  the local user name (%u, Match localuser, the default remote user)
     */
    public SshConfig(Path userFile, Path systemFile, Path home, String localUser) {
        this.userFile = userFile;
        this.systemFile = systemFile;
        this.home = home;
        this.localUser = localUser;
    }

    /** The config ssh itself would read: --ssh-config FILE alone, else ~/.ssh/config then /etc/ssh/ssh_config. */
    public static SshConfig standard(Path explicitFile) {
        Path home = Path.of(System.getProperty("user.home"));
        String user = System.getProperty("user.name");
        if (explicitFile != null) {
            if (!Files.isRegularFile(explicitFile)) {
                throw SshException.config("--ssh-config " + explicitFile + " does not exist — pass the path of an ssh_config file, e.g. ~/.ssh/config");
            }
            return new SshConfig(explicitFile, null, home, user);
        }
        return new SshConfig(home.resolve(".ssh/config"), Path.of("/etc/ssh/ssh_config"), home, user);
    }

    public Path home() {
        return home;
    }

    public String localUser() {
        return localUser;
    }

    public Path userFile() {
        return userFile;
    }

    /**
     * The settings that apply to {@code host} (the name as typed: an alias or an address).
     * {@code preset} holds values given on the command line (lower-case keyword → value): they win,
     * and Match user sees a preset User, as with ssh -l.
     */
    public Settings resolve(String host, Map<String, String> preset) {
        Settings s = new Settings(host);
        preset.forEach((k, v) -> s.values.put(k.toLowerCase(Locale.ROOT), new Value(List.of(v), "command line")));
        Walk walk = new Walk(s);
        if (userFile != null && Files.isRegularFile(userFile)) walk.file(userFile, true, 0, false);
        if (systemFile != null && Files.isRegularFile(systemFile)) walk.file(systemFile, false, 0, false);
        return s;
    }

    /** The settings obtained for one host: first value per keyword, plus where each came from. */
    public static final class Settings {
        private final String originalHost;
        final Map<String, Value> values = new LinkedHashMap<>();
        final Map<String, List<Value>> lists = new LinkedHashMap<>();
        final List<String> blocks = new ArrayList<>();
        final Set<String> warnings = new LinkedHashSet<>();

        Settings(String originalHost) {
            this.originalHost = originalHost;
        }

        public String originalHost() {
            return originalHost;
        }

        /** The first value of a keyword (lower-case), or null. */
        public Value get(String keyword) {
            return values.get(keyword);
        }

        /** Every value of an accumulating keyword (IdentityFile, CertificateFile), in order. */
        public List<Value> all(String keyword) {
            return lists.getOrDefault(keyword, List.of());
        }

        /**
         * The Host/Match lines, other than catch-alls (Host *, Match all), that applied, e.g.
         * {@code Host docker-host (/home/u/.ssh/config:4)}: a non-empty list means the name is a
         * known alias.
         */
        public List<String> specificBlocks() {
            return List.copyOf(blocks);
        }

        /** One-line warnings about the config (missing Include, unparsable or unsupported lines). */
        public List<String> warnings() {
            return List.copyOf(warnings);
        }

        /** HostName with %h and %% expanded, or null. */
        public String hostName() {
            Value v = get("hostname");
            return v == null ? null : v.first().replace("%%", "\u0000").replace("%h", originalHost).replace("\u0000", "%");
        }

        public String user() {
            Value v = get("user");
            return v == null ? null : v.first();
        }

        public Integer port() {
            Value v = get("port");
            if (v == null) return null;
            try {
                int p = Integer.parseInt(v.first());
                if (p >= 1 && p <= 65535) return p;
            } catch (NumberFormatException ignored) {
                // reported below
            }
            throw SshException.config("ssh_config " + v.where() + ": bad Port \"" + v.first() + "\" — use 1-65535");
        }

        /** yes/no keywords: null when unset. */
        public Boolean flag(String keyword) {
            Value v = get(keyword);
            if (v == null) return null;
            String s = v.first().toLowerCase(Locale.ROOT);
            if (s.equals("yes") || s.equals("true")) return true;
            if (s.equals("no") || s.equals("false")) return false;
            throw SshException.config("ssh_config " + v.where() + ": " + keyword + " must be yes or no, not \"" + v.first() + "\"");
        }
    }

    /** One pass over the files for one host, OpenSSH's read_config_file_depth. */
    private final class Walk {
        private final Settings s;

        Walk(Settings s) {
            this.s = s;
        }

        void file(Path file, boolean userConfig, int depth, boolean neverMatch) {
            List<String> lines;
            try {
                lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw SshException.config("cannot read ssh_config " + file + " (" + e.getMessage() + ") — fix its permissions or pass --ssh-config FILE");
            }
            boolean active = !neverMatch; // lines before the first Host/Match apply to every host
            for (int i = 0; i < lines.size(); i++) {
                String where = file + ":" + (i + 1);
                List<String> words = split(lines.get(i), where);
                if (words.isEmpty()) continue;
                String keyword = words.get(0).toLowerCase(Locale.ROOT);
                List<String> args = words.subList(1, words.size());
                switch (keyword) {
                    case "host" -> active = !neverMatch && hostMatches(args, where);
                    case "match" -> active = !neverMatch && matchMatches(args, where);
                    case "include" -> {
                        for (String pattern : args) {
                            include(pattern, where, userConfig, depth, neverMatch || !active);
                        }
                    }
                    default -> {
                        if (active) obtain(keyword, args, where);
                    }
                }
            }
        }

        private void include(String pattern, String where, boolean userConfig, int depth, boolean inactive) {
            if (depth + 1 > MAX_INCLUDE_DEPTH) {
                throw SshException.config("ssh_config " + where + ": Include nested more than " + MAX_INCLUDE_DEPTH
                        + " deep (an Include loop?) — fix the Include lines");
            }
            String expanded = pattern.startsWith("~/") ? home.resolve(pattern.substring(2)).toString() : pattern;
            Path base = userConfig ? home.resolve(".ssh") : Path.of("/etc/ssh");
            Path path = Path.of(expanded).isAbsolute() ? Path.of(expanded) : base.resolve(expanded);
            List<Path> files = glob(path);
            boolean wildcard = pattern.contains("*") || pattern.contains("?") || pattern.contains("[");
            if (files.isEmpty()) {
                // ssh ignores a missing file silently, and a typo would silently drop the user's settings;
                // an empty glob (Debian's /etc/ssh/ssh_config.d/*.conf) is normal.
                if (!inactive && !wildcard) s.warnings.add("ssh_config " + where + ": Include " + pattern + ": no such file (" + path + ") — ignored, as ssh does; fix the path");
                return;
            }
            for (Path f : files) {
                if (Files.isRegularFile(f)) file(f, userConfig, depth + 1, inactive);
            }
        }

        private void obtain(String keyword, List<String> args, String where) {
            if (args.isEmpty()) {
                s.warnings.add("ssh_config " + where + ": " + keyword + " without a value — ignored");
                return;
            }
            Value v = new Value(List.copyOf(args), where);
            if (UNSUPPORTED.containsKey(keyword) && !args.get(0).equalsIgnoreCase("none") && !args.get(0).equalsIgnoreCase("no")) {
                s.warnings.add("ssh_config " + where + ": " + UNSUPPORTED.get(keyword));
            }
            if (ACCUMULATE.contains(keyword)) {
                s.lists.computeIfAbsent(keyword, k -> new ArrayList<>()).add(v);
                return;
            }
            // ProxyJump and ProxyCommand compete: whichever is specified first prevents the other (ssh_config(5)).
            if ((keyword.equals("proxyjump") && s.values.containsKey("proxycommand"))
                    || (keyword.equals("proxycommand") && s.values.containsKey("proxyjump"))) {
                return;
            }
            s.values.putIfAbsent(keyword, v);
        }

        private boolean hostMatches(List<String> patterns, String where) {
            boolean matched = false;
            boolean specific = false;
            for (String p : patterns) {
                boolean negated = p.startsWith("!");
                String glob = negated ? p.substring(1) : p;
                if (glob(glob, s.originalHost)) {
                    if (negated) return false;
                    matched = true;
                    specific |= !glob.equals("*");
                }
            }
            if (matched && specific) s.blocks.add("Host " + String.join(" ", patterns) + " (" + where + ")");
            return matched;
        }

        private boolean matchMatches(List<String> criteria, String where) {
            boolean all = true;
            boolean specific = false;
            for (int i = 0; i < criteria.size(); i++) {
                String c = criteria.get(i).toLowerCase(Locale.ROOT);
                boolean negated = c.startsWith("!");
                if (negated) c = c.substring(1);
                if (c.equals("all")) {
                    if (negated) all = false;
                    continue;
                }
                if (c.equals("canonical") || c.equals("final")) {
                    s.warnings.add("ssh_config " + where + ": Match " + c + " is not supported (no canonicalisation pass) — the block is skipped");
                    return false;
                }
                if (i + 1 >= criteria.size()) {
                    throw SshException.config("ssh_config " + where + ": Match " + c + " needs an argument — fix the Match line");
                }
                String arg = criteria.get(++i);
                boolean hit;
                switch (c) {
                    case "host" -> hit = patternList(arg, currentHost());
                    case "originalhost" -> hit = patternList(arg, s.originalHost);
                    case "user" -> hit = patternList(arg, s.values.containsKey("user") ? s.values.get("user").first() : localUser);
                    case "localuser" -> hit = patternList(arg, localUser);
                    default -> {
                        s.warnings.add("ssh_config " + where + ": Match " + c + " is not supported — the block is skipped");
                        return false;
                    }
                }
                if (hit == negated) all = false;
                specific = true;
            }
            if (all && specific) s.blocks.add("Match " + String.join(" ", criteria) + " (" + where + ")");
            return all;
        }

        /** Match host sees HostName as obtained so far (with %h), else the name as typed. */
        private String currentHost() {
            String h = s.hostName();
            return h != null ? h : s.originalHost;
        }
    }

    /** A comma-separated pattern list (Match, known_hosts): a negated hit vetoes, else any hit matches. */
    public static boolean patternList(String list, String name) {
        boolean matched = false;
        for (String p : list.split(",")) {
            boolean negated = p.startsWith("!");
            String glob = negated ? p.substring(1) : p;
            if (glob(glob, name)) {
                if (negated) return false;
                matched = true;
            }
        }
        return matched;
    }

    /** OpenSSH's match_pattern: * any run, ? one character, case-insensitive for host names. */
    public static boolean glob(String pattern, String name) {
        StringBuilder re = new StringBuilder();
        for (char c : pattern.toCharArray()) {
            if (c == '*') re.append(".*");
            else if (c == '?') re.append('.');
            else re.append(Pattern.quote(String.valueOf(c)));
        }
        return Pattern.compile(re.toString(), Pattern.CASE_INSENSITIVE | Pattern.DOTALL).matcher(name).matches();
    }

    /** Files matching a path whose components may hold glob characters, sorted as glob(3) does. */
    static List<Path> glob(Path pattern) {
        List<Path> current = new ArrayList<>(List.of(pattern.getRoot()));
        for (Path part : pattern) {
            String name = part.toString();
            List<Path> next = new ArrayList<>();
            boolean wild = name.contains("*") || name.contains("?") || name.contains("[");
            for (Path dir : current) {
                if (!wild) {
                    Path p = dir.resolve(name);
                    if (Files.exists(p)) next.add(p);
                    continue;
                }
                if (!Files.isDirectory(dir)) continue;
                PathMatcher m = FileSystems.getDefault().getPathMatcher("glob:" + name);
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                    for (Path p : ds) {
                        if (m.matches(p.getFileName()) && !p.getFileName().toString().startsWith(".")) next.add(p);
                    }
                } catch (IOException ignored) {
                    // unreadable directory: no matches, as glob(3)
                }
            }
            next.sort(null);
            current = next;
        }
        return current;
    }

    /**
     * One config line as OpenSSH's argv_split does it: the keyword ends at whitespace or '=',
     * arguments are separated by whitespace, "double" or 'single' quotes group, # starts a comment.
     */
    static List<String> split(String line, String where) {
        String s = line.strip();
        if (s.isEmpty() || s.startsWith("#")) return List.of();
        List<String> out = new ArrayList<>();
        int i = 0;
        int n = s.length();
        int k = 0;
        while (k < n && !Character.isWhitespace(s.charAt(k)) && s.charAt(k) != '=') k++;
        out.add(s.substring(0, k));
        i = k;
        while (i < n && Character.isWhitespace(s.charAt(i))) i++;
        if (i < n && s.charAt(i) == '=') i++;
        while (i < n) {
            while (i < n && Character.isWhitespace(s.charAt(i))) i++;
            if (i >= n) break;
            if (s.charAt(i) == '#') break;
            StringBuilder word = new StringBuilder();
            while (i < n && !Character.isWhitespace(s.charAt(i))) {
                char c = s.charAt(i);
                if (c == '"' || c == '\'') {
                    int end = s.indexOf(c, i + 1);
                    if (end < 0) throw SshException.config("ssh_config " + where + ": unterminated quote — fix the line");
                    word.append(s, i + 1, end);
                    i = end + 1;
                } else {
                    word.append(c);
                    i++;
                }
            }
            out.add(word.toString());
        }
        return out;
    }
}
