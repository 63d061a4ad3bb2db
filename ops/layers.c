/*
 * ops/layers.c - embedding lookup and (inverted) dropout.
 *
 * embedding: out[i, :] = weight[ids[i], :]. Its backward is a scatter-add,
 * the one place in a language model where several outputs write the same
 * gradient row (a token repeated in the batch). To stay bitwise identical
 * for any thread count, each thread owns a block of the E columns of
 * dweight and walks all ids in their order: every dweight element sums
 * its contributions in id order, exactly as one thread would.
 *
 * dropout: the keep/drop mask is drawn on one thread in row-major order,
 * one uniform number per element, so a seeded generator reproduces it and
 * advances by exactly numel draws. The mask is saved (one byte per
 * element) for backward.
 *
 * Not here: padding_idx, max_norm, sparse gradients; dropout variants
 * (spatial, alpha).
 */
#include "ops/layers.h"
#include "ops/elementwise.h"
#include "ops/internal.h"
#include "tensor/rng.h"

#include <math.h>
#include <string.h>

/* What the ops keep in their tape entry (autograd/tape.h). */
enum {     /* embedding, iarg */
    EMB_N, /* the number of ids */
    EMB_E  /* the row length of the weight */
};
enum {         /* dropout, farg */
    DROP_SCALE /* 1 / (1 - p), what kept elements are multiplied by */
};

/* ---- embedding ---------------------------------------------------------- */

/* Columns of dweight owned by one backward iteration (a 64-byte line of
 * floats). */
#define EMB_COLS 16

/* weight [V, E] (any strides), ids[n] -> out [n, E] contiguous. */
static void embedding_fwd(tg_real *out, const tg_tensor *w, const int64_t *ids,
                          int64_t n, int64_t E)
{
    int64_t s0 = w->stride[0], s1 = w->stride[1];
    /* each iteration writes row i of out alone */
    TG_OMP_FOR(n * E)
    for (int64_t i = 0; i < n; i++) {
        const tg_real *src = w->data + ids[i] * s0;
        tg_real *dst = out + i * E;
        for (int64_t c = 0; c < E; c++)
            dst[c] = src[c * s1];
    }
}

/* out[i, :] = weight[ids[i], :]:  dweight[ids[i], :] += dout[i, :]
 * dw [V, E], dy [n, E], both contiguous. */
static void embedding_bwd(tg_real *dw, const tg_real *dy, const int64_t *ids,
                          int64_t n, int64_t E)
{
    int64_t nblocks = (E + EMB_COLS - 1) / EMB_COLS;
    /* each iteration writes columns [c0, c1) of dw alone, adding the ids'
     * rows in id order */
    TG_OMP_FOR(n * E)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t c0 = b * EMB_COLS, c1 = c0 + EMB_COLS < E ? c0 + EMB_COLS : E;
        for (int64_t i = 0; i < n; i++) {
            tg_real *dst = dw + ids[i] * E;
            const tg_real *src = dy + i * E;
            for (int64_t c = c0; c < c1; c++)
                dst[c] += src[c];
        }
    }
}

/* saved: the ids (int64, arena) */
static void embedding_backward(tg_entry *e)
{
    tg_tensor *w = e->in[0];
    if (!w->grad)
        return;
    embedding_bwd(w->grad, e->out->grad, e->saved, e->iarg[EMB_N],
                  e->iarg[EMB_E]);
}
/* forward mode: the rows of W's tangent the ids pick */
static void embedding_jvp(tg_entry *e)
{
    const tg_tensor *w = e->in[0];
    const int64_t *ids = e->saved;
    int64_t n = e->iarg[EMB_N], E = e->iarg[EMB_E];
    if (tg_jvp_records()) { /* the same rows of the tangent, recorded */
        tg_tensor *y = e->out;
        tg_set_out_tangent(y, tg_embedding(tg_tangent_of(w), ids,
                                           y->ndim - 1, y->shape));
        return;
    }
    int64_t m = n * E;
    tg_real *d = tg_arena_alloc((size_t)(m > 0 ? m : 1) * sizeof(tg_real));
    for (int64_t i = 0; i < n; i++)
        memcpy(d + i * E, w->tangent + ids[i] * E, (size_t)E * sizeof(tg_real));
    e->out->tangent = d;
}

/* (no replay: a step using it is not compiled into a fused program) */
static const tg_op embedding_desc = {"embedding", embedding_backward,
                                     .jvp = embedding_jvp,
                                     .reads = TG_READS_NONE}; /* indices */

