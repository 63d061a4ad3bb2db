#!/bin/sh
# tests/gradflow.sh - checks build/gradflow --quick (tiny sizes, < 1 s):
# both tables are printed with every distance, the plain RNN's gradient
# vanishes at init and the large-weight RNN's grows, tg_clip_grad_norm
# brings the global norm to the clip value, the .dat files hold one line
# per step, two runs print the same, and a bad flag is refused.
#
#   sh tests/gradflow.sh build/gradflow
set -u
BIN=${1:-build/gradflow}
[ -x "$BIN" ] || { echo "gradflow: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gradflow.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$BIN" --quick --out "$TMP/a" > "$TMP/out1" 2>&1 || fail "gradflow --quick exited $?"
"$BIN" --quick --out "$TMP/b" > "$TMP/out2" 2>&1
sed "s|$TMP/b|$TMP/a|" "$TMP/out2" | cmp -s - "$TMP/out1" || fail "two runs differ"

# the row of a table (1: the cells, 2: exploding) at distance d
row() { awk -v tab="$1" -v d="$2" '/^log10 \|\|dL\/dh_t\|\| by distance/ { n = 1 }
    /^exploding: / { n = 2 } n == tab && $1 == d && NF >= 3 { print; exit }' "$TMP/out1"; }
for d in 0 1 2 5 10 19; do
    [ "$(row 1 $d | wc -w)" = 7 ] || fail "table 1 has no row for distance $d"
    [ "$(row 2 $d | wc -w)" = 3 ] || fail "exploding table has no row for distance $d"
done
grep -q '^distance *rnn init *rnn trained *lstm init *lstm trained *gru init *gru trained$' \
    "$TMP/out1" || fail "table 1 header missing"

# untrained plain RNN with small weights: vanishing (and by a lot)
near=$(row 1 0 | awk '{print $2}'); far=$(row 1 19 | awk '{print $2}')
awk -v a="$near" -v b="$far" 'BEGIN { exit !(b < a - 2) }' ||
    fail "rnn init: log10 norm at distance 19 ($far) not < at 0 ($near) - 2"
# large recurrent weights: exploding
near=$(row 2 0 | awk '{print $3}'); far=$(row 2 19 | awk '{print $3}')
awk -v a="$near" -v b="$far" 'BEGIN { exit !(b > a + 1) }' ||
    fail "rnn large: log10 norm at distance 19 ($far) not > at 0 ($near) + 1"
growth=$(sed -n 's/^growth per step back.*: large \([0-9.]*\),.*/\1/p' "$TMP/out1")
awk -v g="${growth:-0}" 'BEGIN { exit !(g > 1) }' || fail "growth per step '$growth' not > 1"
# the global norm is above the clip value, and clipping brings it to 1
before=$(sed -n 's/^global gradient norm (all parameters): \([^ ]*\) .*/\1/p' "$TMP/out1")
after=$(sed -n 's/^after tg_clip_grad_norm(params, 1): \([^ ]*\)$/\1/p' "$TMP/out1")
awk -v b="${before:-0}" -v a="${after:-0}" 'BEGIN { exit !(b > 1 && a > 0.9999 && a < 1.0001) }' ||
    fail "clipping: norm before '$before' (want > 1), after '$after' (want 1)"

for f in rnn_init rnn_trained lstm_init lstm_trained gru_init gru_trained rnn_explode; do
    n=$(grep -vc '^#' "$TMP/a/$f.dat" 2>/dev/null)
    [ "${n:-0}" = 20 ] || fail "$f.dat: ${n:-no} data lines, want 20"
done

"$BIN" --quick --T x > "$TMP/err" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "gradflow: --T wants an integer" "$TMP/err" ||
    fail "--T x: exit $rc, message: $(cat "$TMP/err")"

if [ $failures = 0 ]; then echo "gradflow: all checks passed"; else
    cat "$TMP/out1"; echo "gradflow: $failures checks failed"; exit 1; fi
