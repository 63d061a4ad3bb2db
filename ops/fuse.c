/*
 * ops/fuse.c - tracing a recurrent step, compiling it into a program of
 * fused groups and replayed ops, and the vector machine that runs the
 * groups forward and backward. ops/fuse.h says what and why; this file
 * says how, in four parts:
 *
 *   1. the vector machine: one instruction = one elementwise code over a
 *      block of at most BLK numbers (the codes and the rules that use them
 *      are in ops/internal.h);
 *   2. a group: its instructions, how it runs forward over blocks, and its
 *      backward rule, which recomputes the block and walks the
 *      instructions in reverse applying each member's derivative rule;
 *   3. compiling: the trace becomes values and nodes, nodes become groups
 *      and replays, groups become instructions;
 *   4. running a program, step after step.
 *
 * Not here: the ops themselves (their rules are data in their
 * descriptors) and the sequence layer that calls this (nn/rnn.c).
 */
#include "ops/fuse.h"
#include "ops/internal.h"
#include "ops/vmath.h"
#include "tensor/ds.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int fusion = -1; /* -1: TG_FUSE not read yet */

bool tg_fusion_enabled(void)
{
    if (fusion < 0) {
        const char *v = getenv("TG_FUSE");
        fusion = !(v && !strcmp(v, "0"));
    }
    return fusion;
}

bool tg_set_fusion(bool on)
{
    bool old = tg_fusion_enabled();
    fusion = on;
    return old;
}

/* ==== 1. the vector machine ============================================
 * Registers are blocks of at most BLK numbers; an instruction applies one
 * code to whole blocks. A block of 256 floats is 1 KB, so the registers of
 * a whole LSTM step (about 20) stay in L1 while they are used. */
#define BLK 256

/* d[i] = expr, or d[i] += expr with acc, for i < n */
#define VM_LOOP(expr)                                                      \
    do {                                                                   \
        if (acc)                                                           \
            for (int i = 0; i < n; i++)                                    \
                d[i] += (expr);                                            \
        else                                                               \
            for (int i = 0; i < n; i++)                                    \
                d[i] = (expr);                                             \
    } while (0)

/* d (+)= code(a, b, c; k) over n numbers. The expressions are those of the
 * ops' own kernels (ops/elementwise.c, ops/unary.c), so a fused forward
 * gives the unfused numbers bit for bit. */
