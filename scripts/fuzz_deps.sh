#!/bin/sh
# Installs what `make fuzz` needs on top of scripts/deps.sh: clang and its
# libFuzzer and sanitizer runtimes. On Debian 12 these are the packages
# clang (clang-14) and libclang-rt-dev (libclang-rt-14-dev, which holds
# libclang_rt.fuzzer). scripts/deps.sh installs them with the rest: as
# root with apt-get, otherwise it prints the exact command and stops.
# FUZZ_CC names another compiler.
set -e
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
# scripts/deps.sh installs (or names) them with the build's own needs
exec sh "$(dirname "$0")/deps.sh" $missing
