/*
 * tests/test_loss_layers.c - softmax, log_softmax, cross_entropy, mse,
 * embedding and dropout in float: values against hand-computed and
 * PyTorch-known numbers and a naive double-precision reference, stability
 * with huge logits, error messages, dropout's statistics and
 * reproducibility, and bitwise thread determinism of outputs and
 * gradients. (Gradient correctness: tests/grad_loss.c, grad_layers.c.)
 */
#include "harness.h"
#include "ops/ops.h"

/* A leaf from a literal list of numbers. */
static tg_tensor *leaf_of(int ndim, const int64_t *shape, const tg_real *v)
{
    return tg_requires_grad(tg_from_buffer(ndim, shape, v));
}

/* Naive reference: softmax (or log_softmax) of x along dim, in double,
 * one element at a time, without subtracting the max (fine for |x| < 5). */
static void ref_softmax(const tg_tensor *x, int dim, bool logp, double *out)
{
    int64_t idx[TG_MAX_DIMS];
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t r = i;
        for (int d = x->ndim - 1; d >= 0; d--) {
            idx[d] = r % x->shape[d];
            r /= x->shape[d];
        }
        double s = 0, xi = tg_get(x, idx);
        int64_t keep = idx[dim];
        for (int64_t k = 0; k < x->shape[dim]; k++) {
            idx[dim] = k;
            s += exp(tg_get(x, idx));
        }
        idx[dim] = keep;
        out[i] = logp ? xi - log(s) : exp(xi) / s;
    }
}

/* ---- values ------------------------------------------------------------- */

START_TEST(softmax_known_values)
{
    tg_tensor *x = tg_from_buffer(TG_SHAPE(1, 3), (tg_real[]){1, 2, 3});
    tgt_tensor_equals(tg_softmax(x, 1),
                      (double[]){0.09003057317, 0.24472847105, 0.66524095577},
                      3, 1e-6);
    tgt_tensor_equals(tg_log_softmax(x, -1),
                      (double[]){-2.40760596444, -1.40760596444, -0.40760596444},
                      3, 1e-6);
    /* along dim 0 of [[1, 2], [3, 4]]: each column is (1/(1+e^2), ...) */
    tg_tensor *m = tg_from_buffer(TG_SHAPE(2, 2), (tg_real[]){1, 2, 3, 4});
    tgt_tensor_equals(tg_softmax(m, 0),
                      (double[]){0.11920292202, 0.11920292202, 0.88079707798,
                                 0.88079707798}, 4, 1e-6);
    /* a 0-d tensor: softmax 1, log_softmax 0 */
    tgt_close(tg_item(tg_softmax(tg_scalar(5), 0)), 1, 0);
    tgt_close(tg_item(tg_log_softmax(tg_scalar(5), -1)), 0, 0);
}
END_TEST

START_TEST(softmax_matches_reference_every_dim)
{
    tg_rng r;
    tg_rng_seed(&r, 3);
    tg_tensor *x = tg_rand(TG_SHAPE(3, 5, 70), &r, -4, 4);
    /* the same numbers, strided: [70, 5, 3] transposed back to [3, 5, 70] */
    tg_tensor *xt = tg_contiguous(tg_transpose(x, 0, 2));
    tg_tensor *xs = tg_transpose(xt, 0, 2);
    ck_assert(!tg_is_contiguous(xs));
    double *ref = malloc((size_t)x->numel * sizeof *ref);
    for (int logp = 0; logp < 2; logp++)
        for (int dim = -3; dim < 3; dim++) {
            tg_tensor *(*fn)(tg_tensor *, int) =
                logp ? tg_log_softmax : tg_softmax;
            ref_softmax(x, dim < 0 ? dim + 3 : dim, logp, ref);
            tgt_tensor_equals(fn(x, dim), ref, x->numel, 2e-6);
            tgt_tensor_equals(fn(xs, dim), ref, x->numel, 2e-6);
        }
    free(ref);
}
END_TEST

