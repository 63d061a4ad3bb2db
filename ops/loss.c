/*
 * ops/loss.c - softmax and log-softmax along any axis, the fused
 * cross-entropy of logits and class ids, and the mean squared error.
 *
 * Stability: every exponential is taken of (x - max), which is <= 0, so
 * nothing overflows whatever the logits (1e4, -1e4, ...); the log of the
 * shifted sum is >= 0 and finite because the max term contributes 1.
 *
 * Layout: softmax works on x seen as (outer, n, inner) around the reduced
 * axis `dim` - element (o, k, i) at o*n*inner + k*inner + i - so one kernel
 * serves every axis: inner == 1 for the last axis (rows are contiguous),
 * inner > 1 for the others (a tile of neighbouring columns is processed
 * together, so memory is still walked in order). A strided input is first
 * gathered into contiguous scratch. cross_entropy and mse read strided
 * inputs directly.
 *
 * Not here: NLL of given log-probabilities, label smoothing, ignore_index,
 * class weights. Derived losses should be composed from ops.
 */
#include "ops/loss.h"
#include "ops/elementwise.h"
#include "ops/internal.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/unary.h"

#include <math.h>
#include <string.h>

/* What the ops keep in their tape entry's iarg (autograd/tape.h). */
enum {            /* softmax, log_softmax: x seen as [outer, n, inner] */
    SM_OUTER,     /* the product of the sizes before dim */
    SM_N,         /* the size of dim */
    SM_INNER,     /* the product of the sizes after dim */
    SM_LOG,       /* log_softmax, not softmax */
    SM_DIM        /* dim, made non-negative (for replay) */
};
enum {            /* cross_entropy: logits seen as [N, C] */
    CE_N,         /* the number of rows */
    CE_C,         /* the number of classes */
    CE_REDUCTION  /* TG_MEAN or TG_SUM */
};
enum {            /* mse */
    MSE_REDUCTION /* TG_MEAN or TG_SUM */
};

/* ---- softmax and log_softmax ------------------------------------------ */

/* Columns (of `inner`) handled together by one softmax tile. */
#define SM_TILE 64

/* Splits shape around dim: outer = prod(shape[:dim]), n = shape[dim],
 * inner = prod(shape[dim+1:]). A 0-d tensor is one row of one element. */
static void split_dims(const tg_tensor *x, int dim, int64_t *outer,
                       int64_t *n, int64_t *inner)
{
    *outer = 1;
    *n = x->ndim ? x->shape[dim] : 1;
    *inner = 1;
    for (int d = 0; d < dim; d++)
        *outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
}

/* One contiguous row x[n] -> y[n]: softmax, or log_softmax when logp
 * (the common case: the last axis). */
static void softmax_row_fwd(const tg_real *x, tg_real *y, int64_t n, bool logp)
{
    tg_real m = x[0], s = 0;
    for (int64_t k = 1; k < n; k++)
        m = x[k] > m ? x[k] : m;
    if (logp) {
        for (int64_t k = 0; k < n; k++)
            s += rexp(x[k] - m);
        tg_real ls = rlog(s);
        for (int64_t k = 0; k < n; k++)
            y[k] = (x[k] - m) - ls;
    } else {
        for (int64_t k = 0; k < n; k++) {
            y[k] = rexp(x[k] - m);
            s += y[k];
        }
        tg_real inv = 1 / s;
        for (int64_t k = 0; k < n; k++)
            y[k] *= inv;
    }
}

/* x, y are (outer, n, inner), contiguous. y = softmax(x) along n, or
 * log_softmax(x) when logp. */
