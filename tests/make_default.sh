#!/bin/sh
# tests/make_default.sh - `make` with no target builds (all) and runs no
# test (under a second).
#
#   sh tests/make_default.sh ["MAKE"]      (MAKE: the make command; make)
#
# 1. The default goal, as make reports it after reading the Makefile, is
#    `all`. It is asked through a second makefile read after the first,
#    which runs nothing: `make -n` would not do for this step, since it
#    still runs the recipe lines that call $(MAKE), and run-tests' does.
# 2. `make -n` into an empty build directory prints the same commands as
#    `make -n all`: some (the libraries' - an empty list, which an
#    up-to-date tree gives, would prove nothing), and none that names a
#    test binary or a test script.
set -u
MAKE_CMD=${1:-make}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg_make_default.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT" || exit 1
# the make that runs this script passes its flags and variables (BUILD=,
# -j) down through the environment: this test gives its own
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
# shellcheck disable=SC2016
printf 'tg-default-goal:\n\t@echo "$(.DEFAULT_GOAL)"\n' > "$TMP/goal.mk"
# shellcheck disable=SC2086
goal=$($MAKE_CMD -s --no-print-directory -f Makefile -f "$TMP/goal.mk" tg-default-goal 2>&1)
if [ "$goal" != all ]; then
    echo "make_default: FAIL: \`make\` with no target makes '$goal', not 'all'" \
         "(set .DEFAULT_GOAL := all at the top of the Makefile)"
    exit 1
fi
B=$TMP/build
# shellcheck disable=SC2086
$MAKE_CMD -n --no-print-directory BUILD="$B" > "$TMP/default.n" 2>&1 &&
    $MAKE_CMD -n --no-print-directory BUILD="$B" all > "$TMP/all.n" 2>&1 ||
    { echo "make_default: FAIL: make -n failed:"; cat "$TMP/default.n" "$TMP/all.n"; exit 1; }
fail=0
if ! cmp -s "$TMP/default.n" "$TMP/all.n"; then
    echo "make_default: FAIL: \`make -n\` and \`make -n all\` differ:"
    diff "$TMP/all.n" "$TMP/default.n" | head -n 10
    fail=1
fi
if ! grep -q "rcs $B/libtapegrad.a " "$TMP/default.n"; then
    echo "make_default: FAIL: \`make -n\` into an empty directory does not build libtapegrad.a"
    fail=1
fi
if grep -n "$B/tests/\|tests/[a-z_]*\.sh\|TESTS PASSED" "$TMP/default.n" > "$TMP/tests"; then
    echo "make_default: FAIL: \`make\` would build or run tests:"
    head -n 5 "$TMP/tests"
    fail=1
fi
[ $fail = 0 ] && echo "make_default: make = make all ($(grep -c . "$TMP/default.n") commands into an empty build directory), no test"
exit $fail
