/*
 * tests/test_unary_reduce.c - values, numerical stability, errors and
 * thread determinism of the unary ops (exp log tanh sigmoid relu sqrt) and
 * the reductions (sum mean sum_dim mean_dim max_dim), float build. Their
 * gradients are checked in grad_unary.c and grad_reduce.c.
 */
#include "harness.h"
#include "ops/ops.h"

#include <float.h>

/* ---- unary values ------------------------------------------------------ */

/* each op against the C library in double, on a strided (transposed)
 * input, so the driver's stride handling is checked too */
START_TEST(unary_values_match_libm)
{
    tg_real v[12] = {-3.5f, -1, -0.25f, 0.5f, 1, 2.75f,
                     0.125f, 4, -7, 9, 0.01f, -0.01f};
    tg_tensor *x = tg_from_buffer(TG_SHAPE(3, 4), v);
    tg_tensor *t = tg_transpose(x, 0, 1); /* [4, 3], strides {1, 4} */
    ck_assert(!tg_is_contiguous(t));
    tg_tensor *ye = tg_exp(t), *yt = tg_tanh(t), *ys = tg_sigmoid(t);
    tg_tensor *yr = tg_relu(t);
    tg_tensor *a = tg_relu(t); /* |x| for log and sqrt: */
    a = tg_add(a, tg_relu(tg_neg(t)));
    tg_tensor *yl = tg_log(a), *yq = tg_sqrt(a);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            int64_t idx[2] = {i, j};
            double xv = v[j * 4 + i], av = fabs(xv);
            tgt_close(tg_get(ye, idx), exp(xv), 1e-6);
            tgt_close(tg_get(yt, idx), tanh(xv), 1e-6);
            tgt_close(tg_get(ys, idx), 1 / (1 + exp(-xv)), 1e-6);
            tgt_close(tg_get(yr, idx), xv > 0 ? xv : 0, 0);
            tgt_close(tg_get(yl, idx), log(av), 1e-6);
            tgt_close(tg_get(yq, idx), sqrt(av), 1e-6);
        }
    tgt_shape_is(ye, 2, (int64_t[]){4, 3});
    ck_assert(tg_is_contiguous(ye));
}
END_TEST

/* the extremes: no overflow, no NaN, exact saturation (IEEE subnormals:
 * flushing to zero, on by default, is tested below) */
START_TEST(unary_extremes)
{
    tg_set_flush_denormals(false);
    tg_tensor *x = tg_from_buffer(
        TG_SHAPE(8), (tg_real[]){100, -100, 50, -50, -200, 200, 0, -89});
    tg_tensor *s = tg_sigmoid(x), *t = tg_tanh(x);
    ck_assert(s->data[0] == 1.0f);
    /* exp(-100) = 3.78e-44: the true value, a float denormal; "0" */
    ck_assert(s->data[1] >= 0 && s->data[1] < 1e-43f);
    ck_assert(s->data[4] == 0.0f);
    ck_assert(s->data[5] == 1.0f);
    ck_assert(s->data[6] == 0.5f);
    /* -89: the naive 1/(1+exp(89)) overflows exp; the stable form gives
     * exp(-89) = 2.227e-39 (still representable, as a denormal) */
    tgt_close(s->data[7] / 2.227e-39f, 1.0, 1e-2);
    ck_assert(t->data[2] == 1.0f && t->data[3] == -1.0f);
    ck_assert(t->data[4] == -1.0f && t->data[5] == 1.0f && t->data[6] == 0);
    for (int i = 0; i < 8; i++)
        ck_assert(isfinite(s->data[i]) && isfinite(t->data[i]));

    /* gradients at the extremes are finite: 0 or denormal-small */
    tg_tensor *p = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(4), (tg_real[]){100, -100, 50, -50}));
    tg_tensor *q = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(4), (tg_real[]){100, -100, 50, -50}));
    ck_assert_int_eq(tg_backward(tg_add(tg_sum(tg_sigmoid(p)), tg_sum(tg_tanh(q)))), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert(isfinite(p->grad[i]) && p->grad[i] >= 0 && p->grad[i] < 1e-20f);
        ck_assert(q->grad[i] == 0); /* 1 - (+-1)^2 */
    }
}
END_TEST

