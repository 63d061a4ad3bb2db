/*
 * tests/test_kernels.c - the kernel levels (ops/kernels.h): the list,
 * TG_KERNELS, tg_kernels_set and its refusals, and at every level this CPU
 * runs: the gemm's paths against a product in double precision, the same
 * bits for 1, 2 and 3 threads, a bias added by the kernel giving the bits
 * of a pass of its own (random products), and elementwise instructions (every code of
 * the vector machine) that give the same bits as the generic level.
 * (`make run-tests` also runs every test binary once per level, with
 * TG_KERNELS set.)
 */
#include "harness.h"
#include "ops/kernels/gemm.h"
#include "ops/internal.h"
#include "ops/kernels.h"
#include "ops/ops.h"

static int nlevels(void)
{
    int n = 0;
    for (const char *const *l = tg_kernels_levels(); *l; l++)
        n++;
    return n;
}

START_TEST(levels_listed)
{
    const char *const *l = tg_kernels_levels();
    int n = nlevels();
    ck_assert_int_ge(n, 1);
    ck_assert_str_eq(l[n - 1], "generic"); /* the last, always there */
    ck_assert(tg_kernels_supported("generic"));
    ck_assert(tg_kernels_supported("auto"));
    ck_assert(!tg_kernels_supported("sse9"));
    ck_assert(tg_kernels_supported(tg_kernels_level()));
#if defined(__x86_64__)
    /* avx512, avx2, generic (or generic alone: make KERNEL_LEVELS=) */
    ck_assert(n == 3 || n == 1);
#endif
    /* TG_KERNELS (as set by make run-tests) is the level in use */
    const char *want = getenv("TG_KERNELS");
    if (want && tg_kernels_supported(want) && strcmp(want, "auto") != 0)
        ck_assert_str_eq(tg_kernels_level(), want);
    if (!want || strcmp(want, "auto") == 0) /* auto: the best supported */
        for (int i = 0; i < n; i++)
            if (tg_kernels_supported(l[i])) {
                ck_assert_str_eq(tg_kernels_level(), l[i]);
                break;
            }
}
END_TEST

START_TEST(set_and_refusals)
{
    tgt_capture_errors();
    const char *was = tg_kernels_level();
    ck_assert_int_eq(tg_kernels_set("sse9"), -1);
    tgt_expect_error("tg_kernels_set", "sse9", "tg_kernels_levels");
    ck_assert_str_eq(tg_kernels_level(), was);
    for (const char *const *l = tg_kernels_levels(); *l; l++)
        if (!tg_kernels_supported(*l)) {
            ck_assert_int_eq(tg_kernels_set(*l), -1);
            tgt_expect_error("this CPU cannot run");
        }
    ck_assert_int_eq(tg_kernels_set("generic"), 0);
    ck_assert_str_eq(tg_kernels_level(), "generic");
    /* not while the tape holds entries packed or computed at a level */
    tg_tensor *x = tg_requires_grad(tg_tensor_new(TG_SHAPE(4)));
    tg_fill_(x, 0.5);
    tg_tensor *y = tg_tanh(x);
    ck_assert_ptr_nonnull(y);
    if (nlevels() > 1 && tg_kernels_supported(tg_kernels_levels()[0])) {
        ck_assert_int_eq(tg_kernels_set("auto"), -1);
        tgt_expect_error("tg_tape_reset");
        ck_assert_str_eq(tg_kernels_level(), "generic");
    }
    ck_assert_int_eq(tg_kernels_set("generic"), 0); /* no change: fine */
    tg_tape_reset();
    ck_assert_int_eq(tg_kernels_set(NULL), 0);
    ck_assert(tg_kernels_supported(tg_kernels_level()));
    ck_assert_int_eq(tgt_errors, 0);
    tg_tensor_free(x);
}
END_TEST

/* C = A B (M x K by K x N, A rows or columns contiguous by ta, B by tb)
 * at the level in use, against the product in double precision */
