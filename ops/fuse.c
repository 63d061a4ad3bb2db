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
#include "ops/fuse_internal.h"
#include "tensor/ds.h"

#include <stdlib.h>
#include <string.h>

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

bool tg_fuse_same_layout(const tg_tensor *a, const tg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d] ||
            (a->shape[d] > 1 && a->stride[d] != b->stride[d]))
            return false;
    return true;
}

tg_prog *tg_prog_trace(tg_step_fn step, void *ctx, int nin,
                       tg_tensor *const *in, int nout, tg_tensor **out,
                       unsigned donate)
{
    tg_fuse_count_trace();
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
        tg_fuse_build(p, first, in, out);
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
    for (int k = 0; k < nin; k++) /* value k is input k */
        if (!in[k] || !tg_fuse_same_layout(&p->vals[k].layout, in[k]))
            return tg_fuse_guard_failed(TG_GUARD_LAYOUT);
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
            tg_tensor *y =
                n->acc >= 0 ? n->e.op->replay_into(&n->e, ins, p->env[n->acc])
                            : n->e.op->replay(&n->e, ins);
            if (!y)
                return -1;
            if (!tg_fuse_same_layout(y, &p->vals[n->out].layout)) {
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
            const tg_tensor *want = &p->vals[g->ext_val[k]].layout;
            if (!ext[k] || !tg_fuse_same_layout(ext[k], want)) {
                tg_error("fuse", "an input of %s is laid out unlike the "
                         "traced one; run with TG_FUSE=0 and report this",
                         g->label);
                return -1;
            }
        }
        tg_fuse_group_run(g, ext, outs);
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
    for (int k = 0; k < p->nin; k++) /* value k is input k */
        p->env[k] = in[k];
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
        tg_fuse_group_free(p->groups[i]);
    arrfree(p->groups);
    arrfree(p->nodes);
    arrfree(p->vals);
    arrfree(p->pre);
    arrfree(p->body);
    arrfree(p->out_val);
    free(p->env);
    free(p);
}
