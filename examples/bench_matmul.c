/*
 * examples/bench_matmul.c - how fast is tg_gemm, the kernel behind
 * tg_matmul and tg_linear?
 *
 *   build/bench_matmul              512x512x512, then the shapes of an
 *                                   LSTM step: 32x1024x256 and 1x256x64
 *   build/bench_matmul M N K [RUNS] one shape of your own
 *
 * For each shape it times C = A B (A [M, K], B [K, N], all row-major),
 * C = A B^T with B stored as [N, K] (what tg_linear does with W) and
 * C = A^T B with A stored as [K, M] (a weight gradient dy^T x), at 1 and
 * at 2 threads. Each run repeats the product until ~0.1 s has passed;
 * the figure printed is the median over RUNS runs (default 7) of
 * 2 M N K / (seconds per product), in GFLOP/s, with the slowest and fastest
 * run beside it. Compare with the machine's peak: cores x vector FMA units
 * x 2 x lanes x clock (e.g. 2 x 16 x 2 x ~4 GHz = ~260 GFLOP/s per core
 * for float with AVX-512). Other programs running at the same time lower
 * the figures, the 2-thread ones most.
 */
#include "ops/ops.h"

#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n rounded up to a multiple of 64 numbers (aligned_alloc wants a
 * multiple of the alignment) */
static int64_t round64(int64_t n) { return (n + 64) / 64 * 64; }

/* The layouts timed: B row-major; B^T stored (as W in x W^T); A^T stored
 * (as dy in the weight gradient dW += dy^T x). */
enum { AB, ABT, ATB, NLAYOUTS };
static const char *layout_name[NLAYOUTS] = {"A B", "A B^T", "A^T B"};

/* GFLOP/s of runs runs: median, min, max. The matrices are aligned to 64
 * bytes, as tapegrad's tensors are (tensor/arena.h). */
static void bench(int64_t M, int64_t N, int64_t K, int layout,
                  int threads, int runs, double *med, double *lo, double *hi)
{
    tg_set_num_threads(threads);
    tg_real *A = aligned_alloc(64, (size_t)round64(M * K) * sizeof(tg_real));
    tg_real *B = aligned_alloc(64, (size_t)round64(K * N) * sizeof(tg_real));
    tg_real *C = aligned_alloc(64, (size_t)round64(M * N) * sizeof(tg_real));
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (tg_real)((double)(i % 17) / 17 - 0.5);
    for (int64_t i = 0; i < K * N; i++)
        B[i] = (tg_real)((double)(i % 13) / 13 - 0.5);
    /* B (k, j) at B[k * N + j], or B^T stored as [N, K]: B[j * K + k];
     * A (i, k) at A[i * K + k], or A^T stored as [K, M]: A[k * M + i] */
    int64_t rsb = layout == ABT ? 1 : N, csb = layout == ABT ? K : 1;
    int64_t rsa = layout == ATB ? 1 : K, csa = layout == ATB ? M : 1;
    double flops = 2.0 * (double)M * (double)N * (double)K;

    /* warm up (page faults, thread start) and size a run to ~0.1 s */
    long reps = 1;
    for (;;) {
        double t0 = now();
        for (long r = 0; r < reps; r++)
            tg_gemm(M, N, K, A, rsa, csa, B, rsb, csb, C, N, 0);
        double t = now() - t0;
        if (t > 0.05 || reps > (1L << 30))
            break;
        reps *= 2;
    }
    double *g = malloc((size_t)runs * sizeof(double));
    for (int i = 0; i < runs; i++) {
        double t0 = now();
        for (long r = 0; r < reps; r++)
            tg_gemm(M, N, K, A, rsa, csa, B, rsb, csb, C, N, 0);
        g[i] = flops * (double)reps / (now() - t0) * 1e-9;
    }
    qsort(g, (size_t)runs, sizeof *g, cmp_double);
    *med = g[runs / 2];
    *lo = g[0];
    *hi = g[runs - 1];
    free(g), free(A), free(B), free(C);
}

int main(int argc, char **argv)
{
    int64_t shapes[3][3] = {{512, 512, 512}, {32, 1024, 256}, {1, 256, 64}};
    int nshapes = 3, runs = 7;
    if (argc >= 4) {
        for (int i = 0; i < 3; i++)
            shapes[0][i] = atoll(argv[1 + i]);
        nshapes = 1;
        if (argc >= 5)
            runs = atoi(argv[4]);
        if (shapes[0][0] < 1 || shapes[0][1] < 1 || shapes[0][2] < 1 ||
            runs < 1) {
            fprintf(stderr, "usage: %s [M N K [RUNS]]  (sizes >= 1)\n",
                    argv[0]);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [M N K [RUNS]]\n", argv[0]);
        return 2;
    }
    printf("tg_gemm, %s, median of %d runs (min .. max), GFLOP/s\n",
           TG_REAL_NAME, runs);
    printf("%6s %6s %6s  %-7s %22s %22s\n", "M", "N", "K", "layout",
           "1 thread", "2 threads");
    for (int s = 0; s < nshapes; s++)
        for (int lay = 0; lay < NLAYOUTS; lay++) {
            int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            printf("%6lld %6lld %6lld  %-7s", (long long)M, (long long)N,
                   (long long)K, layout_name[lay]);
            for (int th = 1; th <= 2; th++) {
                double med, lo, hi;
                bench(M, N, K, lay, th, runs, &med, &lo, &hi);
                printf(" %7.1f (%5.1f..%5.1f)", med, lo, hi);
                fflush(stdout);
            }
            printf("\n");
        }
    tg_tape_free_all();
    return 0;
}
