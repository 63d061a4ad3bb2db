/*
 * tests/test_lifetimes.c - lifetime mistakes the C API can see are
 * errors, not crashes or silently wrong numbers: a temporary used after
 * the tg_tape_reset that freed it (tensor/arena.h, "generations").
 *
 * Before generations, each case here read memory the next step had
 * reused: the sum of a tensor kept across a reset was the sum of another
 * tensor, and a matrix product of one whose header had been overwritten
 * by numbers crashed in the gemm's packing.
 */
#include "harness.h"
#include "nn/rnn.h"
#include "ops/ops.h"

/* "op: tensor tN [shape] is a temporary of tape generation G, ..." */
static void expect_dead(const char *op, const tg_tensor *t)
{
    char id[32], what[160];
    snprintf(id, sizeof id, "tensor t%u ", (unsigned)t->id);
    snprintf(what, sizeof what, "%s: ", op);
    tgt_expect_error(what, id, "is a temporary of tape generation",
                     "tg_tape_reset has freed it", "tg_rnn_keep_state");
}

/* the same step twice: the first step's tensor, asked after the second
 * made its own at the same places, is refused - it used to read the
 * second's numbers */
START_TEST(kept_across_a_reset_is_refused)
{
    tgt_capture_errors();
    tg_tensor *a = tg_full(TG_SHAPE(4, 4), 1.0);
    ck_assert(tg_check_live("test", 1, (const tg_tensor *[]){a}));
    tg_tape_reset();
    tg_tensor *b = tg_full(TG_SHAPE(4, 4), 2.0);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_null(tg_sum(a));
    expect_dead("sum", a);
    ck_assert_double_eq(tg_item(tg_sum(b)), 32.0);
    /* every entry point that reads or writes a tensor */
    ck_assert(isnan(tg_item(a)));
    expect_dead("item", a);
    ck_assert_ptr_null(tg_add(b, a));
    expect_dead("add", a);
    ck_assert_ptr_null(tg_detach(a));
    expect_dead("detach", a);
    ck_assert_ptr_null(tg_view_reshape(a, TG_SHAPE(16)));
    expect_dead("reshape", a);
    ck_assert_int_eq(tg_copy_(b, a), -1);
    expect_dead("copy_", a);
    tg_fill_(a, 3.0);
    expect_dead("fill_", a);
    ck_assert_ptr_null(tg_requires_grad(a));
    expect_dead("requires_grad", a);
    ck_assert_ptr_null(tg_concat((tg_tensor *[]){b, a}, 2, 0));
    expect_dead("concat", a);
    tg_tensor *parts[2];
    ck_assert_int_eq(tg_chunk(a, 2, 0, parts), -1);
    expect_dead("chunk", a);
    ck_assert_ptr_null(tg_linear(b, b, a));
    expect_dead("linear", a);
    ck_assert_double_eq(tg_item(tg_sum(b)), 32.0); /* b untouched */
}
END_TEST

/* a header the next step overwrote with numbers used to give the gemm a
 * garbage data pointer (SIGSEGV in its packing) */
START_TEST(matmul_of_a_freed_tensor_is_refused)
{
    tgt_capture_errors();
    tg_tensor *W = tg_tensor_new(TG_SHAPE(64, 64));
    tg_fill_(W, 0.5);
    tg_tensor *x = tg_ones(TG_SHAPE(64, 64));
    tg_tape_reset();
    for (int k = 0; k < 8; k++) /* the next step: large numbers everywhere */
        tg_full(TG_SHAPE(64, 64), 1e30);
    ck_assert_ptr_null(tg_matmul(x, W));
    expect_dead("matmul", x);
    tg_tensor_free(W);
}
END_TEST

/* backward of a loss from the last step */
START_TEST(backward_of_an_old_loss_is_refused)
{
    tgt_capture_errors();
    tg_tensor *x = tg_requires_grad(tg_ones(TG_SHAPE(3)));
    tg_tensor *loss = tg_sum(tg_tanh(x));
    tg_tape_reset();
    ck_assert_int_eq(tg_backward(loss), -1);
    expect_dead("backward", loss);
}
END_TEST

/* truncated BPTT done wrong: the final state carried into the next batch
 * as it is, instead of through tg_rnn_keep_state */
START_TEST(carried_rnn_state_is_refused)
{
    tgt_capture_errors();
    tg_manual_seed(1);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 4, 1, 0.0, NULL);
    tg_tensor *x = tg_randn(TG_SHAPE(5, 2, 3), NULL, 0, 1);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    tg_tensor *carried[2] = {out.state[0], out.state[1]};
    tg_tape_reset();
    x = tg_randn(TG_SHAPE(5, 2, 3), NULL, 0, 1);
    ck_assert_int_eq(tg_rnn_forward(r, x, carried, true, NULL, &out), -1);
    expect_dead("lstm", carried[0]);
    /* kept as the header says: fine */
    tg_tensor *keep[2] = {NULL, NULL};
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    tg_rnn_keep_state(r, &out, keep);
    tg_tape_reset();
    x = tg_randn(TG_SHAPE(5, 2, 3), NULL, 0, 1);
    ck_assert_int_eq(tg_rnn_forward(r, x, keep, true, NULL, &out), 0);
    ck_assert_int_eq(tgt_errors, 0);
    tg_tensor_free(keep[0]);
    tg_tensor_free(keep[1]);
    tg_rnn_free(r);
}
END_TEST

/* what stays valid: persistent tensors, views and detached copies made
 * in this step, temporaries of a rewind's own step */
START_TEST(live_tensors_pass)
{
    tgt_capture_errors();
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(2, 2)));
    tg_fill_(W, 1.0);
    for (int step = 0; step < 3; step++) {
        tg_tensor *x = tg_ones(TG_SHAPE(2, 2));
        tg_tensor *v = tg_view_transpose(W, 0, 1);
        tg_tensor *d = tg_detach(W);
        tg_tape_mark m = tg_tape_mark_get();
        tg_tensor *y = tg_add(tg_matmul(x, v), d);
        tg_tape_rewind(m);
        y = tg_matmul(x, W);
        ck_assert_int_eq(tg_backward(tg_sum(y)), 0);
        tg_tape_reset();
        /* a view or a detached header of a parameter is a temporary */
        ck_assert_ptr_null(tg_sum(d));
        expect_dead("sum", d);
    }
    ck_assert_int_eq(tgt_errors, 0);
    tgt_close(W->grad[0], 6.0, 0);
    tg_tensor_free(W);
}
END_TEST

/* a mark from before a reset cannot be rewound to */
START_TEST(rewind_to_a_mark_of_another_step)
{
    tgt_capture_errors();
    tg_tape_mark m = tg_tape_mark_get();
    tg_ones(TG_SHAPE(8));
    tg_tape_reset();
    tg_tensor *x = tg_ones(TG_SHAPE(8));
    tg_tape_rewind(m);
    tgt_expect_error("tape_rewind: ", "taken in tape generation",
                     "Take marks and rewind to them within one step");
    ck_assert_double_eq(tg_item(tg_sum(x)), 8.0); /* nothing rewound */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lifetimes");
    TCase *tc = tcase_create("generations");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, kept_across_a_reset_is_refused);
    tcase_add_test(tc, matmul_of_a_freed_tensor_is_refused);
    tcase_add_test(tc, backward_of_an_old_loss_is_refused);
    tcase_add_test(tc, carried_rnn_state_is_refused);
    tcase_add_test(tc, live_tensors_pass);
    tcase_add_test(tc, rewind_to_a_mark_of_another_step);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
