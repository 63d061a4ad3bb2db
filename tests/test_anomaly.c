/*
 * tests/test_anomaly.c - anomaly mode: the first NaN or infinity, forward
 * or backward, is reported with the op, its tape entry, its inputs and the
 * time step.
 */
#include "harness.h"
#include "ops/ops.h"

#include <stdlib.h>

START_TEST(forward_names_the_op)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    tg_tensor *x = tg_set_name(tg_requires_grad(tg_from_buffer(TG_SHAPE(3), (tg_real[]){1, 0, 2})), "x");
    tg_tensor *y = tg_mul_scalar(x, 2);    /* fine */
    ck_assert_int_eq(tgt_errors, 0);
    tg_tape_set_step(7);
    tg_log(y);                             /* log(0) = -inf */
    tgt_expect_error("anomaly", "op 'log'", "tape entry #1", "time step 7", "-inf",
                     "element 1", "[3]", "#0[3]");
    tg_tape_set_step(-1);
    /* the op that made a bad value returns NULL, and the ops after it are
     * quiet: one message */
    tg_tensor *z = tg_div(tg_zeros(TG_SHAPE(2)), tg_zeros(TG_SHAPE(2))); /* NaN */
    tgt_expect_error("anomaly", "op 'div'", "NaN");
    ck_assert_ptr_null(z);
    ck_assert_ptr_null(tg_exp(z));
    ck_assert_int_eq(tgt_errors, 0);
    /* an op fed a bad value from outside says its input was already bad */
    tg_exp(tg_from_buffer(TG_SHAPE(2), (tg_real[]){1, NAN}));
    tgt_expect_error("anomaly", "op 'exp'", "(non-finite)");
}
END_TEST

START_TEST(backward_names_the_op)
{
    tgt_capture_errors();
    tg_set_anomaly_mode(true);
    tg_tensor *x = tg_requires_grad(tg_from_buffer(TG_SHAPE(2), (tg_real[]){4, 0}));
    tg_tape_set_step(3);
    tg_tensor *loss = tg_sum(tg_sqrt(x));  /* sqrt(0) is fine, its slope is not */
    tg_tape_set_step(-1);
    ck_assert_int_eq(tgt_errors, 0);
    ck_assert_int_eq(tg_backward(loss), -1);
    tgt_expect_error("anomaly", "backward of op 'sqrt'", "time step 3", "inf",
                     "input 0 [2]");
}
END_TEST

START_TEST(off_by_default_and_from_environment)
{
    tgt_capture_errors();
    unsetenv("TG_ANOMALY");
    tg_tensor *x = tg_requires_grad(tg_zeros(TG_SHAPE(2)));
    ck_assert_int_eq(tg_backward(tg_sum(tg_sqrt(tg_log(x)))), 0); /* quietly NaN */
    ck_assert_int_eq(tgt_errors, 0);
    ck_assert(!tg_anomaly_mode());
}
END_TEST

START_TEST(environment_turns_it_on)
{
    tgt_capture_errors();
    setenv("TG_ANOMALY", "1", 1);
    ck_assert(tg_anomaly_mode());
    tg_log(tg_zeros(TG_SHAPE(1)));
    tgt_expect_error("anomaly", "op 'log'");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("anomaly");
    TCase *tc = tcase_create("anomaly");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, forward_names_the_op);
    tcase_add_test(tc, backward_names_the_op);
    tcase_add_test(tc, off_by_default_and_from_environment);
    tcase_add_test(tc, environment_turns_it_on);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
