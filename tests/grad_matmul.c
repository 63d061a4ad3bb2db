/*
 * tests/grad_matmul.c - gradient checks (double precision) for matmul and
 * linear: 2-D, batched, batched with a shared b, transposed and strided
 * operands (each read by another path of the gemm kernel), linear with
 * and without bias and on a 3-D input (as a view and as a permuted view
 * that must be copied), and a tensor used twice in one product.
 *
 * Sizes are chosen to reach every path of tg_gemm in double precision:
 * the dot path (A rows and B columns contiguous along k, few rows), the
 * direct-B path (B rows contiguous), the packed path (anything else),
 * K longer than one k-block (256) and sizes that leave partial panels.
 */
#include "harness.h"
#include "ops/internal.h" /* tg_linear_into */
#include "ops/ops.h"

static tg_tensor *mm(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(in[0], in[1]);
}

START_TEST(grad_matmul_2d)
{
    struct { int64_t m, k, n; } c[] = {
        {3, 4, 5}, {1, 1, 1}, {13, 9, 35}, {2, 300, 3}, {17, 6, 70},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        tg_tensor *a = tgt_leaf(TG_SHAPE(c[i].m, c[i].k), 10 + i, 0, 0);
        tg_tensor *b = tgt_leaf(TG_SHAPE(c[i].k, c[i].n), 20 + i, 0, 0);
        char label[64];
        snprintf(label, sizeof label, "matmul %lldx%lldx%lld",
                 (long long)c[i].m, (long long)c[i].k, (long long)c[i].n);
        tgt_gradcheck(label, mm, NULL, 2, a, b);
        tg_tape_reset();
    }
}
END_TEST

START_TEST(grad_matmul_batched)
{
    tg_tensor *a = tgt_leaf(TG_SHAPE(3, 4, 5), 1, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(3, 5, 6), 2, 0, 0);
    tgt_gradcheck("batched [3,4,5] @ [3,5,6]", mm, NULL, 2, a, b);
    tg_tape_reset();
    a = tgt_leaf(TG_SHAPE(2, 14, 9), 3, 0, 0);
    b = tgt_leaf(TG_SHAPE(2, 9, 33), 4, 0, 0);
    tgt_gradcheck("batched [2,14,9] @ [2,9,33]", mm, NULL, 2, a, b);
}
END_TEST

START_TEST(grad_matmul_shared_b)
{
    tg_tensor *a = tgt_leaf(TG_SHAPE(3, 4, 5), 5, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(5, 6), 6, 0, 0);
    tgt_gradcheck("batched [3,4,5] @ shared [5,6]", mm, NULL, 2, a, b);
}
END_TEST

/* a [Bt, M, K] as a permuted view: its batches do not collapse into one
 * [Bt*M, K] matrix, so the kernel runs batch by batch */
static tg_tensor *mm_permuted_a(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(tg_transpose(in[0], 0, 1), in[1]); /* [4,3,5] view */
}
START_TEST(grad_matmul_shared_b_permuted_a)
{
    tg_tensor *a = tgt_leaf(TG_SHAPE(3, 4, 5), 7, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(5, 6), 8, 0, 0);
    tgt_gradcheck("permuted [4,3,5] @ shared [5,6]", mm_permuted_a, NULL, 2,
                  a, b);
}
END_TEST

/* tg_transpose views: A^T has unit row stride, B^T unit row stride too */
static tg_tensor *mm_at(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(tg_transpose(in[0], 0, 1), in[1]);
}
static tg_tensor *mm_bt(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(in[0], tg_transpose(in[1], 0, 1));
}
static tg_tensor *mm_atbt(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(tg_transpose(in[0], 0, 1), tg_transpose(in[1], 0, 1));
}
START_TEST(grad_matmul_transposed)
{
    /* few rows (dot path for B^T) and many rows (packed path) */
    int64_t ms[] = {3, 21};
    for (int i = 0; i < 2; i++) {
        int64_t m = ms[i], k = 11, n = 19;
        tg_tensor *at = tgt_leaf(TG_SHAPE(k, m), 30 + i, 0, 0);
        tg_tensor *a = tgt_leaf(TG_SHAPE(m, k), 40 + i, 0, 0);
        tg_tensor *b = tgt_leaf(TG_SHAPE(k, n), 50 + i, 0, 0);
        tg_tensor *bt = tgt_leaf(TG_SHAPE(n, k), 60 + i, 0, 0);
        tgt_gradcheck("transpose(a) @ b", mm_at, NULL, 2, at, b);
        tgt_gradcheck("a @ transpose(b)", mm_bt, NULL, 2, a, bt);
        tgt_gradcheck("transpose(a) @ transpose(b)", mm_atbt, NULL, 2, at,
                      bt);
        tg_tape_reset();
    }
}
END_TEST

