//DEPS io.fabric8:kubernetes-server-mock

import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The simulator's own certificate authority and the API server's certificate it signs, as a
 * real cluster has (k3s/RKE2 on Harvester: a cluster CA, a serving certificate for the node's
 * addresses). The serving certificate names 127.0.0.1 and localhost as subject alternative names,
 * which kubectl (Go) requires. BouncyCastle is already on the class path: fabric8's mock server
 * depends on it to make certificates; the JDK has no public API for that.
 */
public final class SimCertificates {
    /** The CA certificate (PEM), for a kubeconfig's certificate-authority-data. */
    public final String caPem;
    /** The server's certificate chain (PEM: server, then CA). */
    public final String serverChainPem;
    /** The server's private key (PEM, PKCS#8). */
    public final String serverKeyPem;

    private SimCertificates(String caPem, String serverChainPem, String serverKeyPem) {
        this.caPem = caPem;
        this.serverChainPem = serverChainPem;
        this.serverKeyPem = serverKeyPem;
    }

    /** A new CA (named after the given label) and a serving certificate for 127.0.0.1/localhost, valid one year. */
    public static SimCertificates create(String label) {
        try {
            KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
            gen.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair caKeys = gen.generateKeyPair();
            KeyPair serverKeys = gen.generateKeyPair();
            Instant now = Instant.now();
            Date from = Date.from(now.minus(Duration.ofHours(1)));
            Date to = Date.from(now.plus(Duration.ofDays(365)));
            X500Name caName = new X500Name("CN=" + label + "-ca@" + now.getEpochSecond());

            X509v3CertificateBuilder ca = new JcaX509v3CertificateBuilder(caName, serial(), from, to, caName, caKeys.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature));
            X509Certificate caCert = sign(ca, caKeys);

            X509v3CertificateBuilder server = new JcaX509v3CertificateBuilder(caName, serial(), from, to,
                    new X500Name("CN=kube-apiserver"), serverKeys.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth))
                    .addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
                            new GeneralName(GeneralName.iPAddress, "127.0.0.1"), new GeneralName(GeneralName.dNSName, "localhost")}));
            X509Certificate serverCert = sign(server, caKeys);

            String caPem = pem("CERTIFICATE", caCert.getEncoded());
            return new SimCertificates(caPem, pem("CERTIFICATE", serverCert.getEncoded()) + caPem,
                    pem("PRIVATE KEY", serverKeys.getPrivate().getEncoded()));
        } catch (GeneralSecurityException | OperatorCreationException | java.io.IOException e) {
            throw new IllegalStateException("cannot make the simulator's certificates: " + e, e);
        }
    }

    /** The CA certificate base64-encoded, as certificate-authority-data holds it. */
    public String caData() {
        return Base64.getEncoder().encodeToString(caPem.getBytes(StandardCharsets.US_ASCII));
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, KeyPair issuer) throws OperatorCreationException, GeneralSecurityException {
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuer.getPrivate())));
    }

    private static BigInteger serial() {
        return new BigInteger(64, new java.security.SecureRandom()).abs().add(BigInteger.ONE);
    }

    private static String pem(String type, byte[] der) {
        StringWriter w = new StringWriter();
        w.write("-----BEGIN " + type + "-----\n");
        w.write(Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der));
        w.write("\n-----END " + type + "-----\n");
        return w.toString();
    }
}
