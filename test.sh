#!/usr/bin/env bash
# Runs every oxka test on this machine, installing what it needs first:
#   cmake (librdkafka is built from source for the rdkafka integration tests),
#   a Python venv with kafka-python and confluent-kafka, kcat, Go and
#   Debian's sarama 1.22 (golang-github-shopify-sarama-dev), Maven,
#   Debian's chromium and chromium-driver (Selenium is in the venv).
# Then: cargo fmt/clippy checks, unit + integration tests (cargo test),
# the Python client tests, the web console in a browser, the sarama 1.22 test, the Java client tests
# (tests/java), and the shared conformance suite.
#
#   ./test.sh              everything
#   ./test.sh --quick      cargo tests only
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

say() { printf '\n==> %s\n' "$*"; }

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -q "$@" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null 2>&1; }
    else
        echo "please install: $*" >&2
        return 1
    fi
}

command -v cmake >/dev/null || { say "installing cmake"; apt_install cmake; }
# librdkafka 2.12's build includes curl.h (OIDC) even with curl disabled
[ -e /usr/include/curl/curl.h ] || ls /usr/include/*/curl/curl.h >/dev/null 2>&1 \
    || { say "installing libcurl headers"; apt_install libcurl4-openssl-dev; }
command -v kcat >/dev/null || command -v kafkacat >/dev/null || { say "installing kcat"; apt_install kcat || true; }

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo test (unit, property and rdkafka integration tests)"
cargo build --workspace
cargo test --workspace

[ "$QUICK" = 1 ] && exit 0

VENV="${OXKA_TEST_VENV:-$ROOT/.venv}"
REQ="$ROOT/tests/python/requirements.txt"
stamp="$VENV/.req-$(sha256sum "$REQ" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    say "preparing Python venv $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ"
    touch "$stamp"
fi

say "Python client tests (kafka-python, confluent-kafka)"
# test_quotas.py runs Kafka's own ConfigCommand through
# tests/kafka-reference/run.sh, which fetches Kafka's jars with Maven (and
# Java with it) the first time
command -v mvn >/dev/null || apt_install maven
OXKA_BIN="$TARGET/debug/oxka" "$VENV/bin/python" -m pytest -c tests/python/pytest.ini tests/python -q

say "web console in a browser (chromium, chromium-driver, Selenium)"
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } \
    || { say "installing chromium and chromium-driver"; apt_install chromium chromium-driver; }
OXKA_BIN="$TARGET/debug/oxka" "$VENV/bin/python" -m pytest -c tests/console/pytest.ini tests/console -q

say "sarama 1.22 (request versions Kafka 4.0 removed, KIP-896)"
command -v go >/dev/null || { say "installing Go"; apt_install golang-go; }
[ -d /usr/share/gocode/src/github.com/Shopify/sarama ] \
    || { say "installing Debian's sarama 1.22"; apt_install golang-github-shopify-sarama-dev; }
tests/sarama/run.sh "$TARGET/debug/oxka"

say "Java client tests (Kafka's producer, consumer, admin client, Streams)"
command -v mvn >/dev/null || apt_install maven
OXKA_BIN="$TARGET/debug/oxka" tests/java/run.sh

CONFORMANCE="$ROOT/../shared/conformance"
if [ -x "$CONFORMANCE/run.sh" ]; then
    say "conformance suite (every area)"
    # Every area: the single-node broker, groups, lifecycle and exactly-once
    # issues are all in. Known gaps are
    # deselected by name in tests/conformance-known-failures.txt, each with
    # its reason, so that any other failure breaks the build.
    mapfile -t deselect < <(grep -v '^\s*#' tests/conformance-known-failures.txt | awk 'NF {print "--deselect=" $1}')
    "$CONFORMANCE/run.sh" \
        --broker-cmd "$TARGET/debug/oxka broker --listen 127.0.0.1:{port} --data-dir {data_dir} --log-level warn" \
        "${deselect[@]}" -q
    say "conformance suite, cluster area (a fresh three-node cluster per test)"
    # Every node is a broker and a voter of the metadata quorum (combined
    # mode), on loopback ports the suite picks.
    "$CONFORMANCE/run.sh" -m cluster \
        --cluster-cmd "$TARGET/debug/oxka broker --log-level warn --override node.id={node_id} --override process.roles=broker,controller --override listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port} --override advertised.listeners=PLAINTEXT://127.0.0.1:{port} --override controller.listener.names=CONTROLLER --override controller.quorum.voters={voters} --override log.dirs={data_dir} --override broker.rack={rack}" \
        "${deselect[@]}" -q
elif [ "${OXKA_SKIP_CONFORMANCE:-0}" = 1 ]; then
    say "all tests passed EXCEPT the conformance suite, which did NOT run ($CONFORMANCE not found, OXKA_SKIP_CONFORMANCE=1)"
    exit 0
else
    echo "error: the conformance suite was not found at $CONFORMANCE;" >&2
    echo "       put ../shared beside the checkout, or set OXKA_SKIP_CONFORMANCE=1 to run the rest without it" >&2
    exit 1
fi
say "all tests passed"