START_TEST(log_sqrt_exp_edges)
{
    tg_set_flush_denormals(false);
    /* log of tiny positives: 1e-30 (normal) and 1e-45 (smallest denormal,
     * 1.4013e-45), 0 gives -inf, a negative number NaN */
    tg_tensor *x = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(5), (tg_real[]){1e-30f, FLT_TRUE_MIN, 0, -1, FLT_MIN}));
    tg_tensor *y = tg_log(x);
    tgt_close(y->data[0], log(1e-30), 1e-6);
    tgt_close(y->data[1], log((double)FLT_TRUE_MIN), 1e-6); /* -103.28 */
    ck_assert(isinf(y->data[2]) && y->data[2] < 0);
    ck_assert(isnan(y->data[3]));
    tgt_close(y->data[4], log((double)FLT_MIN), 1e-6);
    /* d log(x)/dx = 1/x: inf at 0 (as in PyTorch) */
    tg_tensor *seed = tg_from_buffer(TG_SHAPE(5), (tg_real[]){1, 0, 1, 0, 0});
    tg_backward_seed(y, seed);
    tgt_close(x->grad[0], 1e30, 1e-6);
    ck_assert(isinf(x->grad[2]) && x->grad[2] > 0);
    tg_tape_reset();

    tg_tensor *z = tg_requires_grad(tg_from_buffer(TG_SHAPE(3), (tg_real[]){0, 4, 1e-20f}));
    tg_tensor *r = tg_sqrt(z);
    ck_assert(r->data[0] == 0 && r->data[1] == 2);
    tgt_close(r->data[2], 1e-10, 1e-6);
    tg_backward(tg_sum(r));
    ck_assert(isinf(z->grad[0]));      /* 0.5 / sqrt(0) */
    ck_assert(z->grad[1] == 0.25f);    /* 0.5 / 2 */
    tgt_close(z->grad[2], 5e9, 1e-6);  /* 0.5 / 1e-10 */
    tg_tape_reset();

    tg_tensor *e = tg_exp(tg_from_buffer(TG_SHAPE(3), (tg_real[]){-200, 0, 200}));
    ck_assert(e->data[0] == 0 && e->data[1] == 1 && isinf(e->data[2]));
}
END_TEST

START_TEST(relu_kink_and_nan)
{
    tg_tensor *x = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(5), (tg_real[]){-1, 0, 2, -0.0f, 3}));
    tg_tensor *y = tg_relu(x);
    tgt_tensor_equals(y, (double[]){0, 0, 2, 0, 3}, 5, 0);
    ck_assert(!signbit(y->data[3])); /* -0 becomes +0 */
    tg_backward(tg_sum(tg_mul_scalar(y, 3)));
    /* gradient 0 at the kink x = 0 */
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(5), x->grad), (double[]){0, 0, 3, 0, 3}, 5, 0);
    /* a NaN is not hidden */
    tg_tensor *n = tg_relu(tg_from_buffer(TG_SHAPE(2), (tg_real[]){NAN, -NAN}));
    ck_assert(isnan(n->data[0]) && isnan(n->data[1]));
}
END_TEST

/* tg_step_ste forward: exactly 0 or 1, 0 at x = 0 and -0, NaN kept;
 * backward adds dy * sigmoid'(x) (the straight-through surrogate) into an
 * existing gradient, and is the same for 1 and 2 threads on a large,
 * strided input. */
