package oxka.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Java clients that stay up across a clean broker restart. */
class RestartTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private Broker broker;

    @BeforeEach
    void start() throws Exception {
        broker = Broker.start();
        assumeTrue(broker.restartable(), "needs a broker this harness starts (not OXKA_JAVA_BOOTSTRAP)");
    }

    @AfterEach
    void stop() throws Exception {
        if (broker != null) {
            broker.close();
        }
    }

    private void produce(String topic, String prefix, int n) throws Exception {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(broker.props(Map.of()),
                new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, i % 2, null, prefix + i)).get(30, TimeUnit.SECONDS);
            }
        }
    }

    private static List<ConsumerRecord<String, String>> pollN(KafkaConsumer<String, String> c, int n) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (out.size() < n && System.nanoTime() < deadline) {
            c.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        return out;
    }

    /**
     * A group member that lives through a broker restart keeps consuming and
     * committing: the coordinator reloads the group from __consumer_offsets
     * (issue 11 §1: with KIP-848 the first commit after the restart must not
     * fail with STALE_MEMBER_EPOCH), and nothing is read twice.
     */
    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void groupMemberCommitsAcrossRestart(String protocol) throws Exception {
        String topic = Broker.uniq("restart");
        try (Admin admin = broker.admin()) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        produce(topic, "a", 20);
        String group = Broker.uniq("restart-" + protocol);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(broker.props(Map.of(
                "group.id", group, "group.protocol", protocol, "auto.offset.reset", "earliest",
                "enable.auto.commit", "false")), new StringDeserializer(), new StringDeserializer())) {
            c.subscribe(List.of(topic));
            assertEquals(20, pollN(c, 20).size());
            c.commitSync(Duration.ofSeconds(30));

            broker.restart();
            produce(topic, "b", 10);
            List<ConsumerRecord<String, String>> after = pollN(c, 10);
            assertEquals(10, after.size(), "the records produced after the restart, once each");
            after.forEach(r -> assertEquals('b', r.value().charAt(0), r.value()));
            c.commitSync(Duration.ofSeconds(30));

            Map<TopicPartition, OffsetAndMetadata> committed;
            try (Admin admin = broker.admin()) {
                committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                        .get(30, TimeUnit.SECONDS);
            }
            Map<Integer, Long> byPartition = new HashMap<>();
            committed.forEach((tp, om) -> byPartition.put(tp.partition(), om.offset()));
            assertEquals(Map.of(0, 15L, 1, 15L), byPartition);
        }
    }
}