static void check_product(int64_t M, int64_t N, int64_t K, int ta, int tb,
                          int prepacked, int threads)
{
    tg_rng rng;
    tg_rng_seed(&rng, (uint64_t)(M * 131 + N * 17 + K));
    tg_real *A = malloc(sizeof(tg_real) * (size_t)(M * K));
    tg_real *B = malloc(sizeof(tg_real) * (size_t)(K * N));
    tg_real *C = malloc(sizeof(tg_real) * (size_t)(M * N));
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (tg_real)tg_rng_normal(&rng);
    for (int64_t i = 0; i < K * N; i++)
        B[i] = (tg_real)tg_rng_normal(&rng);
    int64_t rsa = ta ? 1 : K, csa = ta ? M : 1;
    int64_t rsb = tb ? 1 : N, csb = tb ? K : 1;
    tgt_threads(threads);
    tg_real *Bp = NULL;
    if (prepacked) {
        Bp = malloc(sizeof(tg_real) * (size_t)tg_gemm_packed_size(K, N));
        tg_gemm_pack_b(K, N, B, rsb, csb, Bp);
        tg_gemm_prepacked(M, N, K, A, rsa, csa, Bp, C, N, 0);
    } else {
        tg_gemm(M, N, K, A, rsa, csa, B, rsb, csb, C, N, 0);
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0, abs = 0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)A[i * rsa + k * csa] *
                           (double)B[k * rsb + j * csb];
                s += p;
                abs += fabs(p);
            }
            double got = (double)C[i * N + j];
            ck_assert_msg(fabs(got - s) <= 1e-5 * abs + 1e-30,
                          "%s: %lldx%lldx%lld C[%lld][%lld] = %.9g, "
                          "expected %.9g",
                          tg_kernels_level(), (long long)M, (long long)N,
                          (long long)K, (long long)i, (long long)j, got, s);
        }
    free(A);
    free(B);
    free(C);
    free(Bp);
}

/* one product's bits for 1, 2 and 3 threads */
static void same_bits(int64_t M, int64_t N, int64_t K)
{
    tg_real *A = malloc(sizeof(tg_real) * (size_t)(M * K));
    tg_real *B = malloc(sizeof(tg_real) * (size_t)(K * N));
    tg_real *C1 = malloc(sizeof(tg_real) * (size_t)(M * N));
    tg_real *C2 = malloc(sizeof(tg_real) * (size_t)(M * N));
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (tg_real)tg_rng_normal(&rng);
    for (int64_t i = 0; i < K * N; i++)
        B[i] = (tg_real)tg_rng_normal(&rng);
    tgt_threads(1);
    tg_gemm(M, N, K, A, K, 1, B, N, 1, C1, N, 0);
    for (int threads = 2; threads <= 3; threads++) {
        tgt_threads(threads);
        tg_gemm(M, N, K, A, K, 1, B, N, 1, C2, N, 0);
        ck_assert_msg(memcmp(C1, C2, sizeof(tg_real) * (size_t)(M * N)) == 0,
                      "%s: 1 and %d threads differ", tg_kernels_level(),
                      threads);
    }
    free(A);
    free(B);
    free(C1);
    free(C2);
}

START_TEST(gemm_at_every_level)
{
    for (const char *const *l = tg_kernels_levels(); *l; l++) {
        if (!tg_kernels_supported(*l))
            continue;
        ck_assert_int_eq(tg_kernels_set(*l), 0);
        /* the dot path (few rows, k contiguous in both), direct B,
         * packed B (transposed), prepacked; edges everywhere */
        check_product(5, 37, 70, 0, 1, 0, 1);
        check_product(3, 50, 300, 0, 1, 0, 2);
        check_product(29, 45, 33, 0, 0, 0, 1);
        check_product(130, 70, 260, 1, 0, 0, 2);
        check_product(40, 61, 90, 0, 1, 0, 2);
        check_product(33, 77, 300, 0, 1, 1, 2);
        check_product(29, 77, 300, 0, 1, 1, 2);
        check_product(14, 40, 520, 1, 0, 1, 1);
        same_bits(150, 200, 300);
        same_bits(8, 300, 260);
    }
}
END_TEST

