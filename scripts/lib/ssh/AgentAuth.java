//DEPS com.hierynomus:sshj:0.40.0
//SOURCES SshAgent.java

import java.io.IOException;

import net.schmizz.sshj.common.Buffer;
import net.schmizz.sshj.common.Message;
import net.schmizz.sshj.common.SSHPacket;
import net.schmizz.sshj.transport.TransportException;
import net.schmizz.sshj.userauth.UserAuthException;
import net.schmizz.sshj.userauth.method.AbstractAuthMethod;

/**
 * sshj's "publickey" method (RFC 4252 §7) with the signature made by ssh-agent: first a query
 * with the public key only; when the server answers PK_OK (60), the signed request, whose
 * signature the agent computes. RSA keys sign with rsa-sha2-512, as OpenSSH does with servers
 * that refuse SHA-1.
 */
final class AgentAuth extends AbstractAuthMethod {
    private final SshAgent agent;
    private final SshAgent.Identity identity;
    private volatile String signFailure;

    AgentAuth(SshAgent agent, SshAgent.Identity identity) {
        super("publickey");
        this.agent = agent;
        this.identity = identity;
    }

    SshAgent.Identity identity() {
        return identity;
    }

    /** Why the agent would not sign after the server accepted the key: "" for a plain refusal (e.g. a denied ssh-add -c confirmation), or null. */
    String signFailure() {
        return signFailure;
    }

    private boolean rsa() {
        return identity.type().equals("ssh-rsa");
    }

    private SSHPacket request(boolean signed) throws UserAuthException {
        return super.buildReq().putBoolean(signed).putString(rsa() ? "rsa-sha2-512" : identity.type()).putString(identity.blob());
    }

    @Override
    protected SSHPacket buildReq() throws UserAuthException {
        return request(false);
    }

    @Override
    public void handle(Message cmd, SSHPacket buf) throws UserAuthException, TransportException {
        if (cmd != Message.USERAUTH_60) {
            super.handle(cmd, buf);
            return;
        }
        SSHPacket req = request(true);
        byte[] signed = new Buffer.PlainBuffer().putString(params.getTransport().getSessionID()).putBuffer(req).getCompactData();
        byte[] signature;
        try {
            signature = agent.sign(identity.blob(), signed, rsa() ? SshAgent.SSH_AGENT_RSA_SHA2_512 : 0);
        } catch (IOException e) {
            signFailure = e instanceof SshAgent.Refused ? "" : e.getMessage();
            throw new UserAuthException("ssh-agent could not sign with " + identity.describe() + ": " + e.getMessage(), e);
        }
        params.getTransport().write(req.putString(signature));
    }

    @Override
    public String toString() {
        return "agent key " + identity.describe();
    }
}
