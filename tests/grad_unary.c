/*
 * tests/grad_unary.c - gradient checks (double precision) for exp, log,
 * tanh, sigmoid, relu and sqrt: on several shapes (0-d, one element, 2-d,
 * 3-d), on a transposed (strided) input, on one input used twice, and at
 * the saturated ends where the stable forms matter (sigmoid(+-100),
 * tanh(+-50)).
 */
#include "harness.h"
#include "ops/ops.h"

typedef tg_tensor *(*unop)(tg_tensor *);

typedef struct op_case {
    const char *name;
    unop f;
    double lo, hi; /* input range: inside the domain, away from kinks */
} op_case;

static const op_case ops[] = {
    {"exp", tg_exp, -2, 2},        {"log", tg_log, 0.3, 3},
    {"tanh", tg_tanh, -2.5, 2.5},  {"sigmoid", tg_sigmoid, -5, 5},
    {"relu", tg_relu, 0, 0},       {"sqrt", tg_sqrt, 0.2, 3},
    {"softplus", tg_softplus, -4, 4},
};

/* The input: uniform in [lo, hi), except for relu, whose values are
 * +-(0.1 .. 2.0) with alternating signs, so no element sits within the
 * finite-difference step of the kink at 0. */
static tg_tensor *make_input(const op_case *c, int ndim, const int64_t *shape,
                             uint64_t seed)
{
    if (c->lo < c->hi)
        return tgt_leaf(ndim, shape, seed, c->lo, c->hi);
    tg_tensor *t = tg_empty(ndim, shape);
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int64_t i = 0; i < t->numel; i++) {
        double v = 0.1 + 1.9 * tg_rng_uniform(&r);
        t->data[i] = (tg_real)(i % 2 ? -v : v);
    }
    return tg_requires_grad(t);
}

static tg_tensor *apply(tg_tensor *const *in, void *ud)
{
    return ((const op_case *)ud)->f(in[0]);
}

/* the op applied to the [4, 3] transpose of a [3, 4] input */
static tg_tensor *apply_transposed(tg_tensor *const *in, void *ud)
{
    return ((const op_case *)ud)->f(tg_transpose(in[0], 0, 1));
}

/* op(x) * x: x feeds the op and the product, both gradients must add */
static tg_tensor *apply_used_twice(tg_tensor *const *in, void *ud)
{
    return tg_mul(((const op_case *)ud)->f(in[0]), in[0]);
}

static void check_op(const op_case *c)
{
    struct { int nd; int64_t s[3]; } shapes[] = {
        {2, {3, 4}}, {3, {2, 3, 2}}, {0, {0}}, {1, {1}}, {2, {1, 1}},
    };
    char label[96];
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        tg_tensor *x = make_input(c, shapes[k].nd, shapes[k].s, 100 + k);
        snprintf(label, sizeof label, "%s shape %zu", c->name, k);
        tgt_gradcheck(label, apply, (void *)c, 1, x);
        tg_tape_reset();
    }
    tg_tensor *x = make_input(c, TG_SHAPE(3, 4), 7);
    snprintf(label, sizeof label, "%s of a transposed view", c->name);
    tgt_gradcheck(label, apply_transposed, (void *)c, 1, x);
    snprintf(label, sizeof label, "%s(x) * x", c->name);
    tgt_gradcheck(label, apply_used_twice, (void *)c, 1, x);
}

START_TEST(grad_each_op) { check_op(&ops[_i]); }
END_TEST

/* Saturated inputs: the analytic gradient must be finite (no inf * 0 or
 * NaN) and agree with finite differences, which are ~0 there. */
