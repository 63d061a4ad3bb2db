/*
 * examples/charlm/cells.c - cell types the tool knows by name beyond the
 * built-in lstm, gru, rnn (rnn_tanh) and rnn_relu.
 *
 * To train a cell of your own with `charlm train --cell NAME`: write its
 * step as ops (no derivative: the tape differentiates it), give it a
 * tg_cell_type, and register it below. Checkpoints store the name, so
 * sample and eval find the cell again. Its own parameters (w_ci_l0 ...)
 * are saved with the rest; PyTorch's nn.LSTM knows nothing of them.
 */
#include "charlm.h"

/* A peephole LSTM (Gers & Schmidhuber, 2000): the gates also look at the
 * cell state through three vectors w_ci, w_cf, w_co. */
static int peephole_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size;
    tg_cell_param_new(c, "w_ci", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_cf", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_co", TG_SHAPE(H), rng);
    return 0;
}

static void peephole_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    tg_tensor *h = s[0], *cell = s[1], *g[4];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 4, 1, g);
    tg_tensor *i = tg_sigmoid(tg_add(g[0], tg_mul(tg_cell_param(c, "w_ci"), cell)));
    tg_tensor *f = tg_sigmoid(tg_add(g[1], tg_mul(tg_cell_param(c, "w_cf"), cell)));
    next[1] = tg_add(tg_mul(f, cell), tg_mul(i, tg_tanh(g[2])));
    tg_tensor *o = tg_sigmoid(tg_add(g[3], tg_mul(tg_cell_param(c, "w_co"), next[1])));
    next[0] = tg_mul(o, tg_tanh(next[1]));
}

static const tg_cell_type peephole = {"peephole", .nstate = 2, .gates = 4,
                                      .init = peephole_init,
                                      .step = peephole_step};

void cl_register_cells(void)
{
    tg_cell_type_register(&peephole);
}
