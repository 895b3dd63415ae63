"""TLS and SASL with real clients (confluent-kafka / librdkafka and
kafka-python): SSL with and without client certificates, SASL PLAIN,
SCRAM-SHA-256/512 (credentials created with AlterUserScramCredentials),
OAUTHBEARER with unsecured tokens; and what a broken or hostile client
gets: wrong passwords, unknown mechanisms, garbage and stalled
handshakes, requests before authentication. Certificates are made by
the test run (security_certs.py)."""

import base64
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from conftest import ROOT, _free_port
from security_certs import Pki

LISTENERS = ["PLAINTEXT", "SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL", "REAUTH"]
JAAS_PLAIN = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" user_alice="alice-secret";')


class SecureBroker:
    def __init__(self):
        self.bin = os.environ.get("OXKA_BIN", os.path.join(ROOT, "target", "debug", "oxka"))
        self.dir = tempfile.mkdtemp(prefix="oxka-pytest-sec-")
        self.pki = Pki(self.dir)
        self.keystore, _, _ = self.pki.keystore("broker", "localhost", server=True)
        _, self.alice_cert, self.alice_key = self.pki.keystore("alice", "alice", ou="eng")
        self.ports = {name: _free_port() for name in LISTENERS}
        props = {
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()),
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,"
                "REAUTH:SASL_PLAINTEXT",
            "security.inter.broker.protocol": "PLAINTEXT",
            "log.dirs": os.path.join(self.dir, "data"),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": self.keystore,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.pki.ca_file,
            "listener.name.ssl.ssl.client.auth": "requested",
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS_PLAIN,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS_PLAIN,
            "listener.name.reauth.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.reauth.plain.sasl.jaas.config": JAAS_PLAIN,
            "listener.name.reauth.connections.max.reauth.ms": "2000",
            "connection.failed.authentication.delay.ms": "50",
        }
        self.config = os.path.join(self.dir, "server.properties")
        with open(self.config, "w") as f:
            for k, v in props.items():
                f.write(f"{k}={v}\n")
        self.proc = None

    def addr(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def start(self):
        self.proc = subprocess.Popen([self.bin, "broker", "-c", self.config, "--log-level", "warn"],
                                     stdout=subprocess.PIPE, stderr=None, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert "started" in line, f"broker did not start: {line!r}"

    def kill9(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def sec():
    b = SecureBroker()
    b.start()
    admin = AdminClient({"bootstrap.servers": b.addr("PLAINTEXT")})
    ups = [UserScramCredentialUpsertion("scram-user", ScramCredentialInfo(m, 4096), b"scram-secret")
           for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
    for f in admin.alter_user_scram_credentials(ups).values():
        f.result(timeout=30)
    yield b
    b.kill9()


@pytest.fixture
def sec_topic(sec):
    name = f"sec-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": sec.addr("PLAINTEXT")})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    return name


def unsecured_jwt(sub, lifetime_s=3600):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return f"{enc({'alg': 'none'})}.{enc({'sub': sub, 'iat': now, 'exp': now + lifetime_s})}."


def confluent_round_trip(conf, topic, n=20):
    p = Producer({**conf, "message.timeout.ms": 20000})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": f"g-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    assert got == [f"v{i}".encode() for i in range(n)]


def kafka_python_round_trip(kw, topic, n=10):
    from kafka import KafkaConsumer, KafkaProducer
    p = KafkaProducer(**kw, request_timeout_ms=20000)
    for i in range(n):
        p.send(topic, f"k{i}".encode()).get(timeout=30)
    p.close()
    c = KafkaConsumer(topic, **kw, auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=10000)
    got = [m.value for m in c]
    c.close()
    assert [f"k{i}".encode() for i in range(n)] == got[:n] or set(got) >= {f"k{i}".encode() for i in range(n)}


def test_ssl_without_and_with_client_certificate(sec, sec_topic):
    base = {"security.protocol": "SSL", "ssl.ca.location": sec.pki.ca_file}
    confluent_round_trip({**base, "bootstrap.servers": sec.addr("SSL")}, sec_topic)
    mtls = {**base, "bootstrap.servers": sec.addr("MTLS"),
            "ssl.certificate.location": sec.alice_cert, "ssl.key.location": sec.alice_key}
    confluent_round_trip(mtls, sec_topic)
    kafka_python_round_trip(dict(bootstrap_servers=[sec.addr("SSL")], security_protocol="SSL",
                                 ssl_cafile=sec.pki.ca_file), sec_topic)
    kafka_python_round_trip(dict(bootstrap_servers=[sec.addr("MTLS")], security_protocol="SSL",
                                 ssl_cafile=sec.pki.ca_file, ssl_certfile=sec.alice_cert,
                                 ssl_keyfile=sec.alice_key), sec_topic)


def test_required_client_certificate_is_enforced(sec):
    ctx = ssl.create_default_context(cafile=sec.pki.ca_file)
    with socket.create_connection(("127.0.0.1", sec.ports["MTLS"]), timeout=10) as raw:
        # TLS 1.3 reports a missing certificate after the handshake: the
        # first read fails or sees the connection closed
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(api_versions_request())
                if not s.recv(4):
                    raise ConnectionError("closed")


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_plain(sec, sec_topic, listener):
    conf = {"bootstrap.servers": sec.addr(listener), "security.protocol": listener,
            "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret",
            "ssl.ca.location": sec.pki.ca_file}
    confluent_round_trip(conf, sec_topic)
    kafka_python_round_trip(dict(bootstrap_servers=[sec.addr(listener)], security_protocol=listener,
                                 sasl_mechanism="PLAIN", sasl_plain_username="alice",
                                 sasl_plain_password="alice-secret", ssl_cafile=sec.pki.ca_file),
                            sec_topic)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_scram(sec, sec_topic, mechanism):
    conf = {"bootstrap.servers": sec.addr("SASL_SSL"), "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism, "sasl.username": "scram-user",
            "sasl.password": "scram-secret", "ssl.ca.location": sec.pki.ca_file}
    confluent_round_trip(conf, sec_topic)
    kafka_python_round_trip(dict(bootstrap_servers=[sec.addr("SASL_PLAINTEXT")],
                                 security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                                 sasl_plain_username="scram-user", sasl_plain_password="scram-secret"),
                            sec_topic)


def test_scram_credentials_are_described_without_secrets(sec):
    admin = AdminClient({"bootstrap.servers": sec.addr("PLAINTEXT")})
    desc = admin.describe_user_scram_credentials(["scram-user"])["scram-user"].result(timeout=30)
    mechs = sorted(str(i.mechanism) for i in desc.scram_credential_infos)
    assert mechs == ["ScramMechanism.SCRAM_SHA_256", "ScramMechanism.SCRAM_SHA_512"]
    assert all(i.iterations == 4096 for i in desc.scram_credential_infos)
    with pytest.raises(KafkaException, match="RESOURCE_NOT_FOUND"):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(timeout=30)
    # Kafka's bound on iterations
    bad = UserScramCredentialUpsertion("weak", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"x")
    with pytest.raises(KafkaException, match="UNACCEPTABLE_CREDENTIAL"):
        admin.alter_user_scram_credentials([bad])["weak"].result(timeout=30)


def test_sasl_oauthbearer_unsecured(sec, sec_topic):
    conf = {"bootstrap.servers": sec.addr("SASL_SSL"), "security.protocol": "SASL_SSL",
            "ssl.ca.location": sec.pki.ca_file, "sasl.mechanism": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice"}
    confluent_round_trip(conf, sec_topic)

    try:
        from kafka.net.sasl.oauth import AbstractTokenProvider
    except ImportError:
        from kafka.sasl.oauth import AbstractTokenProvider

    class Tokens(AbstractTokenProvider):
        def token(self):
            return unsecured_jwt("alice")

    kafka_python_round_trip(dict(bootstrap_servers=[sec.addr("SASL_PLAINTEXT")],
                                 security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                                 sasl_oauth_token_provider=Tokens()), sec_topic)


def test_reauthentication_keeps_a_long_session_going(sec, sec_topic):
    """KIP-368: the broker gives a 2 s session lifetime; librdkafka
    re-authenticates on the same connection and goes on producing."""
    errors = []
    p = Producer({"bootstrap.servers": sec.addr("REAUTH"), "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret",
                  "error_cb": errors.append})
    delivered = []
    end = time.monotonic() + 7
    i = 0
    while time.monotonic() < end:
        p.produce(sec_topic, value=f"r{i}".encode(),
                  on_delivery=lambda err, m: delivered.append(err))
        i += 1
        p.poll(0.1)
    assert p.flush(20) == 0
    assert len(delivered) == i and all(e is None for e in delivered)
    assert not errors, errors


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "wrong"),
    ("PLAIN", "mallory", "alice-secret"),
    ("SCRAM-SHA-256", "scram-user", "wrong"),
    ("SCRAM-SHA-512", "nobody", "scram-secret"),
])
def test_wrong_credentials_fail_authentication(sec, mechanism, user, password):
    errors = []
    p = Producer({"bootstrap.servers": sec.addr("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
                  "error_cb": errors.append})
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    assert errors, "no error reported"
    assert any("Authentication" in e.str() or "authentication" in e.str() for e in errors), errors
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError as KPError
    with pytest.raises(KPError):
        KafkaConsumer(bootstrap_servers=[sec.addr("SASL_PLAINTEXT")], security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password,
                      bootstrap_timeout_ms=3000)


# ---- raw protocol: what a broken or hostile client gets ----

def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, version, body, correlation_id=7):
    payload = struct.pack(">hhi", api_key, version, correlation_id) + _str("raw") + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_request():
    return request(18, 0, b"")