/* ---- random products against the same product computed another way --
 * The operands of one random product C (+)= [bias +] A B: A (M x K) and B
 * (K x N) stored transposed or not (ta, tb), a bias, and C and R, the
 * result and its reference, starting from the same random numbers. */
typedef struct rprod {
    int64_t M, N, K, rsa, csa, rsb, csb;
    int ta, tb, acc, threads;
    tg_real *A, *B, *bias, *C, *R;
} rprod;

static rprod rprod_new(tg_rng *rng, int64_t M, int64_t N, int64_t K, int ta,
                       int tb, int acc, int threads)
{
    rprod p = {M, N, K, ta ? 1 : K, ta ? M : 1, tb ? 1 : N, tb ? K : 1,
               ta, tb, acc, threads, NULL, NULL, NULL, NULL, NULL};
    size_t nA = (size_t)(M * K) + 1, nB = (size_t)(K * N) + 1; /* K may be 0 */
    p.A = malloc(sizeof(tg_real) * nA);
    p.B = malloc(sizeof(tg_real) * nB);
    p.bias = malloc(sizeof(tg_real) * (size_t)N);
    p.C = malloc(sizeof(tg_real) * (size_t)(M * N));
    p.R = malloc(sizeof(tg_real) * (size_t)(M * N));
    for (size_t i = 0; i < nA; i++)
        p.A[i] = (tg_real)tg_rng_normal(rng);
    for (size_t i = 0; i < nB; i++)
        p.B[i] = (tg_real)tg_rng_normal(rng);
    for (int64_t j = 0; j < N; j++)
        p.bias[j] = (tg_real)tg_rng_normal(rng);
    for (int64_t i = 0; i < M * N; i++)
        p.C[i] = p.R[i] = (tg_real)tg_rng_normal(rng);
    return p;
}

/* C and R the same bits (or both NaN); how - what C was computed as - and
 * ref - how R was - name the case in a failure */
static void rprod_check(const rprod *p, const char *how, const char *ref)
{
    for (int64_t i = 0; i < p->M * p->N; i++)
        ck_assert_msg(p->C[i] == p->R[i] ||
                          (p->C[i] != p->C[i] && p->R[i] != p->R[i]),
                      "%s: %lldx%lldx%lld (A%s B%s%s, acc %d, %d threads): "
                      "C[%lld] = %.9g, %s gives %.9g", tg_kernels_level(),
                      (long long)p->M, (long long)p->N, (long long)p->K,
                      p->ta ? "^T" : "", p->tb ? "^T" : "", how, p->acc,
                      p->threads, (long long)i, (double)p->C[i], ref,
                      (double)p->R[i]);
}

static void rprod_free(rprod *p)
{
    free(p->A);
    free(p->B);
    free(p->bias);
    free(p->C);
    free(p->R);
}

/* n random products by one(rng) at every kernel level this CPU runs */
static void at_every_level(void (*one)(tg_rng *), uint64_t seed, int n)
{
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    for (const char *const *l = tg_kernels_levels(); *l; l++) {
        if (!tg_kernels_supported(*l))
            continue;
        ck_assert_int_eq(tg_kernels_set(*l), 0);
        for (int i = 0; i < n; i++)
            one(&rng);
    }
    tgt_threads(1);
}

/* One random product with a bias, C (+)= bias + A B, against what the
 * kernel promises to equal bit for bit: a pass setting (or adding) the
 * bias to each row of C, then the product accumulated into C. Shapes,
 * layouts (A and B transposed or not, B prepacked), accumulation and
 * threads are drawn from rng: every path (dot, direct, packed,
 * prepacked), edge panels, K = 0 and K past one k-block. */