static tg_tensor *saturated_mix(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_add(tg_sigmoid(in[0]), tg_tanh(in[1]));
}
START_TEST(grad_saturated_ends)
{
    tg_tensor *a = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(2, 3), (tg_real[]){100, -100, 30, -30, 0, 1e-3}));
    tg_tensor *b = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(2, 3), (tg_real[]){50, -50, 20, -20, 0, -1e-3}));
    tgt_gradcheck("sigmoid/tanh at +-100/+-50", saturated_mix, NULL, 2, a, b);
    /* the analytic gradients themselves (dL/dx = R * f'(x)) stay finite */
    tg_tensor *pa = tg_requires_grad(tg_tensor_new(TG_SHAPE(2, 3)));
    tg_tensor *pb = tg_requires_grad(tg_tensor_new(TG_SHAPE(2, 3)));
    tg_copy_(pa, a);
    tg_copy_(pb, b);
    tg_backward(tg_sum(saturated_mix((tg_tensor *[]){pa, pb}, NULL)));
    for (int i = 0; i < 6; i++) {
        ck_assert(isfinite(pa->grad[i]) && isfinite(pb->grad[i]));
        ck_assert(pa->grad[i] >= 0 && pa->grad[i] <= 0.25);
    }
    ck_assert(pa->grad[0] < 1e-40 && pb->grad[0] == 0);
    tgt_close(pa->grad[4], 0.25, 1e-15); /* sigmoid'(0) */
    tgt_close(pb->grad[4], 1.0, 1e-15);  /* tanh'(0) */
    tg_tape_reset();
    tg_tensor_free(pa);
    tg_tensor_free(pb);
}
END_TEST

/* a chain of all six, as a cell would use them */
static tg_tensor *chain(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0];
    tg_tensor *h = tg_tanh(tg_mul(tg_sigmoid(x), tg_exp(tg_mul_scalar(x, 0.5))));
    tg_tensor *r = tg_relu(tg_add_scalar(x, 0.05)); /* kink at -0.05 */
    return tg_add(tg_log(tg_add_scalar(tg_sqrt(tg_mul(x, x)), 1)), tg_mul(h, r));
}
START_TEST(grad_chain)
{
    tg_tensor *x = tg_requires_grad(tg_from_buffer(
        TG_SHAPE(2, 4), (tg_real[]){-1.3, -0.7, 0.4, 1.1, 2.0, -2.2, 0.9, -0.3}));
    tgt_gradcheck("chain of all unary ops", chain, NULL, 1, x);
}
END_TEST

/* tg_step_ste: backward is the documented surrogate sigmoid'(x), not the
 * derivative of the step (0 almost everywhere), so no finite differences:
 * the gradient of sum(w * step_ste(x)) must equal that of
 * sum(w * sigmoid(x)) exactly, on a transposed (strided) input with
 * zeros, saturated ends and an input used twice (gradients add). */
START_TEST(step_ste_grad_is_sigmoid_grad)
{
    tg_real v[12] = {-3, -0.5, 0, 0.25, 1, 2.5, 100, -100, -0.0, 1e-3, -1e-3, 7};
    tg_tensor *xs = tg_requires_grad(tg_from_buffer(TG_SHAPE(3, 4), v));
    tg_tensor *xg = tg_requires_grad(tg_from_buffer(TG_SHAPE(3, 4), v));
    tg_tensor *w = tgt_leaf(TG_SHAPE(4, 3), 3, -2, 2);
    tg_tensor *ts = tg_transpose(xs, 0, 1), *tg = tg_transpose(xg, 0, 1);
    /* used twice: w * f(x^T) + f(x^T) */
    tg_tensor *ls = tg_sum(tg_add(tg_mul(w, tg_step_ste(ts)), tg_step_ste(ts)));
    tg_tensor *lg = tg_sum(tg_add(tg_mul(w, tg_sigmoid(tg)), tg_sigmoid(tg)));
    ck_assert_int_eq(tg_backward(ls), 0);
    ck_assert_int_eq(tg_backward(lg), 0);
    int nonzero = 0;
    for (int i = 0; i < 12; i++) {
        ck_assert_msg(xs->grad[i] == xg->grad[i], "element %d: %.17g vs %.17g",
                      i, xs->grad[i], xg->grad[i]);
        nonzero += xs->grad[i] != 0;
    }
    ck_assert_int_ge(nonzero, 10); /* all but the saturated +-100 */
    /* and by hand: at x = 0, dL/dx = (w + 1) * 0.25 */
    tgt_close(xs->grad[2], ((double)w->data[2 * 3 + 0] + 1) * 0.25, 1e-15);
    /* the forward is the hard step, not the sigmoid */
    tgt_tensor_equals(tg_step_ste(xs), (double[]){0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1},
                      12, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_unary");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_loop_test(tc, grad_each_op, 0, (int)(sizeof ops / sizeof *ops));
    tcase_add_test(tc, grad_saturated_ends);
    tcase_add_test(tc, grad_chain);
    tcase_add_test(tc, step_ste_grad_is_sigmoid_grad);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
