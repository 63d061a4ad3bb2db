#!/bin/sh
# scripts/optimise_vs_gates.sh - what `make optimise-vs-gates` runs: the
# study of examples/optimise_vs_gates/ in JOBS shards at once (one thread
# each), in three steps:
#   1. --calibrate (once; a few seconds): the cost ratios and the seconds
#      per sequence-gradient of each cell, for the page;
#   2. the tuning stage, JOBS shards, waited for: every setting of every
#      row's grid must be tuned before any reported run starts;
#   3. the study stage (reported runs and curvature), JOBS shards;
# then the report (the page and the plots' data) and the plots.
# Each shard appends a line per finished job to its own file in
# DIR/results/ and skips the jobs whose lines are there already: rerunning
# after a kill resumes the study (delete DIR/results/ to start afresh).
# Estimated at 55-80 minutes on 2 cores (Makefile, "make optimise-vs-gates");
# 58 minutes on the 2-core machine of docs/optimise_vs_gates.md.
#
#   JOBS=2 sh scripts/optimise_vs_gates.sh [BIN [OPTIONS...]]
#     BIN       build/optimise_vs_gates
#     OPTIONS   passed to every shard of both stages (e.g. --seeds 3); a
#               different set of options will not resume the old results
# DOC and DIR in the environment choose where the report goes (default
# docs/optimise_vs_gates.md and docs/optimise_vs_gates/).
set -eu
BIN=${1:-build/optimise_vs_gates}
[ $# -gt 0 ] && shift
JOBS=${JOBS:-2}
DOC=${DOC:-docs/optimise_vs_gates.md}
DIR=${DIR:-docs/optimise_vs_gates}
RES=$DIR/results
[ -x "$BIN" ] || { echo "optimise_vs_gates: no executable $BIN (make $BIN)"; exit 1; }
mkdir -p "$RES"
start=$(date +%s)
if [ ! -s "$RES/calibrate" ]; then
    "$BIN" --calibrate > "$RES/calibrate.tmp" && mv "$RES/calibrate.tmp" "$RES/calibrate"
fi
# stage NAME [OPTIONS...]: JOBS shards of a stage, all waited for
stage() {
    name=$1
    shift
    resumed=""
    for f in "$RES/$name".*; do
        [ -s "$f" ] && resumed=", resumed from the lines of an earlier run"
    done
    pids=""
    i=0
    while [ "$i" -lt "$JOBS" ]; do
        "$BIN" --stage "$name" --shard "$i/$JOBS" --out "$RES/$name.$i" \
            "$@" --results "$RES"/* &
        pids="$pids $!"
        i=$((i + 1))
    done
    rc=0
    for p in $pids; do
        wait "$p" || rc=1
    done
    [ "$rc" = 0 ] || { echo "optimise_vs_gates: a shard of the $name stage failed"; exit 1; }
    t=$(($(date +%s) - start))
    echo "elapsed $name stage done at $t s, $JOBS shards$resumed" >> "$RES/elapsed"
    echo "optimise_vs_gates: $name stage done, $t s"
}
stage tune "$@"
stage study --curvature "$@"
"$BIN" --report "$RES"/* --doc "$DOC" --data-dir "$DIR"
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot -e "dir='$DIR'" examples/optimise_vs_gates.gp
else
    echo "optimise_vs_gates: no gnuplot, no plots (apt-get install gnuplot-nox)"
fi
echo "optimise_vs_gates: $(($(date +%s) - start)) s; wrote $DOC and $DIR/"
