import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

import io.fabric8.kubernetes.client.dsl.base.CustomResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;

/**
 * fabric8's CRUD dispatcher plus what the API server of a Harvester cluster adds: admission
 * webhooks, KubeVirt subresources, pod logs, RBAC faults. Requests from the simulator's own
 * controllers (User-Agent {@link SimCluster#SIM_USER_AGENT}) are not counted and never faulted.
 */
public class SimDispatcher extends KubernetesCrudDispatcher {

    /** Answers a request the CRUD store cannot (webhook denial, subresource, log), or returns null. */
    public interface Interceptor {
        MockResponse intercept(RecordedRequest request, String path);
    }

    private final Set<Fault> faults;
    private final String bearer;
    private final List<Interceptor> interceptors = new CopyOnWriteArrayList<>();
    private final List<TimedRequest> clientRequests = new CopyOnWriteArrayList<>();
    private final java.util.concurrent.atomic.AtomicLong writes = new java.util.concurrent.atomic.AtomicLong();

    /** A client request and when it reached the dispatcher (for bench/: where a command's time goes). */
    public record TimedRequest(java.time.Instant at, String method, String path) {}

    /** token: the bearer token every request must carry, as the API server's token authenticator requires. */
    public SimDispatcher(List<CustomResourceDefinitionContext> crds, Set<Fault> faults, String token) {
        super(crds);
        this.faults = faults;
        this.bearer = "Bearer " + token;
    }

    public void addInterceptor(Interceptor i) {
        interceptors.add(i);
    }

    /** "METHOD path" of every request made by clients other than the simulator, in order. */
    public List<String> clientRequests() {
        return clientRequests.stream().map(r -> r.method() + " " + r.path()).toList();
    }

    /** The same requests as {@link #clientRequests()}, each with its arrival time. */
    public List<TimedRequest> timedClientRequests() {
        return List.copyOf(clientRequests);
    }

    public void clearClientRequests() {
        clientRequests.clear();
    }

    /**
     * How many requests other than GET (anyone's, the simulator's own included) have been answered:
     * counted after the store has changed, so a reader that sees the same count before and after
     * reading has read the latest state.
     */
    public long writes() {
        return writes.get();
    }

    public static boolean fromSimulator(RecordedRequest request) {
        String ua = request.getHeader("User-Agent");
        return ua != null && ua.startsWith(SimCluster.SIM_USER_AGENT);
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
        try {
            return answer(request);
        } finally {
            if (!"GET".equals(request.getMethod())) writes.incrementAndGet();
        }
    }

    private MockResponse answer(RecordedRequest request) {
        String path = request.getPath();
        if (!bearer.equals(request.getHeader("Authorization"))) {
            // What kube-apiserver answers when no authenticator accepts the request.
            return status(401, "Unauthorized", "Unauthorized");
        }
        if (!fromSimulator(request)) {
            clientRequests.add(new TimedRequest(java.time.Instant.now(), request.getMethod(), path));
            if (faults.contains(Fault.FORBIDDEN)) {
                return status(403, "Forbidden", "User \"system:serviceaccount:default:limited\" cannot "
                        + request.getMethod().toLowerCase() + " resource at " + path.replaceFirst("\\?.*", ""));
            }
        }
        try {
            for (Interceptor i : interceptors) {
                MockResponse r = i.intercept(request, path);
                if (r != null) return r;
            }
            return super.dispatch(request);
        } catch (RuntimeException e) {
            // A simulator bug must fail the request, not hang the client until its timeout.
            e.printStackTrace();
            return status(500, "InternalError", "simulator error: " + e);
        }
    }

    /**
     * Reads an object straight from the store (null if absent). Interceptors must use this, never a
     * client: they run on the server's dispatch thread, and a request to the same server deadlocks.
     */
    public io.fabric8.kubernetes.api.model.GenericKubernetesResource read(String path) {
        MockResponse r = handleGet(path);
        if (r == null || r.code() != 200) return null;
        return io.fabric8.kubernetes.client.utils.Serialization.unmarshal(r.getBody().readUtf8(),
                io.fabric8.kubernetes.api.model.GenericKubernetesResource.class);
    }

    /** A metav1.Status response, as the API server sends for errors. */
    public static MockResponse status(int code, String reason, String message) {
        String body = io.fabric8.kubernetes.client.utils.Serialization.asJson(new io.fabric8.kubernetes.api.model.StatusBuilder()
                .withStatus("Failure").withCode(code).withReason(reason).withMessage(message).build());
        return new MockResponse().setResponseCode(code).setHeader("Content-Type", "application/json").setBody(body);
    }
}
