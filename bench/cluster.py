#!/usr/bin/env python3
"""Cluster figures: formation, controller failover, metadata propagation, idle RSS.

    python3 bench/cluster.py --cluster-cmd 'ONE NODE with {node_id} {port} ...' \
        [--nodes 3] [--kills 20] [--topics 20] [--json FILE]

Starts N nodes from one `--cluster-cmd` template, the same template (and the
same placeholders) as the conformance suite's cluster area
(../shared/conformance/README.md, "The cluster area"): {node_id} 1..N,
{port} the client listener, {controller_port}, {data_dir} (fresh, also the
working directory), {voters} (controller.quorum.voters for all N nodes),
{rack} (rack-K, K = (node_id - 1) mod 3) and {cluster_id} (22-character
URL-safe base64). Every node runs in its own process group.

What it measures, all through the Kafka wire protocol (a small codec
below: ApiVersions v0, Metadata v4, CreateTopics v4, DescribeQuorum
v0..v2), so that it judges Apache Kafka and oxka alike:

* formation: from starting every node until every node's Metadata lists all
  N brokers (polled every 50 ms);
* idle RSS: VmRSS of each node's process group (every process in it, the
  largest named) after formation and --idle seconds without requests;
* metadata propagation: CreateTopics answered -> the topic listed with a
  leader for every partition by every node's Metadata (the slowest node
  counts), over --topics topics;
* controller failover, --kills times: the active controller (DescribeQuorum's
  leader) is killed with SIGKILL (its whole process group), then CreateTopics
  (RF = min(3, live nodes)) is tried until one succeeds: a new attempt every
  20 ms, round-robin over the live nodes, while fewer than 2 per live node
  are in flight (answered errors are retried at once, requests a node holds
  may answer when a new controller takes them); the killed node is started again and the cluster
  must form again (and the quorum's voters catch up) before the next kill.

Standard library only. Every wait is bounded; every node's process group is
killed and the temporary directory removed on exit, Ctrl-C and SIGTERM
included (--keep-data keeps it). Exit status: 0 every phase measured, 1 a
phase failed (the others still reported), 2 usage, 3 the cluster never
formed.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Dict, List, Optional, Tuple

HOST = "127.0.0.1"
PLACEHOLDERS = ("node_id", "port", "controller_port", "data_dir", "voters", "rack", "cluster_id")
METADATA_TOPIC = "__cluster_metadata"

API_VERSIONS, METADATA, CREATE_TOPICS, DESCRIBE_QUORUM = 18, 3, 19, 55
# The request versions this tool speaks (the broker must support them),
# (lowest, highest); for DescribeQuorum the highest one the node speaks too.
USED_VERSIONS = {METADATA: (4, 4), CREATE_TOPICS: (4, 4), DESCRIBE_QUORUM: (0, 2)}
API_NAMES = {METADATA: "Metadata", CREATE_TOPICS: "CreateTopics", DESCRIBE_QUORUM: "DescribeQuorum"}
ERROR_NAMES = {
    0: "NONE", 3: "UNKNOWN_TOPIC_OR_PARTITION", 5: "LEADER_NOT_AVAILABLE",
    7: "REQUEST_TIMED_OUT", 15: "COORDINATOR_NOT_AVAILABLE", 36: "TOPIC_ALREADY_EXISTS",
    38: "INVALID_REPLICATION_FACTOR", 41: "NOT_CONTROLLER", 51: "CONCURRENT_TRANSACTIONS",
    56: "KAFKA_STORAGE_ERROR", 57: "LOG_DIR_NOT_FOUND", 89: "THROTTLING_QUOTA_EXCEEDED",
    101: "FETCH_SESSION_TOPIC_ID_ERROR",
}


class BenchError(RuntimeError):
    """A phase could not be measured (a bounded wait ran out, a node died)."""


# ------------------------------------------------------------------ codec
class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BenchError(f"truncated response ({len(self.data)} bytes, wanted {n} at {self.pos})")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> Optional[str]:
        n = self.i16()
        return None if n < 0 else self.take(n).decode(errors="replace")

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 35:
                raise BenchError("varint too long")

    def compact_len(self) -> int:
        return self.uvarint() - 1  # -1: null

    def compact_string(self) -> Optional[str]:
        n = self.compact_len()
        return None if n < 0 else self.take(n).decode(errors="replace")

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def p_i16(v: int) -> bytes:
    return struct.pack(">h", v)


def p_i32(v: int) -> bytes:
    return struct.pack(">i", v)


def p_string(s: str) -> bytes:
    b = s.encode()
    return p_i16(len(b)) + b


def p_uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def p_compact_string(s: str) -> bytes:
    b = s.encode()
    return p_uvarint(len(b) + 1) + b


class Conn:
    """One TCP connection to one node; every call has a deadline."""

    def __init__(self, address: str, timeout: float):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _recv(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("response timed out")
            self.sock.settimeout(left)
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the node")
            buf += chunk
        return bytes(buf)

    def request(self, key: int, version: int, body: bytes, timeout: float, flexible: bool = False) -> Reader:
        self.corr += 1
        header = p_i16(key) + p_i16(version) + p_i32(self.corr) + p_string("oxka-clusterbench")
        if flexible:
            header += p_uvarint(0)
        payload = header + body
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        self.sock.sendall(p_i32(len(payload)) + payload)
        (size,) = struct.unpack(">i", self._recv(4, deadline))
        if size < 4 or size > 100_000_000:
            raise BenchError(f"implausible response size {size}")
        r = Reader(self._recv(size, deadline))
        if r.i32() != self.corr:
            raise BenchError("correlation id mismatch")
        if flexible and key != API_VERSIONS:
            r.tags()
        return r


def api_versions(c: Conn, timeout: float) -> Dict[int, Tuple[int, int]]:
    r = c.request(API_VERSIONS, 0, b"", timeout)
    err = r.i16()
    if err:
        raise BenchError(f"ApiVersions error {err}")
    return {r.i16(): (r.i16(), r.i16()) for _ in range(r.i32())}


class Metadata:
    def __init__(self, brokers: Dict[int, str], cluster_id: Optional[str],
                 topics: Dict[str, Tuple[int, List[Tuple[int, int, int]]]]):
        self.brokers = brokers          # node id -> host:port
        self.cluster_id = cluster_id
        self.topics = topics            # name -> (error, [(partition, error, leader)])


def metadata(c: Conn, topics: List[str], timeout: float) -> Metadata:
    """Metadata v4 without auto-creation; topics [] asks for none."""
    body = p_i32(len(topics)) + b"".join(p_string(t) for t in topics) + b"\x00"
    r = c.request(METADATA, 4, body, timeout)
    r.i32()  # throttle
    brokers = {}
    for _ in range(r.i32()):
        node, host, port = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers[node] = f"{host}:{port}"
    cluster_id = r.string()
    r.i32()  # controller id: in KRaft a random live broker, not the quorum leader
    out = {}
    for _ in range(r.i32()):
        err, name = r.i16(), r.string()
        r.i8()  # internal
        parts = []
        for _ in range(r.i32()):
            perr, pid, leader = r.i16(), r.i32(), r.i32()
            for _ in range(r.i32()):
                r.i32()  # replicas
            for _ in range(r.i32()):
                r.i32()  # isr
            parts.append((pid, perr, leader))
        out[name or ""] = (err, parts)
    return Metadata(brokers, cluster_id, out)


def create_topic(c: Conn, name: str, partitions: int, rf: int, timeout_ms: int, timeout: float) -> Tuple[int, Optional[str]]:
    """CreateTopics v4 for one topic: (error code, message)."""
    body = (p_i32(1) + p_string(name) + p_i32(partitions) + p_i16(rf)
            + p_i32(0) + p_i32(0)  # no assignments, no configs
            + p_i32(timeout_ms) + b"\x00")
    r = c.request(CREATE_TOPICS, 4, body, timeout)
    r.i32()  # throttle
    for _ in range(r.i32()):
        tname, err, msg = r.string(), r.i16(), r.string()
        if tname == name:
            return err, msg
    raise BenchError("CreateTopics answer without the topic")


class Quorum:
    def __init__(self, error: int, leader: int, epoch: int, hwm: int, voters: Dict[int, int]):
        self.error, self.leader, self.epoch, self.hwm, self.voters = error, leader, epoch, hwm, voters


def describe_quorum(c: Conn, timeout: float, version: int = 0) -> Quorum:
    """DescribeQuorum v0..v2 (KIP-595, KIP-836, KIP-853) for
    __cluster_metadata-0; any node answers (a Kafka broker forwards it to the
    active controller). Fields past the voters' log end offsets are skipped;
    the v2 nodes list at the end is not read."""
    body = (p_uvarint(2) + p_compact_string(METADATA_TOPIC)
            + p_uvarint(2) + p_i32(0) + p_uvarint(0) + p_uvarint(0) + p_uvarint(0))
    r = c.request(DESCRIBE_QUORUM, version, body, timeout, flexible=True)
    err = r.i16()
    if version >= 2:
        r.compact_string()  # error message
    found = Quorum(err, -1, -1, -1, {})
    for _ in range(max(r.compact_len(), 0)):
        name = r.compact_string()
        for _ in range(max(r.compact_len(), 0)):
            pidx, perr = r.i32(), r.i16()
            if version >= 2:
                r.compact_string()  # error message
            leader, epoch, hwm = r.i32(), r.i32(), r.i64()
            replicas = []
            for _group in range(2):  # current voters, then observers
                group = {}
                for _ in range(max(r.compact_len(), 0)):
                    rid = r.i32()
                    if version >= 2:
                        r.take(16)  # replica directory id
                    leo = r.i64()
                    if version >= 1:
                        r.i64(), r.i64()  # last fetch, last caught-up timestamps
                    r.tags()
                    group[rid] = leo
                replicas.append(group)
            r.tags()
            if name == METADATA_TOPIC and pidx == 0:
                found = Quorum(err or perr, leader, epoch, hwm, replicas[0])
        r.tags()
    return found


# ------------------------------------------------------------------ nodes
def free_port(used: set) -> int:
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            p = s.getsockname()[1]
        if p not in used:
            used.add(p)
            return p


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, never starting with
    '-' (as Kafka's Uuid.randomUuid() for command-line tools)."""
    while True:
        s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not s.startswith("-"):
            return s


