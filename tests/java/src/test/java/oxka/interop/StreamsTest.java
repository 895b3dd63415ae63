package oxka.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Small Kafka Streams applications against the broker. */
class StreamsTest extends BrokerTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final List<Path> stateDirs = new java.util.ArrayList<>();

    /** Runs before BrokerTest's stop (a subclass's @AfterAll comes first). */
    @AfterAll
    static void deleteStateDirs() throws Exception {
        for (Path dir : stateDirs) {
            try (java.util.stream.Stream<Path> files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private static void createTopics(String... names) throws Exception {
        admin.createTopics(java.util.Arrays.stream(names).map(n -> new NewTopic(n, 2, (short) 1)).toList())
                .all().get(30, TimeUnit.SECONDS);
    }

    private static void produce(String topic, List<KeyValue<String, String>> records) throws Exception {
        try (KafkaProducer<String, String> p = stringProducer(Map.of())) {
            for (KeyValue<String, String> kv : records) {
                p.send(new ProducerRecord<>(topic, kv.key, kv.value));
            }
            p.flush();
        }
    }

    private static Properties streamsProps(String appId, String guarantee) throws Exception {
        Path state = Files.createTempDirectory("oxka-streams-");
        stateDirs.add(state);
        Properties p = broker.props(Map.of(
                StreamsConfig.APPLICATION_ID_CONFIG, appId,
                StreamsConfig.STATE_DIR_CONFIG, state.toString(),
                StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee,
                StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100,
                StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0,
                StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class,
                StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class));
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        return p;
    }

    /**
     * Reads `topic` with read_committed until `done` holds for the latest value per key
     * (bounded by WAIT); returns that map.
     */
    private static <V> Map<String, V> latestPerKey(String topic, org.apache.kafka.common.serialization.Deserializer<V> values,
            java.util.function.Predicate<Map<String, V>> done) {
        Map<String, V> latest = new HashMap<>();
        try (KafkaConsumer<String, V> c = new KafkaConsumer<>(broker.props(Map.of(
                "auto.offset.reset", "earliest", "isolation.level", "read_committed",
                "group.id", Broker.uniq("reader"))), new StringDeserializer(), values)) {
            c.subscribe(List.of(topic));
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!done.test(latest) && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, V> r : c.poll(Duration.ofMillis(200))) {
                    latest.put(r.key(), r.value());
                }
            }
        }
        return latest;
    }

    private static void runUntil(KafkaStreams streams, Runnable check) {
        try {
            streams.start();
            check.run();
        } finally {
            streams.close(Duration.ofSeconds(30));
            streams.cleanUp();
        }
    }

    /** A stateless filter + map, exactly-once (transactions and sendOffsetsToTransaction underneath). */
    @Test
    void filterAndMapExactlyOnce() throws Exception {
        String in = Broker.uniq("streams-in");
        String out = Broker.uniq("streams-out");
        createTopics(in, out);
        List<KeyValue<String, String>> input = new java.util.ArrayList<>();
        for (int i = 0; i < 100; i++) {
            input.add(KeyValue.pair("k" + i, "value " + i));
        }
        produce(in, input);

        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(in)
                .filter((k, v) -> Integer.parseInt(v.substring(6)) % 2 == 0)
                .mapValues(v -> v.toUpperCase())
                .to(out);
        KafkaStreams streams = new KafkaStreams(b.build(), streamsProps(Broker.uniq("app-map"), StreamsConfig.EXACTLY_ONCE_V2));
        runUntil(streams, () -> {
            Map<String, String> got = latestPerKey(out, new StringDeserializer(), m -> m.size() >= 50);
            assertEquals(50, got.size());
            for (int i = 0; i < 100; i += 2) {
                assertEquals("VALUE " + i, got.get("k" + i));
            }
        });
    }

    /** Word count: a repartition topic and a changelog topic that Streams creates itself. */
    @Test
    void wordCount() throws Exception {
        String in = Broker.uniq("wc-in");
        String out = Broker.uniq("wc-out");
        createTopics(in, out);
        produce(in, List.of(
                KeyValue.pair("1", "the quick brown fox"),
                KeyValue.pair("2", "jumps over the lazy dog"),
                KeyValue.pair("3", "the dog barks")));

        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(in)
                .flatMapValues(v -> List.of(v.split(" ")))
                .groupBy((k, word) -> word)
                .count()
                .toStream()
                .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        KafkaStreams streams = new KafkaStreams(b.build(), streamsProps(Broker.uniq("app-wc"), StreamsConfig.AT_LEAST_ONCE));
        runUntil(streams, () -> {
            Map<String, Long> counts = latestPerKey(out, new LongDeserializer(),
                    m -> Long.valueOf(3).equals(m.get("the")) && Long.valueOf(2).equals(m.get("dog")) && m.size() >= 9);
            assertEquals(3L, counts.get("the"));
            assertEquals(2L, counts.get("dog"));
            assertEquals(1L, counts.get("fox"));
            assertEquals(9, counts.size(), counts.toString());
            assertTrue(counts.values().stream().allMatch(c -> c >= 1));
        });
    }
}