static void softmax_fwd(const tg_real *x, tg_real *y, int64_t outer,
                        int64_t n, int64_t inner, bool logp)
{
    if (inner == 1) {
        /* each iteration writes row o of y alone */
        TG_OMP_FOR(outer * n * 3)
        for (int64_t o = 0; o < outer; o++)
            softmax_row_fwd(x + o * n, y + o * n, n, logp);
        return;
    }
    int64_t tiles_per_o = (inner + SM_TILE - 1) / SM_TILE;
    int64_t ntiles = outer * tiles_per_o;
    /* each tile writes y[o, :, i0:i1] alone */
    TG_OMP_FOR(outer * n * inner * 3)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t o = t / tiles_per_o, i0 = (t % tiles_per_o) * SM_TILE;
        int64_t w = inner - i0 < SM_TILE ? inner - i0 : SM_TILE;
        const tg_real *xo = x + o * n * inner + i0;
        tg_real *yo = y + o * n * inner + i0;
        tg_real m[SM_TILE], s[SM_TILE];
        for (int64_t i = 0; i < w; i++) {
            m[i] = xo[i];
            s[i] = 0;
        }
        for (int64_t k = 1; k < n; k++)
            for (int64_t i = 0; i < w; i++) {
                tg_real v = xo[k * inner + i];
                m[i] = v > m[i] ? v : m[i];
            }
        /* y = exp(x - max), s = its sum */
        for (int64_t k = 0; k < n; k++)
            for (int64_t i = 0; i < w; i++) {
                tg_real e = rexp(xo[k * inner + i] - m[i]);
                s[i] += e;
                if (!logp)
                    yo[k * inner + i] = e;
            }
        if (logp) {
            /* log softmax = (x - max) - log(sum exp(x - max)) */
            for (int64_t i = 0; i < w; i++)
                s[i] = rlog(s[i]);
            for (int64_t k = 0; k < n; k++)
                for (int64_t i = 0; i < w; i++)
                    yo[k * inner + i] = (xo[k * inner + i] - m[i]) - s[i];
        } else {
            for (int64_t i = 0; i < w; i++)
                s[i] = 1 / s[i];
            for (int64_t k = 0; k < n; k++)
                for (int64_t i = 0; i < w; i++)
                    yo[k * inner + i] *= s[i];
        }
    }
}

/* One contiguous row of softmax_bwd (below). */
static void softmax_row_bwd(tg_real *dx, const tg_real *dy, const tg_real *y,
                            int64_t n, bool logp)
{
    tg_real s = 0;
    if (logp) {
        for (int64_t k = 0; k < n; k++)
            s += dy[k];
        for (int64_t k = 0; k < n; k++)
            dx[k] += dy[k] - rexp(y[k]) * s;
    } else {
        for (int64_t k = 0; k < n; k++)
            s += dy[k] * y[k];
        for (int64_t k = 0; k < n; k++)
            dx[k] += y[k] * (dy[k] - s);
    }
}

/* dx, dy, y are (outer, n, inner), contiguous. Backward of
 *     softmax:      y = exp(x) / sum(exp(x))
 *                   dx += y * (dy - sum_k(dy * y))
 *     log_softmax:  y = x - log(sum(exp(x)))
 *                   dx += dy - exp(y) * sum_k(dy)
 * (the sums run along n). */
static void softmax_bwd(tg_real *dx, const tg_real *dy, const tg_real *y,
                        int64_t outer, int64_t n, int64_t inner, bool logp)
{
    if (inner == 1) {
        /* each iteration writes row o of dx alone */
        TG_OMP_FOR(outer * n * 3)
        for (int64_t o = 0; o < outer; o++)
            softmax_row_bwd(dx + o * n, dy + o * n, y + o * n, n, logp);
        return;
    }
    int64_t tiles_per_o = (inner + SM_TILE - 1) / SM_TILE;
    int64_t ntiles = outer * tiles_per_o;
    /* each tile writes dx[o, :, i0:i1] alone */
    TG_OMP_FOR(outer * n * inner * 3)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t o = t / tiles_per_o, i0 = (t % tiles_per_o) * SM_TILE;
        int64_t w = inner - i0 < SM_TILE ? inner - i0 : SM_TILE;
        int64_t off = o * n * inner + i0;
        const tg_real *dyo = dy + off, *yo = y + off;
        tg_real *dxo = dx + off;
        tg_real s[SM_TILE];
        for (int64_t i = 0; i < w; i++)
            s[i] = 0;
        for (int64_t k = 0; k < n; k++)
            for (int64_t i = 0; i < w; i++)
                s[i] += logp ? dyo[k * inner + i]
                             : dyo[k * inner + i] * yo[k * inner + i];
        for (int64_t k = 0; k < n; k++)
            for (int64_t i = 0; i < w; i++) {
                int64_t j = k * inner + i;
                if (logp)
                    dxo[j] += dyo[j] - rexp(yo[j]) * s[i];
                else
                    dxo[j] += yo[j] * (dyo[j] - s[i]);
            }
    }
}

/* Only the output is saved: both backward formulas are written in terms
 * of y. */
static void softmax_backward(tg_entry *e)
{
    tg_tensor *x = e->in[0], *y = e->out;
    if (!x->grad)
        return;
    softmax_bwd(x->grad, y->grad, y->data, e->iarg[SM_OUTER], e->iarg[SM_N],
                e->iarg[SM_INNER], e->iarg[SM_LOG] != 0);
}

