//DEPS io.fabric8:kubernetes-client-bom:7.4.0@pom
//DEPS io.fabric8:kubernetes-client

import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import io.fabric8.kubernetes.client.http.AsyncBody;
import io.fabric8.kubernetes.client.http.HttpRequest;
import io.fabric8.kubernetes.client.http.HttpResponse;
import io.fabric8.kubernetes.client.http.Interceptor;

/**
 * Bounds the body of every API response by --request-timeout, as kubectl's does (Go's
 * http.Client.Timeout covers the body). fabric8's request timeout is the JDK client's, which
 * ends when the headers arrive: a server that sends headers and then stalls would hang us
 * forever. Watches are long-lived streams by design and are left alone; their set-up (the
 * headers) is bounded by the JDK timeout.
 */
public final class BodyTimeout implements Interceptor {
    public static final String NAME = "body-timeout";
    private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "api-body-timeout");
        t.setDaemon(true);
        return t;
    });

    private final Duration timeout;

    /** timeout: zero or negative for none. */
    public BodyTimeout(Duration timeout) {
        this.timeout = timeout;
    }

    @Override
    public void after(HttpRequest request, HttpResponse<?> response, AsyncBody.Consumer<List<ByteBuffer>> consumer) {
        if (timeout.isZero() || timeout.isNegative() || !(response.body() instanceof AsyncBody body) || isWatch(request)) return;
        ScheduledFuture<?> timer = TIMER.schedule(() -> {
            if (body.done().completeExceptionally(new HttpTimeoutException("no complete response within the "
                    + timeout.toSeconds() + " s --request-timeout (the server sent headers, then stalled)"))) {
                body.cancel();
            }
        }, timeout.toMillis(), TimeUnit.MILLISECONDS);
        body.done().whenComplete((ok, failed) -> timer.cancel(false));
    }

    private static boolean isWatch(HttpRequest request) {
        String q = request.uri().getRawQuery();
        return q != null && (q.contains("watch=true") || q.contains("watch=1") || q.contains("follow=true"));
    }
}
