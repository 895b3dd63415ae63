#!/usr/bin/env bash
# `oxka perf produce` with default producer properties (Kafka's: acks=all,
# idempotence, batch.size 16384, linger 5 ms, 5 in flight) on one
# partition, for two builds of the client side by side, with kcat
# (librdkafka) at the same batch.size as the baseline, with idempotence (as
# ours) and without (librdkafka's default) (issue 11 §3,
# pipelining per partition; see docs/performance.md).
#
#   bench/pipelining.sh BEFORE AFTER     two `oxka` binaries (release)
#   ROUNDS=5 N=300000 SIZE=1024 bench/pipelining.sh BEFORE AFTER
#
# Every run gets a fresh broker (AFTER's; the broker code is the same in
# both builds) on an empty data dir after `sync`. Within a round the
# tools alternate, so load from other users of the machine falls on all
# of them alike; the median of the rounds is reported with every run.
set -euo pipefail
BEFORE="${1:?before binary}"
AFTER="${2:?after binary}"
ROUNDS="${ROUNDS:-5}"
N="${N:-300000}"
SIZE="${SIZE:-1024}"
PORT="${PORT:-29292}"
B="127.0.0.1:$PORT"
command -v kcat >/dev/null || { echo "needs kcat (apt-get install kcat)" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/oxka-pipelining.XXXXXX")"
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

fresh_broker() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID"
        wait "$PID" 2>/dev/null || true
        PID=
    fi
    rm -rf "$WORK/data"
    sync
    "$AFTER" broker --listen "$B" --data-dir "$WORK/data" --log-level warn >"$WORK/broker.out" 2>&1 &
    PID=$!
    local deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { cat "$WORK/broker.out" >&2; exit 1; }
        sleep 0.01
    done
    timeout 60 "$AFTER" topics create t --partitions 1 -b "$B" >/dev/null
}

# perf BINARY -> MiB/s with default properties
perf() {
    local out
    out=$(timeout 300 "$1" perf produce -b "$B" --topic t --num-records "$N" \
        --record-size "$SIZE" --throughput -1 --reporting-interval 0 | tail -1)
    echo "$out" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/'
}

head -c $((SIZE - 1)) /dev/zero | tr '\0' 'x' >"$WORK/line"
{ yes "$(cat "$WORK/line")" || true; } | head -n "$N" >"$WORK/lines"
# kcat16k IDEMPOTENCE -> MiB/s; acks=all, linger 5 ms as Kafka's defaults
kcat16k() {
    local t0 t1
    t0=$(now)
    timeout 300 kcat -P -b "$B" -t t -p 0 -X batch.size=16384 -X linger.ms=5 \
        -X enable.idempotence="$1" -X acks=all <"$WORK/lines"
    t1=$(now)
    calc "$N * $SIZE / ($t1 - $t0) / 1048576" 2
}

declare -A RUNS
for r in $(seq 1 "$ROUNDS"); do
    for tool in before after kcat kcat-no-idempotence; do
        fresh_broker
        case $tool in
            before) v=$(perf "$BEFORE") ;;
            after) v=$(perf "$AFTER") ;;
            kcat) v=$(kcat16k true) ;;
            kcat-no-idempotence) v=$(kcat16k false) ;;
        esac
        echo "round $r $tool: $v MiB/s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        RUNS[$tool]="${RUNS[$tool]:-} $v"
    done
done
echo "| client | median MiB/s | runs |"
echo "|---|---|---|"
for tool in before after kcat kcat-no-idempotence; do
    med=$(printf '%s\n' ${RUNS[$tool]} | sort -g | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
    echo "| $tool | $med | $(echo ${RUNS[$tool]} | sed 's/ /, /g') |"
done
