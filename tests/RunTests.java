///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//COMPILE_OPTIONS -encoding UTF-8
//DEPS org.junit:junit-bom:5.13.4@pom
//DEPS org.junit.jupiter:junit-jupiter
//DEPS org.junit.platform:junit-platform-launcher
//SOURCES ../scripts/*.java
//SOURCES ../scripts/lib/sim/SimCluster.java ../scripts/lib/model/Passthrough.java
//SOURCES support/*.java
//SOURCES *Test.java

import static org.junit.platform.engine.discovery.ClassNameFilter.includeClassNamePatterns;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClasspathRoots;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectMethod;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Set;
import java.util.ArrayList;
import java.util.List;

import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Runs the JUnit 5 suite: `./jbang test` (all), `./jbang test InventoryTest` (a class) or
 * `./jbang test InventoryTest#jsonOutput` (a method). Prints PASS/FAIL per test and a closing
 * "N passed, N failed, N skipped" line; exits 1 on any failure or when no test ran.
 */
public class RunTests {
    public static void main(String... args) throws Exception {
        List<DiscoverySelector> selectors = new ArrayList<>();
        if (args.length == 0) {
            // Every *Test class in this script's own jar: no list to keep in sync.
            Path jar = Path.of(RunTests.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            selectors.addAll(selectClasspathRoots(Set.of(jar)));
        } else {
            for (String a : args) selectors.add(a.contains("#") ? selectMethod(a) : selectClass(a));
        }
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(selectors).filters(includeClassNamePatterns(".*Test")).build();
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        TestExecutionListener progress = new TestExecutionListener() {
            @Override
            public void executionFinished(TestIdentifier id, TestExecutionResult result) {
                if (!id.isTest()) {
                    if (result.getStatus() != TestExecutionResult.Status.SUCCESSFUL) {
                        System.out.println("FAIL " + id.getDisplayName() + ": " + result.getThrowable().map(Throwable::toString).orElse(""));
                    }
                    return;
                }
                String name = id.getUniqueId().replaceAll(".*\\[class:([^\\]]+)\\].*\\[(?:method|test-template):([^(\\]]+).*", "$1#$2");
                if (id.getUniqueId().contains("[test-template-invocation:")) name += " [" + id.getDisplayName() + "]";
                switch (result.getStatus()) {
                    case SUCCESSFUL -> System.out.println("PASS " + name);
                    case ABORTED -> System.out.println("SKIP " + name);
                    case FAILED -> {
                        System.out.println("FAIL " + name);
                        result.getThrowable().ifPresent(t -> t.printStackTrace(System.out));
                    }
                }
                System.out.flush();
            }

            @Override
            public void executionSkipped(TestIdentifier id, String reason) {
                System.out.println("SKIP " + id.getDisplayName() + ": " + reason);
            }
        };
        LauncherFactory.create().execute(request, summary, progress);
        TestExecutionSummary s = summary.getSummary();
        s.printFailuresTo(new PrintWriter(System.out), 20);
        long failed = s.getTestsFailedCount() + s.getContainersFailedCount();
        long skipped = s.getTestsSkippedCount() + s.getTestsAbortedCount();
        System.out.println(s.getTestsSucceededCount() + " passed, " + failed + " failed, " + skipped + " skipped");
        System.exit(failed > 0 || s.getTestsSucceededCount() == 0 ? 1 : 0);
    }
}
