/*
 * examples/bench.c - times complete training, forward and sampling steps
 * of a character model, with the same flags and the same output format as
 * scripts/bench_torch_rnn.py (the same benchmark in PyTorch), so that the
 * two can be run in one session and their lines divided
 * (scripts/bench_compare.py).
 *
 *   build/bench --cell lstm --mode train --opt sgd --E 256 --H 256 --L 2 \
 *               --T 64 --B 32 --threads 2 --steps 50
 *   build/bench            (no flags: the whole table of the README)
 *
 * Model: Embedding(V, E) -> L-layer cell (hidden H) -> Linear(H, V) ->
 * mean cross-entropy over T*B positions; zero initial state every batch.
 * Modes: train (forward + backward + SGD lr 0.1 or Adam lr 1e-3), forward
 * (no-grad over the batch), sample (no-grad autoregressive generation of T
 * tokens for B streams, one step per call). One line per result:
 *   tapegrad lstm mode=train opt=sgd E=.. H=.. L=.. T=.. B=.. V=.. threads=..
 *   ms_per_step=.. tokens_per_s=.. ms_min=.. ms_mean=.. ms_p90=.. cv=..
 *   gflop_per_step=.. gflops=.. cpu_util=.. steps=.. peak_rss_mb=..
 *   peak_gflops=.. peak_frac=.. kernels=..
 * ms_per_step is the median over --steps timed steps after --warmup.
 * peak_gflops is this machine's fp32 FMA peak on the same number of
 * threads, measured here with a loop of independent fused multiply-adds
 * on the vectors of the kernel level in use (AVX-512 or AVX2 FMA; 4-float
 * multiply and add at generic), best of three; peak_frac = gflops /
 * peak_gflops, so that runs on different machines can be compared.
 * kernels is that level (ops/kernels.h; TG_KERNELS forces one). The peak
 * is the better of two loops (12 and 24 chains); --peak prints both and
 * the clock they imply against the one the kernel reports.
 * Sampling has a second limit, reading every weight once per token step:
 * a line "limit ..." after each sample result gives the weights' bytes,
 * the read bandwidth measured over a buffer of that size, both limits per
 * token step (us_read, us_flops), the time taken, and bound_frac = the
 * nearer limit / the time taken.
 *
 * Besides the built-in cells (lstm, gru, rnn) two cells written here as
 * user code (examples/common/cells.c): peephole (an LSTM with
 * peephole vectors) and peephole_sliced (the same, slicing weight_hh into
 * its four gate blocks inside every step), to measure what composing a
 * cell in user code costs against the built-in one.
 */
#include "examples/common/cells.h"
#include "examples/common/cli.h"
#include "nn/charlm.h"
#include "nn/optim.h"
#include "ops/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct config {
    const char *cells, *modes, *opts; /* lists: "lstm,gru" */
    int E, H, L, T, B, V, threads, steps, warmup;
    int64_t seed;
    const char *ignored; /* the reference's --blas-threads and --tag */
    bool peak;           /* --peak: the peak loops and the clock, only */
} config;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the machine's fp32 FMA peak --------------------------------------
 * 12 independent chains of a = a * m + b: enough to keep two FMA units
 * with a latency of 4 cycles busy. Returns the FLOPs done.
 * The chains must start from different numbers, and m and b must be
 * unknown to the compiler: with 12 identical chains gcc proves them equal
 * and keeps one, latency-bound chain - the loop then runs 1 FMA where we
 * count 12, and the "peak" comes out 1.5x too high (it did, until
 * 2026-12).
 * The library is built for the baseline and picks its kernels at run time
 * (ops/kernels.h), so the loop is compiled three times, for 16-float
 * AVX-512 vectors, 8-float AVX2 vectors and plain floats, and the one
 * that matches the kernel level in use runs: the peak of the vectors the
 * gemm uses. */
static volatile float fma_m = 0.9999999f, fma_b = 1e-7f;

