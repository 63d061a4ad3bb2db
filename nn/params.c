/*
 * nn/params.c - named parameter lists (see params.h); saving and loading
 * them is nn/params_io.c.
 */
#include "nn/params.h"
#include "autograd/tape.h"
#include "tensor/ds.h"

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

/* 0, or -1 after reporting (as op) that ps already has a parameter
 * called prefix + name (or that name is NULL): a list holds one tensor per
 * name, as a state dict and a checkpoint do - a second 'weight' would be
 * saved over the first */
static int check_new_name(const char *op, const tg_params *ps,
                          const char *prefix, const char *name)
{
    if (!ps || !name) {
        tg_error(op, "the %s is NULL", ps ? "name" : "parameter list");
        return -1;
    }
    size_t np = strlen(prefix);
    for (int64_t i = 0; i < arrlen(ps->items); i++) {
        const char *have = ps->items[i].name;
        if (!strncmp(have, prefix, np) && !strcmp(have + np, name)) {
            tg_error(op, "the list already has a parameter called '%s': "
                     "names must be unique (a checkpoint stores one tensor "
                     "per name); give this one another name%s", have,
                     np ? " or another prefix" : "");
            return -1;
        }
    }
    return 0;
}

tg_tensor *tg_params_new(tg_params *ps, const char *name, int ndim,
                         const int64_t *shape)
{
    if (check_new_name("params_new", ps, "", name) < 0)
        return NULL;
    tg_tensor *t = tg_tensor_new(ndim, shape);
    if (!t)
        return NULL;
    tg_requires_grad(t);
    tg_param p = {dup_name("", name), t, true};
    t->name = p.name;
    arrput(ps->items, p);
    return t;
}

int tg_params_add_from(tg_params *ps, const char *prefix, const tg_params *src)
{
    if (!src) {
        tg_error("params_add_from", "the list to add from is NULL");
        return -1;
    }
    const char *pre = prefix ? prefix : "";
    /* every name checked before any is added: all or nothing */
    for (int64_t i = 0; i < arrlen(src->items); i++)
        if (check_new_name("params_add_from", ps, pre, src->items[i].name) < 0)
            return -1;
    for (int64_t i = 0; i < arrlen(src->items); i++) {
        tg_param p = {dup_name(pre, src->items[i].name), src->items[i].tensor,
                      false};
        arrput(ps->items, p);
    }
    return 0;
}

int tg_params_add_ref(tg_params *ps, const char *name, tg_tensor *t)
{
    if (check_new_name("params_add_ref", ps, "", name) < 0)
        return -1;
    if (!t) /* (an earlier error) */
        return -1;
    tg_param p = {dup_name("", name), t, false};
    arrput(ps->items, p);
    return 0;
}

/* numbers per 64 bytes: every tensor of a block starts on a cache line */
#define BLOCK_ALIGN ((int64_t)(64 / sizeof(tg_real)))

/* t's numbers are in ps's block */
static bool in_own_block(const tg_params *ps, const tg_tensor *t)
{
    return ps->block_data && t->data >= ps->block_data &&
           t->data < ps->block_data + ps->block_n;
}

/* t leaves the block it is in for numbers and a gradient of its own,
 * with the same values: it goes on working without the block */
static void give_back(tg_tensor *t)
{
    size_t bytes = (size_t)t->numel * sizeof(tg_real);
    tg_real *d = tg_xcalloc_aligned(bytes), *g = tg_xcalloc_aligned(bytes);
    memcpy(d, t->data, bytes);
    if (t->grad)
        memcpy(g, t->grad, bytes);
    t->data = d;
    t->grad = g;
    t->flags &= ~TG_IN_BLOCK;
}

