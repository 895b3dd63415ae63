"""kafka-python and confluent-kafka against oxka: the examples every Kafka
tutorial starts with, codecs, and admin calls."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType


def kp_read_all(bootstrap, topic, partitions, expected, timeout=30):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False,
                      auto_offset_reset="earliest", request_timeout_ms=20000)
    try:
        tps = [KTP(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for _tp, recs in c.poll(timeout_ms=300).items():
                out.extend(recs)
        return out
    finally:
        c.close(autocommit=False)


def ck_read_all(bootstrap, topic, partitions, expected, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is None:
                continue
            assert not m.error(), m.error()
            out.append(m)
        return out
    finally:
        c.close()


def test_classic_kafka_python_producer_example(bootstrap, topic):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(10):
        producer.send(topic, f"msg {i}".encode(), partition=0)
    producer.flush()
    producer.close()
    got = kp_read_all(bootstrap, topic, [0], 10)
    assert [r.value for r in got] == [f"msg {i}".encode() for i in range(10)]
    assert [r.offset for r in got] == list(range(10))


def test_send_to_partition_with_gzip_and_retries(bootstrap, topic):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", retries=3)
    md = producer.send(topic, b"to partition one", partition=1).get(timeout=60)
    producer.close()
    assert (md.topic, md.partition, md.offset) == (topic, 1, 0)
    got = kp_read_all(bootstrap, topic, [1], 1)
    assert [r.value for r in got] == [b"to partition one"]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_codecs_cross_clients(bootstrap, topic, codec):
    from kafka import KafkaProducer
    kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec)
    for i in range(50):
        kp.send(topic, f"kp-{codec}-{i}".encode(), key=b"k", partition=0)
    kp.flush()
    kp.close()
    ck = Producer({"bootstrap.servers": bootstrap, "compression.type": codec})
    for i in range(50):
        ck.produce(topic, f"ck-{codec}-{i}".encode(), key=b"k", partition=1)
    assert ck.flush(30) == 0
    expected0 = [f"kp-{codec}-{i}".encode() for i in range(50)]
    expected1 = [f"ck-{codec}-{i}".encode() for i in range(50)]
    # each client reads what the other wrote
    assert [m.value() for m in ck_read_all(bootstrap, topic, [0], 50)] == expected0
    assert [r.value for r in kp_read_all(bootstrap, topic, [1], 50)] == expected1


def test_confluent_round_trip_with_headers_and_keys(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(100):
        p.produce(topic, value=f"v{i}".encode(), key=f"k{i}".encode(), partition=i % 2,
                  headers=[("n", str(i).encode()), ("empty", b"")], timestamp=1_600_000_000_000 + i)
    assert p.flush(30) == 0
    got = ck_read_all(bootstrap, topic, [0, 1], 100)
    assert len(got) == 100
    for m in got:
        i = int(m.value()[1:])
        assert m.key() == f"k{i}".encode()
        assert m.partition() == i % 2
        assert m.headers() == [("n", str(i).encode()), ("empty", b"")]
        assert m.timestamp()[1] == 1_600_000_000_000 + i


def test_watermarks_and_offsets_for_times(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        p.produce(topic, b"x", partition=0, timestamp=10_000 + i * 100)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 5)
        (r,) = c.offsets_for_times([TopicPartition(topic, 0, 10_250)], timeout=10)
        assert r.offset == 3
    finally:
        c.close()


def test_admin_calls(bootstrap):
    a = AdminClient({"bootstrap.servers": bootstrap})
    name = f"py-admin-{time.monotonic_ns()}"
    a.create_topics([NewTopic(name, 1, 1, config={"cleanup.policy": "delete"})])[name].result(30)
    assert name in a.list_topics(timeout=10).topics
    a.create_partitions([NewPartitions(name, 3)])[name].result(30)
    assert len(a.list_topics(name, timeout=10).topics[name].partitions) == 3
    res = ConfigResource(ResourceType.TOPIC, name)
    cfg = a.describe_configs([res])[res].result(30)
    assert cfg["retention.ms"].value == "604800000"
    bad = NewTopic(f"{name}-bad", 1, 1, config={"retention.ms": "x"})
    with pytest.raises(Exception) as e:
        a.create_topics([bad])[bad.topic].result(30)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    a.delete_topics([name])[name].result(30)
    assert name not in a.list_topics(timeout=10).topics


def test_kafka_python_admin(bootstrap):
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    name = f"py-kpadmin-{time.monotonic_ns()}"
    a.create_topics([KNewTopic(name, num_partitions=2, replication_factor=1)])
    assert name in a.list_topics()
    a.delete_topics([name])
    a.close()


def test_kill_9_keeps_acknowledged_records(broker):
    from confluent_kafka.admin import AdminClient as AC
    name = f"py-crash-{time.monotonic_ns()}"
    admin = AC({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    acked = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1", "linger.ms": 2})

    def cb(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))
    for i in range(2000):
        p.produce(name, f"r{i}".encode(), partition=0, on_delivery=cb)
        p.poll(0)
    p.flush(30)
    broker.kill9()
    broker.start()
    got = ck_read_all(broker.bootstrap, name, [0], len(acked))
    assert [(m.offset(), m.value()) for m in got] == sorted(acked)


def test_authorized_operations_with_confluent_admin(bootstrap):
    """KIP-430: librdkafka's admin asks for the operations it may perform
    (describe_cluster/describe_topics/describe_consumer_groups with
    include_authorized_operations); without an authorizer Kafka reports
    every operation of the resource type."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation
    a = AdminClient({"bootstrap.servers": bootstrap})
    name = f"py-authz-{time.monotonic_ns()}"
    a.create_topics([NewTopic(name, 1, 1)])[name].result(30)

    cluster = a.describe_cluster(include_authorized_operations=True).result(30)
    assert set(cluster.authorized_operations) == {
        AclOperation.CREATE, AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER,
        AclOperation.DESCRIBE}
    assert not a.describe_cluster().result(30).authorized_operations

    topic = a.describe_topics(TopicCollection([name]),
                              include_authorized_operations=True)[name].result(30)
    assert set(topic.authorized_operations) == {
        AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
        AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS}

    # a classic group with a committed offset (Empty): DescribeGroups
    group = f"py-authz-group-{time.monotonic_ns()}"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    c.commit(offsets=[TopicPartition(name, 0, 0)], asynchronous=False)
    c.close()
    g = a.describe_consumer_groups([group], include_authorized_operations=True)[group].result(30)
    assert set(g.authorized_operations) == {
        AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE,
        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}
    a.delete_topics([name])[name].result(30)


