"""Starts the oxka binary under test on a free loopback port with a fresh
data dir (OXKA_BIN, default target/debug/oxka) and hands tests its address."""

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_exactly(sock, n):
    """`n` bytes from a socket (raw protocol tests); fails if it closes."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


class Broker:
    def __init__(self, overrides=()):
        self.bin = os.environ.get("OXKA_BIN", os.path.join(ROOT, "target", "debug", "oxka"))
        self.port = _free_port()
        self.data = tempfile.mkdtemp(prefix="oxka-pytest-")
        self.proc = None
        self.overrides = list(overrides)
        # the HTTP listener's host:port from the start-up line, if it is on
        self.http = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [self.bin, "broker", "--listen", self.bootstrap, "--data-dir", self.data,
             "--log-level", "warn"]
            + [a for o in self.overrides for a in ("--override", o)],
            stdout=subprocess.PIPE, stderr=None, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert "started" in line, f"broker did not start: {line!r}"
        words = line.split()
        if "http" in words and words.index("http") + 1 < len(words):
            addr = words[words.index("http") + 1]
            self.http = addr[len("http://"):] if addr.startswith("http://") else None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not accept connections")

    def kill9(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
            self.proc = None
            return code


@pytest.fixture(scope="session")
def broker():
    b = Broker()
    b.start()
    yield b
    b.kill9()


@pytest.fixture
def bootstrap(broker):
    return broker.bootstrap


@pytest.fixture
def topic(bootstrap):
    """A fresh 2-partition topic."""
    from confluent_kafka.admin import AdminClient, NewTopic
    name = f"py-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    fs = admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    fs[name].result(timeout=30)
    return name
