/*
 * autograd/tape.h - the tape: reverse-mode automatic differentiation.
 *
 * While a program computes, every differentiable op appends one *entry*
 * to the tape: which op ran, its output, its inputs, and whatever its
 * backward rule needs. The tape is therefore the computation written down
 * in the order it happened. tg_backward(loss) reads it backwards, from the
 * loss's entry down to the first, and calls each entry's backward rule,
 * which turns dL/d(output) into contributions to dL/d(input) for every
 * input. Because entries are visited in exact reverse order, every
 * consumer of a tensor has been processed before the entry that produced
 * it, so its gradient is complete when its turn comes. That is the whole
 * algorithm: a loop, no recursion, so a network unrolled over 10,000 time
 * steps costs 10,000 loop iterations and no stack.
 *
 * Why backward rules add (+=) into gradients: when one tensor feeds
 * several ops (an LSTM's h_t feeds four gates and the next step), the
 * chain rule says dL/dh is the *sum* of the contributions along every
 * path. Each consumer adds its share; the engine zeroes a gradient buffer
 * once, when it is created. A rule must never overwrite.
 *
 * Memory. The tape and every temporary tensor (op outputs, their
 * gradients, views) live in one arena (tensor/arena.h). tg_tape_reset()
 * ends a training step: it forgets every entry and frees every temporary
 * at once. Parameters are persistent tensors (tg_tensor_new) with their
 * gradients on the heap: those survive resets and *accumulate* over
 * backward calls until tg_zero_grad, as in PyTorch.
 *
 * Threads. The tape, the arena, the modes below (grad, step tag,
 * tracing), holds, tangents and the grad-ready hook are the calling
 * thread's: independent models train in parallel threads, and a thread's
 * tape is freed when it ends (README, "Threads"). Anomaly mode is
 * process-wide.
 *
 * Which tensors get gradients: a leaf gets one if marked with
 * tg_requires_grad; an op's output requires grad if any input does (and
 * recording is on). After backward, leaves keep their gradient in ->grad;
 * an intermediate tensor's gradient is dropped as soon as the sweep has
 * used it unless tg_retain_grad was called on it before backward.
 *
 * Example (the tanh of a linear map, and every gradient):
 *
 *     tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(2, 3)));
 *     tg_tensor *x = tg_randn(TG_SHAPE(3, 1), NULL, 0, 1);
 *     tg_tensor *y = tg_tanh(tg_matmul(W, x));
 *     tg_backward(tg_sum(y));          // W->grad now holds dL/dW
 *     tg_tape_print(stdout);           // one line per recorded op
 *     tg_tape_reset();                 // x, y and the tape are gone; W stays
 */
#ifndef TG_TAPE_H
#define TG_TAPE_H

#include "tensor/arena.h"
#include "tensor/tensor.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_entry tg_entry;

/* A backward rule: reads dL/d(out) from e->out->grad (e->outs[k]->grad for
 * an op with several outputs; NULL where no consumer contributed) and
 * e->saved/args, and adds into e->in[k]->grad for every input whose grad
 * is not NULL (the engine allocates a zeroed buffer for each input that
 * requires grad before calling the rule; inputs that need no gradient have
 * grad NULL). */
typedef void (*tg_backward_fn)(tg_entry *e);

/* An op, described once (a static const in its ops/ file) and named by
 * every tape entry it records. The engine never compares names or
 * function pointers: whatever it must know about an op is here.
 *  - backward: the reverse-mode rule.
 *  - jvp: the forward-mode rule (tangent of the output from the tangents of
 *    the inputs, tg_jvp); NULL for an op without one, which tg_jvp
 *    reports by name when it lies on the direction's path.
 *  - ew: for an elementwise op, its scalar forward and derivative rules as
 *    data (ops/fuse.h): what the fused cell programs run.
 *  - replay: runs the op again on new inputs laid out like the recorded
 *    ones, with the entry's arguments (fused programs re-run the ops they
 *    do not fuse this way); NULL: the op cannot be re-run (dropout draws
 *    random numbers), so a step containing it is not compiled.
 *  - replay_into: optional; the same, adding the result into a given
 *    tensor's numbers (linear: compiled steps accumulate h W^T + b into
 *    their slice of the input projection).
 *  - label: optional; writes the name shown by tg_tape_print and the DOT
 *    export (a fused group lists its member ops).
 *  - member: optional; the member ops of an entry that stands for
 *    several (a fused group), one by one. */
