/*
 * nn/cell.h - recurrent cells: one time step, written as ops.
 *
 * A cell maps (x_t, state_{t-1}) to state_t. Its *type* says how: a name,
 * how many tensors its state has (1 for h, 2 for an LSTM's h and c; the
 * first is always the output h), how many gate blocks its standard
 * parameters have, and a step function made of ordinary ops. There is no
 * backward anywhere in nn/: the tape differentiates the step, and
 * backpropagation through time is the tape's reverse sweep over all the
 * unrolled steps.
 *
 * Standard parameters. A type with gates = G > 0 gets PyTorch's layout:
 *     weight_ih [G*H, I], weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H]
 * initialised U(-1/sqrt(H), 1/sqrt(H)) as in torch.nn.LSTM/GRU/RNN, and its
 * step receives the *projected* input  xp = x W_ih^T + b_ih  [B, G*H]:
 * the sequence layer computes that for all time steps in one matmul, which
 * is much faster than T small ones. A type with gates = 0 makes all its
 * parameters itself (in init) and its step receives x_t [B, I].
 *
 * Defining a cell of your own takes a step function and a type - this is
 * a complete minimal gated unit (one gate f; h' = (1-f) h + f tanh(...)):
 *
 *     static void mgu_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
 *                          tg_tensor **next)
 *     {
 *         tg_tensor *x[2], *h = s[0];          // xp = [x W_f | x W_n] + b
 *         tg_chunk(xp, 2, 1, x);
 *         tg_tensor *Wh[2];
 *         tg_chunk(c->weight_hh, 2, 0, Wh);    // rows of W_hh per gate
 *         tg_tensor *f = tg_sigmoid(tg_add(x[0], tg_linear(h, Wh[0], NULL)));
 *         tg_tensor *n = tg_tanh(tg_add(x[1], tg_linear(tg_mul(f, h), Wh[1], NULL)));
 *         next[0] = tg_add(h, tg_mul(f, tg_sub(n, h)));
 *     }
 *     static const tg_cell_type mgu = {"mgu", .nstate = 1, .gates = 2,
 *                                      .step = mgu_step};
 *     tg_rnn *r = tg_rnn_new(&mgu, I, H, layers, 0.0, rng);  // like LSTM
 *
 * tg_cell_type_register(&mgu) also makes it known by name (for tools that
 * pick a cell from the command line).
 *
 * A type whose init allocates something (a table, a mask, a buffer at
 * c->user) frees it in fini, which tg_cell_free calls (a c->user set by
 * hand like this one keeps the step from being compiled: see user_size):
 *
 *     static int tab_init(tg_cell *c, struct tg_rng *rng)
 *     {
 *         (void)rng;
 *         c->user = calloc((size_t)c->hidden_size, sizeof(double));
 *         return c->user ? 0 : -1;
 *     }
 *     static void tab_fini(tg_cell *c) { free(c->user); }
 *     static const tg_cell_type tab = {"tab", .nstate = 1, .gates = 2,
 *         .init = tab_init, .step = tab_step, .fini = tab_fini};
 */
#ifndef TG_NN_CELL_H
#define TG_NN_CELL_H

#include "nn/params.h"
#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most tensors a cell's state may have. */
#define TG_CELL_MAX_STATE 4
/* Compiled steps a cell keeps, one per batch size (training, evaluation,
 * the last short batch, ...). */
#define TG_CELL_PROGS 4

typedef struct tg_cell tg_cell;

