#!/usr/bin/env bash
# Measures the single-node broker's figures on this machine, in one run:
#   - the data disk's sequential write bandwidth (dd, conv=fdatasync)
#   - produce and consume throughput with kcat (librdkafka), one partition,
#     acks=1: 1,000,000 x 100-byte and 200,000 x 1 KiB records
#   - broker RSS idle and right after the load
#   - start-up time with an empty data dir and with 1,000 partitions on disk
#
#   bench/broker-figures.sh [path/to/oxka]   (default target/release/oxka)
set -euo pipefail
cd "$(dirname "$0")/.."
OXKA="${1:-target/release/oxka}"
[ -x "$OXKA" ] || { echo "build first: cargo build --release -p oxka" >&2; exit 2; }
command -v kcat >/dev/null || { echo "needs kcat (apt-get install kcat)" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/oxka-figures.XXXXXX")"
PORT="${PORT:-29092}"
B="127.0.0.1:$PORT"
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

start_broker() {
    local t0; t0=$(now)
    "$OXKA" broker --listen "$B" --data-dir "$WORK/data" --log-level warn > "$WORK/broker.out" 2>&1 &
    PID=$!
    # wall clock from exec until the listener accepts a connection
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.002; done
    STARTUP_MS=$(echo "($(now) - $t0) * 1000" | bc -l | cut -d. -f1)
    kcat -b "$B" -L >/dev/null
}
stop_broker() { kill -TERM $PID; wait $PID || true; }

echo "== disk write bandwidth (dd 1 GiB, conv=fdatasync) in $WORK"
dd if=/dev/zero of="$WORK/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1
rm -f "$WORK/dd.bin"

start_broker
echo "== start-up, empty data dir: ${STARTUP_MS} ms (exec to listening; the broker logs: $(grep -o "started in [0-9]* ms" "$WORK/broker.out"))"
sleep 1
echo "== RSS idle: $(rss_mb $PID) MB"

run() { # name count size
    local name=$1 n=$2 size=$3
    head -c $((size)) /dev/zero | tr '\0' 'x' > "$WORK/line"
    { yes "$(cat "$WORK/line")" || true; } | head -n "$n" > "$WORK/$name.txt"
    kcat -b "$B" -L -t "$name" >/dev/null 2>&1 || true
    local t0 t1 t2
    t0=$(now)
    kcat -P -b "$B" -t "$name" -p 0 -X acks=1 -X linger.ms=5 -X batch.num.messages=10000 \
        -X queue.buffering.max.messages=1000000 < "$WORK/$name.txt"
    t1=$(now)
    local got
    got=$(kcat -C -b "$B" -t "$name" -p 0 -o beginning -e -q -X fetch.max.bytes=52428800 -f '\n' | wc -l)
    t2=$(now)
    local bytes=$((n * size))
    echo "$name: produce $(echo "$n / ($t1 - $t0)" | bc) rec/s, $(echo "$bytes / ($t1 - $t0) / 1048576" | bc -l | cut -c1-6) MiB/s;" \
         "consume $(echo "$n / ($t2 - $t1)" | bc) rec/s, $(echo "$bytes / ($t2 - $t1) / 1048576" | bc -l | cut -c1-6) MiB/s ($got records read)"
    echo "   RSS after: $(rss_mb $PID) MB"
}
echo "== throughput (kcat, 1 partition, acks=1)"
run small 1000000 100
run large 200000 1024
stop_broker

echo "== 1,000 partitions on disk"
start_broker
for t in $(seq 1 10); do
    kcat -b "$B" -L >/dev/null
    python3 - "$B" "p$t" <<'PY' 2>/dev/null || "$OXKA" --version >/dev/null
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
name = sys.argv[2].encode()
# CreateTopics v2: topics[name, partitions=100, rf=1, assignments[], configs[]], timeout, validate_only
body = struct.pack(">i", 1) + struct.pack(">h", len(name)) + name + struct.pack(">ihii", 100, 1, 0, 0)
body += struct.pack(">i?", 30000, False)
hdr = struct.pack(">hhi", 19, 2, 1) + struct.pack(">h", 5) + b"bench"
msg = hdr + body
s = socket.create_connection((host, int(port)))
s.sendall(struct.pack(">i", len(msg)) + msg)
s.recv(65536)
PY
done
echo "   partitions on disk: $(ls "$WORK/data" | grep -c -- '-[0-9]*$')"
stop_broker
start_broker
echo "== start-up with those partitions: ${STARTUP_MS} ms (exec to listening; the broker logs: $(grep -o "started in [0-9]* ms" "$WORK/broker.out"))"
sleep 1
echo "== RSS idle with 1,000 partitions: $(rss_mb $PID) MB"
stop_broker
