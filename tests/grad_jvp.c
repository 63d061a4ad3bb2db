/*
 * tests/grad_jvp.c - forward mode (double build): for every op with a
 * forward-mode rule, J v from tg_jvp against
 *   - central differences (f(x + eps v) - f(x - eps v)) / (2 eps), and
 *   - reverse mode, through u . (J v) = (J^T u) . v for a random u,
 * both to a relative 1e-6, for random directions on every input at once;
 * and the recorded sweep (tg_jvp_create_graph, whose tangents can be
 * differentiated again: tests/grad_curvature.c) gives the same numbers,
 * or refuses by name where compiled steps have no recorded rule.
 */
#include "cells.h"
#include "harness.h"
#include "nn/rnn.h"
#include "ops/internal.h" /* tg_linear_into */
#include "ops/ops.h"

typedef tg_tensor *(*fn)(tg_tensor *const *in, void *ud);

static double dot(const tg_real *a, const tg_real *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* a contiguous copy of t's numbers in logical order */
static tg_real *numbers(const tg_tensor *t)
{
    tg_real *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *d);
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(t->ndim, t->shape, cs);
    tg_strided_copy(t->ndim, t->shape, d, cs, t->data, t->stride, false);
    return d;
}

/* the recorded sweep on the same tape: J v again, as a recorded tensor */
static void check_recorded(const char *label, const tg_tensor *y,
                           const tg_real *jv)
{
    bool compiled = false;
    for (int64_t i = 0; i < tg_tape_size(); i++)
        compiled |= strcmp(tg_tape_entry(i)->op->name, "fused") == 0;
    if (compiled) {
        tgt_capture_errors();
        ck_assert_msg(tg_jvp_create_graph() == -1, "%s: compiled steps "
                      "recorded", label);
        tgt_expect_error("compiled cell step", "fusion off");
        tg_set_error_handler(NULL, NULL);
        return;
    }
    int rc = tg_jvp_create_graph();
    ck_assert_msg(rc == 0 && tg_tangent(y), "%s: no recorded tangent", label);
    ck_assert_ptr_eq(tg_tangent(y)->data, y->tangent);
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < y->numel; i++) {
        scale = fmax(scale, fabs((double)jv[i]));
        worst = fmax(worst, fabs((double)y->tangent[i] - (double)jv[i]));
    }
    ck_assert_msg(worst <= 1e-12 * scale, "%s: the recorded sweep differs "
                  "by %g", label, worst);
}

static void check_jvp(const char *label, fn f, void *ud, int n,
                      tg_tensor *const *x)
{
    tg_rng r;
    tg_rng_seed(&r, 99);
    tg_tensor *v[8];
    for (int k = 0; k < n; k++)
        v[k] = tg_randn(x[k]->ndim, x[k]->shape, &r, 0, 1);
    tg_tensor *y = f(x, ud);
    ck_assert_ptr_nonnull(y);
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(tg_set_tangent(x[k], v[k]), 0);
    ck_assert_int_eq(tg_jvp(), 0);
    ck_assert_msg(y->tangent, "%s: no tangent on the output", label);
    int64_t m = y->numel;
    tg_real *jv = malloc((size_t)(m ? m : 1) * sizeof *jv);
    memcpy(jv, y->tangent, (size_t)m * sizeof *jv);
    check_recorded(label, y, jv);

    /* reverse mode: (J^T u) . v */
    tg_tensor *u = tg_randn(y->ndim, y->shape, &r, 0, 1);
    ck_assert_int_eq(tg_backward_seed(y, u), 0);
    tg_real *un = numbers(u);
    double rhs = 0, lhs = dot(un, jv, m);
    free(un);
    for (int k = 0; k < n; k++) {
        tg_real *vn = numbers(v[k]);
        rhs += dot(x[k]->grad, vn, x[k]->numel);
        free(vn);
    }
    ck_assert_msg(fabs(lhs - rhs) <= 1e-6 * fmax(1.0, fabs(rhs)),
                  "%s: u.(Jv) = %.12g but (J^T u).v = %.12g", label, lhs, rhs);

    /* central differences */
    const double eps = 1e-6;
    bool was = tg_set_grad_enabled(false);
    tg_tensor *xp[8], *xm[8];
    for (int k = 0; k < n; k++) {
        xp[k] = tg_add(x[k], tg_mul_scalar(v[k], eps));
        xm[k] = tg_add(x[k], tg_mul_scalar(v[k], -eps));
    }
    tg_real *yp = numbers(f(xp, ud)), *ym = numbers(f(xm, ud));
    tg_set_grad_enabled(was);
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < m; i++) {
        double fd = ((double)yp[i] - (double)ym[i]) / (2 * eps);
        scale = fmax(scale, fabs(fd));
        worst = fmax(worst, fabs(fd - (double)jv[i]));
    }
    printf("jvp %-28s ok    max err %.2g against differences, adjoint %.12g\n",
           label, worst / scale, lhs);
    ck_assert_msg(worst <= 1e-6 * scale, "%s: J v differs from central "
                  "differences by %g (scale %g)", label, worst, scale);
    free(jv);
    free(yp);
    free(ym);
}

