/*
 * autograd/tape.c - recording entries and the reverse sweep.
 *
 * The tape is an stb_ds array of entries. Entries refer to tensors by
 * pointer (tensors live in the arena and never move) and tensors refer to
 * their producing entry by index (the array may move when it grows).
 */
#include "autograd/tape.h"
#include "autograd/anomaly.h"
#include "tensor/arena.h"
#include "tensor/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ds.h"

/* internal tensor flag: reached from the root in the current sweep */
#define TG_REACHED (1u << 30)

/* Everything here is the calling thread's (README, "Threads"): its tape,
 * its modes, its tracing, holds and grad-ready hook. A thread that ends
 * has its tape freed like its arena (tensor/arena.c, thread_ends). */
static _Thread_local tg_entry *tape; /* stb_ds array */
static _Thread_local bool grad_enabled = true;
static _Thread_local int64_t cur_step = -1;

bool tg_set_grad_enabled(bool on)
{
    bool old = grad_enabled;
    grad_enabled = on;
    return old;
}

bool tg_is_grad_enabled(void) { return grad_enabled; }

static _Thread_local bool inference, grad_before_inference;

bool tg_set_inference_mode(bool on)
{
    bool old = inference;
    if (on && !inference)
        grad_before_inference = tg_set_grad_enabled(false);
    else if (!on && inference)
        tg_set_grad_enabled(grad_before_inference);
    inference = on;
    return old;
}

bool tg_inference_mode(void) { return inference; }

void tg_tape_set_step(int64_t step) { cur_step = step; }
int64_t tg_tape_step(void) { return cur_step; }

int64_t tg_tape_size(void) { return arrlen(tape); }

tg_entry *tg_tape_entry(int64_t i)
{
    return i >= 0 && i < arrlen(tape) ? &tape[i] : NULL;
}

/* Tracing: > 0 between tg_tape_trace_begin and _end. Entries recorded
 * only because of it are flagged in traced_only. */
static _Thread_local int tracing;
static _Thread_local bool *traced_only; /* stb_ds array: for each entry
                                           recorded since
                                           tg_tape_trace_begin, in order */

/* ---- in-place changes (tensor/tensor.h, tg_version) -------------------
 * An entry keeps the version counts of the inputs and outputs its backward
 * reads; backward compares them before it runs anything. */
static bool reads_in(const tg_op *op, int k)
{
    if ((op->flags & TG_OP_VIEW) || op->reads == TG_READS_NONE)
        return false;
    return op->reads == TG_READS_ALL || (k < 8 && (op->reads & TG_READS_IN(k)));
}

static bool reads_out(const tg_op *op)
{
    if ((op->flags & TG_OP_VIEW) || op->reads == TG_READS_NONE)
        return false;
    return op->reads == TG_READS_ALL || (op->reads & TG_READS_OUT);
}

static void save_versions(tg_entry *e)
{
    const tg_op *op = e->op;
    if ((op->flags & TG_OP_VIEW) || op->reads == TG_READS_NONE)
        return;
    e->versions = tg_arena_alloc((size_t)(e->nin + e->nout) * sizeof(uint32_t));
    for (int k = 0; k < e->nin; k++)
        e->versions[k] = tg_version(e->in[k]);
    for (int k = 0; k < e->nout; k++)
        e->versions[e->nin + k] = tg_version(e->outs[k]);
}

/* "weight_hh[8, 2]", "#4[2, 8]" or "t7[3]" */
static const char *tensor_str(const tg_tensor *t, char *buf, size_t cap)
{
    char shape[96];
    tg_shape_str(t, shape, sizeof shape);
    if (t->name)
        snprintf(buf, cap, "%s%s", t->name, shape);
    else if (t->entry >= 0)
        snprintf(buf, cap, "#%d%s", (int)t->entry, shape);
    else
        snprintf(buf, cap, "t%u%s", (unsigned)t->id, shape);
    return buf;
}

int tg_entry_check_versions(int64_t index, const tg_entry *e,
                            bool forward_mode)
{
    bool fwd = forward_mode;
    if (!e->versions)
        return 0;
    for (int k = 0; k < e->nin + e->nout; k++) {
        bool out = k >= e->nin;
        const tg_tensor *t = out ? e->outs[k - e->nin] : e->in[k];
        if (!t || !(out ? reads_out(e->op) : reads_in(e->op, k)) ||
            tg_version(t) == e->versions[k])
            continue;
        char what[160], when[64] = "";
        if (e->step >= 0)
            snprintf(when, sizeof when, ", time step %lld", (long long)e->step);
        tg_error(fwd ? "jvp" : "backward", "op '%s' (tape entry #%lld%s) "
                 "needs the numbers of its %s %d, %s, which were changed in "
                 "place after it ran (version %u, recorded at %u): its %s "
                 "would be wrong. Change it after %s or change a copy "
                 "(tg_clone)",
                 e->op->name, (long long)index, when,
                 out ? "output" : "input", out ? k - e->nin : k,
                 tensor_str(t, what, sizeof what), tg_version(t),
                 e->versions[k], fwd ? "tangent" : "gradient",
                 fwd ? "tg_jvp" : "backward (an optimizer step belongs "
                                  "there)");
        return -1;
    }
    return 0;
}

