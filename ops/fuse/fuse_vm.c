/*
 * ops/fuse/fuse_vm.c - the vector machine that runs fused groups, forward and
 * backward (ops/fuse.h says what groups are; ops/fuse/fuse_group.c compiles
 * them).
 *
 * A register is a block of at most BLK numbers; an instruction applies one
 * elementwise code to whole blocks (the codes, and each op's rules written
 * with them, are in ops/internal.h). A group runs tile by tile over its
 * iteration space; its backward recomputes what it must, reads what it
 * kept, and applies each member's derivative rule in reverse order.
 */
#include "ops/fuse/fuse_internal.h"
#include "ops/kernels/kernel_table.h"
#include "tensor/ds.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ==== 1. the vector machine ============================================
 * Registers are blocks of at most BLK numbers; an instruction applies one
 * code to whole blocks. A block of 256 floats is 1 KB, so the registers of
 * a whole LSTM step (about 20) stay in L1 while they are used. */

/* d (+)= code(a, b, c; k) over n numbers: one instruction, run by the
 * kernel level in use (ops/kernels/vm.c) */
static void vm_eval(int code, int n, tg_real *d, const tg_real *a,
                    const tg_real *b, const tg_real *c, tg_real k, bool acc)
{
    tg_kt()->vm(code, n, d, a, b, c, k, acc);
}

void tg_vm_eval(int code, int64_t n, tg_real *d, const tg_real *a,
                const tg_real *b, const tg_real *c, tg_real k, bool acc)
{
    for (int64_t i = 0; i < n; i += 1 << 20) {
        int m = (int)(n - i < (1 << 20) ? n - i : 1 << 20);
        vm_eval(code, m, d + i, a ? a + i : NULL, b ? b + i : NULL,
                c ? c + i : NULL, k, acc);
    }
}

/* ==== 2. a group ======================================================
 * A group computes its outputs, all of one shape S, element by element
 * from its external inputs. Its iteration space is S, walked in tiles: a
 * tile is up to BLK consecutive numbers of S's last axis in one "row"
 * (one index of the leading axes). Every external input is read through
 * an affine map from S: at offset off + sum_j i_j * st[j] of its numbers
 * (and, for its gradient, goff + sum_j i_j * gst[j] of its contiguous
 * gradient buffer). A chunk of a [B, 4H] tensor is such a map; so is a
 * bias broadcast over the batch (stride 0). */

/* tile t: the row's multi-index (all but the last axis), first column, n */
static int64_t tile_geom(const group *g, int64_t t, int64_t *idx, int *n)
{
    int64_t row = t / g->nchunk, c0 = (t % g->nchunk) * BLK;
    *n = (int)(g->inner - c0 < BLK ? g->inner - c0 : BLK);
    int64_t r = row;
    for (int d = g->ndim - 2; d >= 0; d--) {
        idx[d] = r % g->shape[d];
        r /= g->shape[d];
    }
    idx[g->ndim - 1] = c0;
    return row * g->inner + c0; /* the tile's offset in an output */
}

static int64_t dot(const int64_t *idx, const int64_t *st, int nd)
{
    int64_t s = 0;
    for (int d = 0; d < nd; d++)
        s += idx[d] * st[d];
    return s;
}

/* Per-tile working memory: register pointers and block buffers. */
typedef struct vm_mem {
    const tg_real **R; /* values                                    */
    tg_real **G;       /* gradients                                 */
    bool *zero, *own;  /* G[r] not yet set / points into gbuf       */
    tg_real *buf, *gbuf;
} vm_mem;

static size_t vm_mem_size(const group *g)
{
    size_t r = (size_t)g->nreg;
    return r * (sizeof(tg_real *) * 2 + 2) + 2 * r * BLK * sizeof(tg_real) +
           128;
}

static vm_mem vm_mem_at(const group *g, char *p)
{
    size_t r = (size_t)g->nreg;
    vm_mem m;
    m.buf = (tg_real *)p;             /* p is 64-byte aligned */
    m.gbuf = m.buf + r * BLK;
    m.R = (const tg_real **)(m.gbuf + r * BLK);
    m.G = (tg_real **)(m.R + r);
    m.zero = (bool *)(m.G + r);
    m.own = m.zero + r;
    return m;
}

/* Loads the tile's inputs: a pointer into the input where its numbers lie
 * one after the other, else gathered (or broadcast) into the register. */