def unknown_placeholders(template: str) -> List[str]:
    """{lowercase_words} that are not placeholders; shell ${var} is left alone."""
    return sorted({m for m in re.findall(r"(?<!\$)\{([a-z_]+)\}", template) if m not in PLACEHOLDERS})


def group_members(pgid: int) -> List[int]:
    """Pids whose process group is pgid (from /proc/PID/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def rss_kib(pid: int) -> Tuple[int, str]:
    name, rss = "?", 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return rss, name


class Node:
    def __init__(self, node_id: int, port: int, cport: int, data_dir: str, log_path: str, command: str):
        self.id, self.port, self.cport = node_id, port, cport
        self.address = f"{HOST}:{port}"
        self.data_dir, self.log_path, self.command = data_dir, log_path, command
        self.proc: Optional[subprocess.Popen] = None
        self.conn: Optional[Conn] = None

    def launch(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== clusterbench start of node {self.id}: {self.command}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command, shell=True, cwd=self.data_dir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, wait: float = 10.0) -> None:
        """SIGKILL of the whole process group; returns once every member is gone."""
        self.drop_conn()
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def rss(self) -> Tuple[int, str]:
        """(total VmRSS KiB of the process group, 'name size' of its largest process)."""
        if not self.alive():
            return 0, "down"
        members = [(rss_kib(p), p) for p in group_members(self.proc.pid)]
        total = sum(r for (r, _), _ in members)
        (big, name), _ = max(members, default=((0, "?"), 0))
        return total, f"{name} {big / 1024:.0f} MiB"

    def get_conn(self, timeout: float) -> Conn:
        if self.conn is None:
            self.conn = Conn(self.address, timeout)
        return self.conn

    def drop_conn(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, template: str, size: int, base_dir: str):
        self.size = size
        self.dq_version = 0
        self.cluster_id = new_cluster_id()
        self.base_dir = base_dir
        used: set = set()
        ports = {i: (free_port(used), free_port(used)) for i in range(1, size + 1)}
        self.voters = ",".join(f"{i}@{HOST}:{ports[i][1]}" for i in range(1, size + 1))
        self.nodes: Dict[int, Node] = {}
        for i in range(1, size + 1):
            data_dir = os.path.join(base_dir, f"node-{i}")
            os.makedirs(data_dir)
            values = {"node_id": str(i), "port": str(ports[i][0]), "controller_port": str(ports[i][1]),
                      "data_dir": data_dir, "voters": self.voters, "rack": f"rack-{(i - 1) % 3}",
                      "cluster_id": self.cluster_id}
            cmd = template
            for k, v in values.items():
                cmd = cmd.replace("{" + k + "}", v)
            self.nodes[i] = Node(i, ports[i][0], ports[i][1], data_dir,
                                 os.path.join(base_dir, f"node-{i}.log"), cmd)

    def ids(self) -> List[int]:
        return sorted(self.nodes)

    def live(self) -> List[Node]:
        return [n for n in self.nodes.values() if n.alive()]

    def kill_all(self) -> None:
        for n in self.nodes.values():
            n.kill()

    def log_tails(self) -> str:
        return "\n".join(f"--- node {i} ({n.log_path}):\n{n.log_tail()}" for i, n in sorted(self.nodes.items()))

    def wait_formed(self, timeout: float, poll: float = 0.05) -> float:
        """Poll until every node's Metadata lists every node as a broker;
        returns the moment (monotonic) it first held."""
        want = set(self.nodes)
        deadline = time.monotonic() + timeout
        status: Dict[int, str] = {}
        while True:
            ok = True
            for i, n in sorted(self.nodes.items()):
                if not n.alive():
                    raise BenchError(f"node {i} exited (status {n.proc.returncode}) while the cluster formed\n"
                                     + self.log_tails())
                try:
                    with Conn(n.address, 1.0) as c:
                        listed = set(metadata(c, [], 1.0).brokers)
                    status[i] = f"lists brokers {sorted(listed)}"
                    ok = ok and listed == want
                except (OSError, BenchError) as e:
                    status[i] = f"not answering ({type(e).__name__}: {e})"
                    ok = False
            now = time.monotonic()
            if ok:
                return now
            if now >= deadline:
                raise BenchError(f"the cluster did not form within {timeout:.0f} s: "
                                 + "; ".join(f"node {i} {s}" for i, s in sorted(status.items()))
                                 + "\n" + self.log_tails())
            time.sleep(poll)

    def check_versions(self) -> None:
        """The versions this tool sends must be within what the nodes support;
        DescribeQuorum goes at the highest version both speak."""
        with Conn(self.nodes[1].address, 3.0) as c:
            apis = api_versions(c, 3.0)
        missing = []
        for key, (lo, hi) in USED_VERSIONS.items():
            node_lo, node_hi = apis.get(key, (1, 0))
            if max(lo, node_lo) > min(hi, node_hi):
                missing.append(f"{API_NAMES[key]} v{lo}..v{hi} (node 1 speaks "
                               + (f"v{node_lo}..v{node_hi})" if key in apis else "none)"))
            elif key == DESCRIBE_QUORUM:
                self.dq_version = min(hi, node_hi)
        if missing:
            print("warning: no common version for " + ", ".join(missing) + "; the phases that need them will fail",
                  file=sys.stderr)

    def quorum(self, timeout: float = 2.0) -> Quorum:
        """DescribeQuorum through the first live node that answers."""
        last: Exception = BenchError("no live node")
        for n in self.live():
            try:
                with Conn(n.address, timeout) as c:
                    q = describe_quorum(c, timeout, self.dq_version)
                if q.error == 0:
                    return q
                last = BenchError(f"DescribeQuorum error {q.error} from node {n.id}")
            except (OSError, BenchError) as e:
                last = e
        raise last

    def wait_leader(self, timeout: float, not_id: int = -1) -> Quorum:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                q = self.quorum()
                if q.leader >= 0 and q.leader != not_id and q.leader in self.nodes:
                    return q
                last = f"leader {q.leader}"
            except (OSError, BenchError) as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise BenchError(f"DescribeQuorum named no usable leader within {timeout:.0f} s ({last})")
            time.sleep(0.05)

    def wait_voters_caught_up(self, timeout: float) -> bool:
        """Every voter's log end offset at or past the high watermark once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                q = self.quorum()
                if q.leader >= 0 and q.voters and set(q.voters) >= set(self.nodes) \
                        and all(leo >= q.hwm for leo in q.voters.values()):
                    return True
            except (OSError, BenchError):
                pass
            time.sleep(0.05)
        return False


