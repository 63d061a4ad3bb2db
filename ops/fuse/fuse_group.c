/*
 * ops/fuse/fuse_group.c - compiling one group: its members' values become
 * vector machine instructions over the group's iteration space, external
 * values become loads through affine maps, and a liveness pass decides
 * what backward recomputes and what it keeps in memory.
 *
 * Not here: which ops form a group (ops/fuse/fuse_plan.c) and running it
 * (ops/fuse/fuse_vm.c).
 */
#include "ops/fuse/fuse_internal.h"
#include "tensor/ds.h"

#include <stdlib.h>
#include <string.h>

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

/* compiling one group: its program, the group, and what was made */
typedef struct codegen {
    tg_prog *p;
    group *g;
    int gid;
    memo *memo;          /* stb_ds */
    bool failed;
} codegen;

static int ext_slot(codegen *c, int v)
{
    for (int k = 0; k < c->g->n_ext; k++)
        if (c->g->ext_val[k] == v)
            return k;
    arrput(c->g->ext_val, v);
    return c->g->n_ext++;
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

static int new_reg(codegen *c) { return c->g->nreg++; }

static int emit_load(codegen *c, int v, const vmap *m)
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

/* The map into a view's input, from the view's gradient view (offset and
 * strides into a contiguous copy of the input; ops/shape.c). false if
 * those strides do not each fall on one axis of the input. */
static bool view_map(const group *g, const pnode *n, const tg_tensor *u,
                     const vmap *m, vmap *r)
{
    memset(r, 0, sizeof *r);
    const tg_tensor *w = n->e.out;
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(u->ndim, u->shape, cs);
    int64_t off = n->e.iarg[TG_VIEW_OFF];
    for (int d = 0; d < u->ndim; d++) {
        r->o[d] = u->shape[d] > 1 ? off / cs[d] : 0;
        off -= r->o[d] * cs[d];
    }
    if (off != 0)
        return false;
    for (int k = 0; k < w->ndim; k++) {
        int64_t gs = n->e.iarg[TG_VIEW_STRIDE + k];
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

static int inst(codegen *c, int v, const vmap *m);

/* A view that leaves its group is a copy of its input's register, so
 * that the gradient the group gathers for it is its own: the view's
 * consumers' (outside and in the group), without what other readers of
 * its input give that input - what a retained gradient of the view must
 * be (fused_bwd). Only groups with such an output pay the copy. */
static const tg_ew_rule copy_rule = {TG_VM_COPY, 1,
                                     {{TG_VM_COPY, {TG_R_G, 0, 0}}}};

static int emit_copy(codegen *c, int src)
{
    vm_ins in;
    memset(&in, 0, sizeof in);
    in.code = TG_VM_COPY;
    in.src[0] = src;
    in.rule = &copy_rule;
    in.kept = -1;
    in.dst = new_reg(c);
    arrput(c->g->ins, in);
    return in.dst;
}

/* view node n's value at map m: its input at the composed map */
static int through_view(codegen *c, const pnode *n, const vmap *m)
{
    vmap mu;
    if (!view_map(c->g, n, &c->p->vals[n->in[0]].layout, m, &mu)) {
        c->failed = true;
        return 0;
    }
    return inst(c, n->in[0], &mu);
}

bool tg_fuse_view_follows(const tg_prog *p, const pnode *n)
{
    const tg_tensor *w = &p->vals[n->out].layout;
    if (w->ndim == 0)
        return false;
    /* the identity over the view's own shape: if the map holds there, it
     * holds for every map into the view */
    group probe;
    memset(&probe, 0, sizeof probe);
    probe.ndim = w->ndim;
    memcpy(probe.shape, w->shape, sizeof probe.shape);
    vmap id, mu;
    memset(&id, 0, sizeof id);
    for (int d = 0; d < w->ndim; d++)
        id.A[d][d] = 1;
    return view_map(&probe, n, &p->vals[n->in[0]].layout, &id, &mu);
}

/* The register holding value v at map m: a load for a value from outside
 * the group, an instruction for a member op, a re-indexing for a view.
 * (Maps are first made canonical on size-1 axes, where any coefficient
 * means the same index 0, so that one value is computed once.) */
static int inst(codegen *c, int v, const vmap *m_in)
{
    vmap canon = *m_in;
    const tg_tensor *vt = &c->p->vals[v].layout;
    for (int d = 0; d < TG_MAX_DIMS; d++)
        for (int j = 0; j < TG_MAX_DIMS; j++)
            if (d >= vt->ndim || vt->shape[d] == 1 || j >= c->g->ndim ||
                c->g->shape[j] == 1)
                canon.A[d][j] = 0;
    for (int d = 0; d < TG_MAX_DIMS; d++)
        if (d >= vt->ndim || vt->shape[d] == 1)
            canon.o[d] = 0;
    const vmap *m = &canon;
    for (int64_t i = 0; i < arrlen(c->memo); i++)
        if (c->memo[i].val == v && !memcmp(&c->memo[i].m, m, sizeof *m))
            return c->memo[i].reg;
    tg_prog *p = c->p;
    const pval *pv = &p->vals[v];
    int reg;
    if (pv->accessor) { /* read through: the view's input at the map */
        reg = through_view(c, &p->nodes[pv->index], m);
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
            in.k = (tg_real)n->e.farg[TG_EW_K];
            in.rule = rule;
            in.kept = -1;
            in.dst = reg = new_reg(c);
            arrput(c->g->ins, in);
        } else { /* a member view: a re-indexing of its input */
            reg = through_view(c, n, m);
            if (c->failed)
                return 0;
            if (pv->is_output) /* in a register of its own (a copy) */
                reg = emit_copy(c, reg);
        }
    }
    memo me = {v, *m, reg};
    arrput(c->memo, me);
    return reg;
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

/* DEAR in ops/kernels/vm_codes.h */
static bool expensive(int code)
{
    enum { CHEAP, DEAR };
#define COST(NAME, name, cost, value, recorded) [TG_VM_##NAME] = cost,
    static const unsigned char dear[TG_VM_NCODES] = {TG_VM_CODES(COST)};
#undef COST
    return code >= 0 && code < TG_VM_NCODES && dear[code];
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
        in->recompute =
            need[in->dst] && in->kept < 0 && !is_out_reg(g, in->dst);
    }
    for (int64_t l = 0; l < nl; l++)
        g->loads[l].needed = need[g->loads[l].reg];
    free(need);
    free(ok_slot);
}

/* Instructions for group gid (outputs and members already known). false
 * if the outputs differ in shape or a view cannot be followed. */
bool tg_fuse_codegen(tg_prog *p, int gid)
{
    group *g = p->groups[gid];
    if (arrlen(g->out_val) == 0)
        return true; /* nothing of it is used */
    const tg_tensor *s = &p->vals[g->out_val[0]].layout;
    for (int64_t k = 1; k < arrlen(g->out_val); k++)
        if (!tg_same_shape(s, &p->vals[g->out_val[k]].layout))
            return false;
    g->ndim = s->ndim ? s->ndim : 1;
    g->out_ndim = s->ndim;
    g->shape[0] = 1;
    memcpy(g->shape, s->shape, sizeof(int64_t) * (size_t)s->ndim);
    g->numel = 1;
    for (int d = 0; d < g->ndim; d++)
        g->numel *= g->shape[d];
    g->inner = g->shape[g->ndim - 1];
    g->nchunk = g->inner ? (g->inner + BLK - 1) / BLK : 0;
    g->ntiles = g->inner ? g->numel / g->inner * g->nchunk : 0;
    codegen c = {p, g, gid, NULL, false};
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
    if (c.failed) {
        arrfree(c.memo);
        return false;
    }
    /* the registers that hold an output at another map than its own */
    for (int64_t i = 0; i < arrlen(c.memo); i++)
        for (int64_t k = 0; k < nout; k++) {
            const memo *me = &c.memo[i];
            bool seen = me->val != g->out_val[k] || me->reg == g->out_reg[k];
            for (int64_t j = 0; !seen && j < arrlen(g->taps); j++)
                seen = g->taps[j].out == k && g->taps[j].reg == me->reg;
            if (seen)
                continue;
            vm_tap tap = {(int)k, me->reg, 0, {0}};
            int64_t cs[TG_MAX_DIMS];
            tg_contiguous_strides(s->ndim, s->shape, cs);
            for (int d = 0; d < s->ndim; d++) {
                tap.goff += me->m.o[d] * cs[d];
                for (int j = 0; j < g->ndim; j++)
                    tap.gst[j] += me->m.A[d][j] * cs[d];
            }
            arrput(g->taps, tap);
        }
    arrfree(c.memo);
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
    for (int64_t i = 0; i < arrlen(g->members); i++)
        arrput(g->member_op, p->nodes[g->members[i]].e.op->name);
    if (len < sizeof buf)
        snprintf(buf + len, sizeof buf - len, "]");
    g->label = strdup(buf);
    return true;
}