/* forward mode, with y seen as [outer, n, inner] (softmax over n):
 *   softmax:      dy = y (dx - sum_n y dx)
 *   log_softmax:  dy = dx - sum_n exp(y) dx */
static void softmax_jvp(tg_entry *e)
{
    tg_tensor *x = e->in[0], *y = e->out;
    const int64_t s3[3] = {e->iarg[SM_OUTER], e->iarg[SM_N],
                           e->iarg[SM_INNER]};
    /* (y itself: a recording sweep differentiates through it) */
    tg_tensor *Y = tg_jvp_records() ? tg_reshape(y, 3, s3)
                                    : tg_wrap_buffer(3, s3, y->data);
    tg_tensor *dX = tg_reshape(tg_tangent_of(x), 3, s3);
    tg_tensor *r;
    if (e->iarg[SM_LOG])
        r = tg_sub(dX, tg_sum_dim(tg_mul(tg_exp(Y), dX), 1, true));
    else
        r = tg_mul(Y, tg_sub(dX, tg_sum_dim(tg_mul(Y, dX), 1, true)));
    tg_set_out_tangent(y, r ? tg_reshape(r, y->ndim, y->shape) : NULL);
}

static tg_tensor *softmax_replay(const tg_entry *e, tg_tensor *const *in);
static const tg_op softmax_desc = {"softmax", softmax_backward,
                                   .replay = softmax_replay,
                                   .jvp = softmax_jvp,
                                   .reads = TG_READS_OUT};
static const tg_op log_softmax_desc = {"log_softmax", softmax_backward,
                                       .replay = softmax_replay,
                                       .jvp = softmax_jvp,
                                       .reads = TG_READS_OUT};

static tg_tensor *softmax_op(const tg_op *desc, tg_tensor *x, int dim,
                             bool logp)
{
    const char *op = desc->name;
    TG_OP_INPUTS(op, x);
    int d = 0;
    if (x->ndim == 0) {
        /* a 0-d tensor: dim 0 or -1, as in PyTorch */
        if (dim != 0 && dim != -1) {
            tg_error(op, "dimension %d is out of range for a 0-d tensor "
                     "(valid: 0 or -1)", dim);
            return NULL;
        }
    } else if ((d = tg_norm_dim(op, dim, x->ndim)) < 0) {
        return NULL;
    }
    int64_t outer, n, inner;
    split_dims(x, d, &outer, &n, &inner);
    tg_tensor *out = tg_new_out(x->ndim, x->shape);
    const tg_real *src = x->data;
    if (!tg_is_contiguous(x)) {
        /* gather a strided view into row-major scratch */
        tg_real *buf = tg_scratch(x->numel);
        tg_to_buffer(x, buf);
        src = buf;
    }
    if (x->numel > 0)
        softmax_fwd(src, out->data, outer, n, inner, logp);
    tg_entry *e = tg_record(desc, out, 1, &x);
    if (e) {
        e->iarg[SM_OUTER] = outer;
        e->iarg[SM_N] = n;
        e->iarg[SM_INNER] = inner;
        e->iarg[SM_LOG] = logp;
        e->iarg[SM_DIM] = d;
    }
    return tg_op_result(out);
}

static tg_tensor *softmax_replay(const tg_entry *e, tg_tensor *const *in)
{
    return softmax_op(e->op, in[0], (int)e->iarg[SM_DIM],
                      e->iarg[SM_LOG] != 0);
}

tg_tensor *tg_softmax(tg_tensor *x, int dim)
{
    return softmax_op(&softmax_desc, x, dim, false);
}

tg_tensor *tg_log_softmax(tg_tensor *x, int dim)
{
    return softmax_op(&log_softmax_desc, x, dim, true);
}

/* ---- cross_entropy ------------------------------------------------------
 * logits [..., C] are N = numel / C rows of C class scores; row r's
 * leading index is the row-major index r of shape[:-1]. For every row
 *     loss_r = log(sum_c exp(x_rc)) - x_r,t = (m - x_rt) + log(sum exp(x - m))
 * with m the row max. Saved per row: m and lsum = log(sum exp(x - m)); the
 * softmax in backward is exp((x - m) - lsum), which keeps the precision of
 * x - m even when the logits are large (one log-sum-exp value of 1e4 in
 * float would be good to only ~1e-3). */

