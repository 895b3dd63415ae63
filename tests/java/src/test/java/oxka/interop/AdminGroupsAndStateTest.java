package oxka.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;

/** The Java admin client's group, log-dir, producer-state and transaction APIs. */
class AdminGroupsAndStateTest extends BrokerTest {
    private static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    private static Throwable failure(KafkaFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
        return e.getCause();
    }

    private static KafkaConsumer<String, String> consumer(String group) {
        return stringConsumer(Map.of("group.id", group, "auto.offset.reset", "earliest",
                "enable.auto.commit", "false"));
    }

    @Test
    void consumerGroupOffsetsAlterDeleteAndGroupDelete() throws Exception {
        String t = createTopic("adm", 2);
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        String group = Broker.uniq("adm-group");
        try (KafkaConsumer<String, String> c = consumer(group)) {
            c.subscribe(List.of(t));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (c.assignment().size() < 2 && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200));
            }
            assertEquals(Set.of(p0, p1), c.assignment());
            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals(GroupState.STABLE, d.groupState());
            assertEquals(1, d.members().size());
            assertEquals(Set.of(p0, p1), d.members().iterator().next().assignment().topicPartitions());
            Collection<GroupListing> listed = get(admin.listGroups().all());
            assertTrue(listed.stream().anyMatch(g -> g.groupId().equals(group)), listed.toString());
            // Kafka refuses to delete a group with members.
            assertInstanceOf(GroupNotEmptyException.class, failure(admin.deleteConsumerGroups(List.of(group)).all()));
        }
        get(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(5, "five"),
                p1, new OffsetAndMetadata(7))).all());
        Map<TopicPartition, OffsetAndMetadata> offsets =
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertEquals(5, offsets.get(p0).offset());
        assertEquals("five", offsets.get(p0).metadata());
        assertEquals(7, offsets.get(p1).offset());

        get(admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
        offsets = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertEquals(Set.of(p0), offsets.keySet());

        get(admin.deleteConsumerGroups(List.of(group)).all());
        assertInstanceOf(GroupIdNotFoundException.class, failure(admin.deleteConsumerGroups(List.of(group)).all()));
    }

    @Test
    @Disabled("oxka has no DescribeLogDirs (API 35) yet: the admin client gets UnsupportedVersionException"
            + " (\"The node does not support DESCRIBE_LOG_DIRS\"); passes against Apache Kafka 4.4.0")
    void describeLogDirsShowsThePartitions() throws Exception {
        String t = createTopic("adm", 2);
        try (KafkaProducer<String, String> p = stringProducer(Map.of())) {
            p.send(new ProducerRecord<>(t, 0, null, "x".repeat(1000))).get(30, TimeUnit.SECONDS);
        }
        int node = get(admin.describeCluster().nodes()).iterator().next().id();
        Map<String, LogDirDescription> dirs = get(admin.describeLogDirs(List.of(node)).allDescriptions()).get(node);
        assertFalse(dirs.isEmpty());
        LogDirDescription dir = dirs.values().stream()
                .filter(d -> d.replicaInfos().containsKey(new TopicPartition(t, 0))).findFirst().orElseThrow();
        assertTrue(dir.replicaInfos().get(new TopicPartition(t, 0)).size() > 1000);
        assertEquals(0, dir.replicaInfos().get(new TopicPartition(t, 1)).size());
    }

    @Test
    void describeProducersAndTransactions() throws Exception {
        String t = createTopic("adm", 1);
        TopicPartition tp = new TopicPartition(t, 0);
        String txnId = Broker.uniq("adm-txn");
        try (KafkaProducer<String, String> p = stringProducer(Map.of("transactional.id", txnId))) {
            p.initTransactions();
            p.beginTransaction();
            RecordMetadata m = p.send(new ProducerRecord<>(t, "open")).get(30, TimeUnit.SECONDS);
            // An open transaction: its producer on the partition, and the coordinator's view.
            List<ProducerState> producers = get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
            assertEquals(1, producers.size());
            ProducerState ps = producers.get(0);
            assertEquals(m.offset(), ps.currentTransactionStartOffset().orElseThrow());

            TransactionDescription td = get(admin.describeTransactions(List.of(txnId)).description(txnId));
            assertEquals(TransactionState.ONGOING, td.state());
            assertEquals(ps.producerId(), td.producerId());
            assertEquals(Set.of(tp), td.topicPartitions());
            Collection<TransactionListing> listed = get(admin.listTransactions().all());
            assertTrue(listed.stream().anyMatch(l -> l.transactionalId().equals(txnId)
                    && l.state() == TransactionState.ONGOING), listed.toString());
            p.commitTransaction();
        }
        // The commit returns once the coordinator has decided; the markers follow, and
        // with them the partition's open transaction ends.
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        PartitionProducerState after = get(admin.describeProducers(List.of(tp)).partitionResult(tp));
        while (after.activeProducers().get(0).currentTransactionStartOffset().isPresent() && System.nanoTime() < deadline) {
            Thread.sleep(100);
            after = get(admin.describeProducers(List.of(tp)).partitionResult(tp));
        }
        assertTrue(after.activeProducers().get(0).currentTransactionStartOffset().isEmpty());
        TransactionState end = get(admin.describeTransactions(List.of(txnId)).description(txnId)).state();
        assertTrue(end == TransactionState.COMPLETE_COMMIT || end == TransactionState.PREPARE_COMMIT, end.toString());
    }

    @Test
    void describeFeaturesAnswers() throws Exception {
        FeatureMetadata f = get(admin.describeFeatures().featureMetadata());
        assertTrue(f.finalizedFeaturesEpoch().isPresent() || f.finalizedFeatures().isEmpty());
    }
}
