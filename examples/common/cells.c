/*
 * examples/common/cells.c - cells written in user code (see cells.h).
 */
#include "examples/common/cells.h"

#include "ops/ops.h"

/* ---- peephole LSTM -----------------------------------------------------
 * i = s(a_i + w_ci c)  f = s(a_f + w_cf c)  c' = f c + i tanh(a_g)
 * o = s(a_o + w_co c')  h' = o tanh(c') */
static int peephole_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size; /* three peephole vectors */
    tg_cell_param_new(c, "w_ci", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_cf", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_co", TG_SHAPE(H), rng);
    return 0;
}

/* the gates from their pre-activations g[0..3] */
static void peephole_gates(tg_cell *c, tg_tensor *const *g,
                           tg_tensor *const *s, tg_tensor **next)
{
    tg_tensor *cell = s[1];
    tg_tensor *i = tg_sigmoid(tg_add(g[0], tg_mul(tg_cell_param(c, "w_ci"), cell)));
    tg_tensor *f = tg_sigmoid(tg_add(g[1], tg_mul(tg_cell_param(c, "w_cf"), cell)));
    next[1] = tg_add(tg_mul(f, cell), tg_mul(i, tg_tanh(g[2])));
    tg_tensor *o = tg_sigmoid(tg_add(g[3], tg_mul(tg_cell_param(c, "w_co"), next[1])));
    next[0] = tg_mul(o, tg_tanh(next[1]));
}

static void peephole_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    tg_tensor *g[4];
    tg_chunk(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)), 4, 1, g);
    peephole_gates(c, g, s, next);
}

/* the same cell, weight_hh sliced into its gate blocks at every step */
static void peephole_sliced_step(tg_cell *c, tg_tensor *xp,
                                 tg_tensor *const *s, tg_tensor **next)
{
    tg_tensor *W[4], *b[4], *x[4], *g[4];
    tg_chunk(c->weight_hh, 4, 0, W);
    tg_chunk(c->bias_hh, 4, 0, b);
    tg_chunk(xp, 4, 1, x);
    for (int k = 0; k < 4; k++)
        g[k] = tg_add(x[k], tg_linear(s[0], W[k], b[k]));
    peephole_gates(c, g, s, next);
}

const tg_cell_type ex_peephole_cell = {"peephole", .nstate = 2, .gates = 4,
                                       .init = peephole_init,
                                       .step = peephole_step};
const tg_cell_type ex_peephole_sliced_cell = {
    "peephole_sliced", .nstate = 2, .gates = 4, .init = peephole_init,
    .step = peephole_sliced_step};

/* ---- minimal gated unit: one gate --------------------------------------
 * f = s(x_f + h W_hf^T + b_hf);  n = tanh(x_n + (f h) W_hn^T + b_hn)
 * h' = (1 - f) h + f n  =  h + f (n - h) */
static void mgu_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                     tg_tensor **next)
{
    tg_tensor *h = s[0], *x[2], *W[2], *b[2];
    tg_chunk(xp, 2, 1, x);
    tg_chunk(c->weight_hh, 2, 0, W); /* rows of W_hh per gate */
    tg_chunk(c->bias_hh, 2, 0, b);
    tg_tensor *f = tg_sigmoid(tg_add(x[0], tg_linear(h, W[0], b[0])));
    tg_tensor *n = tg_tanh(tg_add(x[1], tg_linear(tg_mul(f, h), W[1], b[1])));
    next[0] = tg_add(h, tg_mul(f, tg_sub(n, h)));
}

const tg_cell_type ex_mgu_cell = {"mgu", .nstate = 1, .gates = 2,
                                  .step = mgu_step};

/* ---- layer-normalised LSTM ---------------------------------------------
 * LN(a) = gain * (a - mean(a)) / sqrt(var(a) + eps) + bias, over the last
 * dimension: made of existing ops, so its backward comes for free. */
