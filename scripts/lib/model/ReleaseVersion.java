import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A version as a cluster reports it: Harvester's server-version ("v1.9.0", "v1.9.0-rc4") or
 * KubeVirt's observedKubeVirtVersion ("1.8.4", "v1.5.0", SUSE builds "1.4.0-150600.5.9.1").
 * A pre-release (-rcN, -dev) sorts before its release; a build suffix of digits does not.
 */
public record ReleaseVersion(int major, int minor, int patch, String preRelease, String text) implements Comparable<ReleaseVersion> {
    private static final Pattern FORM = Pattern.compile("^v?(\\d+)\\.(\\d+)(?:\\.(\\d+))?(?:-([0-9A-Za-z.\\-]+))?(?:\\+.*)?$");

    /** The version in the text, or null when it is not one (empty, "dev", a git hash). */
    public static ReleaseVersion parse(String text) {
        if (text == null) return null;
        Matcher m = FORM.matcher(text.trim());
        if (!m.matches()) return null;
        String suffix = m.group(4);
        // SUSE's package build suffix (digits and dots) is not a pre-release
        String pre = suffix == null || suffix.matches("[0-9.]+") ? "" : suffix;
        return new ReleaseVersion(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                m.group(3) == null ? 0 : Integer.parseInt(m.group(3)), pre, text.trim());
    }

    public boolean isPreRelease() {
        return !preRelease.isEmpty();
    }

    /** Same major.minor line, e.g. 1.8.x. */
    public boolean inLine(int major, int minor) {
        return this.major == major && this.minor == minor;
    }

    /** At least major.minor.patch as released (a pre-release of exactly that version is not). */
    public boolean atLeast(int major, int minor, int patch) {
        return compareTo(new ReleaseVersion(major, minor, patch, "", major + "." + minor + "." + patch)) >= 0;
    }

    @Override
    public int compareTo(ReleaseVersion o) {
        int c = Integer.compare(major, o.major);
        if (c == 0) c = Integer.compare(minor, o.minor);
        if (c == 0) c = Integer.compare(patch, o.patch);
        if (c == 0 && isPreRelease() != o.isPreRelease()) c = isPreRelease() ? -1 : 1;
        if (c == 0) c = preRelease.compareTo(o.preRelease);
        return c;
    }

    @Override
    public String toString() {
        return text;
    }
}
