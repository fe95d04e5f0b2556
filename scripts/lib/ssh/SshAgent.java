//DEPS com.hierynomus:sshj:0.40.0

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import net.schmizz.sshj.common.Buffer;

/**
 * A client for ssh-agent (draft-miller-ssh-agent): list identities and ask for signatures over
 * the Unix-domain socket named by SSH_AUTH_SOCK (JDK 16+ UnixDomainSocketAddress). The private
 * keys never leave the agent; we only ever see public key blobs and signatures.
 */
public final class SshAgent implements AutoCloseable {
    private static final byte SSH_AGENT_FAILURE = 5;
    private static final byte SSH2_AGENTC_REQUEST_IDENTITIES = 11;
    private static final byte SSH2_AGENT_IDENTITIES_ANSWER = 12;
    private static final byte SSH2_AGENTC_SIGN_REQUEST = 13;
    private static final byte SSH2_AGENT_SIGN_RESPONSE = 14;
    /** Sign flags asking for RSA SHA-2 signatures (servers refuse ssh-rsa SHA-1 since OpenSSH 8.8). */
    static final int SSH_AGENT_RSA_SHA2_256 = 2;
    static final int SSH_AGENT_RSA_SHA2_512 = 4;
    /** Agent messages are small; a larger length means we are not talking to an agent. */
    private static final int MAX_MESSAGE = 256 * 1024;

    /** One key the agent holds: its public blob, type (from the blob) and comment (often the file it came from). */
    public record Identity(byte[] blob, String type, String comment) {
        public String fingerprint() {
            return KnownHosts.fingerprint(blob);
        }

        /** How messages name it: type, fingerprint and comment, never key material. */
        public String describe() {
            return KnownHosts.typeName(type) + " " + fingerprint() + (comment.isBlank() ? "" : " (" + comment + ")");
        }
    }

    /** SSH_AGENT_FAILURE to a sign request: the key was removed, or its ssh-add -c confirmation was denied. */
    public static final class Refused extends IOException {
        Refused() {
            super("the agent refused to sign (key removed, or confirmation denied)");
        }
    }

    private final Path socket;
    private final SocketChannel channel;

    private SshAgent(Path socket, SocketChannel channel) {
        this.socket = socket;
        this.channel = channel;
    }

    /** Connects to the agent's socket; an IOException means no agent answers there (dead or wrong socket). */
    public static SshAgent connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e instanceof IOException io ? io : new IOException(e.getMessage(), e);
        }
        return new SshAgent(socket, ch);
    }

    public Path socket() {
        return socket;
    }

    /** SSH2_AGENTC_REQUEST_IDENTITIES. */
    public synchronized List<Identity> identities() throws IOException {
        Buffer.PlainBuffer reply = call(new Buffer.PlainBuffer().putByte(SSH2_AGENTC_REQUEST_IDENTITIES));
        byte type = readByte(reply);
        if (type != SSH2_AGENT_IDENTITIES_ANSWER) throw new IOException("agent answered message " + type + " to a list request");
        try {
            long n = reply.readUInt32();
            List<Identity> ids = new ArrayList<>();
            for (long i = 0; i < n; i++) {
                byte[] blob = reply.readBytes();
                String comment = reply.readString();
                String keyType = new Buffer.PlainBuffer(blob).readString();
                ids.add(new Identity(blob, keyType, comment));
            }
            return ids;
        } catch (Buffer.BufferException e) {
            throw new IOException("malformed agent answer: " + e.getMessage(), e);
        }
    }

    /**
     * SSH2_AGENTC_SIGN_REQUEST: the agent signs {@code data} with the key {@code blob}; the
     * answer is the SSH signature encoding (string algorithm, string signature).
     */
    public synchronized byte[] sign(byte[] blob, byte[] data, int flags) throws IOException {
        Buffer.PlainBuffer req = new Buffer.PlainBuffer().putByte(SSH2_AGENTC_SIGN_REQUEST)
                .putBytes(blob).putBytes(data).putUInt32(flags);
        Buffer.PlainBuffer reply = call(req);
        byte type = readByte(reply);
        if (type == SSH_AGENT_FAILURE) throw new Refused();
        if (type != SSH2_AGENT_SIGN_RESPONSE) throw new IOException("agent answered message " + type + " to a sign request");
        try {
            return reply.readBytes();
        } catch (Buffer.BufferException e) {
            throw new IOException("malformed agent signature: " + e.getMessage(), e);
        }
    }

    private Buffer.PlainBuffer call(Buffer.PlainBuffer message) throws IOException {
        byte[] body = message.getCompactData();
        ByteBuffer out = ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).flip();
        while (out.hasRemaining()) channel.write(out);
        ByteBuffer len = readFully(4);
        int n = len.getInt();
        if (n <= 0 || n > MAX_MESSAGE) throw new IOException("agent sent a message of " + n + " bytes: not an ssh-agent?");
        ByteBuffer reply = readFully(n);
        return new Buffer.PlainBuffer(reply.array());
    }

    private ByteBuffer readFully(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) throw new IOException("the agent closed the connection");
        }
        return b.flip();
    }

    private static byte readByte(Buffer.PlainBuffer b) throws IOException {
        try {
            return b.readByte();
        } catch (Buffer.BufferException e) {
            throw new IOException("empty agent answer", e);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
