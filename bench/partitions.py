#!/usr/bin/env python3
"""Many partitions, two segments each: create, produce to all, restart, read all.

    python3 bench/partitions.py [--partitions 10000] [--oxka target/release/oxka]

Needs confluent-kafka (the venv ./test.sh makes has it). Starts its own
broker on a free port and a temp data dir, with the descriptor limit the
shell gives (the broker raises soft to hard and logs both). Every segment
is one batch (segment.bytes=120), so the second record rolls each
partition. Prints creation and produce times, the broker's start-up time
(its start-up line) and RSS after each start, and after reading it all,
for a clean (SIGTERM) and an unclean (kill -9) restart.
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PER_TOPIC = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return -1


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Broker:
    def __init__(self, binary, data, port):
        self.binary, self.data, self.port, self.proc = binary, data, port, None

    def start(self):
        t0 = time.time()
        self.proc = subprocess.Popen(
            [self.binary, "broker", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", self.data, "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"started in (\d+) ms", line)
        return int(m.group(1)) if m else -1, time.time() - t0

    def stop(self, kill=False):
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        return self.proc.wait(timeout=600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=10000)
    ap.add_argument("--oxka", default="target/release/oxka")
    args = ap.parse_args()
    topics = [f"p{i}" for i in range((args.partitions + PER_TOPIC - 1) // PER_TOPIC)]
    data = tempfile.mkdtemp(prefix="oxka-partitions-")
    b = Broker(args.oxka, data, free_port())
    boot = f"127.0.0.1:{b.port}"
    try:
        ms, _ = b.start()
        print(f"empty start: {ms} ms")
        admin = AdminClient({"bootstrap.servers": boot})
        t0 = time.time()
        for name in topics:
            n = min(PER_TOPIC, args.partitions - PER_TOPIC * topics.index(name))
            fs = admin.create_topics([NewTopic(name, n, 1, config={"segment.bytes": "120"})],
                                     request_timeout=600, operation_timeout=600)
            for f in fs.values():
                f.result()
        print(f"created {args.partitions} partitions in {time.time() - t0:.1f} s")
        p = Producer({"bootstrap.servers": boot, "linger.ms": 20, "queue.buffering.max.messages": 1000000})
        parts = [(t, i) for t in topics for i in range(min(PER_TOPIC, args.partitions - PER_TOPIC * topics.index(t)))]
        failed = []
        for rnd in range(2):
            t0 = time.time()
            for t, i in parts:
                p.produce(t, f"round {rnd} {t}-{i}".encode(), partition=i,
                          on_delivery=lambda err, msg: err and failed.append(err))
                p.poll(0)
            p.flush(600)
            print(f"round {rnd}: {len(parts)} records acknowledged in {time.time() - t0:.1f} s, failures {len(failed)}")
        print(f"running: RSS {rss_mib(b.proc.pid):.0f} MiB (peak {rss_mib(b.proc.pid, 'VmHWM'):.0f}), open fds {fds(b.proc.pid)}")
        segs = sum(1 for _, _, fs in os.walk(data) for f in fs if f.endswith(".log"))
        print(f"segment files on disk: {segs}")
        for kill in (False, True):
            code = b.stop(kill=kill)
            ms, wall = b.start()
            print(f"restart after {'kill -9' if kill else 'SIGTERM (exit %d)' % code}: started in {ms} ms "
                  f"(process to start line {wall:.2f} s), RSS {rss_mib(b.proc.pid):.0f} MiB, open fds {fds(b.proc.pid)}")
            c = Consumer({"bootstrap.servers": boot, "group.id": f"read-{kill}", "enable.auto.commit": False})
            c.assign([TopicPartition(t, i, 0) for t, i in parts])
            seen, t0 = 0, time.time()
            while seen < 2 * len(parts) and time.time() - t0 < 600:
                for m in c.consume(10000, 1.0):
                    if m.error() is None:
                        seen += 1
            c.close()
            print(f"  read {seen} of {2 * len(parts)} records in {time.time() - t0:.1f} s; "
                  f"RSS {rss_mib(b.proc.pid):.0f} MiB (peak {rss_mib(b.proc.pid, 'VmHWM'):.0f}), open fds {fds(b.proc.pid)}")
            if seen != 2 * len(parts):
                sys.exit("not every record came back")
    finally:
        if b.proc and b.proc.poll() is None:
            b.stop(kill=True)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
