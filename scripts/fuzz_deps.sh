#!/bin/sh
# Installs what `make fuzz` needs on top of scripts/deps.sh: clang and its
# libFuzzer and sanitizer runtimes. On Debian 12 these are the packages
# clang (clang-14) and libclang-rt-dev (libclang-rt-14-dev, which holds
# libclang_rt.fuzzer). As root it runs apt-get; otherwise it prints the
# exact command to run and stops. FUZZ_CC names another compiler.
set -e
sh "$(dirname "$0")/deps.sh"
cc=${FUZZ_CC:-clang}
missing=""
command -v "$cc" >/dev/null 2>&1 || missing="clang libclang-rt-dev"
if [ -z "$missing" ]; then
    # libFuzzer present: a one-line target links
    tmp=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' > "$tmp/t.c"
    "$cc" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" \
        >/dev/null 2>&1 || missing="libclang-rt-dev"
    rm -rf "$tmp"
fi
[ -z "$missing" ] && exit 0
cmd="apt-get update && apt-get install -y $missing"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fuzz deps: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq $missing >/dev/null
else
    echo "fuzz deps: missing $missing (clang with libFuzzer). Install with:"
    echo "    sudo sh -c '$cmd'"
    exit 1
fi