START_TEST(cross_entropy_known_values)
{
    /* PyTorch: F.cross_entropy(tensor([[1., 2., 3.]]), tensor([2])) */
    tg_tensor *x = leaf_of(TG_SHAPE(1, 3), (tg_real[]){1, 2, 3});
    tg_tensor *loss = tg_cross_entropy(x, (int64_t[]){2}, TG_MEAN);
    ck_assert_int_eq(loss->ndim, 0);
    tgt_close(tg_item(loss), 0.40760596, 1e-6);
    ck_assert_int_eq(tg_backward(loss), 0);
    /* dL/dlogits = softmax - onehot */
    tg_tensor *g = tg_from_buffer(TG_SHAPE(3), x->grad);
    tgt_tensor_equals(g, (double[]){0.09003057317, 0.24472847105,
                                    0.66524095577 - 1}, 3, 1e-6);
    tg_tape_reset();

    /* two rows: [[1,2,3],[3,1,0]], targets [2, 0]; mean 0.288725992,
     * sum 0.57745198; the mean's gradient is half the sum's */
    tg_real v[6] = {1, 2, 3, 3, 1, 0};
    int64_t t[2] = {2, 0};
    tg_tensor *a = leaf_of(TG_SHAPE(2, 3), v);
    tg_tensor *b = leaf_of(TG_SHAPE(2, 3), v);
    tg_tensor *lm = tg_cross_entropy(a, t, TG_MEAN);
    tg_tensor *ls = tg_cross_entropy(b, t, TG_SUM);
    tgt_close(tg_item(lm), 0.2887259920, 1e-6);
    tgt_close(tg_item(ls), 0.5774519840, 1e-6);
    tg_backward(lm);
    tg_backward(ls);
    for (int i = 0; i < 6; i++)
        tgt_close(a->grad[i], b->grad[i] / 2, 1e-7);
    /* row 1: softmax(3, 1, 0) - onehot(0) */
    tgt_close(b->grad[3], 1 / (1 + exp(-2.0) + exp(-3.0)) - 1, 1e-6);
    tgt_close(b->grad[5], exp(-3.0) / (1 + exp(-2.0) + exp(-3.0)), 1e-6);
}
END_TEST

START_TEST(cross_entropy_3d_matches_reference)
{
    /* [T, B, C] = [4, 3, 7]: the mean over the 12 rows of lse - x[t] */
    tg_rng r;
    tg_rng_seed(&r, 8);
    tg_tensor *x = tg_rand(TG_SHAPE(4, 3, 7), &r, -3, 3);
    int64_t t[12];
    double want = 0;
    for (int i = 0; i < 12; i++) {
        t[i] = (int64_t)tg_rng_below(&r, 7);
        double s = 0;
        for (int c = 0; c < 7; c++)
            s += exp(tg_flat_get(x, i * 7 + c));
        want += log(s) - tg_flat_get(x, i * 7 + t[i]);
    }
    tgt_close(tg_item(tg_cross_entropy(x, t, TG_SUM)), want, 1e-6);
    tgt_close(tg_item(tg_cross_entropy(x, t, TG_MEAN)), want / 12, 1e-6);
    /* the same logits through a strided view ([7, 12] transposed) */
    tg_tensor *x2 = tg_reshape(x, TG_SHAPE(12, 7));
    tg_tensor *xs = tg_transpose(tg_contiguous(tg_transpose(x2, 0, 1)), 0, 1);
    ck_assert(!tg_is_contiguous(xs));
    tgt_close(tg_item(tg_cross_entropy(xs, t, TG_SUM)), want, 1e-6);
}
END_TEST

