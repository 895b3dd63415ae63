#!/usr/bin/env bash
# One performance run on this machine (see docs/performance.md):
#   1. the physical limits: the data dir filesystem's sequential write
#      bandwidth (dd 1 GiB, conv=fdatasync) and loopback TCP bandwidth
#      (iperf3 when installed, else a Python socket pump);
#   2. a release broker on a fresh data dir;
#   3. the issue-7 matrix rows that fit in a few minutes, each with our
#      client (`oxka perf`) and with librdkafka (kcat), so the client's
#      speed and the broker's are told apart (end-to-end latency: Python
#      confluent-kafka from ~/.cache/oxka-conformance-venv or .venv, or
#      $OXKA_VENV, via bench/e2e_rdkafka.py);
#   4. one table: figure, tool, value, value / limit, goal.
#
#   bench/run.sh                 build (cargo build --release -p oxka), then run
#   NO_BUILD=1 bench/run.sh      use target/release/oxka as it is
#   SCALE=0.2 bench/run.sh       fewer records (quick check of the script)
#   WORK=/path bench/run.sh      data dir parent (default: a temp dir in /var/tmp)
#   LONG=1 bench/run.sh          also bench/random-read.sh and bench/soak.sh
#                                (+~15 minutes, 11 GiB of disk)
#   ROUNDS=5 bench/run.sh        runs per produce row (default 3; the median
#                                is reported, every run's figure beside it)
#   METRICS_ONLY=1 bench/run.sh  only the metrics on/off rows (after the limits)
#
# Metrics on vs off: produce and consume, 1 KiB records, 1 partition, each
# round on two fresh brokers, one with the HTTP listener on and /metrics
# scraped every second meanwhile, one with `http.listeners=` and
# `metrics.instrumentation.enable=false` (no counting at all); the order
# within a round alternates, so drift in the machine's speed and what a run
# leaves behind hit both alike. The medians are reported, every run beside.
#
# Each produce run gets a fresh broker on an empty data dir after `sync`:
# the host's write cache is the "disk" limit, and a run that starts with
# the previous runs' gigabytes still dirty measures write-back throttling
# instead (see docs/performance.md).
#
# Every wait is bounded (timeout on each load, 30 s for the broker to
# listen); the whole run takes about 5 minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OXKA="${OXKA:-${CARGO_TARGET_DIR:-$ROOT/target}/release/oxka}"
SCALE="${SCALE:-1}"
PORT="${PORT:-29192}"
B="127.0.0.1:$PORT"
STEP_TIMEOUT="${STEP_TIMEOUT:-120}"

if [ -z "${NO_BUILD:-}" ]; then
    echo "== cargo build --release -p oxka" >&2
    cargo build --release -p oxka >&2
fi
[ -x "$OXKA" ] || { echo "no $OXKA: build with cargo build --release -p oxka" >&2; exit 2; }
command -v kcat >/dev/null || { echo "needs kcat (apt-get install kcat) for the librdkafka rows" >&2; exit 2; }

WORK="$(mktemp -d "${WORK:-${TMPDIR:-/var/tmp}}/oxka-bench.XXXXXX")"
PID=
cleanup() {
    if [ -n "${SCRAPER:-}" ]; then kill "$SCRAPER" 2>/dev/null || true; fi
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

n() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s); if (v < 1000) v = 1000; print v }'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
log() { echo "== $*" >&2; }

ROWS=()
# row FIGURE TOOL VALUE RATIO GOAL
row() { ROWS+=("$1|$2|$3|$4|$5"); }

