/*
 * ops/common.c - what every op family shares: output allocation,
 * broadcasting (forward: strides of 0; backward: tg_unbroadcast_add, the
 * one place where a broadcast gradient is summed back), and the
 * elementwise driver that runs an inner loop over any shape and strides.
 */
#include "ops/internal.h"

#include <string.h>

shape_buf tg_shp(const tg_tensor *t)
{
    shape_buf b;
    tg_shape_str(t, b.s, sizeof b.s);
    return b;
}

tg_tensor *tg_new_out(int ndim, const int64_t *shape)
{
    return tg_empty(ndim, shape);
}

tg_real *tg_scratch(int64_t n)
{
    return tg_arena_alloc((size_t)(n ? n : 1) * sizeof(tg_real));
}

tg_real *tg_scratch_zero(int64_t n)
{
    return tg_arena_calloc((size_t)(n ? n : 1) * sizeof(tg_real));
}

int tg_broadcast_shape(const char *op, const tg_tensor *a, const tg_tensor *b,
                       int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = n - 1, da = a->ndim - 1, db = b->ndim - 1; d >= 0;
         d--, da--, db--) {
        int64_t sa = da >= 0 ? a->shape[da] : 1;
        int64_t sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            tg_error(op, "shapes %s and %s do not broadcast: dimension %d "
                     "(counting from the right, from 1) is %lld vs %lld; "
                     "sizes must be equal or one of them 1", SHP(a), SHP(b),
                     n - d, (long long)sa, (long long)sb);
            return -1;
        }
        shape[d] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return 0;
}

void tg_broadcast_strides(const tg_tensor *t, int ndim, const int64_t *shape,
                          int64_t *stride)
{
    for (int d = ndim - 1, s = t->ndim - 1; d >= 0; d--, s--)
        stride[d] = (s >= 0 && t->shape[s] == shape[d]) ? t->stride[s] : 0;
}

void tg_unbroadcast_add(tg_real *dst, int dndim, const int64_t *dshape,
                        const tg_real *g, int ndim, const int64_t *shape)
{
    /* dst's strides at the broadcast shape: 0 where it was stretched */
    int64_t dcs[TG_MAX_DIMS], ds[TG_MAX_DIMS], gs[TG_MAX_DIMS];
    tg_contiguous_strides(dndim, dshape, dcs);
    tg_contiguous_strides(ndim, shape, gs);
    bool same = dndim == ndim;
    for (int d = ndim - 1, s = dndim - 1; d >= 0; d--, s--) {
        ds[d] = (s >= 0 && dshape[s] == shape[d]) ? dcs[s] : 0;
        if (s < 0 || dshape[s] != shape[d])
            same = false;
    }
    if (same) {
        /* nothing was broadcast: a plain parallel add */
        int64_t n = 1;
        for (int d = 0; d < ndim; d++)
            n *= shape[d];
        if (n < TG_PAR_MIN) {
            for (int64_t i = 0; i < n; i++)
                dst[i] += g[i];
            return;
        }
        TG_OMP_FOR(n)
        for (int64_t i = 0; i < n; i++)
            dst[i] += g[i];
        return;
    }
    /* Sequential in row-major order of g, so every dst element sums its
     * contributions in one fixed order. For the common bias case ([B,H]
     * into [H]) the inner loop runs along H with unit strides. */
    tg_strided_copy(ndim, shape, dst, ds, g, gs, true);
}

/* ---- elementwise driver ---------------------------------------------- */

#define TG_EW_TILE 8192

typedef struct ew_plan {
    int nop, ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t st[TG_EW_MAX_OPS][TG_MAX_DIMS];
    int64_t rows;      /* product of all but the last (coalesced) dim */
    int64_t tiles_per_row;
} ew_plan;

/* Merges neighbouring dimensions that every operand walks as one, so a
 * contiguous tensor of any shape becomes a single long row. */
static void ew_coalesce(ew_plan *p)
{
    int n = 0;
    for (int d = 0; d < p->ndim; d++) {
        if (p->shape[d] == 1)
            continue;
        bool merge = n > 0;
        for (int k = 0; merge && k < p->nop; k++)
            if (p->st[k][n - 1] != p->st[k][d] * p->shape[d])
                merge = false;
        if (merge) {
            p->shape[n - 1] *= p->shape[d];
            for (int k = 0; k < p->nop; k++)
                p->st[k][n - 1] = p->st[k][d];
        } else {
            p->shape[n] = p->shape[d];
            for (int k = 0; k < p->nop; k++)
                p->st[k][n] = p->st[k][d];
            n++;
        }
    }
    if (n == 0) {
        p->shape[0] = 1;
        for (int k = 0; k < p->nop; k++)
            p->st[k][0] = 0;
        n = 1;
    }
    p->ndim = n;
}

