/*
 * nn/optim_io.c - an optimizer's state in safetensors files: tg_optim_save
 * and tg_optim_load (see optim.h).
 *
 * Apart from the update rules (nn/optim.c) so that the library's file
 * reading and writing (tensor/safetensors.c, and through it cJSON) is
 * linked into a program only when the program saves or loads: a static
 * link of a program that never touches files needs no -lcjson.
 */
#include "nn/optim.h"
#include "nn/optim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = tg_xmalloc(n);
    snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* A tensor header (on the caller's stack) over a contiguous buffer of
 * t's shape, for the safetensors functions that take tensors. */
static tg_tensor header_like(const tg_tensor *t, tg_real *data)
{
    tg_tensor h;
    memset(&h, 0, sizeof h);
    h.ndim = t->ndim;
    memcpy(h.shape, t->shape, sizeof h.shape);
    h.numel = tg_contiguous_strides(t->ndim, t->shape, h.stride);
    h.data = data;
    h.entry = -1;
    return h;
}

static void save_buffer(tg_st_writer *w, const char *pre, const tg_param *p,
                        const char *suffix, tg_real *buf)
{
    tg_real *zeros = buf ? NULL : tg_optim_new_buffer_(p->tensor->numel);
    tg_tensor h = header_like(p->tensor, buf ? buf : zeros);
    char *name = join(pre, p->name, suffix);
    tg_st_add(w, name, &h);
    free(name);
    free(zeros);
}

/* ---- what kind of state a file holds ----------------------------------
 * The metadata "<prefix>optimizer" names the optimizer and whatever else
 * shapes its state: SGD keeps a momentum buffer only when momentum != 0.
 * The other hyperparameters (rates, betas, damping) may change between a
 * save and a load, as in PyTorch; a different kind of state may not. */
/* The kinds of optimizer the library has: a file's kind is named from
 * their states in messages. A new kind adds its line here. */
const tg_optim_type *const tg_optim_types[] = {
    &tg_sgd_type, &tg_adam_type, &tg_adamw_type, &tg_hf_type, NULL};

static const char *kind_id(const tg_optim *o)
{
    return tg_optim_state_(o)->id;
}

/* "Adam" for a file's "adam", from the kinds' states */
static const char *kind_words(const char *id)
{
    for (int k = 0; tg_optim_types[k]; k++)
        for (int j = 0; j < 2; j++) {
            const tg_optim_state *st = &tg_optim_types[k]->states[j];
            if (st->id && !strcmp(id, st->id))
                return st->words;
        }
    return "an unknown optimizer";
}

/* "Adam or AdamW": the kinds of state that a file saved before the
 * metadata existed, and judged to be legacy by its tensors, may hold */
static void legacy_words(const char *legacy, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; tg_optim_types[t]; t++)
        for (int j = 0; j < 2 && k < cap; j++) {
            const tg_optim_state *st = &tg_optim_types[t]->states[j];
            if (st->legacy && !strcmp(st->legacy, legacy))
                k += (size_t)snprintf(buf + k, cap - k, "%s%s",
                                      k ? " or " : "", st->words);
        }
    if (!k)
        snprintf(buf, cap, "%s", kind_words(legacy));
}

/* ---- what a kind's save and load use (tg_optim_io) ------------------- */
static void io_save_buffer(const tg_optim_io *io, const tg_param *p,
                           const char *suffix, const tg_real *buf)
{
    save_buffer((tg_st_writer *)io->file, io->prefix, p, suffix,
                (tg_real *)buf);
}

static void io_save_f64(const tg_optim_io *io, const char *name,
                        const double *v)
{
    char *full = join(io->prefix, name, "");
    tg_st_add_raw((tg_st_writer *)io->file, full, TG_F64, 0, NULL, v);
    free(full);
}

void tg_optim_save(const tg_optim *o, tg_st_writer *w, const char *prefix)
{
    const char *pre = prefix ? prefix : "";
    int count = tg_params_count(o->params);
    char *key = join(pre, "optimizer", "");
    tg_st_set_meta(w, key, kind_id(o));
    free(key);
    if (o->type->save) {
        const tg_optim_io io = {pre, w, io_save_buffer, io_save_f64, NULL,
                                NULL, NULL};
        o->type->save(o, &io);
    }
    for (int i = 0; i < count; i++) {
        const tg_param *p = tg_params_at(o->params, i);
        /* a slot not made yet (parameter added since the last step) is
         * empty: saved as zeros like any buffer not allocated yet */
        if (tg_optim_has_m_(o))
            save_buffer(w, pre, p, ".m", i < o->n ? o->m[i] : NULL);
        if (tg_optim_has_v_(o))
            save_buffer(w, pre, p, ".v", i < o->n ? o->v[i] : NULL);
    }
    char *name = join(pre, "step", "");
    tg_st_add_raw(w, name, TG_I64, 0, NULL, &o->step);
    free(name);
}

