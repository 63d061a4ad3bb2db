/*
 * autograd/forward.c - forward mode: Jacobian-vector products in one sweep
 * forward over the tape (autograd/tape.h, tg_jvp).
 *
 * Reverse mode walks the tape from the end and asks each op "given the
 * gradient of your output, what are the gradients of your inputs?". Forward
 * mode walks it from the start and asks "given how your inputs move along
 * the direction v, how does your output move?" - the op's jvp rule. One
 * sweep yields J v for every recorded tensor at once, for ONE direction;
 * reverse mode yields v^T J for every input at once, for ONE output. That
 * is the whole cost trade-off: n inputs and m outputs need n forward sweeps
 * or m reverse sweeps for the full Jacobian.
 */
#include "autograd/tape.h"
#include "tensor/arena.h"
#include "tensor/ds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* per thread, like the tape the tangents belong to */
static _Thread_local tg_tensor **leaves; /* stb_ds array: tensors given a
                                            tangent */
static _Thread_local bool swept;   /* tg_jvp ran since the last clear */
static _Thread_local bool records; /* tg_jvp_create_graph is running */

bool tg_jvp_records(void)
{
    return records;
}

tg_tensor *tg_tangent(const tg_tensor *t)
{
    return t ? t->tangent_rec : NULL;
}

/* tg_tensor_free's hook (tensor/tensor.h): a leaf with a tangent is
 * being freed - off the list, which must never hold a freed tensor (the
 * next tg_clear_tangents, at every tg_tape_reset, writes to each) */
static void forget_leaf(tg_tensor *t)
{
    for (int64_t i = 0; i < arrlen(leaves); i++)
        if (leaves[i] == t) {
            arrdel(leaves, i);
            break;
        }
    free(t->tangent);
    t->tangent = NULL;
}

/* installed once, when the library loads: before any thread could race
 * on it */
__attribute__((constructor)) static void install_hook(void)
{
    tg_set_tangent_free_hook(forget_leaf);
}

int tg_set_tangent(tg_tensor *t, const tg_tensor *v)
{
    if (!tg_check_live("set_tangent", 2, (const tg_tensor *[]){t, v}))
        return -1;
    if (!tg_same_shape(t, v)) {
        char a[96], b[96];
        tg_error("set_tangent", "the direction has shape %s but the tensor "
                 "has shape %s", tg_shape_str(v, a, sizeof a),
                 tg_shape_str(t, b, sizeof b));
        return -1;
    }
    if (t->entry >= 0) {
        tg_error("set_tangent", "the tensor is the output of tape entry #%d: "
                 "give directions to leaves, tg_jvp computes the rest",
                 (int)t->entry);
        return -1;
    }
    bool known = false;
    for (int64_t i = 0; i < arrlen(leaves) && !known; i++)
        known = leaves[i] == t;
    if (!known) {
        free(t->tangent);
        t->tangent = tg_xmalloc((size_t)(t->numel ? t->numel : 1) *
                                sizeof(tg_real));
        arrput(leaves, t);
        tg_arena_thread_holds_memory_(); /* the list, freed at its end */
    }
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(t->ndim, t->shape, cs);
    tg_strided_copy(t->ndim, t->shape, t->tangent, cs, v->data, v->stride,
                    false);
    return 0;
}

void tg_clear_tangents(void)
{
    for (int64_t i = 0; i < arrlen(leaves); i++) {
        free(leaves[i]->tangent);
        leaves[i]->tangent = NULL;
    }
    arrfree(leaves);
    leaves = NULL;
    if (!swept)
        return; /* (tg_tape_reset calls this at every step: keep it free) */
    swept = false;
    for (int64_t i = 0; i < tg_tape_size(); i++) {
        tg_entry *e = tg_tape_entry(i);
        for (int k = 0; k < e->nout; k++) {
            e->outs[k]->tangent = NULL; /* arena buffers: freed with it */
            e->outs[k]->tangent_rec = NULL;
        }
    }
}

void tg_forget_tangents_since(uint32_t since)
{
    for (int64_t i = arrlen(leaves) - 1; i >= 0; i--) {
        tg_tensor *t = leaves[i];
        if (t->gen == 0 || !tg_made_since(t, since))
            continue; /* persistent, or older than the mark: stays */
        free(t->tangent);
        t->tangent = NULL;
        arrdel(leaves, i);
    }
}

/* "x[2, 3]" or "t7[2, 3]", for messages */
static const char *leaf_str(const tg_tensor *t, char *buf, size_t cap)
{
    char shape[96];
    tg_shape_str(t, shape, sizeof shape);
    if (t->name)
        snprintf(buf, cap, "'%s'%s", t->name, shape);
    else
        snprintf(buf, cap, "t%u%s", (unsigned)t->id, shape);
    return buf;
}

