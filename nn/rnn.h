/*
 * nn/rnn.h - the sequence layer: any cell, unrolled over time, stacked in
 * layers. The equivalent of torch.nn.LSTM / GRU / RNN, for built-in and
 * user-defined cells alike.
 *
 * Given x [T, B, I] it runs layer 0's cell over t = 0..T-1, feeds the
 * outputs (with dropout between layers when training) to layer 1, and so
 * on. For cells with standard parameters the input projection of all T
 * steps is one matmul per layer. Parameters are named as in PyTorch
 * (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ... and a custom
 * cell's parameter p as p_l<k>), so nn.LSTM state dicts load directly.
 *
 * Backpropagation through time needs nothing from this file: every step
 * is on the tape and tg_backward sweeps them all in reverse.
 *
 *     tg_rnn *lstm = tg_rnn_new(&tg_lstm_cell, I, H, 2, 0.0, NULL);
 *     tg_rnn_out out;
 *     tg_rnn_forward(lstm, x, NULL, true, NULL, &out);  // zero initial state
 *     // out.y [T, B, H]; out.state[0] = h_n [L, B, H], out.state[1] = c_n
 *
 * Truncated BPTT: copy the final state into persistent tensors with
 * tg_rnn_keep_state and pass those as the next batch's initial state; they
 * carry the numbers but not the graph (they need no gradient).
 */
#ifndef TG_NN_RNN_H
#define TG_NN_RNN_H

#include "nn/cell.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_rnn {
    const tg_cell_type *type;
    int input_size, hidden_size, num_layers;
    double dropout;   /* between layers, when training */
    tg_cell **layers; /* num_layers cells (owned) */
    tg_params params; /* all layers' parameters, PyTorch names (borrowed) */
} tg_rnn;

typedef struct tg_rnn_out {
    tg_tensor *y;                        /* [T, B, H]: top layer's h_t   */
    tg_tensor *state[TG_CELL_MAX_STATE]; /* final states, each [L, B, H] */
    tg_tensor **h;   /* h[t] [B, H] of the top layer (T of them, arena):
                        tg_retain_grad them to read dL/dh_t after backward */
    int64_t T;
} tg_rnn_out;

tg_rnn *tg_rnn_new(const tg_cell_type *type, int input_size, int hidden_size,
                   int num_layers, double dropout, struct tg_rng *rng);
void tg_rnn_free(tg_rnn *r);

/* x [T, B, I]; state0: NULL (zeros) or type->nstate tensors [L, B, H].
 * rng drives dropout (NULL: global). 0, or -1 after reporting one error:
 * a wrong shape (named), a failing step (its own message: a misspelt
 * parameter, an output left unset), or in anomaly mode the first NaN or
 * infinity, in x, the initial state or a step (the op and time step). */
int tg_rnn_forward(tg_rnn *r, tg_tensor *x, tg_tensor *const *state0,
                   bool training, struct tg_rng *rng, tg_rnn_out *out);

/* Copies out->state into persistent tensors keep[k] (allocated on first
 * use, reallocated if the shape changes; free with tg_tensor_free). */
void tg_rnn_keep_state(const tg_rnn *r, const tg_rnn_out *out,
                       tg_tensor **keep);

#ifdef __cplusplus
}
#endif

#endif
