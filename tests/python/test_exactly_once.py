"""Exactly-once with confluent-kafka (librdkafka) and kafka-python:
transactions seen through read_committed / read_uncommitted consumers,
idempotent producers, and a randomized checker with producer and broker
crashes."""

import random
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def new_topic(bootstrap, partitions=1):
    name = f"py-eos-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def read(bootstrap, topic, partitions, isolation, expect_at_least=0, timeout=20):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": True})
    out, eof = [], set()
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is None:
                continue
            if m.error():
                eof.add(m.partition())
                if len(eof) == partitions and len(out) >= expect_at_least:
                    break
                continue
            eof.discard(m.partition())
            out.append((m.partition(), m.offset(), m.value()))
    finally:
        c.close()
    return out


def txn_producer(bootstrap, tid):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": 10000})
    p.init_transactions(30)
    return p


def test_commit_visible_abort_hidden(bootstrap):
    t = new_topic(bootstrap, 2)
    p = txn_producer(bootstrap, f"tx-{uuid.uuid4().hex[:6]}")
    p.begin_transaction()
    for i in range(10):
        p.produce(t, f"committed-{i}".encode(), partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(t, f"aborted-{i}".encode(), partition=i % 2)
    p.flush(30)
    p.abort_transaction(30)
    committed = [v for _, _, v in read(bootstrap, t, 2, "read_committed", 10)]
    assert sorted(committed) == sorted(f"committed-{i}".encode() for i in range(10))
    everything = [v for _, _, v in read(bootstrap, t, 2, "read_uncommitted", 20)]
    assert sorted(everything) == sorted([f"committed-{i}".encode() for i in range(10)]
                                        + [f"aborted-{i}".encode() for i in range(10)])


def test_open_transaction_holds_back_read_committed(bootstrap):
    t = new_topic(bootstrap)
    p = txn_producer(bootstrap, f"tx-{uuid.uuid4().hex[:6]}")
    p.begin_transaction()
    p.produce(t, b"pending", partition=0)
    p.flush(30)
    assert read(bootstrap, t, 1, "read_committed", timeout=3) == []
    assert [v for _, _, v in read(bootstrap, t, 1, "read_uncommitted", 1)] == [b"pending"]
    p.commit_transaction(30)
    assert [v for _, _, v in read(bootstrap, t, 1, "read_committed", 1)] == [b"pending"]


def test_kafka_python_idempotent_producer_exactly_once(bootstrap):
    from kafka import KafkaProducer
    t = new_topic(bootstrap)
    p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    for i in range(500):
        p.send(t, f"r{i}".encode(), partition=0)
    p.flush()
    p.close()
    got = read(bootstrap, t, 1, "read_uncommitted", 500)
    assert [v for _, _, v in got] == [f"r{i}".encode() for i in range(500)]
    assert [o for _, o, _ in got] == list(range(500))


def test_randomized_transactions_with_producer_and_broker_crashes(broker):
    """N transactional producers commit or abort at random; producers are
    abandoned mid-transaction (a crash: the next incarnation fences it) and
    the broker is killed with SIGKILL and restarted. Afterwards a
    read_committed consumer sees every committed record exactly once, no
    aborted or abandoned one, and each producer's records in order."""
    rnd = random.Random(2026)
    bootstrap = broker.bootstrap
    t = new_topic(bootstrap, 3)
    committed, producers = [], {}
    for rnd_i in range(24):
        pid = f"p{rnd.randrange(3)}"
        if pid not in producers or rnd.random() < 0.2:
            # a new incarnation fences whatever the old one left open
            producers[pid] = txn_producer(bootstrap, f"rand-{t}-{pid}")
        p = producers[pid]
        p.begin_transaction()
        batch = [f"{pid}-{rnd_i}-{k}".encode() for k in range(rnd.randrange(1, 20))]
        for k, v in enumerate(batch):
            p.produce(t, v, key=pid.encode(), partition=hash(pid) % 3)
        fate = rnd.random()
        if fate < 0.6:
            p.commit_transaction(30)
            committed.extend(batch)
        elif fate < 0.85:
            p.abort_transaction(30)
        else:
            p.flush(30)
            del producers[pid]  # abandoned mid-transaction: a producer crash
        if rnd_i in (8, 16):
            broker.kill9()
            broker.start()
            producers.clear()  # their connections died with the broker
    # abandoned transactions must not block: fence every id once more
    for pid in ("p0", "p1", "p2"):
        txn_producer(bootstrap, f"rand-{t}-{pid}")
    got = [v for _, _, v in read(bootstrap, t, 3, "read_committed", len(committed), timeout=40)]
    assert sorted(got) == sorted(committed), "committed exactly once, nothing else"
    for pid in ("p0", "p1", "p2"):
        mine = [v for v in got if v.startswith(f"{pid}-".encode())]
        assert mine == [v for v in committed if v.startswith(f"{pid}-".encode())], "order"
