/*
 * tests/charlm_ckpt_edit.c - makes crafted charlm checkpoints for
 * tests/charlm_cli.sh: a copy of a checkpoint with some metadata values or
 * tensor numbers replaced, and a checksum that is valid again (computed by
 * the tool's own examples/charlm/ckpt_sum.c, for the file's format
 * version), so that the tool's range and shape checks - not its checksum -
 * must catch the damage. Built by the test script; not part of the tool.
 *
 *   charlm_ckpt_edit IN OUT [KEY=VALUE]... [-KEY]... [TENSOR[I]=NUMBER]...
 *
 *   pos=9223372036854775807      metadata "pos" set to that string
 *   format_version=1             an old-format file (tensor-only checksum)
 *   -optim.optimizer             metadata "optim.optimizer" left out (a
 *                                file written before it existed)
 *   rnn.weight_hh_l0[3]=nan      element 3 of that tensor (F32, F64 or I64)
 *
 * Exit status 0, or 1 with a message.
 */
#include "examples/charlm/charlm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sets element i of the stored tensor t (a copy of its bytes in buf). */
static int set_number(const tg_st_tensor *t, unsigned char *buf, long long i,
                      const char *text)
{
    if (i < 0 || i >= t->numel)
        return -1;
    if (t->dtype == TG_I64) {
        int64_t v = strtoll(text, NULL, 10);
        memcpy(buf + 8 * i, &v, 8);
    } else if (t->dtype == TG_F64) {
        double v = strtod(text, NULL);
        memcpy(buf + 8 * i, &v, 8);
    } else {
        float v = (float)strtod(text, NULL);
        memcpy(buf + 4 * i, &v, 4);
    }
    return 0;
}

static int save(tg_st_writer *w, const char *path)
{
    char err[512];
    if (tg_st_save(w, path, err, sizeof err) < 0) {
        fprintf(stderr, "charlm_ckpt_edit: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: charlm_ckpt_edit IN OUT [KEY=VALUE]... "
                "[-KEY]... [TENSOR[I]=NUMBER]...\n");
        return 1;
    }
    char err[512];
    tg_st_file *f = tg_st_load(argv[1], err, sizeof err);
    if (!f) {
        fprintf(stderr, "charlm_ckpt_edit: %s\n", err);
        return 1;
    }
    tg_st_writer *w = tg_st_writer_new();
    for (int i = 0; i < tg_st_count(f); i++) {
        const tg_st_tensor *t = tg_st_at(f, i);
        size_t bytes = (size_t)t->numel * (t->dtype == TG_F32 ? 4 : 8);
        unsigned char *buf = malloc(bytes ? bytes : 1);
        memcpy(buf, t->data, bytes);
        size_t len = strlen(t->name);
        for (int a = 3; a < argc; a++) /* NAME[I]=NUMBER edits this tensor */
            if (!strncmp(argv[a], t->name, len) && argv[a][len] == '[') {
                char *end;
                long long at = strtoll(argv[a] + len + 1, &end, 10);
                if (strncmp(end, "]=", 2) || set_number(t, buf, at, end + 2) < 0) {
                    fprintf(stderr, "charlm_ckpt_edit: bad edit %s\n", argv[a]);
                    return 1;
                }
            }
        tg_st_add_raw(w, t->name, t->dtype, t->ndim, t->shape, buf);
        free(buf);
    }
    int version = 2;
    for (int i = 0; i < tg_st_meta_count(f); i++) {
        const char *key, *value;
        tg_st_meta_at(f, i, &key, &value);
        size_t len = strlen(key);
        bool drop = false;
        for (int a = 3; a < argc; a++) { /* KEY=VALUE replaces the value */
            if (!strncmp(argv[a], key, len) && argv[a][len] == '=')
                value = argv[a] + len + 1;
            drop |= argv[a][0] == '-' && !strcmp(argv[a] + 1, key);
        }
        if (!strcmp(key, "format_version"))
            version = atoi(value);
        if (strcmp(key, "checksum") && !drop)
            tg_st_set_meta(w, key, value);
    }
    tg_st_free(f);
    /* the checksum of what was written, as charlm's save computes it */
    if (save(w, argv[2]) < 0 || !(f = tg_st_load(argv[2], err, sizeof err)))
        return 1;
    char sum[24];
    snprintf(sum, sizeof sum, "%016" PRIx64, cl_ckpt_checksum(f, version));
    tg_st_free(f);
    tg_st_set_meta(w, "checksum", sum);
    int rc = save(w, argv[2]);
    tg_st_writer_free(w);
    return rc < 0;
}