START_TEST(step_ste_values)
{
    tg_tensor *x = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(7), (tg_real[]){-1, 0, -0.0f, 1e-30f, 3, -1e-30f, 1e30f}));
    tg_tensor *y = tg_step_ste(x);
    tgt_tensor_equals(y, (double[]){0, 0, 0, 1, 1, 0, 1}, 7, 0);
    ck_assert(!signbit(y->data[2]));
    tg_tensor *n = tg_step_ste(tg_from_buffer(TG_SHAPE(1), (tg_real[]){NAN}));
    ck_assert(isnan(n->data[0]));
    tg_backward(tg_sum(tg_mul_scalar(y, 2)));
    tg_backward(tg_sum(tg_step_ste(x))); /* a second pass adds to the first */
    /* 3 s(1-s): s(-1) = 0.26894142, s(0) = 0.5, s(3) = 0.95257413 */
    tgt_close(x->grad[0], 3 * 0.19661193, 1e-6);
    tgt_close(x->grad[1], 0.75, 1e-7);
    tgt_close(x->grad[4], 3 * 0.045176660, 1e-6);
    ck_assert(x->grad[6] == 0); /* saturated: no push further */
    tg_tape_reset();

    tg_real *g[2];
    for (int k = 0; k < 2; k++) {
        tgt_threads(k + 1);
        tg_rng r;
        tg_rng_seed(&r, 5);
        tg_tensor *a = tg_requires_grad(tg_randn(TG_SHAPE(400, 300), &r, 0, 2));
        tg_tensor *w = tg_randn(TG_SHAPE(300, 400), &r, 0, 1);
        tg_tensor *s = tg_step_ste(tg_transpose(a, 0, 1));
        tg_backward(tg_sum(tg_mul(s, w)));
        g[k] = malloc(120000 * sizeof(tg_real));
        memcpy(g[k], a->grad, 120000 * sizeof(tg_real));
        tg_tape_reset();
    }
    ck_assert_mem_eq(g[0], g[1], 120000 * sizeof(tg_real));
    free(g[0]), free(g[1]);
}
END_TEST

/* backward adds into existing gradients and reuses the output */
START_TEST(unary_grads_accumulate)
{
    tg_tensor *w = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
    tg_fill_(w, 0.5);
    for (int step = 0; step < 2; step++) {
        tg_backward(tg_sum(tg_exp(w)));
        tg_tape_reset();
    }
    for (int i = 0; i < 3; i++)
        tgt_close(w->grad[i], 2 * exp(0.5), 1e-6);
    tg_tensor_free(w);
}
END_TEST

/* one op call records one entry, whatever the input's strides */
START_TEST(one_entry_per_call)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(4, 6), 1, -1, 1);
    tg_tensor *t = tg_transpose(x, 0, 1);
    int64_t n0 = tg_tape_size();
    tg_tensor *ys[] = {tg_exp(t), tg_log(tg_exp(t)), tg_tanh(t), tg_sigmoid(t),
                       tg_relu(t), tg_sqrt(tg_exp(t)), tg_sum(t), tg_mean(t),
                       tg_sum_dim(t, 0, false), tg_mean_dim(t, 1, true),
                       tg_max_dim(t, -1, false)};
    ck_assert_int_eq(tg_tape_size() - n0, 11 + 2); /* + 2 inner exps */
    for (size_t k = 0; k < sizeof ys / sizeof *ys; k++)
        ck_assert(ys[k] && ys[k]->entry >= 0);
    /* with grad disabled nothing is recorded */
    bool was = tg_set_grad_enabled(false);
    int64_t n1 = tg_tape_size();
    tg_tensor *y = tg_sum(tg_sigmoid(tg_max_dim(t, 0, true)));
    ck_assert(y && y->entry < 0 && tg_tape_size() == n1);
    tg_set_grad_enabled(was);
}
END_TEST

/* ---- reduction values -------------------------------------------------- */

/* naive reference: sum / mean / max of x[3 dims] over dim d, in double */
static void reference(const tg_tensor *x, int d, int which, double *out)
{
    int64_t outer = 1, inner = 1, n = x->shape[d];
    for (int k = 0; k < d; k++)
        outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++)
        inner *= x->shape[k];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double acc = which == 2 ? -INFINITY : 0;
            for (int64_t k = 0; k < n; k++) {
                double v = tg_flat_get(x, (o * n + k) * inner + j);
                acc = which == 2 ? fmax(acc, v) : acc + v;
            }
            out[o * inner + j] = which == 1 ? acc / (double)n : acc;
        }
}

