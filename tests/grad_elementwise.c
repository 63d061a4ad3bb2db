/*
 * tests/grad_elementwise.c - gradient checks (double precision) for the
 * two-input elementwise ops, with and without broadcasting, and with one
 * tensor used several times in one graph.
 */
#include "harness.h"
#include "ops/ops.h"

typedef tg_tensor *(*binop)(tg_tensor *, tg_tensor *);

static tg_tensor *apply_binop(tg_tensor *const *in, void *ud)
{
    binop op = *(binop *)ud;
    return op(in[0], in[1]);
}

/* each op at several broadcast patterns; b kept away from 0 (div) and a
 * positive (pow's gradient with respect to the exponent needs log a) */
static void check_binop(const char *name, binop op)
{
    struct { int na, nb; int64_t sa[3], sb[3]; } cases[] = {
        {2, 2, {3, 4}, {3, 4}},       /* same shape */
        {2, 1, {3, 4}, {4}},          /* bias row */
        {2, 2, {3, 1}, {1, 4}},       /* outer product shape */
        {3, 2, {2, 3, 4}, {3, 1}},    /* middle axis */
        {1, 3, {4}, {2, 3, 4}},       /* a is the small one */
        {0, 2, {0}, {2, 3}},          /* 0-d scalar */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tg_tensor *a = tgt_leaf(cases[c].na, cases[c].sa, 10 + c, 0.5, 2.0);
        tg_tensor *b = tgt_leaf(cases[c].nb, cases[c].sb, 20 + c, 0.5, 2.0);
        char label[64];
        snprintf(label, sizeof label, "%s case %zu", name, c);
        tgt_gradcheck(label, apply_binop, &op, 2, a, b);
        tg_tape_reset();
    }
}

START_TEST(grad_add) { check_binop("add", tg_add); }
END_TEST
START_TEST(grad_sub) { check_binop("sub", tg_sub); }
END_TEST
START_TEST(grad_mul) { check_binop("mul", tg_mul); }
END_TEST
START_TEST(grad_div) { check_binop("div", tg_div); }
END_TEST
START_TEST(grad_pow) { check_binop("pow", tg_pow); }
END_TEST

/* a ** b at a = 0, where finite differences cannot go: PyTorch's values.
 * d/db = a^b log a is taken as 0 at a = 0 (0^0 = 1 would give -inf);
 * d/da = b a^(b-1) is 0 at b = 0. */
START_TEST(pow_at_zero_like_pytorch)
{
    tg_tensor *a = tg_requires_grad(tg_from_buffer(TG_SHAPE(3), (tg_real[]){0, 0, 2}));
    tg_tensor *b = tg_requires_grad(tg_from_buffer(TG_SHAPE(3), (tg_real[]){0, 2, 0}));
    ck_assert_int_eq(tg_backward(tg_sum(tg_pow(a, b))), 0);
    const double da[] = {0, 0, 0}, db[] = {0, 0, log(2.0)};
    for (int i = 0; i < 3; i++) {
        tgt_close(a->grad[i], da[i], 1e-15);
        tgt_close(b->grad[i], db[i], 1e-15);
    }
}
END_TEST

static tg_tensor *scalar_ops(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0];
    return tg_add(tg_neg(tg_mul_scalar(tg_add_scalar(x, 0.3), -1.7)),
                  tg_pow_scalar(x, 2.5));
}
START_TEST(grad_scalar_forms)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(2, 5), 3, 0.2, 3.0);
    tgt_gradcheck("neg/add_scalar/mul_scalar/pow_scalar", scalar_ops, NULL, 1, x);
}
END_TEST

/* x used four times: x*x + x/x... gradients from every use must add */
static tg_tensor *reuse(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0], *w = in[1];
    tg_tensor *y = tg_mul(x, x);
    y = tg_add(y, tg_mul(y, w)); /* y feeds two ops */
    return tg_sub(tg_div(y, tg_add_scalar(w, 3)), x);
}
START_TEST(grad_tensor_used_many_times)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(3, 4), 1, -1, 1);
    tg_tensor *w = tgt_leaf(TG_SHAPE(4), 2, -1, 1);
    tgt_gradcheck("reuse", reuse, NULL, 2, x, w);
}
END_TEST

/* the transposed (non-contiguous) view as an input */
static tg_tensor *strided(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *t = tg_transpose(in[0], 0, 1); /* [4, 3] view */
    return tg_mul(t, in[1]);
}
START_TEST(grad_strided_input)
{
    tg_tensor *a = tgt_leaf(TG_SHAPE(3, 4), 5, -1, 1);
    tg_tensor *b = tgt_leaf(TG_SHAPE(4, 3), 6, -1, 1);
    tgt_gradcheck("mul of a transposed view", strided, NULL, 2, a, b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_elementwise");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, grad_add);
    tcase_add_test(tc, grad_sub);
    tcase_add_test(tc, grad_mul);
    tcase_add_test(tc, grad_div);
    tcase_add_test(tc, grad_pow);
    tcase_add_test(tc, pow_at_zero_like_pytorch);
    tcase_add_test(tc, grad_scalar_forms);
    tcase_add_test(tc, grad_tensor_used_many_times);
    tcase_add_test(tc, grad_strided_input);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