static void vm_eval(int code, int n, tg_real *restrict d, const tg_real *a,
                    const tg_real *b, const tg_real *c, tg_real k, bool acc)
{
    const tg_real one = 1;
    switch (code) {
    case TG_VM_COPY: VM_LOOP(a[i]); break;
    case TG_VM_ADD: VM_LOOP(a[i] + b[i]); break;
    case TG_VM_SUB: VM_LOOP(a[i] - b[i]); break;
    case TG_VM_MUL: VM_LOOP(a[i] * b[i]); break;
    case TG_VM_DIV: VM_LOOP(a[i] / b[i]); break;
    case TG_VM_POW: VM_LOOP(rpow(a[i], b[i])); break;
    case TG_VM_NEG: VM_LOOP(-a[i]); break;
    case TG_VM_ADDK: VM_LOOP(a[i] + k); break;
    case TG_VM_MULK: VM_LOOP(a[i] * k); break;
    case TG_VM_POWK: VM_LOOP(rpow(a[i], k)); break;
    case TG_VM_EXP: VM_LOOP(rexp(a[i])); break;
    case TG_VM_LOG: VM_LOOP(rlog(a[i])); break;
    case TG_VM_TANH: VM_LOOP(tg_vtanh(a[i])); break;
    case TG_VM_SIGMOID: VM_LOOP(tg_vsigmoid(a[i])); break;
    case TG_VM_RELU: VM_LOOP((a[i] > 0 || a[i] != a[i]) ? a[i] : 0); break;
    case TG_VM_SQRT: VM_LOOP(rsqrt(a[i])); break;
    case TG_VM_STEP:
        VM_LOOP(a[i] > 0 ? one : (a[i] != a[i] ? a[i] : 0));
        break;
    case TG_VM_DTANH: VM_LOOP(a[i] * (one - b[i] * b[i])); break;
    case TG_VM_DSIGMOID: VM_LOOP(a[i] * b[i] * (one - b[i])); break;
    case TG_VM_DRELU: VM_LOOP(b[i] > 0 ? a[i] : 0); break;
    case TG_VM_DSQRT: VM_LOOP(a[i] * (tg_real)0.5 / b[i]); break;
    case TG_VM_DSTEP:
        VM_LOOP(a[i] * tg_vsigmoid(b[i]) * (one - tg_vsigmoid(b[i])));
        break;
    case TG_VM_DDIVB: VM_LOOP(-a[i] * b[i] / c[i]); break;
    case TG_VM_DPOWA:
        VM_LOOP(c[i] == 0 ? 0 : a[i] * c[i] * rpow(b[i], c[i] - 1));
        break;
    case TG_VM_DPOWB: VM_LOOP(b[i] == 0 ? 0 : a[i] * b[i] * rlog(c[i])); break;
    case TG_VM_DPOWK: VM_LOOP(k == 0 ? 0 : a[i] * k * rpow(b[i], k - 1)); break;
    default: TG_ASSERT(!"unknown vector machine code");
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

typedef struct vm_load {
    int ext;                           /* which external input            */
    int64_t off, st[TG_MAX_DIMS];      /* its numbers                     */
    int64_t goff, gst[TG_MAX_DIMS];    /* its gradient buffer             */
    bool scratch;  /* gradient through a full-size buffer, summed after:
                      the map is not one-to-one (a broadcast), or another
                      load of the same input might touch the same number */
    int reg;
    int64_t lo[TG_MAX_DIMS], hi[TG_MAX_DIMS]; /* index range per axis of
                                                 the input              */
    int keep;      /* instruction whose output is stored over this load's
                      numbers for backward (see plan_backward), or -1   */
    bool needed;   /* backward reads this load's own numbers            */
} vm_load;

typedef struct vm_ins {
    unsigned char code;
    int dst, src[3];
    tg_real k;
    const tg_ew_rule *rule; /* the member op's rule, for backward */
    int kept;               /* its output is kept by this load, or -1 */
    bool recompute;         /* backward recomputes it (see plan_backward) */
} vm_ins;

typedef struct group {
    int ndim;                  /* of S (at least 1: a scalar is [1])      */
    int64_t shape[TG_MAX_DIMS];
    int64_t numel, inner, nchunk, ntiles;
    int nreg;
    vm_load *loads;            /* stb_ds arrays */
    vm_ins *ins;
    int *out_reg;              /* register of each output                */
    bool *out_direct;          /* that register is computed into the
                                  output's numbers (not copied there)    */
    int *ext_val, *out_val;    /* program values (part 3)                */
    int *members;              /* member nodes, in trace order           */
    char *label;               /* "fused[add sigmoid ...]"               */
    int next;                  /* number of external inputs              */
} group;

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
static void tile_loads(const group *g, tg_tensor *const *ext, const int64_t *idx,
                       int n, vm_mem *m, bool backward)
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

/* Backward of one tile: recompute, then every member's derivative rule in
 * reverse order, then add the inputs' gradients where they belong. */
static void tile_backward(const group *g, tg_tensor *const *ext,
                          tg_tensor *const *outs, int64_t t, vm_mem *m,
                          tg_real *const *scratch)
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

/* The backward rule of every fused group. */
static void fused_bwd(tg_entry *e)
{
    const group *g = e->saved;
    tg_tensor *const *ext = e->in;
    /* scratch gradients of the loads that need them (zeroed) */
    tg_real **scratch = tg_arena_alloc(sizeof(tg_real *) *
                                       (size_t)(arrlen(g->loads) + 1));
    for (int64_t l = 0; l < arrlen(g->loads); l++)
        scratch[l] = g->loads[l].scratch && ext[g->loads[l].ext]->grad
                         ? tg_scratch_zero(g->numel)
                         : NULL;
    int nth = nthreads_for(g);
    size_t per = (vm_mem_size(g) + 63) & ~(size_t)63;
    char *mem = thread_mem(g, nth);
    if (nth == 1) {
        vm_mem m = vm_mem_at(g, mem);
        for (int64_t t = 0; t < g->ntiles; t++)
            tile_backward(g, ext, e->outs, t, &m, scratch);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nth)
        {
            vm_mem m = vm_mem_at(g, mem + per * (size_t)omp_get_thread_num());
#pragma omp for schedule(static)
            for (int64_t t = 0; t < g->ntiles; t++) /* tile t's gradients */
                tile_backward(g, ext, e->outs, t, &m, scratch);
        }
#else
        (void)per;
#endif
    }
    /* scratch gradients summed into their inputs, row by row in index
     * order (one thread: a fixed order, and several rows may add into
     * the same numbers - a bias broadcast over the batch) */
    int nd = g->ndim;
    for (int64_t l = 0; l < arrlen(g->loads); l++) {
        if (!scratch[l])
            continue;
        const vm_load *ld = &g->loads[l];
        tg_real *dx = ext[ld->ext]->grad;
        int64_t idx[TG_MAX_DIMS] = {0}, s = ld->gst[nd - 1];
        for (int64_t row = 0; row < g->numel / g->inner; row++) {
            tg_real *d = dx + ld->goff + dot(idx, ld->gst, nd - 1);
            const tg_real *src = scratch[l] + row * g->inner;
            if (s == 1)
                for (int64_t i = 0; i < g->inner; i++)
                    d[i] += src[i];
            else
                for (int64_t i = 0; i < g->inner; i++)
                    d[i * s] += src[i];
            for (int d2 = nd - 2; d2 >= 0; d2--) {
                if (++idx[d2] < g->shape[d2])
                    break;
                idx[d2] = 0;
            }
        }
    }
}

static void fused_label(const tg_entry *e, char *buf, size_t cap)
{
    const group *g = e->saved;
    snprintf(buf, cap, "%s", g->label);
}

static const tg_op fused_op = {"fused", fused_bwd, .label = fused_label};

/* Runs group g on ext; returns its outputs (arena), recorded as one entry
 * when any input requires grad. */
static void group_run(const group *g, tg_tensor *const *ext, tg_tensor **outs)
{
    int nout = (int)arrlen(g->out_reg);
    for (int k = 0; k < nout; k++)
        outs[k] = tg_new_out(g->ndim, g->shape);
    group_forward(g, ext, outs);
    tg_entry *e = tg_record_multi(&fused_op, nout, outs, g->next, ext);
    if (e)
        e->saved = (void *)g;
}

/* ==== 3. compiling =====================================================
 * Values are the tensors of the trace: step inputs, leaves (parameters by
 * pointer, constants made in the step copied into the program) and node
 * outputs. Nodes are the traced entries, with their arguments, kept for
 * replay and for their elementwise rules. */

enum { PV_INPUT, PV_LEAF, PV_NODE };

typedef struct pval {
    int kind, index;     /* input slot or node                             */
    tg_tensor *leaf;     /* PV_LEAF                                        */
    bool own_leaf;       /* the program's copy of a constant               */
    tg_tensor layout;    /* shape and strides seen in the trace            */
    bool invariant;      /* does not depend on the step's inputs           */
    int group;           /* member of this group, or -1                    */
    bool is_output;      /* needed outside its group                       */
    bool accessor;       /* a view only groups read: never made, followed  */
} pval;

typedef struct pnode {
    tg_entry e;          /* op and arguments; in/out: traced headers       */
    int *in;             /* values (stb_ds)                                */
    int out;
    int acc;             /* replay_into this value's numbers, or -1        */
    bool dead;           /* rewritten away                                 */
} pnode;

enum { I_REPLAY, I_GROUP };
typedef struct pins {
    int kind, index; /* node or group */
} pins;

struct tg_prog {
    bool ok;
    char why[256];
    int nin, nout;
    unsigned donate;     /* inputs whose numbers the program may overwrite */
    pval *vals;          /* stb_ds arrays */
    pnode *nodes;
    group **groups;
    pins *pre, *body;    /* preamble (once per sequence) and step          */
    int *out_val;        /* value of each step output                      */
    tg_tensor **env;     /* current tensor of each value                   */
};

typedef struct ptr_map {
    const tg_tensor *key;
    int value;
} ptr_map;

static bool is_contiguous_layout(const tg_tensor *t);

static int new_val(tg_prog *p, int kind, int index, const tg_tensor *t)
{
    pval v;
    memset(&v, 0, sizeof v);
    v.kind = kind;
    v.index = index;
    v.layout = *t;
    v.group = -1;
    arrput(p->vals, v);
    return (int)arrlen(p->vals) - 1;
}

static bool same_layout(const tg_tensor *a, const tg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d] ||
            (a->shape[d] > 1 && a->stride[d] != b->stride[d]))
            return false;
    return true;
}

