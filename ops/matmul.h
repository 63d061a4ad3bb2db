/*
 * ops/matmul.h - matrix products: the op that takes most of the time in
 * every recurrent network.
 *
 * Operands may be any strided view: tg_matmul(x, tg_transpose(W, 0, 1))
 * multiplies by W^T without copying W, because the kernel packs blocks of
 * both operands into contiguous panels itself (GotoBLAS style) and the
 * packing reads any strides. Backward uses the same kernel with swapped
 * strides: dA += dC B^T and dB += A^T dC, no transposed copies either.
 *
 * Results are bitwise identical for any number of threads: each element
 * of C is computed by one thread, always summing over k in the same
 * blocked order.
 *
 *     tg_tensor *h = tg_linear(x, W, b);   // x [B, I], W [H, I], b [H]
 */
#ifndef TG_OPS_MATMUL_H
#define TG_OPS_MATMUL_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* a [M, K] @ b [K, N] -> [M, N];
 * a [Bt, M, K] @ b [Bt, K, N] -> [Bt, M, N] (batched);
 * a [Bt, M, K] @ b [K, N] -> [Bt, M, N] (b shared by every batch).
 * Inner sizes must agree; the error names both shapes. */
tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b);

/* x [..., in] W^T + b, with W [out, in] (PyTorch's nn.Linear layout) and
 * b [out] or NULL -> [..., out]. One tape entry. x's leading axes are
 * read as one [rows, in] matrix through x's strides when they allow it
 * (else x is copied once, and the copy kept for backward). b == NULL means
 * no bias (so a NULL left by a failed op is not noticed here). */
tg_tensor *tg_linear(tg_tensor *x, tg_tensor *W, tg_tensor *b);

/* W [out, in] prepared for many products x W^T in one sequence (a
 * recurrent weight, or a view of one such as a chunk of weight_hh): W^T
 * is packed once (by the first product of 8 rows or more: fewer take the
 * kernel's dot path, which reads W as it is), W once in backward, and the
 * weight gradient of
 * every tg_linear that used it on a few rows is summed in ONE product in
 * this op's backward instead of one small product per step. Returns P,
 * an op output with W's shape and numbers: use it in place of W, in
 * tg_linear (where it is fast) or in any other op; gradients reach W.
 * The packed copies live in the arena, like P, until tg_tape_reset.
 * Compiled steps (ops/fuse.h) prepare their weights by themselves.
 * In inference mode (tg_set_inference_mode) a persistent W (a parameter)
 * keeps its packed W^T on itself between calls instead, until W's
 * version changes (tg_bump_version), and frees it with W (ops/matmul.c). */
tg_tensor *tg_prepare_weight(tg_tensor *W);

/* The kernel, for tools and benchmarks: C (+)= A B where
 *   A is M x K with element (i, k) at A[i * rsa + k * csa],
 *   B is K x N with element (k, j) at B[k * rsb + j * csb],
 *   C is M x N with element (i, j) at C[i * ldc + j].
 * accumulate: add into C instead of overwriting it. Parallel over blocks
 * of C above a size threshold; the result is the same bit for bit for any
 * number of threads. C must not overlap A or B. K = 0 sets C to zeros (or
 * leaves it alone when accumulating). The packing buffers come from the
 * arena and are given back before the return, so tg_gemm, like the
 * arena, must not be called from several threads at once. The kernel is
 * in ops/kernels/gemm.c, compiled per kernel level (ops/kernels.h: the level in
 * use sets the rounding, the thread count never does); build/bench_matmul
 * measures it. */
void tg_gemm(int64_t M, int64_t N, int64_t K, const tg_real *A, int64_t rsa,
             int64_t csa, const tg_real *B, int64_t rsb, int64_t csb,
             tg_real *C, int64_t ldc, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
