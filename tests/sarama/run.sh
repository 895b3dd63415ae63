#!/usr/bin/env bash
# Runs main.go (Debian's sarama 1.22, pinned to request versions Kafka 4.0
# removed) against a fresh oxka broker on a free loopback port.
#
#   tests/sarama/run.sh path/to/oxka
#
# Needs Go and Debian's golang-github-shopify-sarama-dev (GOPATH-style
# sources in /usr/share/gocode); ./test.sh installs both. Builds offline.
set -euo pipefail
OXKA="${1:?usage: $0 path/to/oxka}"
HERE="$(cd "$(dirname "$0")" && pwd)"
GOPATH_DEB=/usr/share/gocode
[ -d "$GOPATH_DEB/src/github.com/Shopify/sarama" ] \
    || { echo "sarama sources missing: apt-get install golang-github-shopify-sarama-dev" >&2; exit 1; }

WORK="$(mktemp -d)"
BROKER_PID=""
cleanup() {
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

CGO_CFLAGS="-O2 -Wno-deprecated-declarations" GOPATH="$GOPATH_DEB" GO111MODULE=off GOFLAGS= \
    go build -o "$WORK/sarama-check" "$HERE/main.go"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$OXKA" broker --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --log-level warn >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.log" >&2; exit 1; }
    sleep 0.1
done

if ! timeout 120 "$WORK/sarama-check" "127.0.0.1:$PORT"; then
    echo "--- broker log" >&2
    cat "$WORK/broker.log" >&2
    exit 1
fi
