/*
 * ops/kernels/kernels.c - the kernel levels (ops/kernels.h): which levels this
 * build has, which one this CPU runs, TG_KERNELS and tg_kernels_set, and
 * the gemm entry points of ops/kernels/gemm.h and ops/matmul.h, which call the
 * level in use.
 *
 * The Makefile compiles the kernel files (ops/kernels/gemm.c, ops/kernels/vm.c)
 * once per level and defines TG_KERNELS_X86 here when it built the x86-64
 * levels avx512 and avx2 beside generic. Without it (another CPU family, or a
 * build that compiles each file once) there is one level, generic. This file
 * itself is compiled for the baseline: it must run on any CPU, since it is what
 * decides.
 */
#include "ops/kernels/gemm.h"
#include "ops/internal.h"
#include "ops/kernels/kernel_table.h"
#include "ops/kernels.h"
#include "ops/matmul.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(TG_KERNELS_X86) && !(defined(__x86_64__) || defined(__i386__))
#error "TG_KERNELS_X86 is for x86 targets only"
#endif

TG_KERNEL_DECLS(generic)
#ifdef TG_KERNELS_X86
TG_KERNEL_DECLS(avx2)
TG_KERNEL_DECLS(avx512)

/* __builtin_cpu_supports also checks that the operating system saves the
 * wide registers (XCR0), not only that the CPU has the instructions.
 * x86-64-v4 and v3 are the feature sets the levels are compiled for
 * (-march=x86-64-v4 / -v3). */
#ifndef __clang__
static bool cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4");
}
static bool cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v3");
}
#else /* clang 14 (Debian 12's) knows no level names: their features */
static bool cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
           __builtin_cpu_supports("popcnt") &&
           __builtin_cpu_supports("sse4.2");
}
static bool cpu_avx512(void)
{
    return cpu_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}
#endif
#endif
static bool cpu_any(void) { return true; }

