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
    if (t->tangent_rec)
        return t->tangent_rec;
    if (t->tangent) { /* a leaf's direction (or a sweep that records not) */
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
    if (tg_jvp_records()) { /* keep the recorded tensor itself */
        tg_tensor *c = (tg_tensor *)r;
        if (!tg_same_shape(c, y))
            c = tg_expand(c, y->ndim, y->shape);
        if (c && !tg_is_contiguous(c))
            c = tg_contiguous(c);
        if (!c)
            return;
        y->tangent_rec = c;
        y->tangent = c->data;
        return;
    }
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

/* The recorded forms of ops/kernels/vm_codes.h that are more than one
 * line. A step's value as a constant of x's shape: 1 where x > 0
 * (nonzero: where x != 0), else 0 - a step function's derivative is
 * zero, so it is not recorded. */
static tg_tensor *tg_vm_rec_mask(const tg_tensor *x, bool nonzero)
{
    bool was = tg_set_grad_enabled(false);
    tg_tensor *c = tg_contiguous((tg_tensor *)x);
    tg_set_grad_enabled(was);
    tg_tensor *m = tg_empty(x->ndim, x->shape);
    for (int64_t i = 0; i < x->numel; i++)
        m->data[i] = nonzero ? (c->data[i] != 0) : (c->data[i] > 0);
    return m;
}

/* g s (1 - s), s = sigmoid(x) */
static tg_tensor *tg_vm_rec_dstep(tg_tensor *g, tg_tensor *x)
{
    tg_tensor *s = tg_sigmoid(x);
    return tg_mul(g, tg_mul(s, tg_add_scalar(tg_neg(s), 1)));
}

/* g b a^(b-1), 0 where b = 0 (a^-1 kept finite there) */
static tg_tensor *tg_vm_rec_dpowa(tg_tensor *g, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *m = tg_vm_rec_mask(b, true);
    tg_tensor *e = tg_add(tg_add_scalar(b, -1), tg_add_scalar(tg_neg(m), 1));
    return tg_mul(tg_mul(g, tg_mul(b, tg_pow(a, e))), m);
}

/* g y log a, 0 where a = 0 */
static tg_tensor *tg_vm_rec_dpowb(tg_tensor *g, tg_tensor *y, tg_tensor *a)
{
    tg_tensor *m = tg_vm_rec_mask(a, true);
    tg_tensor *la = tg_log(tg_add(a, tg_add_scalar(tg_neg(m), 1)));
    return tg_mul(tg_mul(g, tg_mul(y, la)), m);
}

/* g k a^(k-1), 0 where k = 0 */
static tg_tensor *tg_vm_rec_dpowk(tg_tensor *g, tg_tensor *a, double k)
{
    if (k == 0)
        return tg_mul_scalar(g, 0);
    return tg_mul_scalar(tg_mul(g, tg_pow_scalar(a, k - 1)), k);
}

/* One instruction of the vector machine as recorded ops, from its line in
 * ops/kernels/vm_codes.h: ta, tb, tc are its sources (in a derivative: the
 * direction, then primal tensors, recorded, so that second derivatives
 * flow through them). */
static tg_tensor *ew_rule_ops(int code, tg_tensor *ta, tg_tensor *tb,
                              tg_tensor *tc, double k)
{
#define TA ta
#define TB tb
#define TC tc
#define K k
#define REC_CASE(NAME, name, cost, value, recorded)                        \
    case TG_VM_##NAME:                                                     \
        return recorded;
    switch ((enum tg_vm_code)code) {
        TG_VM_CODES(REC_CASE)
    case TG_VM_NCODES:
        break;
    }
#undef REC_CASE
#undef TA
#undef TB
#undef TC
#undef K
    tg_error("jvp", "vector machine code %d is not one", code);
    return NULL;
}

/* the recorded form of tg_jvp_elementwise */
static void ew_recorded(tg_entry *e)
{
    const tg_ew_rule *r = e->op->ew;
    tg_tensor *src[4] = {NULL, e->in[0], r->nin > 1 ? e->in[1] : NULL,
                         e->out};
    double k = e->farg[TG_EW_K];
    tg_tensor *dy = NULL;
    for (int i = 0; i < r->nin; i++) {
        if (!e->in[i]->tangent)
            continue;
        const tg_ew_deriv *d = &r->d[i];
        src[TG_R_G] = tg_tangent_of(e->in[i]);
        tg_tensor *t = ew_rule_ops(d->code, src[d->src[0]], src[d->src[1]],
                                   src[d->src[2]], k);
        if (!t)
            return;
        dy = dy ? tg_add(dy, t) : t;
    }
    tg_set_out_tangent(e->out, dy);
}

void tg_jvp_elementwise(tg_entry *e)
{
    if (tg_jvp_records()) {
        ew_recorded(e);
        return;
    }
    const tg_ew_rule *r = e->op->ew;
    tg_tensor *y = e->out;
    int64_t n = y->numel;
    const tg_real *src[4] = {NULL, spread(e->in[0], y),
                             r->nin > 1 ? spread(e->in[1], y) : NULL,
                             tg_is_contiguous(y) ? y->data : spread(y, y)};
    tg_real *dy = tg_arena_alloc((size_t)(n ? n : 1) * sizeof(tg_real));
    memset(dy, 0, (size_t)n * sizeof(tg_real));
    tg_real k = (tg_real)e->farg[TG_EW_K];
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
    if (tg_jvp_records()) { /* the same view of the tangent, recorded */
        tg_tensor *t = tg_tangent_of(x);
        tg_set_out_tangent(y, e->op->replay(e, &t));
        return;
    }
    tg_real *dy = tg_arena_alloc((size_t)(y->numel ? y->numel : 1) *
                                 sizeof(tg_real));
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(y->ndim, y->shape, cs);
    /* the offset and strides of y's elements in x's logical order */
    tg_strided_copy(y->ndim, y->shape, dy, cs,
                    x->tangent + e->iarg[TG_VIEW_OFF],
                    &e->iarg[TG_VIEW_STRIDE], false);
    y->tangent = dy;
}

void tg_jvp_linear_op(tg_entry *e)
{
    tg_tensor **t = tg_arena_alloc((size_t)(e->nin ? e->nin : 1) * sizeof *t);
    for (int i = 0; i < e->nin; i++)
        t[i] = tg_tangent_of(e->in[i]);
    tg_set_out_tangent(e->out, e->op->replay(e, t));
}
