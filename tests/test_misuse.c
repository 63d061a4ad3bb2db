/*
 * tests/test_misuse.c - mistakes a user makes while writing a cell or a
 * model get one clear error that names what is wrong, never a silent -1
 * or a silently different computation; and after the error the library
 * is left as it was (no time-step tag stuck on the tape).
 */
#include "harness.h"
#include "nn/optim.h"
#include "nn/rnn.h"
#include "ops/ops.h"

/* an LSTM-like cell with a peephole, whose parameter name is misspelt in a
 * multiplied term */
static int peep_init(tg_cell *c, tg_rng *rng)
{
    return tg_cell_param_new(c, "w_ci", TG_SHAPE(c->hidden_size), rng) ? 0 : -1;
}

static void typo_mul_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    tg_tensor *g = tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh));
    tg_tensor *i = tg_sigmoid(tg_add(g, tg_mul(tg_cell_param(c, "w_cj"), s[0])));
    next[0] = tg_tanh(i);
}

/* the misspelt name is the bias of a linear: a NULL bias would mean "no
 * bias", silently */
static void typo_bias_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                           tg_tensor **next)
{
    next[0] = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh,
                                           tg_cell_param(c, "bias_hhh"))));
}

/* forgets its second state tensor */
static void forgetful_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                           tg_tensor **next)
{
    next[0] = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
}

static tg_tensor *input(int T, int B, int I)
{
    tg_manual_seed(5);
    return tg_randn(TG_SHAPE(T, B, I), NULL, 0.0, 1.0);
}

START_TEST(cell_param_names_type_and_parameter)
{
    tgt_capture_errors();
    static const tg_cell_type peep = {
        "peep", .nstate = 1, .gates = 1, .init = peep_init,
        .step = forgetful_step};
    tg_cell *c = tg_cell_new(&peep, 3, 4, NULL);
    ck_assert_ptr_nonnull(tg_cell_param(c, "w_ci"));
    ck_assert_int_eq(tgt_errors, 0);
    ck_assert_ptr_null(tg_cell_param(c, "w_cj"));
    tgt_expect_error("cell_param", "peep", "'w_cj'", "w_ci", "weight_hh");
    tg_cell_free(c);
}
END_TEST

START_TEST(typo_in_a_multiplied_term)
{
    tgt_capture_errors();
    static const tg_cell_type t = {
        "typo_mul", .nstate = 1, .gates = 1, .init = peep_init,
        .step = typo_mul_step};
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rnn *r = tg_rnn_new(&t, 3, 4, 2, 0.0, NULL);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, input(5, 2, 3), NULL, false, NULL,
                                         &out), -1);
        tgt_expect_error("cell_param", "typo_mul", "'w_cj'");
        ck_assert_int_eq(tg_tape_step(), -1); /* no stale time-step tag */
        tg_rnn_free(r);
        tg_tape_reset();
    }
}
END_TEST

START_TEST(typo_in_a_bias_is_not_dropped_silently)
{
    tgt_capture_errors();
    static const tg_cell_type t = {
        "typo_bias", .nstate = 1, .gates = 1, .step = typo_bias_step};
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rnn *r = tg_rnn_new(&t, 3, 4, 1, 0.0, NULL);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, input(3, 2, 3), NULL, false, NULL,
                                         &out), -1);
        tgt_expect_error("cell_param", "typo_bias", "'bias_hhh'", "bias_hh");
        ck_assert_int_eq(tg_tape_step(), -1);
        tg_rnn_free(r);
        tg_tape_reset();
    }
}
END_TEST

