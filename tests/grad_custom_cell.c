/*
 * tests/grad_custom_cell.c - cells that are not in the library, defined
 * here the way a user would: a peephole LSTM (standard parameters plus
 * three peephole vectors), a minimal gated unit (two gate blocks), and an
 * Elman cell that makes all its own parameters (gates = 0). Each is
 * gradient-checked inside the sequence layer and trained a few steps.
 */
#include "harness.h"
#include "nn/optim.h"
#include "nn/rnn.h"
#include "rnn_check.h"

/* ---- a peephole LSTM (Gers & Schmidhuber 2000) ---------------------- */
static int peephole_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size;
    tg_cell_param_new(c, "w_ci", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_cf", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_co", TG_SHAPE(H), rng);
    return 0;
}

/* i = s(x_i + h_i + w_ci c)  f = s(x_f + h_f + w_cf c)  g = tanh(x_g + h_g)
 * c' = f c + i g             o = s(x_o + h_o + w_co c')  h' = o tanh(c') */
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

static const tg_cell_type peephole = {
    "peephole_lstm", .nstate = 2, .gates = 4, .init = peephole_init,
    .step = peephole_step};

/* ---- a minimal gated unit (Zhou et al. 2016) ------------------------ */
/* f = s(x_f + h W_hf^T + b_hf);  n = tanh(x_n + (f h) W_hn^T + b_hn)
 * h' = (1 - f) h + f n */
static void mgu_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                     tg_tensor **next)
{
    tg_tensor *h = s[0], *x[2], *W[2], *b[2];
    tg_chunk(xp, 2, 1, x);
    tg_chunk(c->weight_hh, 2, 0, W);
    tg_chunk(c->bias_hh, 2, 0, b);
    tg_tensor *f = tg_sigmoid(tg_add(x[0], tg_linear(h, W[0], b[0])));
    tg_tensor *n = tg_tanh(tg_add(x[1], tg_linear(tg_mul(f, h), W[1], b[1])));
    next[0] = tg_add(h, tg_mul(f, tg_sub(n, h)));
}

static const tg_cell_type mgu = {
    "mgu", .nstate = 1, .gates = 2, .step = mgu_step};

/* ---- an Elman cell with parameters of its own (gates = 0) ------------ */
static int elman_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size, I = c->input_size;
    tg_cell_param_new(c, "U", TG_SHAPE(I, H), rng);
    tg_cell_param_new(c, "V", TG_SHAPE(H, H), rng);
    tg_cell_param_new(c, "b", TG_SHAPE(H), rng);
    return 0;
}

/* h' = tanh(x U + h V + b)   (x is the raw input: no projection) */
static void elman_step(tg_cell *c, tg_tensor *x, tg_tensor *const *s,
                       tg_tensor **next)
{
    tg_tensor *a = tg_add(tg_matmul(x, tg_cell_param(c, "U")),
                          tg_matmul(s[0], tg_cell_param(c, "V")));
    next[0] = tg_tanh(tg_add(a, tg_cell_param(c, "b")));
}

static const tg_cell_type elman = {
    "elman", .nstate = 1, .gates = 0, .init = elman_init, .step = elman_step};

/* ---- checks ------------------------------------------------------------ */
static void check_cell(const tg_cell_type *type)
{
    enum { T = 5, B = 2, I = 3, H = 4, L = 2 };
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_rnn *rnn = tg_rnn_new(type, I, H, L, 0.0, &rng);
    ck_assert_ptr_nonnull(rnn);
    tgt_gradcheck_rnn(rnn, T, B, type->name);
    tg_rnn_free(rnn);
}

START_TEST(gradcheck_peephole) { check_cell(&peephole); }
END_TEST
START_TEST(gradcheck_mgu) { check_cell(&mgu); }
END_TEST
START_TEST(gradcheck_elman) { check_cell(&elman); }
END_TEST

START_TEST(custom_names_and_registry)
{
    tg_rnn *r = tg_rnn_new(&peephole, 3, 4, 2, 0.0, NULL);
    ck_assert_ptr_nonnull(tg_params_get(&r->params, "w_cf_l1"));
    ck_assert_ptr_nonnull(tg_params_get(&r->params, "weight_hh_l0"));
    ck_assert_int_eq(tg_params_count(&r->params), 14);
    tg_rnn_free(r);
    ck_assert_ptr_null(tg_cell_type_find("mgu"));
    ck_assert_int_eq(tg_cell_type_register(&mgu), 0);
    ck_assert_ptr_eq(tg_cell_type_find("mgu"), &mgu);
    ck_assert_int_eq(tg_cell_type_register(&mgu), 0); /* again: fine */
    tgt_capture_errors();
    static const tg_cell_type other = {
        "mgu", .nstate = 1, .gates = 2, .step = mgu_step};
    ck_assert_int_eq(tg_cell_type_register(&other), -1);
    tgt_expect_error("already");
}
END_TEST

/* Train each cell a few Adam steps to output the running mean of its
 * input: the loss must fall well below where it started. */
static double train(const tg_cell_type *type, double *first)
{
    enum { T = 8, B = 16, H = 8 };
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    tg_rnn *r = tg_rnn_new(type, 1, H, 1, 0.0, &rng);
    tg_tensor *w = tg_requires_grad(tg_tensor_new(TG_SHAPE(H, 1)));
    tg_fill_uniform_(w, &rng, -0.3, 0.3);
    tg_params ps = {0};
    tg_params_add_from(&ps, "", &r->params);
    tg_params_add_ref(&ps, "readout", w);
    tg_optim *opt = tg_adam_new(&ps, 0.02, 0.9, 0.999, 1e-8, 0);
    double loss_v = 0;
    for (int step = 0; step < 150; step++) {
        tg_tensor *x = tg_rand(TG_SHAPE(T, B, 1), &rng, -1, 1);
        tg_tensor *target = tg_empty(TG_SHAPE(T, B, 1));
        for (int b = 0; b < B; b++) {
            double sum = 0;
            for (int t = 0; t < T; t++) {
                sum += x->data[t * B + b];
                target->data[t * B + b] = (tg_real)(sum / (t + 1));
            }
        }
        tg_rnn_out out;
        tg_rnn_forward(r, x, NULL, true, NULL, &out);
        tg_tensor *loss = tg_mse(tg_matmul(out.y, w), target, TG_MEAN);
        tg_optim_zero_grad(opt);
        tg_backward(loss);
        tg_optim_step(opt);
        loss_v = tg_item(loss);
        if (step == 0)
            *first = loss_v;
        tg_tape_reset();
    }
    tg_optim_free(opt);
    tg_params_free(&ps);
    tg_tensor_free(w);
    tg_rnn_free(r);
    return loss_v;
}

START_TEST(custom_cells_learn)
{
    const tg_cell_type *types[] = {&peephole, &mgu, &elman};
    for (int i = 0; i < 3; i++) {
        double first, last = train(types[i], &first);
        printf("%-14s loss %.4f -> %.4f\n", types[i]->name, first, last);
        ck_assert_msg(last < 0.2 * first, "%s did not learn: %g -> %g",
                      types[i]->name, first, last);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_custom_cell");
    TCase *tc = tcase_create("custom");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gradcheck_peephole);
    tcase_add_test(tc, gradcheck_mgu);
    tcase_add_test(tc, gradcheck_elman);
    tcase_add_test(tc, custom_names_and_registry);
    tcase_add_test(tc, custom_cells_learn);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
