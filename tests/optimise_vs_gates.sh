#!/bin/sh
# tests/optimise_vs_gates.sh - the seconds-long version of the study
# (build/optimise_vs_gates --quick: H = 16, adding T = 10, copy T = 5, one
# seed, small budgets in sequence-gradients, every row's whole tuning grid
# on one tuning seed, curvature over 30 Adam steps): every row's tuning and
# run lines, the same lines when run in two stages, resumed, on 2 threads
# (no time limit anywhere: all but their wall seconds are the same), a
# rerun skipping what is done,
# the LSTM and GRU solving the adding problem at T = 10 (the easiest
# setting: a property that must hold), finite curvature figures including
# the preconditioned one, and a report with every table and its data
# files; bad arguments refused with a message.
#
#   sh tests/optimise_vs_gates.sh build/optimise_vs_gates
set -u
BIN=${1:-build/optimise_vs_gates}
[ -x "$BIN" ] || { echo "optimise_vs_gates: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ovg.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
nowall() { grep -v '^config' "$1" | sed 's/ wall=[0-9.]*//' | sort; }

"$BIN" --quick --curvature > "$TMP/runs" 2> "$TMP/err" || fail "--quick exited $?: $(cat "$TMP/err")"
# the same in two stages, resuming from the first, the second on 2 threads
# (TG_GOVERNOR=0: really 2; the governor starts a busy machine on 1) for
# two rows and the curvature (all rows take long on 2 busy cores)
"$BIN" --quick --stage tune --out "$TMP/staged" > /dev/null 2>&1 || fail "--stage tune exited $?"
study() {
    TG_GOVERNOR=0 "$BIN" --quick --stage study --rows gru,hf-ms --curvature \
        --threads 2 --out "$TMP/staged" --results "$TMP/staged" > /dev/null 2>&1
}
study || fail "--stage study exited $?"
grep -E '^(tune|curv|run row=(gru|hf-ms) )' "$TMP/runs" > "$TMP/part"
nowall "$TMP/part" > "$TMP/a"
nowall "$TMP/staged" > "$TMP/b"
cmp -s "$TMP/a" "$TMP/b" || fail "two stages on 2 threads differ from one run: $(diff "$TMP/a" "$TMP/b" | head -4)"
# a rerun finds every job done: one more config line, nothing else
n0=$(grep -c . "$TMP/staged")
study
[ "$(grep -c . "$TMP/staged")" = $((n0 + 1)) ] || fail "a rerun did not skip the jobs done"

num='[0-9.e+-]+'
for row in tanh lstm gru orth irnn-le hf-ms tanh-id relu irnn hf hf-sparse; do
    for task in adding copy; do
        T=10; [ $task = copy ] && T=5
        grep -Eq "^run row=$row task=$task T=$T seed=1 set=[0-9]+ lr=$num clip=$num solved=[01] work=[0-9]+ steps=[0-9]+ metric=$num wall=$num budget=[0-9]+$" "$TMP/runs" ||
            fail "no run line for $row, $task: $(grep "^run row=$row task=$task" "$TMP/runs")"
        n=$(grep -c "^tune row=$row task=$task T=$T set=[0-9]* seed=101 lr=" "$TMP/runs")
        want=8; case $row in irnn-le) want=12;; hf*) want=4;; esac
        [ "$n" = $want ] || fail "$row, $task: $n tuning lines, not $want"
    done
done
for row in lstm gru; do
    grep -q "^run row=$row task=adding T=10 seed=1 .* solved=1 " "$TMP/runs" || fail "$row did not solve the adding problem at T=10"
done
# curvature: steps 0, 10, 25, 30 per row and rate; finite, and the
# preconditioned eigenvalue finite after step 0
for row in tanh lstm; do
    for lr in 0.001 0.01; do
        n=$(grep -c "^curv row=$row lr=$lr seed=1 T=10 step=" "$TMP/runs")
        [ "$n" = 4 ] || fail "$row lr $lr: $n curvature lines, not 4"
    done
done
awk '$1 == "curv" { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["eigH"] + 0 != v["eigH"] + 0 || v["gnorm"] + 0 <= 0 || v["loss"] == "nan") bad = 1
    if (v["step"] > 0 && (v["eigP"] == "nan" || v["eigP"] == "-nan" || v["eigP"] ~ /inf/)) bad = 1 }
    END { exit bad }' "$TMP/runs" || fail "curvature figures not finite: $(grep '^curv' "$TMP/runs" | head -3)"

# the report
"$BIN" --report "$TMP/runs" --doc "$TMP/doc.md" --data-dir "$TMP" > "$TMP/out" 2>&1 ||
    fail "--report exited $?: $(cat "$TMP/out")"
