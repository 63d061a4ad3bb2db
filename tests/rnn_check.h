/*
 * tests/rnn_check.h - the finite-difference check of a whole sequence
 * model, which the model, custom-cell and compiled-step tests share:
 * inputs x [T, B, I], every initial state [L, B, H] and every parameter;
 * output every number tg_rnn_forward makes (y and each final state).
 * Double library only (tests/grad_*.c).
 */
#ifndef TG_TESTS_RNN_CHECK_H
#define TG_TESTS_RNN_CHECK_H

#include "harness.h"
#include "nn/rnn.h"

static tg_tensor *tgt_rnn_fn(tg_tensor *const *in, void *ud)
{
    tg_rnn *rnn = ud;
    tg_rnn_out out;
    if (tg_rnn_forward(rnn, in[0], in + 1, false, NULL, &out) < 0)
        return NULL;
    int ns = rnn->type->nstate;
    tg_tensor *parts[1 + TG_CELL_MAX_STATE];
    parts[0] = tg_reshape(out.y, TG_SHAPE(-1));
    for (int k = 0; k < ns; k++)
        parts[1 + k] = tg_reshape(out.state[k], TG_SHAPE(-1));
    return tg_concat(parts, 1 + ns, 0);
}

/* Checks rnn over T steps of B sequences, prints the result under label
 * and asserts that it passed and compared every element of every input. */
static inline void tgt_gradcheck_rnn(tg_rnn *rnn, int T, int B,
                                     const char *label)
{
    int L = rnn->num_layers, H = rnn->hidden_size;
    tg_tensor *in[64];
    int n = 0;
    in[n++] = tgt_leaf(TG_SHAPE(T, B, rnn->input_size), 1, -1, 1);
    for (int k = 0; k < rnn->type->nstate; k++)
        in[n++] = tgt_leaf(TG_SHAPE(L, B, H), 2 + k, -0.5, 0.5);
    for (int i = 0; i < tg_params_count(&rnn->params); i++) {
        ck_assert_int_lt(n, 64);
        in[n++] = tg_params_at(&rnn->params, i)->tensor;
    }
    tg_gradcheck_result r;
    int rc = tg_gradcheck(tgt_rnn_fn, rnn, n, in, TGT_EPS, TGT_TOL, &r);
    tg_gradcheck_print(stdout, label, &r, TGT_TOL);
    ck_assert_msg(rc == 0, "%s: max err %g", label, r.max_err);
    int64_t total = 0;
    for (int k = 0; k < n; k++)
        total += in[k]->numel;
    ck_assert_int_eq(r.checked, total);
}

#endif
