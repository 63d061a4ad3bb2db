#!/bin/sh
# tests/custom_cells.sh - build/custom_cells --quick (a few seconds): every
# user-defined cell must train (its mean training mse on the adding problem
# falls below its first-step mse) and the hard-gate cell, whose gate is a
# 0/1 step trained through tg_step_ste, must run to a finite test mse.
#
#   sh tests/custom_cells.sh build/custom_cells
set -u
BIN=${1:-build/custom_cells}
[ -x "$BIN" ] || { echo "custom_cells: no executable $BIN (build it with make)"; exit 1; }
OUT=$("$BIN" --quick) || { echo "FAIL: $BIN --quick exited non-zero"; exit 1; }
failures=0
for cell in peephole mgu ln_lstm hard_gate soft_gate; do
    line=$(printf '%s\n' "$OUT" | grep "^RESULT $cell ")
    if [ -z "$line" ]; then
        echo "FAIL: no result for $cell"; failures=$((failures + 1)); continue
    fi
    # RESULT name first_mse last_window_mse test_mse: learned if the last
    # window is under half the first step and the test mse is finite and
    # no worse than predicting the mean (1/6) by more than 25%
    if ! printf '%s\n' "$line" | awk '{ exit !($4 < 0.5 * $3 && $5 == $5 + 0 && $5 < 0.21) }'; then
        echo "FAIL: $cell did not learn: $line"; failures=$((failures + 1))
    fi
done
printf '%s\n' "$OUT" | grep -q "cells known by name:.*hard_gate" ||
    { echo "FAIL: hard_gate not registered by name"; failures=$((failures + 1)); }
if [ $failures = 0 ]; then echo "custom_cells: all 5 cells trained"; else exit 1; fi
