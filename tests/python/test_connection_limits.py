"""Connection quotas with real clients (confluent-kafka / librdkafka):
per-listener `max.connections` (KIP-402: the extra connection waits on its
listener while another listener serves; raised at run time with
IncrementalAlterConfigs) and `max.connection.creation.rate` (KIP-612: the
acceptor delays connections instead of refusing them)."""

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource)

from conftest import ROOT, Broker, _free_port, read_exactly


def api_versions_request(correlation_id=7):
    payload = struct.pack(">hhi", 18, 0, correlation_id) + struct.pack(">h", 2) + b"py"
    return struct.pack(">i", len(payload)) + payload


def read_response(s):
    """One whole response (its size, then its bytes)."""
    return read_exactly(s, struct.unpack(">i", read_exactly(s, 4))[0])


def served(addr, timeout):
    """A connection whose ApiVersions was answered within `timeout`, or
    the unanswered connection (its request sent) and False."""
    host, port = addr.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(api_versions_request())
    s.settimeout(timeout)
    try:
        read_response(s)
        return s, True
    except socket.timeout:
        return s, False


class TwoListenerBroker:
    """PLAINTEXT (the inter-broker listener) and EXTRA, both plaintext."""

    def __init__(self, props):
        self.bin = os.environ.get("OXKA_BIN", os.path.join(ROOT, "target", "debug", "oxka"))
        self.dir = tempfile.mkdtemp(prefix="oxka-pytest-conn-")
        self.ports = {"PLAINTEXT": _free_port(), "EXTRA": _free_port()}
        base = {
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTRA:PLAINTEXT",
            "log.dirs": os.path.join(self.dir, "data"),
        }
        config = os.path.join(self.dir, "server.properties")
        with open(config, "w") as f:
            for k, v in {**base, **props}.items():
                f.write(f"{k}={v}\n")
        self.proc = subprocess.Popen([self.bin, "broker", "-c", config, "--log-level", "warn"],
                                     stdout=subprocess.PIPE, stderr=None, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert "started" in line, f"broker did not start: {line!r}"

    def addr(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def two_listeners():
    b = TwoListenerBroker({"listener.name.extra.max.connections": "1"})
    yield b
    b.kill9()


def test_listener_max_connections_holds_the_extra_connection_while_others_serve(two_listeners):
    b = two_listeners
    first, ok = served(b.addr("EXTRA"), 30)
    assert ok, "the first connection on EXTRA is served"
    # KIP-402: EXTRA is at its limit: the next connection waits unserved...
    second, ok = served(b.addr("EXTRA"), 1.5)
    assert not ok, "a connection over listener.name.extra.max.connections is not served"
    # ...while the other listener serves a real client
    admin = AdminClient({"bootstrap.servers": b.addr("PLAINTEXT")})
    assert admin.list_topics(timeout=30).brokers
    # the limit is dynamic (Kafka's ListenerReconfigurable): raised, the
    # waiting connection is served without the first one closing
    res = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("listener.name.extra.max.connections", "2",
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(timeout=30)
    second.settimeout(30)
    assert read_response(second), "served once the listener's limit was raised"
    # Kafka refuses a listener limit below 1
    bad = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("listener.name.extra.max.connections", "0",
                    incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException):
        admin.incremental_alter_configs([bad])[bad].result(timeout=30)
    first.close()
    second.close()


def test_connection_creation_rate_delays_instead_of_refusing():
    # one 1 s sample beside the current one: about 5 connections at once,
    # then about 5 a second (Kafka's rate over quota.window.num samples)
    b = Broker(["max.connection.creation.rate=5", "quota.window.num=2"])
    b.start()
    try:
        start = time.monotonic()
        conns = []
        for _ in range(20):
            s, ok = served(b.bootstrap, 30)
            assert ok, "a throttled connection is delayed, not refused"
            conns.append(s)
        elapsed = time.monotonic() - start
        # 20 connections at 5/s with a burst of about 6: at least ~2.8 s;
        # without the limit this takes milliseconds
        assert elapsed >= 2.0, f"20 connections in {elapsed:.2f} s"
        for s in conns:
            s.close()
        # a real client gets through, at most one window later
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        assert admin.list_topics(timeout=30).brokers
    finally:
        b.kill9()


def test_inter_broker_listener_goes_past_max_connections():
    """KIP-402: beside other listeners, the inter-broker listener (here
    PLAINTEXT) is served past max.connections; the least recently active
    connection of another listener is closed to make room."""
    b = TwoListenerBroker({"max.connections": "2"})
    try:
        # the older connection is the busier one: the choice is by activity
        busy, ok = served(b.addr("EXTRA"), 30)
        assert ok
        idle, ok = served(b.addr("EXTRA"), 30)
        assert ok
        time.sleep(0.05)
        busy.sendall(api_versions_request(8))
        busy.settimeout(30)
        read_response(busy)
        # a third client connection waits: the broker is at its limit
        waiting, ok = served(b.addr("EXTRA"), 1.5)
        assert not ok
        # the inter-broker listener is served at once...
        inter, ok = served(b.addr("PLAINTEXT"), 30)
        assert ok, "the inter-broker listener is exempt from max.connections"
        # ...and the idle client connection is the one closed
        idle.settimeout(30)
        assert idle.recv(1) == b"", "the least recently active connection is closed"
        busy.sendall(api_versions_request(9))
        read_response(busy)
        for s in (idle, busy, waiting, inter):
            s.close()
    finally:
        b.kill9()
