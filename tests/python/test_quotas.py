"""Client quotas with real clients: Kafka's own kafka-configs
(org.apache.kafka.tools.ConfigCommand, through tests/kafka-reference/run.sh)
sets and describes them over AlterClientQuotas / DescribeClientQuotas, and
librdkafka clients are throttled as Kafka throttles them (KIP-55, KIP-219):
a producer limited to 1 MB/s measures close to 1 MB/s and sees throttle
times while another client id at the same time is not slowed; a consumer
over its consumer_byte_rate is held to it. The bands are functional
bounds (an unenforced quota lands far outside them), not timings."""

import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import ROOT, Broker

MB = 1024 * 1024
VALUE = os.urandom(16 * 1024)


@pytest.fixture(scope="module")
def qbroker():
    b = Broker()
    b.start()
    yield b
    b.kill9()


def config_command(bootstrap, *args):
    """Kafka's kafka-configs.sh (ConfigCommand from Kafka's jars)."""
    if shutil.which("java") is None:
        pytest.fail("java is needed to run Kafka's ConfigCommand")
    out = subprocess.run(
        [os.path.join(ROOT, "tests", "kafka-reference", "run.sh"), "tool",
         "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", bootstrap, *args],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"ConfigCommand {args}: {out.stdout}\n{out.stderr}"
    return out.stdout


def create_topic(bootstrap, name):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)


def delete_topic(bootstrap, name):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([name])[name].result(30)


def produce_for(bootstrap, topic, client_id, seconds, max_bytes, result):
    """Produces 16 KiB records as fast as the client is let for `seconds`
    (or until `max_bytes` are acknowledged); records the acknowledged
    bytes, the time taken and the throttle times librdkafka reported."""
    throttles = []
    acked = [0]
    # (time, bytes acknowledged so far) at each throttle
    marks = []

    def delivered(err, msg):
        if err is None:
            acked[0] += len(msg.value())

    def throttled(ev):
        throttles.append(ev.throttle_time)
        marks.append((time.monotonic(), acked[0]))

    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                  "queue.buffering.max.kbytes": 4096, "acks": 1, "throttle_cb": throttled})
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end and acked[0] < max_bytes:
        try:
            p.produce(topic, VALUE, on_delivery=delivered)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    now = time.monotonic()
    result["bytes"] = acked[0]
    result["seconds"] = now - start
    result["throttles"] = throttles
    # from the first throttle on: the rate once the quota's initial credit
    # (a window's worth, as Kafka measures a new client over
    # quota.window.num - 1 whole windows) is spent
    if marks:
        t0, b0 = marks[0]
        result["steady"] = (acked[0] - b0) / max(now - t0, 1e-3)
    # what is still queued or in flight does not count
    p.purge()
    p.flush(30)


def test_kafka_configs_sets_and_describes_quotas(qbroker):
    bs = qbroker.bootstrap
    user = f"u-{uuid.uuid4().hex[:8]}"
    config_command(bs, "--alter", "--entity-type", "users", "--entity-name", user,
                   "--entity-type", "clients", "--entity-default",
                   "--add-config", "producer_byte_rate=2048,request_percentage=12.5")
    out = config_command(bs, "--describe", "--entity-type", "users", "--entity-name", user,
                         "--entity-type", "clients", "--entity-default")
    assert f"user-principal '{user}', the default client-id" in out, out
    assert "producer_byte_rate=2048.0" in out and "request_percentage=12.5" in out, out
    config_command(bs, "--alter", "--entity-type", "users", "--entity-name", user,
                   "--entity-type", "clients", "--entity-default",
                   "--delete-config", "request_percentage")
    out = config_command(bs, "--describe", "--entity-type", "users", "--entity-name", user,
                         "--entity-type", "clients", "--entity-default")
    assert "producer_byte_rate=2048.0" in out and "request_percentage" not in out, out
    # Kafka's validation answers reach the tool as Kafka's errors
    bad = subprocess.run(
        [os.path.join(ROOT, "tests", "kafka-reference", "run.sh"), "tool",
         "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", bs, "--alter",
         "--entity-type", "clients", "--entity-name", "x", "--add-config", "consumer_byte_rate=0"],
        capture_output=True, text=True, timeout=120)
    assert "Quota consumer_byte_rate must be greater than 0" in bad.stdout + bad.stderr