START_TEST(step_that_leaves_an_output_unset)
{
    tgt_capture_errors();
    static const tg_cell_type t = {
        "forgetful", .nstate = 2, .gates = 1, .step = forgetful_step};
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rnn *r = tg_rnn_new(&t, 3, 4, 1, 0.0, NULL);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, input(3, 2, 3), NULL, false, NULL,
                                         &out), -1);
        tgt_expect_error("forgetful", "next[1] unset", "time step 0");
        ck_assert_int_eq(tg_tape_step(), -1);
        /* a later, unrelated op is not tagged with a time step */
        tg_tensor *w = tg_requires_grad(tg_ones(TG_SHAPE(2)));
        tg_tensor *y = tg_mul(w, w);
        ck_assert_int_eq(tg_tape_entry(y->entry)->step, -1);
        tg_rnn_free(r);
        tg_tape_reset();
    }
}
END_TEST

START_TEST(anomaly_returns_null_and_reports_once)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(3), -1.0));
    tg_tensor *y = tg_log(x); /* NaN */
    ck_assert_ptr_null(y);
    tg_tensor *z = tg_sum(tg_exp(tg_mul_scalar(tg_sqrt(y), 2)));
    ck_assert_ptr_null(z);
    tgt_expect_error("anomaly", "op 'log'", "NaN"); /* one message, not 4 */
    ck_assert_int_eq(tg_backward(z), -1);
    tgt_expect_error("backward", "NULL (an earlier op failed)");
}
END_TEST

START_TEST(anomaly_in_an_rnn_names_the_time_step)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 4, 2, 0.0, NULL);
        tg_tensor *x = input(7, 2, 3);
        x->data[4 * 2 * 3 + 5] = NAN; /* t = 4, batch 1, feature 2 */
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, false, NULL, &out), -1);
        tgt_expect_error("anomaly", "op 'linear'", "time step 4",
                         "(non-finite)");
        ck_assert_int_eq(tg_tape_step(), -1);
        tg_rnn_free(r);
        tg_tape_reset();
    }
}
END_TEST

/* A NaN met inside a step with an error handler installed: the op that
 * meets it returns NULL, the cell's ops propagate it (LSTM and GRU chunk
 * it), and the sequence layer returns -1 with the anomaly message alone -
 * for every built-in cell, fused or not, whether the NaN is in the
 * initial state (of the first or the second layer) or in a weight that
 * only the step reads. (The LSTM's and GRU's steps used to read
 * uninitialised gates and crash; the layer added "left its output
 * unset" to the report.) */
START_TEST(anomaly_inside_a_step_of_each_cell)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    const tg_cell_type *types[] = {&tg_lstm_cell, &tg_gru_cell,
                                   &tg_rnn_tanh_cell};
    for (int ty = 0; ty < 3; ty++)
        for (int fuse = 0; fuse < 2; fuse++)
            for (int where = 0; where < 3; where++) {
                tg_set_fusion(fuse);
                tg_rnn *r = tg_rnn_new(types[ty], 3, 4, 2, 0.0, NULL);
                tg_tensor *s0[2];
                for (int k = 0; k < types[ty]->nstate; k++)
                    s0[k] = tg_zeros(TG_SHAPE(2, 2, 4));
                if (where < 2) /* h0 of layer `where` */
                    s0[0]->data[where * 8 + 5] = NAN;
                else
                    r->layers[1]->weight_hh->data[3] = NAN;
                tg_rnn_out out;
                ck_assert_int_eq(tg_rnn_forward(r, input(5, 2, 3), s0, true,
                                                 NULL, &out), -1);
                tgt_expect_error("anomaly", "NaN", "(non-finite)");
                ck_assert_int_eq(tg_tape_step(), -1);
                tg_rnn_free(r);
                tg_tape_reset();
            }
}
END_TEST

/* returns early when an op fails, writing nothing */
static void early_return_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                              tg_tensor **next)
{
    tg_tensor *a = tg_linear(s[0], c->weight_hh, c->bias_hh);
    if (!a)
        return;
    next[0] = tg_tanh(tg_add(xp, a));
}

/* one step by hand: the outputs of a failing step are NULL, whether the
 * step propagates the failure (the LSTM) or returns early */
