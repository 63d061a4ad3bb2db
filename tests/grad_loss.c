/*
 * tests/grad_loss.c - gradient checks (double precision) for softmax and
 * log_softmax along every axis (also of a transposed, strided input), the
 * fused cross-entropy with both reductions on 2-D, 3-D, 1-D and strided
 * logits, and mse with both reductions and the gradient with respect to
 * the target.
 */
#include "harness.h"
#include "ops/ops.h"

/* ---- softmax / log_softmax ---------------------------------------------- */

typedef struct sm_case {
    tg_tensor *(*fn)(tg_tensor *, int);
    int dim;
    int transpose; /* apply tg_transpose(x, 0, 2) first: a strided input */
} sm_case;

static tg_tensor *f_softmax(tg_tensor *const *in, void *ud)
{
    const sm_case *c = ud;
    tg_tensor *x = c->transpose ? tg_transpose(in[0], 0, 2) : in[0];
    if (c->transpose)
        ck_assert(!tg_is_contiguous(x));
    return c->fn(x, c->dim);
}

static void check_softmax(const char *name, tg_tensor *(*fn)(tg_tensor *, int))
{
    int dims[] = {0, 1, 2, -1, -2, -3};
    for (int transpose = 0; transpose < 2; transpose++)
        for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
            /* [3, 4, 5]; transposed it is seen as [5, 4, 3] */
            tg_tensor *x = tgt_leaf(TG_SHAPE(3, 4, 5), 7 + k, -2, 2);
            sm_case c = {fn, dims[k], transpose};
            char label[64];
            snprintf(label, sizeof label, "%s dim %d%s", name, dims[k],
                     transpose ? " (transposed input)" : "");
            tgt_gradcheck(label, f_softmax, &c, 1, x);
            tg_tape_reset();
        }
    /* 2-D, last axis (the classifier case), and 1-D */
    tg_tensor *x2 = tgt_leaf(TG_SHAPE(6, 7), 3, -3, 3);
    sm_case c2 = {fn, 1, 0};
    tgt_gradcheck(name, f_softmax, &c2, 1, x2);
    tg_tensor *x1 = tgt_leaf(TG_SHAPE(9), 4, -3, 3);
    sm_case c1 = {fn, 0, 0};
    tgt_gradcheck(name, f_softmax, &c1, 1, x1);
    /* inner = 70 columns: more than one tile of the kernel per outer row */
    tg_tensor *xw = tgt_leaf(TG_SHAPE(2, 3, 70), 5, -3, 3);
    sm_case cw = {fn, 1, 0};
    tgt_gradcheck(name, f_softmax, &cw, 1, xw);
}

START_TEST(grad_softmax) { check_softmax("softmax", tg_softmax); }
END_TEST
START_TEST(grad_log_softmax) { check_softmax("log_softmax", tg_log_softmax); }
END_TEST

/* softmax(x) * log_softmax(x): x feeds both ops, their gradients add */
static tg_tensor *f_entropy_like(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_mul(tg_softmax(in[0], -1), tg_log_softmax(in[0], -1));
}
START_TEST(grad_softmax_input_used_twice)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(4, 6), 11, -2, 2);
    tgt_gradcheck("softmax * log_softmax", f_entropy_like, NULL, 1, x);
}
END_TEST

/* ---- cross_entropy ------------------------------------------------------ */

typedef struct ce_case {
    const int64_t *targets;
    tg_reduction red;
    int transpose; /* logits given as tg_transpose of [C, N] */
} ce_case;

static tg_tensor *f_ce(tg_tensor *const *in, void *ud)
{
    const ce_case *c = ud;
    tg_tensor *x = c->transpose ? tg_transpose(in[0], 0, 1) : in[0];
    return tg_cross_entropy(x, c->targets, c->red);
}

