/*
 * nn/params_io.c - parameter lists saved to and loaded from safetensors
 * files: tg_params_save and tg_params_load (see params.h).
 *
 * Apart from the lists themselves (nn/params.c) so that the library's file
 * reading and writing (tensor/safetensors.c, and through it cJSON) is
 * linked into a program only when the program saves or loads: a static
 * link of a program that never touches files needs no -lcjson.
 */
#include "nn/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_name(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = tg_xmalloc(n);
    snprintf(s, n, "%s%s", a, b);
    return s;
}

void tg_params_save(const tg_params *ps, tg_st_writer *w, const char *prefix)
{
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_param *p = tg_params_at(ps, i);
        char *n = dup_name(prefix ? prefix : "", p->name);
        tg_st_add(w, n, p->tensor);
        free(n);
    }
}

/* The stored tensor for parameter p: present, floats of p's shape, every
 * number finite. NULL and a message naming the file's tensor otherwise. */
static const tg_st_tensor *find_param(const tg_st_file *f, const char *name,
                                      const tg_tensor *p, char *err,
                                      size_t errcap)
{
    const tg_st_tensor *t = tg_st_find(f, name);
    if (!t) {
        snprintf(err, errcap, "tensor '%s' is missing from the file", name);
        return NULL;
    }
    bool same = t->dtype != TG_I64 && t->ndim == p->ndim;
    for (int d = 0; same && d < t->ndim; d++)
        same = t->shape[d] == p->shape[d];
    if (!same) {
        char have[96], want[96];
        tg_st_shape_str(t, have, sizeof have);
        tg_shape_str(p, want, sizeof want);
        snprintf(err, errcap, "tensor '%s' is %s %s in the file, but the "
                 "model's parameter is %s (floats): was the file saved from "
                 "another model?", name, t->dtype == TG_I64 ? "I64" : "float",
                 have, want);
        return NULL;
    }
    int64_t bad = tg_st_first_bad(t, false);
    if (bad >= 0) {
        snprintf(err, errcap, "tensor '%s' in the file holds a NaN or "
                 "infinite number (element %lld): the file was saved from a "
                 "run that had diverged, or is damaged", name, (long long)bad);
        return NULL;
    }
    return t;
}

int tg_params_load(tg_params *ps, const tg_st_file *f, const char *prefix,
                   char *err, size_t errcap)
{
    const char *pre = prefix ? prefix : "";
    char dummy[1];
    if (!err || !errcap) {
        err = dummy;
        errcap = sizeof dummy;
    }
    /* check everything first, so a bad file changes nothing */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < tg_params_count(ps); i++) {
            const tg_param *p = tg_params_at(ps, i);
            char *n = dup_name(pre, p->name);
            const tg_st_tensor *t = find_param(f, n, p->tensor, err, errcap);
            int rc = !t ? -1 : pass == 0 ? 0
                         : tg_st_copy_to(t, p->tensor, err, errcap);
            free(n);
            if (rc < 0)
                return -1;
        }
    return 0;
}
