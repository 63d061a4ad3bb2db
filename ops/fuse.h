/*
 * ops/fuse.h - recurrent steps compiled into fused programs.
 *
 * A recurrent cell is a few lines of primitive ops (nn/cells.c), run once
 * per time step. Run as written, every op is dispatched, writes a fresh
 * buffer, walks memory once and keeps its output until backward: an LSTM
 * step is 16 tape entries, 9 of them elementwise passes over [B, H].
 *
 * A program is the step traced once and rewritten:
 *   - ops whose inputs are all parameters (a chunk of weight_hh) move out
 *     of the loop: they run once per sequence (the "preamble"), and every
 *     weight a step multiplies by is prepared there (tg_prepare_weight:
 *     packed once, its gradient over all steps one product). A step
 *     output among them (a state that depends on no step input) is still
 *     a tensor of its own at every step, as unfused: a recorded copy;
 *   - add(xp, linear(h, W, b)), where xp is an input the caller gave away
 *     (the layer's slice of its own input projection), becomes linear_into:
 *     the product is added into xp's numbers, no new buffer;
 *   - elementwise ops, and the views between them (the chunks of an
 *     LSTM's pre-activation), are fused into groups. A group runs as one
 *     pass per step over cache-sized blocks with a small vector machine,
 *     and records ONE tape entry with all its outputs. Its backward
 *     applies each member op's derivative rule in reverse order - the
 *     same scalar rules the ops declare in their descriptors
 *     (ops/internal.h). There is no hand-written LSTM or GRU backward: a
 *     user's cell is fused exactly like the built-in ones. An output
 *     whose gradient is retained (tg_retain_grad(out.h[t])) gets all of
 *     it, what members of its own group that read it give included;
 *   - what a group's backward needs is planned: expensive values (the
 *     gates) are stored over given-away inputs it no longer needs, the
 *     cheap ones are recomputed block by block;
 *   - every other op (linear, matmul, reductions, ...) is re-run through
 *     its descriptor's replay.
 * For an LSTM step that leaves h and c, plus the gates written over the
 * step's own slice of the projection, against twelve [B, H]-sized buffers
 * and a [B, 4H] product unfused.
 *
 * What a step may do to be compiled: compute the same ops every step,
 * depending only on its inputs, persistent tensors (the cell's
 * parameters), constants made in the step and what it reads through its
 * declared state block (below); no random numbers (dropout has no replay,
 * so such a step simply runs unfused). A step that cannot be compiled
 * runs as written; tg_prog_why says why.
 *
 * Guards. A program is the step as it ran once; like torch.compile's
 * guards, it records what that run assumed and tg_prog_check tests it
 * before each use (the sequence layer then traces again):
 *   - the inputs' shapes and strides;
 *   - the state block (tg_prog_env: a cell's user block, nn/cell.h): its
 *     address and a copy of its bytes, compared with memcmp. C values
 *     read from it (a scale, a schedule) become constants of the program,
 *     so any change of a byte means a new trace. This is the one channel
 *     for values the compiler cannot see: a step whose state block has an
 *     undeclared size is not compiled at all (never a stale result);
 *   - every tensor captured from outside the step, by identity (address
 *     and tg_tensor.id). Persistent tensors (parameters, buffers) are read
 *     live; a temporary made before the step is accepted only if its
 *     address is in the state block (so that replacing it is seen), else
 *     the step is refused with the op's name. Their versions (tg_version)
 *     are taken when a sequence begins: a change during the sequence
 *     recomputes the step-invariant part (packed weights, weight slices);
 *   - constants made in the step are copied into the program.
 * What it cannot guard, and documents instead (as JAX does for closed-over
 * values): C values the step reads from anywhere but its state block (a
 * global variable) are baked in when traced. Each failure is logged:
 * tg_prog_why of the new program lists the guard failures that led to it.
 * Cost per step: a handful of comparisons (docs/bench_table.md).
 *
 * Lifetimes. The entries a program records point into it, so it is
 * reference counted: its owner holds one reference (tg_prog_free drops
 * it) and the tape another while entries use it (tg_tape_hold). A program
 * dropped while forward results that use it await backward lives until
 * the tape forgets them; any number of programs (batch sizes) may be in
 * flight.
 *
 * The unfused path stays the reference: tg_set_fusion(false), or the
 * environment variable TG_FUSE=0, turns compilation off everywhere.
 * tests/grad_fuse.c checks both paths agree for every built-in cell and
 * for cells written to reach every code of the vector machine.
 */
