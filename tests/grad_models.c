/*
 * tests/grad_models.c - whole-model gradient checks in double precision:
 * 2-layer LSTM, GRU and RNN sequence models and a character model, with
 * respect to every parameter, the initial states and the inputs. If these
 * pass, backpropagation through time is right for every op on the path.
 */
#include "harness.h"
#include "nn/charlm.h"

typedef struct seq_case {
    tg_rnn *rnn;
    int nstate;
} seq_case;

/* in = {x, h0, [c0]}; the output is every number the layer produces */
static tg_tensor *seq_fn(tg_tensor *const *in, void *ud)
{
    seq_case *c = ud;
    tg_rnn_out out;
    if (tg_rnn_forward(c->rnn, in[0], in + 1, false, NULL, &out) < 0)
        return NULL;
    tg_tensor *parts[1 + TG_CELL_MAX_STATE];
    parts[0] = tg_reshape(out.y, TG_SHAPE(-1));
    for (int k = 0; k < c->nstate; k++)
        parts[1 + k] = tg_reshape(out.state[k], TG_SHAPE(-1));
    return tg_concat(parts, 1 + c->nstate, 0);
}

static void check_seq(const tg_cell_type *type, int L)
{
    enum { T = 4, B = 2, I = 3, H = 4 };
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    seq_case c = {tg_rnn_new(type, I, H, L, 0.0, &rng), type->nstate};
    tg_tensor *in[16];
    int n = 0;
    in[n++] = tgt_leaf(TG_SHAPE(T, B, I), 1, -1, 1);
    for (int k = 0; k < type->nstate; k++)
        in[n++] = tgt_leaf(TG_SHAPE(L, B, H), 2 + k, -0.5, 0.5);
    for (int i = 0; i < tg_params_count(&c.rnn->params); i++)
        in[n++] = tg_params_at(&c.rnn->params, i)->tensor;
    tg_gradcheck_result r;
    int rc = tg_gradcheck(seq_fn, &c, n, in, TGT_EPS, TGT_TOL, &r);
    char label[64];
    snprintf(label, sizeof label, "%d-layer %s", L, type->name);
    tg_gradcheck_print(stdout, label, &r, TGT_TOL);
    ck_assert_msg(rc == 0, "%s: max err %g", label, r.max_err);
    int64_t total = 0; /* every element of every input was compared */
    for (int k = 0; k < n; k++)
        total += in[k]->numel;
    ck_assert_int_eq(r.checked, total);
    tg_rnn_free(c.rnn);
}

START_TEST(lstm_two_layers) { check_seq(&tg_lstm_cell, 2); }
END_TEST
START_TEST(gru_two_layers) { check_seq(&tg_gru_cell, 2); }
END_TEST
START_TEST(rnn_tanh_two_layers) { check_seq(&tg_rnn_tanh_cell, 2); }
END_TEST
START_TEST(rnn_relu_one_layer) { check_seq(&tg_rnn_relu_cell, 1); }
END_TEST

/* the character model: embedding, 2-layer LSTM, decoder, cross-entropy */
typedef struct lm_case {
    tg_charlm *m;
    int64_t tokens[12], targets[12];
} lm_case;

static tg_tensor *lm_fn(tg_tensor *const *in, void *ud)
{
    lm_case *c = ud;
    tg_rnn_out out;
    tg_tensor *logits = tg_charlm_forward(c->m, c->tokens, 4, 3, in, false,
                                          NULL, &out);
    return tg_cross_entropy(logits, c->targets, TG_MEAN);
}

START_TEST(charlm_whole_model)
{
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    lm_case c = {tg_charlm_new(&tg_lstm_cell, 7, 3, 4, 2, 0.0, &rng),
                 {1, 2, 3, 4, 5, 6, 0, 1, 1, 1, 6, 2},
                 {2, 3, 4, 5, 6, 0, 1, 2, 2, 3, 0, 0}};
    tg_tensor *in[32];
    int n = 0;
    in[n++] = tgt_leaf(TG_SHAPE(2, 3, 4), 1, -0.5, 0.5);
    in[n++] = tgt_leaf(TG_SHAPE(2, 3, 4), 2, -0.5, 0.5);
    for (int i = 0; i < tg_params_count(&c.m->params); i++)
        in[n++] = tg_params_at(&c.m->params, i)->tensor;
    tg_gradcheck_result r;
    int rc = tg_gradcheck(lm_fn, &c, n, in, TGT_EPS, TGT_TOL, &r);
    tg_gradcheck_print(stdout, "charlm lstm", &r, TGT_TOL);
    ck_assert_msg(rc == 0, "max err %g", r.max_err);
    tg_charlm_free(c.m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_models");
    TCase *tc = tcase_create("bptt");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lstm_two_layers);
    tcase_add_test(tc, gru_two_layers);
    tcase_add_test(tc, rnn_tanh_two_layers);
    tcase_add_test(tc, rnn_relu_one_layer);
    tcase_add_test(tc, charlm_whole_model);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
