/*
 * ops/reduce.c - sum and mean over all elements; sum, mean and max over
 * one axis.
 *
 * Layout. Reducing axis d of a contiguous tensor sees it as a 3-d block
 * [outer, n, inner]: outer is the product of the sizes before d, n the
 * size of d, inner the product of the sizes after d. The output is
 * [outer, inner] (keepdim only changes the shape written in the header,
 * never the numbers). A strided input (a transpose, a slice) is first
 * gathered into a contiguous arena copy, released as soon as the forward
 * kernel is done; gradients are contiguous anyway, so backward kernels
 * only ever see this layout.
 *
 * Determinism. How the work is split among threads never changes a
 * number, so results are identical bit for bit for any thread count:
 *   - the sum over all elements accumulates in double over fixed blocks of
 *     TG_REDUCE_BLOCK numbers (in parallel), then adds the block sums in
 *     order: the partition depends on the size only;
 *   - over one axis, each output (a sum in tg_real, or a maximum) is
 *     computed by one thread in a fixed order; threads share out
 *     independent outputs.
 * Inside a block or a contiguous row the numbers go into 8 running sums
 * (element i into sum i % 8), combined pairwise at the end: a fixed order
 * that the compiler can vectorize and that loses less precision than one
 * long running sum.
 *
 * Not here: softmax and log-softmax (ops/loss.c).
 */
#include "ops/reduce.h"
#include "ops/elementwise.h"
#include "ops/internal.h"

#include <math.h>

#define LANES 8
/* columns per task when reducing an axis that is not the last one */
#define COL_TILE 1024

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* What the ops keep in their tape entry's iarg (autograd/tape.h). */
enum {          /* sum, mean */
    ALL_DIV,    /* what dy is divided by: 1 (sum) or numel (mean) */
    ALL_MEAN    /* mean, not sum (for replay) */
};
enum {          /* sum_dim, mean_dim, max_dim */
    RD_OUTER,   /* the product of the sizes before dim */
    RD_N,       /* the size of dim */
    RD_INNER,   /* the product of the sizes after dim */
    RD_DIV,     /* sum_dim, mean_dim: what dy is divided by, 1 or n */
    RD_DIM,     /* dim as the caller gave it (for replay) */
    RD_KEEPDIM, /* keepdim (for replay) */
    RD_MEAN     /* sum_dim, mean_dim: mean, not sum (for replay) */
};

/* x's numbers in row-major order: x->data itself when x is contiguous,
 * else a gathered arena copy. */
static const tg_real *contiguous_data(const tg_tensor *x)
{
    if (tg_is_contiguous(x))
        return x->data;
    tg_real *buf = tg_scratch(x->numel);
    tg_to_buffer(x, buf);
    return buf;
}

/* ---- kernels: plain arrays, no tape ------------------------------------ */

