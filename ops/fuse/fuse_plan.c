/*
 * ops/fuse/fuse_plan.c - compiling a traced step into a program: values and
 * nodes from the tape, weights prepared and products accumulated into
 * donated inputs, nodes split into groups and replays, views read through
 * as accessors, run-time layouts. Each group is then compiled by
 * ops/fuse/fuse_group.c.
 */
#include "ops/fuse/fuse_internal.h"
#include "tensor/ds.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

void tg_fuse_fail(tg_prog *p, const char *fmt, ...)
{
    if (!p->ok)
        return;
    p->ok = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
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
    return tg_fuse_same_layout(&c, t);
}

static void replay_layouts(tg_prog *p, const pins *code)
{
    for (int64_t i = 0; i < arrlen(code); i++) {
        if (code[i].kind != I_REPLAY)
            continue;
        pnode *n = &p->nodes[code[i].index];
        tg_tensor *y = &p->vals[n->out].layout;
        if (n->e.op == &tg_prepare_op || n->e.op == &tg_alias_op) {
            /* a prepared weight shares its input's numbers and layout (a
             * column slice of a parameter stays strided); an alias keeps
             * its input's layout */
            memcpy(y->stride, p->vals[n->in[0]].layout.stride,
                   sizeof y->stride);
            continue;
        }
        if (!(n->e.op->flags & TG_OP_VIEW)) {
            contiguous_layout(y);
            continue;
        }
        const tg_tensor *x = &p->vals[n->in[0]].layout;
        if (tg_fuse_same_layout(x, n->e.in[0])) {
            memcpy(y->stride, n->e.out->stride, sizeof y->stride);
        } else if (is_contiguous_layout(x)) {
            memcpy(y->stride, &n->e.iarg[TG_VIEW_STRIDE],
                   sizeof(int64_t) * (size_t)y->ndim);
        } else {
            tg_fuse_fail(p, "a view ('%s') of a fused group's output cannot be "
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
            if ((n->e.op->flags & TG_OP_VIEW) && !bad[n->out] &&
                tg_fuse_view_follows(p, n)) {
                p->vals[n->out].accessor = true;
                continue;
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
        if (tg_fuse_codegen(p, gid))
            continue;
        /* run as single ops instead; the loop goes on with them */
        split_group(p, code, i);
        mark_outputs(p);
        runtime_layouts(p);
        i--;
    }
}

/* A node the compiler adds (not traced): op on value v, its entry laid
 * out like v in and out; the caller gives it its output value. */
static pnode inserted_node(const tg_op *op, const tg_prog *p, int v)
{
    pnode q;
    memset(&q, 0, sizeof q);
    q.e.op = op;
    q.e.nin = 1;
    q.e.in = tg_xcalloc(1, sizeof *q.e.in);
    q.e.in[0] = tg_xmalloc(sizeof *q.e.in[0]);
    *q.e.in[0] = p->vals[v].layout;
    q.e.out = tg_xmalloc(sizeof *q.e.out);
    *q.e.out = p->vals[v].layout;
    q.e.step = -1;
    q.acc = -1;
    arrput(q.in, v);
    return q;
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
            pnode q = inserted_node(&tg_prepare_op, p, w);
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

/* A step output that depends on no step input (computed once per
 * sequence, or a constant of the program) is still a tensor of its own at
 * every step, as unfused: an alias node (tg_alias_op: a copy, or a view
 * of a strided one, recorded) runs every step, and the step's readers of
 * the value read it instead - so that its gradient, when retained
 * (tg_retain_grad(out.h[t])), is this step's whole dL/dh_t: neither the
 * sum over the steps nor without what the step's other states took from
 * it. Whatever those readers compute is then run every step too. Inserted
 * after the value's node (a constant: first), so that the nodes stay in
 * an order that computes every value before its readers. */
static void alias_invariant_outputs(tg_prog *p)
{
    for (int k = 0; k < p->nout; k++) {
        int v = p->out_val[k];
        const pval *pv = &p->vals[v];
        if (!pv->invariant || (pv->kind != PV_NODE && !pv->own_leaf))
            continue;
        int at = pv->kind == PV_NODE ? pv->index + 1 : 0;
        for (int64_t i = 0; i < arrlen(p->vals); i++)
            if (p->vals[i].kind == PV_NODE && p->vals[i].index >= at)
                p->vals[i].index++;
        pnode q = inserted_node(&tg_alias_op, p, v);
        q.out = new_val(p, PV_NODE, at, &p->vals[v].layout);
        for (int64_t i = 0; i < arrlen(p->nodes); i++)
            for (int64_t j = 0; j < arrlen(p->nodes[i].in); j++)
                if (p->nodes[i].in[j] == v)
                    p->nodes[i].in[j] = q.out;
        for (int j = 0; j < p->nout; j++)
            if (p->out_val[j] == v)
                p->out_val[j] = q.out;
        arrins(p->nodes, at, q);
    }
    /* what reads an alias, directly or not, depends on the step now */
    for (int64_t i = 0; i < arrlen(p->nodes); i++) {
        const pnode *n = &p->nodes[i];
        bool invariant = n->e.op != &tg_alias_op;
        for (int64_t j = 0; j < arrlen(n->in); j++)
            invariant &= p->vals[n->in[j]].invariant;
        p->vals[n->out].invariant = invariant;
    }
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

/* t's address is one of the pointers in the state block (as traced) */
static bool in_block(const tg_prog *p, const tg_tensor *t)
{
    for (size_t o = 0; p->block && o + sizeof t <= p->block_size;
         o += _Alignof(tg_tensor *)) {
        const tg_tensor *q;
        memcpy(&q, p->block + o, sizeof q);
        if (q == t)
            return true;
    }
    return false;
}

bool tg_fuse_build(tg_prog *p, int64_t first, tg_tensor *const *in,
                   tg_tensor **out)
{
    ptr_map *map = NULL;
    for (int k = 0; k < p->nin; k++)
        hmput(map, in[k], new_val(p, PV_INPUT, k, in[k])); /* value k */
    int64_t end = tg_tape_size();
    for (int64_t i = first; i < end && p->ok; i++) {
        const tg_entry *e = tg_tape_entry(i);
        if (e->nout != 1) {
            tg_fuse_fail(p, "a step op has several outputs (%s)", e->op->name);
            break;
        }
        if (!e->op->ew && !e->op->replay) {
            tg_fuse_fail(p, "op '%s' cannot be replayed (it draws random numbers or "
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
                    tg_fuse_fail(p, "op '%s' reads a tensor computed outside the step "
                            "that is not one of its inputs", e->op->name);
                    break;
                }
                bool in_step = tg_made_since(t, p->since);
                if (!in_step && !(t->flags & TG_PERSISTENT) &&
                    !in_block(p, t)) {
                    char sh[96];
                    tg_fuse_fail(p, "op '%s' reads t%u %s, a temporary made "
                                 "before the step that is not one of its "
                                 "inputs nor held in the cell's user block: a "
                                 "compiled step could not see it replaced, so "
                                 "it runs as written. Keep it in the user "
                                 "block (nn/cell.h, user_size) to compile it",
                                 e->op->name, t->id,
                                 tg_shape_str(t, sh, sizeof sh));
                    break;
                }
                v = new_val(p, PV_LEAF, -1, t);
                pval *pv = &p->vals[v];
                if (!in_step) { /* read live, guarded (fuse.h) */
                    pv->leaf = t;
                    pcapture c = {t, t->id, tg_version(t)};
                    arrput(p->caps, c);
                } else { /* a constant made in the step: the program's */
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
            tg_fuse_fail(p, "%s", "a step output is not computed from the step's "
                          "inputs or parameters");
            break;
        }
        arrput(p->out_val, map[at].value);
    }
    hmfree(map);
    if (!p->ok)
        return false;
    alias_invariant_outputs(p);
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