#define FMA_LOOP(name, attr, vfma, LANES, SET, FMA, FIRST)                 \
    attr static double name(long iters, float *sink)                      \
    {                                                                      \
        vfma m = SET(fma_m), b = SET(fma_b);                               \
        vfma a0 = SET(1.00f), a1 = SET(1.01f), a2 = SET(1.02f);            \
        vfma a3 = SET(1.03f), a4 = SET(1.04f), a5 = SET(1.05f);            \
        vfma a6 = SET(1.06f), a7 = SET(1.07f), a8 = SET(1.08f);            \
        vfma a9 = SET(1.09f), a10 = SET(1.10f), a11 = SET(1.11f);          \
        for (long i = 0; i < iters; i++) {                                 \
            a0 = FMA(a0, m, b), a1 = FMA(a1, m, b), a2 = FMA(a2, m, b);    \
            a3 = FMA(a3, m, b), a4 = FMA(a4, m, b), a5 = FMA(a5, m, b);    \
            a6 = FMA(a6, m, b), a7 = FMA(a7, m, b), a8 = FMA(a8, m, b);    \
            a9 = FMA(a9, m, b), a10 = FMA(a10, m, b);                      \
            a11 = FMA(a11, m, b);                                          \
        }                                                                  \
        *sink = FIRST(a0) + FIRST(a1) + FIRST(a2) + FIRST(a3) +            \
                FIRST(a4) + FIRST(a5) + FIRST(a6) + FIRST(a7) +            \
                FIRST(a8) + FIRST(a9) + FIRST(a10) + FIRST(a11);           \
        return (double)iters * 12 * LANES * 2;                             \
    }

/* generic: 4-float vectors, a multiply and an add (what the generic gemm
 * runs: SSE2 on x86-64; -std=c11 keeps them two instructions) */
typedef float v4f __attribute__((vector_size(16)));
#define V4_SET(x) ((v4f){(x), (x), (x), (x)})
#define V4_FMA(a, b, c) ((a) * (b) + (c))
#define V4_FIRST(v) ((v)[0])
FMA_LOOP(fma_loop_generic, , v4f, 4, V4_SET, V4_FMA, V4_FIRST)
#if defined(__x86_64__) && defined(__GNUC__)
FMA_LOOP(fma_loop_avx512, __attribute__((target("avx512f"))), __m512, 16,
         _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32)
FMA_LOOP(fma_loop_avx2, __attribute__((target("avx2,fma"))), __m256, 8,
         _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32)
#endif

/* An independent check of the same peak: 24 chains instead of 12 (a
 * core with longer FMA latency or more units than the 12 chains cover
 * reads higher here), an array the compiler unrolls and keeps in
 * registers. The peak is the better of the two loops. */
#define FMA_WIDE(name, attr, vfma, LANES, SET, FMA, FIRST)                 \
    attr static double name(long iters, float *sink)                      \
    {                                                                      \
        vfma m = SET(fma_m), b = SET(fma_b), a[24];                        \
        for (int c = 0; c < 24; c++)                                       \
            a[c] = SET(1.0f + 0.005f * (float)c);                          \
        for (long i = 0; i < iters / 2; i++) {                             \
            _Pragma("GCC unroll 24") for (int c = 0; c < 24; c++)          \
                a[c] = FMA(a[c], m, b);                                    \
        }                                                                  \
        float s = 0;                                                       \
        for (int c = 0; c < 24; c++)                                       \
            s += FIRST(a[c]);                                              \
        *sink = s;                                                         \
        return (double)(iters / 2) * 24 * LANES * 2;                       \
    }
FMA_WIDE(fma_wide_generic, , v4f, 4, V4_SET, V4_FMA, V4_FIRST)
#if defined(__x86_64__) && defined(__GNUC__)
FMA_WIDE(fma_wide_avx512, __attribute__((target("avx512f"))), __m512, 16,
         _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32)
FMA_WIDE(fma_wide_avx2, __attribute__((target("avx2,fma"))), __m256, 8,
         _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32)
#endif

