/*
 * fuzz/fuse_diff_shapes.c - the cell generator's other op families
 * (fuzz/fuse_diff_gen.h): weights made from parameters - weight_hh, its
 * row blocks and columns, slices of slices of extra parameters, their
 * transposes - shape ops, reductions, products, constants made in the
 * step, dropout, and reads of captured state (bug b's switch).
 */
#include "fuzz/fuse_diff_gen.h"

#include <stdio.h>

/* ---- parameters and weights --------------------------------------------- */
int fd_param_val(gen *g, int which)
{
    const fd_prog *p = g->p;
    int G = p->gates, H = p->H;
    int d[2];
    if (which == -1) {
        d[0] = G * H, d[1] = H;
        return fd_put(g, OP_PARAM, -1, -1, -1, (int[4]){-1}, 0,
                   fd_mkval(2, d, -g->pk, g->pk, true));
    }
    if (which == -2) {
        d[0] = G * H;
        return fd_put(g, OP_PARAM, -1, -1, -1, (int[4]){-2}, 0,
                   fd_mkval(1, d, -g->pk, g->pk, true));
    }
    const fd_param *q = &p->params[which];
    return fd_put(g, OP_PARAM, -1, -1, -1, (int[4]){which}, 0,
               fd_mkval(q->nd, q->d, -g->pk, g->pk, true));
}

/* an extra parameter of nd dims, at least d0 x d1 (exactly d1 columns
 * when !wide): an existing one half the time if one fits, else a new one
 * a little larger (rows and, when wide, columns to slice away) */
static int extra_param(gen *g, int nd, int d0, int d1, bool wide)
{
    fd_prog *p = g->p;
    if (fd_chance(g->b, 50) || p->nparams == FD_MAXP) {
        int start = fd_pick(g->b, p->nparams > 0 ? p->nparams : 1);
        for (int j = 0; j < p->nparams; j++) {
            const fd_param *q = &p->params[(start + j) % p->nparams];
            if (q->nd == nd && q->d[0] >= d0 &&
                (nd == 1 || (wide ? q->d[1] >= d1 : q->d[1] == d1)))
                return (start + j) % p->nparams;
        }
    }
    TG_ASSERT(p->nparams < FD_MAXP);
    fd_param *q = &p->params[p->nparams];
    snprintf(q->name, sizeof q->name, "p%u", (unsigned)p->nparams & 0xffu);
    q->nd = nd;
    q->d[0] = d0 + fd_pick(g->b, 3);
    q->d[1] = nd == 2 ? d1 + (wide ? fd_pick(g->b, 3) : 0) : 0;
    return p->nparams++;
}

int fd_slice(gen *g, int w, int dim, int start, int end, int step)
{
    fd_val o = *V(g, w);
    int n = o.d[dim];
    o.d[dim] = step == 1 ? end - start : (end - start + step - 1) / step;
    if (!(dim == 0 && step == 1) && o.d[dim] != n)
        o.contig = false;
    return fd_put(g, OP_SLICE, w, -1, -1, (int[4]){dim, start, end, step}, 0,
                  o);
}

int fd_chunk(gen *g, int w, int dim, int chunks, int at)
{
    fd_val o = *V(g, w);
    o.d[dim] /= chunks;
    if (dim != 0 && chunks > 1)
        o.contig = false;
    return fd_put(g, OP_CHUNK, w, -1, -1, (int[4]){dim, chunks, at}, 0, o);
}

/* w cut down to m along dim: a chunk, a slice, a slice of a slice, or
 * (strided allowed) every other index */
static int cut(gen *g, int w, int dim, int m, bool strided)
{
    bool twice = false;
    if (V(g, w)->d[dim] > m)
        g->p->features |= FD_F_SLICED_W;
    while (V(g, w)->d[dim] > m) {
        int P = V(g, w)->d[dim], c = fd_pick(g->b, 4);
        if (c == 0 && P % m == 0 && P / m <= MAXCHUNKS) {
            w = fd_chunk(g, w, dim, P / m, fd_pick(g->b, P / m));
        } else if (c == 1 && strided && m > 1 && P >= 2 * m - 1) {
            int r0 = fd_pick(g->b, P - (2 * m - 1) + 1);
            w = fd_slice(g, w, dim, r0, r0 + 2 * m - 1, 2);
        } else if (c == 2 && !twice && P - m >= 2) {
            int len = m + 1 + fd_pick(g->b, P - m - 1);
            int r0 = fd_pick(g->b, P - len + 1);
            w = fd_slice(g, w, dim, r0, r0 + len, 1);
            twice = true;
        } else {
            int r0 = fd_pick(g->b, P - m + 1);
            w = fd_slice(g, w, dim, r0, r0 + m, 1);
        }
    }
    return w;
}