#define LEAF(seed, ...) tgt_leaf(TG_SHAPE(__VA_ARGS__), seed, 0, 0)
#define POS(seed, ...) tgt_leaf(TG_SHAPE(__VA_ARGS__), seed, 0.5, 2.0)

/* ---- elementwise ------------------------------------------------------- */

static tg_tensor *unary_chain(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0], *p = in[1];
    tg_tensor *a = tg_add(tg_exp(tg_mul_scalar(x, 0.3)), tg_tanh(x));
    tg_tensor *b = tg_add(tg_sigmoid(x), tg_relu(tg_add_scalar(x, 0.05)));
    tg_tensor *c = tg_add(tg_add(tg_log(p), tg_sqrt(p)), tg_softplus(x));
    return tg_add(tg_mul(a, b), tg_add(c, tg_neg(tg_pow_scalar(p, 1.5))));
}
START_TEST(jvp_unary)
{
    check_jvp("exp tanh sigmoid relu log sqrt softplus", unary_chain, NULL, 2,
              (tg_tensor *[]){LEAF(1, 3, 5), POS(2, 3, 5)});
}
END_TEST

static tg_tensor *binary_bcast(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *a = in[0], *b = in[1], *p = in[2];
    tg_tensor *s = tg_sub(tg_mul(a, b), tg_div(a, tg_add_scalar(tg_mul(b, b), 1)));
    return tg_add(s, tg_pow(p, tg_add_scalar(b, 0.5)));
}
START_TEST(jvp_binary_broadcast)
{
    /* a [2, 1, 3], b [4, 3], p [2, 4, 3]: both ways of broadcasting */
    check_jvp("add sub mul div pow (broadcast)", binary_bcast, NULL, 3,
              (tg_tensor *[]){LEAF(3, 2, 1, 3), LEAF(4, 4, 3), POS(5, 2, 4, 3)});
}
END_TEST

/* ---- views, reductions, joins ----------------------------------------- */

static tg_tensor *views(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0]; /* [4, 6] */
    tg_tensor *h[2];
    tg_chunk(x, 2, 1, h);                                   /* [4, 3] x2 */
    tg_tensor *t = tg_transpose(h[1], 0, 1);                /* [3, 4] */
    tg_tensor *s = tg_slice(t, 1, 0, 4, 2);                 /* [3, 2] */
    tg_tensor *e = tg_expand(tg_unsqueeze(tg_select(h[0], 1, 2), 0),
                             TG_SHAPE(3, 4));               /* [3, 4] */
    tg_tensor *r = tg_reshape(t, TG_SHAPE(2, 6));           /* copy */
    tg_tensor *p = tg_permute(tg_reshape(x, TG_SHAPE(2, 3, 4)), (int[]){2, 0, 1});
    tg_tensor *q = tg_squeeze(tg_sum_dim(p, 1, true), 1);   /* [4, 3] */
    return tg_concat((tg_tensor *[]){tg_reshape(s, TG_SHAPE(6)),
                                     tg_reshape(tg_mul(e, t), TG_SHAPE(12)),
                                     tg_reshape(r, TG_SHAPE(12)),
                                     tg_reshape(tg_contiguous(q), TG_SHAPE(12))},
                     4, 0);
}
START_TEST(jvp_views)
{
    check_jvp("chunk transpose slice select expand reshape permute concat",
              views, NULL, 1, (tg_tensor *[]){LEAF(6, 4, 6)});
}
END_TEST

