# tests/lib.sh - what the shell tests of a program share, sourced first:
#
#   . "$(dirname "$0")/lib.sh"
#   tg_test_start NAME "${1:-build/charlm}"
#
# sets BIN (the program, made absolute; the test stops with a line if it
# is not there), SRCDIR (tests/), TMP (a fresh directory, removed at
# exit, and the working directory from then on), LC_ALL, and the
# counters: `fail MESSAGE` counts and prints a failure, `ok` a check that
# held.
tg_test_start() {
    BIN=$2
    case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
    [ -x "$BIN" ] ||
        { echo "$1: no executable $BIN (build it with make)"; exit 1; }
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    trap 'rm -rf "$TMP"' EXIT
    cd "$TMP" || exit 1
    export LC_ALL=C.UTF-8
    failures=0
    checks=0
}
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