static tg_entry *record(const tg_op *op, int nout, tg_tensor *const *outs,
                        int nin, tg_tensor *const *in)
{
    for (int k = 0; k < nout; k++)
        if (!outs[k])
            return NULL;
    if (tg_anomaly_mode_on())
        for (int k = 0; k < nout; k++)
            tg_anomaly_check_output(op, outs[k], nin, in, arrlen(tape),
                                    cur_step);
    bool any = false;
    for (int k = 0; k < nin; k++)
        if (in[k] && (in[k]->flags & TG_REQUIRES_GRAD))
            any = true;
    bool real = grad_enabled && any;
    if (!real && !tracing)
        return NULL;
    tg_entry e;
    memset(&e, 0, sizeof e);
    e.op = op;
    e.nout = nout;
    e.outs = tg_arena_alloc((size_t)nout * sizeof *e.outs);
    memcpy(e.outs, outs, (size_t)nout * sizeof *e.outs);
    e.out = outs[0];
    e.nin = nin;
    e.in = tg_arena_alloc((size_t)(nin ? nin : 1) * sizeof *e.in);
    if (nin)
        memcpy(e.in, in, (size_t)nin * sizeof *e.in);
    e.step = cur_step;
    TG_ASSERT(arrlen(tape) < INT32_MAX);
    for (int k = 0; k < nout; k++) {
        if (real)
            outs[k]->flags |= TG_REQUIRES_GRAD;
        outs[k]->entry = (int32_t)arrlen(tape);
    }
    if (real)
        save_versions(&e);
    if (tracing)
        arrput(traced_only, !real);
    arrput(tape, e);
    return &tape[arrlen(tape) - 1];
}

tg_entry *tg_record(const tg_op *op, tg_tensor *out, int nin,
                    tg_tensor *const *in)
{
    return record(op, 1, &out, nin, in);
}

tg_entry *tg_record_multi(const tg_op *op, int nout, tg_tensor *const *outs,
                          int nin, tg_tensor *const *in)
{
    return record(op, nout, outs, nin, in);
}

const char *tg_entry_label(const tg_entry *e, char *buf, size_t cap)
{
    if (e->op->label) {
        e->op->label(e, buf, cap);
        return buf;
    }
    return e->op->name;
}

int64_t tg_tape_trace_begin(void)
{
    if (tracing++ == 0)
        arrsetlen(traced_only, 0);
    return arrlen(tape);
}

void tg_tape_trace_end(int64_t first, bool drop)
{
    TG_ASSERT(tracing > 0);
    tracing--;
    if (!drop || tracing)
        return;
    /* keep the real entries, in order; the traced-only ones go, and their
     * outputs become plain temporaries again */
    int64_t w = first;
    for (int64_t i = first; i < arrlen(tape); i++) {
        bool only = i - first < arrlen(traced_only) && traced_only[i - first];
        if (only) {
            for (int k = 0; k < tape[i].nout; k++)
                tape[i].outs[k]->entry = -1;
            continue;
        }
        if (w != i) {
            tape[w] = tape[i];
            for (int k = 0; k < tape[w].nout; k++)
                tape[w].outs[k]->entry = (int32_t)w;
        }
        w++;
    }
    arrsetlen(tape, w);
    arrsetlen(traced_only, 0);
}