tg_tensor *tg_embedding(tg_tensor *weight, const int64_t *ids, int ndim,
                        const int64_t *shape)
{
    const char *op = "embedding";
    TG_OP_INPUTS(op, weight);
    if (weight->ndim != 2) {
        tg_error(op, "weight has shape %s; expected [V, E] (one row of E "
                 "numbers per id)", SHP(weight));
        return NULL;
    }
    if (ndim < 0 || ndim > TG_MAX_DIMS - 1) {
        tg_error(op, "ids have %d dimensions; 0 to %d are allowed (the "
                 "output adds one for E, up to %d)", ndim, TG_MAX_DIMS - 1,
                 TG_MAX_DIMS);
        return NULL;
    }
    int64_t n = 1, oshape[TG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            tg_error(op, "ids shape has size %lld in dimension %d",
                     (long long)shape[d], d);
            return NULL;
        }
        oshape[d] = shape[d];
        n *= shape[d];
    }
    int64_t V = weight->shape[0], E = weight->shape[1];
    oshape[ndim] = E;
    if (!ids && n > 0) {
        tg_error(op, "ids is NULL; expected %lld ids", (long long)n);
        return NULL;
    }
    /* every id is checked before anything is computed */
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) {
            tg_error(op, "id %lld at position %lld is out of range for weight "
                     "%s: ids must be in 0..%lld (V = %lld rows)",
                     (long long)ids[i], (long long)i, SHP(weight),
                     (long long)(V - 1), (long long)V);
            return NULL;
        }
    int64_t *copy = tg_arena_alloc((size_t)(n ? n : 1) * sizeof *copy);
    if (n)
        memcpy(copy, ids, (size_t)n * sizeof *copy);
    tg_tensor *out = tg_new_out(ndim + 1, oshape);
    embedding_fwd(out->data, weight, copy, n, E);
    tg_entry *e = tg_record(&embedding_desc, out, 1, &weight);
    if (e) {
        e->iarg[EMB_N] = n;
        e->iarg[EMB_E] = E;
        e->saved = copy;
    }
    return tg_op_result(out);
}

/* ---- dropout ------------------------------------------------------------ */

/* x [n] contiguous, keep[n] in {0, 1}: y = keep ? x * scale : 0 */
static void dropout_fwd(tg_real *y, const tg_real *x, const uint8_t *keep,
                        int64_t n, tg_real scale)
{
    /* each iteration writes y[i] alone */
    TG_OMP_FOR(n)
    for (int64_t i = 0; i < n; i++)
        y[i] = keep[i] ? x[i] * scale : 0;
}

/* y = keep ? x * scale : 0:  dx += keep ? dy * scale : 0 */
static void dropout_bwd(tg_real *dx, const tg_real *dy, const uint8_t *keep,
                        int64_t n, tg_real scale)
{
    /* each iteration writes dx[i] alone */
    TG_OMP_FOR(n)
    for (int64_t i = 0; i < n; i++)
        dx[i] += keep[i] ? dy[i] * scale : 0;
}

/* saved: the mask (bytes) */
static void dropout_backward(tg_entry *e)
{
    tg_tensor *x = e->in[0];
    if (!x->grad)
        return;
    dropout_bwd(x->grad, e->out->grad, e->saved, x->numel,
                (tg_real)e->farg[DROP_SCALE]);
}
/* forward mode: the same mask and scale on the tangent */
static void dropout_jvp(tg_entry *e)
{
    const tg_tensor *x = e->in[0];
    const uint8_t *keep = e->saved;
    tg_real scale = (tg_real)e->farg[DROP_SCALE];
    int64_t n = x->numel;
    if (tg_jvp_records()) { /* times the same mask, as a constant */
        tg_tensor *m = tg_empty(x->ndim, x->shape);
        for (int64_t i = 0; i < n; i++)
            m->data[i] = keep[i] ? scale : 0;
        tg_set_out_tangent(e->out, tg_mul(tg_tangent_of(x), m));
        return;
    }
    tg_real *d = tg_arena_alloc((size_t)(n ? n : 1) * sizeof(tg_real));
    for (int64_t i = 0; i < n; i++)
        d[i] = keep[i] ? x->tangent[i] * scale : 0;
    e->out->tangent = d;
}

/* (no replay: a step using it is not compiled into a fused program) */
static const tg_op dropout_desc = {"dropout", dropout_backward,
                                   .jvp = dropout_jvp,
                                   .reads = TG_READS_NONE}; /* its mask */

tg_tensor *tg_dropout(tg_tensor *x, double p, bool training,
                      struct tg_rng *rng)
{
    const char *op = "dropout";
    TG_OP_INPUTS(op, x);
    if (!(p >= 0 && p < 1)) {
        tg_error(op, "p = %g is the probability of zeroing an element; it "
                 "must be in [0, 1)", p);
        return NULL;
    }
    if (!training || p == 0)
        return x;
    if (!rng)
        rng = tg_rng_global();
    int64_t n = x->numel;
    /* the mask, sequentially: element i is kept when its draw is >= p */
    uint8_t *keep = tg_arena_alloc((size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        keep[i] = tg_rng_uniform(rng) >= p;
    const tg_real *src = x->data;
    if (!tg_is_contiguous(x)) {
        tg_real *buf = tg_scratch(n);
        tg_to_buffer(x, buf);
        src = buf;
    }
    double scale = 1 / (1 - p);
    tg_tensor *out = tg_new_out(x->ndim, x->shape);
    dropout_fwd(out->data, src, keep, n, (tg_real)scale);
    tg_entry *e = tg_record(&dropout_desc, out, 1, &x);
    if (e) {
        e->farg[DROP_SCALE] = scale;
        e->saved = keep;
    }
    return tg_op_result(out);
}