/* A weight [m, n] made from parameters: weight_hh, its row blocks, its
 * columns, slices (of slices) of an extra parameter, a transposed one.
 * For tg_linear only contiguous layouts, unless bug c's switch is on:
 * strided weights there abort today. */
int fd_make_weight(gen *g, int m, int n, bool linear)
{
    const fd_prog *p = g->p;
    bool strided = !linear || bug(FD_BUG_C);
    int G = p->gates, H = p->H, c = fd_pick(g->b, 6), w;
    if (G > 0 && n == H && c == 0 &&
        (m == G * H || m == H || (strided && m < G * H))) {
        w = fd_param_val(g, -1);
        if (m == H && G > 1 && fd_chance(g->b, 50))
            return fd_chunk(g, w, 0, G, fd_pick(g->b, G));
        return cut(g, w, 0, m, strided);
    }
    if (G > 0 && strided && c == 1 && n < H && m <= G * H) {
        w = cut(g, fd_param_val(g, -1), 1, n, true); /* columns of weight_hh */
        return cut(g, w, 0, m, true);
    }
    if (strided && c == 2) { /* the transpose of an [n, m] slice */
        w = fd_param_val(g, extra_param(g, 2, n, m, true));
        w = cut(g, cut(g, w, 0, n, true), 1, m, true);
        fd_val o = *V(g, w);
        o.d[0] = m, o.d[1] = n;
        o.contig = false;
        return fd_put(g, OP_TRANSPOSE, w, -1, -1, (int[4]){0, 1}, 0, o);
    }
    w = fd_param_val(g, extra_param(g, 2, m, n, strided));
    if (fd_chance(g->b, 50))
        return cut(g, cut(g, w, 0, m, strided), 1, n, true);
    return cut(g, cut(g, w, 1, n, true), 0, m, strided);
}

/* a vector [m] made from parameters: bias_hh or a block of it, a row or a
 * column of an extra matrix, a slice of an extra vector */
int fd_make_vector(gen *g, int m)
{
    fd_prog *p = g->p;
    int G = p->gates, H = p->H, c = fd_pick(g->b, 4);
    if (G > 0 && c == 0 && (m == G * H || m == H)) {
        int b = fd_param_val(g, -2);
        if (m == H && G > 1 && fd_chance(g->b, 50))
            return fd_chunk(g, b, 0, G, fd_pick(g->b, G));
        return cut(g, b, 0, m, true);
    }
    if (c == 1) {
        for (int j = 0; j < p->nparams; j++) {
            const fd_param *q = &p->params[j];
            if (q->nd != 2 || (q->d[1] != m && q->d[0] != m))
                continue;
            int w = fd_param_val(g, j), dim = q->d[1] == m ? 0 : 1;
            int at = fd_pick(g->b, q->d[dim]);
            fd_val o = fd_mkval(1, &m, -g->pk, g->pk, dim == 0);
            return fd_put(g, OP_SELECT, w, -1, -1, (int[4]){dim, at}, 0, o);
        }
    }
    return cut(g, fd_param_val(g, extra_param(g, 1, m, 0, true)), 0, m, true);
}

