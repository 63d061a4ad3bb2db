/*
 * tests/harness.h - what every test file shares: a main() that runs one
 * Check suite and exits non-zero on any failure, an error handler that
 * records tapegrad errors instead of aborting, comparison helpers, and
 * a fixed thread count for the tests that compare thread counts.
 *
 * Each tests/test_*.c (float library) or tests/grad_*.c (double library)
 * file builds one Suite and ends with TG_TEST_MAIN(its_suite_function).
 *
 * Check runs every test in a forked child. GCC's OpenMP runtime can hang
 * in a child forked after the parent used OpenMP (GCC bug 60035), so the
 * parent does nothing but fork: no unchecked fixtures, no work in main.
 */
#ifndef TG_TESTS_HARNESS_H
#define TG_TESTS_HARNESS_H

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "tensor/arena.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- recording errors ---------------------------------------------- */
static int tgt_errors;
static void tgt_record_error(const char *op, const char *msg, void *ud)
{
    (void)op;
    (void)msg;
    (void)ud;
    tgt_errors++;
}
/* From now on tapegrad errors are counted, not fatal. */
static inline void tgt_capture_errors(void)
{
    tgt_errors = 0;
    tg_clear_error();
    tg_set_error_handler(tgt_record_error, NULL);
}
/* Asserts that exactly one error was reported since the last call and that
 * its message contains every given fragment. */
#define tgt_expect_error(...)                                              \
    do {                                                                   \
        const char *frags_[] = {__VA_ARGS__};                              \
        ck_assert_msg(tgt_errors == 1, "expected one error, got %d (%s)",  \
                      tgt_errors, tg_last_error());                        \
        for (size_t i_ = 0; i_ < sizeof frags_ / sizeof *frags_; i_++)     \
            ck_assert_msg(strstr(tg_last_error(), frags_[i_]),             \
                          "error \"%s\" lacks \"%s\"", tg_last_error(),    \
                          frags_[i_]);                                     \
        tgt_errors = 0;                                                    \
        tg_clear_error();                                                  \
    } while (0)

/* --- comparisons ------------------------------------------------------- */
#define tgt_close(a, b, tol)                                               \
    do {                                                                   \
        double a_ = (double)(a), b_ = (double)(b);                         \
        ck_assert_msg(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)),        \
                      "%s = %.9g, expected %.9g (tol %g)", #a, a_, b_,     \
                      (double)(tol));                                      \
    } while (0)

/* t's elements (row-major, following strides) against expected[]. */
static inline void tgt_tensor_equals(const tg_tensor *t, const double *expected,
                                     int64_t n, double tol)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->numel, n);
    for (int64_t i = 0; i < n; i++) {
        double v = tg_flat_get(t, i);
        ck_assert_msg(fabs(v - expected[i]) <= tol * fmax(1.0, fabs(expected[i])),
                      "element %lld = %.9g, expected %.9g", (long long)i, v,
                      expected[i]);
    }
}

static inline void tgt_shape_is(const tg_tensor *t, int ndim,
                                const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_int_eq(t->shape[d], shape[d]);
}

/* A leaf requiring grad with normal(0, 1) values (or uniform in [lo, hi)
 * when lo < hi), seeded. */
static inline tg_tensor *tgt_leaf(int ndim, const int64_t *shape,
                                  uint64_t seed, double lo, double hi)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_tensor *t = lo < hi ? tg_rand(ndim, shape, &r, lo, hi)
                           : tg_randn(ndim, shape, &r, 0, 1);
    return tg_requires_grad(t);
}

/* Gradient check in double precision with the project's tolerance. */
#define TGT_EPS 1e-6
#define TGT_TOL 1e-6
#define tgt_gradcheck(label, f, ud, n, ...)                                \
    do {                                                                   \
        tg_gradcheck_result r_;                                            \
        int rc_ = tg_gradcheck(f, ud, n, (tg_tensor *[]){__VA_ARGS__},     \
                               TGT_EPS, TGT_TOL, &r_);                     \
        tg_gradcheck_print(stdout, label, &r_, TGT_TOL);                   \
        ck_assert_msg(rc_ == 0, "gradcheck %s failed: max err %g at input " \
                      "%d element %lld (analytic %.9g, numeric %.9g)",     \
                      label, r_.max_err, r_.worst_input,                   \
                      (long long)r_.worst_index, r_.analytic, r_.numeric); \
        ck_assert_int_gt(r_.checked, 0);                                   \
    } while (0)

/* --- thread counts ------------------------------------------------ */
/* Exactly n threads from here on, for the tests that compare the results
 * of several thread counts (which must be the same bits). The governor
 * (tensor/threads.c) starts a busy machine - a CI runner, `make -j` -
 * on fewer threads than asked, and a comparison of 1 thread with 2 would
 * compare 1 with 1: it is turned off. */
static inline void tgt_threads(int n)
{
    tg_set_thread_governor(false);
    tg_set_num_threads(n);
#ifdef _OPENMP
    ck_assert_int_eq(tg_threads_in_use(), n);
#endif
}

/* Frees the tape after every test (checked teardown runs in the child). */
static inline void tgt_teardown(void) { tg_tape_free_all(); }

#define TG_TEST_MAIN(suite_fn)                                             \
    int main(void)                                                         \
    {                                                                      \
        SRunner *sr = srunner_create(suite_fn());                          \
        srunner_run_all(sr, CK_NORMAL);                                    \
        int failed = srunner_ntests_failed(sr);                            \
        srunner_free(sr);                                                  \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                       \
    }

#endif
