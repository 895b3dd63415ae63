"""ACLs with real clients (confluent-kafka / librdkafka) over SASL PLAIN
users: CreateAcls / DescribeAcls / DeleteAcls through AdminClient, and an
authorization matrix (a principal with and without the ACL an API needs
gets success or Kafka's authorization error), DENY over ALLOW, PREFIXED
patterns, super users, Metadata filtering, auto-creation, the audit log,
and ACLs surviving a restart (they live in the metadata log)."""

import os
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

from conftest import ROOT, _free_port, read_exactly

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret";')


class AclBroker:
    """One broker with the StandardAuthorizer: a SASL_PLAINTEXT listener
    for the users and a PLAINTEXT one whose ANONYMOUS principal is a super
    user (how the inter-broker listener is set up on PLAINTEXT)."""

    def __init__(self, **extra):
        self.bin = os.environ.get("OXKA_BIN", os.path.join(ROOT, "target", "debug", "oxka"))
        self.dir = tempfile.mkdtemp(prefix="oxka-pytest-acl-")
        self.sasl_port, self.plain_port = _free_port(), _free_port()
        props = {
            "listeners": f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
                         f"PLAINTEXT://127.0.0.1:{self.plain_port}",
            "security.inter.broker.protocol": "PLAINTEXT",
            "log.dirs": os.path.join(self.dir, "data"),
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:ANONYMOUS",
            **extra,
        }
        self.config = os.path.join(self.dir, "server.properties")
        with open(self.config, "w") as f:
            for k, v in props.items():
                f.write(f"{k}={v}\n")
        self.log = os.path.join(self.dir, "broker.log")
        self.proc = None

    def start(self):
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [self.bin, "broker", "-c", self.config,
                 "--log-level", "warn,kafka.authorizer.logger=info"],
                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert "started" in line, f"broker did not start: {line!r}"

    def kill9(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def conf(self, user):
        return {"bootstrap.servers": f"127.0.0.1:{self.sasl_port}",
                "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": user, "sasl.password": f"{user}-secret"}

    def admin(self, user="admin"):
        return AdminClient(self.conf(user))


@pytest.fixture(scope="module")
def acl_broker():
    b = AclBroker()
    b.start()
    yield b
    b.kill9()


def uniq(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def create_topic(b, name):
    admin = b.admin()  # alive until the futures are done
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)


def allow(principal, rtype, name, op, pattern=ResourcePatternType.LITERAL,
          perm=AclPermissionType.ALLOW):
    return AclBinding(rtype, name, pattern, principal, "*", op, perm)


def create_acls(b, bindings, user="admin"):
    admin = b.admin(user)  # alive until the futures are done
    for f in admin.create_acls(bindings).values():
        f.result(timeout=30)


def produce(b, user, topic):
    """The delivery error of one record, or None."""
    errors = []
    p = Producer({**b.conf(user), "message.timeout.ms": 10000,
                  "on_delivery": lambda err, msg: errors.append(err)})
    p.produce(topic, value=b"v")
    p.flush(20)
    return errors[0] if errors else "no delivery report"


def consume_one(b, user, topic, group):
    """The first record's value, or the first error's code."""
    c = Consumer({**b.conf(user), "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() in (KafkaError._PARTITION_EOF,):
                    continue
                return m.error().code()
            return m.value()
        return None
    finally:
        c.close()


def test_acl_admin_round_trip_and_cluster_authorization(acl_broker):
    b = acl_broker
    t = uniq("rt-")
    bindings = [
        allow("User:alice", ResourceType.TOPIC, t, AclOperation.READ),
        allow("User:alice", ResourceType.TOPIC, t + "-", AclOperation.WRITE, ResourcePatternType.PREFIXED),
        allow("User:bob", ResourceType.GROUP, t, AclOperation.ALL, perm=AclPermissionType.DENY),
    ]
    create_acls(b, bindings)
    # creating the same ACL again succeeds without a duplicate
    create_acls(b, bindings[:1])
    admin = b.admin()
    topic_filter = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.MATCH, None, None,
                                    AclOperation.ANY, AclPermissionType.ANY)
    got = admin.describe_acls(topic_filter).result(timeout=30)
    assert sorted((a.name, a.operation, a.resource_pattern_type) for a in got) == sorted([
        (t, AclOperation.READ, ResourcePatternType.LITERAL)])
    got = admin.describe_acls(AclBindingFilter(ResourceType.TOPIC, t + "-x", ResourcePatternType.MATCH,
                                               None, None, AclOperation.ANY,
                                               AclPermissionType.ANY)).result(timeout=30)
    assert [(a.name, a.operation) for a in got] == [(t + "-", AclOperation.WRITE)]
    any_t = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:bob", None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert [a.name for a in admin.describe_acls(any_t).result(timeout=30) if a.name == t] == [t]
    # alice is no super user: the ACL APIs need DESCRIBE / ALTER on the cluster
    # (librdkafka drops DescribeAcls' top-level error: kafka-python reads it)
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import ClusterAuthorizationFailedError
    kp = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{b.sasl_port}",
                          security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_plain_username="alice", sasl_plain_password="alice-secret")
    with pytest.raises(ClusterAuthorizationFailedError):
        kp.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                   ResourcePatternFilter(KpResourceType.ANY, None,
                                                         ACLResourcePatternType.ANY)))
    kp.close()
    with pytest.raises(KafkaException, match="CLUSTER_AUTHORIZATION_FAILED"):
        create_acls(b, bindings[:1], user="alice")
    # an invalid binding: MATCH is a filter's pattern type only
    with pytest.raises(Exception):
        bad = AclBinding(ResourceType.TOPIC, t, ResourcePatternType.MATCH, "User:x", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
        list(admin.create_acls([bad]).values())[0].result(timeout=30)
    deleted = admin.delete_acls([topic_filter, any_t])
    removed = {f: fut.result(timeout=30) for f, fut in deleted.items()}
    assert len(removed[topic_filter]) == 1
    assert t in [a.name for a in removed[any_t]]
    assert admin.describe_acls(topic_filter).result(timeout=30) == []


def test_produce_consume_matrix_deny_and_prefix(acl_broker):
    b = acl_broker
    pre = uniq("pay-")
    topic, secret = pre + "-eu", pre + "-secret"
    group = uniq("g-")
    for name in (topic, secret):
        create_topic(b, name)
    # no ACL: alice can neither write nor read
    err = produce(b, "alice", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    create_acls(b, [
        allow("User:alice", ResourceType.TOPIC, pre, AclOperation.WRITE, ResourcePatternType.PREFIXED),
        allow("User:alice", ResourceType.TOPIC, pre, AclOperation.READ, ResourcePatternType.PREFIXED),
        allow("User:alice", ResourceType.TOPIC, secret, AclOperation.READ, perm=AclPermissionType.DENY),
    ])
    assert produce(b, "alice", topic) is None
    assert produce(b, "alice", secret) is None
    # READ on the topic but not on the group
    assert consume_one(b, "alice", topic, group) == KafkaError.GROUP_AUTHORIZATION_FAILED
    create_acls(b, [allow("User:alice", ResourceType.GROUP, group, AclOperation.READ)])
    assert consume_one(b, "alice", topic, group) == b"v"
    # DENY wins over the prefixed ALLOW
    assert consume_one(b, "alice", secret, group) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # bob has nothing; admin is a super user
    assert produce(b, "bob", topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(b, "admin", secret) is None
    # the denial is in the audit log with principal, operation, resource, host
    with open(b.log) as f:
        log = f.read()
    assert f"Principal = User:bob is Denied operation = DESCRIBE from host = 127.0.0.1 on resource = Topic:LITERAL:{topic} for request = Metadata" in log


def test_metadata_filtering_and_topic_creation(acl_broker):
    b = acl_broker
    mine, other = uniq("mine-"), uniq("other-")
    for name in (mine, other):
        create_topic(b, name)
    create_acls(b, [allow("User:bob", ResourceType.TOPIC, mine, AclOperation.DESCRIBE)])
    bob = b.admin("bob")
    topics = bob.list_topics(timeout=20).topics
    assert mine in topics and other not in topics
    # CreateTopics needs CREATE on the cluster or the topic
    new = uniq("bob-")
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        bob.create_topics([NewTopic(new, 1, 1)])[new].result(timeout=30)
    create_acls(b, [allow("User:bob", ResourceType.TOPIC, "bob-", AclOperation.CREATE,
                          ResourcePatternType.PREFIXED)])
    bob.create_topics([NewTopic(new, 1, 1)])[new].result(timeout=30)
    # deleting needs DELETE
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        bob.delete_topics([mine])[mine].result(timeout=30)


def kp_admin(b, user):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{b.sasl_port}",
                            security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                            sasl_plain_username=user, sasl_plain_password=f"{user}-secret")


def test_create_topics_returns_configs_only_with_describe_configs(acl_broker):
    """Kafka's controller returns a new topic's configs, partition count and
    replication factor only to a principal with DESCRIBE_CONFIGS on it;
    otherwise TOPIC_AUTHORIZATION_FAILED in topic_config_error_code (the
    topic is created all the same)."""
    b = acl_broker
    pre = uniq("cfgs-")
    create_acls(b, [allow("User:bob", ResourceType.TOPIC, pre, AclOperation.CREATE,
                          ResourcePatternType.PREFIXED)])
    kp = kp_admin(b, "bob")
    try:
        (t,) = kp.create_topics({pre + "a": {"num_partitions": 2}})["topics"]
        assert (t["error_code"], t["topic_config_error_code"]) == (0, 29), t
        assert (t["num_partitions"], t["replication_factor"]) == (-1, -1), t
        assert not t.get("configs"), t
        create_acls(b, [allow("User:bob", ResourceType.TOPIC, pre, AclOperation.DESCRIBE_CONFIGS,
                              ResourcePatternType.PREFIXED)])
        (t,) = kp.create_topics({pre + "b": {"num_partitions": 2}})["topics"]
        assert (t["error_code"], t["topic_config_error_code"]) == (0, 0), t
        assert t["num_partitions"] == 2 and "retention.ms" in t["configs"], t
    finally:
        kp.close()


def _uvarint(n):
    out = b""
    while True:
        b7 = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b7 | 0x80])
        else:
            return out + bytes([b7])


