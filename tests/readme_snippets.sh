#!/bin/sh
# tests/readme_snippets.sh - the README's code compiles as given.
#
#   sh tests/readme_snippets.sh [BUILD]     (BUILD: where libtapegrad.a is)
#
# Every ```c block of README.md is one complete translation unit: it is
# compiled alone with the project's warnings as errors, and one that
# defines main() is linked against BUILD/libtapegrad.a as the README says
# to build a program, and run (it must not crash, nor trip a sanitizer in
# a `make asan` build). (A block that is not meant to compile must not be
# marked c.) Every ```python block must be valid Python (compiled, not
# run: it may need PyTorch or files). And no file of the repository may
# point outside it (to ../shared or an absolute /work path).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
[ -f "$BUILD/libtapegrad.a" ] || { echo "readme_snippets: no $BUILD/libtapegrad.a (build it with make)"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/readme_snippets.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

# snippet_<line>.c / .py: each fenced block, named by its first line
awk -v dir="$TMP" '
    /^```c[ \t]*$/      { lang = "c"; start = NR + 1; next }
    /^```python[ \t]*$/ { lang = "py"; start = NR + 1; next }
    /^```/ && lang      { lang = ""; next }
    lang                { print > (dir "/snippet_" start "." lang) }
' "$ROOT/README.md"

CC=${CC:-cc}
# a sanitized library (make asan) needs its runtime in the programs too
SAN=
grep -q __asan_init "$BUILD/libtapegrad.a" 2>/dev/null && SAN="-fsanitize=address,undefined"
WARN="-Wall -Wextra -Wshadow -Wdouble-promotion -Wmissing-prototypes \
-Wstrict-prototypes -Wformat=2 -Wvla -Werror"
# shellcheck disable=SC2046
PKG=$(pkg-config --cflags stb libcjson 2>/dev/null)
n_c=0
for f in "$TMP"/snippet_*.c; do
    [ -f "$f" ] || continue
    n_c=$((n_c + 1))
    line=$(basename "$f" .c | sed 's/snippet_//')
    # shellcheck disable=SC2086
    if ! $CC -std=c11 -D_POSIX_C_SOURCE=200809L -fopenmp $SAN $WARN -I"$ROOT" $PKG \
        -c "$f" -o "$f.o" 2> "$f.err"; then
        fail "README.md line $line: the C snippet does not compile:"; cat "$f.err"; continue
    fi
    if grep -q '^int main' "$f"; then
        # shellcheck disable=SC2046,SC2086
        $CC "$f.o" -o "$f.bin" -fopenmp $SAN "$BUILD/libtapegrad.a" \
            $(pkg-config --libs libcjson 2>/dev/null) -lm 2> "$f.err" ||
            { fail "README.md line $line: the C program does not link:"; cat "$f.err"; continue; }
        # and runs without crashing (one may fail for want of a file it reads)
        (cd "$TMP" && timeout 60 "$f.bin" > "$f.out" 2>&1)
        rc=$?
        if [ $rc -ge 124 ] || grep -q "Sanitizer\|runtime error" "$f.out"; then
            fail "README.md line $line: the program crashed (status $rc):"; cat "$f.out"; continue
        fi
    fi
    ok
done
[ $n_c -ge 4 ] && ok || fail "only $n_c C snippets found in README.md (the extraction broke?)"

PY=
for p in /usr/bin/python3 python3; do
    command -v "$p" >/dev/null 2>&1 && { PY=$p; break; }
done
if [ -z "$PY" ]; then
    echo "readme_snippets: no python3: the Python snippets are not checked"
else
    for f in "$TMP"/snippet_*.py; do
        [ -f "$f" ] || continue
        line=$(basename "$f" .py | sed 's/snippet_//')
        "$PY" -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$f" 2> "$f.err" &&
            ok || { fail "README.md line $line: the Python snippet is not valid Python:"; cat "$f.err"; }
    done
fi

# the repository stands alone
outside=$(cd "$ROOT" && grep -rIn --exclude-dir=.git --exclude-dir=build \
    -e '\.\./shared/' -e '/work/shar[e]d' . 2>/dev/null)
[ -z "$outside" ] && ok || { fail "files point outside the repository:"; echo "$outside"; }

echo "readme_snippets: $checks checks passed, $failures failed"
[ $failures = 0 ]
