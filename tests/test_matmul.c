/*
 * tests/test_matmul.c - values, edge cases, errors and thread determinism
 * of the gemm kernel, matmul and linear (float build).
 *
 * Every product is compared with a naive triple loop summed in double.
 * The allowed difference is a rigorous bound for float sums of K products
 * in any order, 2 K eps sum_k |a_ik b_kj| (plus eps |C| when
 * accumulating), so a test can fail only on a real error, never on
 * rounding - and any wrong, missing or extra product shows up at once.
 */
#include "harness.h"
#include "ops/kernels/gemm.h"
#include "ops/ops.h"

#include <float.h>

static tg_real *rand_buf(int64_t n, uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_real *p = malloc((size_t)(n ? n : 1) * sizeof(tg_real));
    for (int64_t i = 0; i < n; i++)
        p[i] = (tg_real)(2 * tg_rng_uniform(&r) - 1);
    return p;
}

/* C (M x N, row stride ldc) against (acc ? C0 : 0) + A B */
static void expect_product(int64_t M, int64_t N, int64_t K, const tg_real *A,
                           int64_t rsa, int64_t csa, const tg_real *B,
                           int64_t rsb, int64_t csb, const tg_real *C0,
                           const tg_real *C, int64_t ldc, int acc,
                           const char *what)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = acc ? (double)C0[i * ldc + j] : 0, mag = fabs(s);
            for (int64_t k = 0; k < K; k++) {
                double p = (double)A[i * rsa + k * csa] *
                           (double)B[k * rsb + j * csb];
                s += p;
                mag += fabs(p);
            }
            double got = (double)C[i * ldc + j];
            double tol =
                2.0 * (double)(K + 1) * (double)FLT_EPSILON * mag + 1e-30;
            ck_assert_msg(fabs(got - s) <= tol,
                          "%s M=%lld N=%lld K=%lld: C[%lld][%lld] = %.9g, "
                          "expected %.9g (tol %.3g)", what, (long long)M,
                          (long long)N, (long long)K, (long long)i,
                          (long long)j, got, s, tol);
        }
}

/* tg_gemm on operands laid out four ways (A and/or B transposed), packed
 * or strided (every other number, odd leading dimensions), overwriting or
 * accumulating. C has padding columns that must stay untouched. */
static void check_gemm(int64_t M, int64_t N, int64_t K, int layout, int step,
                       int acc)
{
    int64_t pad = step > 1 ? 3 : 0;
    int64_t rsa, csa, rsb, csb, na, nb;
    if (layout & 1) { /* A stored transposed: [K, M] */
        rsa = step;
        csa = M * step + pad;
        na = K * csa;
    } else {
        csa = step;
        rsa = K * step + pad;
        na = M * rsa;
    }
    if (layout & 2) { /* B stored transposed: [N, K] */
        rsb = step;
        csb = K * step + pad;
        nb = N * csb;
    } else {
        csb = step;
        rsb = N * step + pad;
        nb = K * rsb;
    }
    int64_t ldc = N + (step > 1 ? 5 : 0);
    uint64_t seed = (uint64_t)(M * 1000003 + N * 1009 + K * 7 + layout);
    tg_real *A = rand_buf(na, seed), *B = rand_buf(nb, seed + 1);
    tg_real *C0 = rand_buf(M * ldc, seed + 2);
    tg_real *C = malloc((size_t)(M * ldc + 1) * sizeof(tg_real));
    memcpy(C, C0, (size_t)(M * ldc) * sizeof(tg_real));
    tg_gemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, acc);
    char what[64];
    snprintf(what, sizeof what, "gemm layout %d step %d acc %d", layout, step,
             acc);
    expect_product(M, N, K, A, rsa, csa, B, rsb, csb, C0, C, ldc, acc, what);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = N; j < ldc; j++)
            ck_assert_msg(C[i * ldc + j] == C0[i * ldc + j],
                          "%s wrote outside C at [%lld][%lld]", what,
                          (long long)i, (long long)j);
    free(A), free(B), free(C0), free(C);
}