/* Memory offset of the first class score of row r. */
static int64_t row_offset(const tg_tensor *x, int64_t r)
{
    int64_t off = 0;
    for (int d = x->ndim - 2; d >= 0; d--) {
        off += (r % x->shape[d]) * x->stride[d];
        r /= x->shape[d];
    }
    return off;
}

/* x: logits (any strides), N rows of C; tgt[N]. Writes stats[2r] = m,
 * stats[2r+1] = lsum and rowloss[r] (double). */
static void ce_fwd(const tg_tensor *x, const int64_t *tgt, int64_t N,
                   int64_t C, tg_real *stats, double *rowloss)
{
    int64_t sc = x->stride[x->ndim - 1];
    /* each iteration writes row r's stats and loss alone */
    TG_OMP_FOR(N * C * 2)
    for (int64_t r = 0; r < N; r++) {
        const tg_real *xr = x->data + row_offset(x, r);
        tg_real m = xr[0], s = 0;
        for (int64_t c = 1; c < C; c++)
            m = xr[c * sc] > m ? xr[c * sc] : m;
        for (int64_t c = 0; c < C; c++)
            s += rexp(xr[c * sc] - m);
        tg_real lsum = rlog(s);
        stats[2 * r] = m;
        stats[2 * r + 1] = lsum;
        rowloss[r] = (double)(m - xr[tgt[r] * sc]) + (double)lsum;
    }
}

/* loss = sum_r (log sum_c exp(x_rc) - x_r,t[r]) * scale, so
 *     dx_rc += (softmax_rc - [c == t_r]) * dL * scale
 * with scale = 1/N for the mean, 1 for the sum. dx is [N, C] contiguous. */
static void ce_bwd(tg_real *dx, const tg_tensor *x, const int64_t *tgt,
                   const tg_real *stats, int64_t N, int64_t C, tg_real g)
{
    int64_t sc = x->stride[x->ndim - 1];
    /* each iteration writes row r of dx alone */
    TG_OMP_FOR(N * C * 2)
    for (int64_t r = 0; r < N; r++) {
        const tg_real *xr = x->data + row_offset(x, r);
        tg_real *dr = dx + r * C;
        tg_real m = stats[2 * r], lsum = stats[2 * r + 1];
        for (int64_t c = 0; c < C; c++)
            dr[c] += rexp((xr[c * sc] - m) - lsum) * g;
        dr[tgt[r]] -= g;
    }
}

typedef struct ce_saved {
    tg_real *stats; /* [N][2]: row max, log of the shifted sum */
    int64_t *tgt;   /* [N] copy of the targets */
} ce_saved;

static void ce_backward(tg_entry *e)
{
    tg_tensor *x = e->in[0];
    if (!x->grad)
        return;
    const ce_saved *sv = e->saved;
    int64_t N = e->iarg[CE_N], C = e->iarg[CE_C];
    double g = (double)e->out->grad[0];
    if (e->iarg[CE_REDUCTION] == TG_MEAN)
        g /= (double)N;
    ce_bwd(x->grad, x, sv->tgt, sv->stats, N, C, (tg_real)g);
}
/* forward mode: dL = scale sum_r (softmax(x_r) . dx_r - dx_r[t_r]) */
static void ce_jvp(tg_entry *e)
{
    tg_tensor *x = e->in[0];
    const ce_saved *sv = e->saved;
    int64_t N = e->iarg[CE_N], C = e->iarg[CE_C];
    tg_tensor *P = tg_softmax(tg_reshape(x, TG_SHAPE(N, C)), 1);
    tg_tensor *dX = tg_reshape(tg_tangent_of(x), TG_SHAPE(N, C));
    if (!P || !dX)
        return;
    if (tg_jvp_records()) { /* the target term with a constant one-hot */
        tg_tensor *oh = tg_zeros(TG_SHAPE(N, C));
        for (int64_t r = 0; r < N; r++)
            oh->data[r * C + sv->tgt[r]] = 1;
        tg_tensor *d = tg_sum(tg_mul(tg_sub(P, oh), dX));
        if (d && e->iarg[CE_REDUCTION] == TG_MEAN)
            d = tg_mul_scalar(d, 1.0 / (double)N);
        tg_set_out_tangent(e->out, d);
        return;
    }
    double d = (double)tg_sum(tg_mul(P, dX))->data[0];
    for (int64_t r = 0; r < N; r++)
        d -= (double)dX->data[r * C + sv->tgt[r]];
    if (e->iarg[CE_REDUCTION] == TG_MEAN)
        d /= (double)N;
    e->out->tangent = tg_arena_alloc(sizeof(tg_real));
    e->out->tangent[0] = (tg_real)d;
}