/* ---- shapes ------------------------------------------------------------- */
void fd_gen_shape(gen *g)
{
    int c = fd_pick(g->b, 14), a, dim, n;
    fd_val o;
    switch (c) {
    case 0: /* transpose */
        if ((a = fd_choose(g, fd_p_nd, NULL, 2)) < 0)
            return;
        o = *V(g, a);
        dim = fd_pick(g->b, o.nd);
        n = (dim + 1 + fd_pick(g->b, o.nd - 1)) % o.nd;
        o.d[dim] = V(g, a)->d[n];
        o.d[n] = V(g, a)->d[dim];
        o.contig = false;
        fd_put(g, OP_TRANSPOSE, a, -1, -1, (int[4]){dim, n}, 0, o);
        return;
    case 1: /* slice: Python's rules, negative starts and ends past the end */
        if ((a = fd_choose(g, fd_p_sized, NULL, 1)) < 0)
            return;
        dim = fd_sized_axis(g, V(g, a), 1);
        n = V(g, a)->d[dim];
        {
            int start = fd_pick(g->b, n), len = 1 + fd_pick(g->b, n - start);
            int step = fd_chance(g->b, 25) ? 2 : 1, end = start + len;
            int s = fd_slice(g, a, dim, start, end, step);
            fd_ins *in = &g->p->ins[g->p->nins - 1];
            (void)s;
            if (fd_chance(g->b, 20))
                in->i[1] = start - n;
            if (end == n && fd_chance(g->b, 30))
                in->i[2] = n + 3;
        }
        return;
    case 2: /* chunk */
        if ((a = fd_choose(g, fd_p_sized, NULL, 2)) < 0)
            return;
        dim = fd_sized_axis(g, V(g, a), 2);
        n = V(g, a)->d[dim];
        for (int k = 2 + fd_pick(g->b, 3); k >= 2; k--)
            if (n % k == 0 && k <= MAXCHUNKS) {
                fd_chunk(g, a, dim, k, fd_pick(g->b, k));
                return;
            }
        fd_chunk(g, a, dim, 1, 0);
        return;
    case 3: /* split in two */
        if ((a = fd_choose(g, fd_p_sized, NULL, 2)) < 0)
            return;
        dim = fd_sized_axis(g, V(g, a), 2);
        n = V(g, a)->d[dim];
        {
            int s = 1 + fd_pick(g->b, n - 1), at = fd_pick(g->b, 2);
            o = *V(g, a);
            o.d[dim] = at ? n - s : s;
            if (dim != 0)
                o.contig = false;
            fd_put(g, OP_SPLIT, a, -1, -1, (int[4]){dim, s, at, n - s}, 0, o);
        }
        return;
    case 4: /* select, the batch's first or last row included */
        if ((a = fd_choose(g, fd_p_nd, NULL, 1)) < 0 ||
            (V(g, a)->nd == 1 && !bug(FD_BUG_E)))
            return;
        o = *V(g, a);
        dim = fd_pick(g->b, o.nd);
        n = o.d[dim];
        {
            int at = n == FD_B ? (fd_chance(g->b, 50) ? -1 : 0)
                               : fd_pick(g->b, 2 * n) - n;
            if (n == FD_B)
                g->p->features |= FD_F_BATCH_MIX;
            for (int k = dim; k < o.nd - 1; k++)
                o.d[k] = o.d[k + 1];
            o.nd--;
            o.contig = dim == 0 && V(g, a)->contig;
            fd_put(g, OP_SELECT, a, -1, -1, (int[4]){dim, at}, 0, o);
        }
        return;
    case 5: /* unsqueeze */
        if ((a = fd_choose(g, fd_p_ndmax, NULL, 2)) < 0)
            return;
        o = *V(g, a);
        dim = fd_pick(g->b, o.nd + 1);
        for (int k = o.nd; k > dim; k--)
            o.d[k] = o.d[k - 1];
        o.d[dim] = 1;
        o.nd++;
        fd_put(g, OP_UNSQUEEZE, a, -1, -1, (int[4]){dim}, 0, o);
        return;
    case 6: /* squeeze */
        if ((a = fd_choose(g, fd_p_sized, NULL, 1)) < 0)
            return;
        o = *V(g, a);
        for (dim = 0; dim < o.nd && o.d[dim] != 1; dim++)
            ;
        if (dim == o.nd || (o.nd == 1 && !bug(FD_BUG_E)))
            return;
        for (int k = dim; k < o.nd - 1; k++)
            o.d[k] = o.d[k + 1];
        o.nd--;
        fd_put(g, OP_SQUEEZE, a, -1, -1, (int[4]){dim}, 0, o);
        return;
    case 7: /* reshape: [B, ...] -> [B, p, q] / [B, n]; sizes refactored */
        a = fd_choose(g, NULL, NULL, 0);
        o = *V(g, a);
        {
            int lead = o.nd > 0 && o.d[0] == FD_B, N = 1;
            for (int k = lead; k < o.nd; k++) {
                if (o.d[k] == FD_B)
                    return; /* B elsewhere: not a reshape we can write */
                N *= o.d[k];
            }
            int divs[64], nd = 0;
            for (int k = 1; k <= N && nd < 64; k++)
                if (N % k == 0)
                    divs[nd++] = k;
            int q = divs[fd_pick(g->b, nd)];
            o.nd = 0;
            if (lead)
                o.d[o.nd++] = FD_B;
            if (fd_chance(g->b, 50) && o.nd < 2) {
                o.d[o.nd++] = q;
                o.d[o.nd++] = N / q;
            } else {
                o.d[o.nd++] = N;
            }
            o.contig = true;
            fd_put(g, OP_RESHAPE, a, -1, -1, NULL, 0, o);
        }
        return;
    case 8: /* expand: size-1 axes to B or a size, a new leading axis */
        if ((a = fd_choose(g, fd_p_ndmax, NULL, 3)) < 0)
            return;
        o = *V(g, a);
        {
            bool changed = false, b_used = fd_has_b(&o);
            for (int k = 0; k < o.nd; k++)
                if (o.d[k] == 1 && fd_chance(g->b, 70)) {
                    o.d[k] = !b_used && fd_chance(g->b, 50)
                                 ? FD_B
                                 : 2 + fd_pick(g->b, 3);
                    b_used |= o.d[k] == FD_B;
                    changed = true;
                }
            if (o.nd < 3 && (fd_chance(g->b, 50) || !changed)) {
                for (int k = o.nd; k > 0; k--)
                    o.d[k] = o.d[k - 1];
                o.d[0] = b_used ? 1 + fd_pick(g->b, 3) : FD_B;
                o.nd++;
                changed = true;
            }
            if (!changed || numel(&o) > NMAX)
                return;
            o.contig = false;
            fd_put(g, OP_EXPAND, a, -1, -1, NULL, 0, o);
        }
        return;
    case 9: /* permute */
        if ((a = fd_choose(g, fd_p_nd, NULL, 3)) < 0 || V(g, a)->nd != 3)
            return;
        {
            static const int perms[5][3] = {{0, 2, 1}, {1, 0, 2}, {1, 2, 0},
                                            {2, 0, 1}, {2, 1, 0}};
            const int *q = perms[fd_pick(g->b, 5)];
            o = *V(g, a);
            for (int k = 0; k < 3; k++)
                o.d[k] = V(g, a)->d[q[k]];
            o.contig = false;
            fd_put(g, OP_PERMUTE, a, -1, -1, (int[4]){q[0], q[1], q[2]}, 0, o);
        }
        return;
    case 10: /* contiguous */
        a = fd_choose(g, NULL, NULL, 0);
        o = *V(g, a);
        o.contig |= bug(FD_BUG_K); /* contiguous when traced; run, maybe not */
        fd_put(g, OP_CONTIG, a, -1, -1, NULL, 0, o);
        return;
    case 11: { /* concat along a sized axis */
        if ((a = fd_choose(g, fd_p_sized, NULL, 1)) < 0)
            return;
        dim = fd_sized_axis(g, V(g, a), 1);
        int b = fd_choose(g, fd_p_catable, V(g, a), dim);
        o = *V(g, a);
        o.d[dim] += V(g, b)->d[dim];
        o.lo = fmin(o.lo, V(g, b)->lo);
        o.hi = fmax(o.hi, V(g, b)->hi);
        o.contig = true;
        if (numel(&o) > NMAX)
            return;
        fd_put(g, OP_CONCAT, a, b, -1, (int[4]){dim}, 0, o);
        return;
    }
    case 12: { /* stack two or three */
        if ((a = fd_choose(g, fd_p_ndmax, NULL, 2)) < 0)
            return;
        int b = fd_choose(g, fd_p_same, V(g, a), 0),
            cc = fd_choose(g, fd_p_same, V(g, a), 0);
        int cnt = fd_chance(g->b, 40) ? 3 : 2;
        o = *V(g, a);
        dim = fd_pick(g->b, o.nd + 1);
        for (int k = o.nd; k > dim; k--)
            o.d[k] = o.d[k - 1];
        o.d[dim] = cnt;
        o.nd++;
        o.lo = fmin(o.lo, fmin(V(g, b)->lo, V(g, cc)->lo));
        o.hi = fmax(o.hi, fmax(V(g, b)->hi, V(g, cc)->hi));
        o.contig = true;
        if (numel(&o) > NMAX)
            return;
        fd_put(g, OP_STACK, a, b, cnt == 3 ? cc : a, (int[4]){dim, cnt}, 0, o);
        return;
    }
    default: { /* concat along axis 0 and chunk it back: [2B, ...] */
        if ((a = fd_choose(g, fd_p_nd, NULL, 1)) < 0)
            return;
        int b = fd_choose(g, fd_p_same, V(g, a), 0), at = fd_pick(g->b, 2);
        o = *V(g, at ? b : a);
        o.contig = true;
        fd_put(g, OP_CAT0CHUNK, a, b, -1, (int[4]){at}, 0, o);
        return;
    }
    }
}