/* Sizes around the kernel's blocks (MR = 12 or 6 rows, NR = 2 vectors,
 * k-blocks of 256, tiles of ~192 x 512) and the thresholds between its
 * paths; 1x1x1 and long thin shapes. */
static const int64_t sizes[][3] = {
    {1, 1, 1},    {1, 1, 300},  {2, 3, 4},     {5, 7, 3},     {11, 13, 17},
    {12, 32, 256}, {13, 33, 257}, {6, 64, 16},  {7, 65, 31},   {16, 48, 9},
    {17, 100, 33}, {31, 95, 130}, {64, 1, 64},  {1, 300, 40},  {3, 2, 513},
    {25, 65, 513}, {100, 37, 260}, {200, 530, 70}, {193, 47, 300},
};

START_TEST(gemm_values_all_layouts)
{
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int layout = 0; layout < 4; layout++)
            for (int step = 1; step <= 2; step++)
                check_gemm(sizes[s][0], sizes[s][1], sizes[s][2], layout,
                           step, (int)((s + (size_t)layout) % 2));
}
END_TEST

START_TEST(gemm_accumulate_flag)
{
    /* the same products both ways, on each path */
    int64_t sz[][3] = {{3, 70, 40}, {40, 70, 300}, {9, 33, 20}};
    for (int i = 0; i < 3; i++)
        for (int layout = 0; layout < 4; layout++)
            for (int acc = 0; acc <= 1; acc++)
                check_gemm(sz[i][0], sz[i][1], sz[i][2], layout, 1, acc);
}
END_TEST

START_TEST(gemm_empty_sizes)
{
    tg_real C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {7}, B[1] = {8};
    /* K = 0: C = 0 (an empty sum), or left alone when accumulating */
    tg_gemm(2, 3, 0, A, 0, 1, B, 3, 1, C, 3, 1);
    for (int i = 0; i < 6; i++)
        ck_assert(C[i] == (tg_real)(i + 1));
    tg_gemm(2, 3, 0, A, 0, 1, B, 3, 1, C, 3, 0);
    for (int i = 0; i < 6; i++)
        ck_assert(C[i] == 0);
    /* M = 0 or N = 0: nothing is touched */
    C[0] = 9;
    tg_gemm(0, 3, 4, A, 4, 1, B, 3, 1, C, 3, 0);
    tg_gemm(2, 0, 4, A, 4, 1, B, 0, 1, C, 3, 0);
    ck_assert(C[0] == 9);
    /* matmul with K = 0 gives zeros of the right shape */
    tg_tensor *y =
        tg_matmul(tg_zeros(TG_SHAPE(3, 0)), tg_zeros(TG_SHAPE(0, 4)));
    tgt_shape_is(y, TG_SHAPE(3, 4));
    for (int64_t i = 0; i < 12; i++)
        ck_assert(tg_flat_get(y, i) == 0);
    y = tg_matmul(tg_zeros(TG_SHAPE(0, 5)), tg_zeros(TG_SHAPE(5, 4)));
    tgt_shape_is(y, TG_SHAPE(0, 4));
    /* linear with no inputs: y is the bias */
    tg_tensor *b = tg_arange(1, 4, 1);
    y = tg_linear(tg_zeros(TG_SHAPE(2, 0)), tg_zeros(TG_SHAPE(3, 0)), b);
    tgt_tensor_equals(y, (double[]){1, 2, 3, 1, 2, 3}, 6, 0);
}
END_TEST