/* every other column / row: strides that are neither 1 nor the width */
static tg_tensor *mm_strided(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(tg_slice(in[0], 1, 0, 14, 2),  /* [5, 7] */
                     tg_slice(in[1], 1, 1, 9, 2));  /* [7, 4] */
}
START_TEST(grad_matmul_strided)
{
    tg_tensor *a = tgt_leaf(TG_SHAPE(5, 14), 9, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(7, 9), 10, 0, 0);
    tgt_gradcheck("sliced a @ sliced b", mm_strided, NULL, 2, a, b);
}
END_TEST

/* one tensor on both sides: both contributions must add up */
static tg_tensor *mm_self(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(in[0], in[0]);
}
static tg_tensor *mm_self_t(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_matmul(in[0], tg_transpose(in[0], 0, 1));
}
START_TEST(grad_matmul_same_input_twice)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(6, 6), 11, 0, 0);
    tgt_gradcheck("x @ x", mm_self, NULL, 1, x);
    tg_tape_reset();
    tg_tensor *y = tgt_leaf(TG_SHAPE(5, 9), 12, 0, 0);
    tgt_gradcheck("x @ x^T", mm_self_t, NULL, 1, y);
}
END_TEST

/* ---- linear ------------------------------------------------------------ */

static tg_tensor *lin_bias(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_linear(in[0], in[1], in[2]);
}
static tg_tensor *lin_nobias(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_linear(in[0], in[1], NULL);
}

START_TEST(grad_linear_2d)
{
    /* 3 rows: dot path; 20 rows: packed path; K = 10 and 300 */
    struct { int64_t r, i, o; } c[] = {{3, 10, 5}, {20, 10, 5}, {2, 300, 3},
                                       {1, 4, 1}};
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        tg_tensor *x = tgt_leaf(TG_SHAPE(c[k].r, c[k].i), 70 + k, 0, 0);
        tg_tensor *W = tgt_leaf(TG_SHAPE(c[k].o, c[k].i), 80 + k, 0, 0);
        tg_tensor *b = tgt_leaf(TG_SHAPE(c[k].o), 90 + k, 0, 0);
        char label[64];
        snprintf(label, sizeof label, "linear %lld rows, %lld -> %lld",
                 (long long)c[k].r, (long long)c[k].i, (long long)c[k].o);
        tgt_gradcheck(label, lin_bias, NULL, 3, x, W, b);
        tgt_gradcheck("linear without bias", lin_nobias, NULL, 2, x, W);
        tg_tape_reset();
    }
}
END_TEST

START_TEST(grad_linear_1d_input)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(7), 13, 0, 0);
    tg_tensor *W = tgt_leaf(TG_SHAPE(3, 7), 14, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(3), 15, 0, 0);
    tgt_gradcheck("linear [7] -> [3]", lin_bias, NULL, 3, x, W, b);
}
END_TEST

START_TEST(grad_linear_3d_input)
{
    /* x [T, B, I]: the leading axes collapse into T*B rows (a view) */
    tg_tensor *x = tgt_leaf(TG_SHAPE(3, 2, 5), 16, 0, 0);
    tg_tensor *W = tgt_leaf(TG_SHAPE(4, 5), 17, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(4), 18, 0, 0);
    tgt_gradcheck("linear [3,2,5] -> [3,2,4]", lin_bias, NULL, 3, x, W, b);
    tgt_gradcheck("linear [3,2,5] without bias", lin_nobias, NULL, 2, x, W);
}
END_TEST

