#!/bin/sh
# tests/optimise_vs_gates.sh - the seconds-long version of the experiment
# (build/optimise_vs_gates --quick: T = 10, one seed, 300 steps, H = 16,
# curvature over 30 steps): a line per row, the same lines on two runs
# (1 and 2 threads: no time limit in --quick), the reference rows and HF
# solving T = 10 (the easiest setting: a property that must hold), finite
# curvature figures, and a report with every row and its data files.
#
#   sh tests/optimise_vs_gates.sh build/optimise_vs_gates
set -u
BIN=${1:-build/optimise_vs_gates}
[ -x "$BIN" ] || { echo "optimise_vs_gates: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ovg.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$BIN" --quick --curvature > "$TMP/runs" 2>&1 || fail "--quick exited $?"
# TG_GOVERNOR=0: really 2 threads (the governor starts a busy machine on 1)
TG_GOVERNOR=0 "$BIN" --quick --curvature --threads 2 > "$TMP/runs2" 2>&1
cmp -s "$TMP/runs" "$TMP/runs2" || fail "1 and 2 threads differ"
for row in tanh irnn orth hf lstm gru; do
    grep -Eq "^run row=$row T=10 seed=1 solved=[01] seconds=0.00 steps=[0-9]+ grads=[0-9]+ mse=[0-9.e-]+ budget=0$" "$TMP/runs" ||
        fail "no run line for $row: $(grep "row=$row " "$TMP/runs")"
done
for row in hf lstm gru; do
    grep -q "^run row=$row T=10 seed=1 solved=1 " "$TMP/runs" || fail "$row did not solve T=10"
done
# curvature: steps 0..25 for tanh and lstm, finite, the distance growing
for row in tanh lstm; do
    n=$(grep -c "^curv row=$row T=10 " "$TMP/runs")
    [ "$n" = 6 ] || fail "$row: $n curvature lines, not 6"
    awk -v r="$row" '$1 == "curv" && $2 == "row="r {
        for (i = 4; i <= 8; i++) { split($i, kv, "="); v[kv[1]] = kv[2] + 0 }
        if (v["eig"] != v["eig"] || v["gnorm"] <= 0 || v["dist"] < last) bad = 1
        last = v["dist"] }
        END { exit bad }' "$TMP/runs" || fail "$row: curvature figures not finite or distance not growing"
done
# the report
"$BIN" --report "$TMP/runs" --doc "$TMP/doc.md" --data-dir "$TMP" > "$TMP/out" 2>&1 ||
    fail "--report exited $?: $(cat "$TMP/out")"
for title in "tanh RNN, Adam" "IRNN" "orthogonal" "Hessian-free" "LSTM, Adam" "GRU, Adam"; do
    grep -q "^| [^|]*$title[^|]* | [01]/1" "$TMP/doc.md" || fail "report: no row '$title'"
done
grep -q "^| hf | \|^| tanh | 10 | 0 | 0 |" "$TMP/doc.md" || fail "report: no curvature table"
[ "$(grep -c . "$TMP/solved.dat")" = 3 ] || fail "solved.dat: not a header, a column line and one length"
[ "$(grep -vc '^#' "$TMP/curvature.dat")" = 12 ] || fail "curvature.dat: not 12 measurements"
# bad arguments
"$BIN" --rows tanh,nope > "$TMP/out" 2>&1 && fail "--rows nope accepted"
grep -q "unknown row 'nope'" "$TMP/out" || fail "--rows nope: $(cat "$TMP/out")"
"$BIN" --shard 2/2 > "$TMP/out" 2>&1 && fail "--shard 2/2 accepted"
"$BIN" --report "$TMP/none" > "$TMP/out" 2>&1 && fail "--report of a missing file accepted"
grep -q "cannot read" "$TMP/out" || fail "--report missing: $(cat "$TMP/out")"

[ "$failures" = 0 ] && echo "optimise_vs_gates: all checks passed" && exit 0
echo "optimise_vs_gates: $failures check(s) failed"
exit 1
