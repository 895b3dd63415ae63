package oxka.interop;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * One broker and one admin client per test class: started before its first
 * test, closed after its last (JUnit runs these static hooks for each subclass).
 */
abstract class BrokerTest {
    static Broker broker;
    static Admin admin;

    @BeforeAll
    static void start() throws Exception {
        broker = Broker.start();
        admin = broker.admin();
    }

    @AfterAll
    static void stop() throws Exception {
        if (admin != null) {
            admin.close();
        }
        if (broker != null) {
            broker.close();
        }
    }

    /** A new topic named from `prefix`, with `partitions` partitions and one replica. */
    static String createTopic(String prefix, int partitions) throws Exception {
        String t = Broker.uniq(prefix);
        admin.createTopics(List.of(new NewTopic(t, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return t;
    }

    /** A String producer with the broker's settings plus `cfg`. */
    static KafkaProducer<String, String> stringProducer(Map<String, Object> cfg) {
        return new KafkaProducer<>(broker.props(cfg), new StringSerializer(), new StringSerializer());
    }

    /** A String consumer with the broker's settings plus `cfg`. */
    static KafkaConsumer<String, String> stringConsumer(Map<String, Object> cfg) {
        return new KafkaConsumer<>(broker.props(cfg), new StringDeserializer(), new StringDeserializer());
    }
}