static tg_tensor *reductions(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0], *y = in[1]; /* [3, 4] each */
    tg_tensor *a = tg_mul(tg_mean_dim(x, 0, false), tg_sum_dim(y, 0, false));
    tg_tensor *st = tg_stack((tg_tensor *[]){x, tg_tanh(y)}, 2, 1); /* [3, 2, 4] */
    return tg_stack((tg_tensor *[]){tg_sum(a), tg_mean(tg_mul(st, st))}, 2, 0);
}
START_TEST(jvp_reductions)
{
    check_jvp("sum mean sum_dim mean_dim stack", reductions, NULL, 2,
              (tg_tensor *[]){LEAF(7, 3, 4), LEAF(8, 3, 4)});
}
END_TEST

/* ---- products ----------------------------------------------------------- */

static tg_tensor *products(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *A = in[0], *B = in[1], *x = in[2], *W = in[3], *b = in[4];
    tg_tensor *C = tg_matmul(A, B);                  /* [2, 3, 4] @ [4, 5] */
    tg_tensor *y = tg_linear(x, W, b);               /* [3, 6] -> [3, 5] */
    return tg_add(tg_sum_dim(C, 0, false), tg_tanh(y));
}
START_TEST(jvp_products)
{
    check_jvp("matmul (batched) linear", products, NULL, 5,
              (tg_tensor *[]){LEAF(9, 2, 3, 4), LEAF(10, 4, 5), LEAF(11, 3, 6),
                              LEAF(12, 5, 6), LEAF(13, 5)});
}
END_TEST

/* an LSTM cell written out: every op a recurrent step uses */
static tg_tensor *lstm_step(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0], *h = in[1], *c = in[2], *W = in[3], *U = in[4], *b = in[5];
    tg_tensor *g[4];
    tg_chunk(tg_add(tg_linear(x, W, b), tg_linear(h, U, NULL)), 4, 1, g);
    tg_tensor *c2 = tg_add(tg_mul(tg_sigmoid(g[1]), c),
                           tg_mul(tg_sigmoid(g[0]), tg_tanh(g[2])));
    return tg_concat((tg_tensor *[]){tg_mul(tg_sigmoid(g[3]), tg_tanh(c2)), c2},
                     2, 1);
}
START_TEST(jvp_lstm_cell)
{
    check_jvp("LSTM step (ops written out)", lstm_step, NULL, 6,
              (tg_tensor *[]){LEAF(14, 2, 3), LEAF(15, 2, 4), LEAF(16, 2, 4),
                              LEAF(17, 16, 3), LEAF(18, 16, 4), LEAF(19, 16)});
}
END_TEST

/* the sequence layer, run as written: nothing in nn/ knows forward mode */
static tg_tensor *rnn_run(tg_tensor *const *in, void *ud)
{
    tg_rnn_out out;
    if (tg_rnn_forward(ud, in[0], NULL, false, NULL, &out) < 0)
        return NULL;
    return out.y;
}
START_TEST(jvp_sequence_layer)
{
    const tg_cell_type *cells[] = {&tg_lstm_cell, &tg_gru_cell, &tg_rnn_tanh_cell};
    const char *names[] = {"lstm", "gru", "tanh"};
    for (int fuse = 0; fuse < 2; fuse++) { /* as written, then compiled */
        tg_set_fusion(fuse);
        for (int i = 0; i < 3; i++) {
            tg_manual_seed(20 + (uint64_t)i);
            tg_rnn *r = tg_rnn_new(cells[i], 3, 4, 2, 0.0, NULL);
            char label[64];
            snprintf(label, sizeof label, "rnn %s, 2 layers, T=5%s", names[i],
                     fuse ? ", compiled" : "");
            check_jvp(label, rnn_run, r, 1, (tg_tensor *[]){LEAF(21, 5, 2, 3)});
            tg_rnn_free(r);
            tg_tape_reset();
        }
    }
}
END_TEST

