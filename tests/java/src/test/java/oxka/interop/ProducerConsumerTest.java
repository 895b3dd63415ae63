package oxka.interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** Kafka's Java producer and consumer (classic and KIP-848 groups, transactions) against the broker. */
class ProducerConsumerTest extends BrokerTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static KafkaConsumer<String, String> consumer(Map<String, Object> extra) {
        Map<String, Object> m = new HashMap<>(Map.of("auto.offset.reset", "earliest", "enable.auto.commit", "false"));
        m.putAll(extra);
        return stringConsumer(m);
    }

    /** Polls until `n` records arrived (bounded by WAIT), then a little more to catch extras. */
    private static List<ConsumerRecord<String, String>> pollN(KafkaConsumer<String, String> c, int n) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (out.size() < n && System.nanoTime() < deadline) {
            c.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        c.poll(Duration.ofMillis(300)).forEach(out::add);
        return out;
    }

    /** Sends `n` keyed records with headers; returns what the broker acknowledged, in send order. */
    private static List<RecordMetadata> send(KafkaProducer<String, String> p, String topic, int n, String prefix)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ProducerRecord<String, String> r = new ProducerRecord<>(topic, "key-" + (i % 17), prefix + i);
            r.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
            r.headers().add("empty", new byte[0]);
            fs.add(p.send(r));
        }
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) {
            out.add(f.get(30, TimeUnit.SECONDS));
        }
        return out;
    }

    @Test
    void idempotentProducerAndClassicGroupConsumer() throws Exception {
        String topic = createTopic("pc", 4);
        int n = 1000;
        List<RecordMetadata> acks;
        try (KafkaProducer<String, String> p = stringProducer(Map.of("linger.ms", 5))) { // idempotent by default
            acks = send(p, topic, n, "v");
        }
        // The Java partitioner's choice (murmur2 of the key) is what the broker stored.
        Map<String, Integer> partitionOfKey = new HashMap<>();
        Map<Integer, Long> nextOffset = new HashMap<>();
        for (int i = 0; i < n; i++) {
            RecordMetadata m = acks.get(i);
            Integer prev = partitionOfKey.putIfAbsent("key-" + (i % 17), m.partition());
            assertTrue(prev == null || prev == m.partition(), "one partition per key");
            long expected = nextOffset.getOrDefault(m.partition(), 0L);
            assertEquals(expected, m.offset(), "dense offsets in send order on partition " + m.partition());
            nextOffset.put(m.partition(), expected + 1);
        }

        String group = Broker.uniq("group");
        try (KafkaConsumer<String, String> c = consumer(Map.of("group.id", group, "group.protocol", "classic"))) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollN(c, n);
            assertEquals(n, got.size());
            Map<Integer, Long> seen = new HashMap<>();
            for (ConsumerRecord<String, String> r : got) {
                int i = Integer.parseInt(r.value().substring(1));
                assertEquals("key-" + (i % 17), r.key());
                assertEquals(acks.get(i).partition(), r.partition());
                assertEquals(acks.get(i).offset(), r.offset());
                Header seq = r.headers().lastHeader("seq");
                assertNotNull(seq);
                assertEquals(Integer.toString(i), new String(seq.value(), StandardCharsets.UTF_8));
                assertArrayEquals(new byte[0], r.headers().lastHeader("empty").value());
                long prev = seen.getOrDefault(r.partition(), -1L);
                assertTrue(r.offset() > prev, "in offset order");
                seen.put(r.partition(), r.offset());
            }
            c.commitSync();
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (Map.Entry<Integer, Long> e : nextOffset.entrySet()) {
                assertEquals(e.getValue(), committed.get(new TopicPartition(topic, e.getKey())).offset());
            }
        }
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);
        assertEquals(GroupType.CLASSIC, d.type());
        assertTrue(d.members().isEmpty(), "the consumer left the group on close");
    }

    @Test
    void kip848ConsumerGroupResumesFromCommittedOffsets() throws Exception {
        String topic = createTopic("pc", 3);
        try (KafkaProducer<String, String> p = stringProducer(Map.of())) {
            send(p, topic, 60, "a");
        }
        String group = Broker.uniq("kip848");
        Map<String, Object> cfg = Map.of("group.id", group, "group.protocol", "consumer");
        try (KafkaConsumer<String, String> c = consumer(cfg)) {
            c.subscribe(List.of(topic));
            assertEquals(60, pollN(c, 60).size());
            assertEquals(3, c.assignment().size());
            c.commitSync();
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);
            assertEquals(GroupType.CONSUMER, d.type());
            assertEquals(1, d.members().size());
        }
        try (KafkaProducer<String, String> p = stringProducer(Map.of())) {
            send(p, topic, 30, "b");
        }
        try (KafkaConsumer<String, String> c = consumer(cfg)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollN(c, 30);
            assertEquals(30, got.size(), "only what came after the commit");
            got.forEach(r -> assertTrue(r.value().startsWith("b"), r.value()));
        }
    }

    /**
     * KIP-467: a batch with an invalid record (a null key on a compacted topic) is refused
     * whole, and the broker names the bad record, so the Java producer fails exactly that
     * one with InvalidRecordException and the others with a plain KafkaException.
     */
    @Test
    void invalidRecordIsNamedInTheBatch() throws Exception {
        String t = Broker.uniq("kip467");
        admin.createTopics(List.of(new NewTopic(t, 1, (short) 1).configs(Map.of("cleanup.policy", "compact"))))
                .all().get(30, TimeUnit.SECONDS);
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<String, String> p = stringProducer(Map.of("linger.ms", 60000, "enable.idempotence", false,
                "retries", 0))) {
            fs.add(p.send(new ProducerRecord<>(t, 0, "k0", "v0")));
            fs.add(p.send(new ProducerRecord<>(t, 0, null, "no key")));
            fs.add(p.send(new ProducerRecord<>(t, 0, "k2", "v2")));
            p.flush();
        }
        List<Throwable> errors = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
            errors.add(e.getCause());
        }
        assertInstanceOf(InvalidRecordException.class, errors.get(1));
        assertFalse(errors.get(0) instanceof InvalidRecordException, errors.get(0).toString());
        assertFalse(errors.get(2) instanceof InvalidRecordException, errors.get(2).toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"gzip", "snappy", "lz4", "zstd"})
    void compressedBatchesRoundTrip(String codec) throws Exception {
        String topic = createTopic("pc", 1);
        try (KafkaProducer<String, String> p = stringProducer(Map.of("compression.type", codec, "linger.ms", 20))) {
            send(p, topic, 200, codec);
        }
        try (KafkaConsumer<String, String> c = consumer(Map.of())) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            List<ConsumerRecord<String, String>> got = pollN(c, 200);
            assertEquals(200, got.size());
            for (int i = 0; i < 200; i++) {
                assertEquals(codec + i, got.get(i).value());
                assertEquals(i, got.get(i).offset());
            }
        }
    }

    @Test
    void transactionsCommitAndAbortAsReadCommittedSeesThem() throws Exception {
        String topic = createTopic("pc", 2);
        long markers = 0; // one COMMIT/ABORT marker per partition a transaction wrote to
        try (KafkaProducer<String, String> p = stringProducer(Map.of("transactional.id", Broker.uniq("txn")))) {
            p.initTransactions();
            p.beginTransaction();
            markers += send(p, topic, 20, "c1-").stream().map(RecordMetadata::partition).distinct().count();
            p.commitTransaction();
            p.beginTransaction();
            markers += send(p, topic, 20, "x-").stream().map(RecordMetadata::partition).distinct().count();
            p.abortTransaction();
            p.beginTransaction();
            markers += send(p, topic, 20, "c2-").stream().map(RecordMetadata::partition).distinct().count();
            p.commitTransaction();
        }
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
        try (KafkaConsumer<String, String> c = consumer(Map.of("isolation.level", "read_committed"))) {
            c.assign(tps);
            List<ConsumerRecord<String, String>> got = pollN(c, 40);
            assertEquals(40, got.size());
            got.forEach(r -> assertTrue(r.value().startsWith("c"), r.value()));
            // The markers take offsets: the log ends after the last one.
            Map<TopicPartition, Long> ends = c.endOffsets(tps);
            assertEquals(60 + markers, ends.values().stream().mapToLong(Long::longValue).sum());
        }
        try (KafkaConsumer<String, String> c = consumer(Map.of("isolation.level", "read_uncommitted"))) {
            c.assign(tps);
            assertEquals(60, pollN(c, 60).size());
        }
    }
}