void tg_params_free(tg_params *ps)
{
    if (!ps)
        return;
    /* all or nothing: a tensor owned here but sitting in another list's
     * block cannot go before that list (tg_tensor_free would refuse it) */
    for (int64_t i = 0; i < arrlen(ps->items); i++) {
        const tg_param *p = &ps->items[i];
        if (p->owned && (p->tensor->flags & TG_IN_BLOCK) &&
            !in_own_block(ps, p->tensor)) {
            tg_error("params_free", "parameter '%s' lives in the flattened "
                     "block of another list (tg_params_flatten), which "
                     "still points at it: free that list first (a model's "
                     "list before its modules'). Nothing was freed",
                     p->name);
            return;
        }
    }
    /* the block's tensors: those of other owners get their own memory
     * back, so that freeing the list first leaves them whole; those owned
     * here go with the block */
    for (int64_t i = 0; i < arrlen(ps->items); i++) {
        tg_tensor *t = ps->items[i].tensor;
        if (!ps->items[i].owned && in_own_block(ps, t))
            give_back(t);
    }
    for (int64_t i = 0; i < arrlen(ps->items); i++) {
        tg_tensor *t = ps->items[i].tensor;
        if (ps->items[i].owned) {
            if (in_own_block(ps, t)) {
                t->flags &= ~TG_IN_BLOCK; /* numbers freed with the block */
                t->data = t->grad = NULL;
            }
            tg_tensor_free(t);
        }
        free(ps->items[i].name);
    }
    arrfree(ps->items);
    ps->items = NULL;
    free(ps->block_data);
    free(ps->block_grad);
    ps->block_data = ps->block_grad = NULL;
    ps->block_n = 0;
}

int tg_params_count(const tg_params *ps) { return (int)arrlen(ps->items); }

tg_param *tg_params_at(const tg_params *ps, int i)
{
    return i >= 0 && i < arrlen(ps->items) ? &ps->items[i] : NULL;
}

tg_tensor *tg_params_get(const tg_params *ps, const char *name)
{
    for (int64_t i = 0; i < arrlen(ps->items); i++)
        if (!strcmp(ps->items[i].name, name))
            return ps->items[i].tensor;
    return NULL;
}

int64_t tg_params_numel(const tg_params *ps)
{
    int64_t n = 0;
    for (int64_t i = 0; i < arrlen(ps->items); i++)
        n += ps->items[i].tensor->numel;
    return n;
}

bool tg_params_in_block(const tg_params *ps)
{
    if (!ps || !ps->block_data)
        return false;
    for (int64_t i = 0; i < arrlen(ps->items); i++)
        if (!in_own_block(ps, ps->items[i].tensor))
            return false;
    return true;
}

int tg_params_flatten(tg_params *ps)
{
    if (!ps)
        return -1;
    if (ps->block_data) {
        tg_error("params_flatten", "the list is flattened already");
        return -1;
    }
    tg_tensor **place = NULL; /* stb_ds array: what moves, in list order */
    int64_t n = 0;
    for (int64_t i = 0; i < arrlen(ps->items); i++) {
        tg_tensor *t = ps->items[i].tensor;
        if (t->flags & TG_IN_BLOCK)
            continue; /* in another list's block, or listed twice */
        if (!(t->flags & TG_PERSISTENT) || !tg_is_contiguous(t) ||
            (t->flags & TG_IS_VIEW)) {
            tg_error("params_flatten", "parameter '%s' is not a contiguous "
                     "tensor of its own (made by tg_tensor_new / "
                     "tg_params_new)", ps->items[i].name);
            for (int64_t k = 0; k < arrlen(place); k++)
                place[k]->flags &= ~TG_IN_BLOCK;
            arrfree(place);
            return -1;
        }
        t->flags |= TG_IN_BLOCK;
        arrput(place, t);
        n += (t->numel + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    }
    size_t bytes = (size_t)(n ? n : 1) * sizeof(tg_real);
    ps->block_data = tg_xcalloc_aligned(bytes);
    ps->block_grad = tg_xcalloc_aligned(bytes);
    ps->block_n = n;
    int64_t at = 0;
    for (int64_t k = 0; k < arrlen(place); k++) {
        tg_tensor *t = place[k];
        tg_real *d = ps->block_data + at, *g = ps->block_grad + at;
        memcpy(d, t->data, (size_t)t->numel * sizeof(tg_real));
        if (t->grad)
            memcpy(g, t->grad, (size_t)t->numel * sizeof(tg_real));
        free(t->data);
        free(t->grad);
        t->data = d;
        t->grad = g;
        at += (t->numel + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    }
    arrfree(place);
    return 0;
}

void tg_params_zero_grad(tg_params *ps)
{
    if (ps->block_grad) /* one loop for what the block holds */
        memset(ps->block_grad, 0, (size_t)ps->block_n * sizeof(tg_real));
    for (int64_t i = 0; i < arrlen(ps->items); i++)
        if (!in_own_block(ps, ps->items[i].tensor))
            tg_zero_grad(ps->items[i].tensor);
}
