#!/usr/bin/env python3
"""Exactly-once figures, one broker, one run: produce throughput of a plain
producer, an idempotent producer, and a transactional producer committing
every 100 and every 10,000 records (confluent-kafka / librdkafka, one
partition, 100-byte values, acks=all for all four so only EOS differs).
Each producer first sends one untimed record (one committed transaction
for the transactional ones), so start-up is left out of every figure.

    bench/eos-figures.py [path/to/oxka] [records]   (default target/release/oxka, 200000)

Needs confluent-kafka (e.g. the conformance venv:
~/.cache/oxka-conformance-venv/bin/python bench/eos-figures.py).
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

OXKA = sys.argv[1] if len(sys.argv) > 1 else "target/release/oxka"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
VALUE = b"x" * 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def produce(bootstrap, topic, conf, txn_size=None):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "log_level": 0,
                  "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 1_000_000, **conf})
    if txn_size:
        p.init_transactions(30)
    # Warm-up outside the timed part: connection, metadata and, for the
    # idempotent producer, its producer id. librdkafka acquires that id on a
    # 500 ms FSM timer when the bootstrap connection is replaced by the
    # broker's own, which alone cost the untimed-warm-up idempotent run
    # about half a second in a 0.6 s measurement (init_transactions kept it
    # out of the transactional runs).
    if txn_size:
        p.begin_transaction()
    p.produce(topic, VALUE, partition=0)
    p.flush(30)
    if txn_size:
        p.commit_transaction(60)
    t0 = time.monotonic()
    sent = 0
    while sent < N:
        chunk = min(txn_size or N, N - sent)
        if txn_size:
            p.begin_transaction()
        for _ in range(chunk):
            while True:
                try:
                    p.produce(topic, VALUE, partition=0)
                    break
                except BufferError:
                    p.poll(0.01)
        sent += chunk
        if txn_size:
            p.commit_transaction(60)
    p.flush(120)
    rate = N / (time.monotonic() - t0)
    del p
    return rate


def main():
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        broker = subprocess.Popen([OXKA, "broker", "--listen", bootstrap, "--data-dir", data,
                                   "--log-level", "warn"])
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            admin = AdminClient({"bootstrap.servers": bootstrap})
            runs = [("plain (acks=all)", {}, None),
                    ("idempotent", {"enable.idempotence": True}, None),
                    ("transactional, 100 records/txn", {"transactional.id": "bench-100"}, 100),
                    ("transactional, 10,000 records/txn", {"transactional.id": "bench-10k"}, 10_000)]
            rounds = 3
            topics = [f"eos-bench-{r}-{i}" for r in range(rounds) for i in range(len(runs))]
            for f in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
                f.result(30)
            print(f"{N} x {len(VALUE)}-byte records, one partition, best of {rounds} "
                  f"interleaved rounds, {OXKA}")
            best = [0.0] * len(runs)
            for r in range(rounds):
                for i, (_name, conf, txn) in enumerate(runs):
                    best[i] = max(best[i], produce(bootstrap, f"eos-bench-{r}-{i}", conf, txn))
            for (name, _, _), rate in zip(runs, best):
                print(f"{name:36s} {rate:10,.0f} records/s  {rate / best[0]:5.2f}x plain")
        finally:
            broker.terminate()
            broker.wait(30)


if __name__ == "__main__":
    main()
