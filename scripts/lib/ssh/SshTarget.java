//SOURCES SshException.java SshConfig.java

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where, as whom and how to connect, fully resolved from command-line overrides, ssh_config and
 * defaults — one hop of a route. {@link #jump()} is the hop we reach this one through
 * (ProxyJump), null for a direct connection. {@link #source()} says where the address came from,
 * e.g. {@code ssh_config Host docker-host (/home/u/.ssh/config:4)} or {@code VMI IP}.
 */
public record SshTarget(
        String name,
        String host,
        int port,
        String user,
        List<Path> identityFiles,
        boolean identitiesOnly,
        Path agentSocket,
        List<Path> knownHostsFiles,
        List<Path> globalKnownHostsFiles,
        boolean acceptNew,
        String hostKeyAlias,
        boolean hashKnownHosts,
        Duration connectTimeout,
        SshTarget jump,
        String source,
        List<String> warnings) {

    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    /** OpenSSH's default IdentityFile list, minus the types sshj cannot use (security keys, XMSS, DSA). */
    private static final List<String> DEFAULT_IDENTITIES = List.of("id_rsa", "id_ecdsa", "id_ed25519");
    /** The classic jump-host ProxyCommand, which means the same as ProxyJump HOST. */
    private static final Pattern SSH_W = Pattern.compile("ssh\\s+(?:-q\\s+)?-W\\s+\\[?%h\\]?:%p\\s+(?:-q\\s+)?(\\S+)");

    /** What the command line says; null/empty means "not given" (ssh_config decides). */
    public record Overrides(String user, Integer port, List<Path> identities, Path knownHosts, boolean acceptNew,
                            Duration connectTimeout, Map<String, String> env) {
        public static Overrides none() {
            return new Overrides(null, null, List.of(), null, false, null, System.getenv());
        }
    }

    /** {@code user@host} or {@code user@host:port}. */
    public String display() {
        return user + "@" + host + (port == 22 ? "" : ":" + port);
    }

    /** The name the host key is looked up and recorded under: HostKeyAlias, else host ([host]:port off 22). */
    public String hostKeyName() {
        return hostKeyAlias != null ? hostKeyAlias : KnownHosts.hostKeyName(host, port);
    }

    /** Every hop from the first one we dial to this target, e.g. [bastion, docker-host]. */
    public List<SshTarget> route() {
        List<SshTarget> r = new ArrayList<>();
        for (SshTarget t = this; t != null; t = t.jump()) r.add(0, t);
        return r;
    }

    /**
     * Resolves {@code name} the way a user's {@code ssh name} would when a Host/Match block other
     * than a catch-all applies to it; otherwise resolves {@code fallbackAddress} (e.g. the VMI's IP),
     * whose blocks may still set user, port, keys. {@code fallbackSource} names that address in
     * reports ("VMI IP"). {@code defaultUser} (null: the local user) applies when neither the
     * command line nor ssh_config gives one, e.g. "rancher" for Harvester nodes.
     */
    public static SshTarget resolve(SshConfig config, String name, String fallbackAddress, String fallbackSource,
                                    String defaultUser, Overrides o) {
        Map<String, String> preset = preset(o.user(), o.port());
        SshConfig.Settings byName = config.resolve(name, preset);
        boolean alias = !byName.specificBlocks().isEmpty() || fallbackAddress == null;
        if (alias) {
            String address = byName.hostName();
            String source = byName.specificBlocks().isEmpty() ? "the name " + name + " (no ssh_config block)"
                    : "ssh_config " + byName.specificBlocks().get(0);
            if (address == null && fallbackAddress != null) {
                address = fallbackAddress; // a block without HostName: the VM name need not resolve in DNS
                source += ", address from the " + fallbackSource;
            }
            return build(config, byName, address != null ? address : name, source, defaultUser, o, null, new LinkedHashMap<>(), new ArrayList<>());
        }
        SshConfig.Settings byAddress = config.resolve(fallbackAddress, preset);
        String address = byAddress.hostName() != null ? byAddress.hostName() : fallbackAddress;
        String source = fallbackSource + " " + fallbackAddress + " (no ssh_config Host block for " + name + ")"
                + (byAddress.specificBlocks().isEmpty() ? "" : "; settings from ssh_config " + byAddress.specificBlocks().get(0));
        return build(config, byAddress, address, source, defaultUser, o, null, new LinkedHashMap<>(), new ArrayList<>());
    }

    private static Map<String, String> preset(String user, Integer port) {
        Map<String, String> p = new HashMap<>();
        if (user != null) p.put("user", user);
        if (port != null) p.put("port", String.valueOf(port));
        return p;
    }

    /**
     * One hop: settings → target, then its jump hosts. {@code presetJumps} are the hops before it
     * from a ProxyJump list (they replace its own ProxyJump, as ssh -J does); {@code chain} detects loops.
     */
    private static SshTarget build(SshConfig config, SshConfig.Settings s, String address, String source, String defaultUser,
                                   Overrides o, List<String> presetJumps, Map<String, String> chain, List<String> jumpLines) {
        List<String> warnings = new ArrayList<>(s.warnings());
        Integer port = s.port();
        int p = port != null ? port : 22;
        String user = s.user() != null ? s.user() : defaultUser != null ? defaultUser : config.localUser();
        String hopKey = (address + ":" + p).toLowerCase(Locale.ROOT);
        String hopName = s.originalHost().equalsIgnoreCase(address) ? address : s.originalHost() + " (" + address + ")";
        if (chain.putIfAbsent(hopKey, hopName) != null) {
            List<String> loop = new ArrayList<>(chain.values());
            loop.add(hopName);
            throw SshException.config("ProxyJump loop: " + String.join(" -> ", loop)
                    + " — fix ProxyJump" + (jumpLines.isEmpty() ? "" : " at " + String.join(", ", jumpLines)) + " so the jump hosts do not lead back");
        }
        Map<String, String> tokens = Map.of("%d", config.home().toString(), "%u", config.localUser(), "%h", address,
                "%r", user, "%p", String.valueOf(p), "%n", s.originalHost());

        List<Path> ids = new ArrayList<>(o.identities());
        for (SshConfig.Value v : s.all("identityfile")) {
            if (!v.first().equalsIgnoreCase("none")) ids.add(path(v.first(), config.home(), tokens));
        }
        if (ids.isEmpty()) {
            for (String f : DEFAULT_IDENTITIES) {
                Path d = config.home().resolve(".ssh").resolve(f);
                if (Files.isRegularFile(d)) ids.add(d);
            }
        }
        Boolean identitiesOnly = s.flag("identitiesonly");

        Path agent = agentSocket(s.get("identityagent"), o.env(), config.home(), tokens);

        List<Path> known = new ArrayList<>();
        List<Path> global = new ArrayList<>();
        if (o.knownHosts() != null) {
            known.add(o.knownHosts()); // --known-hosts FILE: that file only
        } else {
            SshConfig.Value ukh = s.get("userknownhostsfile");
            List<String> files = ukh != null ? ukh.args() : List.of("~/.ssh/known_hosts", "~/.ssh/known_hosts2");
            for (String f : files) if (!f.equalsIgnoreCase("none")) known.add(path(f, config.home(), tokens));
            SshConfig.Value gkh = s.get("globalknownhostsfile");
            List<String> gfiles = gkh != null ? gkh.args() : List.of("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2");
            for (String f : gfiles) if (!f.equalsIgnoreCase("none")) global.add(path(f, config.home(), tokens));
        }

        boolean acceptNew = o.acceptNew();
        SshConfig.Value strict = s.get("stricthostkeychecking");
        if (!acceptNew && strict != null) {
            switch (strict.first().toLowerCase(Locale.ROOT)) {
                case "accept-new" -> acceptNew = true;
                case "no", "off" -> {
                    acceptNew = true; // records unknown keys as ssh does; a changed key is still refused
                    warnings.add("ssh_config " + strict.where() + ": StrictHostKeyChecking " + strict.first()
                            + " is treated as accept-new: a changed host key is still refused");
                }
                case "yes", "ask" -> { }
                default -> throw SshException.config("ssh_config " + strict.where() + ": StrictHostKeyChecking \"" + strict.first()
                        + "\" is not yes, accept-new, no or ask — fix the line");
            }
        }
        SshConfig.Value alias = s.get("hostkeyalias");
        Boolean hash = s.flag("hashknownhosts");

        Duration timeout = o.connectTimeout();
        SshConfig.Value ct = s.get("connecttimeout");
        if (timeout == null && ct != null && !ct.first().equalsIgnoreCase("none")) {
            try {
                timeout = Duration.ofSeconds(Integer.parseInt(ct.first()));
            } catch (NumberFormatException e) {
                throw SshException.config("ssh_config " + ct.where() + ": ConnectTimeout \"" + ct.first() + "\" is not seconds — fix the line");
            }
        }
        if (timeout == null) timeout = DEFAULT_CONNECT_TIMEOUT;

        List<String> jumps = presetJumps;
        if (jumps == null) {
            jumps = List.of();
            SshConfig.Value pj = s.get("proxyjump");
            SshConfig.Value pc = s.get("proxycommand");
            if (pj != null && !pj.first().equalsIgnoreCase("none")) {
                jumps = List.of(String.join(",", pj.args()).split(","));
                jumpLines.add(pj.where());
            } else if (pc != null && !pc.first().equalsIgnoreCase("none")) {
                Matcher m = SSH_W.matcher(String.join(" ", pc.args()));
                if (m.matches()) {
                    jumps = List.of(m.group(1)); // ProxyCommand ssh -W %h:%p HOST is ProxyJump HOST
                    jumpLines.add(pc.where());
                } else {
                    warnings.add("ssh_config " + pc.where() + ": ProxyCommand is not supported — connecting directly to "
                            + address + " port " + p + "; use ProxyJump for a jump host");
                }
            }
        }
        SshTarget jump = null;
        if (!jumps.isEmpty()) {
            String last = jumps.get(jumps.size() - 1).strip();
            List<String> before = jumps.size() > 1 ? jumps.subList(0, jumps.size() - 1) : null;
            jump = hop(config, last, before, o, chain, jumpLines);
        }
        return new SshTarget(s.originalHost(), address, p, user, List.copyOf(ids), Boolean.TRUE.equals(identitiesOnly), agent,
                List.copyOf(known), List.copyOf(global), acceptNew, alias == null ? null : alias.first(), Boolean.TRUE.equals(hash),
                timeout, jump, source, List.copyOf(warnings));
    }

    /** A ProxyJump hop {@code [user@]host[:port]} or {@code ssh://[user@]host[:port]}, resolved through ssh_config too. */
    private static SshTarget hop(SshConfig config, String spec, List<String> before, Overrides o, Map<String, String> chain,
                                 List<String> jumpLines) {
        String s = spec.startsWith("ssh://") ? spec.substring(6) : spec;
        String user = null;
        Integer port = null;
        int at = s.lastIndexOf('@');
        if (at >= 0) {
            user = s.substring(0, at);
            s = s.substring(at + 1);
        }
        Matcher m = Pattern.compile("^\\[(.+)\\](?::(\\d+))?$|^([^:]+)(?::(\\d+))?$").matcher(s);
        if (s.isEmpty() || !m.matches()) {
            throw SshException.config("ProxyJump hop \"" + spec + "\" is not [user@]host[:port] — fix the ProxyJump line");
        }
        String host = m.group(1) != null ? m.group(1) : m.group(3);
        String portText = m.group(1) != null ? m.group(2) : m.group(4);
        if (portText != null) port = Integer.parseInt(portText);
        // A jump host gets no command-line overrides but the environment and timeouts (ssh -J passes neither -l nor -p on).
        Overrides hopOverrides = new Overrides(null, null, List.of(), o.knownHosts(), o.acceptNew(), o.connectTimeout(), o.env());
        SshConfig.Settings settings = config.resolve(host, preset(user, port));
        String address = settings.hostName() != null ? settings.hostName() : host;
        String source = "ProxyJump " + spec + (settings.specificBlocks().isEmpty() ? "" : " (ssh_config " + settings.specificBlocks().get(0) + ")");
        return build(config, settings, address, source, null, hopOverrides, before, chain, jumpLines);
    }

    private static Path agentSocket(SshConfig.Value identityAgent, Map<String, String> env, Path home, Map<String, String> tokens) {
        String v = identityAgent == null ? "SSH_AUTH_SOCK" : identityAgent.first();
        if (v.equalsIgnoreCase("none")) return null;
        if (v.equals("SSH_AUTH_SOCK") || v.startsWith("$")) {
            String s = env.get(v.startsWith("$") ? v.substring(1) : v);
            return s == null || s.isBlank() ? null : Path.of(s);
        }
        return path(v, home, tokens);
    }

    /** ~ and %-tokens as ssh expands them in file names. */
    static Path path(String raw, Path home, Map<String, String> tokens) {
        String s = raw.replace("%%", "\u0000");
        for (Map.Entry<String, String> t : tokens.entrySet()) s = s.replace(t.getKey(), t.getValue());
        s = s.replace("\u0000", "%");
        if (s.equals("~")) return home;
        if (s.startsWith("~/")) return home.resolve(s.substring(2));
        return Path.of(s);
    }
}
