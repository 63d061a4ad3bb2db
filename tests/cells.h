/*
 * tests/cells.h - cells written for the tests, shared by the suites that
 * run them (grad_fuse.c: compiled against as written; grad_jvp.c: forward
 * mode), so that each is defined once.
 */
#ifndef TG_TESTS_CELLS_H
#define TG_TESTS_CELLS_H

#include "nn/rnn.h"

static int zoo_init(tg_cell *c, tg_rng *rng)
{
    tg_cell_param_new(c, "w", TG_SHAPE(c->hidden_size), rng);
    return 0;
}

/* every elementwise code but step; a parameter broadcast over rows, a
 * [B, 1] mean broadcast over columns, chunks of an internal value, and two
 * overlapping slices of the step's input */
static void zoo_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                     tg_tensor **next)
{
    int64_t H = c->hidden_size;
    tg_tensor *h = s[0], *g[3];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 3, 1, g);
    tg_tensor *p = tg_add_scalar(tg_sigmoid(g[0]), 0.5);
    tg_tensor *q = tg_mul_scalar(tg_exp(tg_neg(tg_relu(g[1]))), 0.9);
    tg_tensor *r = tg_div(tg_log(p), tg_sqrt(tg_add_scalar(q, 1.0)));
    tg_tensor *u = tg_pow(p, tg_sub(q, tg_tanh(g[2])));
    tg_tensor *m = tg_mean_dim(h, -1, true);
    tg_tensor *z = tg_add(tg_mul(r, tg_cell_param(c, "w")),
                          tg_mul(tg_pow_scalar(u, 1.5), m));
    tg_tensor *a = tg_slice(xp, 1, 0, H, 1), *b = tg_slice(xp, 1, 1, H + 1, 1);
    next[0] = tg_tanh(tg_add(z, tg_mul(a, b)));
}
static const tg_cell_type zoo = {
    "zoo", .nstate = 1, .gates = 3, .init = zoo_init, .step = zoo_step};

/* weights sliced inside the step (hoisted out of the loop when compiled),
 * a transpose, and a state passed through unchanged */
static void sliced_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                        tg_tensor **next)
{
    tg_tensor *W[2];
    tg_chunk(c->weight_hh, 2, 0, W);
    tg_tensor *x[2];
    tg_chunk(xp, 2, 1, x);
    tg_tensor *f = tg_sigmoid(tg_add(x[0], tg_matmul(s[0], tg_transpose(W[0], 0, 1))));
    tg_tensor *n = tg_tanh(tg_add(x[1], tg_linear(s[0], W[1], NULL)));
    next[0] = tg_add(tg_mul(f, n), tg_mul(tg_add_scalar(tg_neg(f), 1), s[0]));
    next[1] = s[1];
}
static const tg_cell_type sliced = {
    "sliced", .nstate = 2, .gates = 2, .step = sliced_step};

#endif