def _compact_str(v):
    if v is None:
        return _uvarint(0)
    b = v.encode()
    return _uvarint(len(b) + 1) + b


def _sasl_plain_socket(b, user, group=None):
    """A raw connection to the SASL listener, authenticated as `user`
    (and the coordinator of `group` found)."""
    import socket
    import struct
    call = _call
    sock = socket.create_connection(("127.0.0.1", b.sasl_port), timeout=30)
    r = call(sock, 17, 1, struct.pack(">h", 5) + b"PLAIN", 1)
    assert struct.unpack(">h", r[0:2])[0] == 0
    token = f"\0{user}\0{user}-secret".encode()
    r = call(sock, 36, 0, struct.pack(">i", len(token)) + token, 2)
    assert struct.unpack(">h", r[0:2])[0] == 0
    if group is not None:
        # FindCoordinator v0 until the group's coordinator is loaded
        deadline = time.monotonic() + 30
        while True:
            r = call(sock, 10, 0, struct.pack(">h", len(group)) + group.encode(), 3)
            if struct.unpack(">h", r[0:2])[0] == 0:
                break
            assert time.monotonic() < deadline, "no coordinator"
            time.sleep(0.1)
    return sock


def _call(sock, api_key, version, body, corr, flexible=False):
    """One request (header v1, or v2 when `flexible`); the response after
    its correlation id (and, flexible, its header's tagged fields)."""
    import struct
    hdr = struct.pack(">hhi", api_key, version, corr) + struct.pack(">h", 2) + b"py"
    if flexible:
        hdr += _uvarint(0)
    sock.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
    size = struct.unpack(">i", read_exactly(sock, 4))[0]
    return read_exactly(sock, size)[5 if flexible else 4:]


