/*
 * fuzz/fuzz.h - what the libFuzzer targets in fuzz/ share: errors
 * recorded instead of aborting (a fuzzer looks for crashes, not for the
 * library's deliberate abort on misuse), and the input written to a file
 * for readers that take a path.
 *
 * Each target defines LLVMFuzzerTestOneInput(data, size): libFuzzer calls
 * it with mutated bytes; any crash, sanitizer report, leak or timeout is a
 * finding. `make fuzz` builds them with clang into build/fuzz/ (see the
 * Makefile and fuzz/README.md).
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_quiet(const char *op, const char *msg, void *ud)
{
    (void)op;
    (void)msg;
    (void)ud;
}

/* tapegrad errors are returned, not fatal (set once per process) */
static inline void fuzz_capture_errors(void)
{
    static int done;
    if (!done) {
        tg_set_error_handler(fuzz_quiet, NULL);
        done = 1;
    }
}

/* The input as a file: one path per process, in memory (/dev/shm when
 * there is one), rewritten on every call. NULL if it cannot be written. */
static inline const char *fuzz_write_file(const char *tag, const uint8_t *data,
                                          size_t size)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/tapegrad-fuzz-%s-%ld", dir, tag,
                 (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t put = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || put != size)
        return NULL;
    return path;
}

#endif