/* the kernel's packing buffers come from the arena and go back to it */
START_TEST(gemm_releases_its_scratch)
{
    tg_real *A = rand_buf(300 * 300, 1), *B = rand_buf(300 * 300, 2);
    tg_real *C = malloc(300 * 300 * sizeof(tg_real));
    tg_gemm(300, 300, 300, A, 300, 1, B, 1, 300, C, 300, 0);
    size_t used = tg_arena_get_stats().used;
    for (int i = 0; i < 5; i++)
        tg_gemm(300, 300, 300, A, 300, 1, B, 1, 300, C, 300, 0);
    ck_assert_uint_eq(tg_arena_get_stats().used, used);
    free(A), free(B), free(C);
}
END_TEST

/* ---- the ops, against the same reference ------------------------------ */

static tg_tensor *rnd(int ndim, const int64_t *shape, uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    return tg_rand(ndim, shape, &r, -1, 1);
}

START_TEST(matmul_values)
{
    /* 2-D, through a transposed view of b */
    tg_tensor *a = rnd(TG_SHAPE(7, 9), 1), *b0 = rnd(TG_SHAPE(5, 9), 2);
    tg_tensor *y = tg_matmul(a, tg_transpose(b0, 0, 1));
    tgt_shape_is(y, TG_SHAPE(7, 5));
    expect_product(7, 5, 9, a->data, 9, 1, b0->data, 1, 9, NULL, y->data, 5,
                   0, "matmul a @ b0^T");

    /* batched: [3, 4, 6] @ [3, 6, 5] */
    tg_tensor *ab = rnd(TG_SHAPE(3, 4, 6), 3);
    tg_tensor *bb = rnd(TG_SHAPE(3, 6, 5), 4);
    y = tg_matmul(ab, bb);
    tgt_shape_is(y, TG_SHAPE(3, 4, 5));
    for (int64_t t = 0; t < 3; t++)
        expect_product(4, 5, 6, ab->data + t * 24, 6, 1, bb->data + t * 30, 5,
                       1, NULL, y->data + t * 20, 5, 0, "batched matmul");

    /* shared b, and a permuted a whose batches do not collapse */
    tg_tensor *bs = rnd(TG_SHAPE(6, 5), 5);
    /* [3, 4, 6] */
    tg_tensor *ap = tg_transpose(rnd(TG_SHAPE(4, 3, 6), 6), 0, 1);
    tg_tensor *ys[2] = {tg_matmul(ab, bs), tg_matmul(ap, bs)};
    for (int v = 0; v < 2; v++) {
        tg_tensor *av = v ? ap : ab;
        tgt_shape_is(ys[v], TG_SHAPE(3, 4, 5));
        for (int64_t t = 0; t < 3; t++)
            expect_product(4, 5, 6, av->data + t * av->stride[0],
                           av->stride[1], av->stride[2], bs->data, 5, 1, NULL,
                           ys[v]->data + t * 20, 5, 0, "shared-b matmul");
    }
}
END_TEST

START_TEST(linear_values)
{
    /* x [T, B, I] = [3, 4, 10], W [6, 10], b a strided view [6] */
    tg_tensor *x = rnd(TG_SHAPE(3, 4, 10), 7), *W = rnd(TG_SHAPE(6, 10), 8);
    tg_tensor *b = tg_slice(rnd(TG_SHAPE(12), 9), 0, 0, 12, 2);
    tg_tensor *xp = tg_transpose(rnd(TG_SHAPE(4, 3, 10), 10), 0, 1);
    tg_tensor *xs[2] = {x, xp};
    for (int v = 0; v < 2; v++) {
        tg_tensor *xv = xs[v];
        tg_tensor *y = tg_linear(xv, W, b), *y0 = tg_linear(xv, W, NULL);
        tgt_shape_is(y, TG_SHAPE(3, 4, 6));
        tgt_shape_is(y0, TG_SHAPE(3, 4, 6));
        for (int64_t t = 0; t < 3; t++) {
            const tg_real *xt = xv->data + t * xv->stride[0];
            expect_product(4, 6, 10, xt, xv->stride[1], 1, W->data, 1, 10,
                           NULL, y0->data + t * 24, 6, 0, "linear, no bias");
            /* y - b must be the product */
            tg_real yb[24];
            for (int64_t i = 0; i < 4; i++)
                for (int64_t o = 0; o < 6; o++)
                    yb[i * 6 + o] = y->data[t * 24 + i * 6 + o] -
                                    b->data[o * b->stride[0]];
            for (int64_t k = 0; k < 24; k++)
                tgt_close(yb[k], y0->data[t * 24 + k], 1e-5);
        }
    }
    /* a 1-D input is one row */
    tg_tensor *x1 = rnd(TG_SHAPE(10), 11);
    tg_tensor *y1 = tg_linear(x1, W, NULL);
    tgt_shape_is(y1, TG_SHAPE(6));
    expect_product(1, 6, 10, x1->data, 10, 1, W->data, 1, 10, NULL, y1->data,
                   6, 0, "linear of a vector");
}
END_TEST

