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

#include "tensor/tensor.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct tg_entry tg_entry;

/* A backward rule: reads e->out->grad (dL/d out) and e->saved/args, and
 * adds into e->in[k]->grad for every input whose grad is not NULL (the
 * engine allocates a zeroed buffer for each input that requires grad
 * before calling the rule; inputs that need no gradient have grad NULL). */
typedef void (*tg_backward_fn)(tg_entry *e);

/* Number of small scalar arguments an entry can keep. */
#define TG_ENTRY_ARGS 8

struct tg_entry {
    const char *op;          /* "matmul", "sigmoid", ...                  */
    tg_backward_fn backward;
    tg_tensor *out;
    tg_tensor **in;          /* nin inputs (arena array)                  */
    int nin;
    int64_t iarg[TG_ENTRY_ARGS]; /* op-specific integers (dims, sizes)    */
    double farg[TG_ENTRY_ARGS];  /* op-specific reals (p, exponent)       */
    void *saved;             /* op-specific arena data (mask, indices)    */
    int64_t step;            /* user time-step tag (tg_tape_set_step)     */
    bool consumed;           /* a backward sweep has already used it      */
};

/* ---- recording (used by ops/) -----------------------------------------
 * tg_record is called by an op after computing its output. If recording is
 * on and any input requires grad, it appends an entry, marks out as
 * requiring grad and returns the entry (for the op to store its arguments
 * in); otherwise it returns NULL and records nothing. */
tg_entry *tg_record(const char *op, tg_backward_fn backward, tg_tensor *out,
                    int nin, tg_tensor *const *in);

/* ---- modes ------------------------------------------------------------ */
/* Turns recording on or off (on at start) and returns the previous state.
 * With recording off (evaluation, sampling) ops compute their outputs but
 * record nothing and no gradient is ever allocated. */
bool tg_set_grad_enabled(bool on);
bool tg_is_grad_enabled(void);

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

/* Lets a backward rule postpone work to the end of the sweep: fn(ctx) runs
 * once after every entry has been processed, before tg_backward returns
 * (in the order registered). The linear op uses it to compute the weight
 * gradient of a recurrent matrix once for all time steps (one large
 * product instead of T small ones). */
void tg_backward_defer(void (*fn)(void *ctx), void *ctx);

/* ---- the tape as a whole ------------------------------------------ */
typedef struct tg_tape_mark {
    int64_t entries;
    int64_t arena_chunk;
    size_t arena_used;
} tg_tape_mark;

/* Forgets every entry and frees every temporary tensor (arena reset). */
void tg_tape_reset(void);
/* Remember the tape's length and the arena's fill; rewinding forgets the
 * entries and frees the temporaries made since. */
tg_tape_mark tg_tape_mark_get(void);
void tg_tape_rewind(tg_tape_mark m);
/* Frees the tape and the arena's memory (end of program; leak checkers). */
void tg_tape_free_all(void);

int64_t tg_tape_size(void);
tg_entry *tg_tape_entry(int64_t i);
/* Tags subsequently recorded entries with a time step (for printing and
 * for anomaly reports); -1 (the default) means none. */
void tg_tape_set_step(int64_t step);

/* ---- seeing the tape (autograd/inspect.c) ----------------------------
 * One line per entry: index, op, inputs (name or #producer, shape) and
 * the output's shape. */
void tg_tape_print(FILE *f);
/* The graph that leads to root (NULL: the whole tape) as Graphviz DOT:
 * a box per op, an ellipse per tensor labelled with name, shape, and a
 * summary of its values (and gradient, after backward). Render with
 * `dot -Tsvg graph.dot -o graph.svg`. */
void tg_tape_dot(FILE *f, const tg_tensor *root);

#endif
