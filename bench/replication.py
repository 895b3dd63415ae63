#!/usr/bin/env python3
"""Replication figures: acks=all throughput, end-to-end latency, partition failover, ISR rejoin, idle cost.

    ~/.cache/oxka-conformance-venv/bin/python bench/replication.py \
        --cluster-cmd 'ONE NODE with {node_id} {port} ...' \
        --single-cmd 'ONE BROKER with {port} {data_dir}' [--phases ...] [--json FILE]

Needs confluent-kafka (librdkafka) in the Python that runs it: the
conformance suite's venv has it. Every figure is taken through the Kafka
protocol with the same client against any broker, so Apache Kafka and oxka
are judged alike. docs/replication-bench.md describes each figure.

Nodes are started with bench/cluster.py (imported from this directory):
`--cluster-cmd` is the conformance suite's cluster template (placeholders
{node_id} {port} {controller_port} {data_dir} {voters} {rack} {cluster_id}),
`--single-cmd` its single-broker template ({port} {data_dir}). Both may also
hold {settings}, which becomes `--set-flag KEY=VALUE` for every `--set`, so
that the same broker settings reach both brokers (and are printed).

Phases (`--phases`, default all):

* produce: --records 1 KiB records as fast as the client sends them, acks=1
  to a single broker (--single-cmd) and acks=all to RF=3 on the cluster
  (min.insync.replicas=2), --produce-repeats times each, every run on a
  fresh topic after a one-record-per-partition warm-up; MiB/s and the ratio;
* e2e: produce at --e2e-mbps (default 50 MiB/s) for --e2e-warmup +
  --e2e-seconds with acks=all to RF=3, consumed by a second process; send
  -> receive latency percentiles (p50 / p99 / p99.9 / max) over every
  record sent after the warm-up;
* failover: RF=3 min.insync.replicas=2, an idempotent acks=all producer
  writing --failover-rate records/s; the partition leader's process group
  is killed with SIGKILL, and the figure is kill -> the first delivery
  report of a record produced after the kill (p50 / max over --kills); the
  node is started again and must be back in the ISR before the next kill;
* rejoin: a follower is stopped (SIGTERM, or SIGKILL with --rejoin-stop
  kill) and leaves the ISR, --rejoin-bytes are written with acks=all, the
  follower is started again: restart -> back in the ISR;
* idle: a fresh cluster, --idle-partitions partitions RF=3 in
  --idle-topics topics, every ISR full, --idle-settle s, then every node's
  CPU (utime+stime of its process group, per second) and VmRSS for --idle s.

Every wait is bounded; every node runs in its own process group and is
killed, and the temporary directory (/tmp/oxka-replbench-*) removed, on
exit, Ctrl-C and SIGTERM (--keep-data keeps it). Exit status: 0 every
selected phase measured, 1 a phase failed (the others still reported), 2
usage, 3 a cluster (or the single broker) never came up, 130 interrupted.
"""
from __future__ import annotations

import argparse
import atexit
import json
import math
import multiprocessing as mp
import os
import queue
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cb  # noqa: E402  bench/cluster.py: Node, Cluster, Conn, codec, clean-up

try:
    import confluent_kafka
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover - reported in main()
    confluent_kafka = None

PHASES = ("produce", "e2e", "failover", "rejoin", "idle")
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
SINGLE_PLACEHOLDERS = ("port", "data_dir")
BenchError = cb.BenchError