/* dL/db of linear is the column sums of dL/dy, dL/dx = dy W */
START_TEST(linear_gradient_values)
{
    tg_tensor *x = tg_requires_grad(rnd(TG_SHAPE(5, 3), 12));
    tg_tensor *W = tg_requires_grad(rnd(TG_SHAPE(4, 3), 13));
    tg_tensor *b = tg_requires_grad(rnd(TG_SHAPE(4), 14));
    tg_tensor *y = tg_linear(x, W, b);
    tg_tensor *seed = rnd(TG_SHAPE(5, 4), 15);
    ck_assert_int_eq(tg_backward_seed(y, seed), 0);
    for (int64_t o = 0; o < 4; o++) {
        double s = 0;
        for (int64_t r = 0; r < 5; r++)
            s += (double)seed->data[r * 4 + o];
        tgt_close(b->grad[o], s, 1e-5);
    }
    expect_product(5, 3, 4, seed->data, 4, 1, W->data, 3, 1, NULL, x->grad, 3,
                   0, "dx = dy W");
    expect_product(4, 3, 5, seed->data, 1, 4, x->data, 3, 1, NULL, W->grad, 3,
                   0, "dW = dy^T x");
}
END_TEST

START_TEST(shape_errors)
{
    tgt_capture_errors();
    tg_tensor *a = tg_zeros(TG_SHAPE(2, 3)), *b = tg_zeros(TG_SHAPE(4, 5));
    ck_assert_ptr_null(tg_matmul(a, b));
    tgt_expect_error("matmul", "[2, 3]", "[4, 5]", "inner sizes differ");
    ck_assert_ptr_null(tg_matmul(tg_zeros(TG_SHAPE(2, 3, 4)),
                                 tg_zeros(TG_SHAPE(3, 4, 5))));
    tgt_expect_error("matmul", "[2, 3, 4]", "[3, 4, 5]", "batch sizes differ");
    ck_assert_ptr_null(tg_matmul(tg_zeros(TG_SHAPE(3)), a));
    tgt_expect_error("matmul", "[3]", "[2, 3]", "tg_unsqueeze");
    ck_assert_ptr_null(tg_matmul(a, tg_zeros(TG_SHAPE(2, 3, 4))));
    tgt_expect_error("matmul", "[2, 3]", "[2, 3, 4]");
    ck_assert_ptr_null(tg_linear(a, b, NULL));
    tgt_expect_error("linear", "[2, 3]", "[4, 5]", "[out, in]");
    ck_assert_ptr_null(tg_linear(a, tg_zeros(TG_SHAPE(3)), NULL));
    tgt_expect_error("linear", "[2, 3]", "[3]");
    ck_assert_ptr_null(tg_linear(a, tg_zeros(TG_SHAPE(4, 3)),
                                 tg_zeros(TG_SHAPE(3))));
    tgt_expect_error("linear", "[3]", "[4, 3]", "[4]");
    /* NULL in, NULL out, quietly */
    ck_assert_ptr_null(tg_matmul(NULL, a));
    ck_assert_ptr_null(tg_linear(a, NULL, NULL));
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

/* ---- the same bits whatever the thread count ------------------------- */

typedef struct run_out {
    tg_real *y, *ga, *gb, *gc;
    int64_t ny, na, nb, nc;
} run_out;

static tg_real *dup(const tg_real *p, int64_t n)
{
    tg_real *q = malloc((size_t)n * sizeof(tg_real));
    memcpy(q, p, (size_t)n * sizeof(tg_real));
    return q;
}

/* which: 0 matmul 300x257 @ 257x190; 1 the same with b transposed;
 * 2 linear [8, 16, 300] with W [257, 300]; 3 linear with 4 rows (the dot
 * path) [4, 512] x [1024, 512]; 4 batched [6, 40, 70] @ [6, 70, 90];
 * 5 plain b with few rows [16, 300] @ [300, 1000] */
static run_out run(int threads, int which)
{
    tgt_threads(threads);
    tg_tensor *a, *b, *c = NULL, *y;
    switch (which) {
    case 0:
    case 1:
        a = tg_requires_grad(rnd(TG_SHAPE(300, 257), 20));
        b = tg_requires_grad(which ? rnd(TG_SHAPE(190, 257), 21)
                                   : rnd(TG_SHAPE(257, 190), 21));
        y = tg_matmul(a, which ? tg_transpose(b, 0, 1) : b);
        break;
    case 2:
    case 3:
        a = tg_requires_grad(which == 2 ? rnd(TG_SHAPE(8, 16, 300), 22)
                                        : rnd(TG_SHAPE(4, 512), 22));
        b = tg_requires_grad(which == 2 ? rnd(TG_SHAPE(257, 300), 23)
                                        : rnd(TG_SHAPE(1024, 512), 23));
        c = tg_requires_grad(rnd(1, b->shape, 24));
        y = tg_linear(a, b, c);
        break;
    case 4:
        a = tg_requires_grad(rnd(TG_SHAPE(6, 40, 70), 25));
        b = tg_requires_grad(rnd(TG_SHAPE(6, 70, 90), 26));
        y = tg_matmul(a, b);
        break;
    default:
        a = tg_requires_grad(rnd(TG_SHAPE(16, 300), 27));
        b = tg_requires_grad(rnd(TG_SHAPE(300, 1000), 28));
        y = tg_matmul(a, b);
        break;
    }
    ck_assert_ptr_nonnull(y);
    tg_tensor *seed = rnd(y->ndim, y->shape, 29);
    ck_assert_int_eq(tg_backward_seed(y, seed), 0);
    run_out r = {dup(y->data, y->numel), dup(a->grad, a->numel),
                 dup(b->grad, b->numel), c ? dup(c->grad, c->numel) : NULL,
                 y->numel, a->numel, b->numel, c ? c->numel : 0};
    tg_tape_reset();
    return r;
}

START_TEST(same_bits_any_thread_count)
{
    for (int which = 0; which < 6; which++) {
        run_out r1 = run(1, which), r2 = run(2, which);
        ck_assert_msg(!memcmp(r1.y, r2.y, (size_t)r1.ny * sizeof(tg_real)),
                      "case %d: outputs differ", which);
        ck_assert_msg(!memcmp(r1.ga, r2.ga, (size_t)r1.na * sizeof(tg_real)),
                      "case %d: first gradients differ", which);
        ck_assert_msg(!memcmp(r1.gb, r2.gb, (size_t)r1.nb * sizeof(tg_real)),
                      "case %d: second gradients differ", which);
        if (r1.gc)
            ck_assert_msg(!memcmp(r1.gc, r2.gc,
                                  (size_t)r1.nc * sizeof(tg_real)),
                          "case %d: bias gradients differ", which);
        /* and the numbers are right, not just repeatable */
        if (which == 0) {
            tg_tensor *a = rnd(TG_SHAPE(300, 257), 20);
            tg_tensor *b = rnd(TG_SHAPE(257, 190), 21);
            expect_product(300, 190, 257, a->data, 257, 1, b->data, 190, 1,
                           NULL, r2.y, 190, 0, "2-thread matmul");
        }
        free(r1.y), free(r1.ga), free(r1.gb), free(r1.gc);
        free(r2.y), free(r2.ga), free(r2.gb), free(r2.gc);
    }
}
END_TEST

/* A prepared W (packed once) must give the product of the numbers W had
 * when it was prepared, for any number of rows, and a new preparation
 * after a reset sees W's new numbers. */
static void naive_linear(const tg_tensor *x, const tg_tensor *W, double *out)
{
    int64_t R = x->shape[0], I = x->shape[1], O = W->shape[0];
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < O; o++) {
            double acc = 0;
            for (int64_t i = 0; i < I; i++)
                acc += tg_get(x, (int64_t[]){r, i}) * tg_get(W, (int64_t[]){o, i});
            out[r * O + o] = acc;
        }
}