static void fail(tg_prog *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(tg_prog *p, const char *fmt, ...)
{
    if (!p->ok)
        return;
    p->ok = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

/* ---- maps: S index -> value index ------------------------------------
 * idx_v[d] = o[d] + sum_j A[d][j] * i_S[j] */
typedef struct vmap {
    int64_t o[TG_MAX_DIMS];
    int64_t A[TG_MAX_DIMS][TG_MAX_DIMS];
} vmap;

typedef struct memo {
    int val;
    vmap m;
    int reg;
} memo;

typedef struct cg {
    tg_prog *p;
    group *g;
    int gid;
    memo *memo;          /* stb_ds */
    bool failed;
} cg;

static int ext_slot(cg *c, int v)
{
    for (int k = 0; k < c->g->next; k++)
        if (c->g->ext_val[k] == v)
            return k;
    arrput(c->g->ext_val, v);
    return c->g->next++;
}

/* the index range a map covers along value axis d */
static void map_range(const group *g, const vmap *m, int d, int64_t *lo,
                      int64_t *hi)
{
    *lo = *hi = m->o[d];
    for (int j = 0; j < g->ndim; j++) {
        int64_t x = m->A[d][j] * (g->shape[j] - 1);
        if (x < 0)
            *lo += x;
        else
            *hi += x;
    }
}

static bool map_one_to_one(const group *g, const vmap *m, int nd)
{
    for (int j = 0; j < g->ndim; j++) {
        if (g->shape[j] == 1)
            continue;
        int hits = 0;
        for (int d = 0; d < nd; d++)
            hits += m->A[d][j] != 0;
        if (hits != 1)
            return false;
    }
    for (int d = 0; d < nd; d++) {
        int hits = 0;
        for (int j = 0; j < g->ndim; j++)
            hits += m->A[d][j] != 0 && g->shape[j] > 1;
        if (hits > 1)
            return false;
    }
    return true;
}

static int new_reg(cg *c) { return c->g->nreg++; }

static int emit_load(cg *c, int v, const vmap *m)
{
    const pval *pv = &c->p->vals[v];
    const tg_tensor *t = &pv->layout;
    vm_load ld;
    memset(&ld, 0, sizeof ld);
    ld.ext = ext_slot(c, v);
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(t->ndim, t->shape, cs);
    for (int d = 0; d < t->ndim; d++) {
        ld.off += m->o[d] * t->stride[d];
        ld.goff += m->o[d] * cs[d];
        for (int j = 0; j < c->g->ndim; j++) {
            ld.st[j] += m->A[d][j] * t->stride[d];
            ld.gst[j] += m->A[d][j] * cs[d];
        }
    }
    ld.scratch = !map_one_to_one(c->g, m, t->ndim);
    for (int d = 0; d < t->ndim; d++)
        map_range(c->g, m, d, &ld.lo[d], &ld.hi[d]);
    ld.reg = new_reg(c);
    ld.keep = -1;
    arrput(c->g->loads, ld);
    return ld.reg;
}

/* the map of an operand broadcast into its consumer's shape */
static vmap bcast_map(const vmap *m, const tg_tensor *to, const tg_tensor *u)
{
    vmap r;
    memset(&r, 0, sizeof r);
    int shift = to->ndim - u->ndim;
    for (int d = 0; d < u->ndim; d++) {
        if (u->shape[d] == 1)
            continue;
        r.o[d] = m->o[d + shift];
        memcpy(r.A[d], m->A[d + shift], sizeof r.A[d]);
    }
    return r;
}

/* The map into a view's input, from the view's gradient view (iarg: offset
 * and strides into a contiguous copy of the input; ops/shape.c). false if
 * those strides do not each fall on one axis of the input. */
static bool view_map(const group *g, const pnode *n, const tg_tensor *u,
                     const vmap *m, vmap *r)
{
    memset(r, 0, sizeof *r);
    const tg_tensor *w = n->e.out;
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(u->ndim, u->shape, cs);
    int64_t off = n->e.iarg[0];
    for (int d = 0; d < u->ndim; d++) {
        r->o[d] = u->shape[d] > 1 ? off / cs[d] : 0;
        off -= r->o[d] * cs[d];
    }
    if (off != 0)
        return false;
    for (int k = 0; k < w->ndim; k++) {
        int64_t gs = n->e.iarg[1 + k];
        if (w->shape[k] == 1 || gs == 0)
            continue;
        int d = 0;
        while (d < u->ndim && !(u->shape[d] > 1 && gs % cs[d] == 0 &&
                                gs / cs[d] < u->shape[d]))
            d++;
        if (d == u->ndim)
            return false;
        int64_t f = gs / cs[d];
        r->o[d] += f * m->o[k];
        for (int j = 0; j < g->ndim; j++)
            r->A[d][j] += f * m->A[k][j];
    }
    for (int d = 0; d < u->ndim; d++) {
        int64_t lo, hi;
        map_range(g, r, d, &lo, &hi);
        if (lo < 0 || hi >= u->shape[d])
            return false;
    }
    return true;
}

/* The register holding value v at map m: a load for a value from outside
 * the group, an instruction for a member op, a re-indexing for a view. */
static int inst(cg *c, int v, const vmap *m)
{
    for (int64_t i = 0; i < arrlen(c->memo); i++)
        if (c->memo[i].val == v && !memcmp(&c->memo[i].m, m, sizeof *m))
            return c->memo[i].reg;
    tg_prog *p = c->p;
    const pval *pv = &p->vals[v];
    int reg;
    if (pv->accessor) { /* read through: the view's input at the map */
        const pnode *n = &p->nodes[pv->index];
        vmap mu;
        if (!view_map(c->g, n, &p->vals[n->in[0]].layout, m, &mu)) {
            c->failed = true;
            return 0;
        }
        reg = inst(c, n->in[0], &mu);
        if (c->failed)
            return 0;
    } else if (pv->group != c->gid) {
        reg = emit_load(c, v, m);
    } else {
        const pnode *n = &p->nodes[pv->index];
        if (n->e.op->ew) {
            const tg_ew_rule *rule = n->e.op->ew;
            int src[3] = {0, 0, 0};
            for (int k = 0; k < rule->nin; k++) {
                vmap mu = bcast_map(m, &pv->layout, &p->vals[n->in[k]].layout);
                src[k] = inst(c, n->in[k], &mu);
            }
            if (c->failed)
                return 0;
            vm_ins in;
            memset(&in, 0, sizeof in);
            in.code = rule->code;
            memcpy(in.src, src, sizeof src);
            in.k = (tg_real)n->e.farg[0];
            in.rule = rule;
            in.kept = -1;
            in.dst = reg = new_reg(c);
            arrput(c->g->ins, in);
        } else {
            vmap mu;
            if (!view_map(c->g, n, &p->vals[n->in[0]].layout, m, &mu)) {
                c->failed = true;
                return 0;
            }
            reg = inst(c, n->in[0], &mu);
            if (c->failed)
                return 0;
        }
    }
    memo me = {v, *m, reg};
    arrput(c->memo, me);
    return reg;
}

static void group_free(group *g)
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
    free(g->label);
    free(g);
}

static bool writable_view(const tg_prog *p, int v, int gid);

/* true if value v's numbers may be overwritten by group gid: they were
 * given away (a donated input, or a product accumulated into one) and
 * nothing but this group's members reads them, directly or through views
 * the group reads through */
static bool writable(const tg_prog *p, int v, int gid)
{
    const pval *pv = &p->vals[v];
    bool donated = (pv->kind == PV_INPUT && (p->donate & (1u << pv->index))) ||
                   (pv->kind == PV_NODE && p->nodes[pv->index].acc >= 0);
    if (!donated)
        return false;
    for (int k = 0; k < p->nout; k++)
        if (p->out_val[k] == v)
            return false;
    for (int64_t i = 0; i < arrlen(p->nodes); i++) {
        const pnode *n = &p->nodes[i];
        if (n->dead)
            continue;
        for (int64_t k = 0; k < arrlen(n->in); k++) {
            if (n->in[k] != v)
                continue;
            const pval *o = &p->vals[n->out];
            if (o->accessor ? !writable_view(p, n->out, gid)
                            : !(n->e.op->ew && o->group == gid))
                return false;
        }
    }
    return true;
}

/* an accessor view all of whose readers are members of group gid */
static bool writable_view(const tg_prog *p, int v, int gid)
{
    for (int64_t i = 0; i < arrlen(p->nodes); i++) {
        const pnode *n = &p->nodes[i];
        if (n->dead)
            continue;
        for (int64_t k = 0; k < arrlen(n->in); k++)
            if (n->in[k] == v && !(n->e.op->ew && p->vals[n->out].group == gid))
                return false;
    }
    return true;
}

static bool is_out_reg(const group *g, int r)
{
    for (int64_t k = 0; k < arrlen(g->out_reg); k++)
        if (g->out_reg[k] == r)
            return true;
    return false;
}

/* need[r]: backward reads register r - a value some derivative rule uses
 * (a, b or y), or one needed to recompute such a value. Outputs are in
 * memory and kept values in their loads: neither is recomputed. */
static void need_closure(const group *g, bool *need)
{
    int nreg = g->nreg, *stack = NULL;
    int *made_by = tg_xmalloc((size_t)(nreg ? nreg : 1) * sizeof *made_by);
    for (int r = 0; r < nreg; r++) {
        need[r] = false;
        made_by[r] = -1;
    }
    for (int64_t i = 0; i < arrlen(g->ins); i++) {
        const vm_ins *in = &g->ins[i];
        made_by[in->dst] = (int)i;
        for (int a = 0; a < in->rule->nin; a++)
            for (int q = 0; q < 3; q++) {
                int from = in->rule->d[a].src[q];
                if (from == TG_R_A)
                    arrput(stack, in->src[0]);
                else if (from == TG_R_B)
                    arrput(stack, in->src[1]);
                else if (from == TG_R_Y)
                    arrput(stack, in->dst);
            }
    }
    while (arrlen(stack) > 0) {
        int r = arrpop(stack);
        if (need[r])
            continue;
        need[r] = true;
        int j = made_by[r];
        if (j < 0 || is_out_reg(g, r) || g->ins[j].kept >= 0)
            continue;
        for (int k = 0; k < g->ins[j].rule->nin; k++)
            arrput(stack, g->ins[j].src[k]);
    }
    arrfree(stack);
    free(made_by);
}

static bool expensive(int code)
{
    return code == TG_VM_EXP || code == TG_VM_LOG || code == TG_VM_TANH ||
           code == TG_VM_SIGMOID || code == TG_VM_SQRT || code == TG_VM_POW ||
           code == TG_VM_POWK;
}

/* What backward recomputes, and what it finds in memory. A group's
 * outputs are stored anyway. Beyond them, an expensive value backward
 * needs (an LSTM's or a GRU's gates: sigmoid' and tanh' are functions of
 * their outputs) is stored over the numbers of a load that backward no
 * longer needs once that value is kept - a slice of the pre-activation
 * the layer gave away - so backward reads it instead of recomputing it,
 * without a byte more memory. Everything else backward needs is
 * recomputed block by block: the cheap sums and products, and what found
 * no free load. Greedy, in instruction order. */
static void plan_backward(tg_prog *p, int gid)
{
    group *g = p->groups[gid];
    int64_t nl = arrlen(g->loads);
    bool *need = tg_xcalloc((size_t)(g->nreg ? g->nreg : 1), sizeof *need);
    bool *ok_slot = tg_xcalloc((size_t)(nl ? nl : 1), sizeof *ok_slot);
    for (int64_t l = 0; l < nl; l++)
        ok_slot[l] = !g->loads[l].scratch && !is_out_reg(g, g->loads[l].reg) &&
                     writable(p, g->ext_val[g->loads[l].ext], gid);
    for (int64_t i = 0; i < arrlen(g->ins); i++) {
        vm_ins *in = &g->ins[i];
        if (!expensive(in->code) || is_out_reg(g, in->dst))
            continue;
        need_closure(g, need);
        if (!need[in->dst])
            continue;
        in->kept = 0; /* try: which loads are free once it is kept? */
        need_closure(g, need);
        in->kept = -1;
        for (int64_t l = 0; l < nl; l++)
            if (ok_slot[l] && g->loads[l].keep < 0 && !need[g->loads[l].reg]) {
                in->kept = (int)l;
                g->loads[l].keep = (int)i;
                break;
            }
    }
    need_closure(g, need);
    for (int64_t i = 0; i < arrlen(g->ins); i++) {
        vm_ins *in = &g->ins[i];
        in->recompute = need[in->dst] && in->kept < 0 && !is_out_reg(g, in->dst);
    }
    for (int64_t l = 0; l < nl; l++)
        g->loads[l].needed = need[g->loads[l].reg];
    free(need);
    free(ok_slot);
}

/* Instructions for group gid (outputs and members already known). false
 * if the outputs differ in shape or a view cannot be followed. */
static bool codegen(tg_prog *p, int gid)
{
    group *g = p->groups[gid];
    if (arrlen(g->out_val) == 0)
        return true; /* nothing of it is used */
    const tg_tensor *s = &p->vals[g->out_val[0]].layout;
    for (int64_t k = 1; k < arrlen(g->out_val); k++)
        if (!tg_same_shape(s, &p->vals[g->out_val[k]].layout))
            return false;
    g->ndim = s->ndim ? s->ndim : 1;
    g->shape[0] = 1;
    memcpy(g->shape, s->shape, sizeof(int64_t) * (size_t)s->ndim);
    g->numel = 1;
    for (int d = 0; d < g->ndim; d++)
        g->numel *= g->shape[d];
    g->inner = g->shape[g->ndim - 1];
    g->nchunk = g->inner ? (g->inner + BLK - 1) / BLK : 0;
    g->ntiles = g->inner ? g->numel / g->inner * g->nchunk : 0;
    cg c = {p, g, gid, NULL, false};
    vmap id;
    memset(&id, 0, sizeof id);
    for (int d = 0; d < s->ndim; d++)
        id.A[d][d] = 1;
    int64_t nout = arrlen(g->out_val);
    g->out_direct = tg_xcalloc((size_t)nout, sizeof(bool));
    for (int64_t k = 0; k < nout && !c.failed; k++) {
        int r = inst(&c, g->out_val[k], &id);
        arrput(g->out_reg, r);
    }
    arrfree(c.memo);
    if (c.failed)
        return false;
    /* an output register that an instruction computes, and no earlier
     * output uses, is computed straight into the output's numbers */
    for (int64_t k = 0; k < nout; k++) {
        bool computed = false, taken = false;
        for (int64_t i = 0; i < arrlen(g->ins); i++)
            computed |= g->ins[i].dst == g->out_reg[k];
        for (int64_t j = 0; j < k; j++)
            taken |= g->out_reg[j] == g->out_reg[k];
        g->out_direct[k] = computed && !taken;
    }
    /* Loads of one input whose index ranges meet on every axis go through
     * scratch, so that no two tiles ever add into the same gradient
     * number. The chunks of an LSTM's pre-activation are apart along the
     * gate axis. */
    for (int64_t a = 0; a < arrlen(g->loads); a++)
        for (int64_t b = a + 1; b < arrlen(g->loads); b++) {
            vm_load *la = &g->loads[a], *lb = &g->loads[b];
            if (la->ext != lb->ext)
                continue;
            int nd = p->vals[g->ext_val[la->ext]].layout.ndim;
            bool apart = false;
            for (int d = 0; d < nd; d++)
                apart |= la->hi[d] < lb->lo[d] || lb->hi[d] < la->lo[d];
            if (!apart)
                la->scratch = lb->scratch = true;
        }
    plan_backward(p, gid);
    /* the label: fused[op op ...] */
    char buf[1024];
    size_t len = (size_t)snprintf(buf, sizeof buf, "fused[");
    for (int64_t i = 0; i < arrlen(g->members) && len < sizeof buf; i++) {
        const pnode *n = &p->nodes[g->members[i]];
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
                                i ? " " : "", n->e.op->name);
    }
    if (len < sizeof buf)
        snprintf(buf + len, sizeof buf - len, "]");
    g->label = strdup(buf);
    return true;
}

