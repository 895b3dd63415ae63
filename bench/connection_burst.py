#!/usr/bin/env python3
"""RSS of a broker through bursts of connections, and after they close.

    python3 bench/connection_burst.py [target/release/oxka]

Three rounds: 3,000 connections each send 150 KB of a 200 KB request
frame and stall (the broker reads what its `queued.max.request.bytes`
budget allows), then all close. Prints VmRSS and VmHWM while they are
held and 12 s after they closed. Only the standard library. Needs a
descriptor limit above 3,000 (ulimit -n).
"""
import socket
import struct
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/oxka"
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
data = tempfile.mkdtemp()
broker = subprocess.Popen(
    [binary, "broker", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--log-level", "error"],
    stdout=subprocess.PIPE, text=True)
broker.stdout.readline()


def rss():
    r = h = 0
    with open(f"/proc/{broker.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                r = int(line.split()[1]) // 1024
            if line.startswith("VmHWM"):
                h = int(line.split()[1]) // 1024
    return f"RSS {r} MiB (peak {h} MiB)"


print("idle:", rss())
try:
    for rnd in range(3):
        socks = []
        for _ in range(3000):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(struct.pack(">i", 200_000) + b"\0" * 150_000)
            socks.append(c)
        time.sleep(3)
        print(f"round {rnd}, 3,000 connections held:", rss())
        for c in socks:
            c.close()
        time.sleep(12)
        print(f"round {rnd}, 12 s after they closed:", rss())
finally:
    broker.terminate()
    broker.wait()
