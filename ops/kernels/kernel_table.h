/*
 * ops/kernels/kernel_table.h - the functions each kernel level provides (an
 * internal header; ops/kernels.h is the public side).
 *
 * ops/kernels/gemm.c and ops/kernels/vm.c are "kernel files": the Makefile
 * compiles each of them once per level, with that level's instruction-set flags
 * and -DTG_KLEVEL=<level>, and TG_KFN(name) gives every function they export
 * the level's suffix (tg_k_gemm_batched_avx2). Compiled without TG_KLEVEL they
 * are the generic level. ops/kernels/kernels.c gathers each level's functions
 * into a tg_kernel_table and picks one; the rest of the library calls through
 * tg_kt(). Adding a kernel: its prototype in TG_KERNEL_DECLS, a field in the
 * table, a line in ops/kernels/kernels.c's LEVEL().
 */
#ifndef TG_OPS_KERNEL_TABLE_H
#define TG_OPS_KERNEL_TABLE_H

#include "tensor/tensor.h"

#include <stdbool.h>
#include <stdint.h>

#ifndef TG_KLEVEL
#define TG_KLEVEL generic
#endif
#define TG_KCAT2(a, b) a##_##b
#define TG_KCAT(a, b) TG_KCAT2(a, b)
/* name with this file's level attached: TG_KFN(tg_k_vm) = tg_k_vm_avx2 */
#define TG_KFN(name) TG_KCAT(name, TG_KLEVEL)

/* Each level's functions: the prototypes of ops/kernels/gemm.h's and
 * ops/internal.h's tg_gemm_batched, tg_gemm_packed_size, tg_gemm_pack_b,
 * tg_gemm_prepacked (there documented), and tg_k_vm, one vector-machine
 * instruction over n <= 2^20 numbers (ops/kernels/vm.c). */
#define TG_KERNEL_DECLS(lv)                                                \
    void tg_k_gemm_batched_##lv(                                           \
        int64_t nb, int64_t M, int64_t N, int64_t K, const tg_real *A,     \
        int64_t sa, int64_t rsa, int64_t csa, const tg_real *B,            \
        int64_t sb, int64_t rsb, int64_t csb, tg_real *C, int64_t sc,      \
        int64_t ldc, int accumulate, const tg_real *bias);                 \
    int64_t tg_k_gemm_packed_size_##lv(int64_t K, int64_t N);              \
    void tg_k_gemm_pack_b_##lv(int64_t K, int64_t N, const tg_real *B,     \
                               int64_t rsb, int64_t csb, tg_real *Bp);     \
    void tg_k_gemm_prepacked_##lv(int64_t M, int64_t N, int64_t K,         \
                                  const tg_real *A, int64_t rsa,           \
                                  int64_t csa, const tg_real *Bp,          \
                                  tg_real *C, int64_t ldc, int accumulate, \
                                  const tg_real *bias);                    \
    void tg_k_vm_##lv(int code, int n, tg_real *d, const tg_real *a,       \
                      const tg_real *b, const tg_real *c, tg_real k,       \
                      bool acc);
#define TG_KERNEL_DECLS_AT(lv) TG_KERNEL_DECLS(lv)
TG_KERNEL_DECLS_AT(TG_KLEVEL)

typedef struct tg_kernel_table {
    const char *name;
    bool (*cpu_ok)(void); /* can this CPU run it */
    void (*gemm_batched)(int64_t nb, int64_t M, int64_t N, int64_t K,
                         const tg_real *A, int64_t sa, int64_t rsa,
                         int64_t csa, const tg_real *B, int64_t sb,
                         int64_t rsb, int64_t csb, tg_real *C, int64_t sc,
                         int64_t ldc, int accumulate, const tg_real *bias);
    int64_t (*gemm_packed_size)(int64_t K, int64_t N);
    void (*gemm_pack_b)(int64_t K, int64_t N, const tg_real *B, int64_t rsb,
                        int64_t csb, tg_real *Bp);
    void (*gemm_prepacked)(int64_t M, int64_t N, int64_t K, const tg_real *A,
                           int64_t rsa, int64_t csa, const tg_real *Bp,
                           tg_real *C, int64_t ldc, int accumulate,
                           const tg_real *bias);
    void (*vm)(int code, int n, tg_real *d, const tg_real *a,
               const tg_real *b, const tg_real *c, tg_real k, bool acc);
} tg_kernel_table;

/* The table in use (chosen at start-up, or on the first call). */
const tg_kernel_table *tg_kt(void);

#endif