# ------------------------------------------------------------------ phases
def summary(values: List[float]) -> Dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "p50": statistics.median(values), "max": max(values),
            "min": min(values), "mean": statistics.fmean(values)}


def uniq(prefix: str) -> str:
    return f"{prefix}-{random.randrange(16 ** 8):08x}"


def measure_rss(cluster: Cluster) -> Dict[str, Dict]:
    out = {}
    for i, n in sorted(cluster.nodes.items()):
        total, biggest = n.rss()
        out[str(i)] = {"rss_mib": round(total / 1024, 1), "largest": biggest}
    return out


def measure_propagation(cluster: Cluster, topics: int, partitions: int, poll: float,
                        timeout: float) -> List[Dict]:
    """CreateTopics answered -> listed with leaders by every node, per topic."""
    rf = min(3, cluster.size)
    samples = []
    nodes = [cluster.nodes[i] for i in cluster.ids()]
    for k in range(topics):
        name = uniq(f"bench-prop-{k}")
        target = nodes[k % len(nodes)]
        with Conn(target.address, 10.0) as c:
            err, msg = create_topic(c, name, partitions, rf, 10000, 15.0)
        answered = time.monotonic()
        if err:
            raise BenchError(f"CreateTopics {name} via node {target.id}: error {err} {msg}")
        seen: Dict[int, float] = {}
        deadline = answered + timeout
        while len(seen) < len(nodes):
            for n in nodes:
                if n.id in seen:
                    continue
                try:
                    md = metadata(n.get_conn(2.0), [name], 2.0)
                except (OSError, BenchError):
                    n.drop_conn()
                    continue
                t = md.topics.get(name)
                if t and t[0] == 0 and len(t[1]) == partitions and all(e == 0 and lead >= 0 for _, e, lead in t[1]):
                    seen[n.id] = time.monotonic()
            if len(seen) < len(nodes):
                if time.monotonic() >= deadline:
                    raise BenchError(f"topic {name} not listed with leaders by nodes "
                                     f"{sorted(set(cluster.nodes) - set(seen))} within {timeout:.0f} s")
                time.sleep(poll)
        per_node = {str(i): round((t - answered) * 1000, 1) for i, t in sorted(seen.items())}
        samples.append({"topic": name, "via": target.id, "slowest_ms": max(per_node.values()),
                        "per_node_ms": per_node})
    for n in nodes:
        n.drop_conn()
    return samples