def _consumer_group_heartbeat(sock, group, member_id, topics, corr):
    """ConsumerGroupHeartbeat v0 (a join: epoch 0); the response's error code."""
    import struct
    body = (_compact_str(group) + _compact_str(member_id) + struct.pack(">i", 0)
            + _uvarint(0) + _uvarint(0) + struct.pack(">i", 30000)
            + _uvarint(len(topics) + 1) + b"".join(_compact_str(t) for t in topics)
            + _uvarint(0) + _uvarint(1) + _uvarint(0))
    resp = _call(sock, 68, 0, body, corr, flexible=True)
    # throttle time, then the error code
    return struct.unpack(">h", resp[4:6])[0]


def test_kip848_heartbeat_and_describe_need_describe_on_the_topics(acl_broker):
    """KAFKA-18813: ConsumerGroupHeartbeat fails with TOPIC_AUTHORIZATION_FAILED
    when a subscribed topic is not describable by the member; a KIP-848
    group is described only to a caller who may describe every topic its
    members are assigned."""
    b = acl_broker
    ok, hidden, group = uniq("hb-ok-"), uniq("hb-hidden-"), uniq("hb-g-")
    for name in (ok, hidden):
        create_topic(b, name)
    create_acls(b, [allow("User:alice", ResourceType.GROUP, group, AclOperation.READ),
                    allow("User:alice", ResourceType.TOPIC, ok, AclOperation.READ),
                    allow("User:bob", ResourceType.GROUP, group, AclOperation.DESCRIBE)])
    sock = _sasl_plain_socket(b, "alice", group)
    try:
        member = uuid.uuid4().hex[:22]
        assert _consumer_group_heartbeat(sock, group, member, [ok, hidden], 3) == \
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        deadline = time.monotonic() + 30
        # the coordinator may still be loading the group's partition
        while (err := _consumer_group_heartbeat(sock, group, member, [ok], 4)) in (14, 16):
            assert time.monotonic() < deadline, err
            time.sleep(0.1)
        assert err == 0
        # bob may describe the group but not the topic its member is assigned
        bob = b.admin("bob")
        (fut,) = bob.describe_consumer_groups([group]).values()
        with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
            fut.result(timeout=30)
        create_acls(b, [allow("User:bob", ResourceType.TOPIC, ok, AclOperation.DESCRIBE)])
        (fut,) = bob.describe_consumer_groups([group]).values()
        assert [m.member_id for m in fut.result(timeout=30).members] == [member]
    finally:
        sock.close()