/* directions on the weights too: a compiled LSTM, input and parameters */
static tg_tensor *rnn_with_weights(tg_tensor *const *in, void *ud)
{
    tg_rnn *r = ud;
    tg_cell *c = r->layers[0];
    tg_tensor *save[4] = {c->weight_ih, c->weight_hh, c->bias_ih, c->bias_hh};
    c->weight_ih = in[1];
    c->weight_hh = in[2];
    c->bias_ih = in[3];
    c->bias_hh = in[4];
    tg_tensor *y = rnn_run(in, ud);
    c->weight_ih = save[0];
    c->weight_hh = save[1];
    c->bias_ih = save[2];
    c->bias_hh = save[3];
    return y;
}
START_TEST(jvp_compiled_step_weights)
{
    tg_set_fusion(true);
    tg_manual_seed(40);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 4, 1, 0.0, NULL);
    check_jvp("rnn lstm, compiled, weights", rnn_with_weights, r, 5,
              (tg_tensor *[]){LEAF(41, 6, 2, 3), LEAF(42, 16, 3), LEAF(43, 16, 4),
                              LEAF(44, 16), LEAF(45, 16)});
    tg_rnn_free(r);
}
END_TEST

/* ---- user cells: directions on the input and on every parameter ------- */

/* (tests/cells.h: zoo and sliced) */

/* J v of the sequence layer's output along v on x and on every parameter,
 * against differences (parameters moved in place) and reverse mode */
static void check_rnn_all(const char *label, tg_rnn *r, tg_tensor *x)
{
    tg_rng g;
    tg_rng_seed(&g, 7);
    int np = tg_params_count(&r->params);
    tg_tensor *vx = tg_randn(x->ndim, x->shape, &g, 0, 1), *vp[32];
    ck_assert_int_le(np, 32);
    tg_tensor *y = rnn_run((tg_tensor *[]){x}, r);
    ck_assert_ptr_nonnull(y);
    tg_set_tangent(x, vx);
    for (int i = 0; i < np; i++) {
        tg_tensor *w = tg_params_at(&r->params, i)->tensor;
        vp[i] = tg_randn(w->ndim, w->shape, &g, 0, 1);
        tg_zero_grad(w);
        tg_set_tangent(w, vp[i]);
    }
    ck_assert_int_eq(tg_jvp(), 0);
    int64_t m = y->numel;
    tg_real *jv = malloc((size_t)m * sizeof *jv);
    memcpy(jv, y->tangent, (size_t)m * sizeof *jv);
    check_recorded(label, y, jv);
    tg_tensor *u = tg_randn(y->ndim, y->shape, &g, 0, 1);
    ck_assert_int_eq(tg_backward_seed(y, u), 0);
    double lhs = dot(u->data, jv, m), rhs = dot(x->grad, vx->data, x->numel);
    for (int i = 0; i < np; i++) {
        tg_tensor *w = tg_params_at(&r->params, i)->tensor;
        rhs += dot(w->grad, vp[i]->data, w->numel);
    }
    ck_assert_msg(fabs(lhs - rhs) <= 1e-6 * fmax(1.0, fabs(rhs)),
                  "%s: u.(Jv) = %.12g but (J^T u).v = %.12g", label, lhs, rhs);
    const double eps = 1e-6;
    bool was = tg_set_grad_enabled(false);
    tg_real *ys[2];
    for (int sgn = 0; sgn < 2; sgn++) {
        double e = sgn ? -eps : eps;
        for (int i = 0; i < np; i++) {
            tg_tensor *w = tg_params_at(&r->params, i)->tensor;
            for (int64_t k = 0; k < w->numel; k++)
                w->data[k] += (tg_real)e * vp[i]->data[k];
        }
        ys[sgn] = numbers(rnn_run((tg_tensor *[]){tg_add(x, tg_mul_scalar(vx, e))}, r));
        for (int i = 0; i < np; i++) {
            tg_tensor *w = tg_params_at(&r->params, i)->tensor;
            for (int64_t k = 0; k < w->numel; k++)
                w->data[k] -= (tg_real)e * vp[i]->data[k];
        }
    }
    tg_set_grad_enabled(was);
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < m; i++) {
        double fd = ((double)ys[0][i] - (double)ys[1][i]) / (2 * eps);
        scale = fmax(scale, fabs(fd));
        worst = fmax(worst, fabs(fd - (double)jv[i]));
    }
    printf("jvp %-28s ok    max err %.2g against differences, adjoint %.12g\n",
           label, worst / scale, lhs);
    ck_assert_msg(worst <= 1e-6 * scale, "%s: J v differs from differences "
                  "by %g (scale %g)", label, worst, scale);
    free(jv);
    free(ys[0]);
    free(ys[1]);
    tg_clear_tangents();
}