static void bias_product(tg_rng *rng)
{
    int64_t M = 1 + (int64_t)tg_rng_below(rng, 70);
    int64_t N = 1 + (int64_t)tg_rng_below(rng, 300);
    int64_t K = tg_rng_below(rng, 8) ? (int64_t)tg_rng_below(rng, 600) : 0;
    int ta = (int)tg_rng_below(rng, 2), tb = (int)tg_rng_below(rng, 2);
    int prepacked = (int)tg_rng_below(rng, 3) == 0;
    int acc = (int)tg_rng_below(rng, 2);
    int threads = 1 + (int)tg_rng_below(rng, 3);
    rprod p = rprod_new(rng, M, N, K, ta, tb, acc, threads);
    for (int64_t i = 0; i < M; i++) /* the reference: the pass, then C += A B */
        for (int64_t j = 0; j < N; j++)
            p.R[i * N + j] = acc ? p.R[i * N + j] + p.bias[j] : p.bias[j];
    tgt_threads(threads);
    tg_real *Bp = NULL;
    if (prepacked) {
        Bp = malloc(sizeof(tg_real) * (size_t)(tg_gemm_packed_size(K, N) + 1));
        tg_gemm_pack_b(K, N, p.B, p.rsb, p.csb, Bp);
        tg_gemm_prepacked(M, N, K, p.A, p.rsa, p.csa, Bp, p.R, N, 1);
        tg_gemm_prepacked_bias(M, N, K, p.A, p.rsa, p.csa, Bp, p.bias, p.C,
                               N, acc);
    } else {
        tg_gemm(M, N, K, p.A, p.rsa, p.csa, p.B, p.rsb, p.csb, p.R, N, 1);
        tg_gemm_bias(M, N, K, p.A, p.rsa, p.csa, p.B, p.rsb, p.csb, p.bias,
                     p.C, N, acc);
    }
    rprod_check(&p, prepacked ? " prepacked, with a bias" : " with a bias",
                "the pass then the product");
    free(Bp);
    rprod_free(&p);
}

START_TEST(gemm_bias_same_bits) { at_every_level(bias_product, 2026, 150); }
END_TEST

/* One random product tall enough for several tiles down M (which pack B
 * once for all of them, ops/kernels/gemm.c), against the same product
 * computed 40 rows at a time on one thread (one tile each: B packed per
 * tile, or read in place): the same bits. Layouts, N, K, accumulation,
 * the bias and the threads are drawn from rng. */
static void tall_product(tg_rng *rng)
{
    int64_t M = 40 * (4 + (int64_t)tg_rng_below(rng, 12));
    int64_t N = 1 + (int64_t)tg_rng_below(rng, 700);
    int64_t K = 1 + (int64_t)tg_rng_below(rng, 600);
    int ta = (int)tg_rng_below(rng, 2), tb = (int)tg_rng_below(rng, 2);
    int acc = (int)tg_rng_below(rng, 2), with_bias = (int)tg_rng_below(rng, 2);
    int threads = 1 + (int)tg_rng_below(rng, 3);
    rprod p = rprod_new(rng, M, N, K, ta, tb, acc, threads);
    const tg_real *b = with_bias ? p.bias : NULL;
    tgt_threads(1);
    for (int64_t i = 0; i < M; i += 40)
        tg_gemm_bias(40, N, K, p.A + i * p.rsa, p.rsa, p.csa, p.B, p.rsb,
                     p.csb, b, p.R + i * N, N, acc);
    tgt_threads(threads);
    tg_gemm_bias(M, N, K, p.A, p.rsa, p.csa, p.B, p.rsb, p.csb, b, p.C, N,
                 acc);
    rprod_check(&p, with_bias ? ", with a bias" : "", "by blocks of 40 rows");
    rprod_free(&p);
}

START_TEST(gemm_tall_same_bits) { at_every_level(tall_product, 2027, 25); }
END_TEST

/* One random short product on packed B (1-40 rows: one tile, its rows
 * cut into panels of near-equal height) against the same product 6 rows
 * at a time: the same bits. */
