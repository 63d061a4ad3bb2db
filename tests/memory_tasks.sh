#!/bin/sh
# tests/memory_tasks.sh - checks build/memory_tasks --quick (T = 5 and 10,
# 200 steps, one seed; a few seconds): both tables are printed with a row
# per cell and a column per length, the LSTM or the GRU solves the adding
# problem at T = 5 (a property that must hold: the easiest setting), two
# runs print the same, and bad flags are refused.
#
#   sh tests/memory_tasks.sh build/memory_tasks
set -u
BIN=${1:-build/memory_tasks}
[ -x "$BIN" ] || { echo "memory_tasks: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/memory_tasks.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$BIN" --quick > "$TMP/out1" 2>&1 || fail "memory_tasks --quick exited $?"
"$BIN" --quick --threads 1 > "$TMP/out2" 2>&1
cmp -s "$TMP/out1" "$TMP/out2" || fail "two runs (2 threads, 1 thread) differ"

# the row of task $1's table for cell $2: "cell s/n steps|- s/n steps|-"
row() { awk -v task="$1" -v cell="$2" '$1 == task":" && $2 == "solved/seeds," { n = 1; next }
    n && $1 == cell { print; exit }' "$TMP/out1"; }
for task in adding copy; do
    grep -q "^cell *T=5 *T=10$" "$TMP/out1" || fail "$task: table header missing"
    for cell in rnn lstm gru; do
        r=$(row $task $cell)
        echo "$r" | grep -Eq "^$cell( +[01]/1 +([0-9]+|-)){2}$" ||
            fail "$task: row for $cell is '$r'"
    done
    grep -q "^$task longest solved (by every seed): rnn [^,]*, lstm [^,]*, gru [^,]*$" \
        "$TMP/out1" || fail "$task: no 'longest solved' line"
done
[ "$(grep -c '^adding .* seed 1: \(solved at step\|not solved in\)' "$TMP/out1")" = 6 ] ||
    fail "adding: not one line per cell and length"

# the easiest setting: a gated cell solves the adding problem at T = 5
lstm=$(row adding lstm | awk '{print $2}'); gru=$(row adding gru | awk '{print $2}')
[ "$lstm" = 1/1 ] || [ "$gru" = 1/1 ] ||
    fail "adding T=5: neither lstm ($lstm) nor gru ($gru) solved it"
grep -Eq '^adding (lstm|gru) +T=5 +seed 1: solved at step [0-9]+ \(val mse 0\.00' "$TMP/out1" ||
    fail "adding T=5: no gated cell reached validation mse < 0.01"

"$BIN" --quick --lengths 5,x > "$TMP/err" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "memory_tasks: --lengths wants" "$TMP/err" ||
    fail "--lengths 5,x: exit $rc, message: $(cat "$TMP/err")"
"$BIN" --task sort > "$TMP/err" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "memory_tasks: --task wants adding, copy or both" "$TMP/err" ||
    fail "--task sort: exit $rc, message: $(cat "$TMP/err")"

if [ $failures = 0 ]; then echo "memory_tasks: all checks passed"; else
    cat "$TMP/out1"; echo "memory_tasks: $failures checks failed"; exit 1; fi