/* p is (n,): its sum in double, in a fixed order (8 lanes, see top). */
static double sum_block(const tg_real *p, int64_t n)
{
    double acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += (double)p[i + l];
    for (int l = 0; i + l < n; l++)
        acc[l] += (double)p[i + l];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* p is (n,): the same in tg_real, for a row of an axis reduction. */
static tg_real sum_row(const tg_real *p, int64_t n)
{
    tg_real acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += p[i + l];
    for (int l = 0; i + l < n; l++)
        acc[l] += p[i + l];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* p is (n,): the sum of all elements in double. The partition into blocks
 * depends on n only, never on the thread count. */
static double sum_all_kernel(const tg_real *p, int64_t n)
{
    int64_t nb = (n + TG_REDUCE_BLOCK - 1) / TG_REDUCE_BLOCK;
    if (nb <= 1)
        return sum_block(p, n);
    double *partial = tg_arena_alloc((size_t)nb * sizeof *partial);
    /* block b writes partial[b] alone */
    TG_OMP_FOR(n)
    for (int64_t b = 0; b < nb; b++) {
        int64_t begin = b * TG_REDUCE_BLOCK;
        partial[b] = sum_block(p + begin, min64(TG_REDUCE_BLOCK, n - begin));
    }
    double s = 0;
    for (int64_t b = 0; b < nb; b++)
        s += partial[b];
    return s;
}

/* x is (outer, n, inner), out is (outer, inner): out = x summed over n. */
static void sum_dim_kernel(const tg_real *x, tg_real *out, int64_t outer,
                           int64_t n, int64_t inner)
{
    if (inner == 1) {
        /* the last axis: output o is the sum of the contiguous row x[o, :],
         * which iteration o writes alone */
        TG_OMP_FOR(outer * n)
        for (int64_t o = 0; o < outer; o++)
            out[o] = sum_row(x + o * n, n);
        return;
    }
    /* Another axis: add whole rows x[o, k, :] into out[o, :], k = 0..n-1
     * (unit stride, vectorized). Task t = (o, column tile) writes
     * out[o, j0:j1] alone. */
    int64_t tiles = (inner + COL_TILE - 1) / COL_TILE;
    TG_OMP_FOR(outer * n * inner)
    for (int64_t t = 0; t < outer * tiles; t++) {
        int64_t o = t / tiles, j0 = (t % tiles) * COL_TILE;
        int64_t j1 = min64(j0 + COL_TILE, inner);
        tg_real *acc = out + o * inner;
        const tg_real *xo = x + o * n * inner;
        for (int64_t j = j0; j < j1; j++)
            acc[j] = 0;
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = j0; j < j1; j++)
                acc[j] += xo[k * inner + j];
    }
}

/* v replaces the best so far if larger; the first NaN wins and stays (a
 * NaN anywhere makes the maximum NaN, as in PyTorch). Ties keep the first
 * maximal element. */
static inline int better(tg_real v, tg_real best)
{
    return v > best || (v != v && best == best);
}

/* row is (n,), n >= 1: the index of its first maximal element. Eight
 * lanes (lane l sees elements l, l+8, ...) each keep their first maximum,
 * branch-free so the compiler can vectorize; then the best lane wins, a
 * tie going to the lower index - which is the first maximum of the row. */
static int64_t argmax_row(const tg_real *row, int64_t n)
{
    if (n < 2 * LANES) {
        int64_t at = 0;
        for (int64_t k = 1; k < n; k++)
            if (better(row[k], row[at]))
                at = k;
        return at;
    }
    tg_real best[LANES];
    int64_t idx[LANES];
    for (int l = 0; l < LANES; l++) {
        best[l] = row[l];
        idx[l] = l;
    }
    int64_t i = LANES;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            tg_real v = row[i + l];
            int up = better(v, best[l]);
            best[l] = up ? v : best[l];
            idx[l] = up ? i + l : idx[l];
        }
    for (int l = 0; i + l < n; l++)
        if (better(row[i + l], best[l])) {
            best[l] = row[i + l];
            idx[l] = i + l;
        }
    int w = 0;
    for (int l = 1; l < LANES; l++) {
        bool same = best[l] == best[w] ||
                    (best[l] != best[l] && best[w] != best[w]); /* NaNs */
        if (better(best[l], best[w]) || (same && idx[l] < idx[w]))
            w = l;
    }
    return idx[w];
}

/* x is (outer, n, inner) with n >= 1; out and arg are (outer, inner):
 * out = max over n, arg = the index k of the first maximal element. */
static void max_dim_kernel(const tg_real *x, tg_real *out, int64_t *arg,
                           int64_t outer, int64_t n, int64_t inner)
{
    if (inner == 1) {
        /* iteration o writes out[o], arg[o] alone */
        TG_OMP_FOR(outer * n)
        for (int64_t o = 0; o < outer; o++) {
            arg[o] = argmax_row(x + o * n, n);
            out[o] = x[o * n + arg[o]];
        }
        return;
    }
    int64_t tiles = (inner + COL_TILE - 1) / COL_TILE;
    /* task t = (o, column tile) writes out[o, j0:j1], arg[o, j0:j1] alone */
    TG_OMP_FOR(outer * n * inner)
    for (int64_t t = 0; t < outer * tiles; t++) {
        int64_t o = t / tiles, j0 = (t % tiles) * COL_TILE;
        int64_t j1 = min64(j0 + COL_TILE, inner);
        tg_real *best = out + o * inner;
        int64_t *at = arg + o * inner;
        const tg_real *xo = x + o * n * inner;
        for (int64_t j = j0; j < j1; j++) {
            best[j] = xo[j];
            at[j] = 0;
        }
        for (int64_t k = 1; k < n; k++)
            for (int64_t j = j0; j < j1; j++)
                if (better(xo[k * inner + j], best[j])) {
                    best[j] = xo[k * inner + j];
                    at[j] = k;
                }
    }
}

