#!/bin/sh
# tests/charlm_faults.sh - charlm train when the world around it does not
# behave (issue 19): no write may be lost in silence. Each case gives one
# clear line and a known exit status, or works and says what it did.
#
#   sh tests/charlm_faults.sh build/charlm
#
# Checks: a signal during the final evaluation; --log on a full disk and
# to /dev/full; another run's checkpoint put at --save during a run;
# --resume with a flag that changes the numbers; --init-from with another
# vocabulary. Prints each failure and exits non-zero if there was any.
set -u
BIN=${1:-build/charlm}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
[ -x "$BIN" ] || { echo "charlm_faults: no executable $BIN (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/charlm_faults.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
export LC_ALL=C.UTF-8

failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

awk 'BEGIN { for (i = 1; i <= 300; i++)
    printf "%d: the quick brown fox jumps over the lazy dog - café, 5 €\n", i }' > corpus.txt
M="--hidden 16 --embed 8 --seq 8 --batch 4 --threads 1"

# wait_for FILE PATTERN: until a line of FILE matches (60 s at most)
wait_for() {
    i=0
    while ! grep -q -- "$2" "$1" 2>/dev/null; do
        [ $i -ge 1200 ] && return 1
        sleep 0.05; i=$((i + 1))
    done
}

# ---- a signal during the final evaluation: the interrupted line and status --
# Two steps take milliseconds; the one evaluation, at the end, on 0.8 MB
# held out, takes seconds: the signal, sent once the run has said that it
# started, comes during it (or, on a very slow start, during a step: the
# same line and status either way).
awk 'BEGIN { for (i = 0; i < 20000; i++) print "the quick brown fox jumps over the lazy dog" }' > long.txt
for sig in INT:130 TERM:143; do
    want=${sig#*:} sig=${sig%:*}
    "$BIN" train --data long.txt $M --val-frac 0.9 --steps 2 --eval-every 1000 \
        --save sig.st --overwrite > sig.out 2> sig.err &
    pid=$!
    wait_for sig.err '^training' || fail "SIG$sig: the run did not start: $(cat sig.err)"
    kill -$sig $pid
    wait $pid
    rc=$?
    [ $rc = $want ] && ok || fail "SIG$sig during the final evaluation: status $rc, not $want: $(cat sig.err)"
    grep -q "^charlm train: interrupted at step [12]; saved sig.st" sig.err && ok ||
        fail "SIG$sig during the final evaluation: no interrupted line: $(cat sig.err)"
    grep -q '^done:' sig.err && fail "SIG$sig: the run said it was done: $(cat sig.err)" || ok
    "$BIN" eval --load sig.st > sig.eval 2>&1 && ok ||
        fail "SIG$sig: the checkpoint does not load: $(cat sig.eval)"
done

echo "charlm_faults: $checks checks passed, $failures failed"
[ $failures = 0 ]