static void expect_linear(tg_tensor *x, tg_tensor *W)
{
    static double want[80 * 96];
    naive_linear(x, W, want);
    tg_tensor *y = tg_linear(x, W, NULL);
    tgt_tensor_equals(y, want, y->numel, 1e-5);
}

START_TEST(linear_prepared_weight)
{
    tg_rng r;
    tg_rng_seed(&r, 8);
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(96, 40)));
    tg_fill_uniform_(W, &r, -1, 1);
    tg_tensor *P = tg_prepare_weight(W);
    for (int64_t R = 1; R <= 80; R += 13)
        expect_linear(tg_rand(TG_SHAPE(R, 40), &r, -1, 1), P);
    /* a transposed view of P is not P: it takes the ordinary path */
    tg_tensor *Wt = tg_tensor_new(TG_SHAPE(40, 96));
    tg_fill_uniform_(Wt, &r, -1, 1);
    tg_tensor *Pt = tg_prepare_weight(Wt);
    expect_linear(tg_rand(TG_SHAPE(9, 40), &r, -1, 1), tg_transpose(Pt, 0, 1));
    tg_tape_reset();
    W->data[7] -= 1; /* changed: a new sequence prepares it again */
    P = tg_prepare_weight(W);
    expect_linear(tg_rand(TG_SHAPE(16, 40), &r, -1, 1), P);
    tgt_capture_errors();
    ck_assert_ptr_null(tg_prepare_weight(tg_zeros(TG_SHAPE(3))));
    tgt_expect_error("prepare_weight", "[3]", "matrix");
    tg_tensor_free(W);
    tg_tensor_free(Wt);
}
END_TEST