def _first_create(nodes: List[Node], k: int, rf: int, attempt_timeout: float, interval: float,
                  per_node: int, deadline: float) -> Optional[Tuple[float, int, int, Dict[str, int]]]:
    """CreateTopics attempts (a fresh topic name and connection each), one
    started every `interval` round-robin over the live nodes while fewer
    than `per_node` per live node are in flight, until one succeeds: (when
    it answered, via node, attempts, errors seen), or None at the deadline.
    Answered errors are retried within `interval`; requests a node holds (a
    Kafka broker holds a forwarded request until a controller takes it) are
    left to answer while a few others run, so neither case coarsens the
    figure, and the cap keeps the attempts from loading the cluster."""
    lock = threading.Lock()
    state: Dict = {"won": None, "attempts": 0, "errors": {}, "inflight": 0}

    def attempt(n: Node) -> None:
        err_key = None
        try:
            with Conn(n.address, attempt_timeout) as c:
                err, _ = create_topic(c, uniq(f"bench-fo-{k}"), 1, rf, int(attempt_timeout * 1000),
                                      attempt_timeout + 0.5)
            if err == 0:
                now = time.monotonic()
                with lock:
                    if state["won"] is None or now < state["won"][0]:
                        state["won"] = (now, n.id)
            else:
                err_key = ERROR_NAMES.get(err, str(err))
        except (OSError, BenchError) as e:
            err_key = type(e).__name__
        with lock:
            state["inflight"] -= 1
            if err_key:
                state["errors"][err_key] = state["errors"].get(err_key, 0) + 1

    i = 0
    while time.monotonic() < deadline:
        with lock:
            if state["won"] is not None:
                break
            start = state["inflight"] < per_node * len(nodes)
            if start:
                state["inflight"] += 1
                state["attempts"] += 1
        if start:
            threading.Thread(target=attempt, args=(nodes[i % len(nodes)],), daemon=True).start()
            i += 1
        time.sleep(interval)
    # attempts still in flight end by their own timeouts (daemon threads)
    with lock:
        if state["won"] is None:
            return None
        return state["won"][0], state["won"][1], state["attempts"], dict(state["errors"])


