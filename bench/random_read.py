#!/usr/bin/env python3
"""Latency of Fetch requests at random old offsets of one partition.

Issue 7's "constant-time access" row: a fetch of a random offset must
cost the same in a 10 GB log of 1 GiB segments as in a 100 MB log, which
holds when finding the segment (a sorted map) and the position in it (the
sparse offset index, then a short scan) does not grow with the log. Each
fetch is a plain Fetch v4 for one partition, one in flight, with a small
partition limit so that the bytes moved are the same for both logs.

    bench/random_read.py HOST:PORT TOPIC END_OFFSET [FETCHES] [SEED]

Prints one line: fetches, p50, p99, p99.9, mean in microseconds. Exits 1
on a fetch error or an empty answer.
"""

import random
import socket
import struct
import sys
import time

from fetch_load import fetch_request, recv_exact

PARTITION_MAX_BYTES = 16384


def fetch_once(sock, view, correlation_id, topic, offset):
    sock.sendall(fetch_request(correlation_id, topic, 0, offset, PARTITION_MAX_BYTES))
    recv_exact(sock, view, 4)
    (size,) = struct.unpack_from(">i", view, 0)
    recv_exact(sock, view, size)
    # v4 response: correlation id, throttle, topics[1]: name, partitions[1]:
    # partition, error code, ...
    (name_len,) = struct.unpack_from(">h", view, 12)
    pos = 14 + name_len + 4
    _partition, error = struct.unpack_from(">ih", view, pos)
    records_len_pos = pos + 6 + 8 + 8
    (aborted,) = struct.unpack_from(">i", view, records_len_pos)
    records_len_pos += 4 + max(aborted, 0) * 16
    (records_len,) = struct.unpack_from(">i", view, records_len_pos)
    return error, records_len


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    topic, end = sys.argv[2], int(sys.argv[3])
    fetches = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 7)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    view = memoryview(bytearray(4 << 20))
    lat = []
    for i in range(fetches):
        offset = rng.randrange(0, end)
        t0 = time.perf_counter()
        error, got = fetch_once(sock, view, i, topic, offset)
        lat.append((time.perf_counter() - t0) * 1e6)
        if error != 0 or got <= 0:
            sys.exit(f"fetch at offset {offset}: error {error}, {got} record bytes")
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"{fetches} fetches, p50 {q(0.5):.0f} us, p99 {q(0.99):.0f} us, "
          f"p99.9 {q(0.999):.0f} us, mean {sum(lat) / len(lat):.0f} us")


if __name__ == "__main__":
    main()