typedef struct tg_op {
    const char *name;
    tg_backward_fn backward;
    void (*jvp)(tg_entry *e);
    const struct tg_ew_rule *ew;
    tg_tensor *(*replay)(const tg_entry *e, tg_tensor *const *in);
    /* optional: replay adding the result into acc's numbers, in place */
    tg_tensor *(*replay_into)(const tg_entry *e, tg_tensor *const *in,
                              tg_tensor *acc);
    void (*label)(const tg_entry *e, char *buf, size_t cap);
    /* optional: for an entry that stands for several ops (a fused group),
     * the name of its i-th member op in the order they ran, NULL past the
     * last (the explorer draws the group as one node that opens to them) */
    const char *(*member)(const tg_entry *e, int i);
    unsigned flags;
    unsigned reads; /* TG_READS_*, below */
} tg_op;
/* flags: the output is a view of input 0 (same numbers, re-indexed by the
 * entry's gradient view, iarg, as in ops/shape.c) */
#define TG_OP_VIEW 1u
/* input 1 is a weight W used as x W^T: a tg_prepare_weight'ed W is faster */
#define TG_OP_WEIGHT1 2u
/* reads: which numbers the backward rule reads - and the forward-mode
 * rule, which applies the same derivatives to tangents - so that backward
 * and tg_jvp can refuse to run when one of them was changed in place
 * since the op ran (tensor/tensor.h, tg_version). TG_READS_ALL (0, the
 * default): every input and output; TG_READS_NONE: none (add, sum,
 * concat - changing their inputs afterwards is harmless; views need not
 * say it); or a set of TG_READS_IN(k) (k < 8) and TG_READS_OUT (the
 * outputs). */
#define TG_READS_ALL 0u
#define TG_READS_IN(k) (1u << (k))
#define TG_READS_OUT (1u << 8)
#define TG_READS_NONE (1u << 9)

/* Number of small scalar arguments an entry can keep. The file that
 * records an op names the slots it uses in an enum at its top (ops/
 * reduce.c: iarg[RD_DIM] is the reduced dim); the slots of the views,
 * read by several files, are named in ops/internal.h (TG_VIEW_OFF). */
#define TG_ENTRY_ARGS 8

struct tg_entry {
    const tg_op *op;         /* what ran: name, backward rule, ...        */
    tg_tensor *out;          /* its output (the first, if several)       */
    tg_tensor **outs;        /* nout outputs; outs[0] == out              */
    int nout;
    tg_tensor **in;          /* nin inputs (arena array)                  */
    int nin;
    int64_t iarg[TG_ENTRY_ARGS]; /* op-specific integers (dims, sizes)    */
    double farg[TG_ENTRY_ARGS];  /* op-specific reals (p, exponent)       */
    void *saved;             /* op-specific arena data (mask, indices)    */
    int64_t step;            /* user time-step tag (tg_tape_set_step)     */
    uint32_t *versions;      /* tg_version of in[0..nin-1] then outs[..],
                                when recorded (NULL when none is read)    */
    bool consumed;           /* a backward sweep has already used it      */
};

/* ---- recording (used by ops/) -----------------------------------------
 * tg_record is called by an op after computing its output. If recording is
 * on and any input requires grad, it appends an entry, marks out as
 * requiring grad and returns the entry (for the op to store its arguments
 * in); otherwise it returns NULL and records nothing. tg_record_multi is
 * the same for an op with several outputs (a fused group). */
tg_entry *tg_record(const tg_op *op, tg_tensor *out, int nin,
                    tg_tensor *const *in);
tg_entry *tg_record_multi(const tg_op *op, int nout, tg_tensor *const *outs,
                          int nin, tg_tensor *const *in);
/* The name an entry is shown under (op->label, or op->name). */
const char *tg_entry_label(const tg_entry *e, char *buf, size_t cap);
/* 0, or -1 after reporting the first tensor that entry #index reads
 * (tg_op.reads) and that was changed in place since it ran: its version
 * is no longer the one recorded. Backward and (forward_mode) tg_jvp call
 * it on every entry they would run, before running any. */
int tg_entry_check_versions(int64_t index, const tg_entry *e,
                            bool forward_mode);

/* Tracing (used by ops/fuse/fuse.c to compile a recurrent step): between
 * tg_tape_trace_begin and tg_tape_trace_end every op is recorded, even
 * with grad disabled or no input requiring grad, so that the tape holds
 * the whole step with its arguments. An entry recorded only because of
 * tracing ("traced only") does not mark its output as requiring grad, so
 * backward never reaches it. tg_tape_trace_begin returns the index the
 * first traced entry will have; tg_tape_trace_end(first, true) removes the
 * traced-only entries again (with grad disabled: all of them) and leaves
 * their outputs as plain temporaries. */
int64_t tg_tape_trace_begin(void);
void tg_tape_trace_end(int64_t first, bool drop_untracked);

