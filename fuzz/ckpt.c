/*
 * fuzz/ckpt.c - charlm's checkpoint reader (examples/charlm/ckpt.c,
 * cl_ckpt_load) on mutated checkpoints, with the checksum put right.
 *
 * A checkpoint carries a checksum of its tensors and metadata
 * (examples/charlm/ckpt_sum.c); a mutation would almost always break it,
 * and the reader would stop there. So before each call this target
 * recomputes the checksum with the reader's own function, cl_ckpt_checksum,
 * and writes it over the stored one, in place: every other byte stays as
 * the fuzzer made it, and mutations reach the checks behind the checksum
 * (format, hyperparameters, vocabulary, shapes, optimizer and training
 * state). Files that do not parse, or whose stored checksum is not 16
 * characters, go to the reader unchanged.
 */
#include "fuzz/fuzz.h"
#include "fuzz/charlm_glue.h"
#include "tensor/safetensors.h"

#include <inttypes.h>
#include <string.h>

/* the stored checksum's 16 characters inside the JSON header, or NULL */
static uint8_t *find_checksum(uint8_t *b, size_t n)
{
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    const char key[] = "\"checksum\"";
    uint8_t *end = b + 8 + hlen;
    for (uint8_t *p = b + 8; p + sizeof key - 1 <= end; p++) {
        if (memcmp(p, key, sizeof key - 1))
            continue;
        uint8_t *q = p + sizeof key - 1;
        while (q < end && (*q == ' ' || *q == ':'))
            q++;
        if (q + 18 <= end && q[0] == '"' && q[17] == '"')
            return q + 1;
    }
    (void)n;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    fuzz_capture_errors();
    if (!registered) {
        cl_register_cells();
        registered = 1;
    }
    uint8_t *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    char err[256];
    tg_st_file *f = tg_st_parse(b, size, "fuzz", err, sizeof err);
    if (f) {
        const char *ver = tg_st_meta(f, "format_version");
        int version = ver && ver[0] >= '1' && ver[0] <= '9' ? ver[0] - '0' : 2;
        uint8_t *sum = find_checksum(b, size);
        if (sum) {
            char hex[17];
            snprintf(hex, sizeof hex, "%016" PRIx64,
                     cl_ckpt_checksum(f, version));
            memcpy(sum, hex, 16);
        }
        tg_st_free(f);
    }
    const char *path = fuzz_write_file("ckpt", b, size);
    free(b);
    if (!path)
        return 0;
    /* as `charlm train --resume` reads it; if that fails, as `charlm
     * sample` does, which skips the optimizer and training state */
    cl_run r;
    for (int with_train = 1; with_train >= 0; with_train--) {
        cli_fail("%s", ""); /* a refusal below must say why */
        if (cl_ckpt_load(path, &r, with_train) == 0) {
            cl_run_free(&r);
            break;
        }
        if (!cli_error()[0])
            abort();
    }
    tg_tape_free_all();
    fuzz_strings_free();
    return 0;
}