# ---------------------------------------------------------------- limits
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The virtual disk's speed varies from run to run (other tenants, the
# host's cache): three runs after a sync, the best one is the limit.
log "disk: dd 1 GiB conv=fdatasync in $WORK ($(df -P "$WORK" | awk 'NR==2 { print $1 }')), 3 runs"
DD_RUNS=()
for i in 1 2 3; do
    sync
    sleep 2
    DD_OUT=$(timeout "$STEP_TIMEOUT" dd if=/dev/zero of="$WORK/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
    rm -f "$WORK/dd.bin"
    DD_RUNS+=("$(echo "$DD_OUT" | awk '{ for (i = 1; i <= NF; i++) if ($(i) ~ /^s,?$/ || $(i) == "s,") { t = $(i - 1) } } { gsub(",", ".", t); printf "%.1f", $1 / t / 1048576 }')")
    log "   $DD_OUT -> ${DD_RUNS[-1]} MiB/s"
done
DISK_MIBS=$(printf '%s\n' "${DD_RUNS[@]}" | sort -g | tail -1)
DD_ALL=$(printf '%s\n' "${DD_RUNS[@]}" | paste -sd, - | sed 's/,/, /g')

if command -v iperf3 >/dev/null; then
    log "loopback: iperf3, 3 s"
    iperf3 -s -1 -p $((PORT + 1)) >/dev/null 2>&1 &
    IPERF=$!
    sleep 0.5
    NET_MIBS=$(timeout 30 iperf3 -c 127.0.0.1 -p $((PORT + 1)) -t 3 -J |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8 / 1048576))')
    wait "$IPERF" 2>/dev/null || true
    NET_TOOL=iperf3
else
    log "loopback: Python socket pump (1 MiB writes), 3 s"
    NET_MIBS=$(timeout 30 python3 - <<'PY'
import socket, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
got = [0]
def sink():
    c, _ = srv.accept()
    buf = bytearray(1 << 20); v = memoryview(buf)
    while True:
        k = c.recv_into(v)
        if not k: break
        got[0] += k
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(srv.getsockname())
chunk = b"x" * (1 << 20); t0 = time.time()
while time.time() - t0 < 3: s.sendall(chunk)
s.close(); t.join(); print("%.1f" % (got[0] / (time.time() - t0) / 1048576))
PY
)
    NET_TOOL="python socket pump"
fi
log "   $NET_MIBS MiB/s ($NET_TOOL)"
row "limit: disk sequential write (dd, fdatasync; best of 3)" dd "$DISK_MIBS MiB/s; runs $DD_ALL" "1" "-"
row "limit: loopback TCP" "$NET_TOOL" "$NET_MIBS MiB/s" "1" "-"

