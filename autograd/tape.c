/*
 * autograd/tape.c - recording entries and the reverse sweep.
 *
 * The tape is an stb_ds array of entries. Entries refer to tensors by
 * pointer (tensors live in the arena and never move) and tensors refer to
 * their producing entry by index (the array may move when it grows).
 */
#include "autograd/tape.h"
#include "tensor/arena.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ds.h"

/* internal tensor flag: reached from the root in the current sweep */
#define TG_REACHED (1u << 30)

static tg_entry *tape;    /* stb_ds array */
typedef struct deferred {
    void (*fn)(void *ctx);
    void *ctx;
} deferred;
static deferred *later;   /* stb_ds array: tg_backward_defer's work */
static bool grad_enabled = true;
static int64_t cur_step = -1;

bool tg_set_grad_enabled(bool on)
{
    bool old = grad_enabled;
    grad_enabled = on;
    return old;
}

bool tg_is_grad_enabled(void) { return grad_enabled; }

void tg_tape_set_step(int64_t step) { cur_step = step; }

int64_t tg_tape_size(void) { return arrlen(tape); }

tg_entry *tg_tape_entry(int64_t i)
{
    return i >= 0 && i < arrlen(tape) ? &tape[i] : NULL;
}

/* ---- anomaly mode ------------------------------------------------------
 * When on, every op's output and every gradient a backward rule produces
 * is scanned for NaN and infinity as it is made; the first one found is
 * reported with the op, its tape entry, its inputs' shapes and the time
 * step, so a blow-up is traced to the op that caused it. Off by default
 * (it reads every number twice); TG_ANOMALY=1 in the environment turns it
 * on without recompiling. */
static int anomaly = -1; /* -1: not read from the environment yet */

bool tg_anomaly_mode(void)
{
    if (anomaly < 0) {
        const char *v = getenv("TG_ANOMALY");
        anomaly = v && *v && strcmp(v, "0") != 0;
    }
    return anomaly;
}

bool tg_set_anomaly_mode(bool on)
{
    bool old = tg_anomaly_mode();
    anomaly = on;
    return old;
}

/* index of the first non-finite number of a contiguous buffer, or -1 */
static int64_t first_nonfinite(const tg_real *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return i;
    return -1;
}

/* "x[2, 3], #4[3, 3]" (and which of them hold non-finite numbers) */
static void describe_inputs(char *buf, size_t cap, tg_tensor *const *in,
                            int nin)
{
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < nin && n < cap; k++) {
        if (!in[k])
            continue;
        char shape[96];
        tg_shape_str(in[k], shape, sizeof shape);
        bool bad = tg_is_contiguous(in[k]) &&
                   first_nonfinite(in[k]->data, in[k]->numel) >= 0;
        if (in[k]->name)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s%s%s", k ? ", " : "",
                                  in[k]->name, shape, bad ? " (non-finite)" : "");
        else if (in[k]->entry >= 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s#%d%s%s", k ? ", " : "",
                                  (int)in[k]->entry, shape,
                                  bad ? " (non-finite)" : "");
        else
            n += (size_t)snprintf(buf + n, cap - n, "%st%u%s%s", k ? ", " : "",
                                  (unsigned)in[k]->id, shape,
                                  bad ? " (non-finite)" : "");
    }
}

static void check_output(const char *op, tg_tensor *out, int nin,
                         tg_tensor *const *in)
{
    if (!tg_is_contiguous(out) || (out->flags & TG_IS_VIEW))
        return; /* a view: its numbers were checked where they were made */
    int64_t i = first_nonfinite(out->data, out->numel);
    if (i < 0)
        return;
    char inputs[512], shape[96];
    describe_inputs(inputs, sizeof inputs, in, nin);
    double v = out->data[i];
    tg_error("anomaly", "op '%s' (tape entry #%lld, time step %lld) made %s "
             "at element %lld of its output %s; inputs: %s", op,
             (long long)arrlen(tape), (long long)cur_step,
             isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf", (long long)i,
             tg_shape_str(out, shape, sizeof shape), inputs);
}

/* after entry e's backward rule: 0, or -1 after reporting a bad gradient */
static int check_grads(int64_t index, const tg_entry *e)
{
    for (int k = 0; k < e->nin; k++) {
        const tg_tensor *x = e->in[k];
        int64_t i = x->grad ? first_nonfinite(x->grad, x->numel) : -1;
        if (i < 0)
            continue;
        char inputs[512], shape[96];
        describe_inputs(inputs, sizeof inputs, e->in, e->nin);
        bool seed_bad = first_nonfinite(e->out->grad, e->out->numel) >= 0;
        tg_error("anomaly", "the backward of op '%s' (tape entry #%lld, time "
                 "step %lld) made %s at element %lld of the gradient of its "
                 "input %d %s%s; inputs: %s", e->op, (long long)index,
                 (long long)e->step, isnan(x->grad[i]) ? "NaN" : "inf",
                 (long long)i, k, tg_shape_str(x, shape, sizeof shape),
                 seed_bad ? " (the gradient it received was already "
                            "non-finite)" : "", inputs);
        return -1;
    }
    return 0;
}

