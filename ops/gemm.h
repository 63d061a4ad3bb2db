/*
 * ops/gemm.h - the gemm kernel's entry for many products at once (an
 * internal header of the op families, like ops/internal.h; the public
 * kernel is tg_gemm in ops/matmul.h).
 */
#ifndef TG_OPS_GEMM_H
#define TG_OPS_GEMM_H

#include "tensor/tensor.h"

#include <stdint.h>

/* nb independent products C_t (+)= A_t B_t, t = 0..nb-1, each as in
 * tg_gemm, with operand t at A + t * sa, B + t * sb, C + t * sc (sa or sb
 * 0: one operand shared by all). The products and the tiles of each are
 * shared among threads, so many small products run in parallel too;
 * results are the same for any thread count. C_t must not overlap A_t,
 * B_t or another C_t. Packing buffers come from the arena (and go back to
 * it before the return): not to be called from several threads at once. */
void tg_gemm_batched(int64_t nb, int64_t M, int64_t N, int64_t K,
                     const tg_real *A, int64_t sa, int64_t rsa, int64_t csa,
                     const tg_real *B, int64_t sb, int64_t rsb, int64_t csb,
                     tg_real *C, int64_t sc, int64_t ldc, int accumulate);

#endif