def test_per_record_errors_fail_exactly_the_invalid_records(bootstrap):
    """KIP-467: a batch with keyless records for a compacted topic is
    refused whole, and the response names the keyless records; librdkafka
    then reports INVALID_RECORD for those and _INVALID_DIFFERENT_RECORD for
    the others of the batch."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    name = f"py-kip467-{time.monotonic_ns()}"
    a.create_topics([NewTopic(name, 1, 1, config={"cleanup.policy": "compact"})])[name].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1000, "retries": 0})
    reports = {}

    def report(i):
        return lambda err, msg: reports.__setitem__(i, err)

    for i, key in enumerate([b"k0", None, b"k2", None]):
        p.produce(name, key=key, value=b"v", partition=0, on_delivery=report(i))
    assert p.flush(30) == 0
    codes = [reports[i].code() for i in range(4)]
    assert codes == [KafkaError._INVALID_DIFFERENT_RECORD, KafkaError.INVALID_RECORD,
                     KafkaError._INVALID_DIFFERENT_RECORD, KafkaError.INVALID_RECORD], reports
    # nothing of the batch was stored
    lo, hi = Consumer({"bootstrap.servers": bootstrap, "group.id": name}).get_watermark_offsets(
        TopicPartition(name, 0), timeout=10)
    assert (lo, hi) == (0, 0)
    a.delete_topics([name])[name].result(30)
