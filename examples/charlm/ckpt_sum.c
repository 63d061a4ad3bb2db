/*
 * examples/charlm/ckpt_sum.c - the checksum of a checkpoint, in a file of
 * its own (it needs nothing but tensor/safetensors.h) so that a test can
 * build a checkpoint with chosen metadata and a valid checksum, as
 * tests/charlm_ckpt_edit.c does.
 *
 * FNV-1a, 64 bits, over every tensor sorted by name (its name, dtype,
 * shape and bytes), then - from format version 2 on - over every metadata
 * pair but "checksum" itself, sorted by key. Version 1 covered only the
 * tensors, so that a changed "pos" or "hidden" went unnoticed; such files
 * are still read, and every metadata value is range-checked anyway.
 */
#include "charlm.h"

#include <stdlib.h>
#include <string.h>

uint64_t cl_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int by_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const tg_st_tensor *const *)a)->name,
                  (*(const tg_st_tensor *const *)b)->name);
}

typedef struct meta_pair {
    const char *key, *value;
} meta_pair;

static int by_key(const void *a, const void *b)
{
    const meta_pair *x = a, *y = b;
    int c = strcmp(x->key, y->key); /* a repeated key: both, in order */
    return c ? c : strcmp(x->value, y->value);
}

uint64_t cl_ckpt_checksum(const tg_st_file *f, int version)
{
    int n = tg_st_count(f);
    const tg_st_tensor **ts = tg_xmalloc((size_t)(n ? n : 1) * sizeof *ts);
    for (int i = 0; i < n; i++)
        ts[i] = tg_st_at(f, i);
    qsort(ts, (size_t)n, sizeof *ts, by_tensor_name);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        const tg_st_tensor *t = ts[i];
        int32_t head[2] = {(int32_t)t->dtype, t->ndim};
        h = cl_fnv(h, t->name, strlen(t->name) + 1);
        h = cl_fnv(h, head, sizeof head);
        h = cl_fnv(h, t->shape, (size_t)t->ndim * sizeof *t->shape);
        h = cl_fnv(h, t->data, (size_t)t->numel * (t->dtype == TG_F32 ? 4 : 8));
    }
    free(ts);
    if (version < 2)
        return h;
    int m = tg_st_meta_count(f), k = 0;
    meta_pair *ps = tg_xmalloc((size_t)(m ? m : 1) * sizeof *ps);
    for (int i = 0; i < m; i++) {
        tg_st_meta_at(f, i, &ps[k].key, &ps[k].value);
        if (ps[k].key && ps[k].value && strcmp(ps[k].key, "checksum"))
            k++;
    }
    qsort(ps, (size_t)k, sizeof *ps, by_key);
    for (int i = 0; i < k; i++) {
        h = cl_fnv(h, ps[i].key, strlen(ps[i].key) + 1);
        h = cl_fnv(h, ps[i].value, strlen(ps[i].value) + 1);
    }
    free(ps);
    return h;
}