/* ---- reductions, products, constants, captured state -------------------- */
void fd_gen_reduce(gen *g)
{
    int c = fd_pick(g->b, 5), a = fd_choose(g, fd_p_nd, NULL, 1);
    if (a < 0)
        return;
    fd_val o = *V(g, a);
    int size = 1;
    if (c >= 3) { /* over everything: a 0-d result */
        for (int k = 0; k < o.nd; k++)
            size *= dsize(o.d[k]);
        if (fd_has_b(&o))
            g->p->features |= FD_F_BATCH_MIX;
        if (c == 3 && (o.lo * size < -VMAX || o.hi * size > VMAX))
            c = 4;
        double lo = c == 3 ? fmin(o.lo, o.lo * size) : o.lo;
        double hi = c == 3 ? fmax(o.hi, o.hi * size) : o.hi;
        fd_put(g, c == 3 ? OP_SUM : OP_MEAN, a, -1, -1, NULL, 0,
            fd_mkval(0, o.d, lo, hi, true));
        return;
    }
    int dim = fd_pick(g->b, o.nd), keep = fd_pick(g->b, 2);
    size = dsize(o.d[dim]);
    if (o.d[dim] == FD_B)
        g->p->features |= FD_F_BATCH_MIX;
    if (c == 0 && (o.lo * size < -VMAX || o.hi * size > VMAX))
        c = 1;
    int op = c == 0 ? OP_SUMDIM : c == 1 ? OP_MEANDIM : OP_MAXDIM;
    if (op == OP_SUMDIM) {
        o.lo = fmin(o.lo, o.lo * size);
        o.hi = fmax(o.hi, o.hi * size);
    }
    if (keep) {
        o.d[dim] = 1;
    } else {
        for (int k = dim; k < o.nd - 1; k++)
            o.d[k] = o.d[k + 1];
        o.nd--;
    }
    o.contig = true;
    fd_put(g, op, a, -1, -1, (int[4]){dim, keep}, 0, o);
}

