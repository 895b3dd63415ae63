"""Topic-level compression.type: the broker recompresses what producers
send into the topic's codec, and both client families read it back."""

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from test_clients import ck_read_all, kp_read_all


def stored_codecs(bootstrap, topic):
    """Codec ids of the stored batches, from a raw Fetch (attributes bits 0-2)."""
    import socket
    import struct
    host, port = bootstrap.rsplit(":", 1)
    name = topic.encode()
    # Fetch v4: replica, max_wait, min_bytes, max_bytes, isolation, topics[name, partitions[p, offset, max]]
    body = struct.pack(">iiiib", -1, 100, 1, 10_000_000, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 10_000_000)
    hdr = struct.pack(">hhi", 1, 4, 7) + struct.pack(">h", 2) + b"py"
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        msg = hdr + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        buf = b""
        while len(buf) < size:
            buf += s.recv(size - len(buf))
    finally:
        s.close()
    # corr, throttle, topics(1), name, partitions(1), p, err, hw, lso, aborted(-1 or n), records
    pos = 4 + 4 + 4
    (nlen,) = struct.unpack_from(">h", buf, pos)
    pos += 2 + nlen + 4
    pos += 4 + 2 + 8 + 8
    (aborted,) = struct.unpack_from(">i", buf, pos)
    pos += 4 + max(aborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", buf, pos)
    pos += 4
    records, codecs, i = buf[pos:pos + rlen], set(), 0
    while i + 61 <= len(records):
        (blen,) = struct.unpack_from(">i", records, i + 8)
        (attrs,) = struct.unpack_from(">h", records, i + 21)
        codecs.add(attrs & 7)
        i += 12 + blen
    return codecs


@pytest.mark.parametrize("codec,codec_id", [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)])
def test_topic_codec_is_applied_and_readable_by_both_clients(bootstrap, codec, codec_id):
    name = f"py-tcodec-{codec}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config={"compression.type": codec})])[name].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": "none", "linger.ms": 20})
    values = [f"{codec} record {i} ".encode() * (1 + i % 5) for i in range(300)]
    for v in values:
        p.produce(name, v, key=b"k", partition=0)
    assert p.flush(30) == 0
    assert stored_codecs(bootstrap, name) == {codec_id}
    assert [m.value() for m in ck_read_all(bootstrap, name, [0], len(values))] == values
    assert [r.value for r in kp_read_all(bootstrap, name, [0], len(values))] == values