for title in "## How every run is made" "## The rows" "## The cost constants" \
    "## The settings chosen" "### Tuning: the adding task at T = 10" \
    "### Tuning: the copy task at T = 5" "### The adding task: solved" \
    "### The adding task: work to solve" "### The copy task: solved" \
    "### The copy task: work to solve" "## Curvature along training"; do
    grep -q "^$title" "$TMP/doc.md" || fail "report: no section '$title'"
done
for row in tanh lstm gru orth irnn-le hf-ms tanh-id relu irnn hf hf-sparse; do
    [ "$(grep -Ec "^\| $row \| [01]/1 \[0\.[0-9]{2}, [01]\.[0-9]{2}\] \|$" "$TMP/doc.md")" = 2 ] ||
        fail "report: $row has not two solved lines with an interval"
    grep -Eq "^\| $row \| (lr $num, clip $num|lambda0 $num) \| (lr $num, clip $num|lambda0 $num) \|$" "$TMP/doc.md" ||
        fail "report: no chosen settings for $row"
done
grep -q "^| tanh | 0.01 | 25 | [-0-9.e+]* ([^)]*) | 200 | [-0-9.e+]* ([^)]*) | 3800 |" "$TMP/doc.md" ||
    fail "report: no curvature line with 2/lr and 38/lr"
grep -q "GN_COST = [0-9.]*\*\* per sequence" "$TMP/doc.md" || fail "report: no GN_COST"
# the plateau's MSE (predicting 1) on the tuning and reported batches:
# the variance of a sum of two U(0,1), 1/6, give or take the batch
for where in "On this tuning validation batch" "The plateau: on each reported"; do
    grep "^$where" "$TMP/doc.md" | grep -Eq "scores an MSE of 0\.(1[3-9]|2[0-1])[0-9]*" ||
        fail "report: no plateau MSE near 1/6 in '$where': $(grep "^$where" "$TMP/doc.md")"
done
# examples processed = steps x batch: the gru row (Adam) at adding T=10
B=$(sed -n 's/^config .* B=\([0-9]*\) .*/\1/p' "$TMP/runs" | head -1)
steps=$(sed -n 's/^run row=gru task=adding T=10 seed=1 .* steps=\([0-9]*\) .*/\1/p' "$TMP/runs")
sed -n '/^### The adding task: work to solve/,/^##/p' "$TMP/doc.md" |
    grep -q "^| gru | [0-9]* ([0-9]*-[0-9]*); $((steps * B)) ex\.; [0-9.]* s |" ||
    fail "report: the gru row's examples are not $steps steps x B=$B: $(grep '^| gru | [0-9]* (' "$TMP/doc.md")"
[ "$(grep -c '^#' "$TMP/solved.dat")" = 22 ] || fail "solved.dat: not 22 blocks (2 tasks x 11 rows)"
[ "$(grep -v '^#' "$TMP/curvature.dat" | grep -c .)" = 16 ] || fail "curvature.dat: not 16 points"
# bad arguments
"$BIN" --rows tanh,nope > "$TMP/out" 2>&1 && fail "--rows nope accepted"
grep -q "unknown row 'nope'" "$TMP/out" || fail "--rows nope: $(cat "$TMP/out")"
"$BIN" --shard 2/2 > "$TMP/out" 2>&1 && fail "--shard 2/2 accepted"
grep -q "shard wants" "$TMP/out" || fail "--shard 2/2: $(cat "$TMP/out")"
"$BIN" --stage later > "$TMP/out" 2>&1 && fail "--stage later accepted"
grep -q "stage wants" "$TMP/out" || fail "--stage later: $(cat "$TMP/out")"
"$BIN" --quick --stage study > "$TMP/out" 2>&1 && fail "the study stage ran untuned"
grep -q "not complete" "$TMP/out" || fail "untuned study: $(cat "$TMP/out")"
"$BIN" --quick --H 8 --results "$TMP/runs" > "$TMP/out" 2>&1 && fail "results of another configuration accepted"
grep -q "another configuration" "$TMP/out" || fail "other configuration: $(cat "$TMP/out")"
"$BIN" --report "$TMP/none" > "$TMP/out" 2>&1 && fail "--report of a missing file accepted"
grep -q "cannot read" "$TMP/out" || fail "--report missing: $(cat "$TMP/out")"

[ "$failures" = 0 ] && echo "optimise_vs_gates: all checks passed" && exit 0
echo "optimise_vs_gates: $failures check(s) failed"
exit 1
