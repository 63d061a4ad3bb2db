/*
 * tests/test_elementwise_shape.c - values, errors and thread determinism
 * of the elementwise and shape ops (float build). Their gradients are
 * checked in grad_elementwise.c and grad_shape.c.
 */
#include "harness.h"
#include "ops/ops.h"

START_TEST(broadcast_values)
{
    tg_tensor *a = tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3));
    tg_tensor *row = tg_from_buffer(TG_SHAPE(3), (tg_real[]){10, 20, 30});
    tg_tensor *col = tg_from_buffer(TG_SHAPE(2, 1), (tg_real[]){100, 200});
    tgt_tensor_equals(tg_add(a, row), (double[]){10, 21, 32, 13, 24, 35}, 6, 0);
    tgt_tensor_equals(tg_sub(col, a), (double[]){100, 99, 98, 197, 196, 195}, 6, 0);
    tgt_tensor_equals(tg_mul(row, col), (double[]){1000, 2000, 3000, 2000, 4000, 6000}, 6, 0);
    tgt_tensor_equals(tg_div(a, tg_scalar(2)), (double[]){0, .5, 1, 1.5, 2, 2.5}, 6, 0);
    tgt_tensor_equals(tg_pow(tg_full(TG_SHAPE(2), 2), tg_from_buffer(TG_SHAPE(2), (tg_real[]){3, 0.5})),
                      (double[]){8, sqrt(2.0)}, 2, 1e-6);
    tgt_tensor_equals(tg_neg(row), (double[]){-10, -20, -30}, 3, 0);
    tgt_tensor_equals(tg_add_scalar(row, 1), (double[]){11, 21, 31}, 3, 0);
    tgt_tensor_equals(tg_mul_scalar(row, -0.5), (double[]){-5, -10, -15}, 3, 0);
    tgt_tensor_equals(tg_pow_scalar(row, 2), (double[]){100, 400, 900}, 3, 0);
    /* a transposed operand is read through its strides */
    tg_tensor *t = tg_transpose(a, 0, 1); /* [[0,3],[1,4],[2,5]] */
    tgt_tensor_equals(tg_add(t, tg_zeros(TG_SHAPE(3, 2))), (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
}
END_TEST

/* bias-style broadcast gradient: [B, H] + [H] sums dy over the batch */
START_TEST(unbroadcast_sums)
{
    tg_tensor *x = tg_requires_grad(tg_ones(TG_SHAPE(4, 3)));
    tg_tensor *b = tg_requires_grad(tg_zeros(TG_SHAPE(3)));
    tg_tensor *c = tg_requires_grad(tg_zeros(TG_SHAPE(4, 1)));
    tg_backward(tg_sum(tg_mul(tg_add(tg_add(x, b), c), tg_arange(1, 4, 1))));
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(3), b->grad), (double[]){4, 8, 12}, 3, 0);
    tgt_tensor_equals(tg_wrap_buffer(TG_SHAPE(4), c->grad), (double[]){6, 6, 6, 6}, 4, 0);
}
END_TEST

