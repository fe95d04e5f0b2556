import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The one progress renderer and the one --timeout check (scripts/lib/cli/). */
class ProgressTest {
    static String render(boolean tty, List<String> states) {
        StringWriter w = new StringWriter();
        Progress p = new Progress(new PrintWriter(w), tty);
        states.forEach(p::show);
        p.done();
        return w.toString();
    }

    @Test
    void notATerminalGetsEachNewStateOnceAndNoEscapeCodes() {
        assertEquals("a: Pending\na: Scheduling\na: Running\n",
                render(false, List.of("a: Pending", "a: Pending", "a: Scheduling", "a: Running", "a: Running")));
    }

    @Test
    void aTerminalGetsOneLineRedrawnInPlaceThenANewline() {
        assertEquals("\r\033[Ka: Pending\r\033[Ka: Running\n", render(true, List.of("a: Pending", "a: Pending", "a: Running")));
    }

    @Test
    void aLongLineIsCutToTheTerminalWidthNeverWrapped() {
        StringWriter w = new StringWriter();
        Progress p = new Progress(new PrintWriter(w), true, 20);
        p.show("docker-host: Scheduling on altra — Unschedulable: 0/2 nodes are available");
        assertEquals("\r\033[Kdocker-host: Sched…", w.toString());
        assertEquals("short", Terminal.fit("short", 20));
    }

    @Test
    void onlyTheProcesssOwnStreamsCanBeTerminalsNeverACapturedWriter() {
        // Judged for the writer's own stream: a writer that is not the process's stdout/stderr never gets escape codes.
        assertEquals(false, new Progress(new PrintWriter(new StringWriter())).tty());
        assertEquals(false, Terminal.isTerminal(new PrintWriter(System.err, true)));
        StringWriter w = new StringWriter();
        Progress p = new Progress(new PrintWriter(w));
        p.show("a: Pending");
        p.done();
        assertEquals("a: Pending\n", w.toString());
    }

    @Test
    void nothingShownLeavesNoEmptyLine() {
        assertEquals("", render(true, List.of()));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, -1, -300})
    void aTimeoutMustBePositiveWithOneMessage(int seconds) {
        var e = assertThrows(Cli.UserError.class, () -> Timeouts.positive(seconds));
        assertEquals(Cli.Exit.USAGE, e.exit);
        assertEquals("--timeout " + seconds + " is not a positive number of seconds — give seconds, e.g. --timeout 300", e.getMessage());
    }

    @Test
    void aPositiveTimeoutIsThatManySeconds() {
        assertEquals(Duration.ofSeconds(300), Timeouts.positive(300));
    }
}