static void tile_loads(const group *g, tg_tensor *const *ext,
                       const int64_t *idx, int n, vm_mem *m, bool backward)
{
    int nd = g->ndim;
    for (int64_t l = 0; l < arrlen(g->loads); l++) {
        const vm_load *ld = &g->loads[l];
        /* in backward, a kept load holds its instruction's output, and a
         * load nothing needs is not read at all */
        if (backward && ld->keep < 0 && !ld->needed)
            continue;
        const tg_real *p = ext[ld->ext]->data + ld->off + dot(idx, ld->st, nd);
        int64_t s = ld->st[nd - 1];
        int reg = backward && ld->keep >= 0 ? g->ins[ld->keep].dst : ld->reg;
        if (s == 1) {
            m->R[reg] = p;
            continue;
        }
        tg_real *r = m->buf + (size_t)reg * BLK;
        for (int i = 0; i < n; i++)
            r[i] = p[i * s];
        m->R[reg] = r;
    }
}

/* forward, at the end of a tile: the values backward will read stored
 * over the numbers of the loads that keep them (after every instruction,
 * since a load's register may point at those very numbers) */
static void keep_values(const group *g, tg_tensor *const *ext,
                        const int64_t *idx, int n, const vm_mem *m)
{
    int nd = g->ndim;
    for (int64_t l = 0; l < arrlen(g->loads); l++) {
        const vm_load *ld = &g->loads[l];
        if (ld->keep < 0)
            continue;
        tg_real *p = ext[ld->ext]->data + ld->off + dot(idx, ld->st, nd);
        int64_t s = ld->st[nd - 1];
        const tg_real *v = m->R[g->ins[ld->keep].dst];
        for (int i = 0; i < n; i++)
            p[i * s] = v[i];
    }
}

/* Forward of one tile. With outs_done (backward's recomputation), the
 * outputs already hold their numbers: their registers point there, and
 * only the instructions whose values backward needs and that nothing kept
 * are run again. */
static void tile_forward(const group *g, tg_tensor *const *ext,
                         tg_tensor *const *outs, int64_t t, vm_mem *m,
                         bool outs_done, int64_t *idx, int *np)
{
    int n;
    int64_t o = tile_geom(g, t, idx, &n);
    *np = n;
    for (int64_t i = 0; i < arrlen(g->ins); i++)
        m->R[g->ins[i].dst] = m->buf + (size_t)g->ins[i].dst * BLK;
    tile_loads(g, ext, idx, n, m, outs_done);
    for (int64_t k = 0; k < arrlen(g->out_reg); k++)
        if (g->out_direct[k] || outs_done)
            m->R[g->out_reg[k]] = outs[k]->data + o;
    for (int64_t i = 0; i < arrlen(g->ins); i++) {
        const vm_ins *in = &g->ins[i];
        if (outs_done && !in->recompute)
            continue; /* an output, kept, or not needed by backward */
        vm_eval(in->code, n, (tg_real *)m->R[in->dst], m->R[in->src[0]],
                m->R[in->src[1]], m->R[in->src[2]], in->k, false);
    }
    if (outs_done)
        return;
    for (int64_t k = 0; k < arrlen(g->out_reg); k++)
        if (!g->out_direct[k])
            memcpy(outs[k]->data + o, m->R[g->out_reg[k]],
                   (size_t)n * sizeof(tg_real));
    keep_values(g, ext, idx, n, m);
}

/* G[r] becomes writable: a borrowed gradient is copied into r's buffer */
static void own_grad(vm_mem *m, int r, int n)
{
    if (m->own[r])
        return;
    tg_real *b = m->gbuf + (size_t)r * BLK;
    memcpy(b, m->G[r], (size_t)n * sizeof(tg_real));
    m->G[r] = b;
    m->own[r] = true;
}

/* G[r] += src (or takes src over, borrowed, when G[r] is still zero) */
static void add_grad(vm_mem *m, int r, tg_real *src, int n)
{
    if (m->zero[r]) {
        m->G[r] = src;
        m->zero[r] = false;
        m->own[r] = false;
        return;
    }
    own_grad(m, r, n);
    for (int i = 0; i < n; i++)
        m->G[r][i] += src[i];
}

/* An output whose whole gradient tg_retain_grad asks for: one that
 * requires grad. One that does not (it depends on no input that does:
 * ops/fuse/fuse_vm.c, unmark_constant_outputs) gets none, as unfused,
 * even where the group's registers carry numbers back through it. */