START_TEST(views_do_not_copy)
{
    tg_tensor *x = tg_requires_grad(tg_arange(0, 24, 1));
    tg_tensor *m = tg_reshape(x, TG_SHAPE(2, 3, 4));
    ck_assert_ptr_eq(m->data, x->data);
    tg_tensor *t = tg_transpose(m, 1, 2);
    ck_assert_ptr_eq(t->data, x->data);
    tg_tensor *s = tg_slice(m, 2, 1, 3, 1);
    ck_assert_ptr_eq(s->data, x->data + 1);
    tg_tensor *g[4];
    ck_assert_int_eq(tg_chunk(m, 4, -1, g), 4);
    for (int k = 0; k < 4; k++) {
        ck_assert_ptr_eq(g[k]->data, x->data + k);
        tgt_shape_is(g[k], 3, (int64_t[]){2, 3, 1});
    }
    tgt_tensor_equals(g[3], (double[]){3, 7, 11, 15, 19, 23}, 6, 0);
    ck_assert_ptr_eq(tg_contiguous(m), m); /* already contiguous: no copy */
    tg_tensor *t2 = tg_transpose(tg_reshape(tg_slice(x, 0, 0, 12, 1), TG_SHAPE(3, 4)), 0, 1);
    tg_tensor *c = tg_contiguous(t2);
    ck_assert_ptr_ne(c->data, x->data);
    tgt_tensor_equals(c, (double[]){0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, 12, 0);
    tg_tensor *e = tg_expand(tg_slice(m, 0, 1, 2, 1), TG_SHAPE(3, 3, 4));
    ck_assert_int_eq(e->stride[0], 0);
    tgt_close(tg_get(e, (int64_t[]){2, 2, 3}), 23, 0);
    tgt_shape_is(tg_unsqueeze(m, 1), 4, (int64_t[]){2, 1, 3, 4});
    tgt_shape_is(tg_squeeze(tg_unsqueeze(m, -1), 3), 3, (int64_t[]){2, 3, 4});
    /* reshape of a non-contiguous view copies (in row-major order) */
    tgt_tensor_equals(tg_reshape(t2, TG_SHAPE(-1)),
                      (double[]){0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, 12, 0);
}
END_TEST

START_TEST(joins)
{
    tg_tensor *a = tg_view_reshape(tg_arange(0, 4, 1), TG_SHAPE(2, 2));
    tg_tensor *b = tg_view_reshape(tg_arange(4, 6, 1), TG_SHAPE(2, 1));
    tgt_tensor_equals(tg_concat((tg_tensor *[]){a, b}, 2, 1), (double[]){0, 1, 4, 2, 3, 5}, 6, 0);
    tgt_tensor_equals(tg_concat((tg_tensor *[]){a, tg_transpose(a, 0, 1)}, 2, 0),
                      (double[]){0, 1, 2, 3, 0, 2, 1, 3}, 8, 0);
    tg_tensor *s = tg_stack((tg_tensor *[]){a, a}, 2, 1);
    tgt_shape_is(s, 3, (int64_t[]){2, 2, 2});
    tgt_tensor_equals(s, (double[]){0, 1, 0, 1, 2, 3, 2, 3}, 8, 0);
    tg_tensor *s2 = tg_stack((tg_tensor *[]){a, a, a}, 3, -1);
    tgt_shape_is(s2, 3, (int64_t[]){2, 2, 3});
    tg_tensor *p[2];
    ck_assert_int_eq(tg_split(tg_arange(0, 5, 1), (int64_t[]){2, 3}, 2, 0, p), 2);
    tgt_tensor_equals(p[1], (double[]){2, 3, 4}, 3, 0);
}
END_TEST

START_TEST(shape_errors)
{
    tgt_capture_errors();
    tg_tensor *a = tg_zeros(TG_SHAPE(2, 3)), *b = tg_zeros(TG_SHAPE(3, 3));
    tg_tensor *out[8];
    ck_assert_ptr_null(tg_concat((tg_tensor *[]){a, b}, 2, 1));
    tgt_expect_error("concat", "[3, 3]", "[2, 3]");
    ck_assert_ptr_null(tg_stack((tg_tensor *[]){a, tg_zeros(TG_SHAPE(2, 4))}, 2, 0));
    tgt_expect_error("stack", "[2, 4]", "[2, 3]");
    ck_assert_int_eq(tg_chunk(a, 2, 1, out), -1);
    tgt_expect_error("chunk", "[2, 3]", "2 equal chunks");
    ck_assert_int_eq(tg_split(a, (int64_t[]){1, 1}, 2, 1, out), -1);
    tgt_expect_error("split", "[2, 3]");
    ck_assert_ptr_null(tg_squeeze(a, 0));
    tgt_expect_error("squeeze", "[2, 3]");
    ck_assert_ptr_null(tg_reshape(a, TG_SHAPE(5)));
    tgt_expect_error("reshape", "[2, 3]", "[5]");
    ck_assert_ptr_null(tg_slice(a, 3, 0, 1, 1));
    tgt_expect_error("slice", "out of range");
    ck_assert_ptr_null(tg_expand(a, TG_SHAPE(4, 3)));
    tgt_expect_error("expand", "[2, 3]", "[4, 3]");
    ck_assert_ptr_null(tg_concat(NULL, 0, 0));
    tgt_expect_error("concat", "at least one");
}
END_TEST

/* chunk and split leave every output NULL when they fail - given NULL
 * (an earlier op failed: quietly), or after an error - so a cell written
 * as in the README (tg_chunk into g[4], then ops on g[k]) propagates the
 * failure instead of reading what was in g before */
static void expect_all_null(tg_tensor *const *out, int n)
{
    for (int k = 0; k < n; k++)
        ck_assert_msg(out[k] == NULL, "out[%d] was left set", k);
}

START_TEST(failed_split_leaves_null_outputs)
{
    tgt_capture_errors();
    tg_tensor *a = tg_zeros(TG_SHAPE(2, 4)), *junk = tg_ones(TG_SHAPE(1));
    tg_tensor *g[4] = {junk, junk, junk, junk};
    ck_assert_int_eq(tg_chunk(tg_add(NULL, a), 4, 1, g), -1);
    ck_assert_int_eq(tgt_errors, 0); /* NULL in: quiet, as any op */
    expect_all_null(g, 4);
    /* the README's LSTM lines: NULL all the way, no crash */
    tg_tensor *c = tg_add(tg_mul(tg_sigmoid(g[1]), a),
                          tg_mul(tg_sigmoid(g[0]), tg_tanh(g[2])));
    ck_assert_ptr_null(tg_mul(tg_sigmoid(g[3]), tg_tanh(c)));
    ck_assert_int_eq(tgt_errors, 0);

    for (int k = 0; k < 4; k++)
        g[k] = junk;
    ck_assert_int_eq(tg_chunk(a, 3, 1, g), -1);
    tgt_expect_error("chunk", "[2, 4]", "3 equal chunks");
    expect_all_null(g, 3);
    for (int k = 0; k < 4; k++)
        g[k] = junk;
    ck_assert_int_eq(tg_split(NULL, (int64_t[]){2, 2}, 2, 1, g), -1);
    ck_assert_int_eq(tgt_errors, 0);
    expect_all_null(g, 2);
    g[0] = g[1] = g[2] = junk;
    ck_assert_int_eq(tg_split(a, (int64_t[]){1, 1, 1}, 3, 1, g), -1);
    tgt_expect_error("split", "[2, 4]");
    expect_all_null(g, 3);
    g[0] = g[1] = junk;
    ck_assert_int_eq(tg_split(a, (int64_t[]){1, 3}, 2, 5, g), -1);
    tgt_expect_error("split", "out of range");
    expect_all_null(g, 2);
    ck_assert_int_eq(tg_chunk(a, 2, 1, NULL), -1);
    tgt_expect_error("chunk", "output array is NULL");

    /* anomaly mode: a NaN in x's second half fails the second slice; the
     * first, made already, is not left set either */
    tg_set_anomaly_mode(true);
    tg_tensor *x = tg_requires_grad(tg_zeros(TG_SHAPE(4, 2)));
    x->data[5] = NAN;
    g[0] = g[1] = junk;
    ck_assert_int_eq(tg_chunk(x, 2, 0, g), -1);
    tgt_expect_error("anomaly", "NaN");
    expect_all_null(g, 2);
    tg_set_anomaly_mode(false);
}
END_TEST

/* outputs and gradients of a broadcast expression: 1 thread vs 2 */
static void run_expr(int threads, tg_real *out, tg_real *ga, tg_real *gb)
{
    tgt_threads(threads);
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *a = tg_requires_grad(tg_randn(TG_SHAPE(300, 500), &r, 0, 1));
    tg_tensor *b = tg_requires_grad(tg_randn(TG_SHAPE(500), &r, 0, 1));
    /* a's transpose made contiguous and transposed back: a strided path */
    tg_tensor *a2 = tg_transpose(tg_contiguous(tg_transpose(a, 0, 1)), 0, 1);
    tg_tensor *y = tg_div(tg_mul(tg_add(a, b), a2),
                          tg_add_scalar(tg_pow_scalar(b, 2), 1));
    tg_tensor *seed = tg_randn(TG_SHAPE(300, 500), &r, 0, 1);
    tg_backward_seed(y, seed);
    memcpy(out, y->data, 300 * 500 * sizeof(tg_real));
    memcpy(ga, a->grad, 300 * 500 * sizeof(tg_real));
    memcpy(gb, b->grad, 500 * sizeof(tg_real));
    tg_tape_reset();
}

START_TEST(same_bits_any_thread_count)
{
    size_t n = 300 * 500;
    tg_real *o1 = malloc(n * sizeof(tg_real)), *o2 = malloc(n * sizeof(tg_real));
    tg_real *a1 = malloc(n * sizeof(tg_real)), *a2 = malloc(n * sizeof(tg_real));
    tg_real b1[500], b2[500];
    run_expr(1, o1, a1, b1);
    run_expr(2, o2, a2, b2);
    ck_assert_mem_eq(o1, o2, n * sizeof(tg_real));
    ck_assert_mem_eq(a1, a2, n * sizeof(tg_real));
    ck_assert_mem_eq(b1, b2, sizeof b1);
    free(o1), free(o2), free(a1), free(a2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("elementwise_shape");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, broadcast_values);
    tcase_add_test(tc, unbroadcast_sums);
    tcase_add_test(tc, views_do_not_copy);
    tcase_add_test(tc, joins);
    tcase_add_test(tc, shape_errors);
    tcase_add_test(tc, failed_split_leaves_null_outputs);
    tcase_add_test(tc, same_bits_any_thread_count);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
