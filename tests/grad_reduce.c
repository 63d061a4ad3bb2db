/*
 * tests/grad_reduce.c - gradient checks (double precision) for sum, mean
 * (over everything) and sum_dim, mean_dim, max_dim: every dim of a 3-d
 * tensor, negative dims, keepdim on and off, a transposed (strided) input,
 * 0-d and one-element tensors, an input used twice.
 *
 * The gradcheck weighs every output element by its own random number, so a
 * gradient sent to the wrong slice is caught. max_dim's inputs are
 * distinct values at least 0.1 apart, so the finite-difference step never
 * changes which element is the maximum.
 */
#include "harness.h"
#include "ops/ops.h"

/* ---- sum and mean over everything ---- */

static tg_tensor *f_sum(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_sum(in[0]);
}
static tg_tensor *f_mean(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_mean(in[0]);
}
/* transposed views: [4, 3] of a [3, 4], and dims 0 and 2 of a 3-d input */
static tg_tensor *f_sum_t(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_sum(tg_transpose(in[0], 0, -1));
}
static tg_tensor *f_mean_t(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_mean(tg_transpose(in[0], 0, -1));
}
/* x used twice: sum(x) * mean(x * x) */
static tg_tensor *f_sum_mean_reuse(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_mul(tg_sum(in[0]), tg_mean(tg_mul(in[0], in[0])));
}

START_TEST(grad_sum_mean_all)
{
    struct { int nd; int64_t s[3]; } shapes[] = {
        {2, {3, 4}}, {3, {2, 3, 4}}, {1, {7}}, {0, {0}}, {1, {1}}, {3, {1, 1, 1}},
    };
    char label[64];
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        tg_tensor *x = tgt_leaf(shapes[k].nd, shapes[k].s, 30 + k, -1, 1);
        snprintf(label, sizeof label, "sum shape %zu", k);
        tgt_gradcheck(label, f_sum, NULL, 1, x);
        snprintf(label, sizeof label, "mean shape %zu", k);
        tgt_gradcheck(label, f_mean, NULL, 1, x);
        tg_tape_reset();
    }
    tg_tensor *x = tgt_leaf(TG_SHAPE(3, 4), 41, -1, 1);
    tgt_gradcheck("sum of a transposed view", f_sum_t, NULL, 1, x);
    tgt_gradcheck("mean of a transposed view", f_mean_t, NULL, 1, x);
    tg_tensor *x3 = tgt_leaf(TG_SHAPE(2, 3, 4), 42, -1, 1);
    tgt_gradcheck("sum of a transposed 3-d view", f_sum_t, NULL, 1, x3);
    tgt_gradcheck("sum(x) * mean(x*x)", f_sum_mean_reuse, NULL, 1, x);
}
END_TEST

/* ---- over one axis ---- */

typedef tg_tensor *(*dimop)(tg_tensor *, int, bool);
typedef struct dim_case {
    dimop f;
    int dim;
    bool keepdim;
    bool transpose; /* apply to tg_transpose(x, 0, -1) */
} dim_case;

static tg_tensor *f_dim(tg_tensor *const *in, void *ud)
{
    const dim_case *c = ud;
    tg_tensor *x = c->transpose ? tg_transpose(in[0], 0, -1) : in[0];
    return c->f(x, c->dim, c->keepdim);
}

/* A leaf of the given shape whose values are distinct and at least 0.1
 * apart (a scrambled arange), for max_dim: no ties, no switch of the
 * maximum under a 1e-6 step. */
static tg_tensor *distinct_leaf(int ndim, const int64_t *shape, int64_t mult)
{
    tg_tensor *t = tg_empty(ndim, shape);
    int64_t n = t->numel, p = 1009; /* prime > n: i*mult mod p distinct */
    TG_ASSERT(n < p);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = (tg_real)(0.1 * (double)((i * mult) % p) - 20.0);
    return tg_requires_grad(t);
}

