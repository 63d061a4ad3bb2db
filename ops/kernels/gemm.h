/*
 * ops/kernels/gemm.h - the gemm kernel's entry for many products at once (an
 * internal header of the op families, like ops/internal.h; the public
 * kernel is tg_gemm in ops/matmul.h).
 */
#ifndef TG_OPS_GEMM_H
#define TG_OPS_GEMM_H

#include "tensor/tensor.h"

#include <stdbool.h>
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

/* B packed once for many products: a weight applied to a few rows at
 * every time step (x W^T in a recurrent layer) would otherwise be packed
 * again by every product. tg_gemm_pack_b copies B (K x N, element (k, j)
 * at B[k * rsb + j * csb]) into Bp, which must hold
 * tg_gemm_packed_size(K, N) numbers; tg_gemm_prepacked is then tg_gemm
 * with that B, and gives the same numbers bit for bit as tg_gemm does when
 * tg_gemm packs B itself (not when tg_gemm takes its dot path, which adds
 * in another order). */
int64_t tg_gemm_packed_size(int64_t K, int64_t N);
void tg_gemm_pack_b(int64_t K, int64_t N, const tg_real *B, int64_t rsb,
                    int64_t csb, tg_real *Bp);
void tg_gemm_prepacked(int64_t M, int64_t N, int64_t K, const tg_real *A,
                       int64_t rsa, int64_t csa, const tg_real *Bp,
                       tg_real *C, int64_t ldc, int accumulate);

/* C (+)= bias + A B, bias N contiguous numbers added to every row of C:
 * tg_gemm and tg_gemm_prepacked with a bias, which the kernel adds as it
 * starts each block of C - the numbers, bit for bit, of a pass setting
 * (or adding) the bias to each row first and then the product
 * accumulating into C, without that pass over C (y = x W^T + b). */
void tg_gemm_bias(int64_t M, int64_t N, int64_t K, const tg_real *A,
                  int64_t rsa, int64_t csa, const tg_real *B, int64_t rsb,
                  int64_t csb, const tg_real *bias, tg_real *C, int64_t ldc,
                  int accumulate);
void tg_gemm_prepacked_bias(int64_t M, int64_t N, int64_t K,
                            const tg_real *A, int64_t rsa, int64_t csa,
                            const tg_real *Bp, const tg_real *bias,
                            tg_real *C, int64_t ldc, int accumulate);

#endif
