/*
 * nn/optim.c - what every kind of optimizer shares (see optim.h): making
 * and freeing, the buffers per parameter (also as flattened blocks), the
 * step and the closure step, and gradient clipping. The kinds' update
 * rules are nn/optim_sgd.c, optim_adam.c and optim_hf.c; their state in
 * safetensors files is nn/optim_io.c.
 *
 * An optimizer only *reads* gradients (->grad, filled by tg_backward) and
 * writes parameters and its own buffers: there is no backward code here,
 * and nothing is recorded on the tape.
 *
 * Each update (a kind's update function) is a loop over elements that
 * reads p, grad and the state at one index and writes them back at that
 * index, so it is run in parallel over elements, each element written by
 * exactly one iteration: the result is the same bit for bit for any thread
 * count. The arithmetic is done in double and stored as tg_real, which
 * keeps a float build within a rounding of PyTorch's float64 numbers
 * (Adam's sqrt(v) + eps in float loses digits when v is tiny).
 *
 * Known differences from torch.optim, kept on purpose:
 *   - the step count is one for the whole optimizer, where PyTorch keeps
 *     one per parameter. They differ only for a parameter whose gradient
 *     was NULL at some steps: its bias correction here uses the global
 *     count.
 *   - a momentum buffer is stored in the file even for a parameter that
 *     never had a gradient (as zeros), so a strict load finds every
 *     tensor. After loading, such a parameter's first SGD step starts from
 *     a zero buffer (buf = (1 - dampening) g) instead of buf = g; the two
 *     agree when dampening is 0. A file with step 0 restores a fresh
 *     optimizer exactly (its buffers are dropped).
 */
#include "nn/optim.h"
#include "nn/optim_internal.h"
#include "tensor/parallel.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- making and freeing ------------------------------------------------ */

/* The checks are torch.optim's: its constructors raise ValueError on the
 * same arguments. `!(x >= 0)` also refuses NaN. */
tg_optim *tg_optim_new(const char *op, const tg_optim_type *type,
                       tg_params *ps, double lr, double weight_decay,
                       void *state)
{
    bool bad = true;
    if (!ps)
        tg_error(op, "the parameter list is NULL");
    else if (!(lr >= 0))
        tg_error(op, "invalid learning rate %g: it must be >= 0", lr);
    else if (!(weight_decay >= 0))
        tg_error(op, "invalid weight_decay %g: it must be >= 0", weight_decay);
    else
        bad = false;
    tg_optim *o = tg_xcalloc(1, sizeof *o);
    o->type = type;
    o->state = state; /* freed with o, also here */
    if (bad) {
        tg_optim_free(o);
        return NULL;
    }
    o->params = ps;
    o->lr = lr;
    o->weight_decay = weight_decay;
    o->n = tg_params_count(ps);
    o->m = tg_xcalloc((size_t)(o->n ? o->n : 1), sizeof *o->m);
    o->v = tg_xcalloc((size_t)(o->n ? o->n : 1), sizeof *o->v);
    return o;
}

/* a buffer of the blocks (not freed alone). The blocks' size is the
 * optimizer's own: the list may be gone (freed first, by mistake) */
static bool in_blocks(const tg_optim *o, const tg_real *b)
{
    int64_t n = o->block_n;
    return b && ((o->m_block && b >= o->m_block && b < o->m_block + n) ||
                 (o->v_block && b >= o->v_block && b < o->v_block + n));
}

/* parameter i's buffers are gone: its next step starts afresh */
void tg_optim_drop_state_(tg_optim *o, int i)
{
    if (!in_blocks(o, o->m[i]))
        free(o->m[i]);
    if (!in_blocks(o, o->v[i]))
        free(o->v[i]);
    o->m[i] = o->v[i] = NULL;
}

void tg_optim_free(tg_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++)
        tg_optim_drop_state_(o, i);
    free(o->m_block);
    free(o->v_block);
    free(o->m);
    free(o->v);
    if (o->type->fini)
        o->type->fini(o);
    else
        free(o->state);
    free(o);
}

/* Parameters added to the list after the optimizer was made get empty
 * state slots (the list only ever grows - unless it was freed). */
int tg_optim_sync_count_(const char *op, tg_optim *o)
{
    int count = tg_params_count(o->params);
    if (count < o->n) {
        tg_error(op, "the parameter list has %d parameters, fewer than the "
                 "%d this optimizer updates: it was freed (tg_params_free) "
                 "while the optimizer used it. Free the optimizer first; "
                 "nothing was updated", count, o->n);
        return -1;
    }
    if (count == o->n)
        return 0;
    o->m = tg_xrealloc(o->m, (size_t)count * sizeof *o->m);
    o->v = tg_xrealloc(o->v, (size_t)count * sizeof *o->v);
    for (int i = o->n; i < count; i++)
        o->m[i] = o->v[i] = NULL;
    o->n = count;
    return 0;
}