class NotUp(BenchError):
    """A broker (the single one or a cluster) never came up: exit status 3."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ metadata with ISRs
class PartView:
    __slots__ = ("error", "leader", "replicas", "isr")

    def __init__(self, error: int, leader: int, replicas: List[int], isr: List[int]):
        self.error, self.leader, self.replicas, self.isr = error, leader, replicas, isr


def metadata_isr(c: cb.Conn, topics: List[str], timeout: float) -> Tuple[List[int], Dict[str, Tuple[int, Dict[int, PartView]]]]:
    """Metadata v4 (no auto-creation): ([broker ids], {topic: (error, {partition: view})})."""
    body = cb.p_i32(len(topics)) + b"".join(cb.p_string(t) for t in topics) + b"\x00"
    r = c.request(cb.METADATA, 4, body, timeout)
    r.i32()  # throttle
    brokers = []
    for _ in range(r.i32()):
        brokers.append(r.i32())
        r.string(), r.i32(), r.string()  # host, port, rack
    r.string(), r.i32()  # cluster id, controller id
    out = {}
    for _ in range(r.i32()):
        err, name = r.i16(), r.string()
        r.i8()  # internal
        parts = {}
        for _ in range(r.i32()):
            perr, pid, leader = r.i16(), r.i32(), r.i32()
            replicas = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            parts[pid] = PartView(perr, leader, replicas, isr)
        out[name or ""] = (err, parts)
    return brokers, out


def views(cluster: cb.Cluster, topics: List[str], timeout: float = 2.0,
          only: Optional[List[int]] = None) -> Dict[int, Dict[str, Tuple[int, Dict[int, PartView]]]]:
    """Each live, answering node's view of the topics (a fresh connection
    each), of the nodes in `only` if given (a node that is shutting down may
    hold a request until the timeout)."""
    out = {}
    for n in cluster.live():
        if only is not None and n.id not in only:
            continue
        try:
            with cb.Conn(n.address, timeout) as c:
                out[n.id] = metadata_isr(c, topics, timeout)[1]
        except (OSError, BenchError):
            continue
    return out


def wait_views(cluster: cb.Cluster, topics: List[str], pred: Callable[[int, Dict[int, PartView]], bool],
               timeout: float, what: str, need: Optional[List[int]] = None, poll: float = 0.02) -> Tuple[float, float]:
    """Poll every live node's Metadata until pred(node, {partition: view})
    holds for every topic on every node in `need` (default: every live node):
    (the moment the first node showed it, the moment all did)."""
    deadline = time.monotonic() + timeout
    first: Optional[float] = None
    last_seen = "no answer"
    while True:
        want = need if need is not None else [n.id for n in cluster.live()]
        v = views(cluster, topics, only=want)
        now = time.monotonic()
        ok_nodes = [i for i, tv in v.items()
                    if all(t in tv and tv[t][0] == 0 and pred(i, tv[t][1]) for t in topics)]
        if ok_nodes and first is None:
            first = now
        if want and all(i in ok_nodes for i in want):
            return first if first is not None else now, now
        if v:
            last_seen = "; ".join(f"node {i}: " + describe_view(tv, topics) for i, tv in sorted(v.items()))
        if now >= deadline:
            raise BenchError(f"{what}: not within {timeout:.0f} s (last views: {last_seen[:600]})")
        time.sleep(poll)


def describe_view(tv: Dict[str, Tuple[int, Dict[int, PartView]]], topics: List[str]) -> str:
    out = []
    for t in topics[:1]:
        if t not in tv:
            out.append(f"{t} absent")
            continue
        err, parts = tv[t]
        p = parts.get(0)
        out.append(f"{t} err {err} p0 " + (f"leader {p.leader} isr {p.isr}" if p else "absent")
                   + (f" (+{len(parts) - 1} partitions)" if len(parts) > 1 else ""))
    return ", ".join(out)


def full_isr(parts: Dict[int, PartView], partitions: int, rf: int) -> bool:
    return (len(parts) == partitions and
            all(p.error == 0 and p.leader >= 0 and len(p.replicas) == rf and sorted(p.isr) == sorted(p.replicas)
                for p in parts.values()))


# ------------------------------------------------------------------ nodes
def expand_settings(template: str, settings: List[str], flag: str) -> str:
    rendered = " ".join(f"{flag} {shlex.quote(kv)}" for kv in settings)
    return template.replace("{settings}", rendered)


def node_cpu_ticks(node: cb.Node) -> int:
    """utime+stime (clock ticks) of every live process in the node's group."""
    if not node.alive():
        return 0
    total = 0
    for pid in cb.group_members(node.proc.pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total


def signal_group(node: cb.Node, sig: int) -> None:
    node.drop_conn()
    if node.proc is not None and node.proc.poll() is None:
        try:
            os.killpg(node.proc.pid, sig)
        except ProcessLookupError:
            pass


def wait_exit(node: cb.Node, since: float, timeout: float) -> float:
    """Wait for the node's process to exit (SIGKILL of its group after
    `timeout`, and the group reaped); the seconds from `since` to the exit."""
    try:
        node.proc.wait(timeout=max(0.0, since + timeout - time.monotonic()))
    except subprocess.TimeoutExpired:
        log(f"  node {node.id} still running {timeout:.0f} s after SIGTERM; SIGKILL")
    took = time.monotonic() - since
    node.kill()  # reaps the rest of the group (and kills it if SIGTERM was not enough)
    return took


class Single:
    """One broker from --single-cmd ({port} {data_dir}), with cluster.py's Node."""

    def __init__(self, template: str, base_dir: str):
        port = cb.free_port(set())
        data_dir = os.path.join(base_dir, "single")
        os.makedirs(data_dir)
        cmd = template.replace("{port}", str(port)).replace("{data_dir}", data_dir)
        self.node = cb.Node(1, port, 0, data_dir, os.path.join(base_dir, "single.log"), cmd)
        self.nodes = {1: self.node}  # for cluster.py's clean-up (kill_all)

    def kill_all(self) -> None:
        self.node.kill()

    def live(self) -> List[cb.Node]:
        return [self.node] if self.node.alive() else []

    def start(self, timeout: float) -> float:
        t0 = time.monotonic()
        self.node.launch()
        deadline = t0 + timeout
        last = ""
        while True:
            if not self.node.alive():
                raise NotUp(f"the single broker exited (status {self.node.proc.returncode})\n"
                                 + self.node.log_tail())
            try:
                with cb.Conn(self.node.address, 1.0) as c:
                    if cb.metadata(c, [], 1.0).brokers:
                        return time.monotonic() - t0
                    last = "lists no broker"
            except (OSError, BenchError) as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise NotUp(f"the single broker did not answer Metadata within {timeout:.0f} s ({last})\n"
                                 + self.node.log_tail())
            time.sleep(0.05)


def start_cluster(template: str, nodes: int, timeout: float) -> cb.Cluster:
    base = tempfile.mkdtemp(prefix="oxka-replbench-")
    cb._DIRS.append(base)
    cluster = cb.Cluster(template, nodes, base)
    cb._CLUSTERS.append(cluster)
    log(f"starting {nodes} nodes in {base}")
    t0 = time.monotonic()
    for n in cluster.nodes.values():
        n.launch()
    try:
        formed = cluster.wait_formed(timeout)
    except BenchError as e:
        raise NotUp(str(e))
    log(f"  formed in {formed - t0:.1f} s")
    cluster.check_versions()
    return cluster


def drop_cluster(cluster) -> None:
    cluster.kill_all()
    if cluster in cb._CLUSTERS:
        cb._CLUSTERS.remove(cluster)


def bootstrap_of(cluster) -> str:
    """The live nodes' addresses (a stopped node would only add connection errors)."""
    return ",".join(n.address for n in sorted(cluster.live(), key=lambda n: n.id))


# ------------------------------------------------------------------ topics
def create_topics(bootstrap: str, names: List[str], partitions: int, rf: int, config: Dict[str, str],
                  timeout: float) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    fs = admin.create_topics([NewTopic(t, partitions, rf, config=dict(config)) for t in names],
                             operation_timeout=timeout, request_timeout=timeout + 5)
    for t, f in fs.items():
        try:
            f.result(timeout=timeout + 10)
        except KafkaException as e:
            raise BenchError(f"CreateTopics {t} ({partitions} partitions, RF={rf}, {config}): {e}")


def new_topic(cluster, prefix: str, partitions: int, rf: int, config: Dict[str, str], timeout: float) -> str:
    name = cb.uniq(prefix)
    create_topics(bootstrap_of(cluster), [name], partitions, rf, config, timeout)
    wait_views(cluster, [name], lambda _i, parts: full_isr(parts, partitions, rf), timeout,
               f"topic {name} with leaders and full ISRs on every node")
    return name


# ------------------------------------------------------------------ client workers (separate processes)
def produce_worker(bootstrap: str, topic: str, records: int, size: int, rate: float, conf: Dict, out) -> None:
    """Produce `records` values of `size` bytes (the first 8: CLOCK_MONOTONIC
    ns at produce()), at `rate` records/s (0: as fast as the client takes
    them). Puts {start, end (last delivery report), delivered, errors}."""
    try:
        cfg = dict(conf)
        cfg["bootstrap.servers"] = bootstrap
        state = {"delivered": 0, "errors": 0, "first_error": None, "last": 0.0}

        def on_delivery(err, _msg):
            if err is None:
                state["delivered"] += 1
            else:
                state["errors"] += 1
                if state["first_error"] is None:
                    state["first_error"] = str(err)
            state["last"] = time.monotonic()

        p = Producer(cfg)
        pad = b"x" * (size - 8)
        pack = struct.Struct(">q").pack
        produce = p.produce
        start = time.monotonic()
        for i in range(records):
            if rate > 0:
                d = start + i / rate - time.monotonic()
                if d > 0.0005:
                    time.sleep(d)
            while True:
                try:
                    produce(topic, pack(time.monotonic_ns()) + pad, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.001)
            if i % 512 == 0:
                p.poll(0)
        sent = time.monotonic()
        left = p.flush(600)
        out.put({"start": start, "sent": sent, "end": state["last"] or time.monotonic(),
                 "delivered": state["delivered"], "errors": state["errors"],
                 "first_error": state["first_error"], "unflushed": left})
    except Exception as e:  # reported by the parent
        out.put({"error": f"{type(e).__name__}: {e}"})


def consume_worker(bootstrap: str, topic: str, partitions: int, records: int, conf: Dict, ready, out) -> None:
    """Read the fresh topic from the beginning; latency (ms) of every record
    = receive time - the send time in its first 8 bytes."""
    try:
        cfg = dict(conf)
        cfg["bootstrap.servers"] = bootstrap
        c = Consumer(cfg)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        c.poll(0.5)
        ready.set()
        lat: List[float] = []
        sent: List[int] = []
        unpack = struct.Struct(">q").unpack_from
        idle_since = time.monotonic()
        while len(lat) < records and time.monotonic() - idle_since < 15:
            m = c.poll(0.2)
            if m is None:
                continue
            now = time.monotonic_ns()
            idle_since = time.monotonic()
            if m.error() is None:
                v = m.value()
                if v is not None and len(v) >= 8:
                    t = unpack(v)[0]
                    sent.append(t)
                    lat.append((now - t) / 1e6)
        c.close()
        out.put({"latencies_ms": lat, "sent_ns": sent})
    except Exception as e:
        out.put({"error": f"{type(e).__name__}: {e}"})


_CHILDREN: List[mp.Process] = []


def _kill_children() -> None:
    for p in _CHILDREN:
        if p.is_alive():
            p.kill()
    _CHILDREN.clear()


def run_children(specs: List[Tuple[Callable, tuple]], timeout: float) -> List[Dict]:
    """Run each (function, args + (queue,)) in a spawned process; their
    results in order. Bounded: a child that has not answered is killed."""
    ctx = mp.get_context("spawn")
    qs, procs = [], []
    for fn, fargs in specs:
        q = ctx.Queue()
        p = ctx.Process(target=fn, args=fargs + (q,), daemon=True)
        p.start()
        _CHILDREN.append(p)
        qs.append(q)
        procs.append(p)
    deadline = time.monotonic() + timeout
    results = []
    try:
        for q, p in zip(qs, procs):
            try:
                results.append(q.get(timeout=max(1.0, deadline - time.monotonic())))
            except queue.Empty:
                raise BenchError(f"a client process gave no result within {timeout:.0f} s")
    except BaseException:
        for p in procs:  # interrupted or failed: no grace
            p.kill()
        raise
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
            if p in _CHILDREN:
                _CHILDREN.remove(p)
    for r in results:
        if "error" in r:
            raise BenchError(f"client process: {r['error']}")
    return results


# ------------------------------------------------------------------ figures
def pct(values: List[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def summary(values: List[float]) -> Dict[str, float]:
    if not values:
        return {}
    s = sorted(values)
    return {"n": len(s), "p50": pct(s, 0.5), "max": s[-1], "min": s[0], "mean": statistics.fmean(s)}


def producer_conf(args, acks: str) -> Dict:
    return {"acks": acks, "linger.ms": args.linger_ms, "batch.size": args.batch_size,
            "compression.type": "none", "enable.idempotence": False,
            "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 1048576,
            "message.timeout.ms": 300000, "log_level": 3}


def warm_up(bootstrap: str, topic: str, partitions: int, acks: str, timeout: float) -> float:
    """One record per partition with `acks`, all delivered: the seconds it
    took (the first write to a new topic; kept in the JSON as first_write_s
    and not part of the throughput, which is then a steady-state figure)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0, "log_level": 3,
                  "message.timeout.ms": int(timeout * 1000)})
    errs: List[str] = []
    t0 = time.monotonic()
    for k in range(partitions):
        p.produce(topic, b"warm-up", partition=k,
                  on_delivery=lambda err, _m: errs.append(str(err)) if err is not None else None)
    left = p.flush(timeout + 5)
    took = time.monotonic() - t0
    if left or errs:
        raise BenchError(f"warm-up write to {topic} (acks={acks}): {left} undelivered, errors {errs[:3]}")
    return took


def produce_once(bootstrap: str, topic: str, args, acks: str, records: int, rate: float = 0.0) -> Dict:
    conf = producer_conf(args, acks)
    n = max(1, args.producers)
    per = [records // n + (1 if i < records % n else 0) for i in range(n)]
    res = run_children([(produce_worker, (bootstrap, topic, k, args.record_size, rate / n, conf))
                        for k in per if k > 0], args.phase_timeout)
    start = min(r["start"] for r in res)
    end = max(r["end"] for r in res)
    delivered = sum(r["delivered"] for r in res)
    errors = sum(r["errors"] for r in res)
    secs = max(end - start, 1e-9)
    out = {"topic": topic, "acks": acks, "records": records, "delivered": delivered, "errors": errors,
           "seconds": round(secs, 3), "mib_per_s": round(delivered * args.record_size / MIB / secs, 2),
           "records_per_s": round(delivered / secs, 1)}
    first_err = next((r["first_error"] for r in res if r["first_error"]), None)
    if first_err:
        out["first_error"] = first_err
    if errors or delivered != records:
        raise BenchError(f"produce to {topic} (acks={acks}): {delivered} of {records} delivered, "
                         f"{errors} errors ({first_err})")
    return out


def phase_produce_single(args, settings_tpl: str) -> List[Dict]:
    base = tempfile.mkdtemp(prefix="oxka-replbench-single-")
    cb._DIRS.append(base)
    single = Single(settings_tpl, base)
    cb._CLUSTERS.append(single)
    try:
        log("single broker: starting")
        up = single.start(args.start_timeout)
        log(f"  answering after {up:.1f} s")
        samples = []
        for k in range(args.produce_repeats):
            topic = cb.uniq("bench-acks1")
            create_topics(single.node.address, [topic], args.partitions, 1, {}, 30.0)
            wait_views(single, [topic], lambda _i, parts: full_isr(parts, args.partitions, 1), 30.0,
                       f"topic {topic} on the single broker")
            first = warm_up(single.node.address, topic, args.partitions, "1", 60.0)
            s = produce_once(single.node.address, topic, args, "1", args.records)
            s["first_write_s"] = round(first, 4)
            samples.append(s)
            log(f"  acks=1, 1 node, run {k + 1}: {s['mib_per_s']:.1f} MiB/s ({s['records_per_s']:.0f} records/s; "
                f"first write {first * 1000:.0f} ms)")
        return samples
    finally:
        single.kill_all()
        cb._CLUSTERS.remove(single)


def phase_produce_cluster(cluster: cb.Cluster, args) -> List[Dict]:
    samples = []
    for k in range(args.produce_repeats):
        topic = new_topic(cluster, "bench-acksall", args.partitions, 3, {"min.insync.replicas": "2"}, 60.0)
        first = warm_up(bootstrap_of(cluster), topic, args.partitions, "all", 60.0)
        s = produce_once(bootstrap_of(cluster), topic, args, "all", args.records)
        s["first_write_s"] = round(first, 4)
        samples.append(s)
        log(f"  acks=all, RF=3, run {k + 1}: {s['mib_per_s']:.1f} MiB/s ({s['records_per_s']:.0f} records/s; "
            f"first write {first * 1000:.0f} ms)")
    return samples


def phase_e2e(cluster: cb.Cluster, args) -> Dict:
    topic = new_topic(cluster, "bench-e2e", args.e2e_partitions, 3, {"min.insync.replicas": "2"}, 60.0)
    rate = args.e2e_mbps * MIB / args.record_size
    records = max(1, int(rate * (args.e2e_warmup + args.e2e_seconds)))
    bootstrap = bootstrap_of(cluster)
    cconf = {"group.id": cb.uniq("bench-e2e"), "enable.auto.commit": False, "fetch.wait.max.ms": 100,
             "fetch.min.bytes": 1, "log_level": 3}
    pconf = producer_conf(args, "all")
    pconf["linger.ms"] = args.e2e_linger_ms
    ctx = mp.get_context("spawn")
    ready, cq, pq = ctx.Event(), ctx.Queue(), ctx.Queue()
    cons = ctx.Process(target=consume_worker, args=(bootstrap, topic, args.e2e_partitions, records, cconf, ready, cq),
                       daemon=True)
    cons.start()
    _CHILDREN.append(cons)
    try:
        if not ready.wait(60):
            raise BenchError("the e2e consumer did not start within 60 s")
        log(f"  producing {records} records at {args.e2e_mbps} MiB/s ({rate:.0f} records/s), acks=all")
        res = run_children([(produce_worker, (bootstrap, topic, records, args.record_size, rate, pconf))],
                           args.phase_timeout)[0]
        try:
            got = cq.get(timeout=60 + args.e2e_seconds)
        except queue.Empty:
            raise BenchError("the e2e consumer gave no result")
        if "error" in got:
            raise BenchError(f"e2e consumer: {got['error']}")
    except BaseException:
        cons.kill()
        raise
    finally:
        cons.join(5)
        if cons.is_alive():
            cons.kill()
        _CHILDREN.remove(cons)
    # records sent in the first --e2e-warmup seconds (connections, metadata,
    # the first fetches) are received but not counted
    cut = int((res["start"] + args.e2e_warmup) * 1e9)
    lat = [x for x, t in zip(got["latencies_ms"], got["sent_ns"]) if t >= cut]
    send_secs = res["sent"] - res["start"]
    achieved = records * args.record_size / MIB / max(send_secs, 1e-9)
    out = {"topic": topic, "target_mib_per_s": args.e2e_mbps, "records": records,
           "warmup_s": args.e2e_warmup, "warmup_records": len(got["latencies_ms"]) - len(lat),
           "achieved_send_mib_per_s": round(achieved, 2), "delivered": res["delivered"],
           "produce_errors": res["errors"], "received": len(got["latencies_ms"]), "counted": len(lat)}
    if lat:
        s = sorted(lat)
        out.update({"p50_ms": round(pct(s, 0.5), 3), "p99_ms": round(pct(s, 0.99), 3),
                    "p999_ms": round(pct(s, 0.999), 3), "max_ms": round(s[-1], 3),
                    "mean_ms": round(statistics.fmean(s), 3)})
    out["latencies_ms"] = [round(x, 3) for x in lat]
    if achieved < 0.95 * args.e2e_mbps:
        out["warning"] = (f"the producer sent only {achieved:.1f} MiB/s of the {args.e2e_mbps} asked "
                          "(client-bound or back-pressured); the latencies are not at the target rate")
        log("  WARNING: " + out["warning"])
    if out["received"] != records or res["errors"]:
        raise BenchError(f"e2e: {out['received']} of {records} records received, {res['errors']} produce errors")
    return out


class FailoverProducer(threading.Thread):
    """An idempotent acks=all producer writing `rate` records/s of `size`
    bytes (key: CLOCK_MONOTONIC ns at produce()) in a thread of its own;
    delivery reports are served at least every millisecond."""

    def __init__(self, bootstrap: str, topic: str, rate: float, size: int, conf: Dict):
        super().__init__(daemon=True)
        cfg = dict(conf)
        cfg["bootstrap.servers"] = bootstrap
        cfg["error_cb"] = self._error
        self.p = Producer(cfg)
        self.topic, self.rate, self.pad = topic, rate, b"x" * size
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.kill_ns: Optional[int] = None          # records produced at or after this count
        self.first_after: Optional[float] = None   # monotonic time of their first delivery report
        self.got_first = threading.Event()
        self.last_ok = 0.0
        self.delivered = self.errors = 0
        self.error_names: Dict[str, int] = {}
        self.produced = 0
        self.failure: Optional[str] = None

    def _error(self, err) -> None:
        # client-level errors (broker down, all brokers down, ...) are expected
        # around a kill; a fatal one (idempotence broken) ends the phase
        if err.fatal():
            self.failure = f"fatal producer error: {err}"
            self.got_first.set()

    def _report(self, err, msg) -> None:
        now = time.monotonic()
        if err is not None:
            self.errors += 1
            self.error_names[err.name()] = self.error_names.get(err.name(), 0) + 1
            return
        self.delivered += 1
        self.last_ok = now
        k = self.kill_ns
        if k is not None and self.first_after is None and struct.unpack(">q", msg.key())[0] >= k:
            self.first_after = now
            self.got_first.set()

    def arm(self) -> None:
        """Called just before the kill: the records produced from now on count."""
        with self.lock:
            self.first_after = None
            self.got_first.clear()
            self.kill_ns = time.monotonic_ns()

    def run(self) -> None:
        try:
            interval = 1.0 / self.rate
            nxt = time.monotonic()
            while not self.stop_flag.is_set():
                now = time.monotonic()
                if now >= nxt:
                    with self.lock:
                        try:
                            self.p.produce(self.topic, self.pad, key=struct.pack(">q", time.monotonic_ns()),
                                           on_delivery=self._report)
                            self.produced += 1
                        except BufferError:
                            pass
                    nxt += interval
                    if nxt < now - 1.0:  # far behind (a stall): do not burst to catch up
                        nxt = now
                self.p.poll(min(0.001, max(0.0, nxt - time.monotonic())))
            self.p.flush(30)
        except Exception as e:
            self.failure = f"{type(e).__name__}: {e}"
            self.got_first.set()


def leader_of(cluster: cb.Cluster, topic: str, timeout: float) -> int:
    """The partition-0 leader every live node names, with a full ISR."""
    wait_views(cluster, [topic], lambda _i, parts: full_isr(parts, 1, 3), timeout,
               f"{topic}-0 with a full ISR on every node", need=list(cluster.nodes))
    leaders = {tv[topic][1][0].leader for tv in views(cluster, [topic]).values() if topic in tv and 0 in tv[topic][1]}
    if len(leaders) != 1:
        raise BenchError(f"the nodes name different leaders for {topic}-0: {sorted(leaders)}")
    return leaders.pop()


def active_controller(cluster: cb.Cluster) -> int:
    try:
        return cluster.quorum().leader
    except (OSError, BenchError):
        return -1


def phase_failover(cluster: cb.Cluster, args) -> List[Dict]:
    topic = new_topic(cluster, "bench-failover", 1, 3, {"min.insync.replicas": "2"}, 60.0)
    conf = {"acks": "all", "enable.idempotence": True, "linger.ms": 0, "message.timeout.ms": 300000,
            "retry.backoff.ms": 10, "retry.backoff.max.ms": 100, "reconnect.backoff.ms": 10,
            "reconnect.backoff.max.ms": 100, "topic.metadata.refresh.fast.interval.ms": 20,
            "log_level": 2}
    prod = FailoverProducer(bootstrap_of(cluster), topic, args.failover_rate, args.record_size, conf)
    prod.start()
    samples = []
    try:
        for k in range(args.kills):
            # steady state: full ISR everywhere, the producer's records acknowledged
            leader = leader_of(cluster, topic, args.rejoin_timeout)
            deadline = time.monotonic() + 60
            while time.monotonic() - prod.last_ok > 0.2 or len(prod.p) > 2 * args.failover_rate / 100 + 10:
                if time.monotonic() > deadline or prod.failure:
                    raise BenchError(f"kill {k + 1}: the producer is not getting acknowledgements "
                                     f"({prod.failure or 'none for ' + str(round(time.monotonic() - prod.last_ok, 1)) + ' s'})")
                time.sleep(0.01)
            time.sleep(args.failover_settle)
            victim = cluster.nodes[leader]
            controller = active_controller(cluster)
            errors_before = dict(prod.error_names)
            prod.arm()
            killed = time.monotonic()
            victim.kill(wait=0)  # SIGKILL of the group; reaped below
            if not prod.got_first.wait(args.failover_timeout):
                raise BenchError(f"kill {k + 1}: no acks=all write acknowledged within {args.failover_timeout:.0f} s "
                                 f"of killing leader {leader}\n" + cluster.log_tails())
            if prod.failure:
                raise BenchError(f"kill {k + 1}: producer failed: {prod.failure}")
            first_ack = prod.first_after - killed
            victim.kill()  # reap
            try:
                new_leader = leader_of_any(cluster, topic, exclude=leader)
            except BenchError:
                new_leader = -1
            restarted = time.monotonic()
            victim.launch()
            _, back = wait_views(cluster, [topic], lambda _i, parts: full_isr(parts, 1, 3),
                                 args.start_timeout + args.rejoin_timeout,
                                 f"kill {k + 1}: restarted node {leader} back in the ISR of {topic}-0",
                                 need=list(cluster.nodes))
            errs = {e: c - errors_before.get(e, 0) for e, c in prod.error_names.items() if c != errors_before.get(e, 0)}
            s = {"kill": k + 1, "killed": leader, "killed_was_controller": leader == controller,
                 "new_leader": new_leader, "kill_to_first_ack_s": round(first_ack, 4),
                 "restart_to_isr_s": round(back - restarted, 3), "delivery_errors": errs}
            samples.append(s)
            log(f"  kill {k + 1}/{args.kills}: leader {leader}{' (active controller)' if s['killed_was_controller'] else ''}"
                f" -> {new_leader}, first ack after {first_ack:.3f} s; back in the ISR {s['restart_to_isr_s']:.1f} s "
                f"after restart{'; errors ' + str(errs) if errs else ''}")
    finally:
        prod.stop_flag.set()
        prod.join(35)
    return samples


def leader_of_any(cluster: cb.Cluster, topic: str, exclude: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tv in views(cluster, [topic]).values():
            p = tv.get(topic, (0, {}))[1].get(0)
            if p is not None and p.leader >= 0 and p.leader != exclude:
                return p.leader
        time.sleep(0.02)
    raise BenchError("no new leader listed")


def phase_rejoin(cluster: cb.Cluster, args) -> Dict:
    partitions = args.rejoin_partitions
    topic = new_topic(cluster, "bench-rejoin", partitions, 3, {"min.insync.replicas": "2"}, 60.0)
    views_now = views(cluster, [topic])
    leaders = set()
    for tv in views_now.values():
        leaders |= {p.leader for p in tv[topic][1].values()}
    controller = active_controller(cluster)
    candidates = [i for i in cluster.ids() if i not in leaders]
    if not candidates:
        raise BenchError(f"every node leads a partition of {topic}; use fewer --rejoin-partitions than nodes")
    victim_id = next((i for i in candidates if i != controller), candidates[0])
    victim = cluster.nodes[victim_id]
    log(f"  stopping follower {victim_id} ({args.rejoin_stop}){' (the active controller)' if victim_id == controller else ''}")
    others = [i for i in cluster.ids() if i != victim_id]
    # the ISR is watched (on the other nodes) while the node stops: a
    # controlled shutdown takes it out before its process exits
    t0 = time.monotonic()
    signal_group(victim, signal.SIGKILL if args.rejoin_stop == "kill" else signal.SIGTERM)
    _, shrunk = wait_views(cluster, [topic],
                           lambda _i, parts: len(parts) == partitions and all(
                               victim_id not in p.isr and p.leader >= 0 for p in parts.values()),
                           args.failover_timeout, f"node {victim_id} out of the ISRs of {topic}", need=others)
    exited = wait_exit(victim, t0, 60.0)
    log(f"  out of the ISR {shrunk - t0:.2f} s after the stop signal, exited after {exited:.2f} s; writing {args.rejoin_bytes / MIB:.0f} MiB acks=all")
    records = max(1, args.rejoin_bytes // args.record_size)
    w = produce_once(bootstrap_of(cluster), topic, args, "all", records)
    log(f"  written in {w['seconds']:.1f} s ({w['mib_per_s']:.1f} MiB/s); restarting node {victim_id}")
    restarted = time.monotonic()
    victim.launch()
    answering = None
    deadline = restarted + args.start_timeout
    while answering is None:
        if not victim.alive():
            raise BenchError(f"node {victim_id} exited after its restart\n" + victim.log_tail())
        try:
            with cb.Conn(victim.address, 1.0) as c:
                if set(cb.metadata(c, [], 1.0).brokers) >= set(cluster.nodes):
                    answering = time.monotonic()
                    break
        except (OSError, BenchError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"node {victim_id} did not answer within {args.start_timeout:.0f} s of its restart")
        time.sleep(0.02)
    first, all_ = wait_views(cluster, [topic], lambda _i, parts: full_isr(parts, partitions, 3),
                             args.rejoin_timeout, f"node {victim_id} back in the ISRs of {topic}",
                             need=list(cluster.nodes))
    out = {"topic": topic, "partitions": partitions, "stopped": victim_id, "stop": args.rejoin_stop,
           "stopped_was_controller": victim_id == controller, "stop_to_exit_s": round(exited, 3),
           "stop_to_isr_shrunk_s": round(shrunk - t0, 3), "bytes_written": records * args.record_size,
           "write": w, "restart_to_answering_s": round(answering - restarted, 3),
           "restart_to_isr_s": round(first - restarted, 3), "restart_to_isr_all_nodes_s": round(all_ - restarted, 3)}
    log(f"  node {victim_id} answering {out['restart_to_answering_s']:.2f} s and back in the ISR "
        f"{out['restart_to_isr_s']:.2f} s after its restart")
    return out


def phase_idle(args, template: str) -> Dict:
    cluster = start_cluster(template, args.nodes, args.start_timeout)
    try:
        topics = [cb.uniq(f"bench-idle-{k}") for k in range(args.idle_topics)]
        per = args.idle_partitions // args.idle_topics
        log(f"  creating {args.idle_topics} topics x {per} partitions, RF=3")
        t0 = time.monotonic()
        create_topics(bootstrap_of(cluster), topics, per, 3, {}, args.rejoin_timeout)
        _, full = wait_views(cluster, topics, lambda _i, parts: full_isr(parts, per, 3), args.rejoin_timeout,
                             "every idle partition with a leader and a full ISR on every node", poll=0.2)
        log(f"  all ISRs full {full - t0:.1f} s after CreateTopics; settling {args.idle_settle:.0f} s")
        roles: Dict[str, Dict[str, int]] = {str(i): {"leader": 0, "follower": 0} for i in cluster.ids()}
        any_view = next(iter(views(cluster, topics).values()))
        for t in topics:
            for p in any_view[t][1].values():
                for r in p.replicas:
                    roles[str(r)]["leader" if r == p.leader else "follower"] += 1
        time.sleep(args.idle_settle)
        nodes = [cluster.nodes[i] for i in cluster.ids()]
        ticks0 = {n.id: node_cpu_ticks(n) for n in nodes}
        prev = dict(ticks0)
        start = prev_t = time.monotonic()
        samples: Dict[str, List[Dict]] = {str(n.id): [] for n in nodes}
        end = start + args.idle
        while True:
            time.sleep(max(0.0, min(1.0, end - time.monotonic())))
            now = time.monotonic()
            for n in nodes:
                if not n.alive():
                    raise BenchError(f"node {n.id} exited during the idle phase\n" + n.log_tail())
                t = node_cpu_ticks(n)
                rss, biggest = n.rss()
                samples[str(n.id)].append({"t_s": round(now - start, 2),
                                           "cpu_pct": round((t - prev[n.id]) / CLK_TCK / (now - prev_t) * 100, 2),
                                           "rss_mib": round(rss / 1024, 1), "largest": biggest})
                prev[n.id] = t
            prev_t = now
            if now >= end - 0.01:
                break
        span = prev_t - start
        per_node = {}
        for n in nodes:
            s = samples[str(n.id)]
            per_node[str(n.id)] = {
                "cpu_pct_mean": round((prev[n.id] - ticks0[n.id]) / CLK_TCK / span * 100, 2),
                "cpu_pct_max_1s": max(x["cpu_pct"] for x in s),
                "rss_mib_end": s[-1]["rss_mib"], "rss_mib_max": max(x["rss_mib"] for x in s),
                "largest": s[-1]["largest"], **roles[str(n.id)], "samples": s}
        return {"partitions": per * args.idle_topics, "topics": args.idle_topics, "seconds": round(span, 2),
                "settle_s": args.idle_settle, "nodes": per_node}
    finally:
        drop_cluster(cluster)


# ------------------------------------------------------------------ main
def client_version() -> str:
    v = confluent_kafka.version()
    v = v[0] if isinstance(v, tuple) else v
    return f"confluent-kafka {v}, librdkafka {confluent_kafka.libversion()[0]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Cluster placeholders: " + " ".join("{" + p + "}" for p in cb.PLACEHOLDERS)
                                 + "; single-broker placeholders: {port} {data_dir}; both: {settings}. "
                                 "docs/replication-bench.md has the command lines for oxka and Apache Kafka.")
    ap.add_argument("--cluster-cmd", required=True, help="one shell command running ONE cluster node in the foreground")
    ap.add_argument("--single-cmd", help="one shell command running ONE single-node broker ({port} {data_dir}); "
                    "needed by the produce phase")
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset of " + ",".join(PHASES))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a broker setting for both templates, rendered into their {settings} (repeatable)")
    ap.add_argument("--set-flag", default="--override",
                    help="how one --set is passed in {settings}: FLAG KEY=VALUE (default --override, oxka's; "
                         "tests/kafka-reference/run.sh takes --set)")
    ap.add_argument("--nodes", type=int, default=3, help="cluster size (default 3; RF is 3)")
    ap.add_argument("--record-size", type=int, default=1024, help="value bytes per record (default 1024)")
    ap.add_argument("--records", type=int, default=1_000_000, help="records per produce run (default 1,000,000)")
    ap.add_argument("--produce-repeats", type=int, default=3, help="produce runs per broker (default 3)")
    ap.add_argument("--partitions", type=int, default=3, help="partitions of the produce topics (default 3)")
    ap.add_argument("--producers", type=int, default=1,
                    help="producer processes sharing a produce run (default 1)")
    ap.add_argument("--linger-ms", type=float, default=5, help="producer linger.ms in produce/rejoin (default 5)")
    ap.add_argument("--batch-size", type=int, default=1_000_000, help="producer batch.size (default 1000000)")
    ap.add_argument("--e2e-mbps", type=float, default=50.0, help="e2e produce rate, MiB/s (default 50)")
    ap.add_argument("--e2e-seconds", type=float, default=30.0, help="e2e duration (default 30 s)")
    ap.add_argument("--e2e-warmup", type=float, default=5.0,
                    help="e2e seconds at the rate before the measured --e2e-seconds; not counted (default 5)")
    ap.add_argument("--e2e-partitions", type=int, default=1, help="partitions of the e2e topic (default 1)")
    ap.add_argument("--e2e-linger-ms", type=float, default=0, help="producer linger.ms in e2e (default 0)")
    ap.add_argument("--kills", type=int, default=20, help="leader kills in the failover phase (default 20)")
    ap.add_argument("--failover-rate", type=float, default=1000, help="failover producer records/s (default 1000)")
    ap.add_argument("--failover-settle", type=float, default=1.0,
                    help="seconds of steady acknowledged writes before each kill (default 1)")
    ap.add_argument("--failover-timeout", type=float, default=120.0,
                    help="bound for the first ack after a kill, and for the ISR to shrink (default 120 s)")
    ap.add_argument("--rejoin-bytes", type=int, default=1 << 30, help="bytes written while the follower is down (default 1 GiB)")
    ap.add_argument("--rejoin-partitions", type=int, default=1, help="partitions of the rejoin topic (default 1)")
    ap.add_argument("--rejoin-stop", choices=("term", "kill"), default="term",
                    help="how the follower is stopped: SIGTERM (controlled shutdown, default) or SIGKILL")
    ap.add_argument("--rejoin-timeout", type=float, default=300.0,
                    help="bound for a restarted node to be back in the ISR, and for ISRs to fill (default 300 s)")
    ap.add_argument("--idle-partitions", type=int, default=1000, help="partitions in the idle phase (default 1000)")
    ap.add_argument("--idle-topics", type=int, default=10, help="topics they are spread over (default 10)")
    ap.add_argument("--idle-settle", type=float, default=10.0, help="seconds after the ISRs are full before sampling (default 10)")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of CPU/RSS sampling (default 30)")
    ap.add_argument("--start-timeout", type=float, default=120.0, help="bound for nodes to come up (default 120 s)")
    ap.add_argument("--phase-timeout", type=float, default=1800.0, help="bound for one client run (default 1800 s)")
    ap.add_argument("--json", metavar="FILE", help="write every sample and the summary as JSON")
    ap.add_argument("--keep-data", action="store_true", help="keep the node directories and logs")
    ap.add_argument("--label", default="", help="a name for the system under test")
    args = ap.parse_args()

    if confluent_kafka is None:
        ap.error("confluent_kafka is not importable: run with ~/.cache/oxka-conformance-venv/bin/python")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    bad = [p for p in phases if p not in PHASES]
    if bad:
        ap.error(f"unknown phase(s) {bad}; known: {','.join(PHASES)}")
    for kv in args.set:
        if "=" not in kv:
            ap.error(f"--set {kv!r}: expected KEY=VALUE")
    unknown = [u for u in cb.unknown_placeholders(args.cluster_cmd) if u != "settings"]
    if unknown:
        ap.error(f"--cluster-cmd has unknown placeholder(s) {unknown}")
    if "produce" in phases and not args.single_cmd:
        ap.error("the produce phase needs --single-cmd (or leave it out of --phases)")
    if args.single_cmd:
        unknown = [u for u in cb.unknown_placeholders(args.single_cmd) if u not in SINGLE_PLACEHOLDERS + ("settings",)]
        if unknown:
            ap.error(f"--single-cmd has unknown placeholder(s) {unknown}; known: {{port}} {{data_dir}} {{settings}}")
    for name, tpl in (("--cluster-cmd", args.cluster_cmd), ("--single-cmd", args.single_cmd)):
        if tpl and args.set and "{settings}" not in tpl:
            ap.error(f"--set given but {name} has no {{settings}} placeholder to receive it")
    if args.nodes < 3:
        ap.error("--nodes must be at least 3 (RF=3)")
    if args.idle_partitions % args.idle_topics:
        ap.error("--idle-partitions must be a multiple of --idle-topics")
    if args.record_size < 8:
        ap.error("--record-size must be at least 8")
    cluster_tpl = expand_settings(args.cluster_cmd, args.set, args.set_flag)
    single_tpl = expand_settings(args.single_cmd, args.set, args.set_flag) if args.single_cmd else None

    cb._KEEP[0] = args.keep_data
    atexit.register(cb._cleanup)
    atexit.register(_kill_children)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, cb._on_signal)

    result: Dict = {"label": args.label, "nodes": args.nodes, "cluster_cmd": cluster_tpl, "single_cmd": single_tpl,
                    "settings": args.set, "phases": phases, "record_size": args.record_size,
                    "client": client_version(),
                    "producer_conf": producer_conf(args, "all|1"),
                    "options": {k: v for k, v in vars(args).items() if k not in ("cluster_cmd", "single_cmd", "json")},
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": os.uname().nodename,
                    "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "errors": {}}
    if args.set:
        log("broker settings for both templates: " + " ".join(args.set))
    status = 0
    cluster: Optional[cb.Cluster] = None

    def attempt(phase: str, fn: Callable[[], object]) -> None:
        nonlocal status
        try:
            result[phase] = fn()
        except (OSError, BenchError, KafkaException) as e:
            log(f"{phase} failed: {e}")
            result["errors"][phase] = str(e).splitlines()[0]
            result.setdefault("error_details", {})[phase] = str(e)
            status = max(status, 3 if isinstance(e, NotUp) else 1)

    try:
        if "produce" in phases:
            log(f"produce, acks=1, one node: {args.records} x {args.record_size} B, {args.partitions} partitions")
            attempt("produce_acks1_single", lambda: phase_produce_single(args, single_tpl))
        cluster_phases = [p for p in phases if p in ("produce", "e2e", "failover", "rejoin")]
        if cluster_phases:
            try:
                cluster = start_cluster(cluster_tpl, args.nodes, args.start_timeout)
            except BenchError as e:
                log(str(e))
                result["errors"]["cluster"] = str(e).splitlines()[0]
                result.setdefault("error_details", {})["cluster"] = str(e)
                return finish(result, args, 3)
            if "produce" in phases:
                log(f"produce, acks=all, RF=3: {args.records} x {args.record_size} B, {args.partitions} partitions")
                attempt("produce_acksall_rf3", lambda: phase_produce_cluster(cluster, args))
            if "e2e" in phases:
                log(f"e2e: {args.e2e_mbps} MiB/s for {args.e2e_seconds:.0f} s, acks=all, RF=3")
                attempt("e2e", lambda: phase_e2e(cluster, args))
            if "failover" in phases and args.kills > 0:
                log(f"failover: {args.kills} partition-leader kills, producer at {args.failover_rate:.0f} records/s")
                attempt("failover", lambda: phase_failover(cluster, args))
            if "rejoin" in phases:
                log(f"rejoin: {args.rejoin_bytes} bytes written while a follower is down")
                attempt("rejoin", lambda: phase_rejoin(cluster, args))
            drop_cluster(cluster)
        if "idle" in phases:
            log(f"idle: fresh cluster, {args.idle_partitions} partitions RF=3, {args.idle:.0f} s of sampling")
            attempt("idle", lambda: phase_idle(args, cluster_tpl))
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        status = 130
    except BenchError as e:
        log(str(e))
        result["errors"]["start"] = str(e).splitlines()[0]
        status = 3
    finally:
        _kill_children()
        if args.keep_data and cb._DIRS:
            log("kept: " + " ".join(cb._DIRS))
        cb._cleanup()
    return finish(result, args, status)


def finish(result: Dict, args, status: int) -> int:
    result["loadavg_end"] = os.getloadavg()
    single = [s["mib_per_s"] for s in result.get("produce_acks1_single", [])]
    rf3 = [s["mib_per_s"] for s in result.get("produce_acksall_rf3", [])]
    fo = result.get("failover", [])
    summ = {"produce_acks1_single_mib_s": summary(single), "produce_acksall_rf3_mib_s": summary(rf3),
            "failover_kill_to_first_ack_s": summary([s["kill_to_first_ack_s"] for s in fo]),
            "failover_restart_to_isr_s": summary([s["restart_to_isr_s"] for s in fo])}
    if single and rf3:
        summ["acksall_rf3_over_acks1_single"] = round(statistics.median(rf3) / statistics.median(single), 3)
    result["summary"] = summ
    label = f" ({args.label})" if args.label else ""
    print(f"\nreplication figures{label}, {result['date']}, {result['cpus']} CPUs, "
          f"load {result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}; client {result['client']}")
    if result["settings"]:
        print("broker settings (both brokers): " + " ".join(result["settings"]))
    print(f"{'figure':<52} {'n':>3} {'p50':>11} {'max':>11}")

    def row(name: str, values: List[float], fmt: Callable[[float], str]) -> None:
        if not values:
            print(f"{name:<52} {'-':>3} {'-':>11} {'-':>11}")
            return
        s = sorted(values)
        print(f"{name:<52} {len(s):>3} {fmt(pct(s, 0.5)):>11} {fmt(s[-1]):>11}")

    mib = lambda v: f"{v:.1f} MiB/s"  # noqa: E731
    sec = lambda v: f"{v:.3f} s"  # noqa: E731
    if "produce" in result["phases"]:
        row(f"produce acks=1, 1 node ({args.record_size} B records)", single, mib)
        row("produce acks=all, RF=3, 3 nodes", rf3, mib)
        if "acksall_rf3_over_acks1_single" in summ:
            print(f"{'  ratio acks=all RF=3 / acks=1 single (p50s)':<52} {'':>3} "
                  f"{summ['acksall_rf3_over_acks1_single']:>11.3f}")
    e = result.get("e2e")
    if e and "p50_ms" in e:
        print(f"e2e latency at {e['target_mib_per_s']} MiB/s (sent {e['achieved_send_mib_per_s']} MiB/s), "
              f"acks=all RF=3, {e['counted']} records after {e['warmup_s']:.0f} s warm-up: p50 {e['p50_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms, "
              f"p99.9 {e['p999_ms']:.2f} ms, max {e['max_ms']:.2f} ms")
    if "failover" in result:
        row("failover: kill -9 leader -> first acks=all ack", [s["kill_to_first_ack_s"] for s in fo], sec)
        row("  of which the leader was the active controller",
            [s["kill_to_first_ack_s"] for s in fo if s["killed_was_controller"]], sec)
        row("  of which it was not", [s["kill_to_first_ack_s"] for s in fo if not s["killed_was_controller"]], sec)
        row("failover: restart -> back in the ISR", [s["restart_to_isr_s"] for s in fo], sec)
    r = result.get("rejoin")
    if r:
        print(f"rejoin ({r['bytes_written'] / MIB:.0f} MiB written at {r['write']['mib_per_s']:.1f} MiB/s while node "
              f"{r['stopped']} was down, {r['stop']}): out of the ISR {r['stop_to_isr_shrunk_s']:.2f} s after the stop; "
              f"after restart answering {r['restart_to_answering_s']:.2f} s, back in the ISR "
              f"{r['restart_to_isr_s']:.2f} s (all nodes {r['restart_to_isr_all_nodes_s']:.2f} s)")
    i = result.get("idle")
    if i:
        print(f"idle, {i['partitions']} partitions RF=3, {i['seconds']:.0f} s after {i['settle_s']:.0f} s settling:")
        for nid, v in i["nodes"].items():
            print(f"  node {nid}: CPU {v['cpu_pct_mean']:.2f} % (max 1-s {v['cpu_pct_max_1s']:.1f} %), "
                  f"RSS {v['rss_mib_end']:.0f} MiB (max {v['rss_mib_max']:.0f}; {v['largest']}), "
                  f"leader of {v['leader']}, follower of {v['follower']}")
    for phase, err in result["errors"].items():
        print(f"{phase} FAILED: {err}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"JSON: {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