/* (no replay: a step using it is not compiled into a fused program) */
static const tg_op ce_desc = {"cross_entropy", ce_backward, .replay = NULL,
                              .jvp = ce_jvp};

/* " (row [1, 0] of logits [2, 2, 5])": where row r sits, for error text;
 * for 1-D and 2-D logits the position is the row itself. */
static void row_where(const tg_tensor *x, int64_t r, char *buf, size_t cap)
{
    if (x->ndim <= 2) {
        snprintf(buf, cap, " (logits %s)", SHP(x));
        return;
    }
    int64_t idx[TG_MAX_DIMS];
    for (int d = x->ndim - 2; d >= 0; d--) {
        idx[d] = r % x->shape[d];
        r /= x->shape[d];
    }
    size_t len = (size_t)snprintf(buf, cap, " (row [");
    for (int d = 0; d < x->ndim - 1 && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? ", " : "",
                                (long long)idx[d]);
    if (len < cap)
        snprintf(buf + len, cap - len, "] of logits %s)", SHP(x));
}

tg_tensor *tg_cross_entropy(tg_tensor *logits, const int64_t *targets,
                            tg_reduction reduction)
{
    const char *op = "cross_entropy";
    TG_OP_INPUTS(op, logits);
    tg_tensor *x = logits;
    if (x->ndim < 1 || x->shape[x->ndim - 1] < 1) {
        tg_error(op, "logits have shape %s; expected [..., C] with the C >= 1 "
                 "class scores in the last axis", SHP(x));
        return NULL;
    }
    if (reduction != TG_MEAN && reduction != TG_SUM) {
        tg_error(op, "unknown reduction %d (use TG_MEAN or TG_SUM)",
                 (int)reduction);
        return NULL;
    }
    int64_t C = x->shape[x->ndim - 1], N = x->numel / C;
    if (!targets && N > 0) {
        tg_error(op, "targets is NULL; expected %lld class ids for logits %s",
                 (long long)N, SHP(x));
        return NULL;
    }
    /* every id is checked before anything is computed */
    for (int64_t r = 0; r < N; r++)
        if (targets[r] < 0 || targets[r] >= C) {
            char where[192];
            row_where(x, r, where, sizeof where);
            tg_error(op, "target %lld at position %lld%s is out of range: "
                     "class ids must be in 0..%lld (C = %lld classes in the "
                     "last axis)", (long long)targets[r], (long long)r, where,
                     (long long)(C - 1), (long long)C);
            return NULL;
        }
    ce_saved *sv = tg_arena_alloc(sizeof *sv);
    sv->stats = tg_scratch(2 * N);
    sv->tgt = tg_arena_alloc((size_t)(N ? N : 1) * sizeof(int64_t));
    if (N)
        memcpy(sv->tgt, targets, (size_t)N * sizeof(int64_t));
    double *rowloss = tg_arena_alloc((size_t)(N ? N : 1) * sizeof(double));
    ce_fwd(x, sv->tgt, N, C, sv->stats, rowloss);
    /* the total in double, in row order: the same for any thread count */
    double total = 0;
    for (int64_t r = 0; r < N; r++)
        total += rowloss[r];
    if (reduction == TG_MEAN)
        total /= (double)N; /* N == 0 gives NaN, as in PyTorch */
    tg_tensor *out = tg_new_out(0, x->shape);
    out->data[0] = (tg_real)total;
    tg_entry *e = tg_record(&ce_desc, out, 1, &x);
    if (e) {
        e->iarg[CE_N] = N;
        e->iarg[CE_C] = C;
        e->iarg[CE_REDUCTION] = reduction;
        e->saved = sv;
    }
    return tg_op_result(out);
}

/* ---- mse ---------------------------------------------------------------
 * loss = sum_i (p_i - t_i)^2 * scale, scale = 1/n (mean) or 1 (sum). */

/* p, t contiguous [n]: sum of (p - t)^2 in double, by fixed blocks. */
static double sq_diff_sum(const tg_real *p, const tg_real *t, int64_t n)
{
    int64_t nb = (n + TG_REDUCE_BLOCK - 1) / TG_REDUCE_BLOCK;
    double *part = tg_arena_alloc((size_t)(nb ? nb : 1) * sizeof(double));
    /* each block b writes part[b] alone */
    TG_OMP_FOR(n * 2)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i1 = (b + 1) * TG_REDUCE_BLOCK < n ? (b + 1) * TG_REDUCE_BLOCK
                                                   : n;
        double s = 0;
        for (int64_t i = b * TG_REDUCE_BLOCK; i < i1; i++) {
            double d = (double)(p[i] - t[i]);
            s += d * d;
        }
        part[b] = s;
    }
    double total = 0;
    for (int64_t b = 0; b < nb; b++)
        total += part[b];
    return total;
}