static bool retained(const tg_tensor *y)
{
    return (y->flags & TG_RETAIN_GRAD) && (y->flags & TG_REQUIRES_GRAD);
}

/* Backward of one tile: recompute, then every member's derivative rule in
 * reverse order, then add the inputs' gradients where they belong.
 * scratch: of the loads, then of the taps; retain: some output's gradient
 * is retained (see fused_bwd). */
static void tile_backward(const group *g, tg_tensor *const *ext,
                          tg_tensor *const *outs, int64_t t, vm_mem *m,
                          tg_real *const *scratch, bool retain)
{
    int64_t idx[TG_MAX_DIMS];
    int n;
    tile_forward(g, ext, outs, t, m, true, idx, &n);
    int64_t o = tile_geom(g, t, idx, &n);
    for (int r = 0; r < g->nreg; r++) {
        m->zero[r] = true;
        m->own[r] = false;
    }
    /* dL/d(outputs): the consumers' gradients (none: zero) */
    for (int64_t k = 0; k < arrlen(g->out_reg); k++)
        if (outs[k]->grad)
            add_grad(m, g->out_reg[k], outs[k]->grad + o, n);
    for (int64_t i = arrlen(g->ins) - 1; i >= 0; i--) {
        const vm_ins *in = &g->ins[i];
        if (m->zero[in->dst])
            continue;
        for (int a = 0; a < in->rule->nin; a++) {
            const tg_ew_deriv *d = &in->rule->d[a];
            int s = in->src[a];
            const tg_real *v[3];
            for (int q = 0; q < 3; q++) {
                int from = d->src[q];
                v[q] = from == TG_R_G   ? m->G[in->dst]
                       : from == TG_R_A ? m->R[in->src[0]]
                       : from == TG_R_B ? m->R[in->src[1]]
                                        : m->R[in->dst];
            }
            if (d->code == TG_VM_COPY && d->src[0] == TG_R_G) {
                add_grad(m, s, m->G[in->dst], n);
                continue;
            }
            bool acc = !m->zero[s];
            if (acc) {
                own_grad(m, s, n);
            } else {
                m->G[s] = m->gbuf + (size_t)s * BLK;
                m->own[s] = true;
                m->zero[s] = false;
            }
            vm_eval(d->code, n, m->G[s], v[0], v[1], v[2], in->k, acc);
        }
    }
    int nd = g->ndim;
    for (int64_t l = 0; l < arrlen(g->loads); l++) {
        const vm_load *ld = &g->loads[l];
        tg_real *dx = ext[ld->ext]->grad;
        if (!dx || m->zero[ld->reg])
            continue;
        const tg_real *gr = m->G[ld->reg];
        if (ld->scratch) {
            tg_real *sc = scratch[l] + o;
            for (int i = 0; i < n; i++)
                sc[i] += gr[i];
            continue;
        }
        tg_real *p = dx + ld->goff + dot(idx, ld->gst, nd);
        int64_t s = ld->gst[nd - 1];
        for (int i = 0; i < n; i++)
            p[i * s] += gr[i];
    }
    if (!retain)
        return;
    /* a retained output's register now holds its gradient: what its
     * consumers outside the group gave plus what the members that read it
     * here added (written last: every rule above may read its buffer);
     * reads at other maps go through the taps' scratch */
    for (int64_t k = 0; k < arrlen(g->out_reg); k++) {
        tg_tensor *y = outs[k];
        int r = g->out_reg[k];
        if (retained(y) && y->grad && !m->zero[r] && m->G[r] != y->grad + o)
            memcpy(y->grad + o, m->G[r], (size_t)n * sizeof(tg_real));
    }
    for (int64_t j = 0; j < arrlen(g->taps); j++) {
        tg_real *sc = scratch[arrlen(g->loads) + j];
        int r = g->taps[j].reg;
        if (!sc || m->zero[r])
            continue;
        for (int i = 0; i < n; i++)
            sc[o + i] += m->G[r][i];
    }
}

/* Tiles in parallel when the group is large; each tile writes only its own
 * part of every output and (through one-to-one maps) of every gradient, so
 * the numbers do not depend on the thread count. */
static int nthreads_for(const group *g)
{
#ifdef _OPENMP
    if (g->numel * (int64_t)(arrlen(g->ins) + 1) >= TG_PAR_MIN &&
        g->ntiles > 1 && !omp_in_parallel())
        return omp_get_max_threads();
#endif
    (void)g;
    return 1;
}

