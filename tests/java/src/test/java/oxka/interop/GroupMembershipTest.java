package oxka.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** Java consumers sharing a group: assignment split and hand-over (both protocols), static membership. */
class GroupMembershipTest extends BrokerTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    /** Polls every consumer in turn until `done` holds (bounded by WAIT). */
    private static boolean pollUntil(List<KafkaConsumer<String, String>> cs, BooleanSupplier done) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            for (KafkaConsumer<String, String> c : cs) {
                c.poll(Duration.ofMillis(100));
            }
            if (done.getAsBoolean()) {
                return true;
            }
        }
        return false;
    }

    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void twoMembersSplitThenOneTakesOver(String protocol) throws Exception {
        String t = createTopic("members", 6);
        String group = Broker.uniq("split-" + protocol);
        Map<String, Object> cfg = Map.of("group.id", group, "group.protocol", protocol);
        KafkaConsumer<String, String> a = stringConsumer(cfg);
        KafkaConsumer<String, String> b = stringConsumer(cfg);
        try {
            a.subscribe(List.of(t));
            b.subscribe(List.of(t));
            boolean split = pollUntil(List.of(a, b), () -> a.assignment().size() == 3 && b.assignment().size() == 3);
            assertTrue(split, "3+3 expected, got " + a.assignment() + " / " + b.assignment());
            Set<TopicPartition> all = new HashSet<>(a.assignment());
            all.addAll(b.assignment());
            assertEquals(6, all.size(), "no partition twice");
            b.close();
            assertTrue(pollUntil(List.of(a), () -> a.assignment().size() == 6),
                    "the remaining member gets all six, got " + a.assignment());
        } finally {
            a.close();
            b.close();
        }
    }

    /**
     * A second consumer with the same group.instance.id replaces the first, and Kafka
     * answers the first FENCED_INSTANCE_ID (KIP-345), which the Java consumer raises.
     */
    @Test
    void staticMemberReplacedIsFenced() throws Exception {
        String t = createTopic("members", 2);
        String group = Broker.uniq("static");
        Map<String, Object> cfg = Map.of("group.id", group, "group.protocol", "classic",
                "group.instance.id", "instance-1", "enable.auto.commit", "false");
        KafkaConsumer<String, String> first = stringConsumer(cfg);
        KafkaConsumer<String, String> second = stringConsumer(cfg);
        try {
            first.subscribe(List.of(t));
            assertTrue(pollUntil(List.of(first), () -> first.assignment().size() == 2));
            second.subscribe(List.of(t));
            assertTrue(pollUntil(List.of(second), () -> second.assignment().size() == 2));
            Throwable fenced = null;
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (fenced == null && System.nanoTime() < deadline) {
                try {
                    first.poll(Duration.ofMillis(100));
                    first.commitSync(Duration.ofSeconds(10));
                } catch (RuntimeException e) {
                    fenced = e;
                }
            }
            assertInstanceOf(FencedInstanceIdException.class, fenced);
        } finally {
            try {
                first.close(Duration.ZERO);
            } catch (RuntimeException ignored) {
                // a fenced consumer may throw again on close
            }
            second.close();
        }
    }
}
