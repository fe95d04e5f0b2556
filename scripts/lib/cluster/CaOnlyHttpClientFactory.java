//DEPS io.fabric8:kubernetes-client-bom:7.4.0@pom
//DEPS io.fabric8:kubernetes-client
//DEPS io.fabric8:kubernetes-httpclient-jdk

import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Collection;

import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.http.HttpClient;
import io.fabric8.kubernetes.client.internal.CertUtils;
import io.fabric8.kubernetes.client.internal.SSLUtils;
import io.fabric8.kubernetes.client.jdkhttp.JdkHttpClientFactory;

/**
 * fabric8's JDK HTTP client, trusting only the kubeconfig's certificate authority when it names
 * one — as kubectl does. fabric8 adds that CA to the JDK's public roots, so any publicly signed
 * certificate for the server's name would pass too, and loading those ~140 roots costs about 70 ms
 * of every command (bench/RESULTS.md). Without a CA in the kubeconfig the JDK's roots are used, as
 * kubectl uses the system's; insecure-skip-tls-verify and an explicit trust store are fabric8's as before.
 */
public final class CaOnlyHttpClientFactory extends JdkHttpClientFactory {
    @Override
    public HttpClient.Builder newBuilder(Config config) {
        if (!hasCa(config) || config.isTrustCerts() || notEmpty(config.getTrustStoreFile())) return super.newBuilder(config);
        TrustManager[] caOnly = caOnlyTrustManagers(config);
        // fabric8's common set-up (redirects, timeouts, proxy, interceptors) always builds its own trust
        // managers, loading the JDK's store unless trustCerts is set. Set for that call alone; the
        // builder's SSL context is then replaced below, before any client exists.
        HttpClient.Builder builder;
        config.setTrustCerts(true);
        try {
            builder = super.newBuilder(config);
        } finally {
            config.setTrustCerts(false);
        }
        try {
            builder.sslContext(SSLUtils.keyManagers(config), caOnly);
        } catch (Exception e) {
            throw KubernetesClientException.launderThrowable(e);
        }
        return builder;
    }

    static TrustManager[] caOnlyTrustManagers(Config config) {
        try {
            Collection<? extends Certificate> cas = CertificateFactory.getInstance("X.509")
                    .generateCertificates(CertUtils.getInputStreamFromDataOrFile(config.getCaCertData(), config.getCaCertFile()));
            if (cas.isEmpty()) {
                throw new KubernetesClientException("the kubeconfig's certificate-authority holds no certificate");
            }
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int i = 0;
            for (Certificate ca : cas) store.setCertificateEntry("kubeconfig-ca-" + i++, ca);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(store);
            return tmf.getTrustManagers();
        } catch (Exception e) {
            throw KubernetesClientException.launderThrowable(e);
        }
    }

    private static boolean hasCa(Config config) {
        return notEmpty(config.getCaCertData()) || notEmpty(config.getCaCertFile());
    }

    private static boolean notEmpty(String s) {
        return s != null && !s.isEmpty();
    }
}