/* ---- modes ------------------------------------------------------------ */
/* Turns recording on or off (on at start) and returns the previous state.
 * With recording off (evaluation, sampling) ops compute their outputs but
 * record nothing and no gradient is ever allocated. */
bool tg_set_grad_enabled(bool on);
bool tg_is_grad_enabled(void);

/* Inference mode (off at start; returns the previous state): recording
 * off, and a promise that the weights stay as they are unless changed
 * through the library (optimizer steps, tg_fill_, tg_copy_, loading) or
 * followed by tg_bump_version. In return a parameter used as a linear
 * weight keeps its packed copy between calls (ops/matmul.c) instead of
 * packing it for every call - sampling one token per call for a batch of
 * streams is then up to 2x faster. A weight whose numbers are written by
 * hand without tg_bump_version would be read stale. Turning it off turns
 * recording back to what it was when it was turned on. */
bool tg_set_inference_mode(bool on);
bool tg_inference_mode(void);

/* Anomaly mode: checks every op's output (recorded or not) and every
 * gradient produced by backward for NaN and infinity, and reports the
 * first one with the op, its tape entry, its inputs' shapes (marking those
 * that were already non-finite) and the time step (tg_tape_set_step).
 * Backward stops there and returns -1. Off by default; also turned on by
 * the environment variable TG_ANOMALY=1. Returns the previous state. */
bool tg_set_anomaly_mode(bool on);
bool tg_anomaly_mode(void);

/* ---- leaves and intermediates ---------------------------------------- */
/* Marks a leaf as needing a gradient; returns t. A persistent tensor gets a
 * zeroed heap buffer at once; a temporary one gets an arena buffer during
 * backward. */
tg_tensor *tg_requires_grad(tg_tensor *t);
/* Keeps the gradient of an intermediate tensor after backward (read it in
 * ->grad: contiguous, t's shape). Call before tg_backward. Returns t. */
tg_tensor *tg_retain_grad(tg_tensor *t);
/* A new header over t's numbers that is cut off from the tape: it needs no
 * gradient, and nothing flows back through it into t. */
tg_tensor *tg_detach(tg_tensor *t);
/* Sets t->grad to zeros (does nothing if t has no gradient buffer). */
void tg_zero_grad(tg_tensor *t);
void tg_zero_grads(tg_tensor *const *ts, int n);

/* ---- backward ---------------------------------------------------------
 * Computes dL/dx for every tensor x that requires grad and that loss
 * depends on. loss must have one element. Returns 0, or -1 after an error
 * (loss not scalar; tape already consumed; loss not recorded). */
int tg_backward(tg_tensor *loss);
/* The same for any output y, with dL/dy given (seed has y's shape):
 * computes the gradients of L = sum(y * seed). */
int tg_backward_seed(tg_tensor *y, const tg_tensor *seed);

/* Called during backward for every leaf that requires grad and that the
 * sweep reaches, as soon as its gradient is complete: no entry still to
 * run adds into it. Distributed training starts sending a parameter's
 * gradient then, while backward goes on (nn/dist.h). Leaves the sweep
 * does not reach are not reported. NULL (the default) turns it off. */
typedef void (*tg_grad_ready_fn)(tg_tensor *leaf, void *ud);
void tg_set_grad_ready_hook(tg_grad_ready_fn fn, void *ud);

/* Called during backward around each entry's backward rule: with after
 * false just before the rule runs, when every output's gradient is
 * complete (NULL for an output no consumer reached) and every input that
 * requires grad has its buffer, holding the shares added so far; with
 * after true just after, when the rule has added its shares. index is
 * the entry's place on the tape. What it may do: read. The explorer
 * (autograd/explore.h) records the sweep this way. NULL (the default)
 * turns it off; the calling thread's, like the tape. */
typedef void (*tg_sweep_fn)(const tg_entry *e, int64_t index, bool after,
                            void *ud);
void tg_set_sweep_hook(tg_sweep_fn fn, void *ud);