/* ---- the step ----------------------------------------------------------- */

/* Buffers as a block laid out like the parameters' (zeroed, or holding
 * the per-parameter buffers made or loaded before), and buf[i] pointing
 * into it. */
static tg_real *to_block(tg_optim *o, tg_real *blk, tg_real **buf)
{
    const tg_params *ps = o->params;
    if (!blk) {
        blk = tg_xcalloc_aligned((size_t)(ps->block_n ? ps->block_n : 1) *
                                 sizeof(tg_real));
        o->block_n = ps->block_n;
    }
    for (int i = 0; i < o->n; i++) {
        const tg_tensor *t = tg_params_at(ps, i)->tensor;
        tg_real *at = blk + (t->data - ps->block_data);
        if (buf[i] == at)
            continue;
        if (buf[i]) {
            memcpy(at, buf[i], (size_t)t->numel * sizeof(tg_real));
            if (!in_blocks(o, buf[i]))
                free(buf[i]);
        } else {
            memset(at, 0, (size_t)t->numel * sizeof(tg_real));
        }
        buf[i] = at;
    }
    return blk;
}

/* One step as one loop over the flattened block (tg_params_flatten), when
 * the list allows it: every tensor in its own block, listed once, and the
 * buffers all made or all still to make (a parameter's first SGD step
 * differs from the others). The same numbers as the loop per parameter:
 * the update is element by element, and the zero gaps stay zero. false:
 * take the loop per parameter. */
static bool step_block(tg_optim *o)
{
    tg_params *ps = o->params;
    if (!tg_params_in_block(ps) || o->n == 0 ||
        (o->type->gap_safe && !o->type->gap_safe(o))) /* 0 / 0 there? */
        return false;
    int made = 0;
    for (int i = 0; i < o->n; i++) {
        made += tg_optim_has_m_(o) ? o->m[i] != NULL : 0;
        for (int j = 0; j < i; j++)
            if (tg_params_at(ps, j)->tensor == tg_params_at(ps, i)->tensor)
                return false; /* listed twice: updated twice per step */
    }
    if (tg_optim_has_v_(o))
        for (int i = 0; i < o->n; i++)
            if ((o->v[i] != NULL) != (o->m[i] != NULL))
                return false;
    if (made != 0 && made != o->n)
        return false;
    bool first = made == 0;
    if (tg_optim_has_m_(o))
        o->m_block = to_block(o, o->m_block, o->m);
    if (tg_optim_has_v_(o))
        o->v_block = to_block(o, o->v_block, o->v);
    o->type->update(o, ps->block_n, ps->block_data, ps->block_grad,
                    tg_optim_has_m_(o) ? o->m_block : NULL,
                    tg_optim_has_v_(o) ? o->v_block : NULL, first);
    for (int i = 0; i < o->n; i++)
        tg_bump_version(tg_params_at(ps, i)->tensor);
    return true;
}

void tg_optim_step(tg_optim *o)
{
    if (!o)
        return;
    if (!o->type->update) {
        tg_error("optim_step", "%s evaluates the model itself: step it with "
                 "tg_optim_step_closure", tg_optim_state_(o)->words);
        return;
    }
    if (tg_optim_sync_count_("optim_step", o) < 0)
        return;
    o->step++;
    if (step_block(o))
        return;
    char shape[96];
    for (int i = 0; i < o->n; i++) {
        tg_tensor *t = tg_params_at(o->params, i)->tensor;
        if (!t->grad)
            continue;
        /* p, grad and the state are walked with one index, so p must be
         * contiguous like its gradient (tg_params_new tensors are) */
        if (!tg_is_contiguous(t)) {
            tg_error("optim_step", "parameter '%s' %s is not contiguous (a "
                     "view?) and was not updated: optimizers update tensors "
                     "made by tg_tensor_new / tg_params_new",
                     tg_params_at(o->params, i)->name,
                     tg_shape_str(t, shape, sizeof shape));
            continue;
        }
        bool first = o->m[i] == NULL;
        if (tg_optim_has_m_(o) && !o->m[i])
            o->m[i] = tg_optim_new_buffer_(t->numel);
        if (tg_optim_has_v_(o) && !o->v[i])
            o->v[i] = tg_optim_new_buffer_(t->numel);
        o->type->update(o, t->numel, t->data, t->grad, o->m[i], o->v[i],
                        first);
        tg_bump_version(t); /* a backward still to come would be wrong */
    }
}

void tg_optim_zero_grad(tg_optim *o)
{
    if (o)
        tg_params_zero_grad(o->params);
}