/* dx is (outer, n, inner), dy is (outer, inner):
 * dx[o, k, j] += dy[o, j] / div  (div = 1 for a sum, n for a mean). */
static void spread_add(tg_real *dx, const tg_real *dy, int64_t outer,
                       int64_t n, int64_t inner, tg_real div)
{
    if (inner == 1) {
        /* iteration o writes the row dx[o, :] alone */
        TG_OMP_FOR(outer * n)
        for (int64_t o = 0; o < outer; o++) {
            tg_real g = dy[o] / div;
            for (int64_t k = 0; k < n; k++)
                dx[o * n + k] += g;
        }
        return;
    }
    /* iteration r = (o, k) writes the row dx[o, k, :] alone */
    TG_OMP_FOR(outer * n * inner)
    for (int64_t r = 0; r < outer * n; r++) {
        tg_real *dxr = dx + r * inner;
        const tg_real *dyo = dy + (r / n) * inner;
        for (int64_t j = 0; j < inner; j++)
            dxr[j] += dyo[j] / div;
    }
}

/* ---- sum and mean over all elements ------------------------------------ */

/* y = sum(x) (or sum(x) / N):  dx[i] += dy (or dy / N), for all i */
static void sum_all_bwd(tg_entry *e)
{
    tg_tensor *x = e->in[0];
    if (!x->grad)
        return;
    /* divided in double, as N may exceed 2^24 */
    tg_real g = (tg_real)((double)e->out->grad[0] / (double)e->iarg[ALL_DIV]);
    tg_real *dx = x->grad;
    int64_t n = x->numel;
    /* iteration i writes dx[i] alone */
    TG_OMP_FOR(n)
    for (int64_t i = 0; i < n; i++)
        dx[i] += g;
}

static tg_tensor *sum_all_replay(const tg_entry *e, tg_tensor *const *in);
static const tg_op sum_op = {"sum", sum_all_bwd, .replay = sum_all_replay,
                             .jvp = tg_jvp_linear_op, .reads = TG_READS_NONE};
static const tg_op mean_op = {"mean", sum_all_bwd, .replay = sum_all_replay,
                              .jvp = tg_jvp_linear_op, .reads = TG_READS_NONE};

static tg_tensor *sum_all(const tg_op *op, tg_tensor *x, bool mean)
{
    TG_OP_INPUTS(op->name, x);
    tg_arena_mark m = tg_arena_get_mark();
    double s = sum_all_kernel(contiguous_data(x), x->numel);
    tg_arena_rewind(m); /* the gathered copy and the block sums */
    if (mean)
        s /= (double)x->numel; /* NaN for an empty x, as in PyTorch */
    tg_tensor *out = tg_new_out(0, x->shape);
    if (!out)
        return NULL;
    out->data[0] = (tg_real)s;
    tg_entry *e = tg_record(op, out, 1, &x);
    if (e) {
        e->iarg[ALL_DIV] = mean ? x->numel : 1;
        e->iarg[ALL_MEAN] = mean;
    }
    return tg_op_result(out);
}

static tg_tensor *sum_all_replay(const tg_entry *e, tg_tensor *const *in)
{
    return sum_all(e->op, in[0], e->iarg[ALL_MEAN] != 0);
}

tg_tensor *tg_sum(tg_tensor *x) { return sum_all(&sum_op, x, false); }
tg_tensor *tg_mean(tg_tensor *x) { return sum_all(&mean_op, x, true); }

/* ---- over one axis ------------------------------------------------------ */

typedef struct axis_split {
    int64_t outer, n, inner;
    int ndim; /* of the output */
    int64_t shape[TG_MAX_DIMS];
} axis_split;