def test_elect_leaders_v0_refused_per_partition(acl_broker):
    """ElectLeaders v0 (advertised, as Kafka does) has no top-level error:
    a caller without ALTER on the cluster gets CLUSTER_AUTHORIZATION_FAILED
    on each partition asked for."""
    import struct
    b = acl_broker
    t = uniq("elect-")
    create_topic(b, t)
    sock = _sasl_plain_socket(b, "bob")
    try:
        body = (struct.pack(">i", 1) + struct.pack(">h", len(t)) + t.encode()
                + struct.pack(">ii", 1, 0) + struct.pack(">i", 30000))
        r = _call(sock, 43, 0, body, 5)
        # throttle, 1 topic, its name, 1 partition: id and error code
        n = struct.unpack(">h", r[8:10])[0]
        assert r[10:10 + n].decode() == t
        count, pid, err = struct.unpack(">iih", r[10 + n:20 + n])
        assert (count, pid, err) == (1, 0, KafkaError.CLUSTER_AUTHORIZATION_FAILED)
        assert struct.unpack(">i", r[4:8])[0] == 1
    finally:
        sock.close()


def test_describe_transactions_shows_only_describable_topics(acl_broker):
    """DescribeTransactions lists only the partitions of topics the caller
    may describe (Kafka's KafkaApis)."""
    b = acl_broker
    seen, hidden, txn = uniq("txn-seen-"), uniq("txn-hidden-"), uniq("txn-")
    for name in (seen, hidden):
        create_topic(b, name)
    p = Producer({**b.conf("admin"), "transactional.id": txn})
    p.init_transactions(30)
    p.begin_transaction()
    for name in (seen, hidden):
        p.produce(name, value=b"v")
    p.flush(30)
    create_acls(b, [allow("User:bob", ResourceType.TRANSACTIONAL_ID, txn, AclOperation.DESCRIBE),
                    allow("User:bob", ResourceType.TOPIC, seen, AclOperation.DESCRIBE)])
    kp = kp_admin(b, "bob")
    try:
        d = kp.describe_transactions([txn])[txn]
        assert {tp.topic for tp in d.topic_partitions} == {seen}
        admin = kp_admin(b, "admin")
        d = admin.describe_transactions([txn])[txn]
        admin.close()
        assert {tp.topic for tp in d.topic_partitions} == {seen, hidden}
    finally:
        kp.close()
        p.abort_transaction(30)


def test_acls_survive_a_restart(acl_broker):
    b = acl_broker
    t = uniq("durable-")
    create_topic(b, t)
    create_acls(b, [allow("User:bob", ResourceType.TOPIC, t, AclOperation.WRITE)])
    b.kill9()
    b.start()
    f = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None,
                         AclOperation.ANY, AclPermissionType.ANY)
    admin = b.admin()
    deadline = time.monotonic() + 30
    while True:
        try:
            got = admin.describe_acls(f).result(timeout=10)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert [(a.principal, a.operation) for a in got] == [("User:bob", AclOperation.WRITE)]
    assert produce(b, "bob", t) is None