START_TEST(grad_cross_entropy)
{
    /* [N, C] = [5, 4], every class used, one repeated */
    static const int64_t t2[5] = {0, 3, 1, 2, 3};
    /* [T, B, C] = [3, 2, 5] */
    static const int64_t t3[6] = {4, 0, 2, 2, 1, 3};
    static const int64_t t1[1] = {2};
    tg_reduction reds[] = {TG_MEAN, TG_SUM};
    for (int r = 0; r < 2; r++) {
        const char *rn = r ? "sum" : "mean";
        char label[64];
        ce_case c = {t2, reds[r], 0};
        snprintf(label, sizeof label, "cross_entropy [5,4] %s", rn);
        tgt_gradcheck(label, f_ce, &c, 1,
                      tgt_leaf(TG_SHAPE(5, 4), 20 + r, -3, 3));
        ce_case c3 = {t3, reds[r], 0};
        snprintf(label, sizeof label, "cross_entropy [3,2,5] %s", rn);
        tgt_gradcheck(label, f_ce, &c3, 1,
                      tgt_leaf(TG_SHAPE(3, 2, 5), 30 + r, -3, 3));
        ce_case c1 = {t1, reds[r], 0};
        snprintf(label, sizeof label, "cross_entropy [3] %s", rn);
        tgt_gradcheck(label, f_ce, &c1, 1,
                      tgt_leaf(TG_SHAPE(3), 40 + r, -3, 3));
        /* strided: [4, 5] transposed to [5, 4], class stride 5 */
        ce_case ct = {t2, reds[r], 1};
        snprintf(label, sizeof label, "cross_entropy transposed %s", rn);
        tgt_gradcheck(label, f_ce, &ct, 1,
                      tgt_leaf(TG_SHAPE(4, 5), 50 + r, -3, 3));
        tg_tape_reset();
    }
}
END_TEST

/* cross_entropy of log_softmax(x): the loss composes with other ops and
 * large logits do not spoil the gradient */
static tg_tensor *f_ce_composed(tg_tensor *const *in, void *ud)
{
    (void)ud;
    static const int64_t t[3] = {1, 0, 2};
    tg_tensor *z = tg_add(tg_mul_scalar(in[0], 3), in[1]);
    return tg_cross_entropy(tg_log_softmax(z, 1), t, TG_MEAN);
}
START_TEST(grad_cross_entropy_composed)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(3, 3), 60, -2, 2);
    tg_tensor *b = tgt_leaf(TG_SHAPE(3), 61, 20, 30); /* large offsets */
    tgt_gradcheck("cross_entropy(log_softmax(3x + b))", f_ce_composed, NULL,
                  2, x, b);
}
END_TEST

/* ---- mse ---------------------------------------------------------------- */

typedef struct mse_case {
    tg_reduction red;
    int transpose; /* pred given as a transposed view */
} mse_case;

static tg_tensor *f_mse(tg_tensor *const *in, void *ud)
{
    const mse_case *c = ud;
    tg_tensor *p = c->transpose ? tg_transpose(in[0], 0, 1) : in[0];
    return tg_mse(p, in[1], c->red);
}

START_TEST(grad_mse)
{
    tg_reduction reds[] = {TG_MEAN, TG_SUM};
    for (int r = 0; r < 2; r++) {
        char label[64];
        mse_case c = {reds[r], 0};
        snprintf(label, sizeof label, "mse %s (pred and target)",
                 r ? "sum" : "mean");
        /* both inputs require grad: d/dtarget is checked too */
        tgt_gradcheck(label, f_mse, &c, 2, tgt_leaf(TG_SHAPE(3, 4), 70 + r, -2, 2),
                      tgt_leaf(TG_SHAPE(3, 4), 80 + r, -2, 2));
        mse_case ct = {reds[r], 1};
        snprintf(label, sizeof label, "mse %s transposed pred",
                 r ? "sum" : "mean");
        tgt_gradcheck(label, f_mse, &ct, 2, tgt_leaf(TG_SHAPE(4, 3), 90 + r, -2, 2),
                      tgt_leaf(TG_SHAPE(3, 4), 100 + r, -2, 2));
        tg_tape_reset();
    }
}
END_TEST

/* only the target requires grad: pred's gradient pointer is NULL */
static tg_tensor *f_mse_target_only(tg_tensor *const *in, void *ud)
{
    tg_tensor *pred = ud;
    return tg_mse(pred, in[0], TG_SUM);
}
START_TEST(grad_mse_target_only)
{
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *pred = tg_randn(TG_SHAPE(2, 3, 2), &r, 0, 1);
    tg_tensor *t = tgt_leaf(TG_SHAPE(2, 3, 2), 6, -1, 1);
    tgt_gradcheck("mse w.r.t. target only", f_mse_target_only, pred, 1, t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_loss");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, grad_softmax);
    tcase_add_test(tc, grad_log_softmax);
    tcase_add_test(tc, grad_softmax_input_used_twice);
    tcase_add_test(tc, grad_cross_entropy);
    tcase_add_test(tc, grad_cross_entropy_composed);
    tcase_add_test(tc, grad_mse);
    tcase_add_test(tc, grad_mse_target_only);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