/* x [B, T, I] transposed to [T, B, I]: no single row stride, x is copied */
static tg_tensor *lin_permuted(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_linear(tg_transpose(in[0], 0, 1), in[1], in[2]);
}
START_TEST(grad_linear_permuted_input)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(2, 3, 5), 19, 0, 0);
    tg_tensor *W = tgt_leaf(TG_SHAPE(4, 5), 20, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(4), 21, 0, 0);
    tgt_gradcheck("linear of a permuted [3,2,5] view", lin_permuted, NULL, 3,
                  x, W, b);
}
END_TEST

/* W used as the input too: y = W W^T + b */
static tg_tensor *lin_self(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_linear(in[0], in[0], in[1]);
}
START_TEST(grad_linear_same_input_twice)
{
    tg_tensor *W = tgt_leaf(TG_SHAPE(4, 6), 22, 0, 0);
    tg_tensor *b = tgt_leaf(TG_SHAPE(4), 23, 0, 0);
    tgt_gradcheck("linear(W, W, b)", lin_self, NULL, 2, W, b);
}
END_TEST

/* a composite: an RNN-like step tanh(x Wx^T + h Wh^T + b) @ V */
static tg_tensor *rnn_like(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *h = tg_tanh(tg_add(tg_linear(in[0], in[1], in[3]),
                                  tg_linear(in[4], in[2], NULL)));
    return tg_matmul(h, in[5]);
}
START_TEST(grad_composite)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(3, 5), 24, 0, 0);
    tg_tensor *Wx = tgt_leaf(TG_SHAPE(8, 5), 25, -0.5, 0.5);
    tg_tensor *Wh = tgt_leaf(TG_SHAPE(8, 8), 26, -0.5, 0.5);
    tg_tensor *b = tgt_leaf(TG_SHAPE(8), 27, 0, 0);
    tg_tensor *h = tgt_leaf(TG_SHAPE(3, 8), 28, 0, 0);
    tg_tensor *V = tgt_leaf(TG_SHAPE(8, 2), 29, 0, 0);
    tgt_gradcheck("tanh(linear + linear) @ V", rnn_like, NULL, 6, x, Wx, Wh,
                  b, h, V);
}
END_TEST

/* ---- prepared weights and linear_into ---------------------------------- */
/* a recurrence over a prepared W: three steps of 4 rows (weight gradient
 * deferred to the prepare op's one product), one of 70 rows (at once:
 * more than DEFER_MAX_ROWS), and P read by another op too (its gradient
 * flows to W through P) */
static tg_tensor *prepared_chain(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *P = tg_prepare_weight(in[1]), *h = in[0];
    for (int t = 0; t < 3; t++)
        h = tg_tanh(tg_linear(h, P, in[2]));
    tg_tensor *big = tg_linear(in[3], P, NULL);
    tg_tensor *other = tg_matmul(h, tg_transpose(P, 0, 1));
    return tg_concat((tg_tensor *[]){tg_reshape(h, TG_SHAPE(-1)),
                                     tg_reshape(big, TG_SHAPE(-1)),
                                     tg_reshape(other, TG_SHAPE(-1))}, 3, 0);
}
START_TEST(grad_prepared_weight)
{
    tg_tensor *h = tgt_leaf(TG_SHAPE(4, 6), 31, -1, 1);
    tg_tensor *W = tgt_leaf(TG_SHAPE(6, 6), 32, -0.5, 0.5);
    tg_tensor *b = tgt_leaf(TG_SHAPE(6), 33, -0.5, 0.5);
    tg_tensor *x = tgt_leaf(TG_SHAPE(70, 6), 34, -1, 1);
    tgt_gradcheck("prepared W over 3 steps, 70 rows, matmul", prepared_chain,
                  NULL, 4, h, W, b, x);
}
END_TEST

/* Deferred weight-gradient terms past DEFER_MAX_BYTES (16 MB) are summed
 * in a product of their own before the prepare op's: 60 steps of 64 rows
 * of a [512, 64] W keep 60 * 64 * 576 doubles (17.7 MB), so the terms are
 * summed twice. dW must equal W's gradient without preparing (a product
 * per step, nothing deferred) - the same sum in another order. */