START_TEST(mse_known_values)
{
    tg_tensor *p = leaf_of(TG_SHAPE(3), (tg_real[]){1, 2, 3});
    tg_tensor *t = leaf_of(TG_SHAPE(3), (tg_real[]){0, 2, 5});
    tg_tensor *l = tg_mse(p, t, TG_MEAN); /* (1 + 0 + 4) / 3 */
    ck_assert_int_eq(l->ndim, 0);
    tgt_close(tg_item(l), 5.0 / 3, 1e-6);
    tg_backward(l);
    /* dp = 2 (p - t) / n, dt = -dp */
    tgt_tensor_equals(tg_from_buffer(TG_SHAPE(3), p->grad),
                      (double[]){2.0 / 3, 0, -4.0 / 3}, 3, 1e-6);
    tgt_tensor_equals(tg_from_buffer(TG_SHAPE(3), t->grad),
                      (double[]){-2.0 / 3, 0, 4.0 / 3}, 3, 1e-6);
    tg_tape_reset();
    tg_tensor *p2 = leaf_of(TG_SHAPE(3), (tg_real[]){1, 2, 3});
    tg_tensor *t2 = tg_from_buffer(TG_SHAPE(3), (tg_real[]){0, 2, 5});
    tg_tensor *l2 = tg_mse(p2, t2, TG_SUM);
    tgt_close(tg_item(l2), 5, 1e-6);
    tg_backward(l2);
    tgt_tensor_equals(tg_from_buffer(TG_SHAPE(3), p2->grad),
                      (double[]){2, 0, -4}, 3, 1e-6);
    ck_assert_ptr_null(t2->grad); /* no gradient asked, none made */
}
END_TEST

/* ---- stability ---------------------------------------------------------- */

START_TEST(huge_logits_stay_finite)
{
    tg_tensor *x = tg_from_buffer(TG_SHAPE(3), (tg_real[]){1000, -1000, 88});
    tgt_tensor_equals(tg_softmax(x, 0), (double[]){1, 0, 0}, 3, 1e-7);
    tgt_tensor_equals(tg_log_softmax(x, 0), (double[]){0, -2000, -912}, 3,
                      1e-6);
    /* exp(89) overflows float: only the shift keeps these right */
    tg_tensor *y = tg_from_buffer(TG_SHAPE(3), (tg_real[]){88, 89, 0});
    tgt_tensor_equals(tg_log_softmax(y, 0),
                      (double[]){-1.31326169, -0.31326169, -89.31326169}, 3,
                      1e-6);
    tg_tensor *z = tg_from_buffer(TG_SHAPE(2), (tg_real[]){1e4, 1e4});
    tgt_tensor_equals(tg_softmax(z, 0), (double[]){0.5, 0.5}, 2, 1e-7);
    tgt_tensor_equals(tg_log_softmax(z, 0), (double[]){-0.69314718, -0.69314718},
                      2, 1e-6);

    /* cross-entropy: -log softmax[t] with logits 1e4, 0, -1e4 */
    tg_tensor *c = leaf_of(TG_SHAPE(2, 3), (tg_real[]){1e4, 0, -1e4,
                                                       -1e4, 1e4, 1e4});
    tg_tensor *l = tg_cross_entropy(c, (int64_t[]){1, 2}, TG_SUM);
    /* row 0: 1e4 - 0; row 1: log 2 */
    tgt_close(tg_item(l), 1e4 + log(2.0), 1e-6);
    tg_backward(l);
    tgt_tensor_equals(tg_from_buffer(TG_SHAPE(6), c->grad),
                      (double[]){1, -1, 0, 0, 0.5, -0.5}, 6, 1e-6);
    /* softmax / log_softmax gradients at huge logits are finite too */
    tg_tape_reset();
    tg_tensor *h = leaf_of(TG_SHAPE(3), (tg_real[]){1000, -1000, 88});
    tg_tensor *seed = tg_from_buffer(TG_SHAPE(3), (tg_real[]){1, 2, 3});
    ck_assert_int_eq(tg_backward_seed(tg_log_softmax(h, 0), seed), 0);
    /* dx = dy - softmax * sum(dy) = (1 - 6, 2, 3) */
    tgt_tensor_equals(tg_from_buffer(TG_SHAPE(3), h->grad),
                      (double[]){-5, 2, 3}, 3, 1e-6);
    tg_zero_grad(h);
    ck_assert_int_eq(tg_backward_seed(tg_softmax(h, 0), seed), 0);
    for (int i = 0; i < 3; i++)
        ck_assert(isfinite(h->grad[i]) && fabs((double)h->grad[i]) < 1e-6);
}
END_TEST

