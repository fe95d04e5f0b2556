import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How every script finds and talks to the cluster: kubectl's rules, one-line errors, exit codes. */
class ClusterAccessTest {
    @TempDir Path home;

    static void assertOneLineError(Run.Result r, int exit, String... fragments) {
        assertEquals(exit, r.exit(), r.all());
        assertEquals("", r.out(), r.all());
        assertEquals(1, r.err().lines().count(), "exactly one line, no stack trace:\n" + r.err());
        for (String f : fragments) assertTrue(r.err().contains(f), "missing '" + f + "' in: " + r.err());
    }

    @Test
    void noKubeconfigAnywhere() {
        Run.Result r = Run.process(Map.of("HOME", home.toString()), "inventory");
        assertOneLineError(r, 3, "inventory: no kubeconfig found", "pass --kubeconfig FILE");
    }

    @Test
    void kubeconfigEnvironmentVariableIsHonouredLikeKubectl() {
        try (SimCluster sim = SimCluster.start()) {
            Run.Result r = Run.process(Map.of("HOME", home.toString(), "KUBECONFIG", "/nonexistent:" + sim.kubeconfig()),
                    "inventory", "--node", "altra");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains("altra-000c01000"), r.out());
        }
        Run.Result missing = Run.process(Map.of("HOME", home.toString(), "KUBECONFIG", "/nonexistent"), "inventory");
        assertOneLineError(missing, 3, "KUBECONFIG=/nonexistent names no existing file");
    }

    @Test
    void kubeconfigListIsMergedLikeKubectlWithPathsRelativeToTheirFile() throws Exception {
        try (SimCluster sim = SimCluster.start()) {
            Path a = Files.createDirectories(home.resolve("a"));
            Path b = Files.createDirectories(home.resolve("b"));
            Files.write(b.resolve("ca.crt"), java.util.Base64.getDecoder().decode(sim.caData()));
            Files.writeString(a.resolve("context.yaml"), """
                    apiVersion: v1
                    kind: Config
                    current-context: altra
                    contexts:
                    - name: altra
                      context: {cluster: harvester, user: admin, namespace: default}
                    users:
                    - name: admin
                      user: {token: %s}
                    """.formatted(sim.token()));
            Files.writeString(b.resolve("cluster.yaml"), """
                    apiVersion: v1
                    kind: Config
                    current-context: elsewhere
                    clusters:
                    - name: harvester
                      cluster: {server: "%s", certificate-authority: ca.crt}
                    """.formatted(sim.url()));
            Run.Result r = Run.process(Map.of("HOME", home.toString(),
                    "KUBECONFIG", a.resolve("context.yaml") + ":" + b.resolve("cluster.yaml")), "inventory", "--node", "altra");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains("altra-000c01000"), r.out());
        }
    }

    @Test
    void defaultKubeconfigInHomeAndNamespaceFromContext() throws Exception {
        try (SimCluster sim = SimCluster.start()) {
            Files.createDirectories(home.resolve(".kube"));
            Files.copy(sim.kubeconfig(), home.resolve(".kube/config"));
            Run.Result r = Run.process(Map.of("HOME", home.toString()), "inventory", "-o", "json");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains("\"altra-000c01000\""), r.out());
        }
    }

    @Test
    void missingKubeconfigFile() {
        Run.Result r = Run.script(new inventory(), "--kubeconfig", home.resolve("nope.yaml").toString());
        assertOneLineError(r, 3, "kubeconfig " + home.resolve("nope.yaml") + " does not exist");
    }

    @Test
    void malformedKubeconfig() throws Exception {
        Path bad = home.resolve("bad.yaml");
        Files.writeString(bad, "clusters: [ {name: x\n");
        Run.Result r = Run.script(new inventory(), "--kubeconfig", bad.toString());
        assertOneLineError(r, 3, "is not valid YAML");
    }

    @Test
    void unknownContext() {
        try (SimCluster sim = SimCluster.start()) {
            Run.Result r = Run.against(sim, new inventory(), "--context", "prod");
            assertOneLineError(r, 3, "context \"prod\" not found in kubeconfig", "one of: harvester-sim");
            assertTrue(sim.clientRequests().isEmpty(), "no request is sent for a bad context");
        }
    }

    @Test
    void unreachableApiServer() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Path kc = home.resolve("down.yaml");
        SimCluster.writeKubeconfig(kc, "http://127.0.0.1:" + port, "secret-token-xyz");
        long t0 = System.nanoTime();
        Run.Result r = Run.script(new inventory(), "--kubeconfig", kc.toString());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertOneLineError(r, 4, "inventory: cannot reach the API server at http://127.0.0.1:" + port, "kubeconfig's server address");
        assertFalse(r.err().contains("secret-token-xyz"));
        assertTrue(ms < 8000, "fails fast like kubectl, took " + ms + " ms");
    }

    // ---- TLS, tokens and broken kubeconfigs (issue 11, issue 13 items 6, 7, 11) ----------------------

    @Test
    void kubeconfigWhoseCaDoesNotMatchTheServerIsOneLineExit4() {
        try (SimCluster sim = SimCluster.start()) {
            Path kc = home.resolve("other-ca.yaml");
            SimCluster.writeKubeconfig(kc, sim.url(), "certificate-authority-data: " + SimCertificates.create("elsewhere").caData(), sim.token());
            Run.Result r = Run.script(new claim(), "altra-000c01000", "--kubeconfig", kc.toString());
            assertOneLineError(r, 4, "claim: cannot verify the API server at " + sim.url(), "certificate-authority(-data)",
                    "insecure-skip-tls-verify");
            assertTrue(Harvester.pciDeviceClaims(sim.admin()).list().getItems().isEmpty(), "nothing claimed");
        }
    }

    @Test
    void kubeconfigWithoutAnyCaDoesNotTrustTheSimulator() {
        try (SimCluster sim = SimCluster.start()) {
            Path kc = home.resolve("no-ca.yaml");
            SimCluster.writeKubeconfig(kc, sim.url(), null, sim.token());
            assertOneLineError(Run.script(new inventory(), "--kubeconfig", kc.toString()), 4, "certificate-authority(-data)");
        }
    }

    @Test
    void onlyTheKubeconfigsCaIsTrustedNotTheJdksRootsAsKubectl() throws Exception {
        try (SimCluster sim = SimCluster.start()) {
            // The simulator's CA among the JDK's default roots (javax.net.ssl.trustStore), the kubeconfig naming
            // another CA: fabric8 alone would add that CA to the roots and connect; kubectl trusts the named CA only.
            Path roots = home.resolve("roots.p12");
            java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setCertificateEntry("sim", java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(new java.io.ByteArrayInputStream(java.util.Base64.getDecoder().decode(sim.caData()))));
            try (var out = Files.newOutputStream(roots)) {
                store.store(out, "changeit".toCharArray());
            }
            Path kc = home.resolve("other-ca.yaml");
            SimCluster.writeKubeconfig(kc, sim.url(), "certificate-authority-data: " + SimCertificates.create("elsewhere").caData(), sim.token());
            Map<String, String> saved = new java.util.HashMap<>();
            for (String k : List.of("javax.net.ssl.trustStore", "javax.net.ssl.trustStoreType", "javax.net.ssl.trustStorePassword")) {
                saved.put(k, System.getProperty(k));
            }
            Run.Result r;
            try {
                System.setProperty("javax.net.ssl.trustStore", roots.toString());
                System.setProperty("javax.net.ssl.trustStoreType", "PKCS12");
                System.setProperty("javax.net.ssl.trustStorePassword", "changeit");
                r = Run.script(new inventory(), "--kubeconfig", kc.toString());
            } finally {
                saved.forEach((k, v) -> {
                    if (v == null) System.clearProperty(k);
                    else System.setProperty(k, v);
                });
            }
            assertOneLineError(r, 4, "cannot verify the API server at " + sim.url());
        }
    }

    @Test
    void kubeconfigOfTheWrongShapeNamesTheField() throws Exception {
        Path kc = home.resolve("shape.yaml");
        Files.writeString(kc, """
                apiVersion: v1
                kind: Config
                clusters:
                - name: harvester
                  cluster: "https://127.0.0.1:1"
                """);
        assertOneLineError(Run.script(new inventory(), "--kubeconfig", kc.toString()), 3,
                "kubeconfig " + kc + " is not a kubeconfig (clusters[0].cluster is a string, not a mapping)");
        Files.writeString(kc, """
                clusters:
                - name: harvester
                  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: maybe}
                """);
        assertOneLineError(Run.script(new inventory(), "--kubeconfig", kc.toString()), 3,
                "clusters[0].cluster.insecure-skip-tls-verify is a string 'maybe', not true or false");
    }

    @Test
    void kubeconfigFieldsReachFabric8sClientConfigAsItsOwnParserWouldSetThem() throws Exception {
        String yaml = """
                apiVersion: v1
                kind: Config
                current-context: lab
                clusters:
                - name: harvester
                  cluster:
                    server: https://192.0.2.10:6443
                    certificate-authority-data: Q0E=
                    proxy-url: http://198.51.100.7:3128
                contexts:
                - name: lab
                  context: {cluster: harvester, user: sso, namespace: vms}
                users:
                - name: sso
                  user: {token: "0123456789", as-groups: [admins]}
                - name: plugin
                  user:
                    exec:
                      apiVersion: client.authentication.k8s.io/v1
                      command: /bin/true
                      args: [get-token, --cluster, lab]
                      env: [{name: LAB, value: "1"}]
                      interactiveMode: Never
                - name: gke
                  user:
                    auth-provider: {name: gcp, config: {access-token: abc, expiry: "2026-12-01T00:00:00Z"}}
                """;
        io.fabric8.kubernetes.api.model.Config ours = Kubeconfigs.parse(yaml);
        io.fabric8.kubernetes.api.model.Config fabric8s = io.fabric8.kubernetes.client.utils.Serialization.unmarshal(yaml,
                io.fabric8.kubernetes.api.model.Config.class);
        // The model we fill in equals the one fabric8's own YAML binding gives, field for field.
        assertEquals(fabric8s, ours);
        io.fabric8.kubernetes.client.Config c = Kubeconfigs.clientConfig(ours, "lab");
        assertEquals("https://192.0.2.10:6443/", c.getMasterUrl());
        assertEquals("Q0E=", c.getCaCertData());
        assertEquals("vms", c.getNamespace());
        assertEquals("0123456789", c.getAutoOAuthToken());
        assertEquals("http://198.51.100.7:3128", c.getHttpProxy());
    }

    @Test
    void invalidTokenIsExit5AndChangesNothing() {
        try (SimCluster sim = SimCluster.start()) {
            Path kc = home.resolve("bad-token.yaml");
            SimCluster.writeKubeconfig(kc, sim.url(), "certificate-authority-data: " + sim.caData(), "expired-token-123");
            Run.Result r = Run.script(new claim(), "altra-000c01000", "--kubeconfig", kc.toString());
            assertOneLineError(r, 5, "claim: the API server at " + sim.url() + " rejected our credentials (401 Unauthorized");
            assertFalse(r.err().contains("expired-token-123"), "never print the token");
            assertTrue(Harvester.pciDeviceClaims(sim.admin()).list().getItems().isEmpty(), "nothing claimed");
        }
    }

    @Test
    void insecureSkipTlsVerifyWorksWithAOneLineWarning() {
        try (SimCluster sim = SimCluster.start()) {
            Path kc = home.resolve("insecure.yaml");
            SimCluster.writeKubeconfig(kc, sim.url(), "insecure-skip-tls-verify: true", sim.token());
            Run.Result r = Run.script(new inventory(), "--kubeconfig", kc.toString(), "--node", "altra");
            assertEquals(0, r.exit(), r.all());
            assertTrue(r.out().contains("altra-000c01000"), r.out());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("warning: insecure-skip-tls-verify is set for " + sim.url()), r.err());
        }
    }

    @Test
    void contextNamingAMissingClusterIsAKubeconfigProblem() throws Exception {
        Path kc = home.resolve("dangling.yaml");
        Files.writeString(kc, """
                apiVersion: v1
                kind: Config
                clusters:
                - name: real
                  cluster: {server: "https://127.0.0.1:1"}
                contexts:
                - name: prod
                  context: {cluster: gone, user: u}
                current-context: prod
                users:
                - name: u
                  user: {token: t}
                """);
        assertOneLineError(Run.script(new inventory(), "--kubeconfig", kc.toString()), 3,
                "context \"prod\" names cluster \"gone\"", "clusters: real");
    }

    @Test
    void emptyKubeconfigIsExit3WithoutANullPointer() throws Exception {
        Path kc = home.resolve("empty.yaml");
        Files.writeString(kc, "");
        Run.Result r = Run.script(new inventory(), "--kubeconfig", kc.toString());
        assertOneLineError(r, 3, "kubeconfig " + kc + " is empty");
        assertFalse(r.err().contains("NullPointer"), r.err());
    }

    @Test
    void requestTimeoutZeroMeansNoneAndNegativeIsAUsageError() {
        try (SimCluster sim = SimCluster.start()) {
            Run.Result none = Run.against(sim, new inventory(), "--node", "altra", "--request-timeout", "0");
            assertEquals(0, none.exit(), none.all());
            assertTrue(none.out().contains("altra-000c01000"), none.out());
            Run.Result negative = Run.against(sim, new inventory(), "--request-timeout", "-3");
            assertOneLineError(negative, 2, "--request-timeout -3 is negative");
            assertTrue(sim.clientRequests().stream().filter(q -> q.contains("pcidevices")).count() >= 1);
        }
    }

    @Test
    void notFoundSaysWhenTheNamespaceItselfDoesNotExist() {
        try (SimCluster sim = SimCluster.start()) {
            Cli.UserError wrongNs = Namespaces.notFound(sim.admin(), "prod", "virtualmachine.kubevirt.io \"docker-host\"", "check the name");
            assertEquals(Cli.Exit.NOT_FOUND, wrongNs.exit);
            assertTrue(wrongNs.getMessage().contains("namespace \"prod\" does not exist"), wrongNs.getMessage());
            Cli.UserError wrongName = Namespaces.notFound(sim.admin(), "default", "virtualmachine.kubevirt.io \"nope\"", "check the name");
            assertEquals("virtualmachine.kubevirt.io \"nope\" not found in namespace \"default\" — check the name", wrongName.getMessage());
        }
    }

    /** Answers every request with headers and the first byte of a body, then never sends the rest. */
    @Test
    void serverThatStallsTheBodyIsBoundedByTheRequestTimeout() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            Thread stall = new Thread(() -> {
                List<java.net.Socket> open = new java.util.ArrayList<>();
                try {
                    while (true) {
                        java.net.Socket s = server.accept();
                        open.add(s);
                        var in = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream(), java.nio.charset.StandardCharsets.ISO_8859_1));
                        for (String l; (l = in.readLine()) != null && !l.isEmpty(); ) {
                            // request headers
                        }
                        s.getOutputStream().write(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                                .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
                        s.getOutputStream().flush();
                    }
                } catch (java.io.IOException closed) {
                    // test over
                }
            });
            stall.setDaemon(true);
            stall.start();
            String url = "http://127.0.0.1:" + server.getLocalPort();
            Path kc = home.resolve("stall.yaml");
            SimCluster.writeKubeconfig(kc, url, "t");
            long t0 = System.nanoTime();
            Run.Result r = Run.script(new inventory(), "--kubeconfig", kc.toString(), "--request-timeout", "2");
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertOneLineError(r, 4, "inventory: ", url);
            assertTrue(ms < 30_000, "bounded by --request-timeout, took " + ms + " ms");
        }
    }

    /** kubectl (installed in CI by .ci/run) reads the simulator as it reads a real Harvester cluster. */
    @Test
    void kubectlListsTheSimulatorsPciDevicesVmsAndClaims() {
        boolean ci = "true".equals(System.getenv("CI"));
        boolean present = java.util.stream.Stream.of(System.getenv("PATH").split(java.io.File.pathSeparator))
                .anyMatch(d -> Files.isExecutable(Path.of(d, "kubectl")));
        if (!present) {
            if (ci) throw new AssertionError("kubectl is not installed; CI needs it (apt-get install -y kubectl)");
            org.junit.jupiter.api.Assumptions.abort("kubectl is not installed");
        }
        try (SimCluster sim = SimCluster.start()) {
            Map<String, String> env = Map.of("HOME", home.toString(), "KUBECONFIG", sim.kubeconfig().toString());
            Run.Result devices = Run.command(env, null, List.of("kubectl", "get", "pcidevices"));
            assertEquals(0, devices.exit(), devices.all());
            assertTrue(devices.out().lines().anyMatch(l -> l.startsWith("altra-000c01000 ") && l.contains("000c:01:00.0")
                    && l.contains("GA102")), devices.out());
            assertTrue(devices.out().startsWith("NAME") && devices.out().contains("KERNEL DRIVER IN USE"), devices.out());

            Run.Result vms = Run.command(env, null, List.of("kubectl", "get", "vm,vmi", "-A"));
            assertEquals(0, vms.exit(), vms.all());
            assertTrue(vms.out().contains("virtualmachine.kubevirt.io/docker-host"), vms.out());
            assertTrue(vms.out().contains("virtualmachineinstance.kubevirt.io/docker-host"), vms.out());

            Harvester.pciDeviceClaims(sim.admin()).resource(new io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder()
                    .withApiVersion(Harvester.API_VERSION).withKind("PCIDeviceClaim")
                    .withNewMetadata().withName("altra-000c01000").endMetadata()
                    .addToAdditionalProperties("spec", Map.of("address", "000c:01:00.0", "nodeName", "altra", "userName", "admin"))
                    .build()).create();
            Run.Result claims = Run.command(env, null, List.of("kubectl", "get", "pcideviceclaims"));
            assertEquals(0, claims.exit(), claims.all());
            assertTrue(claims.out().contains("altra-000c01000"), claims.out());

            Path badToken = home.resolve("bad-token.yaml");
            SimCluster.writeKubeconfig(badToken, sim.url(), "certificate-authority-data: " + sim.caData(), "nope");
            Run.Result denied = Run.command(Map.of("HOME", home.toString(), "KUBECONFIG", badToken.toString()), null,
                    List.of("kubectl", "get", "pcidevices"));
            assertTrue(denied.exit() != 0 && denied.err().contains("Unauthorized"), denied.all());
        }
    }
}
