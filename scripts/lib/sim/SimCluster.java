//DEPS io.fabric8:kubernetes-server-mock
//FILES sim/altra-cluster.yaml=altra-cluster.yaml
//SOURCES ../model/Harvester.java ../model/KubeVirt.java Fault.java SimDispatcher.java SimCertificates.java ApiDiscovery.java
//SOURCES ControllerPods.java PciDevicesController.java PciDeviceClaimWebhook.java
//SOURCES KubeVirtController.java AddonController.java FaultEffects.java

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.dsl.base.CustomResourceDefinitionContext;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.jdkhttp.JdkHttpClientFactory;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;

/**
 * A simulated Harvester cluster on 127.0.0.1: fabric8's Kubernetes mock server in CRUD mode,
 * seeded with {@code altra-cluster.yaml}, plus simulated controllers (pcidevices, KubeVirt)
 * that act on what clients change, and faults that can be switched on at any time. Like a real
 * API server it speaks HTTPS with a certificate from its own CA, answers 401 Unauthorized without
 * its bearer token, and serves discovery (so kubectl works against it). Used by the tests and,
 * unchanged, by the sandbox and bench/.
 */
public final class SimCluster implements AutoCloseable {
    /** User-Agent of the simulator's own client: its requests are not counted and never faulted. */
    public static final String SIM_USER_AGENT = "harvester-sim";
    public static final String CONTEXT = "harvester-sim";
    /** Held so the JUL logger keeps its level: the mock server logs every request at INFO. */
    private static final java.util.logging.Logger MOCK_LOG = java.util.logging.Logger.getLogger("io.fabric8.mockwebserver");

    static {
        MOCK_LOG.setLevel(java.util.logging.Level.WARNING);
        // The mock server makes itself a self-signed RSA certificate that useOwnCertificate replaces at
        // once; at Netty's default 2,048 bits generating it is most of a start (0.7-3.8 s on C1).
        System.getProperties().putIfAbsent("io.netty.handler.ssl.util.selfSignedKeyStrength", "1024");
    }

    public static final ResourceDefinitionContext USB_DEVICES = new ResourceDefinitionContext.Builder()
            .withGroup(Harvester.GROUP).withVersion("v1beta1").withKind("USBDevice").withPlural("usbdevices")
            .withNamespaced(false).build();
    private static final ResourceDefinitionContext NODES = new ResourceDefinitionContext.Builder()
            .withGroup("").withVersion("v1").withKind("Node").withPlural("nodes").withNamespaced(false).build();
    private static final ResourceDefinitionContext PODS = new ResourceDefinitionContext.Builder()
            .withGroup("").withVersion("v1").withKind("Pod").withPlural("pods").withNamespaced(true).build();

    /** Kinds the fixture may hold, by kind name. */
    public static final Map<String, ResourceDefinitionContext> KINDS = Map.of(
            "PCIDevice", Harvester.PCI_DEVICES,
            "PCIDeviceClaim", Harvester.PCI_DEVICE_CLAIMS,
            "USBDevice", USB_DEVICES,
            "VirtualMachine", KubeVirt.VMS,
            "VirtualMachineInstance", KubeVirt.VMIS,
            "KubeVirt", KubeVirt.KUBEVIRTS,
            "Node", NODES,
            "Pod", PODS,
            "Addon", Harvester.ADDONS,
            "Setting", Harvester.SETTINGS);

    /** How the simulated controllers behave. */
    public static final class Options {
        /** Faults switched on from the start. */
        public final Set<Fault> faults = EnumSet.noneOf(Fault.class);
        /** How long the pcidevices controller takes for each reconcile step. */
        public Duration controllerDelay = Duration.ofMillis(100);
        /** How long a VMI spends in each phase (Scheduling, Scheduled) before Running. */
        public Duration vmiPhaseDelay = Duration.ofMillis(100);
        /** Seed the cluster with altra-cluster.yaml. */
        public boolean seed = true;
        /** API server port on 127.0.0.1; 0 picks a free one. */
        public int port = 0;

