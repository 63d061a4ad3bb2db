#!/bin/sh
# scripts/optimise_vs_gates.sh - what `make optimise-vs-gates` runs: the
# experiment of examples/optimise_vs_gates.c in two shards at once (one
# thread each, one per core; shard 0 also measures the curvature), then the
# report (docs/optimise_vs_gates.md and the plots' data) and the plots.
# About 20 minutes on 2 cores with the default budget of 40 s per run.
#
#   sh scripts/optimise_vs_gates.sh [BIN [OPTIONS...]]
#     BIN       build/optimise_vs_gates
#     OPTIONS   passed to both shards (e.g. --seconds 20 --seeds 2)
# DOC and DIR in the environment choose where the report goes (default
# docs/optimise_vs_gates.md and docs/optimise_vs_gates/).
set -eu
BIN=${1:-build/optimise_vs_gates}
[ $# -gt 0 ] && shift
DOC=${DOC:-docs/optimise_vs_gates.md}
DIR=${DIR:-docs/optimise_vs_gates}
[ -x "$BIN" ] || { echo "optimise_vs_gates: no executable $BIN (make $BIN)"; exit 1; }
mkdir -p "$DIR"
start=$(date +%s)
"$BIN" --shard 0/2 --curvature "$@" > "$DIR/runs.0" &
pid=$!
rc1=0
"$BIN" --shard 1/2 "$@" > "$DIR/runs.1" || rc1=$?
rc0=0
wait "$pid" || rc0=$?
[ "$rc0" = 0 ] && [ "$rc1" = 0 ] || { echo "optimise_vs_gates: a shard failed ($rc0, $rc1)"; exit 1; }
"$BIN" --report "$DIR/runs.0" "$DIR/runs.1" --doc "$DOC" --data-dir "$DIR"
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot -e "dir='$DIR'" examples/optimise_vs_gates.gp 2>/dev/null
else
    echo "optimise_vs_gates: no gnuplot, no plots (apt-get install gnuplot-nox)"
fi
echo "optimise_vs_gates: $(($(date +%s) - start)) s; wrote $DOC and $DIR/"