static char *thread_mem(const group *g, int nth)
{
    size_t per = (vm_mem_size(g) + 63) & ~(size_t)63;
    return tg_arena_alloc(per * (size_t)nth);
}

static void group_forward(const group *g, tg_tensor *const *ext,
                          tg_tensor *const *outs)
{
    int nth = nthreads_for(g);
    size_t per = (vm_mem_size(g) + 63) & ~(size_t)63;
    char *mem = thread_mem(g, nth);
    if (nth == 1) {
        vm_mem m = vm_mem_at(g, mem);
        int64_t idx[TG_MAX_DIMS];
        int n;
        for (int64_t t = 0; t < g->ntiles; t++)
            tile_forward(g, ext, outs, t, &m, false, idx, &n);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nth)
    {
        vm_mem m = vm_mem_at(g, mem + per * (size_t)omp_get_thread_num());
        int64_t idx[TG_MAX_DIMS];
        int n;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < g->ntiles; t++) /* tile t of every output */
            tile_forward(g, ext, outs, t, &m, false, idx, &n);
    }
#else
    (void)per;
#endif
}

/* src, a full-size buffer over the group's iteration space, added into
 * dx at goff + idx . gst, row by row in index order (one thread: a fixed
 * order, and several rows may add into the same numbers - a bias
 * broadcast over the batch) */
static void add_rows(const group *g, tg_real *dx, int64_t goff,
                     const int64_t *gst, const tg_real *src)
{
    int nd = g->ndim;
    int64_t idx[TG_MAX_DIMS] = {0}, s = gst[nd - 1];
    for (int64_t row = 0; row < g->numel / g->inner; row++) {
        tg_real *d = dx + goff + dot(idx, gst, nd - 1);
        const tg_real *sr = src + row * g->inner;
        if (s == 1)
            for (int64_t i = 0; i < g->inner; i++)
                d[i] += sr[i];
        else
            for (int64_t i = 0; i < g->inner; i++)
                d[i * s] += sr[i];
        for (int d2 = nd - 2; d2 >= 0; d2--) {
            if (++idx[d2] < g->shape[d2])
                break;
            idx[d2] = 0;
        }
    }
}

/* tg_retain_grad on an output of a group (rare: to read dL/dh_t) asks
 * for its whole gradient, as unfused: what consumers outside the group
 * give - in outs[k]->grad when this entry runs - and what members of the
 * group that read the output add, which exists only in the tiles'
 * registers: tile_backward writes it back, and adds reads at other maps
 * (the taps) into scratch[nloads + j]. An output only members read has no
 * gradient buffer yet: it gets one if a gradient reaches it (unfused, the
 * member's backward would make it). true if any output is retained; the
 * common case costs one look at each output's flags. */
static bool retained_outputs(const group *g, tg_tensor *const *outs,
                             tg_real **scratch)
{
    int64_t nout = arrlen(g->out_reg), nl = arrlen(g->loads);
    bool any = false;
    for (int64_t k = 0; k < nout; k++)
        any |= retained(outs[k]);
    if (!any)
        return false;
    /* reach[r]: some output's gradient flows back into register r */
    bool *reach = tg_arena_calloc((size_t)(g->nreg ? g->nreg : 1));
    for (int64_t k = 0; k < nout; k++)
        reach[g->out_reg[k]] |= outs[k]->grad != NULL;
    for (int64_t i = arrlen(g->ins) - 1; i >= 0; i--)
        for (int a = 0; reach[g->ins[i].dst] && a < g->ins[i].rule->nin; a++)
            reach[g->ins[i].src[a]] = true;
    for (int64_t k = 0; k < nout; k++) {
        tg_tensor *y = outs[k];
        bool reached = reach[g->out_reg[k]];
        for (int64_t j = 0; j < arrlen(g->taps); j++)
            reached |= g->taps[j].out == k && reach[g->taps[j].reg];
        if (retained(y) && !y->grad && reached)
            y->grad = tg_arena_calloc((size_t)(y->numel ? y->numel : 1) *
                                      sizeof(tg_real));
    }
    for (int64_t j = 0; j < arrlen(g->taps); j++) {
        const tg_tensor *y = outs[g->taps[j].out];
        if (retained(y) && y->grad)
            scratch[nl + j] = tg_scratch_zero(g->numel);
    }
    return true;
}