START_TEST(reductions_match_reference)
{
    tg_rng r;
    tg_rng_seed(&r, 3);
    tg_tensor *base = tg_randn(TG_SHAPE(5, 6, 7), &r, 0, 1);
    /* the same numbers also as a strided view: permute a [7, 5, 6] copy */
    tg_tensor *perm = tg_contiguous(tg_permute(base, (int[]){2, 0, 1}));
    tg_tensor *strided = tg_permute(perm, (int[]){1, 2, 0}); /* [5, 6, 7] */
    ck_assert(!tg_is_contiguous(strided));
    tg_tensor *(*fs[3])(tg_tensor *, int, bool) = {tg_sum_dim, tg_mean_dim, tg_max_dim};
    double ref[64];
    for (int which = 0; which < 3; which++)
        for (int d = -3; d < 3; d++) {
            int dn = d < 0 ? d + 3 : d;
            reference(base, dn, which, ref);
            for (int keep = 0; keep < 2; keep++) {
                tg_tensor *y1 = fs[which](base, d, keep);
                tg_tensor *y2 = fs[which](strided, d, keep);
                tgt_tensor_equals(y1, ref, y1->numel, 1e-5);
                /* strided input: the very same bits as the contiguous one */
                ck_assert(tg_same_shape(y1, y2));
                ck_assert_mem_eq(y1->data, y2->data, (size_t)y1->numel * sizeof(tg_real));
                ck_assert_int_eq(y1->ndim, keep ? 3 : 2);
                for (int k = 0, o = 0; k < 3; k++) {
                    if (k == dn && !keep)
                        continue;
                    ck_assert_int_eq(y1->shape[o++], k == dn ? 1 : base->shape[k]);
                }
            }
        }
    /* over everything */
    double s = 0;
    for (int64_t i = 0; i < base->numel; i++)
        s += (double)base->data[i];
    tg_tensor *ts = tg_sum(base), *tm = tg_mean(strided);
    ck_assert_int_eq(ts->ndim, 0);
    ck_assert_int_eq(tm->ndim, 0);
    tgt_close(tg_item(ts), s, 1e-6);
    tgt_close(tg_item(tm), s / 210, 1e-6);
    ck_assert(tg_item(tg_sum(strided)) == tg_item(ts));
}
END_TEST

START_TEST(small_known_values)
{
    tg_tensor *x = tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3));
    tgt_tensor_equals(tg_sum_dim(x, 0, false), (double[]){3, 5, 7}, 3, 0);
    tgt_tensor_equals(tg_sum_dim(x, -1, false), (double[]){3, 12}, 2, 0);
    tgt_tensor_equals(tg_mean_dim(x, 1, true), (double[]){1, 4}, 2, 0);
    tgt_shape_is(tg_mean_dim(x, 1, true), 2, (int64_t[]){2, 1});
    tgt_tensor_equals(tg_max_dim(x, 0, false), (double[]){3, 4, 5}, 3, 0);
    tgt_close(tg_item(tg_sum(x)), 15, 0);
    tgt_close(tg_item(tg_mean(x)), 2.5, 0);
    /* 1-d to 0-d, and a 0-d input reduced over dim 0 / -1 */
    tg_tensor *v = tg_sum_dim(tg_arange(1, 5, 1), 0, false);
    ck_assert_int_eq(v->ndim, 0);
    tgt_close(tg_item(v), 10, 0);
    tg_tensor *c = tg_scalar(-2.5);
    tgt_close(tg_item(tg_sum_dim(c, 0, false)), -2.5, 0);
    tgt_close(tg_item(tg_max_dim(c, -1, true)), -2.5, 0);
    ck_assert_int_eq(tg_max_dim(c, -1, true)->ndim, 0);
    tgt_close(tg_item(tg_mean(c)), -2.5, 0);
    /* empty: sum is 0, mean NaN (0/0), as in PyTorch */
    tg_tensor *e = tg_zeros(TG_SHAPE(2, 0));
    tgt_close(tg_item(tg_sum(e)), 0, 0);
    ck_assert(isnan(tg_item(tg_mean(e))));
    tgt_tensor_equals(tg_sum_dim(e, 1, false), (double[]){0, 0}, 2, 0);
    ck_assert(isnan(tg_mean_dim(e, 1, false)->data[0]));
    ck_assert_int_eq(tg_sum_dim(e, 0, false)->numel, 0);
}
END_TEST