static int out_width(gen *g)
{
    static const int ms[] = {1, 2, 3, 5, 8};
    const fd_prog *p = g->p;
    int c = fd_pick(g->b, 20);
    if (c < 9)
        return p->H;
    if (c < 11 && p->gates > 0)
        return p->gates * p->H;
    return ms[fd_pick(g->b, 5)];
}

/* x W^T (+ b) with W made from parameters */
int fd_linear(gen *g, int x, int m)
{
    int n = V(g, x)->d[V(g, x)->nd - 1];
    if (n * mag(V(g, x)) * g->pk + g->pk > VMAX)
        x = fd_bounded(g, x, 1);
    int w = fd_make_weight(g, m, n, true);
    int b = fd_chance(g->b, 50) ? fd_make_vector(g, m) : -1;
    if (!V(g, w)->contig)
        g->p->features |= FD_F_COLSLICE_LINEAR;
    fd_val o = *V(g, x);
    o.d[o.nd - 1] = m;
    o.hi = n * mag(V(g, x)) * g->pk + (b >= 0 ? g->pk : 0);
    o.lo = -o.hi;
    o.contig = true;
    return fd_put(g, OP_LINEAR, x, w, b, NULL, 0, o);
}

static int matmul(gen *g, int a, int b)
{
    const fd_val *x = V(g, a), *y = V(g, b);
    fd_val o = *x;
    int K = dsize(x->d[x->nd - 1]);
    o.nd = x->nd > y->nd ? x->nd : y->nd;
    if (x->nd == 2 && y->nd == 2) {
        o.d[1] = y->d[1];
    } else {
        o.d[0] = x->nd == 3 ? x->d[0] : y->d[0];
        o.d[1] = x->d[x->nd - 2];
        o.d[2] = y->d[y->nd - 1];
    }
    o.hi = K * mag(x) * mag(y);
    o.lo = -o.hi;
    o.contig = true;
    return fd_put(g, OP_MATMUL, a, b, -1, NULL, 0, o);
}

