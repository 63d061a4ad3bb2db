/*
 * tests/grad_models.c - whole-model gradient checks in double precision:
 * 2-layer LSTM, GRU and RNN sequence models and a character model, with
 * respect to every parameter, the initial states and the inputs. If these
 * pass, backpropagation through time is right for every op on the path.
 */
#include "harness.h"
#include "nn/charlm.h"
#include "rnn_check.h"

static void check_seq(const tg_cell_type *type, int L)
{
    enum { T = 4, B = 2, I = 3, H = 4 };
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    tg_rnn *rnn = tg_rnn_new(type, I, H, L, 0.0, &rng);
    char label[64];
    snprintf(label, sizeof label, "%d-layer %s", L, type->name);
    tgt_gradcheck_rnn(rnn, T, B, label);
    tg_rnn_free(rnn);
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
