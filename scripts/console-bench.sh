#!/usr/bin/env bash
# Measures the web console with 1,000 topics (CONSOLE_BENCH_TOPICS to
# change): page sizes, server times and load times in headless chromium.
# Needs chromium, chromium-driver and the test venv (as
# scripts/console-screenshots.sh). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${OXKA_TEST_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r tests/python/requirements.txt
fi
cargo build -p oxka
OXKA_BIN="$TARGET/debug/oxka" "$VENV/bin/python" tests/console/bench.py