tg_tensor *tg_requires_grad(tg_tensor *t)
{
    if (!tg_check_live("requires_grad", 1, (const tg_tensor *[]){t}))
        return NULL;
    if (t->entry >= 0) {
        tg_error("requires_grad", "tensor #%u is the output of an op (%s): "
                 "only leaves (made by tg_zeros, tg_tensor_new, ...) can be "
                 "marked; its gradient is already computed if needed",
                 (unsigned)t->id, tape[t->entry].op->name);
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
    if (!tg_check_live("retain_grad", 1, (const tg_tensor *[]){t}))
        return NULL;
    t->flags |= TG_RETAIN_GRAD;
    return t;
}

tg_tensor *tg_detach(tg_tensor *t)
{
    if (!tg_check_live("detach", 1, (const tg_tensor *[]){t}))
        return NULL;
    tg_tensor *d = tg_arena_alloc_header(sizeof *d);
    *d = *t;
    d->gen = tg_arena_generation(); /* a temporary, even of a parameter */
    d->grad = NULL;
    d->tangent = NULL;
    d->flags = TG_IS_VIEW;
    d->entry = -1;
    d->packed = NULL; /* W's own, freed with W */
    return d;
}

/* n bytes at p set to zero; a large buffer by all threads, each its own
 * chunks (a gradient buffer of a time-batched product runs to megabytes,
 * and one thread alone leaves the others waiting) */
#define ZERO_CHUNK ((size_t)1 << 16)
static void zero_bytes(void *p, size_t n)
{
    if (n < 16 * ZERO_CHUNK) {
        memset(p, 0, n);
        return;
    }
    int64_t chunks = (int64_t)((n + ZERO_CHUNK - 1) / ZERO_CHUNK);
    TG_OMP_FOR(TG_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        size_t at = (size_t)c * ZERO_CHUNK;
        memset((char *)p + at, 0, n - at < ZERO_CHUNK ? n - at : ZERO_CHUNK);
    }
}

void tg_zero_grad(tg_tensor *t)
{
    if (t && t->grad)
        zero_bytes(t->grad, (size_t)t->numel * sizeof(tg_real));
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
    } else {
        t->grad = tg_arena_alloc(n);
    }
    zero_bytes(t->grad, n);
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
        bool reached = false;
        for (int k = 0; k < e->nout; k++)
            reached |= (e->outs[k]->flags & TG_REACHED) != 0;
        if (!reached)
            continue;
        if (e->consumed) {
            tg_error("backward", "entry #%lld (%s) was already used by an "
                     "earlier backward and its gradients are gone. Did you "
                     "carry a tensor (a hidden state?) from one step into the "
                     "next without tg_detach, or call backward twice on one "
                     "graph? Detach the carried tensor, or run the forward "
                     "again after tg_tape_reset.", (long long)i, e->op->name);
            rc = -1;
            break;
        }
        arrput(*needed, i);
        for (int k = 0; k < e->nin; k++)
            if (e->in[k]->flags & TG_REQUIRES_GRAD)
                e->in[k]->flags |= TG_REACHED;
    }
    /* clear the marks - where there are some: an input without grad may
     * be a tensor other threads read at the same time (README, "Threads"),
     * and is never written */
    root->flags &= ~TG_REACHED;
    for (int64_t j = 0; j < arrlen(*needed); j++) {
        tg_entry *e = &tape[(*needed)[j]];
        for (int k = 0; k < e->nout; k++)
            e->outs[k]->flags &= ~TG_REACHED;
        for (int k = 0; k < e->nin; k++)
            if (e->in[k]->flags & TG_REACHED)
                e->in[k]->flags &= ~TG_REACHED;
    }
    return rc;
}

/* ---- the gradient-ready hook (for overlapping communication) ---------- */
static _Thread_local tg_grad_ready_fn ready_fn;
static _Thread_local void *ready_ud;

void tg_set_grad_ready_hook(tg_grad_ready_fn fn, void *ud)
{
    ready_fn = fn;
    ready_ud = ud;
}

/* ---- the sweep hook (for seeing the sweep: autograd/explore.c) ------- */
static _Thread_local tg_sweep_fn sweep_fn;
static _Thread_local void *sweep_ud;

void tg_set_sweep_hook(tg_sweep_fn fn, void *ud)
{
    sweep_fn = fn;
    sweep_ud = ud;
}

typedef struct last_use {
    int64_t j;      /* position in needed[] of the last entry adding into */
    tg_tensor *leaf;
} last_use;

/* For every leaf that requires grad and an entry of needed[] reads: the
 * last position (in sweep order) of an entry adding into its gradient,
 * in ascending order of that position. */