/* In inference mode a parameter keeps its W^T packed between calls
 * (ops/matmul.c): on random shapes and row counts, plain and prepared,
 * the result is what a fresh packing gives (tg_gemm_prepacked, bit for
 * bit), near the naive sum, and equal to the ordinary path bit for bit
 * where that path packs too (more than 32 rows); after a change in place
 * the copy follows W's new numbers; a view of W is not W. */
START_TEST(kept_packed_weights)
{
    tg_rng r;
    tg_rng_seed(&r, 21);
    static double want[70 * 70];
    static tg_real fresh[70 * 70];
    for (int c = 0; c < 120; c++) {
        int64_t R = 1 + (int64_t)tg_rng_below(&r, c % 4 ? 40 : 70);
        int64_t O = 1 + (int64_t)tg_rng_below(&r, 70);
        int64_t I = 1 + (int64_t)tg_rng_below(&r, c % 3 ? 40 : 300);
        tg_tensor *W = tg_tensor_new(TG_SHAPE(O, I));
        tg_fill_uniform_(W, &r, -1, 1);
        if (c % 2)
            tg_requires_grad(W);
        for (int round = 0; round < 3; round++) {
            tg_tensor *x = tg_rand(TG_SHAPE(R, I), &r, -1, 1);
            if (c % 5 == 0) /* strided rows */
                x = tg_slice(tg_rand(TG_SHAPE(R, I + 3), &r, -1, 1), 1, 2,
                             I + 2, 1);
            tg_tensor *with = tg_linear(x, c % 3 ? W : tg_prepare_weight(W),
                                        NULL);
            /* grad off alone keeps nothing: the caller did not promise
             * that W changes only through the library */
            bool was = tg_set_grad_enabled(false);
            tg_tensor *plain = tg_linear(x, W, NULL);
            tg_set_grad_enabled(was);
            if (round == 0)
                ck_assert_ptr_null(W->packed);
            for (int64_t i = 0; c % 3 && i < R * O; i++) /* both plain W */
                ck_assert(plain->data[i] == with->data[i]);
            was = tg_set_inference_mode(true);
            tg_tensor *y = tg_linear(x, c % 3 ? W : tg_prepare_weight(W),
                                     NULL);
            tg_set_inference_mode(was);
            ck_assert(tg_is_grad_enabled());
            naive_linear(x, W, want); /* float sums of I products */
            tgt_tensor_equals(y, want, R * O, 1e-6 * (double)I);
            if (R >= 8) { /* the kept copy is used: what a fresh pack gives */
                tg_real *Bp = tg_xmalloc((size_t)tg_gemm_packed_size(I, O) *
                                         sizeof(tg_real));
                tg_gemm_pack_b(I, O, W->data, W->stride[1], W->stride[0], Bp);
                tg_tensor *xc = tg_contiguous(x);
                tg_gemm_prepacked(R, O, I, xc->data, I, 1, Bp, fresh, O, 0);
                free(Bp);
                ck_assert_ptr_nonnull(W->packed);
                for (int64_t i = 0; i < R * O; i++)
                    ck_assert_msg(y->data[i] == fresh[i], "case %d (R %lld O "
                                  "%lld I %lld) element %lld: %.9g, a fresh "
                                  "pack gives %.9g", c, (long long)R,
                                  (long long)O, (long long)I, (long long)i,
                                  (double)y->data[i], (double)fresh[i]);
            }
            if (R > 32)
                for (int64_t i = 0; i < R * O; i++)
                    ck_assert(y->data[i] == with->data[i]);
            /* changed in place: the next round must see it */
            if (round == 0)
                tg_fill_uniform_(W, &r, -2, 2);
            else
                W->data[(c * 7) % (O * I)] += 0.5f, tg_bump_version(W);
            tg_tape_reset();
        }
        /* a view of W is not W: its product is right too */
        bool was = tg_set_inference_mode(true);
        tg_tensor *Wt = tg_transpose(tg_transpose(W, 0, 1), 0, 1);
        tg_tensor *x = tg_rand(TG_SHAPE(R, I), &r, -1, 1);
        naive_linear(x, W, want);
        tgt_tensor_equals(tg_linear(x, Wt, NULL), want, R * O,
                          1e-6 * (double)I);
        tg_set_inference_mode(was);
        tg_tape_reset();
        tg_tensor_free(W); /* and its copy (LeakSanitizer) */
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("matmul");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gemm_values_all_layouts);
    tcase_add_test(tc, gemm_accumulate_flag);
    tcase_add_test(tc, gemm_empty_sizes);
    tcase_add_test(tc, gemm_releases_its_scratch);
    tcase_add_test(tc, matmul_values);
    tcase_add_test(tc, linear_values);
    tcase_add_test(tc, linear_gradient_values);
    tcase_add_test(tc, shape_errors);
    tcase_add_test(tc, same_bits_any_thread_count);
    tcase_add_test(tc, linear_prepared_weight);
    tcase_add_test(tc, kept_packed_weights);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
