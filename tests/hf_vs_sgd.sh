#!/bin/sh
# tests/hf_vs_sgd.sh - build/hf_vs_sgd --quick on a text of the repository
# (README.md): a table with a row per validation point and a column per
# optimiser, every optimiser lowering the validation loss from its start
# (the same for all: one initialisation), and the same output twice.
#
#   sh tests/hf_vs_sgd.sh build/hf_vs_sgd
set -u
BIN=${1:-build/hf_vs_sgd}
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$BIN" ] || { echo "hf_vs_sgd: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hfsgd.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$BIN" --quick --data "$SRCDIR/README.md" --threads 1 --doc "$TMP/doc.md" > "$TMP/out" 2>&1 ||
    fail "--quick exited $?: $(tail -n 3 "$TMP/out")"
# TG_GOVERNOR=0: really 2 threads (the governor starts a busy machine on 1)
TG_GOVERNOR=0 "$BIN" --quick --data "$SRCDIR/README.md" --threads 2 > "$TMP/out2" 2>&1
sed 's/([0-9]* s)//g' "$TMP/out" > "$TMP/a"
sed 's/([0-9]* s)//g' "$TMP/out2" > "$TMP/b"
cmp -s "$TMP/a" "$TMP/b" || fail "1 and 2 threads give other losses"
[ "$(grep -c '^| [0-9]* |' "$TMP/out")" = 3 ] || fail "not 3 validation points: $(cat "$TMP/out")"
# first and last row: every column's loss fell
awk -F'|' '/^\| 0 \|/ { for (i = 3; i <= 7; i++) first[i] = $i + 0 }
    /^\| [0-9]+ \|/ { for (i = 3; i <= 7; i++) last[i] = $i + 0 }
    END { for (i = 3; i <= 7; i++) if (!(last[i] < first[i])) exit 1 }' "$TMP/out" ||
    fail "an optimiser did not lower the loss: $(grep '^|' "$TMP/out")"
grep -q "^at the full budget: Hessian-free [0-9.]*, the best SGD" "$TMP/out" || fail "no verdict line"
grep -q "^# Hessian-free against SGD" "$TMP/doc.md" || fail "--doc: no markdown"
"$BIN" --data "$TMP/none" > "$TMP/out" 2>&1 && fail "a missing --data accepted"
grep -q "cannot read" "$TMP/out" || fail "missing --data: $(cat "$TMP/out")"
printf 'tiny' > "$TMP/tiny"
"$BIN" --data "$TMP/tiny" > "$TMP/out" 2>&1 && fail "a 4-byte text accepted"

[ "$failures" = 0 ] && echo "hf_vs_sgd: all checks passed" && exit 0
echo "hf_vs_sgd: $failures check(s) failed"
exit 1