START_TEST(jvp_user_cells)
{
    const tg_cell_type *cells[] = {&zoo, &sliced};
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        for (int i = 0; i < 2; i++) {
            tg_manual_seed(50 + (uint64_t)i);
            tg_rnn *r = tg_rnn_new(cells[i], 3, 4, 2, 0.0, NULL);
            char label[64];
            snprintf(label, sizeof label, "user cell %s, all params%s",
                     cells[i]->name, fuse ? ", compiled" : "");
            check_rnn_all(label, r, LEAF(51, 5, 2, 3));
            tg_rnn_free(r);
            tg_tape_reset();
        }
    }
}
END_TEST

/* ---- losses and layers --------------------------------------------------- */

static tg_tensor *softmaxes(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0]; /* [2, 3, 4] */
    return tg_add(tg_mul(tg_softmax(x, 1), tg_log_softmax(x, -1)),
                  tg_softmax(x, 0));
}
START_TEST(jvp_softmax)
{
    check_jvp("softmax log_softmax (dims 0, 1, -1)", softmaxes, NULL, 1,
              (tg_tensor *[]){LEAF(25, 2, 3, 4)});
}
END_TEST

static tg_tensor *losses(tg_tensor *const *in, void *ud)
{
    (void)ud;
    const int64_t tgt[6] = {0, 3, 1, 2, 2, 0};
    tg_tensor *ce_mean = tg_cross_entropy(in[0], tgt, TG_MEAN); /* [2, 3, 4] */
    tg_tensor *ce_sum = tg_cross_entropy(tg_mul_scalar(in[0], 0.5), tgt, TG_SUM);
    tg_tensor *m1 = tg_mse(in[1], in[2], TG_MEAN);
    tg_tensor *m2 = tg_mse(in[2], tg_tanh(in[1]), TG_SUM);
    return tg_stack((tg_tensor *[]){ce_mean, ce_sum, m1, m2}, 4, 0);
}
START_TEST(jvp_losses)
{
    check_jvp("cross_entropy mse (mean, sum)", losses, NULL, 3,
              (tg_tensor *[]){LEAF(26, 2, 3, 4), LEAF(27, 3, 5), LEAF(28, 3, 5)});
}
END_TEST

static tg_tensor *layers(tg_tensor *const *in, void *ud)
{
    (void)ud;
    const int64_t ids[6] = {4, 0, 2, 2, 1, 4};
    tg_tensor *e = tg_embedding(in[0], ids, TG_SHAPE(2, 3)); /* [2, 3, 3] */
    tg_rng r;
    tg_rng_seed(&r, 5); /* the same mask in every evaluation */
    tg_tensor *d = tg_dropout(tg_tanh(e), 0.3, true, &r);
    tg_tensor *m = tg_max_dim(in[1], 1, true); /* [3, 1]; no ties */
    return tg_add(tg_sum_dim(d, 0, false), tg_mul(m, tg_ones(TG_SHAPE(3, 3))));
}
START_TEST(jvp_layers)
{
    check_jvp("embedding dropout max_dim", layers, NULL, 2,
              (tg_tensor *[]){LEAF(29, 5, 3), LEAF(30, 3, 6)});
}
END_TEST

