//SOURCES ../cli/Cli.java SshConfig.java SshTarget.java

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import picocli.CommandLine.Option;

/**
 * The SSH options every command that logs in somewhere shares (verify into the guest, diagnose
 * --node-ssh into the node), named as ssh names them: which ssh_config, which known_hosts, which
 * keys, how long to wait for the connection. Host, user and port stay with each command, since
 * what they default to differs (the VMI's IP, the node's InternalIP; your user, rancher).
 */
public class SshOptions {
    @Option(names = {"-i", "--identity"}, paramLabel = "FILE", description = "Private key file, as ssh -i (repeatable; added before ssh_config IdentityFile; default ~/.ssh/id_rsa, id_ecdsa, id_ed25519). ssh-agent keys (SSH_AUTH_SOCK) come first; IdentitiesOnly yes limits them to these files.")
    public List<Path> identities = new ArrayList<>();

    @Option(names = "--ssh-config", paramLabel = "FILE", description = "OpenSSH client config, as ssh -F (default: ~/.ssh/config, then /etc/ssh/ssh_config)")
    public Path sshConfig;

    @Option(names = "--known-hosts", paramLabel = "FILE", description = "known_hosts file, instead of ssh_config UserKnownHostsFile (default: ~/.ssh/known_hosts, known_hosts2)")
    public Path knownHosts;

    @Option(names = "--accept-new", description = "Record the host key of a host not yet in known_hosts (StrictHostKeyChecking=accept-new; hashed when the file is or HashKnownHosts yes); a changed or revoked key is still refused")
    public boolean acceptNew;

    @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "SSH connect timeout per hop (default: ssh_config ConnectTimeout, else 10)")
    public Integer connectTimeout;

    /** Bad values are usage errors (exit 2), found before anything connects. */
    public void validate() {
        if (connectTimeout != null && connectTimeout <= 0) {
            throw new Cli.UserError(Cli.Exit.USAGE, "--connect-timeout must be positive seconds, e.g. --connect-timeout 10");
        }
        for (Path id : identities) {
            if (!Files.isRegularFile(id)) {
                throw new Cli.UserError(Cli.Exit.USAGE, "--identity " + id + " does not exist — pass the path of a private key file, e.g. ~/.ssh/id_ed25519");
            }
        }
    }

    /** --ssh-config, else the standard files. */
    public SshConfig config() {
        return SshConfig.standard(sshConfig);
    }

    /** These options plus the command's own user and port (null: ssh_config decides). */
    public SshTarget.Overrides overrides(String user, Integer port) {
        return new SshTarget.Overrides(user, port, identities, knownHosts, acceptNew,
                connectTimeout == null ? null : Duration.ofSeconds(connectTimeout), System.getenv());
    }
}