double tg_optim_step_closure(tg_optim *o, const tg_closure *c)
{
    if (!o || !c || !c->outputs || !c->loss) {
        tg_error("optim_step_closure", "needs an optimizer and a closure "
                 "with outputs and loss");
        return NAN;
    }
    if (tg_optim_sync_count_("optim_step_closure", o) < 0)
        return NAN;
    if (o->type->step_closure)
        return o->type->step_closure(o, c);
    /* what the closure records goes at the end; what the caller recorded
     * before stays (a rewind, not a reset) */
    tg_tape_mark m = tg_tape_mark_get();
    tg_optim_zero_grad(o);
    tg_tensor *z = c->outputs(c->ud);
    tg_tensor *l = z ? c->loss(z, c->ud) : NULL;
    if (!l || tg_backward(l) < 0) {
        tg_tape_rewind(m);
        return NAN;
    }
    double L = (double)l->data[0];
    tg_optim_step(o);
    tg_tape_rewind(m);
    return L;
}

/* ---- gradient clipping ------------------------------------------------ */

/* sum of g[i]^2 over n numbers, in double, in fixed blocks of
 * TG_REDUCE_BLOCK summed in order: the same bits for any thread count */
static double sum_squares(const tg_real *g, int64_t n)
{
    int64_t nb = (n + TG_REDUCE_BLOCK - 1) / TG_REDUCE_BLOCK;
    double small[16];
    double *part = nb <= 16 ? small : tg_xmalloc((size_t)nb * sizeof *part);
    /* each iteration writes part[b] alone */
    TG_OMP_FOR(n * 2)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * TG_REDUCE_BLOCK;
        int64_t hi = lo + TG_REDUCE_BLOCK < n ? lo + TG_REDUCE_BLOCK : n;
        double s = 0;
        for (int64_t i = lo; i < hi; i++)
            s += (double)g[i] * (double)g[i];
        part[b] = s;
    }
    double s = 0;
    for (int64_t b = 0; b < nb; b++)
        s += part[b];
    if (part != small)
        free(part);
    return s;
}

double tg_clip_grad_norm(tg_params *ps, double max_norm)
{
    /* total = || (||g_1||, ||g_2||, ...) ||, as torch.norm(torch.stack(
     * [torch.norm(g) for g in grads])): parameters without grad skipped */
    double sum = 0;
    bool any = false;
    int count = tg_params_count(ps);
    for (int i = 0; i < count; i++) {
        const tg_tensor *t = tg_params_at(ps, i)->tensor;
        if (!t->grad)
            continue;
        double norm = sqrt(sum_squares(t->grad, t->numel));
        sum += norm * norm;
        any = true;
    }
    if (!any)
        return 0.0;
    double total = sqrt(sum);
    /* clip_coef = max_norm / (total + 1e-6), clamped to at most 1. Every
     * gradient is multiplied, by 1 too, as PyTorch does; a NaN norm gives a
     * NaN coefficient (torch.clamp keeps NaN, so does this comparison). */
    double coef = max_norm / (total + 1e-6);
    if (coef > 1.0)
        coef = 1.0;
    if (tg_params_in_block(ps)) { /* one loop over the model */
        tg_real *g = ps->block_grad;
        int64_t n = ps->block_n;
        TG_OMP_FOR(n)
        for (int64_t k = 0; k < n; k++)
            g[k] = (tg_real)((double)g[k] * coef);
        return total;
    }
    for (int i = 0; i < count; i++) {
        tg_tensor *t = tg_params_at(ps, i)->tensor;
        if (!t->grad)
            continue;
        tg_real *g = t->grad;
        int64_t n = t->numel;
        /* each iteration writes g[i] alone */
        TG_OMP_FOR(n)
        for (int64_t k = 0; k < n; k++)
            g[k] = (tg_real)((double)g[k] * coef);
    }
    return total;
}

void tg_clip_grad_value(tg_params *ps, double clip)
{
    /* g.clamp_(min=-clip, max=clip): NaN stays NaN, and if clip < 0 (min >
     * max) every element becomes max, as torch.clamp does */
    const tg_real lo = (tg_real)-clip, hi = (tg_real)clip;
    int count = tg_params_count(ps);
    for (int i = 0; i < count; i++) {
        tg_tensor *t = tg_params_at(ps, i)->tensor;
        if (!t->grad)
            continue;
        tg_real *g = t->grad;
        int64_t n = t->numel;
        /* each iteration writes g[k] alone */
        TG_OMP_FOR(n)
        for (int64_t k = 0; k < n; k++) {
            tg_real x = g[k];
            if (x < lo)
                x = lo;
            if (x > hi)
                x = hi;
            g[k] = x;
        }
    }
}