/* The buffer named pre + param + suffix: present, floats, p's shape,
 * finite (and not negative if nonneg: Adam's v). NULL and a message
 * otherwise. */
static const tg_st_tensor *find_buffer(const tg_st_file *f, const char *pre,
                                       const tg_param *p, const char *suffix,
                                       bool nonneg, char *err, size_t cap)
{
    char *name = join(pre, p->name, suffix);
    const tg_st_tensor *s = tg_st_find(f, name);
    if (!s) {
        tg_errbuf(err, cap, "optimizer state '%s' is missing from the file",
                  name);
    } else {
        bool same = s->dtype != TG_I64 && s->ndim == p->tensor->ndim;
        for (int d = 0; same && d < s->ndim; d++)
            same = s->shape[d] == p->tensor->shape[d];
        if (!same) {
            char have[96], want[96];
            tg_st_shape_str(s, have, sizeof have);
            tg_shape_str(p->tensor, want, sizeof want);
            tg_errbuf(err, cap, "optimizer state '%s' is %s %s in the file, "
                      "but parameter '%s' is %s (floats): was it saved from "
                      "another model?", name,
                      s->dtype == TG_I64 ? "I64" : "float", have, p->name,
                      want);
            s = NULL;
        } else {
            int64_t bad = tg_st_first_bad(s, nonneg);
            if (bad >= 0) {
                tg_errbuf(err, cap, "optimizer state '%s' in the file holds a "
                          "%s number (element %lld)%s: the file was saved from "
                          "a run that had diverged, or is damaged", name,
                          nonneg ? "NaN, infinite or negative"
                          : "NaN or infinite",
                          (long long)bad, nonneg ? ", and a second moment is a "
                          "mean of squares" : "");
                s = NULL;
            }
        }
    }
    free(name);
    return s;
}

/* copies a checked stored tensor into *buf, allocating it if needed */
static void load_buffer(const tg_st_tensor *s, const tg_tensor *like,
                        tg_real **buf)
{
    if (!*buf)
        *buf = tg_optim_new_buffer_(like->numel);
    tg_tensor h = header_like(like, *buf);
    int rc = tg_st_copy_to(s, &h, NULL, 0);
    TG_ASSERT(rc == 0); /* dtype and shape were checked by find_buffer */
}

static int io_check_buffer(const tg_optim_io *io, const tg_param *p,
                           const char *suffix, char *err, size_t errcap)
{
    return find_buffer(io->file, io->prefix, p, suffix, false, err, errcap)
           ? 0 : -1;
}

static void io_load_buffer(const tg_optim_io *io, const tg_param *p,
                           const char *suffix, tg_real *into)
{
    load_buffer(find_buffer(io->file, io->prefix, p, suffix, false, NULL, 0),
                p->tensor, &into);
}

static int io_read_f64(const tg_optim_io *io, const char *name, double *v)
{
    char *full = join(io->prefix, name, "");
    const tg_st_tensor *s = tg_st_find(io->file, full);
    free(full);
    if (!s)
        return 0;
    if (s->dtype == TG_I64 || s->numel != 1)
        return -1;
    *v = tg_st_value(s, 0);
    return 1;
}

/* The kind of state a file saved before "<prefix>optimizer" existed
 * holds, told by its tensors (of the first parameter): Hessian-free's
 * lambda, else Adam's (or AdamW's: the same state) second moments, else
 * SGD's momentum buffers, else none. *found: the tensor that told. */
static const char *kind_of_tensors(const tg_optim *o, const tg_st_file *f,
                                   const char *pre, char **found)
{
    const char *p0 = tg_params_at(o->params, 0)->name;
    char *names[3] = {join(pre, "lambda", ""), join(pre, p0, ".v"),
                      join(pre, p0, ".m")};
    static const char *const kinds[3] = {"hessian_free", "adam",
                                         "sgd_momentum"};
    const char *kind = "sgd";
    *found = NULL;
    for (int k = 0; k < 3; k++) {
        if (!*found && tg_st_find(f, names[k])) {
            kind = kinds[k];
            *found = names[k];
        } else {
            free(names[k]);
        }
    }
    return kind;
}