static int fma_lanes(void)
{
    const char *lv = tg_kernels_level();
    return !strcmp(lv, "avx512") ? 16 : !strcmp(lv, "avx2") ? 8 : 4;
}

static double fma_loop_n(int chains, long iters, float *sink)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (fma_lanes() == 16)
        return chains == 12 ? fma_loop_avx512(iters, sink)
                            : fma_wide_avx512(iters, sink);
    if (fma_lanes() == 8)
        return chains == 12 ? fma_loop_avx2(iters, sink)
                            : fma_wide_avx2(iters, sink);
#endif
    return chains == 12 ? fma_loop_generic(iters, sink)
                        : fma_wide_generic(iters, sink);
}

/* GFLOP/s of the loop of `chains` chains on `threads` threads at once,
 * best of three */
static double fma_rate(int chains, int threads)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        float sink = 0;
        double flops = 0, t0 = now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        {
            float s1;
            flops += fma_loop_n(chains, 2000000, &s1);
#pragma omp atomic
            sink += s1;
        }
#else
        (void)threads;
        flops = fma_loop_n(chains, 2000000, &sink);
#endif
        double gf = flops / (now() - t0) / 1e9;
        if (sink == 12345.0f) /* never: keeps the loop */
            printf("%g\n", (double)sink);
        best = gf > best ? gf : best;
    }
    return best;
}

/* the machine's peak on `threads` threads: the better loop */
static double fma_peak(int threads)
{
    static double known[64];
    if (threads < 64 && known[threads] > 0)
        return known[threads];
    double a = fma_rate(12, threads), b = fma_rate(24, threads);
    double best = a > b ? a : b;
    if (threads < 64)
        known[threads] = best;
    return best;
}

/* The CPUs the kernel lists and the physical cores under them (sysfs
 * topology: a (package, core) pair per CPU), so that a 2-thread figure
 * can be read: 2 threads on 2 cores can reach 2x, 2 SMT siblings share
 * one core's FMA units. A virtual machine shows what its host tells it,
 * which may hide the sharing: the 2-thread FMA ratio printed beside is
 * the measured answer. */
static void print_topology(void)
{
    enum { MAXCPU = 1024 };
    static int pkg[MAXCPU], core[MAXCPU];
    int ncpu = 0, ncore = 0;
    for (; ncpu < MAXCPU; ncpu++) {
        char path[96];
        int v[2];
        const char *what[2] = {"physical_package_id", "core_id"};
        int ok = 1;
        for (int k = 0; k < 2 && ok; k++) {
            snprintf(path, sizeof path,
                     "/sys/devices/system/cpu/cpu%d/topology/%s", ncpu, what[k]);
            FILE *f = fopen(path, "r");
            ok = f && fscanf(f, "%d", &v[k]) == 1;
            if (f)
                fclose(f);
        }
        if (!ok)
            break;
        int seen = 0;
        for (int j = 0; j < ncore && !seen; j++)
            seen = pkg[j] == v[0] && core[j] == v[1];
        if (!seen) {
            pkg[ncore] = v[0];
            core[ncore++] = v[1];
        }
    }
    if (ncpu == 0) {
        printf("topology: not readable (no /sys/devices/system/cpu)\n");
        return;
    }
    printf("topology: %d CPU%s on %d core%s (%s)\n", ncpu, ncpu > 1 ? "s" : "",
           ncore, ncore > 1 ? "s" : "",
           ncpu > ncore ? "SMT: siblings share a core's FMA units"
                        : "no SMT siblings listed");
}

/* --peak: both loops, and what they imply against the clock the kernel
 * reports (per thread: units x lanes x 2 FLOPs x GHz); on more than one
 * thread, the machine's topology and the gain over one thread */
