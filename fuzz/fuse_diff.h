/*
 * fuzz/fuse_diff.h - what the files of the differential fuzzer of the
 * step compiler (fuzz/README.md) and its seeded runner share:
 *   fuzz/fuse_diff_gen.c,    bytes -> a random cell: the program of its
 *   fuzz/fuse_diff_shapes.c  step (fuzz/fuse_diff_gen.h, fuse_diff_ops.h)
 *   fuzz/fuse_diff_step.c    the byte reader, the switches, the step
 *                            that runs a program, the program as C
 *   fuzz/fuse_diff.c         bytes -> a schedule; the schedule run as
 *                            written and compiled, compared
 *   fuzz/fuse_diff_cov.c     what the runs reached
 *   tests/fuse_fuzz.c        the same check on inputs made from fixed
 *                            seeds, in `make test`
 * Built in double precision (-DTG_DOUBLE) only: the comparison is to
 * 1e-10, which float cannot resolve.
 */
#ifndef TG_FUZZ_FUSE_DIFF_H
#define TG_FUZZ_FUSE_DIFF_H

#include "nn/rnn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef TG_DOUBLE
#error "fuzz/fuse_diff compares to 1e-10: build it with -DTG_DOUBLE"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the byte reader ---------------------------------------------------
 * Every choice takes one byte; past the end every byte reads 0, which is
 * always the plainest choice (the first of a list, the low end of a
 * range), so a short input is a small program and a short schedule. */
typedef struct fd_bytes {
    const uint8_t *p;
    size_t n, at;
} fd_bytes;

unsigned fd_byte(fd_bytes *b);
int fd_pick(fd_bytes *b, int n);             /* 0..n-1            */
int fd_range(fd_bytes *b, int lo, int hi);   /* lo..hi            */
bool fd_chance(fd_bytes *b, int percent);    /* 0: always false   */

/* ---- known bugs --------------------------------------------------------
 * Each has a scenario the fuzzer generates only when its switch is on
 * (FUSE_DIFF_BUGS=h or all in the environment adds to FD_FIXED, below),
 * so that it runs clean while the fix is being made:
 *   a  several batch sizes (or a re-trace) while the tape still uses a
 *      program: forwards at two B before one backward, a step whose
 *      output is a view, captured state changed with a forward pending
 *   b  captured state: a step reads a scale and a mask tensor through
 *      c->user (declared with tg_cell_type.user_size when the library
 *      has it: FUSE_DIFF_USER_SIZE), changed between calls
 *   c  strided weights (column slices, transposes, stepped rows of a
 *      parameter) given to tg_linear
 *   d  a step returning a [1, H] or [H] state (broadcast over the batch;
 *      compiled, the next step traces again: bug a)
 * and those the fuzzer found (fuzz/README.md lists them all):
 *   e  a 0-d value computed in a fused group (an elementwise op on
 *      scalars, a select or squeeze down to 0-d of a group's value): the
 *      group makes it [1], and the group or op that reads it next stops
 *      ("laid out unlike the traced one")
 *   f  a parameter changed in place between forward and backward: both
 *      paths refuse the backward, but the compiled one's message names
 *      op 'prepare' and its input 0 instead of the user's 'linear'
 *   g  a fused group with several outputs marks every one as requiring
 *      grad when any input does: an output that depends on nothing that
 *      requires grad can be backpropagated compiled, not unfused (the
 *      fuzzer adds 0 * sum(a leaf) to its losses while g is off, and
 *      does not compare the retained gradient of an h_t that requires no
 *      grad unfused)
 *   h  tg_retain_grad(out.h[t]) when the step reads h_t again (another
 *      state computed from it): compiled, h_t's retained gradient lacks
 *      what flows back through that read, inside its fused group (the
 *      fuzzer retains h[t] only of cells whose h_t is read by nothing
 *      while h is off)
 *   i  anomaly mode, an error handler and a NaN in x: the sequence
 *      layer's select of x_t reports and returns NULL, the step is traced
 *      with that NULL input and the compiler dereferences it (SIGSEGV in
 *      ops/fuse/fuse_plan.c new_val); unfused, tg_rnn_forward returns 0
 *   j  a state computed from parameters and constants only is computed
 *      once per sequence: out.h[t] is one tensor for every t, and the
 *      gradient it retains is the sum over the steps (the fuzzer retains
 *      h[t] only of cells whose h_t depends on a step input while j is
 *      off)
 *   k  tg_contiguous of a view that is contiguous when traced but not
 *      when the program runs (a transpose of a fused group's transposed
 *      output: the group makes it contiguous): the no-op is not
 *      replayed, the step returns a strided state, and the next step
 *      traces again (with a backward pending: bug a's crash). While k is
 *      off the fuzzer copies such outputs with tg_add_scalar(v, 0)
 *   l  a parameter changed in place after the forward, then tg_jvp: no
 *      version check refused it (backward would); unfused, the tangents
 *      used the new numbers with the old activations, compiled a weight
 *      packed before the change (B = 8) - two different answers, no
 *      error. Fixed: tg_jvp checks the versions of every entry it would
 *      run, as backward does */
