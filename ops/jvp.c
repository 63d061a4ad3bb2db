/*
 * ops/jvp.c - forward-mode rules shared by many ops (autograd/forward.c
 * runs them; each op's descriptor names its rule in tg_op.jvp).
 *
 *  - elementwise ops: the tangent of y = f(a, b) is
 *        dy = df/da * da + df/db * db,
 *    and the descriptor's derivative rules already say what df/da * g is
 *    (its backward rule with g = dL/dy): with g := da it is the forward
 *    term. So forward mode needs no new formula for these ops at all -
 *    only broadcasting runs the other way (an input's tangent is spread
 *    over the output's shape, where backward summed the gradient back).
 *  - views: the tangent of a view is the same view of the tangent (the
 *    entry's gradient view, as in backward, read instead of written).
 *  - ops linear in their inputs (sums, concatenation): f(da, db).
 */
#include "ops/internal.h"
#include "ops/ops.h"
#include "tensor/arena.h"

#include <string.h>

/* t's tangent as a tensor of t's shape (zeros where t has none) */
tg_tensor *tg_tangent_of(const tg_tensor *t)
{
    if (t->tangent) {
        tg_tensor *h = tg_wrap_buffer(t->ndim, t->shape, t->tangent);
        return h;
    }
    return tg_zeros(t->ndim, t->shape);
}

/* y's tangent := the numbers of r (same shape), copied contiguous */
void tg_set_out_tangent(tg_tensor *y, const tg_tensor *r)
{
    if (!r)
        return; /* an op failed: reported, y keeps no tangent */
    y->tangent = tg_arena_alloc((size_t)(y->numel ? y->numel : 1) *
                                sizeof(tg_real));
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(y->ndim, y->shape, cs);
    tg_strided_copy(y->ndim, y->shape, y->tangent, cs, r->data, r->stride,
                    false);
}

/* x's numbers spread over y's shape, contiguous (x itself when it is) */
static const tg_real *spread(const tg_tensor *x, const tg_tensor *y)
{
    if (tg_same_shape(x, y) && tg_is_contiguous(x))
        return x->data;
    const tg_tensor *v = tg_view_expand(x, y->ndim, y->shape);
    tg_real *d = tg_arena_alloc((size_t)(y->numel ? y->numel : 1) *
                                sizeof(tg_real));
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(y->ndim, y->shape, cs);
    tg_strided_copy(y->ndim, y->shape, d, cs, v->data, v->stride, false);
    return d;
}

void tg_jvp_elementwise(tg_entry *e)
{
    const tg_ew_rule *r = e->op->ew;
    tg_tensor *y = e->out;
    int64_t n = y->numel;
    const tg_real *src[4] = {NULL, spread(e->in[0], y),
                             r->nin > 1 ? spread(e->in[1], y) : NULL,
                             tg_is_contiguous(y) ? y->data : spread(y, y)};
    tg_real *dy = tg_arena_alloc((size_t)(n ? n : 1) * sizeof(tg_real));
    memset(dy, 0, (size_t)n * sizeof(tg_real));
    tg_real k = (tg_real)e->farg[0];
    for (int i = 0; i < r->nin; i++) {
        if (!e->in[i]->tangent)
            continue;
        src[TG_R_G] = spread(tg_tangent_of(e->in[i]), y);
        const tg_ew_deriv *d = &r->d[i];
        tg_vm_eval(d->code, n, dy, src[d->src[0]], src[d->src[1]],
                   src[d->src[2]], k, true);
    }
    y->tangent = dy;
}

void tg_jvp_view(tg_entry *e)
{
    tg_tensor *y = e->out, *x = e->in[0];
    tg_real *dy = tg_arena_alloc((size_t)(y->numel ? y->numel : 1) *
                                 sizeof(tg_real));
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(y->ndim, y->shape, cs);
    /* iarg: the offset and strides of y's elements in x's logical order */
    tg_strided_copy(y->ndim, y->shape, dy, cs, x->tangent + e->iarg[0],
                    &e->iarg[1], false);
    y->tangent = dy;
}

void tg_jvp_linear_op(tg_entry *e)
{
    tg_tensor **t = tg_arena_alloc((size_t)(e->nin ? e->nin : 1) * sizeof *t);
    for (int i = 0; i < e->nin; i++)
        t[i] = tg_tangent_of(e->in[i]);
    tg_set_out_tangent(e->out, e->op->replay(e, t));
}