/* 0, or -1 with a message naming both kinds when f holds the state of
 * another kind of optimizer than o. A file without the metadata (saved
 * before it existed) is judged by its tensors instead, and passes when
 * they tell the legacy id of o's state (tg_optim_state): Adam's and
 * AdamW's are both "adam" - they keep the same moments - so either loads
 * into the other. */
static int check_kind(const tg_optim *o, const tg_st_file *f, const char *pre,
                      char *err, size_t errcap)
{
    const char *mine = kind_id(o);
    char *key = join(pre, "optimizer", "");
    const char *theirs = tg_st_meta(f, key);
    int rc = 0;
    if (theirs && strcmp(theirs, mine)) {
        tg_errbuf(err, errcap, "the file holds the state of %s (metadata '%s' "
                  "= '%s'), but this optimizer is %s ('%s'): load it into the "
                  "kind of optimizer that saved it, or start this one afresh "
                  "without loading", kind_words(theirs), key, theirs,
                  tg_optim_state_(o)->words, mine);
        rc = -1;
    } else if (!theirs && o->n > 0) {
        char *found;
        const char *kind = kind_of_tensors(o, f, pre, &found);
        const char *legacy = tg_optim_state_(o)->legacy;
        if (!legacy || strcmp(kind, legacy)) {
            char what[300];
            if (found)
                snprintf(what, sizeof what, "it has '%s'", found);
            else
                snprintf(what, sizeof what, "it has no buffers, only '%sstep'",
                         pre);
            char theirs_words[200];
            legacy_words(kind, theirs_words, sizeof theirs_words);
            tg_errbuf(err, errcap, "the file holds the state of %s (%s; a file "
                      "saved before the metadata '%s' existed), but this "
                      "optimizer is %s ('%s'): load it into the kind of "
                      "optimizer that saved it, or start this one afresh "
                      "without loading", theirs_words, what, key,
                      tg_optim_state_(o)->words, mine);
            rc = -1;
        }
        free(found);
    }
    free(key);
    return rc;
}

int tg_optim_load(tg_optim *o, const tg_st_file *f, const char *prefix,
                  char *err, size_t errcap)
{
    const char *pre = prefix ? prefix : "";
    if (tg_optim_sync_count_("optim_load", o) < 0) {
        snprintf(err, errcap, "%s", tg_last_error());
        return -1;
    }

    /* check everything first, so that a bad file changes nothing */
    char *name = join(pre, "step", "");
    const tg_st_tensor *st = tg_st_find(f, name);
    int64_t step = -1;
    /* the bound keeps (double)step exact and step++ far from overflow */
    if (!st || st->dtype != TG_I64 || st->numel != 1 ||
        tg_st_read_i64(st, &step) < 0 || step < 0 || step > TG_OPTIM_MAX_STEP) {
        tg_errbuf(err, errcap, "optimizer state '%s' is %s: it should be one "
                  "non-negative I64 number (the step count) of at most 2^53",
                  name, !st ? "missing from the file" : "not valid");
        free(name);
        return -1;
    }
    free(name);
    if (check_kind(o, f, pre, err, errcap) < 0)
        return -1;
    bool nonneg_v = o->type->nonneg_v;
    for (int i = 0; i < o->n; i++) {
        const tg_param *p = tg_params_at(o->params, i);
        if (tg_optim_has_m_(o) &&
            !find_buffer(f, pre, p, ".m", false, err, errcap))
            return -1;
        if (tg_optim_has_v_(o) &&
            !find_buffer(f, pre, p, ".v", nonneg_v, err, errcap))
            return -1;
    }
    /* the kind's own state: checked, then copied (or nothing changed) */
    if (o->type->load) {
        const tg_optim_io io = {pre, f, NULL, NULL, io_check_buffer,
                                io_load_buffer, io_read_f64};
        if (o->type->load(o, &io, step, err, errcap) < 0)
            return -1;
    }

    /* now copy: nothing below can fail */
    for (int i = 0; i < o->n; i++) {
        const tg_param *p = tg_params_at(o->params, i);
        if (tg_optim_has_m_(o))
            load_buffer(find_buffer(f, pre, p, ".m", false, NULL, 0),
                        p->tensor, &o->m[i]);
        if (tg_optim_has_v_(o))
            load_buffer(find_buffer(f, pre, p, ".v", nonneg_v, NULL, 0),
                        p->tensor, &o->v[i]);
        if (step == 0) /* a fresh optimizer: no buffer yet, as PyTorch */
            tg_optim_drop_state_(o, i);
    }
    o->step = step;
    return 0;
}