/* ---- embedding values ----------------------------------------------------- */

START_TEST(embedding_values_and_accumulation)
{
    /* W = [[0,1,2],[3,4,5],[6,7,8],[9,10,11]] persistent; ids [[3,0],[3,1]] */
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(4, 3)));
    for (int i = 0; i < 12; i++)
        W->data[i] = (tg_real)i;
    int64_t ids[4] = {3, 0, 3, 1};
    tg_tensor *y = tg_embedding(W, ids, TG_SHAPE(2, 2));
    tgt_shape_is(y, 3, (int64_t[]){2, 2, 3});
    tgt_tensor_equals(y, (double[]){9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5},
                      12, 0);
    /* ids are copied: changing the caller's array later changes nothing */
    ids[0] = 2;
    /* dL/dy = 1 everywhere: row 3 used twice gets 2, rows 0 and 1 get 1 */
    ck_assert_int_eq(tg_backward_seed(y, tg_ones(TG_SHAPE(2, 2, 3))), 0);
    double want[12] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 2, 2, 2};
    for (int i = 0; i < 12; i++)
        tgt_close(W->grad[i], want[i], 0);
    tg_tape_reset();
    /* a second step accumulates into the persistent gradient */
    tg_tensor *y2 = tg_embedding(W, (int64_t[]){2}, 0, NULL);
    tgt_shape_is(y2, 1, (int64_t[]){3});
    tg_backward_seed(y2, tg_full(TG_SHAPE(3), 0.5));
    tgt_close(W->grad[6], 0.5, 0);
    tgt_close(W->grad[9], 2, 0);
    tg_tape_reset();
    tg_tensor_free(W);
}
END_TEST

/* ---- errors --------------------------------------------------------------- */

START_TEST(error_messages)
{
    tgt_capture_errors();
    int64_t before = tg_tape_size();
    tg_tensor *x = tg_requires_grad(tg_zeros(TG_SHAPE(2, 3)));

    /* target out of range: its position and C */
    ck_assert_ptr_null(tg_cross_entropy(x, (int64_t[]){0, 3}, TG_MEAN));
    tgt_expect_error("cross_entropy", "target 3", "position 1", "C = 3",
                     "[2, 3]");
    ck_assert_ptr_null(tg_cross_entropy(x, (int64_t[]){-1, 0}, TG_SUM));
    tgt_expect_error("cross_entropy", "target -1", "position 0", "C = 3");
    /* 3-D logits: the row's index in [T, B] is given too */
    tg_tensor *x3 = tg_zeros(TG_SHAPE(2, 2, 5));
    ck_assert_ptr_null(tg_cross_entropy(x3, (int64_t[]){0, 1, 2, 7}, TG_MEAN));
    tgt_expect_error("cross_entropy", "target 7", "position 3", "row [1, 1]",
                     "C = 5");
    ck_assert_ptr_null(tg_cross_entropy(tg_scalar(1), (int64_t[]){0}, TG_MEAN));
    tgt_expect_error("cross_entropy", "[]", "[..., C]");
    ck_assert_ptr_null(tg_cross_entropy(x, NULL, TG_MEAN));
    tgt_expect_error("cross_entropy", "NULL");

    /* embedding id out of range; weight not 2-D */
    tg_tensor *W = tg_zeros(TG_SHAPE(5, 2));
    ck_assert_ptr_null(tg_embedding(W, (int64_t[]){0, 4, 10}, TG_SHAPE(3)));
    tgt_expect_error("embedding", "id 10", "position 2", "V = 5", "[5, 2]");
    ck_assert_ptr_null(tg_embedding(W, (int64_t[]){-2}, TG_SHAPE(1)));
    tgt_expect_error("embedding", "id -2", "position 0");
    ck_assert_ptr_null(tg_embedding(tg_zeros(TG_SHAPE(5)), (int64_t[]){0},
                                    TG_SHAPE(1)));
    tgt_expect_error("embedding", "[5]", "[V, E]");

    /* bad dims */
    ck_assert_ptr_null(tg_softmax(x, 2));
    tgt_expect_error("softmax", "dimension 2", "-2 to 1");
    ck_assert_ptr_null(tg_log_softmax(x, -3));
    tgt_expect_error("log_softmax", "dimension -3");
    ck_assert_ptr_null(tg_softmax(tg_scalar(1), 1));
    tgt_expect_error("softmax", "dimension 1", "0-d");

    /* mse: both shapes named */
    ck_assert_ptr_null(tg_mse(x, tg_zeros(TG_SHAPE(3, 2)), TG_MEAN));
    tgt_expect_error("mse", "[2, 3]", "[3, 2]");

    /* dropout p outside [0, 1) */
    double bad[] = {1, -0.1, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_null(tg_dropout(x, bad[i], true, NULL));
        tgt_expect_error("dropout", "p = ", "[0, 1)");
    }
    ck_assert_ptr_null(tg_dropout(x, 1, false, NULL)); /* even in eval */
    tgt_expect_error("dropout", "p = 1");

    /* a NULL input (an earlier failure) passes through silently */
    ck_assert_ptr_null(tg_softmax(NULL, 0));
    ck_assert_ptr_null(tg_log_softmax(NULL, 0));
    ck_assert_ptr_null(tg_cross_entropy(NULL, (int64_t[]){0}, TG_MEAN));
    ck_assert_ptr_null(tg_mse(x, NULL, TG_SUM));
    ck_assert_ptr_null(tg_embedding(NULL, (int64_t[]){0}, TG_SHAPE(1)));
    ck_assert_ptr_null(tg_dropout(NULL, 0.5, true, NULL));
    ck_assert_int_eq(tgt_errors, 0);
    /* no failed call recorded anything */
    ck_assert_int_eq(tg_tape_size(), before);
}
END_TEST

