//SOURCES SshAgent.java

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/** An agent connection for one hop's login, or none (no socket, or a dead one: noted once). */
final class SshAgentConnection implements AutoCloseable {
    final SshAgent agent;
    final List<SshAgent.Identity> identities;

    private SshAgentConnection(SshAgent agent, List<SshAgent.Identity> identities) {
        this.agent = agent;
        this.identities = identities;
    }

    static SshAgentConnection open(Path socket, Consumer<String> notes) {
        if (socket == null) return new SshAgentConnection(null, List.of());
        SshAgent a = null;
        try {
            a = SshAgent.connect(socket);
            return new SshAgentConnection(a, a.identities());
        } catch (IOException | RuntimeException e) {
            if (a != null) a.close();
            notes.accept("note: ssh-agent at " + socket + " does not answer (" + SshSession.reason(e) + ") — using key files only");
            return new SshAgentConnection(null, List.of());
        }
    }

    @Override
    public void close() {
        if (agent != null) agent.close();
    }
}