        public Options fault(Fault f) {
            faults.add(f);
            return this;
        }
    }

    private final Options options;
    private final Set<Fault> faults = Collections.synchronizedSet(EnumSet.noneOf(Fault.class));
    private final SimDispatcher dispatcher;
    private final SimCertificates certificates;
    private final String token;
    private final KubernetesMockServer server;
    private final KubernetesClient admin;
    private final Path dir;
    private final Path kubeconfig;
    private final List<AutoCloseable> controllers = new ArrayList<>();
    /** Lines of the pcidevices `agent` container log, per node, as the controller would log them. */
    private final Map<String, List<String>> agentLogs = new java.util.concurrent.ConcurrentHashMap<>();

    private SimCluster(Options options) throws IOException {
        this.options = options;
        this.faults.addAll(options.faults);
        List<CustomResourceDefinitionContext> crds = new ArrayList<>();
        for (ResourceDefinitionContext c : List.of(Harvester.PCI_DEVICES, Harvester.PCI_DEVICE_CLAIMS, USB_DEVICES,
                KubeVirt.VMS, KubeVirt.VMIS, KubeVirt.KUBEVIRTS, Harvester.ADDONS, Harvester.SETTINGS)) {
            crds.add(new CustomResourceDefinitionContext.Builder()
                    .withGroup(c.getGroup()).withVersion(c.getVersion()).withKind(c.getKind()).withPlural(c.getPlural())
                    .withName(c.getPlural() + "." + c.getGroup()).withScope(c.isNamespaceScoped() ? "Namespaced" : "Cluster")
                    // VMIs have no status subresource in KubeVirt's CRD; the others do.
                    .withStatusSubresource(c != KubeVirt.VMIS)
                    .build());
        }
        this.token = "sim-token-" + UUID.randomUUID();
        this.dispatcher = new SimDispatcher(crds, faults, token);
        this.certificates = SimCertificates.create("harvester-sim");
        MockWebServer web = new MockWebServer();
        // HTTP/1.1 only (ALPN off): the JDK client's HTTP/2 breaks on large lists from this server.
        web.setProtocols(List.of(io.fabric8.mockwebserver.vertx.Protocol.HTTP_1_1));
        this.server = new KubernetesMockServer(new Context(Serialization.jsonMapper()), web, new HashMap<>(), dispatcher, true);
        try {
            server.init(InetAddress.getByName("127.0.0.1"), options.port);
        } catch (RuntimeException e) {
            throw new IOException("cannot listen on 127.0.0.1:" + options.port + " (" + rootMessage(e) + ")", e);
        }
        useOwnCertificate(web, certificates);
        this.admin = new KubernetesClientBuilder()
                .withConfig(new ConfigBuilder().withMasterUrl(url()).withNamespace("default")
                        .withCaCertData(certificates.caData()).withOauthToken(token)
                        .withUserAgent(SIM_USER_AGENT + "/1").withRequestRetryBackoffLimit(3).withHttp2Disable(true).build())
                .withHttpClientFactory(new JdkHttpClientFactory())
                .build();
        this.dir = Files.createTempDirectory("harvester-sim-");
        this.kubeconfig = dir.resolve("kubeconfig.yaml");
        writeKubeconfig(kubeconfig);
    }