/* ---- dropout ------------------------------------------------------------- */

START_TEST(dropout_identity_when_off)
{
    tg_tensor *x = tg_requires_grad(tg_ones(TG_SHAPE(4, 4)));
    int64_t n = tg_tape_size();
    tg_rng r, r0;
    tg_rng_seed(&r, 1);
    r0 = r;
    ck_assert_ptr_eq(tg_dropout(x, 0.5, false, &r), x);
    ck_assert_ptr_eq(tg_dropout(x, 0, true, &r), x);
    ck_assert_int_eq(tg_tape_size(), n); /* nothing recorded */
    ck_assert(memcmp(&r, &r0, sizeof r) == 0); /* no number drawn */
}
END_TEST

START_TEST(dropout_statistics_and_scale)
{
    const int64_t n = 200000;
    const double p = 0.3;
    tg_rng r;
    tg_rng_seed(&r, 42);
    tg_tensor *x = tg_requires_grad(tg_rand(TG_SHAPE(n), &r, 1, 2)); /* no 0s */
    tg_tensor *y = tg_dropout(x, p, true, &r);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(y, x);
    int64_t zeros = 0;
    tg_real scale = (tg_real)(1 / (1 - p));
    for (int64_t i = 0; i < n; i++) {
        if (y->data[i] == 0) {
            zeros++;
        } else {
            /* a kept value is x / (1 - p), bit for bit x * scale */
            ck_assert(y->data[i] == x->data[i] * scale);
            tgt_close(y->data[i], (double)x->data[i] / (1 - p), 1e-6);
        }
    }
    /* binomial: std of the fraction is sqrt(p(1-p)/n) ~ 0.001 */
    double frac = (double)zeros / (double)n;
    ck_assert_msg(fabs(frac - p) < 0.006, "zeroed fraction %g, want %g",
                  frac, p);
    /* backward: dx = dy * scale where kept, 0 where dropped */
    ck_assert_int_eq(tg_backward_seed(y, tg_full(TG_SHAPE(n), 2)), 0);
    for (int64_t i = 0; i < n; i++)
        ck_assert(x->grad[i] == (y->data[i] == 0 ? 0 : 2 * scale));
}
END_TEST