/* double accumulation: a million copies of 0.1f. A float running sum is
 * off by ~1%; the blocked double sum is right to float precision. */
START_TEST(sum_is_accurate)
{
    tg_tensor *x = tg_full(TG_SHAPE(1000, 1000), 0.1);
    double exact = 1e6 * (double)0.1f;
    tgt_close(tg_item(tg_sum(x)), exact, 1e-7);
    tgt_close(tg_item(tg_mean(x)), (double)0.1f, 1e-7);
    float naive = 0;
    for (int64_t i = 0; i < x->numel; i++)
        naive += x->data[i];
    ck_assert(fabs((double)naive - exact) > 100); /* the test can tell */
    /* 1 + many tiny numbers: each tiny one alone vanishes next to 1 in float */
    tg_tensor *y = tg_full(TG_SHAPE(100001), 1e-8);
    y->data[0] = 1;
    tgt_close(tg_item(tg_sum(y)), 1.001, 1e-6);
}
END_TEST

/* max: NaN propagates, ties send the gradient to the first maximum */
START_TEST(max_ties_and_nan)
{
    tg_tensor *x = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(2, 3), (tg_real[]){1, 3, 3, 2, 2, 0}));
    tg_tensor *m = tg_max_dim(x, 1, false);
    tgt_tensor_equals(m, (double[]){3, 2}, 2, 0);
    tg_backward_seed(m, tg_from_buffer(TG_SHAPE(2), (tg_real[]){10, 20}));
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(2, 3), x->grad),
                      (double[]){0, 10, 0, 20, 0, 0}, 6, 0);
    tg_tape_reset();
    /* over dim 0 (the strided direction), through a transposed view */
    tg_tensor *w = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(3, 2), (tg_real[]){5, 1, 5, 7, 4, 7}));
    tg_tensor *wt = tg_transpose(w, 0, 1); /* [[5,5,4],[1,7,7]] */
    tg_tensor *mw = tg_max_dim(wt, -1, true);
    tgt_shape_is(mw, 2, (int64_t[]){2, 1});
    tgt_tensor_equals(mw, (double[]){5, 7}, 2, 0);
    tg_backward(tg_sum(mw));
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(3, 2), w->grad),
                      (double[]){1, 0, 0, 1, 0, 0}, 6, 0);
    tg_tape_reset();
    /* -inf values and NaN */
    tg_tensor *n = tg_from_buffer(TG_SHAPE(3, 2), (tg_real[]){-INFINITY, 1, NAN, 5, -INFINITY, NAN});
    tg_tensor *mn = tg_max_dim(n, 0, false);
    ck_assert(isnan(mn->data[0]) && isnan(mn->data[1]));
    tg_tensor *mi = tg_max_dim(tg_full(TG_SHAPE(2), -INFINITY), 0, false);
    ck_assert(isinf(mi->data[0]) && mi->data[0] < 0);
}
END_TEST

/* many ties (values 0..4) and some NaNs on long rows, reduced along rows
 * (the lane kernel) and along columns of the transpose (the column
 * kernel): value and gradient position against a naive first-maximum
 * search */