def measure_failover(cluster: Cluster, kills: int, attempt_timeout: float, interval: float,
                     per_node: int, timeout: float, start_timeout: float, log) -> List[Dict]:
    samples = []
    for k in range(kills):
        q = cluster.wait_leader(30.0)
        victim = cluster.nodes[q.leader]
        rf = min(3, cluster.size - 1)
        others = [n for n in cluster.nodes.values() if n is not victim]
        killed = time.monotonic()  # kill() signals first; it is reaped below
        victim.kill(wait=0)
        won = _first_create(others, k, rf, attempt_timeout, interval, per_node, killed + timeout)
        if won is None:
            raise BenchError(f"kill {k + 1}: no CreateTopics succeeded within {timeout:.0f} s "
                             f"of killing controller {victim.id}")
        created, success_via, attempts, errors = won
        try:
            new_leader = cluster.wait_leader(10.0, not_id=victim.id).leader
        except BenchError:
            new_leader = -1
        # reap the killed group, start the node again, wait for the cluster
        victim.kill()
        restarted = time.monotonic()
        victim.launch()
        formed = cluster.wait_formed(start_timeout)
        caught_up = cluster.wait_voters_caught_up(15.0)
        sample = {"killed": victim.id, "new_leader": new_leader,
                  "failover_s": round(created - killed, 3), "via": success_via, "attempts": attempts,
                  "errors": errors, "restart_to_formed_s": round(formed - restarted, 3),
                  "voters_caught_up": caught_up}
        samples.append(sample)
        log(f"  kill {k + 1}/{kills}: controller {victim.id} -> {new_leader}, CreateTopics after "
            f"{sample['failover_s']:.3f} s ({attempts} attempts {errors}), re-formed "
            f"{sample['restart_to_formed_s']:.1f} s after restart")
    return samples


