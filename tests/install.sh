#!/bin/sh
# tests/install.sh - tapegrad installed like a C library, used from outside.
#
#   sh tests/install.sh BUILD "MAKE"   (MAKE: the make command with the
#                                       build's variables, BUILD=... etc.)
#
# `MAKE install PREFIX=<temporary>` and then, out of the tree, with nothing
# but the installed files and pkg-config:
#   - the README's first program built with `pkg-config --cflags --libs
#     tapegrad` (the shared library: its soname is recorded) and with
#     --static, the archive named; and the archive without -lcjson (the
#     program never touches files);
#   - a C++ program (g++ -std=c++11) that also saves and loads parameters;
#   - a program with its own STB_DS_IMPLEMENTATION, against both libraries;
#   - a double program with tapegrad-f64.pc; and a float program given the
#     double library (and the reverse), which must fail to link, naming the
#     precision marker;
#   - charlm runs; DESTDIR stages under another root; uninstall leaves no
#     file behind.
set -u
BUILD=${1:-build}
MAKE_CMD=${2:-make}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg_install.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
P=$TMP/prefix
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

CC=${CC:-cc}
CXX=${CXX:-g++}
# a sanitized library (make asan) needs its runtime in the programs too
SAN=
grep -q __asan_init "$BUILD/libtapegrad.a" 2>/dev/null && SAN="-fsanitize=address,undefined"

cd "$ROOT" || exit 1
# shellcheck disable=SC2086
$MAKE_CMD install PREFIX="$P" > "$TMP/install.log" 2>&1 ||
    { cat "$TMP/install.log"; echo "install: make install failed"; exit 1; }
for f in bin/charlm lib/libtapegrad.a lib/libtapegrad.so lib/libtapegrad.so.0 \
         lib/libtapegrad_f64.a lib/libtapegrad_f64.so lib/pkgconfig/tapegrad.pc \
         lib/pkgconfig/tapegrad-f64.pc include/tapegrad/ops/ops.h \
         include/tapegrad/nn/rnn.h include/tapegrad/tensor/tensor.h; do
    [ -e "$P/$f" ] && ok || fail "make install did not write $f"