/* The backward rule of every fused group. */
static void fused_bwd(tg_entry *e)
{
    const group *g = e->saved;
    tg_fuse_count_group(g, TG_FUSE_BWD);
    tg_tensor *const *ext = e->in;
    /* scratch gradients of the loads that need them (zeroed), then of
     * the taps of retained outputs */
    int64_t nl = arrlen(g->loads), ntap = arrlen(g->taps);
    tg_real **scratch = tg_arena_calloc(sizeof(tg_real *) *
                                        (size_t)(nl + ntap + 1));
    for (int64_t l = 0; l < nl; l++)
        scratch[l] = g->loads[l].scratch && ext[g->loads[l].ext]->grad
                         ? tg_scratch_zero(g->numel)
                         : NULL;
    bool retain = retained_outputs(g, e->outs, scratch);
    int nth = nthreads_for(g);
    size_t per = (vm_mem_size(g) + 63) & ~(size_t)63;
    char *mem = thread_mem(g, nth);
    if (nth == 1) {
        vm_mem m = vm_mem_at(g, mem);
        for (int64_t t = 0; t < g->ntiles; t++)
            tile_backward(g, ext, e->outs, t, &m, scratch, retain);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nth)
        {
            vm_mem m = vm_mem_at(g, mem + per * (size_t)omp_get_thread_num());
#pragma omp for schedule(static)
            for (int64_t t = 0; t < g->ntiles; t++) /* tile t's gradients */
                tile_backward(g, ext, e->outs, t, &m, scratch, retain);
        }
#else
        (void)per;
#endif
    }
    /* scratch gradients summed into their inputs (and retained outputs) */
    for (int64_t l = 0; l < nl; l++)
        if (scratch[l])
            add_rows(g, ext[g->loads[l].ext]->grad, g->loads[l].goff,
                     g->loads[l].gst, scratch[l]);
    for (int64_t j = 0; j < ntap; j++)
        if (scratch[nl + j])
            add_rows(g, e->outs[g->taps[j].out]->grad, g->taps[j].goff,
                     g->taps[j].gst, scratch[nl + j]);
}

static void fused_label(const tg_entry *e, char *buf, size_t cap)
{
    const group *g = e->saved;
    snprintf(buf, cap, "%s", g->label);
}

/* Forward mode through a group: each tile is recomputed as backward
 * recomputes it (the values the members' derivative rules read), then the
 * tangents run forward through the instructions - each member's rule with
 * g := the tangent of its input, as in ops/jvp.c - from the inputs'
 * tangents (read through the loads' gradient maps) to the outputs'. */
static void fused_jvp(tg_entry *e)
{
    if (tg_jvp_records()) {
        tg_error("jvp", "a compiled cell step has no recorded forward-mode "
                 "rule (tg_jvp_create_graph): record the model with fusion "
                 "off (tg_set_fusion(false), or TG_FUSE=0)");
        return;
    }
    const group *g = e->saved;
    tg_fuse_count_group(g, TG_FUSE_JVP);
    tg_tensor *const *ext = e->in;
    int nout = (int)arrlen(g->out_reg), nd = g->ndim;
    for (int k = 0; k < nout; k++) {
        size_t bytes = (size_t)(g->numel ? g->numel : 1) * sizeof(tg_real);
        e->outs[k]->tangent = tg_arena_alloc(bytes);
        memset(e->outs[k]->tangent, 0, bytes);
    }
    vm_mem m = vm_mem_at(g, thread_mem(g, 1));
    tg_real *T = tg_arena_alloc((size_t)g->nreg * BLK * sizeof(tg_real));
    bool *has = tg_arena_alloc((size_t)(g->nreg ? g->nreg : 1));
    for (int64_t t = 0; t < g->ntiles; t++) {
        int64_t idx[TG_MAX_DIMS];
        int n;
        tile_forward(g, ext, e->outs, t, &m, true, idx, &n);
        int64_t o = tile_geom(g, t, idx, &n);
        memset(has, 0, (size_t)g->nreg);
        for (int64_t l = 0; l < arrlen(g->loads); l++) {
            const vm_load *ld = &g->loads[l];
            const tg_real *dx = ext[ld->ext]->tangent;
            if (!dx)
                continue;
            const tg_real *p = dx + ld->goff + dot(idx, ld->gst, nd);
            int64_t s = ld->gst[nd - 1];
            tg_real *r = T + (size_t)ld->reg * BLK;
            for (int i = 0; i < n; i++)
                r[i] = p[i * s];
            has[ld->reg] = true;
        }
        for (int64_t i = 0; i < arrlen(g->ins); i++) {
            const vm_ins *in = &g->ins[i];
            tg_real *dy = T + (size_t)in->dst * BLK;
            bool any = false;
            for (int a = 0; a < in->rule->nin; a++) {
                int src = in->src[a];
                if (!has[src])
                    continue;
                const tg_ew_deriv *d = &in->rule->d[a];
                const tg_real *v[3];
                for (int q = 0; q < 3; q++) {
                    int from = d->src[q];
                    v[q] = from == TG_R_G   ? T + (size_t)src * BLK
                           : from == TG_R_A ? m.R[in->src[0]]
                           : from == TG_R_B ? m.R[in->src[1]]
                                            : m.R[in->dst];
                }
                if (!any)
                    memset(dy, 0, (size_t)n * sizeof(tg_real));
                vm_eval(d->code, n, dy, v[0], v[1], v[2], in->k, true);
                any = true;
            }
            has[in->dst] = any;
        }
        for (int k = 0; k < nout; k++)
            if (has[g->out_reg[k]])
                memcpy(e->outs[k]->tangent + o, T + (size_t)g->out_reg[k] * BLK,
                       (size_t)n * sizeof(tg_real));
    }
}