enum { FD_BUG_A, FD_BUG_B, FD_BUG_C, FD_BUG_D, FD_BUG_E, FD_BUG_F, FD_BUG_G,
       FD_BUG_H, FD_BUG_I, FD_BUG_J, FD_BUG_K, FD_BUG_L, FD_NBUGS };
/* Fixed, each with its regression test (tests/grad_fuse_guards.c, the
 * versions of views and prepared weights): their scenarios always run. */
#define FD_FIXED                                                           \
    (1u << FD_BUG_A | 1u << FD_BUG_B | 1u << FD_BUG_C | 1u << FD_BUG_D |   \
     1u << FD_BUG_E | 1u << FD_BUG_F | 1u << FD_BUG_G | 1u << FD_BUG_H |   \
     1u << FD_BUG_I | 1u << FD_BUG_J | 1u << FD_BUG_K | 1u << FD_BUG_L)
extern unsigned fd_bugs; /* bit k: switch k on */
/* fd_bugs from FUSE_DIFF_BUGS; -1 after printing why if unreadable */
int fd_bugs_from_env(void);

/* ---- the program of a random cell --------------------------------------
 * Values 0..nstate are the step's inputs (xp or x, then the states); each
 * instruction makes one more. Dimensions are sizes, or FD_B: the batch,
 * known when the step runs. */
#define FD_B (-1)
#define FD_MAXV 160
#define FD_MAXP 16

typedef struct fd_val {
    int nd, d[3];
    double lo, hi; /* every number lies in [lo, hi] */
    bool contig;   /* certainly laid out contiguously */
    bool vary;     /* depends on the step's inputs */
    bool noisy;    /* may sit on a plateau made by cancellation - a
                      clamp's top, hi + rounding - or derives from one:
                      a kink (relu, step) at it would flip on rounding */
} fd_val;

typedef struct fd_ins {
    unsigned char op;
    short a, b, c; /* operand values (-1: none) */
    int i[4];      /* integer arguments */
    double k;      /* a real argument */
} fd_ins;

typedef struct fd_param {
    char name[8];
    int nd, d[2];
} fd_param;

/* features: what a program contains, for the coverage report */
enum {
    FD_F_COLSLICE_LINEAR = 1u << 0, /* a strided weight in tg_linear      */
    FD_F_WRONG_SHAPE = 1u << 1,     /* an output not [B, H]               */
    FD_F_ROW1 = 1u << 2,            /* ... one that broadcasts ([1,H],[H]) */
    FD_F_CAPTURED = 1u << 3,        /* reads c->user                      */
    FD_F_UNDECLARED = 1u << 4,      /* ... without declaring user_size    */
    FD_F_VIEW_OUT = 1u << 5,        /* an output that is a view           */
    FD_F_PASSTHROUGH = 1u << 6,     /* an output that is an input state   */
    FD_F_SLICED_W = 1u << 7,        /* a weight sliced from a parameter   */
    FD_F_BATCH_MIX = 1u << 8,       /* a reduction or product over B      */
    FD_F_H_READ = 1u << 9,          /* the output h_t is read in the step */
    FD_F_H_FIXED = 1u << 10,        /* h_t depends on no step input       */
    FD_F_DEAD_READ = 1u << 11,      /* a value no output depends on reads
                                       a parameter (or a view of one) or
                                       the mask                          */
};

typedef struct fd_prog {
    int nstate, gates, I, H, L;
    double dropout;
    int nv, nins;
    fd_val v[FD_MAXV];   /* v[k] for k > nstate: made by ins[k - nstate - 1] */
    fd_ins ins[FD_MAXV];
    int out[TG_CELL_MAX_STATE];
    fd_param params[FD_MAXP]; /* extra parameters, made by fd_init */
    int nparams;
    unsigned features;
} fd_prog;

/* A random program from the bytes, within the switches of fd_bugs. */
void fd_gen(fd_bytes *b, fd_prog *p);
/* The program as C: the body of a step function. */
void fd_print(const fd_prog *p, FILE *f);

/* The cell type that runs fd_cur (one program at a time: the fuzzer runs
 * on one thread). */