def oxka_acls(b):
    """`oxka acls ...` as the admin user over SASL PLAIN (--command-config):
    its stdout; `ok=False` expects a refusal."""
    props = os.path.join(b.dir, "admin.properties")
    with open(props, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                'username="admin" password="admin-secret";\n')

    def oxka(*args, ok=True):
        out = subprocess.run([b.bin, "acls", *args, "-b", f"127.0.0.1:{b.sasl_port}",
                              "--command-config", props], capture_output=True, text=True, timeout=60)
        assert (out.returncode == 0) == ok, out.stderr
        return out.stdout
    return oxka


def test_oxka_acls_cli(acl_broker):
    """`oxka acls create|list|delete` with kafka-acls.sh's flags, as the
    admin user over SASL PLAIN (--command-config)."""
    b = acl_broker
    pre = uniq("cli-")
    oxka = oxka_acls(b)

    oxka("create", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write",
         "--topic", pre, "--resource-pattern-type", "prefixed")
    oxka("create", "--deny-principal", "User:bob", "--operation", "All", "--group", pre)
    listed = json_rows(oxka("list", "--topic", pre + "x", "--resource-pattern-type", "match", "--output", "json"))
    assert sorted((r["operation"], r["pattern_type"]) for r in listed) == [
        ("READ", "PREFIXED"), ("WRITE", "PREFIXED")]
    # an AdminClient sees the same bindings
    f = AclBindingFilter(ResourceType.GROUP, pre, ResourcePatternType.LITERAL, None, None,
                         AclOperation.ANY, AclPermissionType.ANY)
    admin = b.admin()
    got = admin.describe_acls(f).result(timeout=30)
    assert [(a.principal, a.permission_type) for a in got] == [("User:bob", AclPermissionType.DENY)]
    oxka("delete", "--topic", pre, "--resource-pattern-type", "prefixed")
    assert json_rows(oxka("list", "--topic", pre, "--resource-pattern-type", "prefixed", "--output", "json")) == []


def test_oxka_acls_cli_delete_and_list_filters(acl_broker):
    """kafka-acls.sh's --remove rules: exactly the entries the principal,
    host and operation flags name (host default `*`, operation default
    All), every ACL of the resource without principals, a resource
    required; --list narrows by --principal."""
    b = acl_broker
    t = uniq("clidel-")
    oxka = oxka_acls(b)

    def listed(*extra):
        return sorted((r["principal"], r["host"], r["operation"], r["permission_type"])
                      for r in json_rows(oxka("list", "--topic", t, *extra, "--output", "json")))

    oxka("create", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write",
         "--topic", t)
    oxka("create", "--allow-principal", "User:alice", "--allow-host", "10.0.0.1",
         "--operation", "Read", "--topic", t)
    oxka("create", "--deny-principal", "User:bob", "--operation", "Read", "--topic", t)
    assert listed("--principal", "User:bob") == [("User:bob", "*", "READ", "DENY")]
    # alice's READ from any host only: not her READ from 10.0.0.1, not WRITE
    oxka("delete", "--allow-principal", "User:alice", "--operation", "Read", "--topic", t)
    assert listed() == [("User:alice", "*", "WRITE", "ALLOW"),
                        ("User:alice", "10.0.0.1", "READ", "ALLOW"),
                        ("User:bob", "*", "READ", "DENY")]
    oxka("delete", "--allow-principal", "User:alice", "--allow-host", "10.0.0.1",
         "--operation", "Read", "--topic", t)
    # the default operation is All: alice's WRITE stays
    oxka("delete", "--allow-principal", "User:alice", "--topic", t)
    oxka("delete", "--deny-principal", "User:bob", "--operation", "Read", "--topic", t)
    assert listed() == [("User:alice", "*", "WRITE", "ALLOW")]
    # a resource is required; --principal is for list only
    oxka("delete", "--allow-principal", "User:alice", ok=False)
    oxka("delete", "--principal", "User:alice", "--topic", t, ok=False)
    oxka("delete", "--topic", t)
    assert listed() == []


def json_rows(text):
    import json
    return json.loads(text)


def test_allow_everyone_if_no_acl_found():
    """With allow.everyone.if.no.acl.found=true a resource no ACL names is
    open to all; the first ACL on it closes it to everyone else."""
    b = AclBroker(**{"allow.everyone.if.no.acl.found": "true"})
    b.start()
    try:
        t = uniq("open-")
        create_topic(b, t)
        assert produce(b, "bob", t) is None
        create_acls(b, [allow("User:alice", ResourceType.TOPIC, t, AclOperation.WRITE)])
        assert produce(b, "bob", t).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert produce(b, "alice", t) is None
    finally:
        b.kill9()