# ------------------------------------------------------------------ main
_CLUSTERS: List[Cluster] = []
_DIRS: List[str] = []
_KEEP = [False]


def _cleanup() -> None:
    for c in _CLUSTERS:
        c.kill_all()
    _CLUSTERS.clear()
    if not _KEEP[0]:
        for d in _DIRS:
            shutil.rmtree(d, ignore_errors=True)
    _DIRS.clear()


def _on_signal(signum, _frame) -> None:
    # a second Ctrl-C must not cut the clean-up short
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Placeholders: " + " ".join("{" + p + "}" for p in PLACEHOLDERS))
    ap.add_argument("--cluster-cmd", required=True, help="one shell command running ONE node in the foreground")
    ap.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    ap.add_argument("--kills", type=int, default=20, help="controller kills (default 20; 0 skips)")
    ap.add_argument("--topics", type=int, default=20, help="topics for the propagation figure (default 20; 0 skips)")
    ap.add_argument("--partitions", type=int, default=3, help="partitions per propagation topic (default 3)")
    ap.add_argument("--formations", type=int, default=1,
                    help="fresh clusters formed for the formation figure (default 1; the last one is measured on)")
    ap.add_argument("--idle", type=float, default=5.0, help="idle seconds before RSS is read (default 5)")
    ap.add_argument("--start-timeout", type=float, default=120.0,
                    help="bound for a cluster to form, also after each restart (default 120 s)")
    ap.add_argument("--failover-timeout", type=float, default=60.0,
                    help="bound for CreateTopics to succeed after a kill (default 60 s)")
    ap.add_argument("--attempt-timeout", type=float, default=5.0,
                    help="one CreateTopics attempt during failover: its timeout_ms, +0.5 s on the socket (default 5)")
    ap.add_argument("--attempt-interval", type=float, default=20.0,
                    help="during failover a CreateTopics attempt starts every this many ms (default 20) ...")
    ap.add_argument("--attempts-per-node", type=int, default=2,
                    help="... while fewer than this many per live node are in flight (default 2)")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="propagation poll interval (default 5 ms)")
    ap.add_argument("--json", metavar="FILE", help="write every sample and the summary as JSON")
    ap.add_argument("--keep-data", action="store_true", help="keep the node directories and logs")
    ap.add_argument("--label", default="", help="a name for the system under test, printed and in the JSON")
    args = ap.parse_args()
    unknown = unknown_placeholders(args.cluster_cmd)
    if unknown:
        ap.error(f"--cluster-cmd has unknown placeholder(s) {unknown}; known: "
                 + " ".join("{" + p + "}" for p in PLACEHOLDERS))
    if args.nodes < 3:
        ap.error("--nodes must be at least 3 (a controller kill must leave a majority)")
    _KEEP[0] = args.keep_data
    atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    result: Dict = {"label": args.label, "nodes": args.nodes, "cluster_cmd": args.cluster_cmd,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": os.uname().nodename,
                    "cpus": os.cpu_count(), "errors": {}}
    status = 0
    cluster: Optional[Cluster] = None
    try:
        formation = []
        for f in range(max(1, args.formations)):
            if cluster is not None:
                cluster.kill_all()
                _CLUSTERS.remove(cluster)
            base = tempfile.mkdtemp(prefix="oxka-clusterbench-")
            _DIRS.append(base)
            cluster = Cluster(args.cluster_cmd, args.nodes, base)
            _CLUSTERS.append(cluster)
            log(f"formation {f + 1}: starting {args.nodes} nodes in {base}")
            t0 = time.monotonic()
            for n in cluster.nodes.values():
                n.launch()
            try:
                formed = cluster.wait_formed(args.start_timeout)
            except BenchError as e:
                log(str(e))
                result["errors"]["formation"] = str(e).splitlines()[0]
                status = 3
                return status
            formation.append(round(formed - t0, 3))
            log(f"  formed in {formation[-1]:.3f} s")
        result["formation_s"] = formation
        cluster.check_versions()
        result["describe_quorum_version"] = cluster.dq_version

        log(f"idle {args.idle:.0f} s, then RSS")
        time.sleep(args.idle)
        result["idle_rss"] = measure_rss(cluster)

        if args.topics > 0:
            log(f"propagation: {args.topics} topics x {args.partitions} partitions")
            try:
                result["propagation"] = measure_propagation(cluster, args.topics, args.partitions,
                                                            args.poll_ms / 1000, 30.0)
            except (OSError, BenchError) as e:
                log(f"propagation failed: {e}")
                result["errors"]["propagation"] = str(e).splitlines()[0]
                status = 1

        if args.kills > 0:
            log(f"failover: {args.kills} controller kills")
            result["failover"] = []
            try:
                result["failover"] = measure_failover(
                    cluster, args.kills, args.attempt_timeout, args.attempt_interval / 1000,
                    args.attempts_per_node, args.failover_timeout,
                    args.start_timeout, log)
            except (OSError, BenchError) as e:
                log(f"failover failed: {e}")
                result["errors"]["failover"] = str(e).splitlines()[0]
                status = 1
        result["end_rss"] = measure_rss(cluster)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        status = 130
    finally:
        if _KEEP[0] and _DIRS:
            log("kept: " + " ".join(_DIRS))
        _cleanup()

    report(result, args)
    return status


