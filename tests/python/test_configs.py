"""Kafka 4.4's config tables through confluent-kafka's admin client (which
reports each resource's error code): every topic key round-trips, tiered
storage is refused as Kafka refuses it without tiered storage, broker keys
oxka does not act on are stored and described, Kafka's dynamic modes hold."""

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, NewTopic)

# Every key of Kafka 4.4's LogConfig with a valid non-default value (but
# remote.storage.enable, which needs tiered storage).
ALL_TOPIC_KEYS = {
    "cleanup.policy": "compact,delete",
    "compression.gzip.level": "5",
    "compression.lz4.level": "10",
    "compression.type": "gzip",
    "compression.zstd.level": "4",
    "delete.retention.ms": "86400001",
    "errors.deadletterqueue.group.enable": "true",
    "file.delete.delay.ms": "60001",
    "flush.messages": "1000000",
    "flush.ms": "1000000",
    "follower.replication.throttled.replicas": "0:1",
    "index.interval.bytes": "4097",
    "leader.replication.throttled.replicas": "*",
    "local.retention.bytes": "1000000",
    "local.retention.ms": "1000000",
    "max.compaction.lag.ms": "1000000000",
    "max.decompressed.message.bytes": "10485760",
    "max.message.bytes": "1048589",
    "message.timestamp.after.max.ms": "3600001",
    "message.timestamp.before.max.ms": "1000000000",
    "message.timestamp.type": "LogAppendTime",
    "min.cleanable.dirty.ratio": "0.4",
    "min.compaction.lag.ms": "1",
    "min.insync.replicas": "1",
    "preallocate": "true",
    "remote.copy.lag.bytes": "1000",
    "remote.copy.lag.ms": "1000",
    "remote.log.copy.disable": "true",
    "remote.log.delete.on.disable": "true",
    "remote.storage.enable": "false",
    "retention.bytes": "1000000000",
    "retention.ms": "604800001",
    "segment.bytes": "1073741823",
    "segment.index.bytes": "10485761",
    "segment.jitter.ms": "1",
    "segment.ms": "604800001",
    "unclean.leader.election.enable": "true",
}


def describe(admin, resource):
    return admin.describe_configs([resource])[resource].result(timeout=30)


def alter(admin, resource, key, value, op=AlterConfigOpType.SET):
    resource = ConfigResource(resource.restype, resource.name,
                              incremental_configs=[ConfigEntry(key, value, incremental_operation=op)])
    return admin.incremental_alter_configs([resource])[resource]


def error_code(future):
    with pytest.raises(KafkaException) as e:
        future.result(timeout=30)
    return e.value.args[0].code()


def test_a_topic_with_every_kafka_topic_key_round_trips(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"py-all-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 1, 1, config=ALL_TOPIC_KEYS)])[name].result(timeout=30)
    got = describe(admin, ConfigResource(ConfigResource.Type.TOPIC, name))
    for k, v in ALL_TOPIC_KEYS.items():
        assert got[k].value == v, k
    tiered = f"py-tiered-{uuid.uuid4().hex[:8]}"
    fs = admin.create_topics([NewTopic(tiered, 1, 1, config={"remote.storage.enable": "true"})])
    assert error_code(fs[tiered]) == KafkaError.INVALID_CONFIG


def test_inert_broker_keys_are_stored_with_kafkas_modes(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker = ConfigResource(ConfigResource.Type.BROKER, "1")
    key = "sasl.kerberos.min.time.before.relogin"
    before = describe(admin, broker)
    assert before[key].value == "60000"
    assert before["replica.lag.time.max.ms"].is_read_only
    assert before["ssl.keystore.password"].is_sensitive
    alter(admin, broker, key, "120000").result(timeout=30)
    assert describe(admin, broker)[key].value == "120000"
    # read-only in Kafka: INVALID_REQUEST
    assert error_code(alter(admin, broker, "replica.lag.time.max.ms", "1")) == \
        KafkaError.INVALID_REQUEST
    # (per-broker keys at the cluster default: librdkafka cannot name the
    # default resource; crates/oxka-broker/tests/configs.rs covers it)
    alter(admin, broker, key, None, AlterConfigOpType.DELETE).result(timeout=30)
    assert describe(admin, broker)[key].value == "60000"