/* Checks dim (negative counts from the end; a 0-d tensor accepts 0 and -1
 * and is its own single slice) and fills the geometry and output shape.
 * Returns -1 after reporting an error naming op and x's shape. */
static int split_axis(const char *op, const tg_tensor *x, int dim,
                      bool keepdim, axis_split *g)
{
    int nd = x->ndim, lo = nd ? -nd : -1, hi = nd ? nd - 1 : 0;
    if (dim < lo || dim > hi) {
        tg_error(op, "dim %d is out of range for a tensor of shape %s "
                 "(%d dimensions): valid dims are %d to %d", dim, SHP(x), nd,
                 lo, hi);
        return -1;
    }
    int d = dim < 0 ? dim + (nd ? nd : 1) : dim;
    g->outer = g->n = g->inner = 1;
    g->ndim = 0;
    for (int k = 0; k < nd; k++) {
        if (k < d)
            g->outer *= x->shape[k];
        else if (k > d)
            g->inner *= x->shape[k];
        else
            g->n = x->shape[k];
        if (k != d)
            g->shape[g->ndim++] = x->shape[k];
        else if (keepdim)
            g->shape[g->ndim++] = 1;
    }
    return 0;
}

/* y = sum(x, dim) (or / n):  dx[o, k, j] += dy[o, j] (or dy[o, j] / n) */
static void sum_dim_bwd(tg_entry *e)
{
    tg_tensor *x = e->in[0];
    if (!x->grad)
        return;
    spread_add(x->grad, e->out->grad, e->iarg[RD_OUTER], e->iarg[RD_N],
               e->iarg[RD_INNER], (tg_real)e->iarg[RD_DIV]);
}

static tg_tensor *sum_dim_replay(const tg_entry *e, tg_tensor *const *in);
static const tg_op sum_dim_op = {"sum_dim", sum_dim_bwd,
                                 .replay = sum_dim_replay,
                                 .jvp = tg_jvp_linear_op,
                                 .reads = TG_READS_NONE};
static const tg_op mean_dim_op = {"mean_dim", sum_dim_bwd,
                                  .replay = sum_dim_replay,
                                  .jvp = tg_jvp_linear_op,
                                  .reads = TG_READS_NONE};

static tg_tensor *sum_dim(const tg_op *op, tg_tensor *x, int dim, bool keepdim,
                          bool mean)
{
    TG_OP_INPUTS(op->name, x);
    axis_split g;
    if (split_axis(op->name, x, dim, keepdim, &g) < 0)
        return NULL;
    tg_tensor *out = tg_new_out(g.ndim, g.shape);
    if (!out)
        return NULL;
    tg_arena_mark m = tg_arena_get_mark();
    sum_dim_kernel(contiguous_data(x), out->data, g.outer, g.n, g.inner);
    tg_arena_rewind(m); /* the gathered copy, if any */
    if (mean) {
        /* NaN for an empty axis (0 / 0), as in PyTorch */
        tg_real n = (tg_real)g.n;
        for (int64_t i = 0; i < out->numel; i++)
            out->data[i] /= n;
    }
    tg_entry *e = tg_record(op, out, 1, &x);
    if (e) {
        e->iarg[RD_OUTER] = g.outer;
        e->iarg[RD_N] = g.n;
        e->iarg[RD_INNER] = g.inner;
        e->iarg[RD_DIV] = mean ? g.n : 1;
        e->iarg[RD_DIM] = dim;
        e->iarg[RD_KEEPDIM] = keepdim;
        e->iarg[RD_MEAN] = mean;
    }
    return tg_op_result(out);
}

tg_tensor *tg_sum_dim(tg_tensor *x, int dim, bool keepdim)
{
    return sum_dim(&sum_dim_op, x, dim, keepdim, false);
}

tg_tensor *tg_mean_dim(tg_tensor *x, int dim, bool keepdim)
{
    return sum_dim(&mean_dim_op, x, dim, keepdim, true);
}