extern const fd_prog *fd_cur;
extern tg_cell_type fd_type;
void fd_type_set(const fd_prog *p); /* fd_type for p, fd_cur = p */

/* what a captured-state cell reads through c->user */
typedef struct fd_user {
    double scale;
    tg_tensor *mask; /* [H], not a parameter */
} fd_user;

/* named in the report of a difference (the seeded runner: its seed) */
extern const char *fd_input_label;

/* ---- coverage (fuzz/fuse_diff_cov.c) --------------------------------------
 * What the compiled runs reached, besides the vector machine codes and
 * guards that the library counts (ops/fuse/fuse_stats.h). X(name, bug, text):
 * a scenario must be reached by the seeded runner unless bug is k + 1 and
 * known bug k's switch is off. */
#define FD_SCENARIOS(X)                                                        \
    X(COMPILED, 0, "a layer's step compiled and run")                          \
    X(REFUSED, 0, "a step not compiled (run as written)")                      \
    X(RETRACE, 0, "a compiled step traced again (its layout guard failed)")    \
    X(MULTI_FWD, 0, "several forwards recorded before one backward")           \
    X(MULTI_B, FD_BUG_A + 1, "... at several batch sizes")                     \
    X(VIEW_OUT, FD_BUG_A + 1, "a step output that is a view")                  \
    X(NOGRAD_BETWEEN, 0, "a no-grad forward between forward and backward")     \
    X(TOGGLE, 0, "fusion switched between forwards before a backward")         \
    X(JVP_X, 0, "tg_jvp, tangents on inputs")                                  \
    X(JVP_S0, 0, "tg_jvp, tangents on initial states")                         \
    X(JVP_PARAM, 0, "tg_jvp, tangents on parameters")                          \
    X(JVP_AFTER_BWD, 0, "tg_jvp after a backward")                             \
    X(T0, 0, "a sequence of length 0")                                         \
    X(L2, 0, "two layers")                                                     \
    X(DROPOUT, 0, "dropout between layers")                                    \
    X(KEPT, 0, "a kept final state as the next initial state")                 \
    X(GATES0, 0, "a cell without standard parameters (gates 0)")               \
    X(SLICED_W, 0, "weights sliced from parameters")                           \
    X(BATCH_MIX, 0, "a reduction or product over the batch")                   \
    X(PASSTHROUGH, 0, "a step input returned as a state")                      \
    X(ZERO, 0, "gradients zeroed between backwards")                           \
    X(RETAIN, 0, "dL/dh_t of retained h[t] compared")                          \
    X(FLATTEN, 0, "parameters flattened into one block")                       \
    X(ANOMALY, 0, "anomaly mode on")                                           \
    X(NAN, 0, "a NaN in the input")                                            \
    X(BUMP_PENDING, FD_BUG_F + 1,                                              \
      "a parameter changed between forward and backward")                      \
    X(BUMP, 0, "a parameter changed in place between calls")                   \
    X(BUMP_JVP, FD_BUG_L + 1, "... between forward and tg_jvp")                \
    X(SAME_ERROR, 0, "both paths stopped at the same error")                   \
    X(STRICTER, -1, "an in-place change refused compiled only (recompute)")    \
    X(DEAD_READ, -1, "... refused by tg_jvp unfused only (a dead value)")      \
    X(ILL_CONDITIONED, -1, "a difference within the reference's own "          \
      "sensitivity to 1e-15")                                                  \
    X(WRONG_SHAPE, 0, "a step output not [B, H]")                              \
    X(ROW1, FD_BUG_D + 1, "... a [1, H] or [H] one (broadcast)")               \
    X(COLSLICE, FD_BUG_C + 1, "a strided weight given to tg_linear")           \
    X(CAPT_SCALE, FD_BUG_B + 1, "captured state: the scale changed")           \
    X(CAPT_REPLACE, FD_BUG_B + 1, "captured state: the mask replaced")         \
    X(CAPT_INPLACE, FD_BUG_B + 1, "captured state: the mask changed in place") \
    X(UNDECLARED, FD_BUG_B + 1, "c->user set, no user_size declared")

#define FD_SC_ENUM(name, bug, text) SC_##name,
enum { FD_SCENARIOS(FD_SC_ENUM) SC_N };
#undef FD_SC_ENUM

void fd_cov_add(int scenario);
void fd_cov_refused(const char *why); /* a step not compiled, tg_prog_why */
void fd_cov_input(bool compiled);     /* one input done */
void fd_cov_print(FILE *f);
/* 0 if every vector machine code, guard and scenario the switches allow
 * was reached; else -1 after printing what was not */
int fd_cov_check(FILE *f);

#endif