START_TEST(dropout_reproducible_and_advances_rng)
{
    const int64_t n = 1000;
    tg_tensor *x = tg_ones(TG_SHAPE(10, 100));
    tg_rng a, b, c;
    tg_rng_seed(&a, 7);
    tg_rng_seed(&b, 7);
    tg_rng_seed(&c, 8);
    tg_tensor *ya = tg_dropout(x, 0.5, true, &a);
    tg_tensor *yb = tg_dropout(x, 0.5, true, &b);
    tg_tensor *yc = tg_dropout(x, 0.5, true, &c);
    ck_assert(memcmp(ya->data, yb->data, (size_t)n * sizeof(tg_real)) == 0);
    ck_assert(memcmp(ya->data, yc->data, (size_t)n * sizeof(tg_real)) != 0);
    /* one draw per element, in row-major order: the state moved n steps,
     * and element i is dropped iff draw i < p */
    tg_rng ref;
    tg_rng_seed(&ref, 7);
    for (int64_t i = 0; i < n; i++)
        ck_assert((ya->data[i] == 0) == (tg_rng_uniform(&ref) < 0.5));
    ck_assert(memcmp(&ref, &a, sizeof ref) == 0);
    /* the next call continues the stream: a different mask */
    tg_tensor *ya2 = tg_dropout(x, 0.5, true, &a);
    ck_assert(memcmp(ya->data, ya2->data, (size_t)n * sizeof(tg_real)) != 0);

    /* NULL: the global generator, reproducible with tg_manual_seed */
    tg_manual_seed(123);
    tg_tensor *g1 = tg_dropout(x, 0.25, true, NULL);
    tg_rng after = *tg_rng_global();
    tg_manual_seed(123);
    tg_tensor *g2 = tg_dropout(x, 0.25, true, NULL);
    ck_assert(memcmp(g1->data, g2->data, (size_t)n * sizeof(tg_real)) == 0);
    ck_assert(memcmp(&after, tg_rng_global(), sizeof after) == 0);
    tg_manual_seed(123);
    for (int64_t i = 0; i < n; i++)
        tg_rng_next(NULL);
    ck_assert(memcmp(&after, tg_rng_global(), sizeof after) == 0);

    /* a strided input: the mask follows the row-major order of the view */
    tg_tensor *m = tg_arange(1, 13, 1);
    tg_tensor *mt = tg_transpose(tg_reshape(m, TG_SHAPE(3, 4)), 0, 1);
    tg_rng_seed(&a, 9);
    tg_tensor *ys = tg_dropout(mt, 0.5, true, &a);
    tg_rng_seed(&ref, 9);
    for (int64_t i = 0; i < 12; i++) {
        bool drop = tg_rng_uniform(&ref) < 0.5;
        tgt_close(tg_flat_get(ys, i), drop ? 0 : 2 * tg_flat_get(mt, i), 0);
    }
}
END_TEST

/* ---- thread determinism -------------------------------------------------- */

/* The outputs and input gradients of one computation, copied out. */
typedef struct run_result {
    tg_real *out, *grad;
    int64_t nout, ngrad;
} run_result;

typedef tg_tensor *(*det_fn)(tg_tensor *x, int which);

static run_result det_run(int threads, det_fn fn, int which, int ndim,
                          const int64_t *shape)
{
    tgt_threads(threads);
    tg_tensor *x = tgt_leaf(ndim, shape, 77, -5, 5);
    tg_tensor *y = fn(x, which);
    ck_assert_ptr_nonnull(y);
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *seed = tg_rand(y->ndim, y->shape, &r, -1, 1);
    ck_assert_int_eq(tg_backward_seed(y, seed), 0);
    run_result res = {malloc((size_t)y->numel * sizeof(tg_real)),
                      malloc((size_t)x->numel * sizeof(tg_real)), y->numel,
                      x->numel};
    tg_to_buffer(y, res.out);
    memcpy(res.grad, x->grad, (size_t)x->numel * sizeof(tg_real));
    tg_tape_reset();
    return res;
}

