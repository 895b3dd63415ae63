#!/usr/bin/env bash
# Consume throughput from the page cache, with the broker's own CPU cost,
# for one broker build or several side by side (before/after a change):
#   1. per build, a release broker on a fresh data dir with one 1-partition
#      topic filled with N x 1 KiB records by kcat (acks=1, 1 MB batches);
#   2. ROUNDS rounds; in each, for each build in turn, three readers, each
#      reading the whole partition from offset 0:
#        raw      bench/fetch_load.py: plain Fetch v4, one request in
#                 flight, 1 MiB partition max bytes, only batch headers
#                 walked (the least client CPU we can get);
#        raw8     the same with 8 MiB per fetch;
#        perf     oxka perf consume (Fetch v12, decodes every record);
#      alternating builds round by round, so that load from elsewhere on
#      the machine falls on all of them alike;
#   3. per run: MiB/s of record bytes as the reader reports it, and the
#      broker's CPU seconds (utime + stime from /proc/PID/stat, 10 ms
#      ticks) per GiB sent. On a 2-core machine the reader competes with
#      the broker, so the CPU figure is the one to compare between builds;
#   4. a summary: per build and reader, the median and range over rounds.
#
#   bench/consume.sh [OXKA...]              default target/release/oxka
#   bench/consume.sh /tmp/oxka-before target/release/oxka
#   N=200000 ROUNDS=1 bench/consume.sh      a quick check of the script
#
# Every load runs under `timeout`; each broker gets 30 s to listen.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/oxka
N="${N:-1000000}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-29292}"
STEP_TIMEOUT="${STEP_TIMEOUT:-120}"
for b in "$@"; do
    [ -x "$b" ] || { echo "no $b: cargo build --release -p oxka" >&2; exit 2; }
done
command -v kcat >/dev/null || { echo "needs kcat (apt-get install kcat)" >&2; exit 2; }

WORK="$(mktemp -d "${WORK:-${TMPDIR:-/var/tmp}}/oxka-consume.XXXXXX")"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

TICK=$(getconf CLK_TCK)
# broker CPU in seconds (user + system) so far
cpu() { awk -v t="$TICK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

head -c 1023 /dev/zero | tr '\0' 'x' >"$WORK/line"
{ yes "$(cat "$WORK/line")" || true; } | head -n "$N" >"$WORK/records"
BYTES=()
for i in $(seq 0 $(($# - 1))); do
    bin=${*:$((i + 1)):1}
    port=$((PORT + i))
    "$bin" broker --listen "127.0.0.1:$port" --data-dir "$WORK/data$i" --log-level warn >"$WORK/broker$i.out" 2>&1 &
    PIDS+=($!)
    deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "$bin did not listen in 30 s" >&2; cat "$WORK/broker$i.out" >&2; exit 1; }
        sleep 0.01
    done
    timeout 60 "$bin" topics create c1 --partitions 1 -b "127.0.0.1:$port" >/dev/null
    timeout "$STEP_TIMEOUT" kcat -P -b "127.0.0.1:$port" -t c1 -p 0 -X acks=1 -X linger.ms=5 \
        -X batch.size=1000000 -X queue.buffering.max.messages=1000000 \
        -X queue.buffering.max.kbytes=1048576 <"$WORK/records"
    BYTES+=("$(du -sb "$WORK/data$i/c1-0" | awk '{ print $1 }')")
done
rm -f "$WORK/records"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $N x 1 KiB records, log $((BYTES[0] / 1048576)) MiB"
echo
echo "| round | build | reader | MiB/s | broker CPU s | broker CPU s per GiB | client user+sys s |"
echo "|---|---|---|---|---|---|---|"

# one BUILD-INDEX READER-NAME COMMAND...: runs the reader, prints a table
# row and records it for the summary. MiB/s is what the reader reports for
# its own reading (process start-up excluded).
one() {
    local i=$1 name=$2; shift 2
    local pid=${PIDS[$i]} c0 c1 out mibs client per_gib
    c0=$(cpu "$pid")
    out=$( { /usr/bin/time -f 'client %U %S' timeout "$STEP_TIMEOUT" "$@"; } 2>&1 ) \
        || { echo "$name failed: $out" >&2; return 1; }
    c1=$(cpu "$pid")
    # fetch_load.py: "..., 1234.5 MiB/s, ..."; oxka perf consume: "... (1234.56 MB/sec)."
    mibs=$(echo "$out" | sed -nE 's/.* ([0-9.]+) MiB\/s.*/\1/p; s/.*records\/sec \(([0-9.]+) MB\/sec\).*/\1/p' | tail -1)
    client=$(echo "$out" | awk '/^client/ { printf "%.2f", $2 + $3 }')
    per_gib=$(calc "($c1 - $c0) / (${BYTES[$i]} / 1073741824)" 2)
    echo "| $ROUND | $i | $name | $(calc "$mibs" 0) | $(calc "$c1 - $c0" 2) | $per_gib | $client |"
    echo "$i $name $mibs $per_gib" >>"$WORK/rows"
}

for ROUND in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $(($# - 1))); do
        b="127.0.0.1:$((PORT + i))"
        bin=${*:$((i + 1)):1}
        one "$i" raw python3 bench/fetch_load.py "$b" c1 0 "$N" $((1 << 20))
        one "$i" raw8 python3 bench/fetch_load.py "$b" c1 0 "$N" $((8 << 20))
        one "$i" perf "$bin" perf consume -b "$b" --topic c1 --num-records "$N"
    done
done

echo
echo "builds: $(for i in $(seq 0 $(($# - 1))); do printf '%s=%s ' "$i" "${*:$((i + 1)):1}"; done)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| build | reader | MiB/s median (min-max) | broker CPU s per GiB median (min-max) |"
echo "|---|---|---|---|"
python3 - "$WORK/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    i, name, mibs, cpu = line.split()
    rows.setdefault((int(i), name), []).append((float(mibs), float(cpu)))
for (i, name), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    m = [x[0] for x in v]
    c = [x[1] for x in v]
    print(f"| {i} | {name} | {statistics.median(m):.0f} ({min(m):.0f}-{max(m):.0f}) "
          f"| {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) |")
PY