/* y[o, j] = x[o, arg[o, j], j]:  dx[o, arg[o, j], j] += dy[o, j] */
static void max_dim_bwd(tg_entry *e)
{
    tg_tensor *x = e->in[0];
    if (!x->grad)
        return;
    const int64_t *arg = e->saved;
    int64_t n = e->iarg[RD_N], inner = e->iarg[RD_INNER], m = e->out->numel;
    const tg_real *dy = e->out->grad;
    tg_real *dx = x->grad;
    /* output i = (o, j) adds into the one element dx[o, arg[i], j], which
     * no other output touches */
    TG_OMP_FOR(m)
    for (int64_t i = 0; i < m; i++) {
        int64_t o = i / inner, j = i % inner;
        dx[(o * n + arg[i]) * inner + j] += dy[i];
    }
}

static tg_tensor *max_dim_replay(const tg_entry *e, tg_tensor *const *in)
{
    return tg_max_dim(in[0], (int)e->iarg[RD_DIM], e->iarg[RD_KEEPDIM] != 0);
}
/* forward mode: the tangent at the maximum's position */
static void max_dim_jvp(tg_entry *e)
{
    const tg_tensor *x = e->in[0];
    const int64_t *arg = e->saved;
    int64_t n = e->iarg[RD_N], inner = e->iarg[RD_INNER], m = e->out->numel;
    if (tg_jvp_records()) { /* sum over the axis of tangent x one-hot */
        tg_tensor *oh = tg_zeros(x->ndim, x->shape);
        for (int64_t i = 0; i < m; i++) {
            int64_t o = i / inner, j = i % inner;
            oh->data[(o * n + arg[i]) * inner + j] = 1;
        }
        tg_tensor *s = tg_sum_dim(tg_mul(tg_tangent_of(x), oh),
                                  (int)e->iarg[RD_DIM],
                                  e->iarg[RD_KEEPDIM] != 0);
        tg_set_out_tangent(e->out, s);
        return;
    }
    tg_real *d = tg_arena_alloc((size_t)(m ? m : 1) * sizeof(tg_real));
    for (int64_t i = 0; i < m; i++) {
        int64_t o = i / inner, j = i % inner;
        d[i] = x->tangent[(o * n + arg[i]) * inner + j];
    }
    e->out->tangent = d;
}
static const tg_op max_dim_op = {"max_dim", max_dim_bwd,
                                 .replay = max_dim_replay, .jvp = max_dim_jvp,
                                 .reads = TG_READS_NONE}; /* indices */

tg_tensor *tg_max_dim(tg_tensor *x, int dim, bool keepdim)
{
    TG_OP_INPUTS("max_dim", x);
    axis_split g;
    if (split_axis("max_dim", x, dim, keepdim, &g) < 0)
        return NULL;
    if (g.n == 0) {
        tg_error("max_dim", "dim %d of the tensor of shape %s has size 0: "
                 "an empty slice has no maximum", dim, SHP(x));
        return NULL;
    }
    tg_tensor *out = tg_new_out(g.ndim, g.shape);
    if (!out)
        return NULL;
    /* the argmax is what backward needs; it stays in the arena with out */
    int64_t *arg = tg_arena_alloc((size_t)(out->numel ? out->numel : 1) *
                                  sizeof *arg);
    tg_arena_mark m = tg_arena_get_mark();
    max_dim_kernel(contiguous_data(x), out->data, arg, g.outer, g.n, g.inner);
    tg_arena_rewind(m); /* the gathered copy, if any */
    tg_entry *e = tg_record(&max_dim_op, out, 1, &x);
    if (e) {
        e->iarg[RD_OUTER] = g.outer;
        e->iarg[RD_N] = g.n;
        e->iarg[RD_INNER] = g.inner;
        e->iarg[RD_DIM] = dim;
        e->iarg[RD_KEEPDIM] = keepdim;
        e->saved = arg;
    }
    return tg_op_result(out);
}

static tg_tensor *sum_dim_replay(const tg_entry *e, tg_tensor *const *in)
{
    return sum_dim(e->op, in[0], (int)e->iarg[RD_DIM],
                   e->iarg[RD_KEEPDIM] != 0, e->iarg[RD_MEAN] != 0);
}