/* Splits nodes into groups and replays, in trace order (see fuse.h). */
static void schedule(tg_prog *p, const int *list, int nlist, pins **code)
{
    int cur = -1;
    for (int i = 0; i < nlist; i++) {
        int ni = list[i];
        pnode *n = &p->nodes[ni];
        bool ew = n->e.op->ew != NULL;
        bool view = (n->e.op->flags & TG_OP_VIEW) &&
                    p->vals[n->in[0]].group == cur && cur >= 0;
        if (ew || view) {
            if (cur < 0) {
                group *g = tg_xcalloc(1, sizeof *g);
                arrput(p->groups, g);
                cur = (int)arrlen(p->groups) - 1;
            }
            arrput(p->groups[cur]->members, ni);
            p->vals[n->out].group = cur;
            continue;
        }
        bool uses_cur = false;
        for (int64_t k = 0; k < arrlen(n->in); k++)
            uses_cur |= cur >= 0 && p->vals[n->in[k]].group == cur;
        if (uses_cur) {
            pins g = {I_GROUP, cur};
            arrput(*code, g);
            cur = -1;
        }
        pins r = {I_REPLAY, ni};
        arrput(*code, r);
    }
    if (cur >= 0) {
        pins g = {I_GROUP, cur};
        arrput(*code, g);
    }
}