static void print_peak(int threads)
{
    double a = fma_rate(12, threads), b = fma_rate(24, threads);
    double mhz = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
            break;
    if (f)
        fclose(f);
    int lanes = fma_lanes();
    double best = a > b ? a : b, per = best / threads;
    printf("peak %s: 12 chains %.1f GFLOP/s, 24 chains %.1f on %d thread%s; "
           "%.1f per thread = %d lanes x 2 FLOPs x %.2f GHz at 1 FMA unit, "
           "%.2f GHz at 2", tg_kernels_level(), a, b, threads,
           threads > 1 ? "s" : "", per, lanes, per / lanes / 2,
           per / lanes / 4);
    if (mhz > 0)
        printf(" (the kernel reports %.2f GHz: %.2f units)", mhz / 1e3,
               per / (lanes * 2 * mhz / 1e3));
    printf("\n");
    if (threads > 1) {
        double one = fma_peak(1);
        print_topology();
        printf("peak on %d threads / 1 thread: %.2fx (%d separate cores "
               "give %dx; SMT siblings on one core about 1-1.3x)\n", threads,
               best / one, threads, threads);
    }
}

static int gates_of(const char *cell)
{
    return !strcmp(cell, "gru") ? 3 : !strcmp(cell, "rnn") ? 1 : 4;
}

/* the reference's count: matmul FLOPs of the recurrent layers and the
 * output layer; train = 3 x forward */
static double gflop_per_step(const char *cell, const char *mode, const config *c)
{
    double per_tok = 0;
    for (int l = 0; l < c->L; l++)
        per_tok += 2.0 * gates_of(cell) * c->H * ((l ? c->H : c->E) + c->H);
    per_tok += 2.0 * c->H * c->V;
    double fwd = per_tok * c->T * c->B;
    return (strcmp(mode, "train") ? fwd : 3 * fwd) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench {
    const config *c;
    tg_charlm *m;
    tg_optim *opt;
    int64_t *tokens[4], *targets[4];
    int it;
    tg_rng rng;
    tg_tensor *state[TG_CELL_MAX_STATE];
} bench;

static void train_step(bench *b)
{
    const config *c = b->c;
    int k = b->it++ % 4;
    tg_optim_zero_grad(b->opt);
    tg_rnn_out out;
    tg_tensor *logits = tg_charlm_forward(b->m, b->tokens[k], c->T, c->B, NULL,
                                          true, &b->rng, &out);
    tg_backward(tg_cross_entropy(logits, b->targets[k], TG_MEAN));
    tg_optim_step(b->opt);
    tg_tape_reset();
}

static void forward_step(bench *b)
{
    const config *c = b->c;
    int k = b->it++ % 4;
    bool was = tg_set_grad_enabled(false);
    tg_rnn_out out;
    tg_charlm_forward(b->m, b->tokens[k], c->T, c->B, NULL, false, NULL, &out);
    tg_tape_reset();
    tg_set_grad_enabled(was);
}

/* T tokens for B streams, one time step per call; the state is carried in
 * persistent tensors so the arena is reset every step */
static void sample_step(bench *b)
{
    const config *c = b->c;
    int k = b->it++ % 4;
    bool was = tg_set_inference_mode(true); /* what charlm sample does */
    int64_t *tok = malloc((size_t)c->B * sizeof *tok);
    memcpy(tok, b->tokens[k], (size_t)c->B * sizeof *tok);
    double *p = malloc((size_t)c->V * sizeof *p);
    for (int t = 0; t < c->T; t++) {
        tg_rnn_out out;
        tg_tensor *logits = tg_charlm_forward(b->m, tok, 1, c->B,
                                              t ? b->state : NULL, false, NULL,
                                              &out);
        tg_tensor *probs = tg_softmax(logits, -1); /* [1, B, V] */
        for (int s = 0; s < c->B; s++) {
            double u = tg_rng_uniform(&b->rng), acc = 0;
            int64_t pick = c->V - 1;
            for (int v = 0; v < c->V; v++) {
                acc += (double)probs->data[s * c->V + v];
                if (u < acc) {
                    pick = v;
                    break;
                }
            }
            tok[s] = pick;
        }
        tg_rnn_keep_state(b->m->rnn, &out, b->state);
        tg_tape_reset();
    }
    free(p);
    free(tok);
    tg_set_inference_mode(was);
}

/* ---- sampling's other limit: reading the weights ----------------------
 * A sampling step (one token for B streams) reads every weight once:
 * unless B is large its time is bound by how fast the weights stream in
 * from wherever they sit (L2, L3 or memory, by their size), not by the
 * FLOPs. GB/s of summing a buffer of that many bytes, as 64-bit integers
 * (exact, so the compiler vectorizes the sum with any flags), best of
 * five after a pass that brings it into the caches it fits. */
static uint64_t sum_words(const uint64_t *p, size_t n)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
    for (; i < n; i++)
        s0 += p[i];
    return s0 + s1 + s2 + s3;
}