def test_a_producer_at_1mb_per_s_is_throttled_to_it_and_others_are_not(qbroker):
    bs = qbroker.bootstrap
    slow, fast = f"slow-{uuid.uuid4().hex[:8]}", f"fast-{uuid.uuid4().hex[:8]}"
    slow_topic, fast_topic = f"q-{slow}", f"q-{fast}"
    create_topic(bs, slow_topic)
    create_topic(bs, fast_topic)
    config_command(bs, "--alter", "--entity-type", "clients", "--entity-name", slow,
                   "--add-config", f"producer_byte_rate={MB}")
    slow_result, fast_result = {}, {}
    threads = [
        threading.Thread(target=produce_for, args=(bs, slow_topic, slow, 20, 1 << 40, slow_result)),
        # the unthrottled client at the same time, bounded so the disk is
        # spared: it needs a fraction of the time for far more bytes
        threading.Thread(target=produce_for, args=(bs, fast_topic, fast, 8, 100 * MB, fast_result)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    slow_rate = slow_result["bytes"] / slow_result["seconds"] / MB
    fast_rate = fast_result["bytes"] / fast_result["seconds"] / MB
    steady = slow_result.get("steady", 0) / MB
    print(f"producer_byte_rate=1 MiB/s: {steady:.3f} MiB/s after the first throttle, "
          f"{slow_rate:.3f} MiB/s over all {slow_result['seconds']:.1f} s (initial credit "
          f"included), {len(slow_result['throttles'])} throttle events "
          f"(max {max(slow_result['throttles'], default=0):.3f} s); "
          f"unthrottled client {fast_rate:.1f} MiB/s, "
          f"{len(fast_result['throttles'])} throttle events")
    assert slow_result["throttles"] and max(slow_result["throttles"]) > 0
    assert 0.6 <= steady <= 1.5, steady
    # all of it: the quota over the run plus at most the initial credit of
    # ten windows and a request in flight
    assert slow_rate <= (20 + 10) / 20 * 1.1, slow_rate
    assert not fast_result["throttles"], fast_result["throttles"]
    assert fast_rate > 3 * slow_rate, (fast_rate, slow_rate)
    delete_topic(bs, fast_topic)

    # the same records read back by a consumer held to 512 KiB/s
    consumer_id = f"reader-{uuid.uuid4().hex[:8]}"
    config_command(bs, "--alter", "--entity-type", "clients", "--entity-name", consumer_id,
                   "--add-config", f"consumer_byte_rate={MB // 2}")
    throttles = []
    c = Consumer({"bootstrap.servers": bs, "group.id": consumer_id, "client.id": consumer_id,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
    c.subscribe([slow_topic])
    read = 0
    seconds = 6
    end = time.monotonic() + seconds
    while time.monotonic() < end and read < slow_result["bytes"]:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            read += len(m.value())
    c.close()
    # at most the quota over the run and the window's first burst (ten
    # windows of 1 s), with room for a response in flight; unthrottled it
    # would read everything at once
    bound = (MB // 2) * (seconds + 11) * 1.3
    print(f"consumer_byte_rate=512 KiB/s: read {read / MB:.2f} MiB in {seconds} s "
          f"(of {slow_result['bytes'] / MB:.2f} MiB available), {len(throttles)} throttle events")
    assert slow_result["bytes"] > bound, "not enough data to tell a throttled consumer apart"
    assert 0 < read <= bound, read
    assert throttles and max(throttles) > 0
    delete_topic(bs, slow_topic)


def api_versions_answered(sock):
    """Sends ApiVersions v0 and reads the answer's size: True when the
    broker answers, False when it closes the connection."""
    import struct
    body = struct.pack(">hhih", 18, 0, 7, -1)
    try:
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = sock.recv(4)
    except OSError:
        return False
    return len(head) == 4


def test_an_address_over_its_connection_creation_rate_is_closed():
    """KIP-612's connection_creation_rate for an ip entity, set with
    kafka-configs --entity-type ips: past the rate's credit (2/s over ten
    windows: 20 connections at once) an address's new connections are
    closed after the throttle time instead of being served."""
    import socket
    b = Broker()
    b.start()
    try:
        config_command(b.bootstrap, "--alter", "--entity-type", "ips", "--entity-name",
                       "127.0.0.1", "--add-config", "connection_creation_rate=2")
        out = config_command(b.bootstrap, "--describe", "--entity-type", "ips",
                             "--entity-name", "127.0.0.1")
        assert "connection_creation_rate=2.0" in out, out
        socks = []
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
            socks.append(s)
        answered = sum(api_versions_answered(s) for s in socks)
        for s in socks:
            s.close()
        print(f"connection_creation_rate=2 for 127.0.0.1: {answered} of 30 connections served")
        # the two ConfigCommand runs used a few of the credit
        assert 10 <= answered <= 24, answered
    finally:
        b.kill9()