    /**
     * Serves our CA-signed certificate instead of the mock server's self-signed one (which names
     * no IP address, so kubectl rejects it, and no CA we could hand out). The mock server offers no
     * option for it; its Vert.x server can swap certificates at run time, before any client connects.
     */
    private static void useOwnCertificate(MockWebServer web, SimCertificates certs) throws IOException {
        try {
            java.lang.reflect.Field f = MockWebServer.class.getDeclaredField("httpServer");
            f.setAccessible(true);
            io.vertx.core.http.HttpServer http = (io.vertx.core.http.HttpServer) f.get(web);
            io.vertx.core.net.PemKeyCertOptions pem = new io.vertx.core.net.PemKeyCertOptions()
                    .setCertValue(io.vertx.core.buffer.Buffer.buffer(certs.serverChainPem))
                    .setKeyValue(io.vertx.core.buffer.Buffer.buffer(certs.serverKeyPem));
            io.vertx.core.net.SSLOptions ssl = new io.vertx.core.net.SSLOptions().setKeyCertOptions(pem).setUseAlpn(false);
            Boolean updated = http.updateSSLOptions(ssl).toCompletionStage().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
            if (!Boolean.TRUE.equals(updated)) throw new IOException("the mock server kept its self-signed certificate");
        } catch (ReflectiveOperationException | java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new IOException("cannot install the simulator's certificate: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while installing the simulator's certificate", e);
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable c = e;
        while (c.getCause() != null && c.getCause() != c) c = c.getCause();
        return c.getMessage() != null ? c.getMessage() : c.getClass().getSimpleName();
    }

    public static SimCluster start() {
        return start(new Options());
    }

    public static SimCluster start(Options options) {
        try {
            SimCluster c = new SimCluster(options);
            c.createNamespaces();
            if (options.seed) c.seed(fixture());
            c.startControllers();
            return c;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The namespaces every Harvester cluster has (namespaced objects live in them; lookups can tell a wrong -n). */
    private void createNamespaces() {
        for (String ns : List.of("default", "kube-system", "kube-public", "harvester-system", "cattle-system")) {
            admin.namespaces().resource(new io.fabric8.kubernetes.api.model.NamespaceBuilder().withNewMetadata().withName(ns)
                    .endMetadata().withNewStatus().withPhase("Active").endStatus().build()).create();
        }
    }

    /** Simulated controllers; each later issue adds its own here. */
    private void startControllers() {
        addInterceptor(new ApiDiscovery(dispatcher));
        addInterceptor(this::podLog);
        controllers.add(new ControllerPods(this));
        controllers.add(PciDevicesController.start(this));
        controllers.add(KubeVirtController.start(this));
        controllers.add(AddonController.start(this));
        controllers.add(FaultEffects.start(this));
    }

    /** Appends a line to the `agent` log of the pcidevices controller pod on a node (klog-style prefix added). */
    public void agentLog(String node, String line) {
        String ts = java.time.format.DateTimeFormatter.ofPattern("MMdd HH:mm:ss.SSSSSS").withZone(java.time.ZoneOffset.UTC)
                .format(java.time.Instant.now());
        agentLogs.computeIfAbsent(node, k -> new java.util.concurrent.CopyOnWriteArrayList<>()).add("I" + ts + "       1 " + line);
    }

    /** A new controller pod on the node starts with an empty log. */
    public void clearAgentLog(String node) {
        agentLogs.remove(node);
    }

    public List<String> agentLog(String node) {
        return List.copyOf(agentLogs.getOrDefault(node, List.of()));
    }

    /** GET /api/v1/namespaces/NS/pods/POD/log[?container=agent&tailLines=N]: the agent log of the pod's node. */
    private io.fabric8.mockwebserver.http.MockResponse podLog(io.fabric8.mockwebserver.http.RecordedRequest req, String path) {
        var m = java.util.regex.Pattern.compile("^/api/v1/namespaces/([^/]+)/pods/([^/?]+)/log(\\?.*)?$").matcher(path);
        if (!"GET".equals(req.getMethod()) || !m.matches()) return null;
        var pod = dispatcher.read("/api/v1/namespaces/" + m.group(1) + "/pods/" + m.group(2));
        if (pod == null) {
            return SimDispatcher.status(404, "NotFound", "pods \"" + m.group(2) + "\" not found");
        }
        String query = m.group(3) == null ? "" : m.group(3);
        var c = java.util.regex.Pattern.compile("container=([^&]+)").matcher(query);
        if (c.find() && !"agent".equals(c.group(1))) {
            return SimDispatcher.status(400, "BadRequest", "container " + c.group(1) + " is not valid for pod " + m.group(2));
        }
        Object node = pod.get("spec", "nodeName");
        List<String> lines = agentLog(String.valueOf(node));
        var t = java.util.regex.Pattern.compile("tailLines=(\\d+)").matcher(query);
        if (t.find()) {
            int n = Integer.parseInt(t.group(1));
            lines = lines.subList(Math.max(0, lines.size() - n), lines.size());
        }
        StringBuilder body = new StringBuilder();
        lines.forEach(l -> body.append(l).append('\n'));
        return new io.fabric8.mockwebserver.http.MockResponse().setResponseCode(200)
                .setHeader("Content-Type", "text/plain").setBody(body.toString());
    }

    public Options options() {
        return options;
    }

    /** Switched-on faults (live: controllers read it on every step). */
    public Set<Fault> faults() {
        return faults;
    }

    public boolean fault(Fault f) {
        return faults.contains(f);
    }

    public String url() {
        return "https://127.0.0.1:" + server.getPort();
    }

    /** The bearer token the API server accepts (never print it). */
    public String token() {
        return token;
    }

    /** The CA that signed the API server's certificate, base64 PEM as certificate-authority-data holds it. */
    public String caData() {
        return certificates.caData();
    }

    /** Writes a kubeconfig for this cluster (context {@value #CONTEXT}): its URL, CA and token. */
    public void writeKubeconfig(Path file) {
        writeKubeconfig(file, url(), "certificate-authority-data: " + caData(), token);
    }

    public int port() {
        return server.getPort();
    }

    /** A kubeconfig (context {@value #CONTEXT}) pointing at this cluster. */
    public Path kubeconfig() {
        return kubeconfig;
    }

    /** A private temporary directory for this cluster's files. */
    public Path dir() {
        return dir;
    }

    /** The simulator's own client: requests through it are neither counted nor faulted. */
    public KubernetesClient admin() {
        return admin;
    }

    public SimDispatcher dispatcher() {
        return dispatcher;
    }

    /** "METHOD path" of every request made by clients under test. */
    public List<String> clientRequests() {
        return dispatcher.clientRequests();
    }

    public void clearClientRequests() {
        dispatcher.clearClientRequests();
    }

    /**
     * Lets a polling controller skip a tick when it would do nothing: its last tick changed nothing
     * (no write reached the API server and no fault was switched while it ran, and the controller's
     * own memory is unchanged), nothing has changed since, and no timed step (a phase delay, a
     * back-off) is pending. Even so it runs at least once a second. An idle simulator then costs
     * next to nothing; otherwise every tick makes requests over TLS, every 50 ms per controller.
     */
    public final class TickGate {
        private Object quietAt;
        private long lastRun = System.nanoTime();

        /** Whether to skip this tick; when not, the caller runs it and then calls {@link #ran}. */
        public boolean skip() {
            if (quietAt != null && quietAt.equals(changeKey()) && System.nanoTime() - lastRun < 1_000_000_000L) return true;
            lastRun = System.nanoTime();
            return false;
        }

        /**
         * After a tick: before = {@link #changeKey()} read at its start; memoryChanged = whether the
         * controller's own state changed; timedStepPending = whether a later tick may act on time alone.
         */
        public void ran(Object before, boolean memoryChanged, boolean timedStepPending) {
            quietAt = !memoryChanged && !timedStepPending && before.equals(changeKey()) ? before : null;
        }
    }

    public TickGate tickGate() {
        return new TickGate();
    }

    /** Equal for two reads when no write reached the API server and no fault was switched in between. */
    public Object changeKey() {
        long w = dispatcher.writes();
        Set<Fault> f = EnumSet.noneOf(Fault.class);
        synchronized (faults) {
            f.addAll(faults);
        }
        return List.of(w, f);
    }

    public void addInterceptor(SimDispatcher.Interceptor i) {
        dispatcher.addInterceptor(i);
    }

    /** The seed objects (altra-cluster.yaml), in order. */
    public static List<GenericKubernetesResource> fixture() {
        try (InputStream in = SimCluster.class.getResourceAsStream("/sim/altra-cluster.yaml")) {
            if (in == null) throw new IllegalStateException("sim/altra-cluster.yaml is not bundled");
            return parseDocuments(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Splits a multi-document YAML text into resources (comments and empty documents skipped). */
    public static List<GenericKubernetesResource> parseDocuments(String yaml) {
        List<GenericKubernetesResource> out = new ArrayList<>();
        for (String doc : yaml.split("(?m)^---\\s*$")) {
            if (doc.lines().allMatch(l -> l.isBlank() || l.trim().startsWith("#"))) continue;
            out.add(Serialization.unmarshal(doc, GenericKubernetesResource.class));
        }
        return out;
    }

    /** Creates each object, then sets its status the way a controller would. */
    public void seed(List<GenericKubernetesResource> objects) {
        for (GenericKubernetesResource r : objects) create(r);
    }

    /** Creates an object of a fixture kind, status included; a VMI gets its VM as owner. */
    public GenericKubernetesResource create(GenericKubernetesResource r) {
        ResourceDefinitionContext ctx = KINDS.get(r.getKind());
        if (ctx == null) throw new IllegalArgumentException("the simulator has no kind " + r.getKind());
        Object status = r.getAdditionalProperties().get("status");
        var op = admin.genericKubernetesResources(ctx);
        if (r.getKind().equals("VirtualMachineInstance")) {
            GenericKubernetesResource vm = KubeVirt.vms(admin).inNamespace(r.getMetadata().getNamespace())
                    .withName(r.getMetadata().getName()).get();
            if (vm != null) {
                r.getMetadata().setOwnerReferences(List.of(new OwnerReferenceBuilder()
                        .withApiVersion("kubevirt.io/v1").withKind("VirtualMachine").withName(vm.getMetadata().getName())
                        .withUid(vm.getMetadata().getUid()).withController(true).withBlockOwnerDeletion(true).build()));
            }
        }
        GenericKubernetesResource created = ctx.isNamespaceScoped()
                ? op.inNamespace(r.getMetadata().getNamespace()).resource(r).create()
                : op.resource(r).create();
        if (status != null && created.getAdditionalProperties().get("status") == null) {
            created.setAdditionalProperty("status", status);
            created = ctx.isNamespaceScoped()
                    ? op.inNamespace(r.getMetadata().getNamespace()).resource(created).updateStatus()
                    : op.resource(created).updateStatus();
        }
        return created;
    }

    /** Writes a kubeconfig with one context, {@value #CONTEXT}, and a bearer token (for a server without TLS). */
    public static void writeKubeconfig(Path file, String server, String token) {
        writeKubeconfig(file, server, null, token);
    }

    /**
     * Writes a kubeconfig with one context, {@value #CONTEXT}, and a bearer token; tls is the
     * cluster's TLS line (e.g. "certificate-authority-data: ..." or "insecure-skip-tls-verify: true"), or null.
     */
    public static void writeKubeconfig(Path file, String server, String tls, String token) {
        String yaml = """
                apiVersion: v1
                kind: Config
                clusters:
                - name: harvester-sim
                  cluster:
                    server: %s
                %scontexts:
                - name: %s
                  context:
                    cluster: harvester-sim
                    user: harvester-sim-admin
                current-context: %s
                users:
                - name: harvester-sim-admin
                  user:
                    token: %s
                """.formatted(server, tls == null ? "" : "    " + tls + "\n", CONTEXT, CONTEXT, token);
        try {
            Files.writeString(file, yaml);
            try {
                Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            } catch (UnsupportedOperationException ignored) {
                // not a POSIX file system; the file is in a private temp dir anyway
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        for (AutoCloseable c : controllers) {
            try {
                c.close();
            } catch (Exception ignored) {
                // closing anyway
            }
        }
        admin.close();
        server.destroy();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // temp dir; best effort
        }
    }
}