tg_entry *tg_record(const char *op, tg_backward_fn backward, tg_tensor *out,
                    int nin, tg_tensor *const *in)
{
    if (out && anomaly && tg_anomaly_mode())
        check_output(op, out, nin, in);
    if (!grad_enabled || !out)
        return NULL;
    bool any = false;
    for (int k = 0; k < nin; k++)
        if (in[k] && (in[k]->flags & TG_REQUIRES_GRAD))
            any = true;
    if (!any)
        return NULL;
    tg_entry e;
    memset(&e, 0, sizeof e);
    e.op = op;
    e.backward = backward;
    e.out = out;
    e.nin = nin;
    e.in = tg_arena_alloc((size_t)nin * sizeof *e.in);
    memcpy(e.in, in, (size_t)nin * sizeof *e.in);
    e.step = cur_step;
    out->flags |= TG_REQUIRES_GRAD;
    out->entry = (int32_t)arrlen(tape);
    TG_ASSERT(arrlen(tape) < INT32_MAX);
    arrput(tape, e);
    return &tape[arrlen(tape) - 1];
}

tg_tensor *tg_requires_grad(tg_tensor *t)
{
    if (!t)
        return NULL;
    if (t->entry >= 0) {
        tg_error("requires_grad", "tensor #%u is the output of an op (%s): "
                 "only leaves (made by tg_zeros, tg_tensor_new, ...) can be "
                 "marked; its gradient is already computed if needed",
                 (unsigned)t->id, tape[t->entry].op);
        return NULL;
    }
    if (t->flags & TG_IS_VIEW) {
        tg_error("requires_grad", "tensor #%u is a raw view (tg_view_*) of "
                 "another tensor: mark the tensor it views, and use the "
                 "recorded ops of ops/shape.h to reshape it", (unsigned)t->id);
        return NULL;
    }
    t->flags |= TG_REQUIRES_GRAD;
    if ((t->flags & TG_PERSISTENT) && !t->grad)
        t->grad = tg_xcalloc_aligned((size_t)t->numel * sizeof(tg_real));
    return t;
}

tg_tensor *tg_retain_grad(tg_tensor *t)
{
    if (t)
        t->flags |= TG_RETAIN_GRAD;
    return t;
}

tg_tensor *tg_detach(tg_tensor *t)
{
    if (!t)
        return NULL;
    tg_tensor *d = tg_arena_alloc(sizeof *d);
    *d = *t;
    d->grad = NULL;
    d->flags = TG_IS_VIEW;
    d->entry = -1;
    return d;
}

void tg_zero_grad(tg_tensor *t)
{
    if (t && t->grad)
        memset(t->grad, 0, (size_t)t->numel * sizeof(tg_real));
}

void tg_zero_grads(tg_tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++)
        tg_zero_grad(ts[i]);
}

/* Gradient buffers of intermediate tensors are needed only from the entry
 * that consumes the tensor last (which creates the buffer) down to the
 * entry that produced it (which reads it for the last time). Buffers
 * released there go on a free list by size and are reused by later
 * gradients of the same sweep, so the sweep's memory is the largest set of
 * gradients alive at one time, not the sum of all of them. */
typedef struct free_buf {
    size_t key;        /* size in bytes */
    tg_real **value;   /* stb_ds array of released buffers */
} free_buf;

static void ensure_grad(tg_tensor *t, free_buf **pool)
{
    if (t->grad)
        return;
    size_t n = (size_t)(t->numel ? t->numel : 1) * sizeof(tg_real);
    if (t->flags & TG_PERSISTENT) {
        t->grad = tg_xcalloc_aligned(n);
        return;
    }
    free_buf *fb = hmgetp_null(*pool, n);
    if (fb && arrlen(fb->value) > 0) {
        t->grad = arrpop(fb->value);
        memset(t->grad, 0, n);
    } else {
        t->grad = tg_arena_calloc(n);
    }
}

static void release_grad(tg_tensor *t, free_buf **pool)
{
    size_t n = (size_t)(t->numel ? t->numel : 1) * sizeof(tg_real);
    free_buf *fb = hmgetp_null(*pool, n);
    if (!fb) {
        hmput(*pool, n, NULL);
        fb = hmgetp_null(*pool, n);
    }
    arrput(fb->value, t->grad);
    t->grad = NULL;
}

static void free_pool(free_buf **pool)
{
    for (int64_t i = 0; i < hmlen(*pool); i++)
        arrfree((*pool)[i].value);
    hmfree(*pool);
}

/* Pass 1: which entries lead to root? Walks the tape backwards marking
 * tensors reached from root; fails - before any gradient is touched - if a
 * needed entry was consumed by an earlier backward. Fills *needed with the
 * entry indices in reverse order. */