/* A group that cannot be compiled as one runs as single ops: every
 * elementwise member its own group, every view a replay. */
static void split_group(tg_prog *p, pins **code, int64_t at)
{
    int gid = (*code)[at].index;
    group *g = p->groups[gid];
    pins *repl = NULL;
    for (int64_t i = 0; i < arrlen(g->members); i++) {
        int ni = g->members[i];
        pnode *n = &p->nodes[ni];
        if (!n->e.op->ew) {
            p->vals[n->out].group = -1;
            pins r = {I_REPLAY, ni};
            arrput(repl, r);
            continue;
        }
        group *s = tg_xcalloc(1, sizeof *s);
        arrput(s->members, ni);
        arrput(s->out_val, n->out);
        arrput(p->groups, s);
        int sid = (int)arrlen(p->groups) - 1;
        p->vals[n->out].group = sid;
        pins r = {I_GROUP, sid};
        arrput(repl, r);
    }
    /* replace the instruction by the sequence */
    int64_t nr = arrlen(repl), len = arrlen(*code);
    pins *out = NULL;
    for (int64_t i = 0; i < at; i++)
        arrput(out, (*code)[i]);
    for (int64_t i = 0; i < nr; i++)
        arrput(out, repl[i]);
    for (int64_t i = at + 1; i < len; i++)
        arrput(out, (*code)[i]);
    arrfree(*code);
    arrfree(repl);
    *code = out;
    arrsetlen(g->members, 0);
    arrsetlen(g->out_val, 0);
}

/* Which values leave their group: used by a node of another group or a
 * replay, or a step output. */
