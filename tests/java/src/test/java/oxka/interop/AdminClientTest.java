package oxka.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Test;

/** Kafka's Java admin client (KafkaAdminClient) against the broker. */
class AdminClientTest extends BrokerTest {
    /** The error a failed admin future carries. */
    private static Throwable cause(Runnable r) {
        RuntimeException e = assertThrows(RuntimeException.class, r::run);
        assertInstanceOf(ExecutionException.class, e.getCause(), "expected a failed future");
        return e.getCause().getCause();
    }

    private static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    @Test
    void describeClusterNamesOneNodeAndAClusterId() throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        Collection<Node> nodes = get(r.nodes());
        String clusterId = get(r.clusterId());
        Node controller = get(r.controller());
        assertFalse(nodes.isEmpty());
        assertNotNull(clusterId);
        assertFalse(clusterId.isEmpty());
        assertNotNull(controller);
        assertTrue(nodes.stream().anyMatch(n -> n.id() == controller.id()) || controller.id() >= 0);
    }

    @Test
    void createDescribeListAndDeleteTopic() throws Exception {
        String topic = Broker.uniq("admin");
        get(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)
                .configs(Map.of("cleanup.policy", "compact")))).all());

        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        assertEquals(3, d.partitions().size());
        d.partitions().forEach(p -> {
            assertNotNull(p.leader());
            assertEquals(1, p.replicas().size());
            assertEquals(p.replicas(), p.isr());
        });
        assertNotNull(d.topicId());
        assertTrue(get(admin.listTopics().names()).contains(topic));

        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = get(admin.describeConfigs(List.of(res)).all()).get(res);
        ConfigEntry policy = cfg.get("cleanup.policy");
        assertEquals("compact", policy.value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, policy.source());
        ConfigEntry retention = cfg.get("retention.ms");
        assertEquals("604800000", retention.value());
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, retention.source());

        get(admin.deleteTopics(List.of(topic)).all());
        Throwable gone = cause(() -> get(admin.describeTopics(List.of(topic)).allTopicNames()));
        assertInstanceOf(UnknownTopicOrPartitionException.class, gone);
    }

    @Test
    void createTopicErrorsAreKafkas() {
        String topic = Broker.uniq("errors");
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
        assertInstanceOf(TopicExistsException.class,
                cause(() -> get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all())));
        assertInstanceOf(InvalidReplicationFactorException.class,
                cause(() -> get(admin.createTopics(List.of(new NewTopic(Broker.uniq("rf"), 1, (short) 3))).all())));
        assertInstanceOf(InvalidTopicException.class,
                cause(() -> get(admin.createTopics(List.of(new NewTopic("bad/name", 1, (short) 1))).all())));
    }

    @Test
    void incrementalAlterConfigsSetAndDelete() {
        String topic = Broker.uniq("configs");
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all());
        assertEquals("3600000", get(admin.describeConfigs(List.of(res)).all()).get(res).get("retention.ms").value());
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
        ConfigEntry e = get(admin.describeConfigs(List.of(res)).all()).get(res).get("retention.ms");
        assertEquals("604800000", e.value());
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, e.source());
    }

    @Test
    void createPartitionsGrowsAndRefusesToShrink() {
        String topic = Broker.uniq("partitions");
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all());
        assertEquals(3, get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size());
        assertInstanceOf(InvalidPartitionsException.class,
                cause(() -> get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all())));
    }

    @Test
    void deleteRecordsMovesTheLogStartOffset() throws Exception {
        String topic = Broker.uniq("delete-records");
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
        try (KafkaProducer<String, String> p = stringProducer(Map.of())) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        long low = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp)).lowWatermark();
        assertEquals(4L, low);
        assertEquals(4L, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all()).get(tp).offset());
        assertEquals(10L, get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all()).get(tp).offset());
        assertEquals(Set.of(tp), get(admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).all()).keySet());
    }
}