START_TEST(anomaly_in_one_cell_step)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    tg_cell *c = tg_cell_new(&tg_lstm_cell, 3, 4, NULL);
    tg_tensor *h = tg_zeros(TG_SHAPE(2, 4)), *cs = tg_zeros(TG_SHAPE(2, 4));
    h->data[1] = NAN;
    tg_tensor *junk = tg_ones(TG_SHAPE(1)), *next[2] = {junk, junk};
    tg_cell_step(c, input(1, 2, 3), (tg_tensor *[]){h, cs}, next);
    tgt_expect_error("anomaly", "op 'linear'", "(non-finite)");
    ck_assert_ptr_null(next[0]);
    ck_assert_ptr_null(next[1]);
    tg_cell_free(c);

    static const tg_cell_type early = {
        "early", .nstate = 1, .gates = 1, .step = early_return_step};
    c = tg_cell_new(&early, 3, 4, NULL);
    next[0] = junk;
    tg_cell_step(c, input(1, 2, 3), &h, next);
    tgt_expect_error("anomaly", "op 'linear'");
    ck_assert_ptr_null(next[0]);
    tg_cell_free(c);
}
END_TEST

/* x_t of a cell without standard parameters is x's slice at t: a NaN
 * there fails that slice, reported once */
static int raw_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size, I = c->input_size;
    return tg_cell_param_new(c, "W", TG_SHAPE(H, I), rng) &&
                   tg_cell_param_new(c, "U", TG_SHAPE(H, H), rng)
               ? 0
               : -1;
}

static void raw_step(tg_cell *c, tg_tensor *x, tg_tensor *const *s,
                     tg_tensor **next)
{
    tg_tensor *a = tg_linear(x, tg_cell_param(c, "W"), NULL);
    next[0] = tg_tanh(tg_add(a, tg_linear(s[0], tg_cell_param(c, "U"), NULL)));
}

START_TEST(anomaly_in_x_of_a_cell_without_gates)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    static const tg_cell_type raw = {
        "raw", .nstate = 1, .gates = 0, .init = raw_init, .step = raw_step};
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rnn *r = tg_rnn_new(&raw, 3, 4, 1, 0.0, NULL);
        tg_tensor *x = input(6, 2, 3);
        x->data[3 * 2 * 3 + 1] = NAN; /* t = 3 */
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), -1);
        tgt_expect_error("anomaly", "time step 3", "(non-finite)");
        ck_assert_int_eq(tg_tape_step(), -1);
        tg_rnn_free(r);
        tg_tape_reset();
    }
}
END_TEST

/* ---- in-place changes between forward and backward ------------------ */

START_TEST(fill_on_a_weight_before_backward)
{
    tgt_capture_errors();
    tg_tensor *W = tg_set_name(tg_requires_grad(tg_tensor_new(TG_SHAPE(3, 2))), "W");
    tg_fill_(W, 0.5);
    tg_tensor *x = tg_ones(TG_SHAPE(4, 2));
    tg_tensor *loss = tg_sum(tg_tanh(tg_linear(x, W, NULL)));
    tg_fill_(W, 2.0); /* the linear's backward reads W: dx would be wrong */
    ck_assert_int_eq(tg_backward(loss), -1);
    tgt_expect_error("backward", "op 'linear'", "input 1", "W[3, 2]",
                     "changed in place");
    /* nothing was accumulated */
    for (int64_t i = 0; i < W->numel; i++)
        ck_assert(W->grad[i] == 0);
    tg_tensor_free(W);
}
END_TEST