done
[ -e "$P/include/tapegrad/ops/internal.h" ] && fail "an internal header was installed"
soname=$(readelf -d "$P/lib/libtapegrad.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libtapegrad.so.0 ] && ok || fail "libtapegrad.so's soname is '$soname'"
if nm -D --defined-only "$P/lib/libtapegrad.so" | grep -q ' stbds_'; then
    fail "libtapegrad.so exports stb_ds's functions"
else ok; fi
"$P/bin/charlm" --version > "$TMP/version" 2>&1 && grep -q '^charlm' "$TMP/version" &&
    ok || fail "the installed charlm does not run: $(cat "$TMP/version")"

# everything below uses the installed files only, from elsewhere
cd "$TMP" || exit 1
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
RPATH="-Wl,-rpath,$P/lib"
CFLAGS_TG=$(pkg-config --cflags tapegrad) || fail "pkg-config does not know tapegrad"
LIBS_TG=$(pkg-config --libs tapegrad)
STATIC_TG=$(pkg-config --static --libs tapegrad | sed 's/-ltapegrad\b/-l:libtapegrad.a/')

# the README's first program: the first ```c block after "## A first program"
awk '/^## A first program/ { on = 1 } on && /^```c/ { c = 1; next }
     c && /^```/ { exit } c { print }' "$ROOT/README.md" > first.c
grep -q 'int main' first.c || fail "no first program found in README.md"

# run NAME BINARY: runs it, expects the first program's line
run_first() {
    if "./$2" > "$2.out" 2>&1 && grep -q '^dL/dW\[0\]\[0\] = ' "$2.out"; then ok
    else fail "$1: the program did not run as expected:"; cat "$2.out"; fi
}
# shellcheck disable=SC2086
if $CC -std=c11 $SAN first.c -o first_shared $CFLAGS_TG $LIBS_TG $RPATH 2> err; then
    readelf -d first_shared | grep -q 'NEEDED.*\[libtapegrad.so.0\]' && ok ||
        fail "the shared build does not record libtapegrad.so.0"
    run_first "pkg-config --libs tapegrad" first_shared
else fail "the README's first program does not build with pkg-config:"; cat err; fi
# --static as given (whichever library -ltapegrad finds)
# shellcheck disable=SC2086
if $CC -std=c11 $SAN first.c -o first_static_pc $(pkg-config --static --cflags --libs tapegrad) \
        $RPATH 2> err; then run_first "pkg-config --static" first_static_pc
else fail "the first program does not build with pkg-config --static:"; cat err; fi
# --static with the archive named: nothing of libtapegrad.so in it
# shellcheck disable=SC2086
if $CC -std=c11 $SAN first.c -o first_static $CFLAGS_TG $STATIC_TG 2> err; then
    readelf -d first_static | grep -q 'libtapegrad' &&
        fail "the static build still needs libtapegrad.so" || ok
    run_first "the archive" first_static
else fail "the first program does not build against libtapegrad.a:"; cat err; fi
# the archive without cJSON: the first program never touches files
# shellcheck disable=SC2086
if $CC -std=c11 $SAN first.c -o first_nocjson $CFLAGS_TG "$P/lib/libtapegrad.a" \
        -fopenmp -lm 2> err; then run_first "the archive without -lcjson" first_nocjson
else fail "a program without files needs more than the archive, OpenMP and -lm:"; cat err; fi

# C++: a layer, backward, its parameters saved and loaded again
cat > cxx.cpp <<'EOF'
#include "nn/modules.h"
#include "nn/optim.h"
#include "ops/ops.h"

#include <cstdio>

int main()
{
    const int64_t shape[] = {2, 4};
    tg_linear_mod *lin = tg_linear_new(4, 3, true, NULL);
    tg_tensor *x = tg_randn(2, shape, NULL, 0, 1);
    tg_backward(tg_sum(tg_tanh(tg_linear_forward(lin, x))));
    double g = (double)lin->weight->grad[0];
    char err[256];
    tg_st_writer *w = tg_st_writer_new();
    tg_params_save(&lin->params, w, "");
    int bad = tg_st_save(w, "lin.safetensors", err, sizeof err) < 0;
    tg_st_writer_free(w);
    tg_st_file *f = bad ? NULL : tg_st_load("lin.safetensors", err, sizeof err);
    bad = bad || !f || tg_params_load(&lin->params, f, "", err, sizeof err) < 0;
    if (bad)
        std::fprintf(stderr, "%s\n", err);
    std::printf("c++: dL/dW[0][0] = %g\n", g);
    tg_st_free(f);
    tg_tape_reset();
    tg_linear_free(lin);
    return bad;
}
EOF
# shellcheck disable=SC2086
if $CXX -std=c++11 -Wall -Wextra -pedantic $SAN cxx.cpp -o cxx $CFLAGS_TG $LIBS_TG $RPATH 2> err; then
    ./cxx > cxx.out 2>&1 && grep -q '^c++: dL/dW' cxx.out && ok ||
        { fail "the C++ program did not run:"; cat cxx.out; }
else fail "a C++ program does not build against the installed library:"; cat err; fi

# a program with its own stb_ds, calling tapegrad's (which uses stb_ds inside)
cat > ownds.c <<'EOF'
#define STB_DS_IMPLEMENTATION
#include <stb/stb_ds.h>

#include "nn/modules.h"

#include <stdio.h>

int main(void)
{
    int *a = NULL;
    for (int i = 0; i < 100; i++)
        arrput(a, i);
    tg_linear_mod *lin = tg_linear_new(4, 3, true, NULL);
    printf("stb_ds: %d numbers, tapegrad: %d parameters\n", (int)arrlen(a),
           tg_params_count(&lin->params));
    arrfree(a);
    tg_linear_free(lin);
    return 0;
}
EOF
STB=$(pkg-config --cflags stb 2>/dev/null)
for how in shared static; do
    [ $how = shared ] && L="$LIBS_TG $RPATH" || L=$STATIC_TG
    # shellcheck disable=SC2086
    if $CC -std=gnu11 $SAN $STB ownds.c -o ownds_$how $CFLAGS_TG $L 2> err; then
        ./ownds_$how > ownds.out 2>&1 &&
            grep -q 'stb_ds: 100 numbers, tapegrad: 2 parameters' ownds.out && ok ||
            { fail "the program with its own stb_ds ($how) did not run:"; cat ownds.out; }
    else fail "a program with its own STB_DS_IMPLEMENTATION does not link ($how):"; cat err; fi
done

# precision: the double library through tapegrad-f64.pc; mismatches fail
# shellcheck disable=SC2086
if $CC -std=c11 $SAN first.c -o first_f64 $(pkg-config --cflags --libs tapegrad-f64) \
        $RPATH 2> err; then run_first "tapegrad-f64" first_f64
else fail "the first program does not build with tapegrad-f64:"; cat err; fi
# mismatch NAME CFLAGS LIBS MARKER: must not link, and must name MARKER
mismatch() {
    # shellcheck disable=SC2086
    if $CC -std=c11 $SAN first.c -o mismatch $2 $3 $RPATH 2> err; then
        fail "$1 links (it must not):"; ./mismatch | head -n 1
    elif grep -q "undefined reference to .$4" err; then ok
    else fail "$1 fails to link without naming $4:"; cat err; fi
}
F64_ONLY=$(pkg-config --cflags tapegrad-f64)
mismatch "a float program with libtapegrad_f64 (shared)" "$CFLAGS_TG" \
    "-L$P/lib -ltapegrad_f64" tg_abi_f32_link_libtapegrad
mismatch "a float program with libtapegrad_f64.a" "$CFLAGS_TG" \
    "$P/lib/libtapegrad_f64.a -fopenmp -lm $(pkg-config --libs libcjson)" \
    tg_abi_f32_link_libtapegrad
mismatch "a double program with libtapegrad" "$F64_ONLY" "$LIBS_TG" \
    tg_abi_f64_link_libtapegrad_f64

# uninstall leaves no file; DESTDIR stages under another root
cd "$ROOT" || exit 1
# shellcheck disable=SC2086
$MAKE_CMD uninstall PREFIX="$P" > "$TMP/uninstall.log" 2>&1 || fail "make uninstall failed"
left=$(find "$P" ! -type d | head -n 5)
[ -z "$left" ] && ok || fail "make uninstall left: $left"
S=$TMP/stage
# shellcheck disable=SC2086
$MAKE_CMD install DESTDIR="$S" PREFIX=/opt/tapegrad > "$TMP/install.log" 2>&1 ||
    { cat "$TMP/install.log"; fail "make install DESTDIR=... failed"; }
[ -f "$S/opt/tapegrad/lib/libtapegrad.a" ] &&
    grep -q '^libdir=/opt/tapegrad/lib$' "$S/opt/tapegrad/lib/pkgconfig/tapegrad.pc" &&
    ok || fail "DESTDIR: the files or the .pc's paths are not as expected"
# shellcheck disable=SC2086
$MAKE_CMD uninstall DESTDIR="$S" PREFIX=/opt/tapegrad > "$TMP/uninstall.log" 2>&1
left=$(find "$S" ! -type d | head -n 5)
[ -z "$left" ] && ok || fail "make uninstall DESTDIR=... left: $left"

if [ $failures -gt 0 ]; then
    echo "install: $failures FAILED of $((checks + failures))"
    exit 1
fi
echo "install: all $checks checks passed (prefix, pkg-config, shared and static," \
     "C++, own stb_ds, f32/f64 mismatch, DESTDIR, uninstall)"