static void check_dim_op(const char *name, dimop f)
{
    char label[96];
    bool is_max = f == tg_max_dim;
    /* every dim of a 3-d tensor, as positive and as negative numbers */
    int dims[] = {0, 1, 2, -1, -2, -3};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++)
        for (int keep = 0; keep < 2; keep++)
            for (int tr = 0; tr < 2; tr++) {
                tg_tensor *x = is_max ? distinct_leaf(TG_SHAPE(2, 3, 4), 37)
                                      : tgt_leaf(TG_SHAPE(2, 3, 4), 50 + d, -1, 1);
                dim_case c = {f, dims[d], keep, tr};
                snprintf(label, sizeof label, "%s dim %d keepdim %d%s", name,
                         dims[d], keep, tr ? " of a transposed view" : "");
                tgt_gradcheck(label, f_dim, &c, 1, x);
                tg_tape_reset();
            }
    /* a 2-d input both ways (a row and a column reduction) */
    for (int d = 0; d < 2; d++) {
        tg_tensor *x = is_max ? distinct_leaf(TG_SHAPE(5, 7), 211)
                              : tgt_leaf(TG_SHAPE(5, 7), 60 + d, -1, 1);
        dim_case c = {f, d, false, d == 1};
        snprintf(label, sizeof label, "%s 2-d dim %d", name, d);
        tgt_gradcheck(label, f_dim, &c, 1, x);
        tg_tape_reset();
    }
    /* tiny tensors: 0-d (dim 0 and -1), one element, a size-1 axis */
    struct { int nd; int64_t s[3]; int dim; bool keep; } small[] = {
        {0, {0}, 0, false},   {0, {0}, -1, true},   {1, {1}, 0, false},
        {1, {1}, -1, true},   {2, {1, 1}, 1, true}, {3, {2, 1, 3}, 1, false},
        {1, {6}, 0, false},
    };
    for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
        tg_tensor *x = is_max ? distinct_leaf(small[k].nd, small[k].s, 13)
                              : tgt_leaf(small[k].nd, small[k].s, 70 + k, -1, 1);
        dim_case c = {f, small[k].dim, small[k].keep, false};
        snprintf(label, sizeof label, "%s small case %zu", name, k);
        tgt_gradcheck(label, f_dim, &c, 1, x);
        tg_tape_reset();
    }
}

START_TEST(grad_sum_dim) { check_dim_op("sum_dim", tg_sum_dim); }
END_TEST
START_TEST(grad_mean_dim) { check_dim_op("mean_dim", tg_mean_dim); }
END_TEST
START_TEST(grad_max_dim) { check_dim_op("max_dim", tg_max_dim); }
END_TEST

/* a softmax-like composition: x - max(x) broadcast back, then a mean over
 * the other axis; x feeds three ops */
static tg_tensor *f_composed(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0];
    tg_tensor *m = tg_max_dim(x, -1, true);           /* [4, 1] */
    tg_tensor *e = tg_exp(tg_sub(x, m));               /* [4, 5] */
    tg_tensor *s = tg_sum_dim(e, 1, true);             /* [4, 1] */
    return tg_mean_dim(tg_div(e, tg_add(s, tg_mean(x))), 0, false); /* [5] */
}
START_TEST(grad_composed)
{
    tg_tensor *x = distinct_leaf(TG_SHAPE(4, 5), 7);
    for (int64_t i = 0; i < x->numel; i++)
        x->data[i] *= (tg_real)0.1; /* keep exp moderate; still 0.01 apart */
    tgt_gradcheck("max/exp/sum_dim/mean_dim/mean composed", f_composed, NULL, 1, x);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_reduce");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, grad_sum_mean_all);
    tcase_add_test(tc, grad_sum_dim);
    tcase_add_test(tc, grad_mean_dim);
    tcase_add_test(tc, grad_max_dim);
    tcase_add_test(tc, grad_composed);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