#ifndef TG_OPS_FUSE_H
#define TG_OPS_FUSE_H

#include "autograd/tape.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_prog tg_prog;

/* Fusion on or off (on by default; TG_FUSE=0 in the environment turns it
 * off), for the whole process: set it before threads start. Returns the
 * previous state. */
bool tg_set_fusion(bool on);
bool tg_fusion_enabled(void);

/* A step function: nin inputs -> nout outputs (for a cell: xp and the
 * states in, the next states out). */
typedef void (*tg_step_fn)(void *ctx, tg_tensor *const *in, tg_tensor **out);

/* What a step reads besides tensors: a block of bytes (a cell's user
 * block), guarded by comparison. block NULL: none. block non-NULL with
 * size 0: of unknown size - the step is not compiled. */
typedef struct tg_prog_env {
    const void *block;
    size_t size;
} tg_prog_env;

/* Runs step(ctx, in, out) once, the ordinary way, while tracing it, and
 * compiles the trace. Returns a program, or NULL if the step itself failed
 * (an op reported an error). If the program compiled, the traced step is
 * undone (tape and arena rewound, out[] NULL): run the program for this
 * step too, so that results never depend on whether a program was cached.
 * If it did not (tg_prog_ok false, tg_prog_why says why), out[] holds the
 * step's results as written. The caller owns the program: tg_prog_free.
 * donate: bit k set if the numbers of in[k] may be overwritten when the
 * program runs (nothing reads them afterwards). env: what else the step
 * reads (NULL: nothing). */
tg_prog *tg_prog_trace(tg_step_fn step, void *ctx, int nin,
                       tg_tensor *const *in, int nout, tg_tensor **out,
                       unsigned donate, const tg_prog_env *env);
bool tg_prog_ok(const tg_prog *p);
/* Not compiled: why. Compiled: the guard failures that led to this
 * program being traced (newest last; "" for a first trace). */
const char *tg_prog_why(const tg_prog *p);
/* Appends a line to tg_prog_why's log (the sequence layer says where a
 * guard failed). */
void tg_prog_note(tg_prog *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* true if in[] are laid out as the traced inputs were (same shapes and
 * strides), so the program may run on them */
bool tg_prog_fits(const tg_prog *p, int nin, tg_tensor *const *in);
/* Every guard (above) at once: NULL if the program may run on in[] with
 * env, else what failed, in words (valid until the next call). */
const char *tg_prog_check(tg_prog *p, int nin, tg_tensor *const *in,
                          const tg_prog_env *env);
/* Starts a sequence: runs the step-invariant ops (views and products of
 * parameters) once, and takes the versions of the captured tensors. Their
 * results live on the tape until tg_tape_reset. */
int tg_prog_begin(tg_prog *p);
/* One step: out[k] for in[k] (a captured tensor changed in place since
 * tg_prog_begin: the step-invariant part is run again first). 0, or -1
 * after reporting an error. */
int tg_prog_run(tg_prog *p, tg_tensor *const *in, tg_tensor **out);
/* The program as text: preamble, groups with their member ops, replays. */
void tg_prog_print(const tg_prog *p, FILE *f);
/* Drops the owner's reference (the tape may hold another, above). */
void tg_prog_free(tg_prog *p);

#ifdef __cplusplus
}
#endif

#endif