static last_use *leaf_last_uses(const int64_t *needed)
{
    last_use *lu = NULL;
    for (int64_t j = arrlen(needed) - 1; j >= 0; j--) {
        const tg_entry *e = &tape[needed[j]];
        for (int k = 0; k < e->nin; k++) {
            tg_tensor *x = e->in[k];
            if (x && x->entry < 0 && (x->flags & TG_REQUIRES_GRAD) &&
                !(x->flags & TG_REACHED)) {
                x->flags |= TG_REACHED;
                last_use u = {j, x};
                arrput(lu, u);
            }
        }
    }
    for (int64_t i = 0; i < arrlen(lu); i++)
        lu[i].leaf->flags &= ~TG_REACHED;
    /* found from the end: reverse into ascending j */
    for (int64_t a = 0, b = arrlen(lu) - 1; a < b; a++, b--) {
        last_use t = lu[a];
        lu[a] = lu[b];
        lu[b] = t;
    }
    return lu;
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
    /* before any gradient is touched: nothing it reads changed since */
    for (int64_t j = 0; j < arrlen(needed); j++)
        if (tg_entry_check_versions(needed[j], &tape[needed[j]], false) <
            0) {
            arrfree(needed);
            return -1;
        }
    last_use *ready = ready_fn ? leaf_last_uses(needed) : NULL;
    int64_t next_ready = 0;
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
        bool any = false;
        for (int k = 0; k < e->nout; k++)
            any |= e->outs[k]->grad != NULL;
        if (!any)
            continue; /* reached, but no consumer contributed */
        for (int k = 0; k < e->nin; k++)
            if (e->in[k]->flags & TG_REQUIRES_GRAD)
                ensure_grad(e->in[k], &pool);
        if (sweep_fn)
            sweep_fn(e, needed[j], false, sweep_ud);
        e->op->backward(e);
        e->consumed = true;
        if (sweep_fn)
            sweep_fn(e, needed[j], true, sweep_ud);
        if (tg_anomaly_mode_on() &&
            tg_anomaly_check_grads(needed[j], e) < 0) {
            free_pool(&pool);
            arrfree(needed);
            arrfree(ready);
            return -1;
        }
        /* leaves no later entry adds into: their gradients are final */
        while (next_ready < arrlen(ready) && ready[next_ready].j <= j)
            ready_fn(ready[next_ready++].leaf, ready_ud);
        /* every consumer of an output came later on the tape and has run:
         * its gradient is complete and, unless retained, no longer needed */
        for (int k = 0; k < e->nout; k++) {
            tg_tensor *out = e->outs[k];
            if (out->grad && !(out->flags & TG_RETAIN_GRAD) &&
                !(out->flags & TG_PERSISTENT))
                release_grad(out, &pool);
        }
    }
    /* (entries skipped above for want of a gradient: their leaves too) */
    while (next_ready < arrlen(ready))
        ready_fn(ready[next_ready++].leaf, ready_ud);
    arrfree(ready);
    free_pool(&pool);
    arrfree(needed);
    return 0;
}

int tg_backward(tg_tensor *loss)
{
    if (!loss) {
        tg_error("backward", "the loss is NULL (an earlier op failed)");
        return -1;
    }
    if (!tg_check_live("backward", 1, (const tg_tensor *[]){loss}))
        return -1;
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
    if (!tg_check_live("backward", 2, (const tg_tensor *[]){y, seed}))
        return -1;
    if (!tg_same_shape(y, seed)) {
        char a[96], b[96];
        tg_error("backward", "the seed gradient has shape %s but the output "
                 "has shape %s; they must be equal",
                 tg_shape_str(seed, a, sizeof a), tg_shape_str(y, b, sizeof b));
        return -1;
    }
    return sweep(y, seed);
}

tg_tape_mark tg_tape_mark_get(void)
{
    tg_tape_mark m = {arrlen(tape), tg_arena_get_mark(), tg_next_id()};
    return m;
}

/* ---- holds (tg_tape_hold) ---------------------------------------------
 * A stack: each hold names the tape length when it was made, and the tape
 * only grows between rewinds, so the holds a rewind or reset ends are on
 * top. */
typedef struct hold {
    int64_t from;
    void (*release)(void *obj);
    void *obj;
} hold;
static _Thread_local hold *holds; /* stb_ds array */

void tg_tape_hold(void (*release)(void *obj), void *obj)
{
    hold h = {arrlen(tape), release, obj};
    arrput(holds, h);
    tg_arena_thread_holds_memory_(); /* released when the thread ends */
}

static void release_holds(int64_t from)
{
    while (arrlen(holds) > 0 && arrlast(holds).from >= from) {
        hold h = arrpop(holds);
        h.release(h.obj);
    }
}

void tg_tape_rewind(tg_tape_mark m)
{
    if (m.arena.gen != tg_arena_generation()) {
        tg_error("tape_rewind", "the mark was taken in tape generation %u "
                 "and the tape is at generation %u: a tg_tape_reset since "
                 "has freed what it marked. Take marks and rewind to them "
                 "within one step", (unsigned)m.arena.gen,
                 (unsigned)tg_arena_generation());
        return;
    }
    TG_ASSERT(m.entries <= arrlen(tape));
    release_holds(m.entries);
    tg_forget_tangents_since(m.id); /* before the tensors holding them go */
    arrsetlen(tape, m.entries);
    tg_arena_rewind(m.arena);
}

void tg_tape_reset(void)
{
    tg_clear_tangents(); /* before the tensors holding them go */
    release_holds(0);
    arrsetlen(tape, 0);
    tg_arena_reset();
}

void tg_tape_free_all(void)
{
    tg_clear_tangents();
    release_holds(0);
    arrfree(holds);
    arrfree(traced_only);
    arrfree(tape);
    tape = NULL;
    tg_arena_release();
}

/* a thread that ends frees its tape before its arena goes */
__attribute__((constructor)) static void install_thread_exit(void)
{
    tg_arena_set_thread_exit_hook_(tg_tape_free_all);
}
