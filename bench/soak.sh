#!/usr/bin/env bash
# Issue 7's "no RSS growth over a 10-minute run": a release broker under a
# steady mixed load for DURATION seconds (default 600) while its RSS is
# sampled every 5 s. The load: `oxka perf e2e` producing 1 KiB records at
# RATE/s (default 10,000, ~10 MiB/s) to an 8-partition topic and
# consuming them back, on a topic small enough in segments and retention
# that rolling and deletion run all along; 1,000 idle partitions beside
# it. Prints the RSS samples' first and last minute medians and maximum,
# and the e2e latency line. See docs/performance.md.
#
#   bench/soak.sh                      600 s, target/release/oxka
#   DURATION=60 bench/soak.sh          a quick check of the script
set -euo pipefail
cd "$(dirname "$0")/.."
OXKA="${OXKA:-$PWD/target/release/oxka}"
DURATION="${DURATION:-600}"
RATE="${RATE:-10000}"
PORT="${PORT:-29392}"
B="127.0.0.1:$PORT"
[ -x "$OXKA" ] || { echo "no $OXKA: cargo build --release -p oxka" >&2; exit 2; }

WORK="$(mktemp -d "${WORK:-/var/tmp}/oxka-soak.XXXXXX")"
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$OXKA" broker --listen "$B" --data-dir "$WORK/data" --log-level warn \
    --override log.retention.check.interval.ms=5000 >"$WORK/broker.out" 2>&1 &
PID=$!
deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/broker.out" >&2; exit 1; }
    sleep 0.01
done
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }

for i in $(seq 10); do
    timeout 60 "$OXKA" topics create "idle-$i" --partitions 100 -b "$B" >/dev/null
done
timeout 60 "$OXKA" topics create soak --partitions 8 -b "$B" \
    -c segment.bytes=8388608 -c retention.bytes=33554432 >/dev/null
echo "== broker up, 1,008 partitions, RSS $(rss_kb) kB; e2e at $RATE rec/s for $DURATION s" >&2

"$OXKA" perf e2e -b "$B" --topic soak --num-records $((RATE * DURATION)) --record-size 1024 \
    --throughput "$RATE" --producer-props linger.ms=5 >"$WORK/e2e.out" 2>&1 &
LOAD=$!
: >"$WORK/rss"
while kill -0 "$LOAD" 2>/dev/null; do
    echo "$SECONDS $(rss_kb)" >>"$WORK/rss"
    sleep 5
done
wait "$LOAD" || { echo "e2e load failed:" >&2; cat "$WORK/e2e.out" >&2; exit 1; }
echo "$SECONDS $(rss_kb)" >>"$WORK/rss"

python3 - "$WORK/rss" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
t0, t1 = rows[0][0], rows[-1][0]
first = [kb for t, kb in rows if t - t0 <= 60]
last = [kb for t, kb in rows if t1 - t <= 60]
mb = lambda kb: kb / 1024
print(f"RSS samples: {len(rows)} over {t1 - t0} s; first minute median {mb(statistics.median(first)):.1f} MB, "
      f"last minute median {mb(statistics.median(last)):.1f} MB, max {mb(max(kb for _, kb in rows)):.1f} MB")
PY
tail -2 "$WORK/e2e.out"
echo "segments of soak-0 now: $(ls "$WORK"/data/soak-0/*.log | wc -l) (retention keeps ~4)"
