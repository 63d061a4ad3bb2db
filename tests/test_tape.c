/*
 * tests/test_tape.c - the autodiff engine: gradients and their
 * accumulation, retain_grad, detach, no-grad mode, error cases, a 10,000
 * step unrolled chain, and memory that does not grow from step to step.
 */
#include "harness.h"
#include "ops/ops.h"

/* y = sum(x*x + 3x): dy/dx = 2x + 3 */
START_TEST(simple_gradient)
{
    tg_tensor *x = tg_requires_grad(tg_from_buffer(TG_SHAPE(3),
                                                   (tg_real[]){1, -2, 0.5}));
    tg_tensor *y = tg_sum(tg_add(tg_mul(x, x), tg_mul_scalar(x, 3)));
    tgt_close(tg_item(y), 1 + 4 + 0.25 + 3 * (1 - 2 + 0.5), 1e-6);
    ck_assert_int_eq(tg_backward(y), 0);
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(3), x->grad),
                      (double[]){5, -1, 4}, 3, 1e-6);
}
END_TEST

/* parameters keep gradients across backward calls until zeroed */
START_TEST(parameter_gradients_accumulate)
{
    tg_tensor *w = tg_requires_grad(tg_tensor_new(TG_SHAPE(2)));
    tg_fill_(w, 2.0);
    for (int step = 1; step <= 3; step++) {
        tg_tensor *y = tg_sum(tg_mul(w, w)); /* dy/dw = 2w = 4 */
        ck_assert_int_eq(tg_backward(y), 0);
        tgt_close(w->grad[0], 4.0 * step, 1e-6);
        tg_tape_reset();
    }
    tg_zero_grad(w);
    tgt_close(w->grad[1], 0, 0);
    tg_tensor_free(w);
}
END_TEST

/* h feeds two consumers: its gradient is the sum of both paths */
START_TEST(retain_grad_of_intermediate)
{
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(1), 0.5));
    tg_tensor *h = tg_retain_grad(tg_tanh(x));
    tg_tensor *k = tg_mul_scalar(x, 2); /* not retained */
    tg_tensor *y = tg_sum(tg_add(tg_mul(h, h), tg_mul(h, k)));
    ck_assert_int_eq(tg_backward(y), 0);
    double hv = tanh(0.5);
    tgt_close(h->grad[0], 2 * hv + 1.0, 1e-6); /* d/dh (h^2 + h*k) */
    ck_assert_ptr_null(k->grad);
    double dx = (2 * hv + 1.0) * (1 - hv * hv) + hv * 2;
    tgt_close(x->grad[0], dx, 1e-5);
}
END_TEST

START_TEST(detach_stops_gradient)
{
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(2), 3.0));
    tg_tensor *d = tg_detach(tg_mul(x, x));
    ck_assert(!(d->flags & TG_REQUIRES_GRAD));
    tgt_close(d->data[0], 9, 0);
    tg_tensor *y = tg_sum(tg_mul(d, x)); /* dy/dx = d = 9, not 27 */
    ck_assert_int_eq(tg_backward(y), 0);
    tgt_close(x->grad[0], 9, 1e-6);
}
END_TEST

START_TEST(no_grad_records_nothing)
{
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(4), 1.0));
    int64_t before = tg_tape_size();
    bool was = tg_set_grad_enabled(false);
    ck_assert(was);
    tg_tensor *y = tg_sum(tg_sigmoid(tg_mul(x, x)));
    ck_assert_int_eq(tg_tape_size(), before);
    ck_assert(!(y->flags & TG_REQUIRES_GRAD));
    ck_assert_int_eq(y->entry, -1);
    tgt_capture_errors();
    ck_assert_int_eq(tg_backward(y), -1);
    tgt_expect_error("backward", "does not require grad");
    tg_set_grad_enabled(true);
    ck_assert_ptr_null(x->grad);
}
END_TEST