static int find_needed(tg_tensor *root, int64_t **needed)
{
    int rc = 0;
    root->flags |= TG_REACHED;
    for (int64_t i = root->entry; i >= 0; i--) {
        tg_entry *e = &tape[i];
        if (!(e->out->flags & TG_REACHED))
            continue;
        if (e->consumed) {
            tg_error("backward", "entry #%lld (%s) was already used by an "
                     "earlier backward and its gradients are gone. Did you "
                     "carry a tensor (a hidden state?) from one step into the "
                     "next without tg_detach, or call backward twice on one "
                     "graph? Detach the carried tensor, or run the forward "
                     "again after tg_tape_reset.", (long long)i, e->op);
            rc = -1;
            break;
        }
        arrput(*needed, i);
        for (int k = 0; k < e->nin; k++)
            if (e->in[k]->flags & TG_REQUIRES_GRAD)
                e->in[k]->flags |= TG_REACHED;
    }
    /* clear the marks */
    root->flags &= ~TG_REACHED;
    for (int64_t j = 0; j < arrlen(*needed); j++) {
        tg_entry *e = &tape[(*needed)[j]];
        e->out->flags &= ~TG_REACHED;
        for (int k = 0; k < e->nin; k++)
            e->in[k]->flags &= ~TG_REACHED;
    }
    return rc;
}

static int sweep(tg_tensor *root, const tg_tensor *seed)
{
    if (!(root->flags & TG_REQUIRES_GRAD)) {
        tg_error("backward", "the tensor does not require grad: no input "
                 "of the computation was marked with tg_requires_grad (or "
                 "it was computed with grad disabled)");
        return -1;
    }
    int64_t *needed = NULL;
    if (find_needed(root, &needed) < 0) {
        arrfree(needed);
        return -1;
    }
    /* seed: dL/droot */
    free_buf *pool = NULL;
    ensure_grad(root, &pool);
    if (seed) {
        int64_t cs[TG_MAX_DIMS];
        tg_contiguous_strides(root->ndim, root->shape, cs);
        tg_strided_copy(root->ndim, root->shape, root->grad, cs, seed->data,
                        seed->stride, true);
    } else {
        root->grad[0] += 1;
    }
    for (int64_t j = 0; j < arrlen(needed); j++) {
        tg_entry *e = &tape[needed[j]];
        tg_tensor *out = e->out;
        if (!out->grad)
            continue; /* reached, but no consumer contributed */
        for (int k = 0; k < e->nin; k++)
            if (e->in[k]->flags & TG_REQUIRES_GRAD)
                ensure_grad(e->in[k], &pool);
        e->backward(e);
        e->consumed = true;
        if (anomaly && tg_anomaly_mode() && check_grads(needed[j], e) < 0) {
            free_pool(&pool);
            arrfree(needed);
            arrsetlen(later, 0);
            return -1;
        }
        /* every consumer of out came later on the tape and has run: its
         * gradient is complete and, unless retained, no longer needed */
        if (!(out->flags & TG_RETAIN_GRAD))
            release_grad(out, &pool);
    }
    free_pool(&pool);
    arrfree(needed);
    /* work the rules postponed (it may register more: index, not ptr) */
    for (int64_t i = 0; i < arrlen(later); i++)
        later[i].fn(later[i].ctx);
    arrsetlen(later, 0);
    return 0;
}

int tg_backward(tg_tensor *loss)
{
    if (!loss) {
        tg_error("backward", "the loss is NULL (an earlier op failed)");
        return -1;
    }
    if (loss->numel != 1) {
        char s[96];
        tg_error("backward", "the loss has shape %s; backward without a seed "
                 "needs a one-element tensor. Reduce it (tg_sum, tg_mean) or "
                 "pass dL/dy to tg_backward_seed",
                 tg_shape_str(loss, s, sizeof s));
        return -1;
    }
    return sweep(loss, NULL);
}

int tg_backward_seed(tg_tensor *y, const tg_tensor *seed)
{
    if (!y || !seed) {
        tg_error("backward", "the output or the seed is NULL");
        return -1;
    }
    if (!tg_same_shape(y, seed)) {
        char a[96], b[96];
        tg_error("backward", "the seed gradient has shape %s but the output "
                 "has shape %s; they must be equal",
                 tg_shape_str(seed, a, sizeof a), tg_shape_str(y, b, sizeof b));
        return -1;
    }
    return sweep(y, seed);
}

void tg_backward_defer(void (*fn)(void *ctx), void *ctx)
{
    deferred d = {fn, ctx};
    arrput(later, d);
}

tg_tape_mark tg_tape_mark_get(void)
{
    tg_arena_mark a = tg_arena_get_mark();
    tg_tape_mark m = {arrlen(tape), a.chunk, a.used};
    return m;
}

void tg_tape_rewind(tg_tape_mark m)
{
    TG_ASSERT(m.entries <= arrlen(tape));
    arrsetlen(tape, m.entries);
    tg_arena_mark a = {m.arena_chunk, m.arena_used};
    tg_arena_rewind(a);
}

void tg_tape_reset(void)
{
    arrsetlen(tape, 0);
    tg_arena_reset();
}

void tg_tape_free_all(void)
{
    arrfree(later);
    arrfree(tape);
    tape = NULL;
    tg_arena_release();
}
