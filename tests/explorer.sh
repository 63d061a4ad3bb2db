#!/bin/sh
# tests/explorer.sh - the explorer's pages (autograd/explore.h), read in a
# real browser: build/explore writes the pages of docs/explorer/ and the
# numbers C computed for them; tests/explorer_browser.py opens each page
# in headless Chromium, steps through it (right arrow, #step=N, Home, End)
# and checks that what it shows equals those numbers, that the RNN's time
# axis fades where the LSTM's does not, and that a screenshot is not
# blank. It also checks that docs/explorer/ holds what build/explore
# writes today (numbers to 1e-4).
#
#   sh tests/explorer.sh [BIN]        (BIN: build/explore)
#
# CHROMIUM names the browser (chromium by default).
# Skips, with one line, where Chromium or python3-websocket is missing
# (scripts/deps.sh installs them).
set -u
BIN=${1:-build/explore}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
cd "$(dirname "$0")/.." || exit 1
[ -x "$BIN" ] ||
    { echo "explorer: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/explorer.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
"$BIN" "$TMP" --expect "$TMP/expect.json" > "$TMP/log" 2>&1 \
    || { cat "$TMP/log"; echo "explorer: $BIN failed"; exit 1; }
fail=0
# (numbers to 1e-4: another CPU's kernels may round the last digits
# differently)
for p in expr lstm_compiled lstm_written rnn_vs_lstm; do
    /usr/bin/python3 tests/explorer_browser.py same "docs/explorer/$p.html" \
        "$TMP/$p.html" || {
        echo "explorer: docs/explorer/$p.html is not what $BIN writes today" \
             "(make explore rewrites it)"; fail=1; }
done
CHROMIUM=${CHROMIUM:-chromium}
export CHROMIUM
if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
    echo "explorer: SKIPPED the browser checks: no $CHROMIUM" \
         "(sh scripts/deps.sh chromium)"
    exit $fail
fi
if ! /usr/bin/python3 -c 'import websocket' 2>/dev/null; then
    echo "explorer: SKIPPED the browser checks: no python3-websocket" \
         "(sh scripts/deps.sh chromium)"
    exit $fail
fi
/usr/bin/python3 tests/explorer_browser.py check "$TMP" "$TMP/expect.json" ||
    fail=1
exit $fail
