#!/usr/bin/env bash
# Longer `oxka verify` runs for docs/reliability.md: every scenario with its
# faults, one JSON report each, and a markdown table of the results.
#
#   bench/reliability.sh [MINUTES_PER_SCENARIO] [OUT_DIR]
#
# Default 5 minutes per scenario (10 scenarios: about 55 minutes with the
# start-ups and read-backs). FAULT_INTERVAL (default 4s) and FAULT_HOLD (5s)
# set the nemesis's pace, RATE (1000) the records per second. Needs root
# for the network faults (they are skipped, and said so, without it). Uses
# the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-5}
OUT=${2:-target/reliability}
mkdir -p "$OUT"
cargo build --release -q -p oxka
OXKA=target/release/oxka
D="${MIN}m"
FAULT_INTERVAL=${FAULT_INTERVAL:-4s}
FAULT_HOLD=${FAULT_HOLD:-5s}
RATE=${RATE:-1000}

# name | arguments
SCENARIOS=(
  "1 node, kill -9|--cluster 1 --nemesis kill"
  "3 nodes, kill -9 (any, leader, controller)|--cluster 3 --nemesis kill,kill-leader,kill-controller"
  "3 nodes, pause (zombie leader)|--cluster 3 --nemesis pause,pause-leader,pause-controller"
  "3 nodes, isolate (leader cut from followers, not from clients)|--cluster 3 --nemesis isolate,isolate-leader,isolate-controller"
  "5 nodes, majority/minority split and bridge|--cluster 5 --nemesis split,bridge"
  "3 nodes, power cuts (unsynced writes lost)|--cluster 3 --nemesis power-cut,power-cut-leader,power-cut-controller"
  "3 nodes, everything|--cluster 3 --nemesis all"
  "3 nodes, group under churn, kills and pauses|--cluster 3 --workload group --nemesis kill-leader,pause-leader,isolate-leader"
  "3 nodes, transactions under kills, pauses and isolation|--cluster 3 --workload txn --nemesis kill-leader,pause-leader,isolate-leader,kill-controller"
  "3 nodes, acks=1, kill -9 of leaders (losses expected)|--cluster 3 --acks 1 --nemesis kill-leader"
)

printf '| scenario | duration | faults injected | writes acknowledged | anomalies | expected losses |\n'
printf '|---|---|---|---|---|---|\n'
i=0
for s in "${SCENARIOS[@]}"; do
  i=$((i + 1))
  name=${s%%|*}
  args=${s#*|}
  report="$OUT/scenario-$i.json"
  # shellcheck disable=SC2086
  $OXKA verify $args --duration "$D" --fault-interval "$FAULT_INTERVAL" \
    --fault-hold "$FAULT_HOLD" --rate "$RATE" --seed "$i" --report "$report" \
    > "$OUT/scenario-$i.txt" 2>&1 || true
  python3 - "$report" "$name" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"| {sys.argv[2]} | - | - | - | run failed: {e} | - |")
    sys.exit(0)
a = r["analysis"]
unexpected = sum(c[0] for c in a["counts"].values())
expected = sum(c[1] for c in a["counts"].values())
skipped = f" ({len(r['faults_skipped'])} kinds skipped: no root)" if r["faults_skipped"] else ""
crashes = f", {len(r['node_crashes'])} node crashes" if r["node_crashes"] else ""
print(f"| {sys.argv[2]} | {r['duration_s']:.0f} s | {r['faults_injected']}{skipped} | "
      f"{a['stats']['acked']} | {unexpected}{crashes} | {expected} |")
PY
done
