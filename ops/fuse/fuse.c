/*
 * ops/fuse/fuse.c - a compiled step's life: the fusion switch, tracing a
 * recurrent step into a program, the guards checked before each use
 * (layouts, the user block, captured tensors), holding the program for
 * the tape entries that point into it, running it step after step, and
 * printing it. ops/fuse.h says what and why; the rest of the compiler is
 * in three files:
 *
 *   ops/fuse/fuse_plan.c   the trace becomes values and nodes, nodes become
 *                     groups and replays, with run-time layouts;
 *   ops/fuse/fuse_group.c  one group becomes vector machine instructions;
 *   ops/fuse/fuse_vm.c     the vector machine, running a group forward,
 *                     backward and in forward mode.
 *
 * Not here: the ops themselves (their rules are data in their
 * descriptors) and the sequence layer that calls this (nn/rnn.c).
 */
#include "ops/fuse/fuse_internal.h"
#include "tensor/ds.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: TG_FUSE not read yet. Process-wide and read-mostly (README,
 * "Threads"): atomic, so that threads reading it the first time together
 * are no data race. */
static _Atomic int fusion = -1;

bool tg_fusion_enabled(void)
{
    int on = atomic_load_explicit(&fusion, memory_order_relaxed);
    if (on < 0) {
        const char *v = getenv("TG_FUSE");
        int from_env = !(v && !strcmp(v, "0"));
        /* (a switch made meanwhile by another thread wins) */
        atomic_compare_exchange_strong_explicit(&fusion, &on, from_env,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
        on = atomic_load_explicit(&fusion, memory_order_relaxed);
    }
    return on;
}

bool tg_set_fusion(bool on)
{
    bool old = tg_fusion_enabled();
    atomic_store_explicit(&fusion, on, memory_order_relaxed);
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
                       unsigned donate, const tg_prog_env *env)
{
    tg_fuse_count_trace();
    tg_prog *p = tg_xcalloc(1, sizeof *p);
    p->ok = true;
    p->refs = 1;
    p->donate = donate;
    p->nin = nin;
    p->nout = nout;
    p->since = tg_next_id();
    p->in_layout = tg_xcalloc((size_t)(nin ? nin : 1), sizeof *p->in_layout);
    for (int k = 0; k < nin; k++)
        if (in[k])
            p->in_layout[k] = *in[k];
    if (env && env->block) {
        /* the bytes as the step will read them (fuse.h, "Guards") */
        p->block_at = env->block;
        p->block_size = env->size;
        p->block = tg_xmalloc(env->size ? env->size : 1);
        memcpy(p->block, env->block, env->size);
        if (!env->size)
            tg_fuse_fail(p, "the step reads a state block of undeclared size "
                            "(a cell's user pointer, but its type has no "
                            "user_size): values read there could change "
                            "unseen, so it runs as written. Declare "
                            "user_size (nn/cell.h) to compile it");
    }
    tg_tape_mark mark = tg_tape_mark_get();
    int64_t first = tg_tape_trace_begin();
    step(ctx, in, out);
    bool ran = true;
    for (int k = 0; k < nout; k++)
        ran &= out[k] != NULL;
    if (ran && p->ok)
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
const char *tg_prog_why(const tg_prog *p)
{
    return !p ? "" : p->ok ? p->log : p->why;
}

void tg_prog_note(tg_prog *p, const char *fmt, ...)
{
    if (!p)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* newest last; when full, the oldest lines go */
    size_t cap = sizeof p->log, n = strlen(p->log), add = strlen(line) + 1;
    if (add >= cap)
        add = cap - 1, line[cap - 2] = 0;
    while (n + add >= cap) {
        char *nl = strchr(p->log, '\n');
        if (!nl) {
            n = 0;
            break;
        }
        memmove(p->log, nl + 1, strlen(nl + 1) + 1);
        n = strlen(p->log);
    }
    snprintf(p->log + n, cap - n, "%s%s", line, "\n");
}

bool tg_prog_fits(const tg_prog *p, int nin, tg_tensor *const *in)
{
    if (!p || nin != p->nin)
        return false;
    for (int k = 0; k < nin; k++) /* value k is input k */
        if (!in[k] || !tg_fuse_same_layout(&p->in_layout[k], in[k]))
            return tg_fuse_guard_failed(TG_GUARD_LAYOUT);
    return true;
}

/* "[3, 5] (strides 5, 1)" */
static const char *layout_str(const tg_tensor *t, char *buf, size_t cap)
{
    char sh[96];
    int n = snprintf(buf, cap, "%s (strides", tg_shape_str(t, sh, sizeof sh));
    for (int d = 0; d < t->ndim && n > 0 && (size_t)n < cap; d++)
        n += snprintf(buf + n, cap - (size_t)n, "%s %lld", d ? "," : "",
                      (long long)t->stride[d]);
    if (n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, ")");
    return buf;
}

static const char *failed(tg_prog *p, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *failed(tg_prog *p, int kind, const char *fmt, ...)
{
    tg_fuse_guard_failed(kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->failed, sizeof p->failed, fmt, ap);
    va_end(ap);
    return p->failed;
}

const char *tg_prog_check(tg_prog *p, int nin, tg_tensor *const *in,
                          const tg_prog_env *env)
{
    char s1[96], s2[96];
    if (nin != p->nin)
        return failed(p, TG_GUARD_LAYOUT, "%d inputs; traced with %d", nin, p->nin);
    for (int k = 0; k < nin; k++)
        if (!in[k] || !tg_fuse_same_layout(&p->in_layout[k], in[k]))
            return failed(p, TG_GUARD_LAYOUT, "input %d is %s, traced as %s", k,
                          in[k] ? layout_str(in[k], s1, sizeof s1) : "NULL",
                          layout_str(&p->in_layout[k], s2, sizeof s2));
    /* the state block before anything read through it */
    const void *at = env ? env->block : NULL;
    size_t size = env && env->block ? env->size : 0;
    if (at != p->block_at || size != p->block_size)
        return failed(p, TG_GUARD_USER, "the user block moved or changed size (%zu bytes "
                      "at %p, traced: %zu at %p)", size, at, p->block_size,
                      p->block_at);
    if (size && memcmp(at, p->block, size)) {
        size_t i = 0;
        while (((const unsigned char *)at)[i] == p->block[i])
            i++;
        return failed(p, TG_GUARD_USER, "the user block changed (byte %zu of %zu first)", i,
                      size);
    }
    if (!p->ok)
        return NULL;
    for (int64_t i = 0; i < arrlen(p->caps); i++)
        if (p->caps[i].t->id != p->caps[i].id)
            return failed(p, TG_GUARD_CAPTURED, "captured tensor t%u is gone (another tensor, "
                          "t%u, is at its address)", p->caps[i].id,
                          p->caps[i].t->id);
    return NULL;
}

/* the tape's reference (tg_tape_hold) */
static void release(void *obj)
{
    tg_prog *p = obj;
    p->held = false;
    tg_prog_free(p);
}

static void hold(tg_prog *p)
{
    if (p->held || !tg_is_grad_enabled())
        return; /* nothing recorded without grad */
    p->held = true;
    p->refs++;
    tg_tape_hold(release, p);
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
        TG_ASSERT(g->n_ext <= 64 && nout <= 64);
        for (int k = 0; k < g->n_ext; k++) {
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
    hold(p);
    for (int64_t i = 0; i < arrlen(p->caps); i++)
        p->caps[i].version = tg_version(p->caps[i].t);
    for (int64_t i = 0; i < arrlen(p->vals); i++)
        p->env[i] = p->vals[i].kind == PV_LEAF ? p->vals[i].leaf : NULL;
    return run_code(p, p->pre);
}

int tg_prog_run(tg_prog *p, tg_tensor *const *in, tg_tensor **out)
{
    for (int k = 0; k < p->nout; k++)
        out[k] = NULL; /* what a failed step leaves: never garbage */
    if (!tg_check_live("prog_run", p->nin, (const tg_tensor *const *)in))
        return -1;
    hold(p);
    /* a captured tensor written in place during the sequence: what was
     * computed from it once per sequence is computed again */
    for (int64_t i = 0; i < arrlen(p->caps); i++) {
        const pcapture *c = &p->caps[i];
        if (tg_version(c->t) == c->version)
            continue;
        tg_fuse_guard_failed(TG_GUARD_VERSION);
        tg_prog_note(p, "captured tensor t%u changed in place (version %u, "
                     "was %u): step-invariant part run again", c->id,
                     tg_version(c->t), c->version);
        int64_t step = tg_tape_step();
        tg_tape_set_step(-1);
        int rc = tg_prog_begin(p);
        tg_tape_set_step(step);
        if (rc < 0)
            return -1;
        break;
    }
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
    if (!p || --p->refs > 0)
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
    arrfree(p->caps);
    free(p->in_layout);
    free(p->block);
    free(p->env);
    free(p);
}