START_TEST(max_first_of_ties_long_rows)
{
    enum { R = 50, C = 203 };
    tg_rng r;
    tg_rng_seed(&r, 9);
    tg_tensor *x = tg_requires_grad(tg_tensor_new(TG_SHAPE(R, C)));
    for (int64_t i = 0; i < x->numel; i++)
        x->data[i] = (tg_real)tg_rng_below(&r, 5);
    for (int k = 0; k < 6; k++) /* NaNs in rows 0..5: two each */
        x->data[k * C + 10 + 17 * k] = x->data[k * C + 150 - 9 * k] = NAN;
    x->data[7 * C + 23] = 9; /* row 7: lane 7 first, lane 0 next */
    x->data[7 * C + 24] = 9;
    x->data[8 * C + C - 1] = 9; /* row 8: the maximum in the tail */
    for (int pass = 0; pass < 2; pass++) {
        tg_tensor *m = pass == 0 ? tg_max_dim(x, 1, false)
                                 : tg_max_dim(tg_transpose(x, 0, 1), 0, true);
        ck_assert_int_eq(m->numel, R);
        tg_backward(tg_sum(m));
        for (int i = 0; i < R; i++) {
            const tg_real *row = x->data + i * C;
            int at = 0;
            for (int k = 1; k < C; k++)
                if (row[k] > row[at] || (isnan(row[k]) && !isnan(row[at])))
                    at = k;
            ck_assert(isnan(row[at]) ? isnan(m->data[i]) : m->data[i] == row[at]);
            for (int k = 0; k < C; k++)
                ck_assert_msg(x->grad[i * C + k] == (k == at),
                              "pass %d row %d: gradient %g at %d, first max at %d",
                              pass, i, (double)x->grad[i * C + k], k, at);
        }
        ck_assert(isnan(m->data[0]) && m->data[7] == 9 && m->data[8] == 9);
        tg_tape_reset();
        tg_zero_grad(x);
    }
    tg_tensor_free(x);
}
END_TEST

/* sum/mean gradients: dy broadcast back, dy/n for means; they add */
START_TEST(reduction_grads_known)
{
    tg_tensor *x = tg_requires_grad(tg_zeros(TG_SHAPE(2, 4)));
    tg_tensor *a = tg_mul_scalar(tg_sum(x), 2);                /* 2 everywhere */
    tg_tensor *b = tg_mean(x);                                 /* 1/8 */
    tg_tensor *c = tg_sum(tg_mean_dim(x, 1, false));           /* 1/4 */
    tg_tensor *d = tg_sum(tg_mul(tg_sum_dim(x, 0, true),       /* column j: j */
                                 tg_arange(0, 4, 1)));
    tg_backward(tg_add(tg_add(a, b), tg_add(c, d)));
    double g = 2 + 0.125 + 0.25;
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(2, 4), x->grad),
                      (double[]){g, g + 1, g + 2, g + 3, g, g + 1, g + 2, g + 3}, 8, 1e-7);
}
END_TEST

/* a strided input's gathered copy is given back to the arena at once */
START_TEST(strided_input_leaves_no_copy)
{
    tg_tensor *x = tg_randn(TG_SHAPE(300, 500), NULL, 0, 1);
    tg_tensor *t = tg_view_transpose(x, 0, 1);
    size_t before = tg_arena_get_stats().used;
    tg_tensor *s = tg_sum(t);
    tg_tensor *m = tg_sum_dim(t, 0, false);
    ck_assert(s && m);
    size_t grown = tg_arena_get_stats().used - before;
    ck_assert_msg(grown < 300 * 500 * sizeof(tg_real) / 4,
                  "arena grew by %zu bytes", grown);
}
END_TEST

/* ---- errors ------------------------------------------------------------ */