static double read_gbs(size_t bytes, int threads)
{
    size_t n = bytes / 8 > 1024 ? bytes / 8 : 1024;
    uint64_t *buf = malloc(n * sizeof *buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = i * 0x9e3779b97f4a7c15u;
    /* enough passes for ~0.05 s at 50 GB/s */
    int passes = (int)fmin(1e4, fmax(3, 2.5e9 / (double)(n * 8)));
    double best = 0;
    uint64_t sink = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now();
        for (int p = 0; p < (rep ? passes : 1); p++) {
            uint64_t s = 0;
            /* thread k sums its own share, as the gemm splits the weights */
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : s)
            {
                size_t k = (size_t)omp_get_thread_num();
                size_t nt = (size_t)omp_get_num_threads();
                s += sum_words(buf + n * k / nt, n * (k + 1) / nt - n * k / nt);
            }
#else
            (void)threads;
            s = sum_words(buf, n);
#endif
            sink += s;
        }
        double gbs = (double)(n * 8) * (rep ? passes : 1) / (now() - t0) / 1e9;
        best = rep && gbs > best ? gbs : best;
    }
    if (sink == 12345)
        printf("%llu\n", (unsigned long long)sink);
    free(buf);
    return best;
}

/* bytes of weights one sampling step reads: every parameter, but only B
 * rows of the embedding */
static double sample_bytes(const tg_charlm *m, int B)
{
    double n = 0;
    for (int i = 0; i < tg_params_count(&m->params); i++)
        n += (double)tg_params_at(&m->params, i)->tensor->numel;
    n -= (double)m->embedding->weight->numel;
    n += (double)B * m->embed;
    return n * sizeof(tg_real);
}

