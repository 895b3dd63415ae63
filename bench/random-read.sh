#!/usr/bin/env bash
# Issue 7's "fetch of a random old offset" row: Fetch latency at random
# offsets of a 10 GiB log in 1 GiB segments (Kafka's default
# log.segment.bytes) beside a 100 MiB log, on one release broker. Both
# logs fit in this machine's page cache, so the row measures the broker's
# lookup (segment map, sparse offset index, scan to the batch), not the
# disk. See docs/performance.md.
#
#   bench/random-read.sh              GiB=10, uses target/release/oxka
#   GIB=2 bench/random-read.sh        a smaller big log (quick check)
#   WORK=/path bench/random-read.sh   data dir parent (default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
OXKA="${OXKA:-$PWD/target/release/oxka}"
GIB="${GIB:-10}"
PORT="${PORT:-29292}"
B="127.0.0.1:$PORT"
FETCHES="${FETCHES:-3000}"
[ -x "$OXKA" ] || { echo "no $OXKA: cargo build --release -p oxka" >&2; exit 2; }

WORK="$(mktemp -d "${WORK:-/var/tmp}/oxka-random-read.XXXXXX")"
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$OXKA" broker --listen "$B" --data-dir "$WORK/data" --log-level warn >"$WORK/broker.out" 2>&1 &
PID=$!
deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/broker.out" >&2; exit 1; }
    sleep 0.01
done

produce() { # topic records
    timeout 900 "$OXKA" topics create "$1" --partitions 1 -b "$B" >/dev/null
    timeout 900 "$OXKA" perf produce -b "$B" --topic "$1" --num-records "$2" --record-size 1024 \
        --throughput -1 --producer-props acks=1 linger.ms=5 batch.size=1000000 --reporting-interval 0 | tail -1 >&2
}
BIG=$((GIB * 1024 * 1024))
SMALL=$((100 * 1024))
echo "== producing $GIB GiB and 100 MiB of 1 KiB records" >&2
produce big "$BIG"
produce small "$SMALL"
sync
du -sh "$WORK"/data/big-0 "$WORK"/data/small-0 >&2
echo "   big-0: $(ls "$WORK"/data/big-0/*.log | wc -l) segments" >&2

echo "| log | fetches at random offsets | latency |"
echo "|---|---|---|"
for round in 1 2; do
    for t in small big; do
        n=$SMALL; [ "$t" = big ] && n=$BIG
        out=$(python3 bench/random_read.py "$B" "$t" "$n" "$FETCHES" "$round")
        label="100 MiB, 1 segment"; [ "$t" = big ] && label="$GIB GiB, $(ls "$WORK"/data/big-0/*.log | wc -l) segments"
        echo "| $label (round $round) | $FETCHES | $out |"
    done
done