static void prepared_dw(bool prepared, tg_tensor *W, tg_tensor *const *x)
{
    tg_tensor *P = prepared ? tg_prepare_weight(W) : W;
    tg_tensor *loss = NULL;
    for (int t = 0; t < 60; t++) {
        tg_tensor *s = tg_sum(tg_tanh(tg_linear(x[t], P, NULL)));
        loss = loss ? tg_add(loss, s) : s;
    }
    ck_assert_int_eq(tg_backward(loss), 0);
}
START_TEST(grad_prepared_weight_flush)
{
    tg_tensor *x[60];
    for (int t = 0; t < 60; t++) { /* inputs that need no gradient */
        tg_rng r;
        tg_rng_seed(&r, 40 + (uint64_t)t);
        x[t] = tg_rand(TG_SHAPE(64, 64), &r, -1, 1);
    }
    tg_tensor *W = tgt_leaf(TG_SHAPE(512, 64), 39, -0.2, 0.2);
    prepared_dw(false, W, x);
    ck_assert_ptr_nonnull(W->grad);
    tg_real *keep = malloc((size_t)W->numel * sizeof *keep);
    memcpy(keep, W->grad, (size_t)W->numel * sizeof *keep);
    tg_zero_grad(W); /* (no reset: W and x are this tape's temporaries) */
    prepared_dw(true, W, x);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < W->numel; i++) {
        worst = fmax(worst, fabs((double)(W->grad[i] - keep[i])));
        scale = fmax(scale, fabs((double)keep[i]));
    }
    ck_assert_msg(scale > 1 && worst <= 1e-12 * scale,
                  "deferred dW differs from per-step dW by %g (of %g)", worst,
                  scale);
    free(keep);
}
END_TEST

/* acc + x W^T + b in acc's numbers: acc must be a fresh tensor nothing
 * else reads (here the output of an op), and W may be prepared */
static tg_tensor *into_fn(tg_tensor *const *in, void *ud)
{
    bool prep = ud != NULL;
    tg_tensor *acc = tg_mul_scalar(in[0], 1.0); /* a copy to give away */
    tg_tensor *W = prep ? tg_prepare_weight(in[2]) : in[2];
    return tg_tanh(tg_linear_into(acc, in[1], W, in[3]));
}
START_TEST(grad_linear_into)
{
    tg_tensor *acc = tgt_leaf(TG_SHAPE(5, 7), 35, -1, 1);
    tg_tensor *x = tgt_leaf(TG_SHAPE(5, 3), 36, -1, 1);
    tg_tensor *W = tgt_leaf(TG_SHAPE(7, 3), 37, -0.5, 0.5);
    tg_tensor *b = tgt_leaf(TG_SHAPE(7), 38, -0.5, 0.5);
    tgt_gradcheck("linear_into", into_fn, NULL, 4, acc, x, W, b);
    tgt_gradcheck("linear_into, prepared W", into_fn, (void *)1, 4, acc, x, W,
                  b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_matmul");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, grad_matmul_2d);
    tcase_add_test(tc, grad_matmul_batched);
    tcase_add_test(tc, grad_matmul_shared_b);
    tcase_add_test(tc, grad_matmul_shared_b_permuted_a);
    tcase_add_test(tc, grad_matmul_transposed);
    tcase_add_test(tc, grad_matmul_strided);
    tcase_add_test(tc, grad_matmul_same_input_twice);
    tcase_add_test(tc, grad_linear_2d);
    tcase_add_test(tc, grad_linear_1d_input);
    tcase_add_test(tc, grad_linear_3d_input);
    tcase_add_test(tc, grad_linear_permuted_input);
    tcase_add_test(tc, grad_linear_same_input_twice);
    tcase_add_test(tc, grad_composite);
    tcase_add_test(tc, grad_prepared_weight);
    tcase_add_test(tc, grad_prepared_weight_flush);
    tcase_add_test(tc, grad_linear_into);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