void fd_gen_product(gen *g)
{
    int c = fd_pick(g->b, 10), x;
    if (c < 5) { /* linear */
        int m = out_width(g), n;
        if ((x = fd_choose(g, fd_p_rows, NULL, 0)) >= 0 &&
            (n = V(g, x)->d[V(g, x)->nd - 1], numel(V(g, x)) / n * m <= NMAX) &&
            (double)(n + 2) * (m + 2) <= NMAX) /* the weight too */
            fd_linear(g, x, m);
        return;
    }
    if (c < 8) { /* x @ a weight [K, N], or the transpose of one [N, K] */
        int N = out_width(g);
        if ((x = fd_choose(g, fd_p_rows, NULL, 0)) < 0 ||
            numel(V(g, x)) / V(g, x)->d[V(g, x)->nd - 1] * N > NMAX ||
            (double)(V(g, x)->d[V(g, x)->nd - 1] + 2) * (N + 2) > NMAX)
            return;
        x = fd_bounded(g, x, 10);
        int K = V(g, x)->d[V(g, x)->nd - 1], w;
        if (fd_chance(g->b, 50)) {
            w = fd_make_weight(g, N, K, false);
            fd_val o = *V(g, w);
            o.d[0] = K, o.d[1] = N;
            o.contig = false;
            w = fd_put(g, OP_TRANSPOSE, w, -1, -1, (int[4]){0, 1}, 0, o);
        } else {
            w = fd_make_weight(g, K, N, false);
        }
        matmul(g, x, w);
        return;
    }
    /* over the batch: x^T y [n, m], then z (x^T y) [B, m] */
    if ((x = fd_choose(g, fd_p_bn, NULL, 0)) < 0)
        return;
    int y = fd_choose(g, fd_p_bn, NULL, 0);
    if ((double)V(g, x)->d[1] * V(g, y)->d[1] > NMAX)
        return;
    y = fd_bounded(g, y, 2);
    x = fd_bounded(g, x, 2);
    fd_val o = *V(g, x);
    o.d[0] = o.d[1], o.d[1] = FD_B;
    o.contig = false;
    int t = fd_put(g, OP_TRANSPOSE, x, -1, -1, (int[4]){0, 1}, 0, o);
    int xy = matmul(g, t, y);
    g->p->features |= FD_F_BATCH_MIX;
    if (fd_chance(g->b, 70)) {
        int z = fd_bounded(g, fd_choose(g, fd_p_bn, NULL, V(g, x)->d[1]), 1);
        matmul(g, z, fd_bounded(g, xy, 1));
    }
}

void fd_gen_const(gen *g)
{
    if (fd_chance(g->b, 5)) { /* random numbers: the step is not compiled */
        int a = fd_choose(g, NULL, NULL, 0);
        const fd_val *v = V(g, a);
        fd_put(g, OP_DROPOUT, a, -1, -1, NULL, 0,
            fd_like(v, fmin(v->lo / 0.75, 0), fmax(v->hi / 0.75, 0)));
        return;
    }
    if (fd_chance(g->b, 30)) { /* arange(n) / n */
        int n = 1 + fd_pick(g->b, g->p->H + 2), d[1] = {n};
        int a = fd_put(g, OP_ARANGE, -1, -1, -1, (int[4]){n}, 0,
                    fd_mkval(1, d, 0, n - 1, true));
        fd_un(g, OP_MULK, a, 1.0 / n);
        return;
    }
    static const double ks[] = {1, 0.5, -1, 2, 0, -0.25};
    double k = ks[fd_pick(g->b, 6)];
    int n = fd_chance(g->b, 50) ? g->p->H : 1 + fd_pick(g->b, 8);
    int shapes[5][3] = {{FD_B, n}, {1, n}, {n}, {FD_B, 1}, {0}};
    int nds[5] = {2, 2, 1, 2, 0}, c = fd_pick(g->b, 5);
    fd_put(g, OP_FULL, -1, -1, -1, NULL, k,
           fd_mkval(nds[c], shapes[c], k, k, true));
}

/* the cell reads a scale and a mask [H] through c->user (bug b) */
void fd_gen_captured(gen *g)
{
    int a;
    if (fd_chance(g->b, 50) &&
        (a = fd_choose(g, fd_p_last, NULL, g->p->H)) >= 0)
        fd_un(g, OP_UMASK, a, 0);
    else
        fd_un(g, OP_USCALE, fd_choose(g, NULL, NULL, 0), 0);
    g->p->features |= FD_F_CAPTURED;
}