static tg_tensor *layer_norm(tg_tensor *a, tg_tensor *gain, tg_tensor *bias)
{
    tg_tensor *d = tg_sub(a, tg_mean_dim(a, -1, true));
    tg_tensor *var = tg_mean_dim(tg_mul(d, d), -1, true);
    tg_tensor *z = tg_div(d, tg_sqrt(tg_add_scalar(var, 1e-5)));
    return tg_add(tg_mul(z, gain), bias);
}

static int ln_lstm_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size;   /* gain 1, bias 0 (forget block: 1) */
    tg_fill_(tg_cell_param_new(c, "ln_gain", TG_SHAPE(4 * H), rng), 1);
    tg_tensor *b = tg_cell_param_new(c, "ln_bias", TG_SHAPE(4 * H), rng);
    tg_fill_(b, 0);
    for (int64_t k = H; k < 2 * H; k++)
        b->data[k] = 1;
    tg_fill_(tg_cell_param_new(c, "ln_c_gain", TG_SHAPE(H), rng), 1);
    tg_fill_(tg_cell_param_new(c, "ln_c_bias", TG_SHAPE(H), rng), 0);
    return 0;
}

/* i,f,g,o = chunks of LN(x W_ih^T + b_ih + h W_hh^T + b_hh)
 * c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(LN(c')) */
static void ln_lstm_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                         tg_tensor **next)
{
    tg_tensor *h = s[0], *cell = s[1], *g[4];
    tg_tensor *a = tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh));
    a = layer_norm(a, tg_cell_param(c, "ln_gain"), tg_cell_param(c, "ln_bias"));
    tg_chunk(a, 4, 1, g);
    tg_tensor *kept = tg_mul(tg_sigmoid(g[1]), cell);
    next[1] = tg_add(kept, tg_mul(tg_sigmoid(g[0]), tg_tanh(g[2])));
    tg_tensor *cn = layer_norm(next[1], tg_cell_param(c, "ln_c_gain"),
                               tg_cell_param(c, "ln_c_bias"));
    next[0] = tg_mul(tg_sigmoid(g[3]), tg_tanh(cn));
}

const tg_cell_type ex_ln_lstm_cell = {"ln_lstm", .nstate = 2, .gates = 4,
                                      .init = ln_lstm_init,
                                      .step = ln_lstm_step};

/* ---- the simplest gate: a 0/1 mask, hard or smooth ---------------------
 * a_m, a_n = chunks of (x W_ih^T + b_ih + h W_hh^T + b_hh)
 * m = gate(a_m);  h' = m tanh(a_n) + (1 - m) h  =  h + m (tanh(a_n) - h)
 * Hard: m = [a_m > 0], each unit either keeps h exactly or overwrites it;
 * backward pretends m was sigmoid(a_m) (tg_step_ste, ops/unary.h).
 * Smooth: m = sigmoid(a_m) forward too - otherwise the same cell. */
static void masked_step(tg_cell *c, tg_tensor *xp, tg_tensor *h,
                        tg_tensor **next, tg_tensor *(*gate)(tg_tensor *))
{
    tg_tensor *a[2];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 2, 1, a);
    tg_tensor *m = gate(a[0]);
    next[0] = tg_add(h, tg_mul(m, tg_sub(tg_tanh(a[1]), h)));
}

static void hard_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    masked_step(c, xp, s[0], next, tg_step_ste);
}

static void soft_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    masked_step(c, xp, s[0], next, tg_sigmoid);
}

const tg_cell_type ex_hard_gate_cell = {"hard_gate", .nstate = 1, .gates = 2,
                                        .step = hard_step};
const tg_cell_type ex_soft_gate_cell = {"soft_gate", .nstate = 1, .gates = 2,
                                        .step = soft_step};

void ex_register_cells(void)
{
    const tg_cell_type *all[] = {&ex_peephole_cell, &ex_peephole_sliced_cell,
                                 &ex_mgu_cell, &ex_ln_lstm_cell,
                                 &ex_hard_gate_cell, &ex_soft_gate_cell};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tg_cell_type_register(all[i]); /* (already known: no matter) */
}
