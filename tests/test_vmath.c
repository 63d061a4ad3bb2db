/*
 * tests/test_vmath.c - ops/kernels/vmath.h (the vectorizable exp, tanh, sigmoid
 * of the float build) given NaN and infinities: NaN flows through as NaN,
 * exp(-inf) = 0, tanh(+-inf) = +-1, sigmoid(-inf) = 0, sigmoid(inf) = 1, and no
 * undefined behaviour on the way. Converting NaN to an integer is undefined
 * (tg_exp_nonpos did so); `make asan` builds with
 * -fsanitize=float-cast-overflow, which stops at such a conversion.
 */
#include "harness.h"
#include "ops/ops.h"
#include "ops/kernels/vmath.h"

#ifndef TG_DOUBLE

/* the loops the ops run: vectorized at -O3 */
static void __attribute__((noinline))
apply(int n, const float *x, float *e, float *th, float *sg)
{
    for (int i = 0; i < n; i++) {
        e[i] = tg_exp_nonpos(x[i]);
        th[i] = tg_vtanh(x[i]);
        sg[i] = tg_vsigmoid(x[i]);
    }
}

START_TEST(nan_and_infinities)
{
    enum { N = 67 }; /* not a multiple of any vector width */
    float x[N], e[N], th[N], sg[N];
    const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f,
                             -1e30f, 1e30f, -104.5f, -87.0f, 3.0f, -3.0f};
    const int ns = (int)(sizeof special / sizeof *special);
    for (int i = 0; i < N; i++)
        x[i] = special[i % ns];
    apply(N, x, e, th, sg);
    for (int i = 0; i < N; i++) {
        float v = x[i];
        if (isnan(v)) {
            ck_assert_msg(isnan(e[i]) && isnan(th[i]) && isnan(sg[i]),
                          "element %d: NaN gave exp %g tanh %g sigmoid %g", i,
                          (double)e[i], (double)th[i], (double)sg[i]);
            continue;
        }
        double ref_e = v > 0 ? 1.0 : exp((double)v); /* clamped at 0 */
        tgt_close(e[i], ref_e, 1e-6);
        tgt_close(th[i], tanh((double)v), 1e-6);
        tgt_close(sg[i], 1 / (1 + exp(-(double)v)), 1e-6);
    }
    ck_assert(tg_exp_nonpos(-INFINITY) == 0.0f);
    ck_assert(tg_vtanh(INFINITY) == 1.0f && tg_vtanh(-INFINITY) == -1.0f);
    ck_assert(tg_vsigmoid(-INFINITY) == 0.0f && tg_vsigmoid(INFINITY) == 1.0f);
}
END_TEST

/* the same through the ops */
START_TEST(ops_pass_nan_through)
{
    tg_tensor *x = tg_from_buffer(1, (int64_t[]){4},
                                  (tg_real[]){NAN, INFINITY, -INFINITY, 0});
    tg_tensor *t = tg_tanh(x), *s = tg_sigmoid(x);
    ck_assert(isnan(t->data[0]) && isnan(s->data[0]));
    ck_assert(t->data[1] == 1 && t->data[2] == -1 && t->data[3] == 0);
    ck_assert(s->data[1] == 1 && s->data[2] == 0 && s->data[3] == 0.5f);
}
END_TEST

#endif

static Suite *suite(void)
{
    Suite *s = suite_create("vmath");
    TCase *tc = tcase_create("special values");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
#ifndef TG_DOUBLE
    tcase_add_test(tc, nan_and_infinities);
    tcase_add_test(tc, ops_pass_nan_through);
#endif
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