/* runs fn over tile t of the plan */
static void ew_tile(const ew_plan *p, int64_t t, tg_real *const *base,
                    tg_ew_inner fn, const double *args)
{
    int nop = p->nop;
    int64_t inner = p->shape[p->ndim - 1];
    int64_t row = t / p->tiles_per_row, part = t % p->tiles_per_row;
    int64_t off[TG_EW_MAX_OPS] = {0}, s[TG_EW_MAX_OPS];
    int64_t r = row;
    for (int d = p->ndim - 2; d >= 0; d--) {
        int64_t i = r % p->shape[d];
        r /= p->shape[d];
        for (int k = 0; k < nop; k++)
            off[k] += i * p->st[k][d];
    }
    int64_t begin = part * TG_EW_TILE;
    int64_t n = inner - begin < TG_EW_TILE ? inner - begin : TG_EW_TILE;
    tg_real *ptr[TG_EW_MAX_OPS];
    for (int k = 0; k < nop; k++) {
        s[k] = p->st[k][p->ndim - 1];
        ptr[k] = base[k] + off[k] + begin * s[k];
    }
    fn(n, ptr, s, args);
}

void tg_ew_run(int nop, tg_real *const *base, const int64_t *const *strides,
               int ndim, const int64_t *shape, tg_ew_inner fn,
               const double *args)
{
    TG_ASSERT(nop >= 1 && nop <= TG_EW_MAX_OPS);
    ew_plan p;
    p.nop = nop;
    p.ndim = ndim;
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        p.shape[d] = shape[d];
        total *= shape[d];
        for (int k = 0; k < nop; k++)
            p.st[k][d] = strides[k][d];
    }
    if (total == 0)
        return;
    ew_coalesce(&p);
    int64_t inner = p.shape[p.ndim - 1];
    p.rows = total / inner;
    p.tiles_per_row = (inner + TG_EW_TILE - 1) / TG_EW_TILE;
    int64_t ntiles = p.rows * p.tiles_per_row;
    /* small: no OpenMP at all (even a parallel region with a false if
     * clause costs about as much as a small op) */
    if (total < TG_PAR_MIN) {
        for (int64_t t = 0; t < ntiles; t++)
            ew_tile(&p, t, base, fn, args);
        return;
    }
    /* each tile writes its own elements of operand 0 */
    TG_OMP_FOR(total)
    for (int64_t t = 0; t < ntiles; t++)
        ew_tile(&p, t, base, fn, args);
}

/* ---- the driver running a code (tg_ew_run_code) ------------------------ */
enum { GATHER = 256 }; /* numbers gathered at a time: 8 KB of stack */

static void code_inner(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    int code = (int)args[0];
    tg_real k = (tg_real)args[1];
    bool acc = args[2] != 0;
    if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
        tg_vm_eval(code, n, p[0], p[1], p[2], p[3], k, acc);
        return;
    }
    tg_real buf[4][GATHER];
    for (int64_t i0 = 0; i0 < n; i0 += GATHER) {
        int64_t m = n - i0 < GATHER ? n - i0 : GATHER;
        const tg_real *src[4];
        for (int j = 0; j < 4; j++) {
            if (s[j] == 1) {
                src[j] = p[j] + i0;
                continue;
            }
            if (j == 0 && !acc) {
                src[0] = NULL; /* written only */
                continue;
            }
            for (int64_t i = 0; i < m; i++)
                buf[j][i] = p[j][(i0 + i) * s[j]];
            src[j] = buf[j];
        }
        tg_real *d = s[0] == 1 ? p[0] + i0 : buf[0];
        tg_vm_eval(code, m, d, src[1], src[2], src[3], k, acc);
        if (s[0] != 1)
            for (int64_t i = 0; i < m; i++)
                p[0][(i0 + i) * s[0]] = buf[0][i];
    }
}

void tg_ew_run_code(int code, double k, bool acc, tg_real *const *base,
                    const int64_t *const *strides, int ndim,
                    const int64_t *shape)
{
    const double args[3] = {code, k, acc};
    tg_ew_run(4, base, strides, ndim, shape, code_inner, args);
}