typedef struct tg_cell_type {
    const char *name;
    int nstate; /* 1..TG_CELL_MAX_STATE; state[0] is the output h */
    int gates;  /* G > 0: standard parameters (see above); 0: none */
    /* Optional: makes extra parameters with tg_cell_param_new. 0 or -1. */
    int (*init)(tg_cell *c, struct tg_rng *rng);
    /* One step: xp [B, G*H] (gates > 0) or x [B, I] (gates == 0); state[k]
     * [B, H]; writes next[0..nstate-1], each [B, H]. */
    void (*step)(tg_cell *c, tg_tensor *xp, tg_tensor *const *state,
                 tg_tensor **next);
    /* Optional: the size of a block the cell keeps at c->user (zeroed by
     * tg_cell_new before init, freed by tg_cell_free) for what its step
     * reads besides its inputs and parameters - a scale, a schedule, a
     * mask tensor (by pointer). A compiled step (ops/fuse.h) compares the
     * block with what it was when traced before every step and traces
     * again when a byte changed, so a change is never missed: write the
     * values there, not in globals (those are baked in when traced). A
     * cell whose c->user is set by hand with no user_size is run as
     * written, never compiled. */
    size_t user_size;
    /* Optional: frees what init (or the program) allocated for the cell -
     * a buffer at c->user, or one a pointer in the user block points to.
     * Called once by tg_cell_free (so by tg_rnn_free for each layer)
     * before the parameters and the user block are freed, so it may still
     * read them; called too when init failed (tg_cell_new then frees the
     * cell), so it must accept what init did not get to make: before
     * init, c->user is NULL or (user_size) a zeroed block, and free(NULL)
     * does nothing. */
    void (*fini)(tg_cell *c);
} tg_cell_type;

struct tg_cell {
    const tg_cell_type *type;
    int input_size, hidden_size;
    tg_params params; /* owns every parameter, by name */
    /* the standard parameters (NULL when gates == 0) */
    tg_tensor *weight_ih, *weight_hh, *bias_ih, *bias_hh;
    void *user; /* for a custom cell's use: see user_size */
    /* the step compiled by the sequence layer (ops/fuse.h), one program
     * per input layout (batch size) in use, the last used first; owned
     * here, made on first use (NULL: none yet) */
    tg_prog *prog[TG_CELL_PROGS];
};

/* A cell with its parameters initialised from rng (NULL: global). NULL
 * after reporting an error (an incomplete type, bad sizes, failing
 * init). */
tg_cell *tg_cell_new(const tg_cell_type *type, int input_size,
                     int hidden_size, struct tg_rng *rng);
void tg_cell_free(tg_cell *c);
/* An extra parameter, initialised U(-1/sqrt(H), 1/sqrt(H)) like the rest
 * (fill it yourself for another scheme). Its name must be new to the cell
 * (not weight_ih, weight_hh, bias_ih or bias_hh when gates > 0): NULL
 * after an error naming the cell type and the parameter. An init in which
 * an error was reported fails tg_cell_new, whatever it returns. */
tg_tensor *tg_cell_param_new(tg_cell *c, const char *name, int ndim,
                             const int64_t *shape, struct tg_rng *rng);
/* The parameter called name (NULL if none). */
tg_tensor *tg_cell_param(const tg_cell *c, const char *name);
/* One step on an unprojected x_t [B, I] (projects it when gates > 0).
 * next[k] is NULL where the step failed (an error was reported: a shape
 * mismatch, a NaN in anomaly mode) or wrote nothing. */
void tg_cell_step(tg_cell *c, tg_tensor *x, tg_tensor *const *state,
                  tg_tensor **next);
/* LSTM-style forget-gate bias: sets the second gate block of bias_ih to
 * value and of bias_hh to 0 (so the gate starts at sigmoid(value)). */
void tg_cell_set_forget_bias(tg_cell *c, double value);

/* The built-in cells, each its equations in a few lines (nn/cells.c):
 *   rnn_tanh, rnn_relu  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
 *   lstm                i,f,g,o gates; c' = f c + i g; h' = o tanh(c')
 *   gru                 r,z,n; n = tanh(x_n + r (h W_hn^T + b_hn));
 *                       h' = (1 - z) n + z h                            */
extern const tg_cell_type tg_rnn_tanh_cell, tg_rnn_relu_cell, tg_lstm_cell,
    tg_gru_cell;

/* Makes a type known by name (built-ins are known from the start; "rnn"
 * names rnn_tanh). 0, or -1 after an error: the name is taken by another
 * type, or the type is NULL or incomplete (no name, no step, nstate not
 * in 1..TG_CELL_MAX_STATE, gates < 0: tg_cell_new refuses those too).
 * The registry is the process's, under a lock: any thread may register
 * and look up. */
int tg_cell_type_register(const tg_cell_type *type);
const tg_cell_type *tg_cell_type_find(const char *name);
/* Known names separated by ", " into buf (for help and error texts). */
const char *tg_cell_type_names(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