/* backward operands {dst, p, t}, args[0] = c:  dst += c * (p - t) */
static void mse_grad(int64_t n, tg_real *const *p, const int64_t *s,
                     const double *args)
{
    tg_real c = (tg_real)args[0];
    for (int64_t i = 0; i < n; i++)
        p[0][i * s[0]] += c * (p[1][i * s[1]] - p[2][i * s[2]]);
}

/* loss = scale * sum (p - t)^2:
 *     dp += 2 (p - t) dL scale,   dt -= 2 (p - t) dL scale */
static void mse_backward(tg_entry *e)
{
    tg_tensor *p = e->in[0], *t = e->in[1];
    double c = 2 * (double)e->out->grad[0];
    if (e->iarg[MSE_REDUCTION] == TG_MEAN)
        c /= (double)p->numel;
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(p->ndim, p->shape, cs);
    if (p->grad) {
        tg_real *base[] = {p->grad, p->data, t->data};
        const int64_t *st[] = {cs, p->stride, t->stride};
        tg_ew_run(3, base, st, p->ndim, p->shape, mse_grad, &c);
    }
    if (t->grad) {
        double neg = -c;
        tg_real *base[] = {t->grad, p->data, t->data};
        const int64_t *st[] = {cs, p->stride, t->stride};
        tg_ew_run(3, base, st, p->ndim, p->shape, mse_grad, &neg);
    }
}
/* forward mode: dL = 2 scale sum (p - t) (dp - dt) */
static void mse_jvp(tg_entry *e)
{
    tg_tensor *p = e->in[0], *t = e->in[1];
    tg_tensor *d = tg_sum(tg_mul(tg_sub(p, t),
                                 tg_sub(tg_tangent_of(p), tg_tangent_of(t))));
    if (!d)
        return;
    double scale = e->iarg[MSE_REDUCTION] == TG_MEAN ? 2.0 / (double)p->numel
                                                     : 2.0;
    if (tg_jvp_records()) {
        tg_set_out_tangent(e->out, tg_mul_scalar(d, scale));
        return;
    }
    double c = scale * (double)d->data[0];
    e->out->tangent = tg_arena_alloc(sizeof(tg_real));
    e->out->tangent[0] = (tg_real)c;
}

/* (no replay: a step using it is not compiled into a fused program) */
static const tg_op mse_desc = {"mse", mse_backward, .replay = NULL,
                               .jvp = mse_jvp};

tg_tensor *tg_mse(tg_tensor *pred, tg_tensor *target, tg_reduction reduction)
{
    const char *op = "mse";
    TG_OP_INPUTS(op, pred, target);
    if (!tg_same_shape(pred, target)) {
        tg_error(op, "prediction %s and target %s differ in shape; they must "
                 "be equal (mse does not broadcast: reshape or expand the "
                 "target first)", SHP(pred), SHP(target));
        return NULL;
    }
    if (reduction != TG_MEAN && reduction != TG_SUM) {
        tg_error(op, "unknown reduction %d (use TG_MEAN or TG_SUM)",
                 (int)reduction);
        return NULL;
    }
    int64_t n = pred->numel;
    const tg_real *p = pred->data, *t = target->data;
    if (!tg_is_contiguous(pred)) {
        tg_real *buf = tg_scratch(n);
        tg_to_buffer(pred, buf);
        p = buf;
    }
    if (!tg_is_contiguous(target)) {
        tg_real *buf = tg_scratch(n);
        tg_to_buffer(target, buf);
        t = buf;
    }
    double total = sq_diff_sum(p, t, n);
    if (reduction == TG_MEAN)
        total /= (double)n; /* n == 0 gives NaN, as in PyTorch */
    tg_tensor *out = tg_new_out(0, pred->shape);
    out->data[0] = (tg_real)total;
    tg_entry *e = tg_record(&mse_desc, out, 2,
                            (tg_tensor *[]){pred, target});
    if (e)
        e->iarg[MSE_REDUCTION] = reduction;
    return tg_op_result(out);
}
