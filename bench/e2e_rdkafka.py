#!/usr/bin/env python3
"""End-to-end latency with librdkafka (confluent-kafka), the counterpart of
`oxka perf e2e` in bench/run.sh: produce at a fixed rate with the send time
(CLOCK_REALTIME ns) in the first 8 bytes of each value, consume in a second
process (so the GIL does not serialise the two), report percentiles of
receive time - send time in the same line format as `oxka perf e2e`.

    e2e_rdkafka.py BOOTSTRAP TOPIC NUM_RECORDS RECORD_SIZE RATE
"""
import multiprocessing as mp
import struct
import sys
import time

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition


def consume(bootstrap, topic, n, ready, out):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-rdkafka",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                  "fetch.min.bytes": 1})
    c.assign([TopicPartition(topic, 0, OFFSET_END)])
    # Poll until the assignment has resolved its position, then start.
    c.poll(1.0)
    ready.set()
    lat = []
    idle_since = time.monotonic()
    while len(lat) < n and time.monotonic() - idle_since < 10:
        # poll() returns as soon as one record is there (consume() would
        # wait for num_messages or the timeout, adding up to that wait).
        m = c.poll(0.2)
        if m is None:
            continue
        now = time.time_ns()
        idle_since = time.monotonic()
        v = m.value()
        if m.error() is None and v is not None and len(v) >= 8:
            lat.append((now - struct.unpack(">q", v[:8])[0]) / 1e6)
    c.close()
    out.put(lat)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    n, size, rate = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    ready, out = mp.Event(), mp.Queue()
    proc = mp.Process(target=consume, args=(bootstrap, topic, n, ready, out))
    proc.start()
    if not ready.wait(30):
        sys.exit("consumer did not start in 30 s")
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0,
                  "queue.buffering.max.messages": 1000000})
    pad = b"x" * (size - 8)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        d = due - time.monotonic()
        if d > 0.0005:
            time.sleep(d)
        while True:
            try:
                p.produce(topic, struct.pack(">q", time.time_ns()) + pad, partition=0)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(30)
    lat = out.get(timeout=60)
    proc.join(10)
    if not lat:
        sys.exit("no records received")
    lat.sort()
    q = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))]
    print(f"{len(lat)} records received, end-to-end {sum(lat) / len(lat):.2f} ms avg latency, "
          f"{lat[-1]:.2f} ms max latency, {q(0.5):.3f} ms 50th, {q(0.95):.3f} ms 95th, "
          f"{q(0.99):.3f} ms 99th, {q(0.999):.3f} ms 99.9th.")


if __name__ == "__main__":
    main()