static void run(const config *c, const char *cell, const char *mode,
                const char *opt)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.c = c;
    tg_set_num_threads(c->threads);
    tg_rng init;
    tg_rng_seed(&init, c->seed);
    tg_rng_seed(&b.rng, c->seed + 1);
    const tg_cell_type *type = tg_cell_type_find(strcmp(cell, "lstm_manual") ? cell : "lstm");
    if (!type) {
        fprintf(stderr, "bench: unknown cell '%s'\n", cell);
        exit(2);
    }
    b.m = tg_charlm_new(type, c->V, c->E, c->H, c->L, 0.0, &init);
    for (int k = 0; k < 4; k++) {
        b.tokens[k] = malloc((size_t)c->T * c->B * sizeof(int64_t));
        b.targets[k] = malloc((size_t)c->T * c->B * sizeof(int64_t));
        for (int i = 0; i < c->T * c->B; i++) {
            b.tokens[k][i] = (int64_t)tg_rng_below(&init, (uint64_t)c->V);
            b.targets[k][i] = (int64_t)tg_rng_below(&init, (uint64_t)c->V);
        }
    }
    void (*step)(bench *) = sample_step;
    if (!strcmp(mode, "train")) {
        step = train_step;
        b.opt = !strcmp(opt, "adam")
                    ? tg_adam_new(&b.m->params, 1e-3, 0.9, 0.999, 1e-8, 0)
                    : tg_sgd_new(&b.m->params, 0.1, 0, 0, 0, false);
    } else if (!strcmp(mode, "forward")) {
        step = forward_step;
    } else if (strcmp(mode, "sample")) {
        fprintf(stderr, "bench: unknown mode '%s'\n", mode);
        exit(2);
    }
    for (int i = 0; i < c->warmup; i++)
        step(&b);
    double *times = malloc((size_t)c->steps * sizeof *times);
    double cpu0 = cpu_now(), wall0 = now();
    for (int i = 0; i < c->steps; i++) {
        double t0 = now();
        step(&b);
        times[i] = now() - t0;
    }
    double cpu_util = (cpu_now() - cpu0) / fmax(now() - wall0, 1e-12);
    double mean = 0, var = 0;
    for (int i = 0; i < c->steps; i++)
        mean += times[i] / c->steps;
    for (int i = 0; i < c->steps; i++)
        var += (times[i] - mean) * (times[i] - mean) / c->steps;
    qsort(times, (size_t)c->steps, sizeof *times, cmp_double);
    double med = c->steps % 2 ? times[c->steps / 2]
                              : 0.5 * (times[c->steps / 2 - 1] + times[c->steps / 2]);
    double p90 = times[(int)fmin(c->steps - 1, (int)(0.9 * c->steps))];
    double gf = gflop_per_step(cell, mode, c);
    double peak = fma_peak(c->threads);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("tapegrad %s mode=%s opt=%s E=%d H=%d L=%d T=%d B=%d V=%d threads=%d "
           "ms_per_step=%.4f tokens_per_s=%.1f ms_min=%.4f ms_mean=%.4f "
           "ms_p90=%.4f cv=%.3f gflop_per_step=%.4f gflops=%.2f cpu_util=%.2f "
           "steps=%d peak_rss_mb=%.0f peak_gflops=%.1f peak_frac=%.3f kernels=%s\n",
           cell, mode, strcmp(mode, "train") ? "-" : opt, c->E, c->H, c->L, c->T,
           c->B, c->V, c->threads, med * 1e3, c->T * c->B / med, times[0] * 1e3,
           mean * 1e3, p90 * 1e3, sqrt(var) / mean, gf, gf / med, cpu_util,
           c->steps, (double)ru.ru_maxrss / 1024.0, peak, gf / med / peak,
           tg_kernels_level());
    if (!strcmp(mode, "sample")) {
        /* per token step: the nearer of the two limits, and how close */
        double bytes = sample_bytes(b.m, c->B), gbs = read_gbs(bytes, c->threads);
        double t_read = bytes / (gbs * 1e9), t_flop = gf / c->T / peak;
        double bound = fmax(t_read, t_flop), per = med / c->T;
        printf("limit %s mode=sample weights_mb=%.2f read_gbs=%.1f "
               "us_read=%.2f us_flops=%.2f us_per_token_step=%.2f "
               "bound=%s bound_frac=%.3f\n", cell, bytes / 1e6, gbs,
               t_read * 1e6, t_flop * 1e6, per * 1e6,
               t_read > t_flop ? "read" : "flops", bound / per);
    }
    fflush(stdout);
    free(times);
    for (int k = 0; k < 4; k++) {
        free(b.tokens[k]);
        free(b.targets[k]);
    }
    for (int k = 0; k < TG_CELL_MAX_STATE; k++)
        tg_tensor_free(b.state[k]);
    tg_optim_free(b.opt);
    tg_charlm_free(b.m);
}

static void run_all(const config *c)
{
    char cells[64], modes[64];
    snprintf(cells, sizeof cells, "%s", c->cells);
    for (char *cs = NULL, *cell = strtok_r(cells, ",", &cs); cell;
         cell = strtok_r(NULL, ",", &cs)) {
        snprintf(modes, sizeof modes, "%s", c->modes);
        for (char *ms = NULL, *mode = strtok_r(modes, ",", &ms); mode;
             mode = strtok_r(NULL, ",", &ms)) {
            char opts[64];
            snprintf(opts, sizeof opts, "%s", strcmp(mode, "train") ? "-" : c->opts);
            for (char *os = NULL, *opt = strtok_r(opts, ",", &os); opt;
                 opt = strtok_r(NULL, ",", &os))
                run(c, cell, mode, opt);
        }
    }
}

