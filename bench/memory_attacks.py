#!/usr/bin/env python3
"""Peak RSS (VmHWM) of an oxka broker under the memory attacks of issue 11.

    python3 bench/memory_attacks.py [--bin target/debug/oxka] [attack...]

Attacks (each on a fresh broker and data dir, so each peak is its own):
  idle     start, one ApiVersions, nothing else (the baseline)
  bomb     8 connections in parallel each produce one gzip batch of about
           255 KiB that inflates to 255 MiB (one record of zeros)
  recompress  the same bombs to a topic with compression.type=lz4, so the
           broker re-encodes each batch
  partial  40 connections each declare a 100 MiB request
           (socket.request.max.bytes) and send 16 MiB of it, then stall

Only the standard library: requests are encoded by hand (CreateTopics v2,
Produce v3, ApiVersions v0), CRC-32C in Python. Prints one line per attack:
attack, VmHWM after it in MiB, and what the clients saw.
"""

import argparse
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib

MIB = 1 << 20


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def gzip_bomb_batch(value_len):
    """One record (key "k", value_len zero bytes) in a gzip batch, compressed
    as a stream."""
    head = b"\x00" + varint(0) + varint(0) + varint(1) + b"k" + varint(value_len)
    record_len = len(head) + value_len + 1
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [comp.compress(varint(record_len) + head)]
    zeros = bytes(MIB)
    left = value_len
    while left:
        n = min(left, MIB)
        parts.append(comp.compress(zeros[:n]))
        left -= n
    parts.append(comp.compress(b"\x00"))
    parts.append(comp.flush())
    payload = b"".join(parts)
    ts = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 1, 0, ts, ts, -1, -1, -1, 1) + payload
    batch_length = 4 + 1 + 4 + len(after_crc)
    return (struct.pack(">qiib", 0, batch_length, -1, 2)
            + struct.pack(">I", crc32c(after_crc)) + after_crc)


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, version, corr, body):
    frame = struct.pack(">hhi", api_key, version, corr) + string("attack") + body
    return struct.pack(">i", len(frame)) + frame


def read_response(sock):
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    return recv_exact(sock, size)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def create_topic(addr, name, configs=()):
    body = (struct.pack(">i", 1) + string(name) + struct.pack(">ihi", 1, 1, 0)
            + struct.pack(">i", len(configs))
            + b"".join(string(k) + string(v) for k, v in configs)
            + struct.pack(">ib", 30000, 0))
    with socket.create_connection(addr, timeout=60) as s:
        s.sendall(request(19, 2, 1, body))
        read_response(s)


def produce(addr, topic, batch):
    body = (struct.pack(">hhi", -1, 1, 30000) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + batch)
    with socket.create_connection(addr, timeout=300) as s:
        s.sendall(request(0, 3, 2, body))
        resp = read_response(s)
    # corr id, topics[1], name, partitions[1], index, error code
    pos = 4 + 4
    (n,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + n + 4 + 4
    return struct.unpack_from(">h", resp, pos)[0]


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Broker:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="oxka-memattack-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [binary, "broker", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir,
             "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        assert "started" in line, line
        self.addr = ("127.0.0.1", self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(self.addr, timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "broker does not listen"
                time.sleep(0.05)

    def hwm(self):
        return vm_hwm_mib(self.proc.pid)

    def alive(self):
        try:
            with socket.create_connection(self.addr, timeout=30) as s:
                s.sendall(request(18, 0, 3, b""))
                read_response(s)
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["rm", "-rf", self.dir], check=False)


def attack_idle(b):
    return "served" if b.alive() else "not served"


def attack_bomb(b, configs=()):
    create_topic(b.addr, "bombs", configs)
    batch = gzip_bomb_batch(255 * MIB)
    codes = []
    threads = [threading.Thread(target=lambda: codes.append(produce(b.addr, "bombs", batch)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return f"batch {len(batch) // 1024} KiB on the wire; error codes {sorted(codes)}"


def attack_recompress(b):
    return attack_bomb(b, [("compression.type", "lz4")])


def attack_partial(b):
    declared, sent, conns = 100 * MIB, 16 * MIB, 40
    done = []

    def one():
        s = socket.create_connection(b.addr, timeout=10)
        try:
            s.sendall(struct.pack(">i", declared) + struct.pack(">hhi", 0, 3, 1))
            chunk = bytes(MIB)
            n = 0
            while n < sent:
                s.sendall(chunk)
                n += MIB
            done.append(n)
        except OSError:
            done.append(-1)  # the broker stopped reading: throttled
        finally:
            threading.Event().wait(3)  # hold the partial request a moment
            s.close()

    threads = [threading.Thread(target=one) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    full = sum(1 for d in done if d == sent)
    return f"{full}/{conns} connections could send {sent // MIB} MiB, the rest were throttled"


ATTACKS = {"idle": attack_idle, "bomb": attack_bomb, "recompress": attack_recompress,
           "partial": attack_partial}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/debug/oxka")
    p.add_argument("attacks", nargs="*", default=list(ATTACKS))
    a = p.parse_args()
    for name in a.attacks:
        b = Broker(a.bin)
        try:
            outcome = ATTACKS[name](b)
            alive = b.alive()
            print(f"{name:10} VmHWM {b.hwm():8.1f} MiB  {outcome}; "
                  f"{'still serving' if alive else 'NOT serving'}", flush=True)
        finally:
            b.stop()


if __name__ == "__main__":
    main()