static void short_product(tg_rng *rng)
{
    int64_t M = 1 + (int64_t)tg_rng_below(rng, 40);
    int64_t N = 1 + (int64_t)tg_rng_below(rng, 200);
    int64_t K = 1 + (int64_t)tg_rng_below(rng, 600);
    int ta = (int)tg_rng_below(rng, 2), tb = (int)tg_rng_below(rng, 2);
    int acc = (int)tg_rng_below(rng, 2), with_bias = (int)tg_rng_below(rng, 2);
    int threads = 1 + (int)tg_rng_below(rng, 3);
    rprod p = rprod_new(rng, M, N, K, ta, tb, acc, threads);
    const tg_real *b = with_bias ? p.bias : NULL;
    tg_real *Bp = malloc(sizeof(tg_real) * (size_t)tg_gemm_packed_size(K, N));
    tg_gemm_pack_b(K, N, p.B, p.rsb, p.csb, Bp);
    tgt_threads(1);
    for (int64_t i = 0; i < M; i += 6)
        tg_gemm_prepacked_bias(M - i < 6 ? M - i : 6, N, K, p.A + i * p.rsa,
                               p.rsa, p.csa, Bp, b, p.R + i * N, N, acc);
    tgt_threads(threads);
    tg_gemm_prepacked_bias(M, N, K, p.A, p.rsa, p.csa, Bp, b, p.C, N, acc);
    rprod_check(&p, with_bias ? " prepacked, with a bias" : " prepacked",
                "by blocks of 6 rows");
    free(Bp);
    rprod_free(&p);
}

START_TEST(gemm_short_same_bits) { at_every_level(short_product, 2028, 150); }
END_TEST

/* the elementwise instructions, every code, assigned and accumulated
 * (d = expr, d += expr): the same bits at every level as at generic */
START_TEST(elementwise_same_bits)
{
    enum { n = 1000 };
    tg_real a[n], b[n], c[n], d0[n], ref[n], d[n];
    for (int i = 0; i < n; i++) {
        a[i] = (tg_real)((i - n / 2) * 0.037);       /* -18.5 .. 18.5 */
        b[i] = (tg_real)(0.3 + i * 0.011);            /* 0.3 .. 11.3 */
        /* some zeros: the c == 0 cases of the powers' derivatives */
        c[i] = i % 7 == 0 ? 0 : (tg_real)(0.05 + (i % 13) * 0.21);
        d0[i] = (tg_real)(0.5 - i * 0.0013);
    }
    int checked = 0;
    for (int code = 0; code < TG_VM_NCODES; code++)
        for (int acc = 0; acc < 2; acc++) {
            /* roots, logarithms and powers of positive numbers */
            const tg_real *x = code == TG_VM_SQRT || code == TG_VM_LOG ||
                                       code == TG_VM_POW ||
                                       code == TG_VM_POWK
                                   ? b
                                   : a;
            const tg_real k = (tg_real)1.7;
            ck_assert_int_eq(tg_kernels_set("generic"), 0);
            memcpy(ref, d0, sizeof ref);
            tg_vm_eval(code, n, ref, x, b, c, k, acc);
            for (const char *const *l = tg_kernels_levels(); *l; l++) {
                if (!tg_kernels_supported(*l))
                    continue;
                ck_assert_int_eq(tg_kernels_set(*l), 0);
                memcpy(d, d0, sizeof d);
                tg_vm_eval(code, n, d, x, b, c, k, acc);
                ck_assert_msg(memcmp(d, ref, sizeof d) == 0,
                              "code %d%s: %s differs from generic", code,
                              acc ? " (accumulated)" : "", *l);
                checked++;
            }
        }
    ck_assert_int_ge(checked, 2 * TG_VM_NCODES);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, levels_listed);
    tcase_add_test(tc, set_and_refusals);
    tcase_add_test(tc, gemm_at_every_level);
    tcase_add_test(tc, gemm_bias_same_bits);
    tcase_add_test(tc, gemm_tall_same_bits);
    tcase_add_test(tc, gemm_short_same_bits);
    tcase_add_test(tc, elementwise_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
