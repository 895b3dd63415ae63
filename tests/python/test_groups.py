"""Consumer-group behaviour judged by confluent-kafka (librdkafka 2.16):
KIP-848 commits for manually assigned partitions and group configs."""

import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, ResourceType)


def test_kip848_manual_assignment_commit(bootstrap, topic):
    """librdkafka 2.15+ with group.protocol=consumer commits manually
    assigned partitions with epoch -1 and its own member id; Kafka accepts
    that while the group has no members (and creates the group)."""
    group = f"py-manual-{uuid.uuid4().hex[:8]}"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "group.protocol": "consumer", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        done = c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        assert [(p.partition, p.offset, p.error) for p in done] == [(0, 5, None)]
        got = c.committed([TopicPartition(topic, 0)], timeout=30)
        assert got[0].offset == 5
    finally:
        c.close()


def test_group_configs_with_the_admin_client(bootstrap):
    """KIP-848 group configs through confluent-kafka's admin client
    (resource type GROUP): set, described as GROUP_CONFIG, bounds checked."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = f"py-cfg-{uuid.uuid4().hex[:8]}"

    def alter(key, value):
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        return admin.incremental_alter_configs([res])[res]

    alter("consumer.heartbeat.interval.ms", "6000").result(timeout=30)
    res = ConfigResource(ResourceType.GROUP, group)
    configs = admin.describe_configs([res])[res].result(timeout=30)
    hb = configs["consumer.heartbeat.interval.ms"]
    assert (hb.value, hb.source) == ("6000", 8)  # GROUP_CONFIG
    session = configs["consumer.session.timeout.ms"]
    assert (session.value, session.source) == ("45000", 5)  # DEFAULT_CONFIG
    try:
        alter("consumer.heartbeat.interval.ms", "100").result(timeout=30)
    except Exception as e:  # KafkaException(INVALID_CONFIG)
        assert "must be in the range 5000 to 15000 inclusive" in str(e)
    else:
        raise AssertionError("a value below the broker's minimum was accepted")
