#!/usr/bin/env bash
# Refreshes the console's screenshots in docs/console/ (one PNG per page):
# a debug broker with a producer and a consumer group at work, every page
# in Debian's headless chromium through Selenium (tests/console/harness.py,
# the browser tests' own setup). Needs chromium and chromium-driver (apt)
# and the test venv (test.sh makes it; OXKA_TEST_VENV to use another).
#
#   scripts/console-screenshots.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${OXKA_TEST_VENV:-$ROOT/.venv}"
OUT="${1:-$ROOT/docs/console}"
if ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
    echo "please install chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r tests/python/requirements.txt
fi
cargo build -p oxka
OXKA_BIN="$TARGET/debug/oxka" "$VENV/bin/python" tests/console/screenshots.py "$OUT"