static void mark_outputs(tg_prog *p)
{
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        p->vals[i].is_output = false;
    for (int64_t ni = 0; ni < arrlen(p->nodes); ni++) {
        const pnode *n = &p->nodes[ni];
        if (n->dead)
            continue;
        int gn = p->vals[n->out].group;
        for (int64_t k = 0; k < arrlen(n->in); k++) {
            pval *v = &p->vals[n->in[k]];
            if (v->group >= 0 && v->group != gn)
                v->is_output = true;
        }
    }
    for (int k = 0; k < p->nout; k++)
        if (p->vals[p->out_val[k]].group >= 0)
            p->vals[p->out_val[k]].is_output = true;
    for (int64_t gi = 0; gi < arrlen(p->groups); gi++)
        arrsetlen(p->groups[gi]->out_val, 0);
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        if (p->vals[i].group >= 0 && p->vals[i].is_output)
            arrput(p->groups[p->vals[i].group]->out_val, (int)i);
}

/* The layout each value will have when the program runs: a group's
 * outputs are new contiguous tensors even where the traced value was a
 * strided view (a chunk), and views replayed on them follow. The rule is
 * the one view replays apply (ops/shape.c): on an input laid out as
 * traced, the traced layout; on a contiguous one, the gradient view. */
static void contiguous_layout(tg_tensor *t)
{
    tg_contiguous_strides(t->ndim, t->shape, t->stride);
}

static bool is_contiguous_layout(const tg_tensor *t)
{
    tg_tensor c = *t;
    contiguous_layout(&c);
    return same_layout(&c, t);
}

static void replay_layouts(tg_prog *p, const pins *code)
{
    for (int64_t i = 0; i < arrlen(code); i++) {
        if (code[i].kind != I_REPLAY)
            continue;
        pnode *n = &p->nodes[code[i].index];
        tg_tensor *y = &p->vals[n->out].layout;
        if (!(n->e.op->flags & TG_OP_VIEW)) {
            contiguous_layout(y);
            continue;
        }
        const tg_tensor *x = &p->vals[n->in[0]].layout;
        if (same_layout(x, n->e.in[0])) {
            memcpy(y->stride, n->e.out->stride, sizeof y->stride);
        } else if (is_contiguous_layout(x)) {
            memcpy(y->stride, &n->e.iarg[1], sizeof(int64_t) * (size_t)y->ndim);
        } else {
            fail(p, "a view ('%s') of a fused group's output cannot be "
                    "replayed", n->e.op->name);
        }
    }
}

static void runtime_layouts(tg_prog *p)
{
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        if (p->vals[i].group >= 0 && p->vals[i].is_output)
            contiguous_layout(&p->vals[i].layout);
    replay_layouts(p, p->pre);
    replay_layouts(p, p->body);
}

/* A replayed view whose every consumer is an elementwise op of a group
 * need not be made at all: the groups read its input through the view's
 * map (a GRU's chunks of x W_ih^T and h W_hh^T). Only views whose map
 * holds for any index of their output qualify (checked with the identity
 * map: then it holds for every map into the view). */
static void find_accessors(tg_prog *p, pins **code)
{
    int64_t nv = arrlen(p->vals);
    bool *bad = tg_xcalloc((size_t)nv, sizeof *bad); /* used otherwise */
    for (int64_t ni = 0; ni < arrlen(p->nodes); ni++) {
        const pnode *n = &p->nodes[ni];
        if (n->dead)
            continue;
        bool ew_member = n->e.op->ew && p->vals[n->out].group >= 0;
        for (int64_t k = 0; k < arrlen(n->in); k++)
            if (!ew_member)
                bad[n->in[k]] = true;
    }
    for (int k = 0; k < p->nout; k++)
        bad[p->out_val[k]] = true;
    pins *kept = NULL;
    for (int64_t i = 0; i < arrlen(*code); i++) {
        pins in = (*code)[i];
        if (in.kind == I_REPLAY) {
            const pnode *n = &p->nodes[in.index];
            pval *v = &p->vals[n->out];
            if ((n->e.op->flags & TG_OP_VIEW) && !bad[n->out]) {
                group probe;
                memset(&probe, 0, sizeof probe);
                probe.ndim = v->layout.ndim;
                memcpy(probe.shape, v->layout.shape, sizeof probe.shape);
                vmap id, mu;
                memset(&id, 0, sizeof id);
                for (int d = 0; d < v->layout.ndim; d++)
                    id.A[d][d] = 1;
                if (v->layout.ndim > 0 &&
                    view_map(&probe, n, &p->vals[n->in[0]].layout, &id, &mu)) {
                    v->accessor = true;
                    continue;
                }
            }
        }
        arrput(kept, in);
    }
    arrfree(*code);
    *code = kept;
    free(bad);
}

static void compile_code(tg_prog *p, pins **code)
{
    for (int64_t i = 0; i < arrlen(*code); i++) {
        if ((*code)[i].kind != I_GROUP)
            continue;
        int gid = (*code)[i].index;
        if (codegen(p, gid))
            continue;
        /* run as single ops instead; the loop goes on with them */
        split_group(p, code, i);
        mark_outputs(p);
        runtime_layouts(p);
        i--;
    }
}

/* A weight that stays the same over the steps (a parameter, a chunk of
 * one) is prepared once per sequence (tg_prepare_weight): the linear ops
 * of the step then use it packed, and its gradient is one product. */
static void prepare_weights(tg_prog *p)
{
    int64_t nn = arrlen(p->nodes), nv = arrlen(p->vals);
    int *made = tg_xmalloc((size_t)(nv ? nv : 1) * sizeof *made);
    for (int64_t v = 0; v < nv; v++)
        made[v] = -1; /* weight value -> its prepared value */
    for (int64_t i = 0; i < nn; i++) {
        pnode *n = &p->nodes[i];
        if (!(n->e.op->flags & TG_OP_WEIGHT1) || p->vals[n->out].invariant ||
            !p->vals[n->in[1]].invariant || p->vals[n->in[1]].layout.ndim != 2)
            continue;
        int w = n->in[1], prep = made[w];
        if (prep < 0) {
            pnode q;
            memset(&q, 0, sizeof q);
            q.e.op = &tg_prepare_op;
            q.e.nin = 1;
            q.e.in = tg_xcalloc(1, sizeof *q.e.in);
            q.e.in[0] = tg_xmalloc(sizeof *q.e.in[0]);
            *q.e.in[0] = p->vals[w].layout;
            q.e.out = tg_xmalloc(sizeof *q.e.out);
            *q.e.out = p->vals[w].layout;
            q.e.step = -1;
            q.acc = -1;
            arrput(q.in, w);
            q.out = prep = new_val(p, PV_NODE, (int)arrlen(p->nodes),
                                   &p->vals[w].layout);
            p->vals[prep].invariant = true;
            arrput(p->nodes, q);
            n = &p->nodes[i]; /* the array may have moved */
            made[w] = prep;
        }
        n->in[1] = prep;
    }
    free(made);
}

