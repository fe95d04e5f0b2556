//SOURCES ../cli/Cli.java

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.dsl.Informable;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;

/**
 * A wake-up signal fed by fabric8 informers on everything a wait depends on. Informers relist and
 * reconnect by themselves (a 410 Gone or a dropped connection needs no code of ours); the waiting
 * code re-reads the state it judges after each wake-up.
 */
public final class Changes implements AutoCloseable {
    private final Semaphore changed = new Semaphore(0);
    private final List<SharedIndexInformer<?>> informers = new ArrayList<>();

    /** Starts an informer on these resources; every add, update or delete wakes the waiter. */
    public <T extends HasMetadata> Changes on(Informable<T> resources) {
        informers.add(resources.inform(new ResourceEventHandler<T>() {
            @Override
            public void onAdd(T obj) {
                changed.release();
            }

            @Override
            public void onUpdate(T oldObj, T newObj) {
                changed.release();
            }

            @Override
            public void onDelete(T obj, boolean deletedFinalStateUnknown) {
                changed.release();
            }
        }));
        return this;
    }

    /** Waits for the next change, at most nanos; false when none came. */
    public boolean await(long nanos) {
        try {
            boolean woke = nanos > 0 && changed.tryAcquire(nanos, TimeUnit.NANOSECONDS);
            changed.drainPermits();
            return woke;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Cli.UserError(Cli.Exit.TIMEOUT, "interrupted while waiting");
        }
    }

    @Override
    public void close() {
        informers.forEach(SharedIndexInformer::close);
    }
}
