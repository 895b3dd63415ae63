"""Exactly-once with confluent-kafka (librdkafka) and kafka-python:
transactions seen through read_committed / read_uncommitted consumers,
idempotent producers, and a randomized checker with producer and broker
crashes, interleaved transactions, transactional offsets and timeouts."""

import os
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
    """The randomized checker. Four transactional producers write
    multi-partition transactions that interleave (several open at once),
    send consumer offsets in them, and commit, abort, crash (abandoned
    mid-transaction: the next incarnation fences it) or leave them open for
    a later round; one orphan is abandoned for good and must be aborted by
    the transaction timeout; the broker is killed with SIGKILL and restarted
    with transactions open. Afterwards a read_committed consumer sees every
    committed record exactly once, no aborted or abandoned one, each
    producer's records in order on every partition, and every group's
    committed offset is the one of its producer's last committed
    transaction.

    OXKA_EOS_SEED and OXKA_EOS_ROUNDS (default 2026 and 72) pick another
    history or a longer one."""
    rnd = random.Random(int(os.environ.get("OXKA_EOS_SEED", "2026")))
    rounds = int(os.environ.get("OXKA_EOS_ROUNDS", "72"))
    kills = {rounds // 4, rounds // 2, 3 * rounds // 4}
    bootstrap = broker.bootstrap
    parts = 3
    t = new_topic(bootstrap, parts)
    ids = [f"p{i}" for i in range(4)]
    group = {pid: f"g-{t}-{pid}" for pid in ids}
    committed = []  # (partition, value), in commit order
    txns_committed = {pid: 0 for pid in ids}
    producers = {}  # pid -> (producer, its group's metadata)
    open_txn = {}  # pid -> [(partition, value)] not yet ended

    def incarnate(pid):
        # a new incarnation fences the previous one: whatever it left open
        # is aborted by the coordinator
        open_txn.pop(pid, None)
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group[pid]})
        meta = c.consumer_group_metadata()
        c.close()
        producers[pid] = (txn_producer(bootstrap, f"rand-{t}-{pid}"), meta)

    # the orphan: open for good, only its 2 s transaction timeout ends it
    orphan = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"orphan-{t}",
                       "transaction.timeout.ms": 2000})
    orphan.init_transactions(30)
    orphan.begin_transaction()
    for k in range(5):
        orphan.produce(t, f"orphan-{k}".encode(), partition=k % parts)
    orphan.flush(30)

    for r in range(rounds):
        pid = rnd.choice(ids)
        if pid not in producers or rnd.random() < 0.1:
            incarnate(pid)
        p, meta = producers[pid]
        if pid not in open_txn:
            p.begin_transaction()
            open_txn[pid] = []
        fate = rnd.random()
        for k in range(rnd.randrange(1, 16)):
            part = rnd.randrange(parts)
            v = f"{pid}-{r}-{k}".encode()
            p.produce(t, v, key=pid.encode(), partition=part)
            open_txn[pid].append((part, v))
        # the offset this transaction commits for its group: the count of
        # the producer's committed transactions if it commits, garbage that
        # must never become visible otherwise
        offset = txns_committed[pid] + 1 if fate < 0.45 else 1_000_000 + r
        p.send_offsets_to_transaction([TopicPartition(t, 0, offset)], meta, 30)
        if fate < 0.45:
            p.commit_transaction(30)
            committed.extend(open_txn.pop(pid))
            txns_committed[pid] += 1
        elif fate < 0.65:
            p.abort_transaction(30)
            del open_txn[pid]
        elif fate < 0.8:
            p.flush(30)
            del producers[pid]  # abandoned mid-transaction: a producer crash
            del open_txn[pid]
        # else: left open, other producers' transactions interleave with it
        if r in kills:
            broker.kill9()
            broker.start()
            # their connections died with the broker: crashed producers,
            # whose open transactions the next incarnation fences
            producers.clear()
            open_txn.clear()
    # abandoned transactions must not block: fence every id once more
    for pid in ids:
        incarnate(pid)
    got = read(bootstrap, t, parts, "read_committed", len(committed), timeout=60)
    values = [v for _, _, v in got]
    assert len(values) == len(set(values)), "no record twice"
    assert sorted(values) == sorted(v for _, v in committed), \
        "every committed record, nothing aborted, abandoned or orphaned"
    for part in range(parts):
        seen = [v for pt, _, v in sorted(got) if pt == part]
        for pid in ids:
            mine = [v for v in seen if v.startswith(f"{pid}-".encode())]
            assert mine == [v for pt, v in committed
                            if pt == part and v.startswith(f"{pid}-".encode())], \
                f"order of {pid} on partition {part}"
    for pid in ids:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group[pid]})
        try:
            (tp,) = c.committed([TopicPartition(t, 0)], 30)
        finally:
            c.close()
        expected = txns_committed[pid] if txns_committed[pid] else -1001
        assert tp.offset == expected, f"offset of {group[pid]}"
    del orphan


def test_kcat_with_an_old_librdkafka_still_works(bootstrap):
    """The broker advertises `transaction.version` in ApiVersions tagged
    fields; librdkafka before 2.2 (Debian's kcat 1.7.1 has 2.0.2) skips
    such fields wrongly, so it is answered without them. Whatever kcat is
    installed must produce, consume and list metadata."""
    import shutil
    import subprocess
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        import pytest
        pytest.skip("no kcat installed")
    t = new_topic(bootstrap)
    lines = b"".join(f"line {i}\n".encode() for i in range(5))
    p = subprocess.run([kcat, "-b", bootstrap, "-P", "-t", t, "-p", "0"], input=lines,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    c = subprocess.run([kcat, "-b", bootstrap, "-C", "-t", t, "-p", "0", "-o", "beginning", "-e",
                        "-q", "-f", "%o:%s\\n"], capture_output=True, timeout=60)
    assert c.returncode == 0, c.stderr.decode()[-2000:]
    assert c.stdout.decode().splitlines() == [f"{i}:line {i}" for i in range(5)]
    m = subprocess.run([kcat, "-b", bootstrap, "-L", "-t", t], capture_output=True, timeout=60)
    assert m.returncode == 0 and f'topic "{t}"' in m.stdout.decode(), m.stderr.decode()[-2000:]