/* the ops the group runs, for the explorer (autograd/explore.h) */
static const char *fused_member(const tg_entry *e, int i)
{
    const group *g = e->saved;
    return i >= 0 && i < arrlen(g->member_op) ? g->member_op[i] : NULL;
}

static const tg_op fused_op = {"fused", fused_bwd, .jvp = fused_jvp,
                               .label = fused_label, .member = fused_member};

/* The entry marks every output as requiring grad once any input does; the
 * member ops run one by one mark only those computed from such an input.
 * So each output keeps the mark only if its register depends, through the
 * instructions, on a load of an input that requires grad (as written, a
 * backward from the others is refused; fused, it would run). The entry
 * stays: its backward reads no gradient of an unmarked output (none is
 * ever made), and passes nothing through it. */
static void unmark_constant_outputs(const group *g, tg_tensor *const *ext,
                                    tg_tensor **outs)
{
    bool *dep = tg_arena_alloc((size_t)(g->nreg ? g->nreg : 1));
    memset(dep, 0, (size_t)g->nreg);
    for (int64_t l = 0; l < arrlen(g->loads); l++)
        if (ext[g->loads[l].ext]->flags & TG_REQUIRES_GRAD)
            dep[g->loads[l].reg] = true;
    for (int64_t i = 0; i < arrlen(g->ins); i++) { /* in trace order */
        const vm_ins *in = &g->ins[i];
        for (int a = 0; a < in->rule->nin; a++)
            dep[in->dst] |= dep[in->src[a]];
    }
    for (int64_t k = 0; k < arrlen(g->out_reg); k++)
        if (!dep[g->out_reg[k]])
            outs[k]->flags &= ~TG_REQUIRES_GRAD;
}

/* Runs group g on ext; returns its outputs (arena), recorded as one entry
 * when any input requires grad. */
void tg_fuse_group_run(const group *g, tg_tensor *const *ext, tg_tensor **outs)
{
    int nout = (int)arrlen(g->out_reg);
    for (int k = 0; k < nout; k++)
        outs[k] = tg_new_out(g->out_ndim, g->shape);
    group_forward(g, ext, outs);
    tg_fuse_count_group(g, TG_FUSE_FWD);
    tg_entry *e = tg_record_multi(&fused_op, nout, outs, g->n_ext, ext);
    if (!e)
        return;
    e->saved = (void *)g;
    if (outs[0]->flags & TG_REQUIRES_GRAD)
        unmark_constant_outputs(g, ext, outs);
}

void tg_fuse_group_free(group *g)
{
    if (!g)
        return;
    arrfree(g->loads);
    arrfree(g->ins);
    arrfree(g->out_reg);
    free(g->out_direct);
    arrfree(g->ext_val);
    arrfree(g->out_val);
    arrfree(g->members);
    arrfree(g->member_op);
    arrfree(g->taps);
    free(g->label);
    free(g);
}