#define OFF(f) offsetof(config, f)
#define MAX_SIZE (1 << 24)
static const cli_flag flags[] = {
    {"cell", "LIST", CLI_STR, OFF(cells), 0, 0, 0, NULL},
    {"mode", "LIST", CLI_STR, OFF(modes), 0, 0, 0, NULL},
    {"opt", "LIST", CLI_STR, OFF(opts), 0, 0, 0, NULL},
    {"E", "n", CLI_INT, OFF(E), 1, MAX_SIZE, 0, NULL},
    {"H", "n", CLI_INT, OFF(H), 1, MAX_SIZE, 0, NULL},
    {"L", "n", CLI_INT, OFF(L), 1, MAX_SIZE, 0, NULL},
    {"T", "n", CLI_INT, OFF(T), 1, MAX_SIZE, 0, NULL},
    {"B", "n", CLI_INT, OFF(B), 1, MAX_SIZE, 0, NULL},
    {"V", "n", CLI_INT, OFF(V), 1, MAX_SIZE, 0, NULL},
    {"threads", "n", CLI_INT, OFF(threads), 1, MAX_SIZE, 0, NULL},
    {"steps", "n", CLI_INT, OFF(steps), 1, MAX_SIZE, 0, NULL},
    /* a negative --warmup is none, as it always was */
    {"warmup", "n", CLI_INT, OFF(warmup), -MAX_SIZE, MAX_SIZE, 0, NULL},
    {"seed", "n", CLI_I64, OFF(seed), 0, 9e18, 0, NULL},
    {"blas-threads", "n", CLI_STR, OFF(ignored), 0, 0, 0, NULL},
    {"tag", "TEXT", CLI_STR, OFF(ignored), 0, 0, 0, NULL},
    {"peak", NULL, CLI_SWITCH, OFF(peak), 0, 0, 0, NULL},
};
static const cli_spec spec = {
    "bench",
    "usage: bench [--cell lstm,gru,rnn,peephole,peephole_sliced] "
    "[--mode train,forward,sample] "
    "[--opt sgd,adam] [--E n] [--H n] [--L n] [--T n] [--B n] [--V n]\n"
    "             [--threads n] [--steps n] [--warmup n] [--seed n] [--peak]\n"
    "Without flags: the whole table (tiny, small, medium, large; "
    "every cell and mode; 1 and 2 threads).\n",
    flags, CLI_COUNT(flags), CLI_WANTS, NULL, NULL};

int main(int argc, char **argv)
{
    config c = {"lstm", "train", "sgd", 128, 128, 1, 64, 16, 65, 1, 50, 5, 0,
                NULL, false};
    ex_register_cells(); /* peephole, peephole_sliced: user code */
    if (argc == 1) {
        /* the README's table: four sizes, three cells, all modes, 1 and 2
         * threads; fewer timed steps for the big sizes */
        const int sizes[4][5] = {{64, 1, 32, 1, 50}, {128, 1, 64, 16, 30},
                                 {256, 2, 64, 32, 15}, {512, 2, 128, 32, 6}};
        for (int s = 0; s < 4; s++)
            for (int th = 1; th <= 2; th++) {
                config t = c;
                t.cells = "lstm,gru,rnn";
                t.modes = "train,forward,sample";
                t.opts = "sgd,adam";
                t.E = t.H = sizes[s][0];
                t.L = sizes[s][1];
                t.T = sizes[s][2];
                t.B = sizes[s][3];
                t.steps = sizes[s][4];
                t.warmup = 2;
                t.threads = th;
                run_all(&t);
            }
        return 0;
    }
    cli_parse_or_exit(&spec, argc, argv, &c);
    if (c.peak) {
        tg_set_num_threads(c.threads);
        print_peak(c.threads);
        return 0;
    }
    run_all(&c);
    return 0;
}