def sasl_handshake(mechanism):
    return request(17, 1, _str(mechanism))


def sasl_authenticate(token):
    return request(36, 0, struct.pack(">i", len(token)) + token)


def metadata_request():
    return request(3, 0, struct.pack(">i", 0))


def read_frame(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">i", head)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def closed_within(s, seconds):
    """True once the peer closes (EOF or reset) within `seconds`."""
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def assert_broker_serves(sec):
    with socket.create_connection(("127.0.0.1", sec.ports["PLAINTEXT"]), timeout=10) as s:
        s.sendall(api_versions_request())
        assert read_frame(s) is not None


def test_requests_before_authentication_close_the_connection(sec):
    with socket.create_connection(("127.0.0.1", sec.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        # ApiVersions is served before authentication
        s.sendall(api_versions_request())
        assert read_frame(s) is not None
        s.sendall(metadata_request())
        assert closed_within(s, 10)
    assert_broker_serves(sec)


def test_unknown_mechanism_is_refused(sec):
    with socket.create_connection(("127.0.0.1", sec.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(sasl_handshake("GSSAPI"))
        resp = read_frame(s)
        assert resp is not None
        corr, error = struct.unpack(">ih", resp[:6])
        assert (corr, error) == (7, 33)  # UNSUPPORTED_SASL_MECHANISM
        assert b"SCRAM-SHA-512" in resp
        assert closed_within(s, 10)
    assert_broker_serves(sec)


@pytest.mark.parametrize("mechanism,token", [
    ("PLAIN", b"\x00alice\x00wrong"),
    ("PLAIN", os.urandom(64)),
    ("SCRAM-SHA-256", b"garbage"),
    ("SCRAM-SHA-512", os.urandom(300)),
    ("OAUTHBEARER", b"n,,\x01auth=Bearer not.a.jwt\x01\x01"),
])
def test_garbage_sasl_tokens_fail_with_sasl_authentication_failed(sec, mechanism, token):
    with socket.create_connection(("127.0.0.1", sec.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(sasl_handshake(mechanism))
        assert struct.unpack(">ih", read_frame(s)[:6]) == (7, 0)
        s.sendall(sasl_authenticate(token))
        resp = read_frame(s)
        assert resp is not None
        corr, error = struct.unpack(">ih", resp[:6])
        assert (corr, error) == (7, 58)  # SASL_AUTHENTICATION_FAILED
        assert closed_within(s, 10)
    assert_broker_serves(sec)


def test_truncated_and_garbage_handshakes_leave_the_broker_serving(sec):
    # a SASL frame cut short, garbage where a TLS ClientHello should be
    with socket.create_connection(("127.0.0.1", sec.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(sasl_handshake("PLAIN")[:9])
    for listener in ("SSL", "SASL_SSL"):
        with socket.create_connection(("127.0.0.1", sec.ports[listener]), timeout=10) as s:
            s.sendall(os.urandom(512))
            assert closed_within(s, 10)
        with socket.create_connection(("127.0.0.1", sec.ports[listener]), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x40" + b"\x01" * 10)  # a ClientHello cut short
    assert_broker_serves(sec)


@pytest.mark.parametrize("listener", ["SSL", "SASL_PLAINTEXT"])
def test_a_stalled_handshake_is_closed_after_the_timeout(sec, listener):
    with socket.create_connection(("127.0.0.1", sec.ports[listener]), timeout=10) as s:
        if listener == "SASL_PLAINTEXT":
            s.sendall(sasl_handshake("PLAIN"))
            assert read_frame(s) is not None
        # nothing more: the broker's 10 s handshake timeout closes it
        assert closed_within(s, 30)
    assert_broker_serves(sec)


def test_sasl_requests_on_a_plaintext_listener_get_illegal_sasl_state(sec):
    with socket.create_connection(("127.0.0.1", sec.ports["PLAINTEXT"]), timeout=10) as s:
        s.sendall(sasl_handshake("PLAIN"))
        corr, error = struct.unpack(">ih", read_frame(s)[:6])
        assert (corr, error) == (7, 34)  # ILLEGAL_SASL_STATE


def test_kcat_over_ssl_and_sasl_ssl(sec, sec_topic):
    import shutil
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        pytest.skip("kcat not installed")
    produce = subprocess.run(
        [kcat, "-b", sec.addr("SASL_SSL"), "-X", "security.protocol=SASL_SSL",
         "-X", f"ssl.ca.location={sec.pki.ca_file}", "-X", "sasl.mechanisms=SCRAM-SHA-256",
         "-X", "sasl.username=scram-user", "-X", "sasl.password=scram-secret",
         "-t", sec_topic, "-P"],
        input=b"one\ntwo\n", capture_output=True, timeout=60)
    assert produce.returncode == 0, produce.stderr
    consume = subprocess.run(
        [kcat, "-b", sec.addr("MTLS"), "-X", "security.protocol=SSL",
         "-X", f"ssl.ca.location={sec.pki.ca_file}",
         "-X", f"ssl.certificate.location={sec.alice_cert}",
         "-X", f"ssl.key.location={sec.alice_key}",
         "-t", sec_topic, "-C", "-o", "beginning", "-e", "-q"],
        capture_output=True, timeout=60)
    assert consume.returncode == 0, consume.stderr
    assert consume.stdout.split() == [b"one", b"two"]