/* ---- forward mode -----------------------------------------------------
 * Reverse mode (tg_backward) gives the gradient of one output with
 * respect to every input in one sweep; forward mode gives the derivative
 * of every output along one direction v of the inputs - the Jacobian-
 * vector product J v - in one sweep forward over the tape: each entry's
 * output tangent follows from its inputs' tangents by the op's jvp rule
 * (tg_op.jvp), as its gradient follows from its output's in reverse.
 *
 *     tg_requires_grad(x);               // x takes part in the recording
 *     tg_tensor *y = f(x);               // recorded as usual
 *     tg_set_tangent(x, v);              // the direction, v of x's shape
 *     tg_jvp();                          // y->tangent = J v
 *
 * Leaves without a tangent count as constant. A tensor the direction
 * does not reach keeps ->tangent NULL, which means zero (what
 * torch.func.jvp returns as zeros, and torch.autograd.forward_ad as
 * None): tg_jvp returns 0 when the leaves given a direction require grad
 * but the outputs do not depend on them. What would make a zero wrong is
 * an error instead: no leaf given a direction; an empty tape (nothing
 * recorded: grad was disabled while computing); a leaf given a direction
 * that does not require grad and that no recorded op reads (the ops on it
 * were not recorded). An op without a jvp rule on the path is an error
 * that names it, and so is a tensor changed in place since an op on the
 * path read it (as backward refuses: the rule would mix new numbers with
 * what the op kept from the old ones); nothing is computed then.
 * Tangents of recorded tensors
 * live until the next tg_jvp or tg_tape_reset; those set on leaves until
 * tg_clear_tangents or tg_tape_reset, or until tg_tensor_free frees the
 * leaf (its direction goes with it; freeing it first is safe). */
int tg_set_tangent(tg_tensor *leaf, const tg_tensor *v);
/* Runs the sweep over the whole tape. 0, or -1 after an error. */
int tg_jvp(void);
/* The same sweep, but the rules' work is recorded on the tape like any
 * computation (PyTorch's create_graph=True): each recorded tensor's
 * tangent is then a recorded tensor too (tg_tangent, and ->tangent holds
 * its numbers), and reverse mode can differentiate it. With y = L a
 * scalar loss and v on the parameters, L's tangent is grad L . v, and
 * its gradient is the Hessian-vector product H v ("reverse over
 * forward"; nn/curvature.h). Compiled cell steps (ops/fuse.h) have no
 * recorded rule: record the model with fusion off. The directions set on
 * leaves count as constants. 0, or -1 after an error. */
int tg_jvp_create_graph(void);
/* True while tg_jvp_create_graph runs (for the rules: record, or not). */
bool tg_jvp_records(void);
/* t's tangent after tg_jvp_create_graph: a recorded tensor of t's shape,
 * NULL where t does not move along the direction. */
tg_tensor *tg_tangent(const tg_tensor *t);
/* Forgets every tangent (those set on leaves included). */
void tg_clear_tangents(void);
/* Forgets the directions set on temporaries made since tg_next_id()
 * returned `since` (tg_tape_rewind, before it frees them). */
void tg_forget_tangents_since(uint32_t since);

/* ---- the tape as a whole ------------------------------------------ */
typedef struct tg_tape_mark {
    int64_t entries;
    tg_arena_mark arena;
    uint32_t id; /* tg_next_id(): the first tensor made after the mark */
} tg_tape_mark;

/* Holds: an object that entries point into (a compiled step's program,
 * ops/fuse.h, is the saved data of its groups' entries) must live as long
 * as they do. tg_tape_hold(release, obj) ties obj to the entries recorded
 * from now on: release(obj) is called once the tape forgets them - at
 * tg_tape_reset, or at a tg_tape_rewind to before this call. */
void tg_tape_hold(void (*release)(void *obj), void *obj);

/* Forgets every entry and frees every temporary tensor (arena reset). */
void tg_tape_reset(void);
/* Remember the tape's length and the arena's fill; rewinding forgets the
 * entries and frees the temporaries made since (and the directions set
 * on them, tg_set_tangent). A mark is good until the
 * next tg_tape_reset: rewinding to an older one is an error. Tensors
 * freed by a rewind are not caught by tg_check_live (their generation
 * goes on): do not use them. */
tg_tape_mark tg_tape_mark_get(void);
void tg_tape_rewind(tg_tape_mark m);
/* Frees the tape and the arena's memory (end of program; leak checkers). */
void tg_tape_free_all(void);

int64_t tg_tape_size(void);
tg_entry *tg_tape_entry(int64_t i);
/* Tags subsequently recorded entries with a time step (for printing and
 * for anomaly reports); -1 (the default) means none, TG_STEP_ALL an op
 * over all time steps at once with time along dim 0 (the sequence layer's
 * input projection: anomaly reports then name the step of the bad row). */
#define TG_STEP_ALL (-2)
void tg_tape_set_step(int64_t step);
int64_t tg_tape_step(void);

/* ---- seeing the tape (autograd/inspect.c) ----------------------------
 * One line per entry: index, op, inputs (name or #producer, shape) and
 * the output's shape. */
void tg_tape_print(FILE *f);
/* The graph that leads to root (NULL: the whole tape) as Graphviz DOT:
 * a box per op, an ellipse per tensor labelled with name, shape, and a
 * summary of its values (and gradient, after backward). Render with
 * `dot -Tsvg graph.dot -o graph.svg`. */
void tg_tape_dot(FILE *f, const tg_tensor *root);

#ifdef __cplusplus
}
#endif

#endif