static void expect_same_bits(const char *what, det_fn fn, int which, int ndim,
                             const int64_t *shape)
{
    run_result a = det_run(1, fn, which, ndim, shape);
    run_result b = det_run(2, fn, which, ndim, shape);
    ck_assert_int_eq(a.nout, b.nout);
    ck_assert_msg(memcmp(a.out, b.out, (size_t)a.nout * sizeof(tg_real)) == 0,
                  "%s: outputs differ between 1 and 2 threads", what);
    ck_assert_msg(memcmp(a.grad, b.grad, (size_t)a.ngrad * sizeof(tg_real))
                      == 0,
                  "%s: gradients differ between 1 and 2 threads", what);
    /* and the gradient is not trivially zero */
    double mag = 0;
    for (int64_t i = 0; i < a.ngrad; i++)
        mag += fabs((double)a.grad[i]);
    ck_assert_msg(mag > 0, "%s: zero gradient", what);
    free(a.out);
    free(a.grad);
    free(b.out);
    free(b.grad);
}

static int64_t det_ids[5000];
static int64_t det_targets[4096];

static tg_tensor *det_ops(tg_tensor *x, int which)
{
    switch (which) {
    case 0: return tg_softmax(x, -1);
    case 1: return tg_softmax(x, 0);
    case 2: return tg_log_softmax(x, 1);
    case 3: return tg_log_softmax(x, -2);
    case 4: return tg_cross_entropy(x, det_targets, TG_MEAN);
    case 5: return tg_cross_entropy(x, det_targets, TG_SUM);
    case 6: return tg_mse(x, tg_mul_scalar(tg_detach(x), 0.5), TG_MEAN);
    case 7: return tg_embedding(x, det_ids, TG_SHAPE(50, 100));
    default: {
        tg_rng r;
        tg_rng_seed(&r, 3);
        return tg_dropout(x, 0.4, true, &r);
    }
    }
}

START_TEST(thread_determinism)
{
    tg_rng r;
    tg_rng_seed(&r, 1);
    for (int i = 0; i < 5000; i++)
        det_ids[i] = (int64_t)tg_rng_below(&r, 1000);
    det_ids[4999] = det_ids[0]; /* surely repeated */
    for (int i = 0; i < 4096; i++)
        det_targets[i] = (int64_t)tg_rng_below(&r, 65);
    const int64_t big[2] = {4096, 65};
    expect_same_bits("softmax dim -1", det_ops, 0, 2, big);
    expect_same_bits("softmax dim 0", det_ops, 1, 2, big);
    expect_same_bits("log_softmax dim 1", det_ops, 2, 2, big);
    expect_same_bits("log_softmax dim -2", det_ops, 3, 2, big);
    expect_same_bits("cross_entropy mean", det_ops, 4, 2, big);
    expect_same_bits("cross_entropy sum", det_ops, 5, 2, big);
    expect_same_bits("mse", det_ops, 6, 2, (int64_t[]){300, 1001});
    expect_same_bits("embedding", det_ops, 7, 2, (int64_t[]){1000, 128});
    expect_same_bits("dropout", det_ops, 8, 2, big);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loss_layers");
    TCase *tc = tcase_create("loss_layers");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, softmax_known_values);
    tcase_add_test(tc, softmax_matches_reference_every_dim);
    tcase_add_test(tc, cross_entropy_known_values);
    tcase_add_test(tc, cross_entropy_3d_matches_reference);
    tcase_add_test(tc, mse_known_values);
    tcase_add_test(tc, huge_logits_stay_finite);
    tcase_add_test(tc, embedding_values_and_accumulation);
    tcase_add_test(tc, error_messages);
    tcase_add_test(tc, dropout_identity_when_off);
    tcase_add_test(tc, dropout_statistics_and_scale);
    tcase_add_test(tc, dropout_reproducible_and_advances_rng);
    tcase_add_test(tc, thread_determinism);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