def report(result: Dict, args) -> None:
    fo = [s["failover_s"] for s in result.get("failover", [])]
    rs = [s["restart_to_formed_s"] for s in result.get("failover", [])]
    pr = [s["slowest_ms"] for s in result.get("propagation", [])]
    pn = [v for s in result.get("propagation", []) for v in s["per_node_ms"].values()]
    result["summary"] = {"formation_s": summary(result.get("formation_s", [])),
                         "failover_s": summary(fo), "restart_to_formed_s": summary(rs),
                         "propagation_ms": summary(pr),
                         "propagation_per_node_ms": summary(pn)}
    label = f" ({args.label})" if args.label else ""
    print(f"\ncluster of {args.nodes} nodes{label}, {result['date']}, {result['cpus']} CPUs")
    print(f"{'figure':<40} {'n':>3} {'p50':>12} {'max':>12}")

    def row(name: str, values: List[float], unit: str) -> None:
        if not values:
            print(f"{name:<40} {'-':>3} {'-':>12} {'-':>12}")
            return
        f = (lambda v: f"{v:.3f} s") if unit == "s" else (lambda v: f"{v:.1f} ms")
        print(f"{name:<40} {len(values):>3} {f(statistics.median(values)):>12} {f(max(values)):>12}")

    row("formation (start -> all listed)", result.get("formation_s", []), "s")
    row("controller failover (kill -> Create)", fo, "s")
    row("restart -> formed again", rs, "s")
    row("metadata propagation (slowest node)", pr, "ms")
    row("metadata propagation (each node)", pn, "ms")
    for key, title in (("idle_rss", f"idle RSS after {args.idle:.0f} s"), ("end_rss", "RSS at the end")):
        rss = result.get(key)
        if rss:
            cells = ", ".join(f"node {i} {v['rss_mib']:.0f} MiB ({v['largest']})" for i, v in rss.items())
            print(f"{title}: {cells}")
    for phase, err in result["errors"].items():
        print(f"{phase} FAILED: {err}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"JSON: {args.json}")


if __name__ == "__main__":
    sys.exit(main())