START_TEST(reduce_errors)
{
    tgt_capture_errors();
    tg_tensor *x = tg_zeros(TG_SHAPE(2, 3, 4));
    ck_assert_ptr_null(tg_sum_dim(x, 3, false));
    tgt_expect_error("sum_dim", "dim 3", "[2, 3, 4]", "-3 to 2");
    ck_assert_ptr_null(tg_mean_dim(x, -4, true));
    tgt_expect_error("mean_dim", "dim -4", "[2, 3, 4]");
    ck_assert_ptr_null(tg_max_dim(x, 7, false));
    tgt_expect_error("max_dim", "dim 7", "[2, 3, 4]");
    ck_assert_ptr_null(tg_sum_dim(tg_scalar(1), 1, false));
    tgt_expect_error("sum_dim", "dim 1", "[]", "-1 to 0");
    ck_assert_ptr_null(tg_max_dim(tg_zeros(TG_SHAPE(2, 0, 3)), -2, true));
    tgt_expect_error("max_dim", "[2, 0, 3]", "size 0");
    /* max over a non-empty dim of an empty tensor is fine (empty result) */
    tg_tensor *e = tg_max_dim(tg_zeros(TG_SHAPE(2, 0, 3)), 0, false);
    ck_assert(e && e->numel == 0);
    ck_assert_int_eq(tgt_errors, 0);
    /* NULL in, NULL out, silently */
    ck_assert_ptr_null(tg_sum(NULL));
    ck_assert_ptr_null(tg_mean(NULL));
    ck_assert_ptr_null(tg_sum_dim(NULL, 0, false));
    ck_assert_ptr_null(tg_mean_dim(NULL, 0, false));
    ck_assert_ptr_null(tg_max_dim(NULL, 0, false));
    ck_assert_ptr_null(tg_exp(NULL));
    ck_assert_ptr_null(tg_log(NULL));
    ck_assert_ptr_null(tg_tanh(NULL));
    ck_assert_ptr_null(tg_sigmoid(NULL));
    ck_assert_ptr_null(tg_relu(NULL));
    ck_assert_ptr_null(tg_sqrt(NULL));
    ck_assert_ptr_null(tg_step_ste(NULL));
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

/* ---- same bits for any thread count ------------------------------------ */

#define NOUT 18
typedef struct run_result {
    tg_real *out[NOUT];
    int64_t n[NOUT];
    tg_real *gx, *gt; /* gradients of the two leaves */
} run_result;

static void keep(run_result *rr, int k, const tg_tensor *t)
{
    ck_assert_ptr_nonnull(t);
    rr->n[k] = t->numel;
    rr->out[k] = malloc((size_t)t->numel * sizeof(tg_real));
    memcpy(rr->out[k], t->data, (size_t)t->numel * sizeof(tg_real));
}

/* every op on a 300x500 leaf and on the transpose of a 500x300 leaf; the
 * loss mixes every output with random weights so each gradient path is
 * exercised */
static void run_all(int threads, run_result *rr)
{
    tgt_threads(threads);
    tg_rng r;
    tg_rng_seed(&r, 11);
    tg_tensor *x = tg_requires_grad(tg_randn(TG_SHAPE(300, 500), &r, 0, 1));
    tg_tensor *x2 = tg_requires_grad(tg_randn(TG_SHAPE(500, 300), &r, 0, 1));
    tg_tensor *t = tg_transpose(x2, 0, 1); /* [300, 500], strided */
    tg_tensor *u[] = {tg_exp(x), tg_log(tg_add_scalar(tg_mul(t, t), 1e-3)),
                      tg_tanh(t), tg_sigmoid(x), tg_relu(t),
                      tg_sqrt(tg_exp(t))};
    tg_tensor *d[] = {tg_sum_dim(x, 0, false), tg_sum_dim(t, 1, true),
                      tg_mean_dim(t, 0, true), tg_mean_dim(x, -1, false),
                      tg_max_dim(x, 0, false), tg_max_dim(t, 1, false),
                      tg_max_dim(t, 0, true)};
    tg_tensor *a[] = {tg_sum(x), tg_mean(t), tg_sum(u[0])};
    /* A sum whose double result depends on the order of additions: 2^60,
     * then ones, then -2^60 (a double near 2^60 is only good to 256), so
     * a partition that changed with the thread count would show. */
    tg_tensor *h = tg_rand(TG_SHAPE(300, 500), &r, 0, 8);
    h->data[0] = (tg_real)0x1p60;
    h->data[150000 - 1] = (tg_real)-0x1p60;
    keep(rr, NOUT - 2, tg_sum(h));
    keep(rr, NOUT - 1, tg_mean(tg_transpose(h, 0, 1)));
    int k = 0;
    tg_tensor *loss = tg_scalar(0);
    for (int i = 0; i < 6; i++) {
        keep(rr, k++, u[i]);
        loss = tg_add(loss, tg_sum(tg_mul(u[i], tg_randn(TG_SHAPE(300, 500), &r, 0, 1))));
    }
    for (int i = 0; i < 7; i++) {
        keep(rr, k++, d[i]);
        tg_tensor *w = tg_randn(d[i]->ndim, d[i]->shape, &r, 0, 1);
        loss = tg_add(loss, tg_mean(tg_mul(d[i], w)));
    }
    for (int i = 0; i < 3; i++) {
        keep(rr, k++, a[i]);
        loss = tg_add(loss, tg_mul_scalar(a[i], 1e-3 * (i + 1)));
    }
    ck_assert_int_eq(k, NOUT - 2);
    ck_assert_int_eq(tg_backward(loss), 0);
    rr->gx = malloc(150000 * sizeof(tg_real));
    rr->gt = malloc(150000 * sizeof(tg_real));
    memcpy(rr->gx, x->grad, 150000 * sizeof(tg_real));
    memcpy(rr->gt, x2->grad, 150000 * sizeof(tg_real));
    tg_tape_reset();
}

START_TEST(same_bits_any_thread_count)
{
    run_result a, b;
    run_all(1, &a);
    run_all(2, &b);
    for (int k = 0; k < NOUT; k++) {
        ck_assert_int_eq(a.n[k], b.n[k]);
        ck_assert_msg(memcmp(a.out[k], b.out[k], (size_t)a.n[k] * sizeof(tg_real)) == 0,
                      "output %d differs between 1 and 2 threads", k);
        free(a.out[k]);
        free(b.out[k]);
    }
    ck_assert_mem_eq(a.gx, b.gx, 150000 * sizeof(tg_real));
    ck_assert_mem_eq(a.gt, b.gt, 150000 * sizeof(tg_real));
    /* the gradients are real numbers, not all zero */
    int nonzero = 0;
    for (int i = 0; i < 150000; i++) {
        ck_assert(isfinite(a.gx[i]) && isfinite(a.gt[i]));
        nonzero += a.gx[i] != 0 && a.gt[i] != 0;
    }
    ck_assert_int_gt(nonzero, 100000);
    free(a.gx), free(a.gt), free(b.gx), free(b.gt);
}
END_TEST

/* By default subnormal results and inputs are zero, on every thread: the
 * same numbers whatever the thread count, and no slow microcode paths. */
static void sigmoid_tail(int threads, tg_real *out)
{
    tgt_threads(threads);
    tg_tensor *x = tg_full(TG_SHAPE(1 << 16), -89.0); /* exp(-89): subnormal */
    for (int64_t i = 0; i < x->numel; i += 2)
        x->data[i] = -50; /* exp(-50) = 1.9e-22: normal */
    tg_tensor *y = tg_sigmoid(x);
    memcpy(out, y->data, 2 * sizeof(tg_real));
    for (int64_t i = 0; i < y->numel; i += 2)
        ck_assert(y->data[i] == out[0] && y->data[i + 1] == out[1]);
    tg_tape_reset();
}

START_TEST(subnormals_flushed_by_default)
{
    ck_assert(tg_flush_denormals());
    tg_real a[2], b[2];
    sigmoid_tail(1, a);
    sigmoid_tail(2, b);
    ck_assert(a[1] == 0 && b[1] == 0); /* flushed, in every thread */
    tgt_close(a[0], 1.9287499e-22, 1e-5);
    ck_assert(a[0] == b[0]);
    ck_assert(tg_set_flush_denormals(false));
    sigmoid_tail(2, b);
    tgt_close(b[1] / 2.227e-39f, 1.0, 1e-2); /* IEEE: the subnormal */
    ck_assert(!tg_set_flush_denormals(true));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("unary_reduce");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, unary_values_match_libm);
    tcase_add_test(tc, unary_extremes);
    tcase_add_test(tc, subnormals_flushed_by_default);
    tcase_add_test(tc, log_sqrt_exp_edges);
    tcase_add_test(tc, relu_kink_and_nan);
    tcase_add_test(tc, step_ste_values);
    tcase_add_test(tc, unary_grads_accumulate);
    tcase_add_test(tc, one_entry_per_call);
    tcase_add_test(tc, reductions_match_reference);
    tcase_add_test(tc, small_known_values);
    tcase_add_test(tc, sum_is_accurate);
    tcase_add_test(tc, max_ties_and_nan);
    tcase_add_test(tc, max_first_of_ties_long_rows);
    tcase_add_test(tc, reduction_grads_known);
    tcase_add_test(tc, strided_input_leaves_no_copy);
    tcase_add_test(tc, reduce_errors);
    tcase_add_test(tc, same_bits_any_thread_count);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
