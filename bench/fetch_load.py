#!/usr/bin/env python3
"""A raw Fetch load that does as little client work as possible.

`oxka perf consume` and kcat decode every record, and on a 2-core machine
that client CPU competes with the broker, so their figures mix both. This
loop sends plain Fetch v4 requests for one partition (one in flight, like
a consumer), receives each response into one reused buffer and only walks
the batch headers to find the next offset. What it measures is close to
the broker's fetch path plus the loopback copy.

    bench/fetch_load.py HOST:PORT TOPIC PARTITION END_OFFSET [PARTITION_MAX_BYTES]

Prints one line: bytes of record batches received, seconds, MiB/s,
fetches. Exits 1 on a fetch error.
"""

import socket
import struct
import sys
import time


def fetch_request(correlation_id, topic, partition, offset, max_bytes):
    client = b"fetch-load"
    header = struct.pack(">hhih", 1, 4, correlation_id, len(client)) + client
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 500, 1, max_bytes, 0)
    body += struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iiqi", 1, partition, offset, max_bytes)
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def recv_exact(sock, view, n):
    got = 0
    while got < n:
        k = sock.recv_into(view[got:n])
        if k == 0:
            raise EOFError("broker closed the connection")
        got += k


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    topic, partition, end = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    max_bytes = int(sys.argv[5]) if len(sys.argv) > 5 else 1 << 20
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(max_bytes + (1 << 20))
    view = memoryview(buf)
    size_buf = bytearray(4)
    offset, total, fetches = 0, 0, 0
    t0 = time.perf_counter()
    while offset < end:
        fetches += 1
        sock.sendall(fetch_request(fetches, topic, partition, offset, max_bytes))
        recv_exact(sock, memoryview(size_buf), 4)
        (size,) = struct.unpack(">i", size_buf)
        if size > len(buf):
            buf = bytearray(size)
            view = memoryview(buf)
        recv_exact(sock, view, size)
        # correlation id, throttle, topics count, topic name, partitions count
        pos = 4 + 4 + 4
        (name_len,) = struct.unpack_from(">h", buf, pos)
        pos += 2 + name_len + 4
        _, error = struct.unpack_from(">ih", buf, pos)
        if error != 0:
            print(f"fetch error {error} at offset {offset}", file=sys.stderr)
            sys.exit(1)
        pos += 4 + 2 + 8 + 8
        (aborted,) = struct.unpack_from(">i", buf, pos)
        pos += 4 + max(aborted, 0) * 16
        (rec_len,) = struct.unpack_from(">i", buf, pos)
        pos += 4
        stop = pos + max(rec_len, 0)
        while pos + 61 <= stop:
            base, length = struct.unpack_from(">qi", buf, pos)
            if pos + 12 + length > stop:
                break
            (delta,) = struct.unpack_from(">i", buf, pos + 23)
            offset = base + delta + 1
            pos += 12 + length
        total += max(rec_len, 0)
    secs = time.perf_counter() - t0
    print(f"{total} bytes, {secs:.3f} s, {total / secs / 1048576:.1f} MiB/s, {fetches} fetches")


if __name__ == "__main__":
    main()