/* add(u, linear(x, W, b)) where u is an input whose numbers the caller
 * gave away (a layer's slice of its input projection) and neither u nor
 * the product is used again: the product is added into u's numbers
 * (tg_linear_into) - no new [B, G*H] buffer per step, and one pass less. */
static void accumulate_into(tg_prog *p)
{
    int64_t nv = arrlen(p->vals);
    int *uses = tg_xcalloc((size_t)nv, sizeof *uses);
    for (int64_t i = 0; i < arrlen(p->nodes); i++)
        for (int64_t k = 0; k < arrlen(p->nodes[i].in); k++)
            uses[p->nodes[i].in[k]]++;
    for (int k = 0; k < p->nout; k++)
        uses[p->out_val[k]]++;
    for (int64_t i = 0; i < arrlen(p->nodes); i++) {
        pnode *n = &p->nodes[i];
        if (!n->e.op->ew || n->e.op->ew->code != TG_VM_ADD)
            continue;
        for (int a = 0; a < 2; a++) {
            int u = n->in[a], v = n->in[1 - a];
            const pval *pu = &p->vals[u], *pv = &p->vals[v];
            if (pu->kind != PV_INPUT || !(p->donate & (1u << pu->index)) ||
                pv->kind != PV_NODE || uses[u] != 1 || uses[v] != 1 ||
                !p->nodes[pv->index].e.op->replay_into ||
                !tg_same_shape(&pu->layout, &p->vals[n->out].layout) ||
                !tg_same_shape(&pv->layout, &p->vals[n->out].layout) ||
                !is_contiguous_layout(&pu->layout))
                continue;
            /* the product's node accumulates into u; whatever used the
             * sum now uses the product's value */
            pnode *m = &p->nodes[pv->index];
            m->acc = u;
            p->vals[v].layout = pu->layout;
            int from = n->out;
            n->dead = true;
            for (int64_t j = 0; j < arrlen(p->nodes); j++)
                for (int64_t k = 0; k < arrlen(p->nodes[j].in); k++)
                    if (p->nodes[j].in[k] == from)
                        p->nodes[j].in[k] = v;
            for (int k = 0; k < p->nout; k++)
                if (p->out_val[k] == from)
                    p->out_val[k] = v;
            uses[u] = uses[v] = 2; /* taken */
            break;
        }
    }
    free(uses);
}

static bool build(tg_prog *p, int64_t first, tg_tensor *const *in,
                  tg_tensor **out)
{
    ptr_map *map = NULL;
    for (int k = 0; k < p->nin; k++)
        hmput(map, in[k], new_val(p, PV_INPUT, k, in[k]));
    int64_t end = tg_tape_size();
    for (int64_t i = first; i < end && p->ok; i++) {
        const tg_entry *e = tg_tape_entry(i);
        if (e->nout != 1) {
            fail(p, "a step op has several outputs (%s)", e->op->name);
            break;
        }
        if (!e->op->ew && !e->op->replay) {
            fail(p, "op '%s' cannot be replayed (it draws random numbers or "
                    "reads data outside its inputs)", e->op->name);
            break;
        }
        pnode n;
        memset(&n, 0, sizeof n);
        n.e = *e;
        /* private copies of the traced headers: replay reads layouts */
        n.e.in = tg_xcalloc((size_t)(e->nin ? e->nin : 1), sizeof *n.e.in);
        n.e.out = tg_xmalloc(sizeof *n.e.out);
        *n.e.out = *e->out;
        n.e.outs = NULL;
        n.e.saved = NULL;
        bool invariant = true;
        for (int k = 0; k < e->nin; k++) {
            tg_tensor *t = e->in[k];
            n.e.in[k] = tg_xmalloc(sizeof *t);
            *n.e.in[k] = *t;
            ptrdiff_t at = hmgeti(map, t);
            int v;
            if (at >= 0) {
                v = map[at].value;
            } else {
                if (!(t->flags & TG_PERSISTENT) &&
                    (t->entry >= 0 || (t->flags & TG_REQUIRES_GRAD))) {
                    fail(p, "op '%s' reads a tensor computed outside the step "
                            "that is not one of its inputs", e->op->name);
                    break;
                }
                v = new_val(p, PV_LEAF, -1, t);
                pval *pv = &p->vals[v];
                if (t->flags & TG_PERSISTENT) {
                    pv->leaf = t;
                } else { /* a constant made in (or before) the step */
                    pv->leaf = tg_tensor_new(t->ndim, t->shape);
                    tg_copy_(pv->leaf, t);
                    pv->own_leaf = true;
                    pv->layout = *pv->leaf;
                }
                pv->invariant = true;
                hmput(map, t, v);
            }
            arrput(n.in, v);
            invariant &= p->vals[v].invariant;
        }
        n.acc = -1;
        n.out = new_val(p, PV_NODE, (int)arrlen(p->nodes), e->out);
        p->vals[n.out].invariant = invariant;
        hmput(map, e->out, n.out);
        arrput(p->nodes, n);
    }
    for (int k = 0; k < p->nout && p->ok; k++) {
        ptrdiff_t at = hmgeti(map, out[k]);
        if (at < 0) {
            fail(p, "%s", "a step output is not computed from the step's "
                          "inputs or parameters");
            break;
        }
        arrput(p->out_val, map[at].value);
    }
    hmfree(map);
    if (!p->ok)
        return false;
    prepare_weights(p);
    accumulate_into(p);
    /* preamble: the invariant nodes; body: the rest */
    int *pre = NULL, *body = NULL;
    for (int64_t i = 0; i < arrlen(p->nodes); i++) {
        if (p->nodes[i].dead)
            continue;
        if (p->vals[p->nodes[i].out].invariant)
            arrput(pre, (int)i);
        else
            arrput(body, (int)i);
    }
    schedule(p, pre, (int)arrlen(pre), &p->pre);
    schedule(p, body, (int)arrlen(body), &p->body);
    arrfree(pre);
    arrfree(body);
    mark_outputs(p);
    find_accessors(p, &p->pre);
    find_accessors(p, &p->body);
    mark_outputs(p);
    runtime_layouts(p);
    compile_code(p, &p->pre);
    compile_code(p, &p->body);
    p->env = tg_xcalloc((size_t)arrlen(p->vals), sizeof *p->env);
    return true;
}