START_TEST(backward_errors)
{
    tgt_capture_errors();
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(2, 3), 1.0));
    tg_tensor *y = tg_mul(x, x);
    ck_assert_int_eq(tg_backward(y), -1);
    tgt_expect_error("backward", "[2, 3]", "tg_backward_seed");
    ck_assert_int_eq(tg_backward_seed(y, tg_ones(TG_SHAPE(3, 2))), -1);
    tgt_expect_error("backward", "[3, 2]", "[2, 3]");
    ck_assert_int_eq(tg_backward(NULL), -1);
    tgt_expect_error("backward", "NULL");
    /* backward twice over the same graph */
    tg_tensor *loss = tg_sum(y);
    ck_assert_int_eq(tg_backward(loss), 0);
    double g = x->grad[0];
    ck_assert_int_eq(tg_backward(loss), -1);
    tgt_expect_error("backward", "already used", "tg_detach");
    tgt_close(x->grad[0], g, 0); /* nothing was added by the failed call */
    /* a new graph that reuses a consumed tensor (a carried hidden state) */
    tg_tensor *loss2 = tg_sum(tg_mul(y, x));
    ck_assert_int_eq(tg_backward(loss2), -1);
    tgt_expect_error("backward", "already used");
    /* ... works once the carried tensor is detached */
    tg_tensor *loss3 = tg_sum(tg_mul(tg_detach(y), x));
    ck_assert_int_eq(tg_backward(loss3), 0);
    /* requires_grad on an op output */
    ck_assert_ptr_null(tg_requires_grad(y));
    tgt_expect_error("requires_grad", "output of an op");
}
END_TEST

START_TEST(seeded_backward)
{
    tg_tensor *x = tg_requires_grad(tg_from_buffer(TG_SHAPE(2), (tg_real[]){1, 2}));
    tg_tensor *y = tg_mul(x, x);
    tg_tensor *seed = tg_from_buffer(TG_SHAPE(2), (tg_real[]){10, 100});
    ck_assert_int_eq(tg_backward_seed(y, seed), 0);
    tgt_close(x->grad[0], 20, 1e-6);  /* 2 x seed */
    tgt_close(x->grad[1], 400, 1e-6);
}
END_TEST

/* h_t = tanh(w h_{t-1} + x_t) for 10,000 steps: backward must not recurse.
 * The gradient is checked against a hand-written scalar BPTT. */
START_TEST(ten_thousand_steps)
{
    enum { T = 10000 };
    tg_tensor *w = tg_requires_grad(tg_tensor_new(TG_SHAPE(1)));
    w->data[0] = (tg_real)0.9;
    tg_tensor *h = tg_zeros(TG_SHAPE(1));
    static double hs[T + 1], xs[T];
    for (int t = 0; t < T; t++) {
        xs[t] = 0.5 * sin(0.1 * t);
        h = tg_tanh(tg_add(tg_mul(w, h), tg_full(TG_SHAPE(1), xs[t])));
        hs[t + 1] = h->data[0];
    }
    ck_assert_int_ge(tg_tape_size(), 3 * T);
    ck_assert_int_eq(tg_backward(tg_sum(h)), 0);
    /* reverse sweep by hand: dh_T = 1; dpre = dh (1 - h^2); dw += dpre h_{t-1} */
    double dh = 1, dw = 0;
    for (int t = T; t >= 1; t--) {
        double dpre = dh * (1 - hs[t] * hs[t]);
        dw += dpre * hs[t - 1];
        dh = dpre * 0.9;
    }
    tgt_close(w->grad[0], dw, 1e-4);
    tg_tensor_free(w);
}
END_TEST

/* the same step repeated: after the first, the arena takes nothing new */
START_TEST(memory_does_not_grow)
{
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(64, 64)));
    tg_fill_uniform_(W, NULL, -0.1, 0.1);
    size_t reserved[3] = {0};
    for (int step = 0; step < 30; step++) {
        tg_tensor *h = tg_ones(TG_SHAPE(16, 64));
        for (int t = 0; t < 20; t++)
            h = tg_tanh(tg_matmul(h, W));
        tg_backward(tg_mean(h));
        tg_tape_reset();
        tg_arena_stats s = tg_arena_get_stats();
        ck_assert_int_eq(s.used, 0);
        if (step == 1)
            reserved[0] = s.reserved;
        if (step == 29)
            reserved[1] = s.reserved;
    }
    ck_assert_int_gt(reserved[0], 0);
    ck_assert_int_eq(reserved[0], reserved[1]);
    tg_tensor_free(W);
}
END_TEST

/* gradients of intermediates are released as the sweep passes their
 * producer and their buffers reused: a chain of 200 ops needs a few
 * gradient buffers, not 200 */