static tg_tensor *prepared(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *acc = tg_mul_scalar(in[0], 1.0); /* an op output it may reuse */
    tg_tensor *P = tg_prepare_weight(in[2]);
    return tg_tanh(tg_linear_into(acc, in[1], P, in[3]));
}
START_TEST(jvp_prepared_linear_into)
{
    check_jvp("prepare linear_into (compiled steps' ops)", prepared, NULL, 4,
              (tg_tensor *[]){LEAF(31, 12, 5), LEAF(32, 12, 4), LEAF(33, 5, 4),
                              LEAF(34, 5)});
}
END_TEST

/* ---- what it does not do yet ------------------------------------------- */

/* an op of the user's with a backward rule only */
static void twice_bwd(tg_entry *e)
{
    for (int64_t i = 0; i < e->in[0]->numel; i++)
        e->in[0]->grad[i] += 2 * e->out->grad[i];
}
static const tg_op twice_op = {.name = "twice", .backward = twice_bwd};

START_TEST(jvp_missing_rule_is_an_error)
{
    tgt_capture_errors();
    tg_tensor *x = LEAF(22, 4, 2, 3);
    tg_tensor *y = tg_empty(TG_SHAPE(4, 2, 3));
    for (int64_t i = 0; i < y->numel; i++)
        y->data[i] = 2 * x->data[i];
    tg_record(&twice_op, y, 1, &x);
    tg_tanh(y);
    tg_set_tangent(x, tg_ones(TG_SHAPE(4, 2, 3)));
    ck_assert_int_eq(tg_jvp(), -1);
    tgt_expect_error("jvp", "op 'twice'", "no forward-mode rule");
    /* a direction of the wrong shape */
    ck_assert_int_eq(tg_set_tangent(x, tg_ones(TG_SHAPE(3, 2))), -1);
    tgt_expect_error("set_tangent", "[3, 2]", "[4, 2, 3]");
}
END_TEST

START_TEST(jvp_constant_inputs_and_reset)
{
    tg_tensor *x = LEAF(23, 4), *w = LEAF(24, 4);
    tg_tensor *y = tg_mul(x, w);
    tg_set_tangent(x, tg_ones(TG_SHAPE(4)));      /* w is held constant */
    ck_assert_int_eq(tg_jvp(), 0);
    for (int i = 0; i < 4; i++)
        ck_assert(y->tangent[i] == w->data[i]);   /* d(x w)/dx . 1 = w */
    tg_tape_reset();                              /* tangents go with it */
    tg_tensor *p = tg_requires_grad(tg_tensor_new(TG_SHAPE(2)));
    tg_set_tangent(p, tg_ones(TG_SHAPE(2)));
    ck_assert_ptr_nonnull(p->tangent);
    tg_clear_tangents();
    ck_assert_ptr_null(p->tangent);
    tg_tensor_free(p);
}
END_TEST

/* Nothing on the path: where the answer is zero by definition (the
 * outputs do not depend on the leaves given a direction) tg_jvp gives 0
 * and NULL tangents (zero, as torch.func.jvp's zeros); where a zero would
 * be wrong - no direction, nothing recorded, a direction on a leaf whose
 * ops were not recorded - an error says why. tg_jvp used to return 0 with
 * no tangent and no message in all of these. */