START_TEST(optimizer_step_before_backward)
{
    tgt_capture_errors();
    tg_params ps = {0};
    tg_tensor *W = tg_params_new(&ps, "weight", TG_SHAPE(3, 2));
    tg_fill_(W, 0.1);
    tg_optim *sgd = tg_sgd_new(&ps, 0.1, 0, 0, 0, false);
    tg_tensor *loss = tg_sum(tg_matmul(tg_ones(TG_SHAPE(1, 3)), W));
    ck_assert_int_eq(tg_backward(loss), 0);
    tg_tape_reset();
    /* the mistake: step between this forward and its backward */
    loss = tg_sum(tg_matmul(tg_ones(TG_SHAPE(1, 3)), W));
    tg_optim_step(sgd);
    ck_assert_int_eq(tg_backward(loss), -1);
    tgt_expect_error("backward", "op 'matmul'", "weight[3, 2]");
    tg_optim_free(sgd);
    tg_params_free(&ps);
}
END_TEST

START_TEST(change_through_a_view_is_seen)
{
    tgt_capture_errors();
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(4, 2)));
    tg_tensor *half[2];
    tg_chunk(W, 2, 0, half);
    tg_tensor *loss = tg_sum(tg_mul(half[0], half[1]));
    tg_tensor *rows[2];
    tg_chunk(W, 2, 0, rows); /* another view of the same numbers */
    tg_fill_(rows[1], 3.0);
    ck_assert_int_eq(tg_backward(loss), -1);
    tgt_expect_error("backward", "op 'mul'", "changed in place");
    tg_tensor_free(W);
}
END_TEST

START_TEST(harmless_changes_pass)
{
    tgt_capture_errors();
    /* add and sum read no numbers in backward: PyTorch allows changing
     * their inputs afterwards, and so do we; gradients stay right */
    tg_tensor *a = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
    tg_tensor *b = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
    tg_tensor *loss = tg_sum(tg_add(a, b));
    tg_fill_(a, 7.0);
    ck_assert_int_eq(tg_backward(loss), 0);
    ck_assert_int_eq(tgt_errors, 0);
    for (int i = 0; i < 3; i++)
        ck_assert(a->grad[i] == 1 && b->grad[i] == 1);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(changed_output_is_seen)
{
    tgt_capture_errors();
    tg_tensor *x = tg_requires_grad(tg_zeros(TG_SHAPE(3)));
    tg_tensor *y = tg_sigmoid(x); /* backward reads y */
    tg_tensor *loss = tg_sum(y);
    tg_fill_(y, 0.9);
    ck_assert_int_eq(tg_backward(loss), -1);
    tgt_expect_error("backward", "op 'sigmoid'", "output 0");
}
END_TEST

START_TEST(rnn_weight_changed_before_backward)
{
    tgt_capture_errors();
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 4, 1, 0.0, NULL);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, input(5, 2, 3), NULL, true, NULL,
                                         &out), 0);
        tg_tensor *loss = tg_sum(out.y);
        tg_fill_(r->layers[0]->weight_hh, 0.0);
        ck_assert_int_eq(tg_backward(loss), -1);
        tgt_expect_error("backward", "weight_hh", "changed in place");
        tg_rnn_free(r);
        tg_tape_reset();
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("misuse");
    tcase_add_test(tc, cell_param_names_type_and_parameter);
    tcase_add_test(tc, typo_in_a_multiplied_term);
    tcase_add_test(tc, typo_in_a_bias_is_not_dropped_silently);
    tcase_add_test(tc, step_that_leaves_an_output_unset);
    tcase_add_test(tc, anomaly_returns_null_and_reports_once);
    tcase_add_test(tc, anomaly_in_an_rnn_names_the_time_step);
    tcase_add_test(tc, anomaly_inside_a_step_of_each_cell);
    tcase_add_test(tc, anomaly_in_one_cell_step);
    tcase_add_test(tc, anomaly_in_x_of_a_cell_without_gates);
    tcase_add_test(tc, fill_on_a_weight_before_backward);
    tcase_add_test(tc, optimizer_step_before_backward);
    tcase_add_test(tc, change_through_a_view_is_seen);
    tcase_add_test(tc, harmless_changes_pass);
    tcase_add_test(tc, changed_output_is_seen);
    tcase_add_test(tc, rnn_weight_changed_before_backward);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