START_TEST(sweep_reuses_gradient_buffers)
{
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(4096), 0.1));
    tg_tensor *h = x;
    for (int i = 0; i < 200; i++)
        h = tg_tanh(h);
    tg_tensor *loss = tg_sum(h);
    size_t before = tg_arena_get_stats().used;
    ck_assert_int_eq(tg_backward(loss), 0);
    size_t grown = tg_arena_get_stats().used - before;
    ck_assert_msg(grown < 8 * 4096 * sizeof(tg_real), "backward took %zu bytes", grown);
    /* and the gradient is still right: d/dx tanh^200(x) by the chain rule */
    double v = 0.1, d = 1;
    for (int i = 0; i < 200; i++) {
        v = tanh(v);
        d *= 1 - v * v;
    }
    tgt_close(x->grad[7], d, 1e-4);
}
END_TEST

START_TEST(mark_and_rewind)
{
    tg_tensor *x = tg_requires_grad(tg_full(TG_SHAPE(8), 1.0));
    tg_tape_mark m = tg_tape_mark_get();
    size_t used = tg_arena_get_stats().used;
    tg_tensor *y = tg_sum(tg_exp(x));
    ck_assert_int_eq(tg_tape_size(), m.entries + 2);
    ck_assert_int_gt(tg_arena_get_stats().used, used);
    (void)y;
    tg_tape_rewind(m);
    ck_assert_int_eq(tg_tape_size(), m.entries);
    ck_assert_int_eq(tg_arena_get_stats().used, used);
    tgt_close(x->data[7], 1.0, 0); /* made before the mark: still valid */
}
END_TEST

START_TEST(errors_name_op_and_shapes)
{
    tgt_capture_errors();
    tg_tensor *a = tg_ones(TG_SHAPE(2, 3)), *b = tg_ones(TG_SHAPE(4));
    ck_assert_ptr_null(tg_add(a, b));
    tgt_expect_error("add", "[2, 3]", "[4]", "broadcast");
    /* NULL propagates without another report */
    ck_assert_ptr_null(tg_tanh(tg_mul(tg_add(a, b), a)));
    tgt_expect_error("add");
    ck_assert_ptr_null(tg_matmul(a, tg_ones(TG_SHAPE(2, 3))));
    tgt_expect_error("matmul", "[2, 3]");
}
END_TEST

/* the gradient-ready hook: every reached leaf once, when its gradient
 * is already what it will be at the end of backward */
typedef struct ready_log {
    int n;
    const tg_tensor *who[8];
    tg_real seen[8][4];
} ready_log;

static void on_ready(tg_tensor *leaf, void *ud)
{
    ready_log *log = ud;
    ck_assert_int_lt(log->n, 8);
    log->who[log->n] = leaf;
    memcpy(log->seen[log->n], leaf->grad, (size_t)leaf->numel * sizeof(tg_real));
    log->n++;
}

START_TEST(grad_ready_hook)
{
    tg_tensor *W1 = tg_requires_grad(tg_full(TG_SHAPE(2, 2), 0.5));
    tg_tensor *W2 = tg_requires_grad(tg_full(TG_SHAPE(2, 2), -0.3));
    tg_tensor *unused = tg_requires_grad(tg_ones(TG_SHAPE(2)));
    tg_tensor *x = tg_ones(TG_SHAPE(1, 2));
    /* W1 is used at the start and again at the end; W2 in the middle */
    tg_tensor *h = tg_tanh(tg_matmul(x, W1));
    h = tg_tanh(tg_matmul(h, W2));
    h = tg_matmul(h, W1);
    (void)unused;
    ready_log log = {0};
    tg_set_grad_ready_hook(on_ready, &log);
    ck_assert_int_eq(tg_backward(tg_sum(h)), 0);
    tg_set_grad_ready_hook(NULL, NULL);
    ck_assert_int_eq(log.n, 2);
    ck_assert_ptr_eq(log.who[0], W2); /* W1's first use is swept last */
    ck_assert_ptr_eq(log.who[1], W1);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++)
            ck_assert(log.seen[k][i] == log.who[k]->grad[i]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tape");
    TCase *tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, simple_gradient);
    tcase_add_test(tc, parameter_gradients_accumulate);
    tcase_add_test(tc, retain_grad_of_intermediate);
    tcase_add_test(tc, detach_stops_gradient);
    tcase_add_test(tc, no_grad_records_nothing);
    tcase_add_test(tc, backward_errors);
    tcase_add_test(tc, seeded_backward);
    tcase_add_test(tc, ten_thousand_steps);
    tcase_add_test(tc, memory_does_not_grow);
    tcase_add_test(tc, sweep_reuses_gradient_buffers);
    tcase_add_test(tc, mark_and_rewind);
    tcase_add_test(tc, errors_name_op_and_shapes);
    tcase_add_test(tc, grad_ready_hook);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