/* Before a sweep over the first n entries: 0, or -1 after reporting why
 * its answer would be wrong rather than zero - no direction at all, an
 * empty tape, or a leaf given a direction whose ops were not recorded (it
 * does not require grad, and no recorded op reads it). A leaf that
 * requires grad and that nothing reads is not an error: what it would
 * move does not depend on it, and its tangents are zero (NULL). */
static int check_reachable(int64_t n)
{
    if (arrlen(leaves) == 0) {
        tg_error("jvp", "no direction: no leaf has a tangent. Give the "
                 "leaves their direction with tg_set_tangent, then call "
                 "tg_jvp");
        return -1;
    }
    if (n == 0) {
        tg_error("jvp", "the tape is empty: nothing was recorded for the "
                 "direction to go through. Compute with recording on "
                 "(tg_set_grad_enabled) from leaves marked with "
                 "tg_requires_grad, then call tg_jvp");
        return -1;
    }
    for (int64_t l = 0; l < arrlen(leaves); l++) {
        const tg_tensor *t = leaves[l];
        bool read = (t->flags & TG_REQUIRES_GRAD) != 0;
        for (int64_t i = 0; i < n && !read; i++) {
            const tg_entry *e = tg_tape_entry(i);
            for (int k = 0; k < e->nin && !read; k++)
                read = e->in[k] == t;
        }
        if (!read) {
            char buf[160];
            tg_error("jvp", "leaf %s has a direction, but no recorded op reads "
                     "it: it does not require grad, so the ops that used it "
                     "were not recorded (an op is recorded when one of its "
                     "inputs requires grad) and its direction would be "
                     "dropped. Mark it with tg_requires_grad before "
                     "computing with it", leaf_str(t, buf, sizeof buf));
            return -1;
        }
    }
    return 0;
}

/* Before a sweep over the first n entries: 0, or -1 after reporting a
 * tensor changed in place since an entry that the sweep would run read
 * it (tg_entry_check_versions, as backward does) - the rule would
 * combine the new numbers with what the entry kept from the old ones (an
 * output, a packed weight, a fused group's recomputed values), so the
 * two paths of a compiled step would even disagree. The entries the
 * sweep runs are those with an input that moves: a leaf given a
 * direction, or an output of such an entry (one earlier on the tape).
 * Every entry a compiled step records is checked the same way: its
 * prepared weights and replayed views count their input's changes
 * (ops/matmul.c tg_prepare_weight, ops/shape.c), and a fused group keeps
 * the versions of all its inputs, which its forward-mode rule reads. */
static int check_unchanged(int64_t n)
{
    bool *moves = tg_xcalloc((size_t)(n ? n : 1), sizeof *moves);
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        const tg_entry *e = tg_tape_entry(i);
        for (int k = 0; k < e->nin && !moves[i]; k++) {
            const tg_tensor *t = e->in[k];
            if (t)
                moves[i] = t->entry >= 0 && t->entry < i ? moves[t->entry]
                                                         : t->tangent != NULL;
        }
        if (moves[i] && tg_entry_check_versions(i, e, true) < 0)
            rc = -1;
    }
    free(moves);
    return rc;
}

static int sweep(bool create_graph)
{
    int64_t n = tg_tape_size(); /* (a recording sweep appends entries) */
    if (check_reachable(n) < 0)
        return -1;
    swept = true;
    for (int64_t i = 0; i < n; i++) { /* forget an earlier direction's */
        tg_entry *e = tg_tape_entry(i);
        for (int k = 0; k < e->nout; k++) {
            e->outs[k]->tangent = NULL;
            e->outs[k]->tangent_rec = NULL;
        }
    }
    if (check_unchanged(n) < 0)
        return -1;
    /* the rules compute with ops: recorded only when asked */
    bool was = tg_set_grad_enabled(create_graph);
    records = create_graph;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        /* a copy: a recording rule grows the tape, which may move it */
        tg_entry e = *tg_tape_entry(i);
        bool moves = false;
        for (int k = 0; k < e.nin; k++)
            moves |= e.in[k] && e.in[k]->tangent;
        if (!moves)
            continue; /* constant along v: tangents stay zero (NULL) */
        if (!e.op->jvp) {
            char buf[128];
            tg_error("jvp", "op '%s' (tape entry #%lld) has no forward-mode "
                     "rule yet", tg_entry_label(&e, buf, sizeof buf),
                     (long long)i);
            rc = -1;
            break;
        }
        e.op->jvp(&e);
        for (int k = 0; k < e.nout; k++)
            if (!e.outs[k]->tangent) { /* a rule that failed (an error) */
                rc = -1;
                break;
            }
    }
    records = false;
    tg_set_grad_enabled(was);
    return rc;
}

int tg_jvp(void)
{
    return sweep(false);
}

int tg_jvp_create_graph(void)
{
    return sweep(true);
}