# ---------------------------------------------------------------- broker
# BROKER_ARGS: extra `--override key=value` arguments (the metrics rows)
BROKER_ARGS=()
start_broker() {
    local t0; t0=$(now)
    "$OXKA" broker --listen "$B" --data-dir "$WORK/data" --log-level warn "${BROKER_ARGS[@]}" >"$WORK/broker.out" 2>&1 &
    PID=$!
    local deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "broker did not listen in 30 s" >&2; cat "$WORK/broker.out" >&2; exit 1; }
        sleep 0.005
    done
    STARTUP_MS=$(calc "($(now) - $t0) * 1000" 0)
}
stop_broker() {
    kill -TERM "$PID"
    local deadline=$((SECONDS + 30))
    while kill -0 "$PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
}
fresh_broker() {
    [ -n "$PID" ] && stop_broker
    rm -rf "$WORK/data"
    sync
    start_broker
}
ROUNDS="${ROUNDS:-3}"
# median_of FN ARGS...: runs FN (which sets MIBS and RPS) ROUNDS times, each
# on a fresh broker; sets MIBS and RPS of the median run and ALL (every
# run's MiB/s, in order)
median_of() {
    local runs=() i mid
    for i in $(seq 1 "$ROUNDS"); do
        fresh_broker
        "$@"
        runs+=("$MIBS $RPS")
    done
    mid=$(printf '%s\n' "${runs[@]}" | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
    MIBS=${mid% *}
    RPS=${mid#* }
    ALL=$(printf '%s\n' "${runs[@]}" | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
}
topic() { # name partitions
    timeout 60 "$OXKA" topics create "$1" --partitions "$2" -b "$B" >/dev/null
}

start_broker
log "broker started (empty data dir) in $STARTUP_MS ms; RSS $(rss_mb "$PID") MB"

# --------------------------------------------------------------- loads
# Both clients get the same batching: acks=1, linger 5 ms, 1 MB batches.
PROPS=(acks=1 linger.ms=5 batch.size=1000000)
KCAT_PROPS=(-X acks=1 -X linger.ms=5 -X batch.size=1000000 -X queue.buffering.max.messages=1000000 -X queue.buffering.max.kbytes=1048576)

# ours TOPIC N SIZE [THROUGHPUT] -> sets MIBS RPS; prints the perf lines
ours_produce() {
    local out
    out=$(timeout "$STEP_TIMEOUT" "$OXKA" perf produce -b "$B" --topic "$1" --num-records "$2" \
        --record-size "$3" --throughput "${4:--1}" --producer-props "${PROPS[@]}" --reporting-interval 0 | tail -1)
    echo "   oxka perf: $out" >&2
    RPS=$(echo "$out" | sed -E 's/.* sent, ([0-9.]+) records\/sec.*/\1/')
    MIBS=$(echo "$out" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/')
}
# kcat_produce TOPIC N SIZE PARTITION(-1: partitioner) -> MIBS RPS
kcat_produce() {
    local f="$WORK/lines-$3"
    if [ ! -f "$f.$2" ]; then
        head -c $(($3 - 1)) /dev/zero | tr '\0' 'x' >"$f"
        { yes "$(cat "$f")" || true; } | head -n "$2" >"$f.$2"
    fi
    local t0 t1
    t0=$(now)
    timeout "$STEP_TIMEOUT" kcat -P -b "$B" -t "$1" -p "$4" "${KCAT_PROPS[@]}" <"$f.$2"
    t1=$(now)
    RPS=$(calc "$2 / ($t1 - $t0)" 0)
    MIBS=$(calc "$2 * $3 / ($t1 - $t0) / 1048576" 2)
    echo "   kcat: $2 records, $RPS records/sec ($MIBS MiB/sec)" >&2
}
ratio() { calc "$1 / $2" 2; }

N1K=$(n 1000000)
N100=$(n 3000000)

# ------------------------------------------------- metrics on vs off
HTTP_PORT=$((PORT + 2))
METRICS_ON=(--override "http.listeners=http://127.0.0.1:$HTTP_PORT")
METRICS_OFF=(--override "http.listeners=" --override "metrics.instrumentation.enable=false")
SCRAPER=
scraper_start() {
    ( while :; do
        curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" || true
        sleep 1
    done ) &
    SCRAPER=$!
}
scraper_stop() {
    if [ -n "$SCRAPER" ]; then
        kill "$SCRAPER" 2>/dev/null || true
        wait "$SCRAPER" 2>/dev/null || true
    fi
    SCRAPER=
}
# metrics_round on|off: a fresh broker, produce then consume; appends
# "produce MiB/s consume MiB/s" to MR_<mode>
MR_on=(); MR_off=()
metrics_round() {
    if [ "$1" = on ]; then BROKER_ARGS=("${METRICS_ON[@]}"); else BROKER_ARGS=("${METRICS_OFF[@]}"); fi
    fresh_broker
    if [ "$1" = on ]; then scraper_start; fi
    topic metrics-cost 1
    ours_produce metrics-cost "$N1K" 1024
    local p=$MIBS out
    out=$(timeout "$STEP_TIMEOUT" "$OXKA" perf consume -b "$B" --topic metrics-cost --num-records "$N1K" | tail -1)
    echo "   oxka perf consume ($1): $out" >&2
    local c; c=$(echo "$out" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/')
    scraper_stop
    if [ "$1" = on ]; then MR_on+=("$p $c"); else MR_off+=("$p $c"); fi
    BROKER_ARGS=()
}
median_col() { # column, values...
    local col=$1; shift
    printf '%s\n' "$@" | awk -v c="$col" '{ print $c }' | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}
all_col() { local col=$1; shift; printf '%s\n' "$@" | awk -v c="$col" '{ printf "%s%s", (NR > 1 ? ", " : ""), $c }'; }
log "metrics on vs off: produce + consume 1 KiB x $N1K, 1 partition, $ROUNDS rounds of one run each (order alternating)"
for i in $(seq 1 "$ROUNDS"); do
    # odd rounds off first, even rounds on first: whatever the first run of
    # a pair leaves behind (dirty pages, warm caches) hits both modes alike
    if [ $((i % 2)) = 1 ]; then
        metrics_round off
        metrics_round on
    else
        metrics_round on
        metrics_round off
    fi
done
for col in 1 2; do
    what=$([ $col = 1 ] && echo "produce 1 partition 1 KiB acks=1" || echo "consume from page cache 1 KiB")
    OFF=$(median_col $col "${MR_off[@]}")
    ON=$(median_col $col "${MR_on[@]}")
    row "$what, metrics off" "oxka perf" "$OFF MiB/s; runs $(all_col $col "${MR_off[@]}")" "-" "-"
    row "$what, metrics on (scraped every 1 s)" "oxka perf" "$ON MiB/s; runs $(all_col $col "${MR_on[@]}")" "$(ratio "$ON" "$OFF") of off" "within noise"
done
if [ -n "${METRICS_ONLY:-}" ]; then
    stop_broker
    ROWS_ONLY=1
fi

p1_ours() { topic p1-ours 1; ours_produce p1-ours "$N1K" 1024; }
p1_kcat() { topic p1-kcat 1; kcat_produce p1-kcat "$N1K" 1024 0; }
small_ours() { topic small-ours 1; ours_produce small-ours "$N100" 100; }
small_kcat() { topic small-kcat 1; kcat_produce small-kcat "$N100" 100 0; }
p64_ours() { topic p64-ours 64; ours_produce p64-ours "$N1K" 1024; }
p64_kcat() { topic p64-kcat 64; kcat_produce p64-kcat "$N1K" 1024 -1; }

if [ -z "${ROWS_ONLY:-}" ]; then
log "produce, 1 partition, acks=1, 1 KiB x $N1K, kcat then ours ($ROUNDS runs each)"
median_of p1_kcat
P1_KCAT=$MIBS
row "produce 1 partition 1 KiB acks=1" "kcat" "$MIBS MiB/s ($RPS rec/s); runs $ALL" "$(ratio "$MIBS" "$DISK_MIBS") of disk" ">= 0.75 of disk"
median_of p1_ours
P1_OURS=$MIBS
row "produce 1 partition 1 KiB acks=1" "oxka perf" "$MIBS MiB/s ($RPS rec/s); runs $ALL" "$(ratio "$MIBS" "$DISK_MIBS") of disk" ">= 0.75 of disk"

# the last run's broker still has p1-ours in its page cache
log "consume from page cache, 1 KiB x $N1K (p1-ours, just written)"
out=$(timeout "$STEP_TIMEOUT" "$OXKA" perf consume -b "$B" --topic p1-ours --num-records "$N1K" | tail -1)
echo "   oxka perf: $out" >&2
MIBS=$(echo "$out" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/')
row "consume from page cache 1 KiB" "oxka perf" "$MIBS MiB/s" "$(ratio "$MIBS" "$NET_MIBS") of loopback" ">= 1 GB/s (954 MiB/s)"
t0=$(now)
got=$(timeout "$STEP_TIMEOUT" kcat -C -b "$B" -t p1-ours -p 0 -o beginning -e -q -f '%S\n' | wc -l)
t1=$(now)
MIBS=$(calc "$got * 1024 / ($t1 - $t0) / 1048576" 2)
echo "   kcat: $got records, $MIBS MiB/sec" >&2
row "consume from page cache 1 KiB" "kcat" "$MIBS MiB/s" "$(ratio "$MIBS" "$NET_MIBS") of loopback" ">= 1 GB/s (954 MiB/s)"

log "produce, 1 partition, acks=1, 100 B x $N100 ($ROUNDS runs each)"
median_of small_ours
row "produce 100 B acks=1" "oxka perf" "$RPS rec/s ($MIBS MiB/s); runs $ALL MiB/s" "$(ratio "$RPS" 1000000) of goal" ">= 1,000,000 rec/s"
median_of small_kcat
row "produce 100 B acks=1" "kcat" "$RPS rec/s ($MIBS MiB/s); runs $ALL MiB/s" "$(ratio "$RPS" 1000000) of goal" ">= 1,000,000 rec/s"

log "produce, 64 partitions, acks=1, 1 KiB x $N1K ($ROUNDS runs each)"
median_of p64_ours
row "produce 64 partitions 1 KiB acks=1" "oxka perf" "$MIBS MiB/s ($RPS rec/s); runs $ALL" "$(ratio "$MIBS" "$P1_OURS") of 1-partition" ">= 0.90 of 1-partition"
median_of p64_kcat
row "produce 64 partitions 1 KiB acks=1" "kcat" "$MIBS MiB/s ($RPS rec/s); runs $ALL" "$(ratio "$MIBS" "$P1_KCAT") of 1-partition" ">= 0.90 of 1-partition"

fresh_broker
E2E_RATE=51200   # 50 MiB/s of 1 KiB records
E2E_N=$(n 512000)   # 10 s
log "end-to-end latency, 1 KiB at $E2E_RATE rec/s (50 MiB/s) x $E2E_N"
topic e2e 1
out=$(timeout "$STEP_TIMEOUT" "$OXKA" perf e2e -b "$B" --topic e2e --num-records "$E2E_N" --record-size 1024 \
    --throughput "$E2E_RATE" --producer-props acks=1 | tail -1) || true
echo "   oxka perf: $out" >&2
P=$(echo "$out" | sed -E 's/.* ([0-9.]+) ms 50th, ([0-9.]+) ms 95th, ([0-9.]+) ms 99th, ([0-9.]+) ms 99.9th.*/p50 \1, p99 \3, p99.9 \4 ms/')
row "e2e latency at 50 MiB/s 1 KiB" "oxka perf" "$P" "-" "p50 <= 1, p99 <= 5, p99.9 <= 20 ms"
# librdkafka side: confluent-kafka from the conformance venv (kcat has no e2e mode).
PY=""
for v in "${OXKA_VENV:-}" "$HOME/.cache/oxka-conformance-venv" "$ROOT/.venv"; do
    [ -n "$v" ] && [ -x "$v/bin/python" ] && "$v/bin/python" -c 'import confluent_kafka' 2>/dev/null && { PY="$v/bin/python"; break; }
done
if [ -n "$PY" ]; then
    topic e2e-rdkafka 1
    out=$(timeout "$STEP_TIMEOUT" "$PY" bench/e2e_rdkafka.py "$B" e2e-rdkafka "$E2E_N" 1024 "$E2E_RATE" | tail -1) || true
    echo "   confluent-kafka: $out" >&2
    P=$(echo "$out" | sed -E 's/.* ([0-9.]+) ms 50th, ([0-9.]+) ms 95th, ([0-9.]+) ms 99th, ([0-9.]+) ms 99.9th.*/p50 \1, p99 \3, p99.9 \4 ms/')
    row "e2e latency at 50 MiB/s 1 KiB" "confluent-kafka (librdkafka)" "$P" "-" "p50 <= 1, p99 <= 5, p99.9 <= 20 ms"
else
    row "e2e latency at 50 MiB/s 1 KiB" "librdkafka" "not measured (no venv with confluent-kafka)" "-" "-"
fi
row "broker RSS after the loads" "-" "$(rss_mb "$PID") MB" "-" "no growth over 10 min (not run)"

# ------------------------------------------------- 1,000 partitions
log "1,000 partitions (10 topics x 100)"
for t in $(seq 1 10); do topic "many$t" 100; done
sleep 2
row "broker RSS idle, 1,000+ partitions" "-" "$(rss_mb "$PID") MB" "$(ratio "$(rss_mb "$PID")" 100) of goal" "<= 100 MB"
stop_broker
start_broker
log "restart with $(find "$WORK/data" -maxdepth 1 -type d -name '*-[0-9]*' | wc -l) partition dirs: $STARTUP_MS ms"
row "start-up, 1,000+ partitions, clean shutdown" "-" "$STARTUP_MS ms (exec to listening)" "$(ratio "$STARTUP_MS" 1000) of goal" "<= 1 s"
sleep 1
stop_broker

if [ -n "${LONG:-}" ]; then
    # The two long rows, each on its own broker: ~3 min and 10 min.
    log "LONG=1: random old offsets (bench/random-read.sh)"
    RR=$(OXKA="$OXKA" bench/random-read.sh | tail -2)
    row "fetch at random offsets, 100 MiB log" "raw Fetch v4" "$(echo "$RR" | sed -n 1p | cut -d'|' -f4)" "-" "same latency within 20%"
    row "fetch at random offsets, 10 GiB log, 1 GiB segments" "raw Fetch v4" "$(echo "$RR" | sed -n 2p | cut -d'|' -f4)" "-" "same latency within 20%"
    log "LONG=1: 10-minute RSS soak (bench/soak.sh)"
    SOAK=$(OXKA="$OXKA" bench/soak.sh | grep '^RSS samples')
    row "broker RSS over a 10-minute mixed load" "oxka perf e2e" "$SOAK" "-" "no growth"
fi

fi # ROWS_ONLY

# ---------------------------------------------------------------- table
echo
echo "oxka bench/run.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| figure | tool | value | value / limit | goal |"
echo "|---|---|---|---|---|"
for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c d e <<<"$r"
    echo "| $a | $b | $c | $d | $e |"
done