START_TEST(jvp_with_nothing_on_the_path)
{
    tgt_capture_errors();
    tg_tensor *x = LEAF(25, 3), *u = LEAF(26, 3);
    tg_tensor *y = tg_tanh(x);
    ck_assert_int_eq(tg_jvp(), -1); /* no direction at all */
    tgt_expect_error("jvp", "no direction", "tg_set_tangent");
    /* u moves, y does not depend on it: a defined zero */
    tg_set_tangent(u, tg_ones(TG_SHAPE(3)));
    ck_assert_int_eq(tg_jvp(), 0);
    ck_assert_ptr_null(y->tangent);
    ck_assert_int_eq(tgt_errors, 0);
    tg_tape_reset();

    /* recorded with grad disabled: the tape is empty */
    x = LEAF(25, 3);
    bool was = tg_set_grad_enabled(false);
    y = tg_tanh(x);
    tg_set_grad_enabled(was);
    tg_set_tangent(x, tg_ones(TG_SHAPE(3)));
    ck_assert_int_eq(tg_jvp(), -1);
    tgt_expect_error("jvp", "tape is empty", "tg_set_grad_enabled");
    tg_tape_reset();

    /* a leaf that does not require grad: its tanh was not recorded (the
     * tape holds another computation) */
    tg_tensor *p = tg_set_name(tg_full(TG_SHAPE(2), 0.5), "p");
    tg_tensor *w = LEAF(27, 2);
    tg_tanh(p);
    tg_tensor *q = tg_mul(w, w);
    tg_set_tangent(p, tg_ones(TG_SHAPE(2)));
    ck_assert_int_eq(tg_jvp(), -1);
    tgt_expect_error("jvp", "'p'[2]", "does not require grad",
                     "tg_requires_grad");
    ck_assert_ptr_null(q->tangent);
    /* read by a recorded op (w requires grad), it moves what it feeds */
    tg_tensor *r = tg_mul(p, w);
    ck_assert_int_eq(tg_jvp(), 0);
    for (int i = 0; i < 2; i++)
        ck_assert(r->tangent[i] == w->data[i]);
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

/* A parameter freed while it still has a direction (tg_set_tangent): the
 * list of leaves with tangents kept pointing at it. Under AddressSanitizer
 * (make asan) the next tg_tape_reset - whose tg_clear_tangents wrote into
 * the freed tensor - is a heap-use-after-free; in a plain build the
 * allocator hands the freed header to the next tensor made, which the
 * stale list took for a leaf that had a tangent already (and the direction
 * was copied through NULL). */
START_TEST(jvp_leaf_freed_with_its_tangent)
{
    tg_tensor *q = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
    ck_assert_int_eq(tg_set_tangent(q, tg_full(TG_SHAPE(3), 2)), 0);
    for (int round = 0; round < 3; round++) {
        tg_tensor *p = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
        ck_assert_int_eq(tg_set_tangent(p, tg_ones(TG_SHAPE(3))), 0);
        tg_tensor_free(p);
        tg_tensor *r = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
        ck_assert_int_eq(tg_set_tangent(r, tg_full(TG_SHAPE(3), 3)), 0);
        tg_tensor *y = tg_mul(r, q);
        ck_assert_int_eq(tg_jvp(), 0);
        for (int i = 0; i < 3; i++) /* 3 q + r 2 */
            ck_assert(y->tangent[i] == 3 * q->data[i] + 2 * r->data[i]);
        if (round == 1)
            tg_tensor_free(r); /* freed before the reset */
        tg_tape_reset();
        ck_assert_ptr_null(q->tangent); /* the others are still cleared */
        if (round != 1) {
            ck_assert_ptr_null(r->tangent);
            tg_tensor_free(r);
        }
        ck_assert_int_eq(tg_set_tangent(q, tg_full(TG_SHAPE(3), 2)), 0);
    }
    tg_tensor_free(q); /* with its tangent: freed too (no leak) */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jvp");
    TCase *tc = tcase_create("jvp");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, jvp_unary);
    tcase_add_test(tc, jvp_binary_broadcast);
    tcase_add_test(tc, jvp_views);
    tcase_add_test(tc, jvp_reductions);
    tcase_add_test(tc, jvp_products);
    tcase_add_test(tc, jvp_lstm_cell);
    tcase_add_test(tc, jvp_sequence_layer);
    tcase_add_test(tc, jvp_compiled_step_weights);
    tcase_add_test(tc, jvp_user_cells);
    tcase_add_test(tc, jvp_softmax);
    tcase_add_test(tc, jvp_losses);
    tcase_add_test(tc, jvp_layers);
    tcase_add_test(tc, jvp_prepared_linear_into);
    tcase_add_test(tc, jvp_missing_rule_is_an_error);
    tcase_add_test(tc, jvp_constant_inputs_and_reset);
    tcase_add_test(tc, jvp_leaf_freed_with_its_tangent);
    tcase_add_test(tc, jvp_with_nothing_on_the_path);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