#define LEVEL(lv, ok)                                                      \
    {#lv, ok, tg_k_gemm_batched_##lv, tg_k_gemm_packed_size_##lv,          \
     tg_k_gemm_pack_b_##lv, tg_k_gemm_prepacked_##lv, tg_k_vm_##lv}

/* best first */
static const tg_kernel_table levels[] = {
#ifdef TG_KERNELS_X86
    LEVEL(avx512, cpu_avx512),
    LEVEL(avx2, cpu_avx2),
#endif
    LEVEL(generic, cpu_any),
};
#define NLEVELS ((int)(sizeof levels / sizeof levels[0]))

static _Atomic(const tg_kernel_table *) active;

static int level_index(const char *name)
{
    for (int i = 0; i < NLEVELS; i++)
        if (strcmp(levels[i].name, name) == 0)
            return i;
    return -1;
}

/* the best level at or below levels[from] that this CPU runs (generic,
 * the last, always does) */
static const tg_kernel_table *best_from(int from)
{
    for (int i = from; i < NLEVELS; i++)
        if (levels[i].cpu_ok())
            return &levels[i];
    return &levels[NLEVELS - 1];
}

/* The level TG_KERNELS asks for, or the best; a warning when it cannot
 * be honoured (the environment is user input: no abort, no tg_error). */
static const tg_kernel_table *choose(void)
{
    const char *want = getenv("TG_KERNELS");
    if (!want || !*want || strcmp(want, "auto") == 0)
        return best_from(0);
    int i = level_index(want);
    if (i < 0) {
        fprintf(stderr,
                "tapegrad: TG_KERNELS=%s is not a kernel level of this "
                "build (avx512, avx2, generic or auto); using %s\n",
                want, best_from(0)->name);
        return best_from(0);
    }
    const tg_kernel_table *t = best_from(i);
    if (t != &levels[i])
        fprintf(stderr,
                "tapegrad: TG_KERNELS=%s: this CPU cannot run that level; "
                "using %s\n",
                want, t->name);
    return t;
}

const tg_kernel_table *tg_kt(void)
{
    const tg_kernel_table *t =
        atomic_load_explicit(&active, memory_order_acquire);
    if (t)
        return t;
    /* first use (before the constructor, or in a program that has none):
     * threads racing here all choose the same table */
    const tg_kernel_table *expected = NULL, *mine = choose();
    if (atomic_compare_exchange_strong(&active, &expected, mine))
        return mine;
    return expected;
}

/* the names of levels[], NULL-terminated: filled when the library loads,
 * read-only after (threads may ask for them together) */
static const char *names[NLEVELS + 1];

/* chosen when the program starts, so that a warning about TG_KERNELS
 * comes first and once */
__attribute__((constructor)) static void kernels_start(void)
{
    for (int i = 0; i < NLEVELS; i++)
        names[i] = levels[i].name;
    tg_kt();
}

const char *tg_kernels_level(void) { return tg_kt()->name; }

bool tg_kernels_supported(const char *level)
{
    if (!level || strcmp(level, "auto") == 0)
        return true;
    int i = level_index(level);
    return i >= 0 && levels[i].cpu_ok();
}

const char *const *tg_kernels_levels(void) { return names; }

int tg_kernels_set(const char *level)
{
    const tg_kernel_table *t;
    if (!level || strcmp(level, "auto") == 0) {
        t = best_from(0);
    } else {
        int i = level_index(level);
        if (i < 0) {
            tg_error("tg_kernels_set",
                     "\"%s\" is not a kernel level of this build "
                     "(tg_kernels_levels() lists them)",
                     level);
            return -1;
        }
        if (!levels[i].cpu_ok()) {
            tg_error("tg_kernels_set",
                     "this CPU cannot run the %s kernels (the best it runs "
                     "is %s)",
                     level, best_from(0)->name);
            return -1;
        }
        t = &levels[i];
    }
    if (t != tg_kt() && tg_tape_size() > 0) {
        tg_error("tg_kernels_set",
                 "the tape holds %lld entries, recorded with the %s "
                 "kernels (weights packed for one level are unreadable by "
                 "another): call tg_tape_reset first",
                 (long long)tg_tape_size(), tg_kt()->name);
        return -1;
    }
    atomic_store_explicit(&active, t, memory_order_release);
    return 0;
}

/* ---- the gemm entry points (ops/kernels/gemm.h, ops/matmul.h) ------- */

void tg_gemm_batched(int64_t nb, int64_t M, int64_t N, int64_t K,
                     const tg_real *A, int64_t sa, int64_t rsa, int64_t csa,
                     const tg_real *B, int64_t sb, int64_t rsb, int64_t csb,
                     tg_real *C, int64_t sc, int64_t ldc, int accumulate)
{
    tg_kt()->gemm_batched(nb, M, N, K, A, sa, rsa, csa, B, sb, rsb, csb, C,
                          sc, ldc, accumulate, NULL);
}

int64_t tg_gemm_packed_size(int64_t K, int64_t N)
{
    return tg_kt()->gemm_packed_size(K, N);
}

void tg_gemm_pack_b(int64_t K, int64_t N, const tg_real *B, int64_t rsb,
                    int64_t csb, tg_real *Bp)
{
    tg_kt()->gemm_pack_b(K, N, B, rsb, csb, Bp);
}

void tg_gemm_prepacked(int64_t M, int64_t N, int64_t K, const tg_real *A,
                       int64_t rsa, int64_t csa, const tg_real *Bp,
                       tg_real *C, int64_t ldc, int accumulate)
{
    tg_kt()->gemm_prepacked(M, N, K, A, rsa, csa, Bp, C, ldc, accumulate,
                            NULL);
}

void tg_gemm_bias(int64_t M, int64_t N, int64_t K, const tg_real *A,
                  int64_t rsa, int64_t csa, const tg_real *B, int64_t rsb,
                  int64_t csb, const tg_real *bias, tg_real *C, int64_t ldc,
                  int accumulate)
{
    TG_ASSERT(M >= 0 && N >= 0 && K >= 0);
    tg_kt()->gemm_batched(1, M, N, K, A, 0, rsa, csa, B, 0, rsb, csb, C, 0,
                          ldc, accumulate, bias);
}

void tg_gemm_prepacked_bias(int64_t M, int64_t N, int64_t K,
                            const tg_real *A, int64_t rsa, int64_t csa,
                            const tg_real *Bp, const tg_real *bias,
                            tg_real *C, int64_t ldc, int accumulate)
{
    tg_kt()->gemm_prepacked(M, N, K, A, rsa, csa, Bp, C, ldc, accumulate,
                            bias);
}

void tg_gemm(int64_t M, int64_t N, int64_t K, const tg_real *A, int64_t rsa,
             int64_t csa, const tg_real *B, int64_t rsb, int64_t csb,
             tg_real *C, int64_t ldc, int accumulate)
{
    TG_ASSERT(M >= 0 && N >= 0 && K >= 0);
    tg_gemm_batched(1, M, N, K, A, 0, rsa, csa, B, 0, rsb, csb, C, 0, ldc,
                    accumulate);
}
