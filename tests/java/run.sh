#!/usr/bin/env bash
# Interop tests with Apache Kafka's own Java clients (producer, consumer,
# admin client, Kafka Streams) against oxka: Maven fetches the clients, each
# test class starts `$OXKA_BIN broker` on a free port with a fresh data dir.
#
#   tests/java/run.sh [MAVEN ARGS...]      e.g. -Dtest=AdminClientTest
#
# OXKA_BIN defaults to target/debug/oxka of this checkout (build it first:
# cargo build -p oxka). OXKA_JAVA_BROKER_CMD='... {port} {data_dir}' starts
# another broker instead (as the conformance suite's --broker-cmd), e.g.
# "$PWD/tests/kafka-reference/run.sh broker --port {port} --data-dir {data_dir}";
# OXKA_JAVA_BOOTSTRAP=HOST:PORT uses a running broker (restart tests skipped). Tests of known oxka gaps are @Disabled with
# the reason; add '-Djunit.jupiter.conditions.deactivate=org.junit.*DisabledCondition'
# to run them too. Exit code: Maven's (non-zero when a test fails).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export OXKA_BIN="${OXKA_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/oxka}"
command -v mvn >/dev/null || { echo "tests/java/run.sh: mvn is needed (apt-get install maven)" >&2; exit 2; }
# Maven's output goes to target/ inside tests/java (ignored by git).
exec mvn -B -ntp -Dstyle.color=never -f "$HERE/pom.xml" test "$@"