tg_prog *tg_prog_trace(tg_step_fn step, void *ctx, int nin,
                       tg_tensor *const *in, int nout, tg_tensor **out,
                       unsigned donate)
{
    tg_prog *p = tg_xcalloc(1, sizeof *p);
    p->ok = true;
    p->donate = donate;
    p->nin = nin;
    p->nout = nout;
    tg_tape_mark mark = tg_tape_mark_get();
    int64_t first = tg_tape_trace_begin();
    step(ctx, in, out);
    bool ran = true;
    for (int k = 0; k < nout; k++)
        ran &= out[k] != NULL;
    if (ran)
        build(p, first, in, out);
    tg_tape_trace_end(first, true);
    if (!ran) {
        tg_prog_free(p);
        return NULL;
    }
    if (p->ok) {
        /* undo the traced step: the program computes it, so that a step's
         * numbers never depend on whether its program was cached */
        tg_tape_rewind(mark);
        for (int k = 0; k < nout; k++)
            out[k] = NULL;
    }
    return p;
}

bool tg_prog_ok(const tg_prog *p) { return p && p->ok; }
const char *tg_prog_why(const tg_prog *p) { return p ? p->why : ""; }

bool tg_prog_fits(const tg_prog *p, int nin, tg_tensor *const *in)
{
    if (!p || nin != p->nin)
        return false;
    for (int k = 0; k < nin; k++) {
        int v = -1;
        for (int64_t i = 0; i < arrlen(p->vals) && v < 0; i++)
            if (p->vals[i].kind == PV_INPUT && p->vals[i].index == k)
                v = (int)i;
        if (v < 0 || !in[k] || !same_layout(&p->vals[v].layout, in[k]))
            return false;
    }
    return true;
}

/* ==== 4. running ====================================================== */

static int run_code(tg_prog *p, const pins *code)
{
    for (int64_t i = 0; i < arrlen(code); i++) {
        if (code[i].kind == I_REPLAY) {
            pnode *n = &p->nodes[code[i].index];
            tg_tensor *ins[64];
            int64_t nin = arrlen(n->in);
            TG_ASSERT(nin <= 64);
            for (int64_t k = 0; k < nin; k++)
                ins[k] = p->env[n->in[k]];
            tg_tensor *y = n->acc >= 0
                               ? n->e.op->replay_into(&n->e, ins, p->env[n->acc])
                               : n->e.op->replay(&n->e, ins);
            if (!y)
                return -1;
            if (!same_layout(y, &p->vals[n->out].layout)) {
                tg_error("fuse", "op '%s' of a compiled step made a tensor "
                         "laid out unlike the traced one; run with "
                         "TG_FUSE=0 and report this", n->e.op->name);
                return -1;
            }
            p->env[n->out] = y;
            continue;
        }
        group *g = p->groups[code[i].index];
        int64_t nout = arrlen(g->out_val);
        if (nout == 0)
            continue;
        tg_tensor *ext[64], *outs[64];
        TG_ASSERT(g->next <= 64 && nout <= 64);
        for (int k = 0; k < g->next; k++) {
            ext[k] = p->env[g->ext_val[k]];
            if (!ext[k] || !same_layout(ext[k], &p->vals[g->ext_val[k]].layout)) {
                tg_error("fuse", "an input of %s is laid out unlike the "
                         "traced one; run with TG_FUSE=0 and report this",
                         g->label);
                return -1;
            }
        }
        group_run(g, ext, outs);
        for (int64_t k = 0; k < nout; k++)
            p->env[g->out_val[k]] = outs[k];
    }
    return 0;
}

int tg_prog_begin(tg_prog *p)
{
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        p->env[i] = p->vals[i].kind == PV_LEAF ? p->vals[i].leaf : NULL;
    return run_code(p, p->pre);
}

int tg_prog_run(tg_prog *p, tg_tensor *const *in, tg_tensor **out)
{
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        if (p->vals[i].kind == PV_INPUT)
            p->env[i] = in[p->vals[i].index];
    if (run_code(p, p->body) < 0)
        return -1;
    for (int k = 0; k < p->nout; k++)
        out[k] = p->env[p->out_val[k]];
    return 0;
}

static void print_code(const tg_prog *p, const pins *code, FILE *f)
{
    for (int64_t i = 0; i < arrlen(code); i++) {
        if (code[i].kind == I_REPLAY) {
            const pnode *n = &p->nodes[code[i].index];
            char s[96];
            fprintf(f, "  %-40s -> %s\n",
                    n->acc >= 0 ? "linear_into (its input's numbers)"
                                : n->e.op->name,
                    tg_shape_str(&p->vals[n->out].layout, s, sizeof s));
            continue;
        }
        const group *g = p->groups[code[i].index];
        if (arrlen(g->out_val) == 0)
            continue;
        char s[96];
        int kept = 0;
        for (int64_t l = 0; l < arrlen(g->loads); l++)
            kept += g->loads[l].keep >= 0;
        fprintf(f, "  %-40s -> %lld x %s (%lld instructions, %lld loads, "
                "%d kept in place)\n", g->label, (long long)arrlen(g->out_val),
                tg_shape_str(&p->vals[g->out_val[0]].layout, s, sizeof s),
                (long long)arrlen(g->ins), (long long)arrlen(g->loads), kept);
    }
}

void tg_prog_print(const tg_prog *p, FILE *f)
{
    if (!p->ok) {
        fprintf(f, "not compiled: %s\n", p->why);
        return;
    }
    fprintf(f, "once per sequence:\n");
    print_code(p, p->pre, f);
    fprintf(f, "every step:\n");
    print_code(p, p->body, f);
}

void tg_prog_free(tg_prog *p)
{
    if (!p)
        return;
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        if (p->vals[i].own_leaf)
            tg_tensor_free(p->vals[i].leaf);
    for (int64_t i = 0; i < arrlen(p->nodes); i++) {
        pnode *n = &p->nodes[i];
        for (int k = 0; k < n->e.nin; k++)
            free(n->e.in[k]);
        free(n->e.in);
        free(n->e.out);
        arrfree(n->in);
    }
    for (int64_t i = 0; i < arrlen(p->groups); i++)
        group_free(p->groups[i]);
    arrfree(p->groups);
    arrfree(p->nodes);
    arrfree(p->vals);
    arrfree(p->pre);
    arrfree(p->body);
    arrfree(p->out_val);
    free(p->env);
    free(p);
}
