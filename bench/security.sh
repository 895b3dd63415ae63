#!/usr/bin/env bash
# Throughput of 1 KiB records over PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512)
# in one run against one release broker, with `oxka perf` (oxka-client over
# rustls), and the connection set-up time of SASL_SSL + SCRAM next to
# PLAINTEXT (median of N runs of a one-request command). Certificates are
# made here with openssl; everything runs on loopback and stops by itself.
#
#   bench/security.sh [RECORDS]        (default 200000 records of 1 KiB)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OXKA=${OXKA:-${CARGO_TARGET_DIR:-$ROOT/target}/release/oxka}
N=${1:-200000}
W=$(mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; wait $BROKER 2>/dev/null || true; rm -rf "$W"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=oxka-bench-ca -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$W/broker.key" -out "$W/broker.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$W/san.ext"
openssl x509 -req -in "$W/broker.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
    -days 1 -extfile "$W/san.ext" -out "$W/broker.crt" 2>/dev/null
cat "$W/broker.key" "$W/broker.crt" > "$W/broker-keystore.pem"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); S=$(port); SS=$(port)
cat > "$W/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$P,SSL://127.0.0.1:$S,SASL_SSL://127.0.0.1:$SS
log.dirs=$W/data
ssl.keystore.type=PEM
ssl.keystore.location=$W/broker-keystore.pem
sasl.enabled.mechanisms=SCRAM-SHA-512
PROPS
"$OXKA" broker -c "$W/server.properties" --log-level warn > "$W/broker.out" &
BROKER=$!
for _ in $(seq 100); do grep -q started "$W/broker.out" 2>/dev/null && break; sleep 0.1; done

cat > "$W/ssl.properties" <<PROPS
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$W/ca.pem
PROPS
cat > "$W/sasl_ssl.properties" <<PROPS
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$W/ca.pem
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bench" password="bench-secret";
PROPS
: > "$W/plaintext.properties"
"$OXKA" users scram set bench --password bench-secret --mechanism SCRAM-SHA-512 --iterations 4096 -b "127.0.0.1:$P" 2>/dev/null

run() { # protocol port
    local proto=$1 addr=127.0.0.1:$2 cfg="$W/$(echo "$1" | tr A-Z a-z).properties"
    "$OXKA" topics create "bench-$proto" --partitions 1 -b "127.0.0.1:$P" >/dev/null
    local p c
    p=$("$OXKA" perf produce --topic "bench-$proto" --num-records "$N" --record-size 1024 --throughput -1 \
        -b "$addr" --command-config "$cfg" --producer-props acks=1 linger.ms=5 --output json)
    c=$("$OXKA" perf consume --topic "bench-$proto" --num-records "$N" -b "$addr" --command-config "$cfg" \
        --output json)
    python3 - "$proto" "$p" "$c" <<'PY'
import json, sys
proto, p, c = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{proto:10s} produce {p['mb_per_sec']:7.1f} MB/s ({p['records_per_sec']:9.0f} rec/s)"
      f"   consume {c['mb_per_sec']:7.1f} MB/s ({c['records_per_sec']:9.0f} rec/s)")
PY
}
echo "== throughput, $N records of 1 KiB"
run PLAINTEXT "$P"
run SSL "$S"
run SASL_SSL "$SS"

echo "== connection set-up: one DescribeCluster, fresh process each time (median of 15)"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for pair in "PLAINTEXT $P" "SSL $S" "SASL_SSL $SS"; do
    set -- $pair
    cfg="$W/$(echo "$1" | tr A-Z a-z).properties"
    for _ in $(seq 15); do
        s=$(date +%s%N)
        "$OXKA" cluster info -b "127.0.0.1:$2" --command-config "$cfg" >/dev/null
        echo $(( ($(date +%s%N) - s) / 1000 ))
    done | median | awk -v p="$1" '{printf "%s: %.1f ms\n", p, $1/1000}'
done
