/*
 * ops/kernels/gemm.c - the matrix-product kernel: C (+)= A B for operands with
 * ANY strides, in float or double, fast, and with results that are the same bit
 * for bit whatever the number of threads. tg_matmul and tg_linear
 * (ops/matmul.c) are thin layers over it.
 *
 * It is written in plain C with GCC vector extensions (one vector = one
 * machine register: 16 floats with AVX-512, 8 with AVX, 4 with SSE) and
 * compiled once per kernel level (ops/kernels.h), the vector width being
 * the level's. It follows the GotoBLAS/BLIS recipe:
 *
 *   - C is cut into tiles (about MC x NC); each tile is computed by ONE
 *     thread, from start to end, and every element of C sums its products
 *     in k order whoever computes it: the results do not depend on the
 *     thread count. (They do not even depend on the k-blocking KC: a block
 *     of C goes back to memory between k-blocks as the same float it was
 *     in the register.)
 *   - A micro-kernel multiplies an MR x KC panel of A by a KC x NR panel
 *     of B, holding the MR x NR block of C in registers (MR * NR/VL vector
 *     accumulators) for the whole k loop: per k it loads NR/VL vectors of
 *     B, broadcasts MR numbers of A and does MR * NR/VL fused
 *     multiply-adds. That ratio of arithmetic to memory traffic is what
 *     makes a gemm fast.
 *   - The kernel wants both panels with k moving slowest, contiguous.
 *     MR rows of A at a time are copied ("packed") into that layout; so is
 *     B, unless its rows are contiguous (csb == 1), in which case the
 *     kernel reads B in place, prefetching the rows ahead ("direct B" -
 *     packing B would cost as much as the product when A has few rows).
 *     When several tiles down M share the same columns of B, all of B is
 *     packed once, before them, instead of once per tile (or read in
 *     place by each).
 *     Packing reads any strides, which is how a transposed operand costs
 *     nothing extra; when k is contiguous in the source (row-major A, or B
 *     a transposed view) packing is a transpose, done in VL x VL blocks in
 *     registers.
 *   - "dot": when A's rows and B's columns are both contiguous along k
 *     (x W^T in tg_linear) and A has few rows, each C element is a dot
 *     product; a block of C keeps vectors of partial sums along k and adds
 *     their lanes at the end with a fixed tree of shuffles. No packing.
 * Which path runs depends on the sizes and strides only, never on the
 * number of threads.
 *
 * Measured with build/bench_matmul on the 2-core Sapphire Rapids VM it was
 * tuned on: 512^3 at ~157 GFLOP/s on one core, ~305 on two - about 90% of
 * the FMA peak a register-only loop reaches there (~176 GFLOP/s a core).
 */
#include "ops/internal.h"
#include "ops/kernels/kernel_table.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ==== vectors ==========================================================
 * VBYTES is the width of a machine vector register; VL the number of
 * tg_reals in one. vreal is a GCC vector: arithmetic on it is lane-wise,
 * and `x - (vreal){0}` broadcasts a scalar x. In the avx512 level's copy
 * a vreal is one zmm register. */
#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
#ifdef TG_DOUBLE
#define VL (VBYTES / 8)
#else
#define VL (VBYTES / 4)
#endif

typedef tg_real vreal __attribute__((vector_size(VBYTES)));
/* the same vector at any address (unaligned loads and stores) */
typedef tg_real vreal_u
    __attribute__((vector_size(VBYTES), aligned(sizeof(tg_real)), may_alias));
#define LOADU(p) ((vreal)(*(const vreal_u *)(p)))
/* integers of the same width, for masks */
#ifdef TG_DOUBLE
typedef int64_t vint __attribute__((vector_size(VBYTES)));
#else
typedef int32_t vint __attribute__((vector_size(VBYTES)));
#endif
#define STOREU(p, v) (*(vreal_u *)(p) = (v))

/* VFMA(a, b, c) = a * b + c lane-wise. The C standard mode we compile in
 * (-std=c11) forbids GCC to fuse a * b + c into one instruction, so where
 * the machine has FMA we ask for it by name; elsewhere the plain
 * expression is the portable fallback. */
#if defined(__AVX512F__) || (defined(__AVX__) && defined(__FMA__))
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(TG_DOUBLE)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#elif defined(__AVX512F__)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#elif defined(__AVX__) && defined(__FMA__) && defined(TG_DOUBLE)
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#elif defined(__AVX__) && defined(__FMA__)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#else
#define VFMA(a, b, c) ((a) * (b) + (c))
#endif
#define VSPLAT(x) ((x) - (vreal){0})

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* Unroll the next loop completely. The dot kernel needs it: GCC keeps an
 * array of accumulators in registers only when every loop touching it is
 * unrolled early, and it does not unroll these by itself. */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define UNROLL _Pragma("GCC unroll 16")
#else
#define UNROLL
#endif

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return cdiv(a, b) * b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ==== blocking parameters ==============================================
 * MR x NR is the register block of the micro-kernel: MR rows of C, NR =
 * NV vectors wide, MR * NV accumulators (AVX-512 has 32 vector registers,
 * AVX and SSE 16). A product with at most MR_SMALL rows uses panels
 * NV_SMALL vectors wide instead, so that its few rows still give the
 * kernel enough independent accumulators to hide the latency of an FMA.
 * KC is the k-block: an MR x KC panel of A stays in the L1 cache while the
 * KC x NR panels of B stream past it. A tile of C is about MC x NC.
 * Measured on the target machine (Sapphire Rapids, AVX-512), not derived. */
#if VBYTES == 64
#define MR 12
#define MR_SMALL 7
#else
#define MR 6
#define MR_SMALL 3
#endif
#define NV 2
#define NV_SMALL 4
#define NR (NV * VL)
#define KC 256
#define MC_TARGET 192
#define NC_TARGET 512
/* B rows are prefetched this many k ahead (B read in place has no
 * hardware-prefetch-friendly layout when its row stride is large) */
#define PREFETCH_K 10
/* rows of a transposed A are prefetched this many ahead when packed */
#define PACK_AHEAD 8
/* below this many multiply-adds (M N K, all batches) one thread does it */
#define GEMM_PAR_MIN (1 << 17)
/* the dot path is for few rows: measured, packing wins above 16 rows,
 * or above 32 when K < 256 */
#define DOT_MAX_M 16
#define DOT_MAX_M_LONG_K 32
/* columns of B^T the dot path keeps in the L1 cache at a time */
#define DOT_NC 16

/* ==== the micro-kernels ================================================
 * C[mr x nv*VL] (=|+=) A-panel times B-panel:
 *   Ap  mr x kc, packed: element (i, k) at Ap[k * mr + i]
 *   B   kc rows of nv * VL numbers, row k at B + k * ldb (a packed panel:
 *       ldb = NR; B itself in the direct path: ldb = rsb)
 *   C   mr rows at C + i * ldc
 * load_c: start from C's values (accumulate) instead of zeros.
 * bias (or NULL): nv * VL numbers added to every row at the start - to
 * C's values or to the zeros - so that y = b + x W^T needs no pass of its
 * own over y (the same roundings as such a pass: b + C once, then the
 * products added in order).
 * mr and nv are compile-time constants in each instance below, so the
 * accumulator array lives in registers. */
#define MR_MAX 12
#define NV_MAX 4
static ALWAYS_INLINE void micro(const int mr, const int nv, int64_t kc,
                                const tg_real *restrict Ap,
                                const tg_real *restrict B, int64_t ldb,
                                tg_real *restrict C, int64_t ldc, int load_c,
                                const tg_real *restrict bias)
{
    vreal acc[MR_MAX][NV_MAX];
    if (load_c) {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++)
                acc[i][v] = LOADU(C + i * ldc + v * VL);
        if (bias)
            for (int i = 0; i < mr; i++)
                for (int v = 0; v < nv; v++)
                    acc[i][v] += LOADU(bias + v * VL);
    } else if (bias) {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++)
                acc[i][v] = LOADU(bias + v * VL);
    } else {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++)
                acc[i][v] = (vreal){0};
    }
    for (int64_t k = 0; k < kc; k++) {
        vreal b[NV_MAX];
        for (int v = 0; v < nv; v++)
            b[v] = LOADU(B + k * ldb + v * VL);
        if (k + PREFETCH_K < kc)
            for (int v = 0; v < nv; v++)
                __builtin_prefetch(B + (k + PREFETCH_K) * ldb + v * VL);
        for (int i = 0; i < mr; i++) {
            vreal a = VSPLAT(Ap[k * mr + i]);
            for (int v = 0; v < nv; v++)
                acc[i][v] = VFMA(a, b[v], acc[i][v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            STOREU(C + i * ldc + v * VL, acc[i][v]);
}

typedef void (*kern_fn)(int64_t kc, const tg_real *Ap, const tg_real *B,
                        int64_t ldb, tg_real *C, int64_t ldc, int load_c,
                        const tg_real *bias);
#define KERN(mr, nv)                                                       \
    static void kern_##mr##_##nv(int64_t kc, const tg_real *Ap,            \
                                 const tg_real *B, int64_t ldb, tg_real *C, \
                                 int64_t ldc, int load_c,                  \
                                 const tg_real *bias)                      \
    {                                                                      \
        micro(mr, nv, kc, Ap, B, ldb, C, ldc, load_c, bias);               \
    }
#define KERN_ROWS_1_7(nv)                                                  \
    KERN(1, nv) KERN(2, nv) KERN(3, nv) KERN(4, nv) KERN(5, nv)            \
    KERN(6, nv) KERN(7, nv)
#define KERN_ROWS_8_12(nv)                                                 \
    KERN(8, nv) KERN(9, nv) KERN(10, nv) KERN(11, nv) KERN(12, nv)
/* every block the paths below may ask for (MR <= 12 rows two vectors
 * wide; MR_SMALL <= 7 rows up to four wide; narrower ones for the last
 * columns) */
KERN_ROWS_1_7(1) KERN_ROWS_8_12(1)
KERN_ROWS_1_7(2) KERN_ROWS_8_12(2)
KERN_ROWS_1_7(3)
KERN_ROWS_1_7(4)

/* kern_tab[nv][mr]; NULL where mr * nv accumulators would not fit */
#define ROWS_1_7(nv)                                                       \
    kern_1_##nv, kern_2_##nv, kern_3_##nv, kern_4_##nv, kern_5_##nv,       \
        kern_6_##nv, kern_7_##nv
#define ROWS_8_12(nv)                                                      \
    kern_8_##nv, kern_9_##nv, kern_10_##nv, kern_11_##nv, kern_12_##nv
static const kern_fn kern_tab[NV_MAX + 1][MR_MAX + 1] = {
    {0},
    {0, ROWS_1_7(1), ROWS_8_12(1)},
    {0, ROWS_1_7(2), ROWS_8_12(2)},
    {0, ROWS_1_7(3)},
    {0, ROWS_1_7(4)},
};

/* ==== transposing a VL x VL block in registers ==========================
 * Packing a row-major A (or a transposed B) is a transpose: the kernel
 * wants k to move slowest. Done one number at a time it would cost more
 * than the product on small matrices, so VL x VL blocks are transposed in
 * registers with shuffles: r[i][j] <- r[j][i]. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define HAVE_SHUFFLE 1
#endif
#endif
#define P(...) __VA_ARGS__ /* a comma list as one macro argument */
#if defined(HAVE_SHUFFLE) && VL == 16
/* 16 x 16, the classic sequence of single-instruction shuffles (as
 * unpcklps/unpckhps, unpcklpd/unpckhpd, then two rounds of shuff32x4):
 * 64 shuffles for 256 numbers. Round 1 interleaves rows 2i and 2i+1
 * within each 4-lane group; round 2 then holds in s[4g + c], lane group
 * L, rows 4g..4g+3 of column 4L + c; rounds 3 and 4 gather the four lane
 * groups of a column. */
#define SHUF __builtin_shufflevector
#define LO_PS 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29
#define HI_PS 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31
#define LO_PD 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define HI_PD 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define EVEN4 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27
#define ODD4 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31
static ALWAYS_INLINE void transpose(vreal *r)
{
    vreal t[16], s[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = SHUF(r[i], r[i + 1], LO_PS);
        t[i + 1] = SHUF(r[i], r[i + 1], HI_PS);
    }
    for (int q = 0; q < 16; q += 4) {
        s[q] = SHUF(t[q], t[q + 2], LO_PD);
        s[q + 1] = SHUF(t[q], t[q + 2], HI_PD);
        s[q + 2] = SHUF(t[q + 1], t[q + 3], LO_PD);
        s[q + 3] = SHUF(t[q + 1], t[q + 3], HI_PD);
    }
    for (int c = 0; c < 4; c++) {
        vreal u0 = SHUF(s[c], s[4 + c], EVEN4);
        vreal u1 = SHUF(s[c], s[4 + c], ODD4);
        vreal u2 = SHUF(s[8 + c], s[12 + c], EVEN4);
        vreal u3 = SHUF(s[8 + c], s[12 + c], ODD4);
        r[c] = SHUF(u0, u2, EVEN4);
        r[8 + c] = SHUF(u0, u2, ODD4);
        r[4 + c] = SHUF(u1, u3, EVEN4);
        r[12 + c] = SHUF(u1, u3, ODD4);
    }
}
#elif defined(HAVE_SHUFFLE)
/* Other widths: log2(VL) rounds; in the round with distance h, rows i and
 * i + h (i with bit h clear) swap their off-diagonal h x h sub-blocks.
 * LO/HI pick lanes of the pair (u, v) = (r[i], r[i + h]), v's lanes
 * numbered from VL. */
#if VL == 8
#define TROUNDS                                                            \
    T(4, P(0, 1, 2, 3, 8, 9, 10, 11), P(4, 5, 6, 7, 12, 13, 14, 15))       \
    T(2, P(0, 1, 8, 9, 4, 5, 12, 13), P(2, 3, 10, 11, 6, 7, 14, 15))       \
    T(1, P(0, 8, 2, 10, 4, 12, 6, 14), P(1, 9, 3, 11, 5, 13, 7, 15))
#elif VL == 4
#define TROUNDS                                                            \
    T(2, P(0, 1, 4, 5), P(2, 3, 6, 7)) T(1, P(0, 4, 2, 6), P(1, 5, 3, 7))
#elif VL == 2
#define TROUNDS T(1, P(0, 2), P(1, 3))
#endif
static ALWAYS_INLINE void transpose(vreal *r)
{
#define T(h, LO, HI)                                                       \
    for (int i = 0; i < VL; i++)                                           \
        if (!(i & h)) {                                                    \
            vreal u = r[i], v = r[i + h];                                  \
            r[i] = __builtin_shufflevector(u, v, LO);                      \
            r[i + h] = __builtin_shufflevector(u, v, HI);                  \
        }
    TROUNDS
#undef T
}
#else
static ALWAYS_INLINE void transpose(vreal *r)
{
    for (int i = 0; i < VL; i++)
        for (int j = i + 1; j < VL; j++) {
            tg_real t = r[i][j];
            r[i][j] = r[j][i];
            r[j][i] = t;
        }
}
#endif

/* ==== packing ========================================================== */

/* dst[0 .. mr) = src[0 .. mr) (mr <= MR) as whole vectors: reads and
 * writes up to a multiple of VL. (A loop here would be turned by GCC into
 * a call to memmove, which costs more than the copy.) */
#define MR_VECS ((MR + VL - 1) / VL)
static ALWAYS_INLINE void copy_run(tg_real *dst, const tg_real *src, int mr)
{
    UNROLL
    for (int v = 0; v < MR_VECS; v++)
        if (v * VL < mr)
            STOREU(dst + v * VL, LOADU(src + v * VL));
}

/* Ap[k * mr + i] = A[i * rsa + k * csa] for i < mr, k < kc.
 * Ap must have VL numbers of slack past mr * kc. rows: how many rows of A
 * there are from this one on (at least mr; reading past row mr - 1 is
 * allowed when they exist). */
static void pack_a(int mr, int64_t rows, int64_t kc, const tg_real *A,
                   int64_t rsa, int64_t csa, tg_real *restrict Ap)
{
    int64_t k = 0;
    if (csa == 1) {
        /* rows contiguous along k: VL x VL blocks (rows past mr are zeros)
         * transposed, stored as whole vectors. A partial block's store runs
         * past its row into the start of the next row; blocks go last to
         * first, rows first to last, so those numbers are rewritten
         * after. */
        for (; k + VL <= kc; k += VL)
            for (int i0 = (mr - 1) / VL * VL; i0 >= 0; i0 -= VL) {
                vreal r[VL];
                for (int i = 0; i < VL; i++)
                    r[i] = i0 + i < mr ? LOADU(A + (i0 + i) * rsa + k)
                                       : (vreal){0};
                transpose(r);
                for (int kk = 0; kk < VL; kk++)
                    STOREU(Ap + (k + kk) * mr + i0, r[kk]);
            }
    } else if (rsa == 1 && cdiv(mr, VL) * VL <= rows) {
        /* columns contiguous (A is a transposed view, dy^T in a weight
         * gradient): copy runs of mr as whole vectors. The last vector of
         * a run reads rows past mr (they exist) and stores past the run
         * into the next one, which is written after it (and past the last
         * one into the slack). */
        for (; k < kc; k++)
            copy_run(Ap + k * mr, A + k * csa, mr);
    } else if (rsa == 1) {
        /* the same near the last row, one number at a time */
        for (; k < kc; k++)
            for (int i = 0; i < mr; i++)
                Ap[k * mr + i] = A[k * csa + i];
    }
    for (; k < kc; k++)
        for (int i = 0; i < mr; i++)
            Ap[k * mr + i] = A[i * rsa + k * csa];
}

/* One panel of B, kc rows of width w (a multiple of VL):
 * Bp[k * w + j] = B[k * rsb + j * csb] for j < nr, zeros for nr <= j < w */
static void pack_b(int64_t kc, int64_t nr, int64_t w, const tg_real *B,
                   int64_t rsb, int64_t csb, tg_real *restrict Bp)
{
    int64_t k = 0;
    if (csb == 1) { /* rows contiguous: copy them */
        for (; k < kc; k++) {
            int64_t j = 0;
            for (; j + VL <= nr; j += VL)
                STOREU(Bp + k * w + j, LOADU(B + k * rsb + j));
            for (; j < nr; j++)
                Bp[k * w + j] = B[k * rsb + j];
            for (; j < w; j++)
                Bp[k * w + j] = 0;
        }
        return;
    }
    if (rsb == 1) { /* columns contiguous (a transposed view): transpose */
        /* VL columns at a time, each streamed along k (which the hardware
         * prefetcher follows), transposed VL x VL */
        int64_t kend = kc - kc % VL;
        for (int64_t j0 = 0; j0 < w; j0 += VL) {
            const tg_real *src = B + j0 * csb;
            int64_t cols = min64(VL, nr - j0);
            for (int64_t k0 = 0; k0 < kend; k0 += VL) {
                vreal r[VL];
                for (int j = 0; j < VL; j++)
                    r[j] = j < cols ? LOADU(src + j * csb + k0) : (vreal){0};
                transpose(r);
                for (int kk = 0; kk < VL; kk++)
                    STOREU(Bp + (k0 + kk) * w + j0, r[kk]);
            }
        }
        k = kend;
    }
    for (; k < kc; k++)
        for (int64_t j = 0; j < w; j++)
            Bp[k * w + j] = j < nr ? B[k * rsb + j * csb] : 0;
}

/* ==== the dot kernel ===================================================
 * For A with rows contiguous along k (csa == 1) and B with columns
 * contiguous along k (rsb == 1): C[i][j] (=|+=) dot(A row i, B column j)
 * for an mr x nr block, mr * nr = VL. acc[i * nr + j] holds VL partial
 * sums (lane l: the products with k = l mod VL); at the end a fixed tree
 * of shuffles turns the VL vectors into one vector whose lane p is the
 * total of acc[p]. Rows past mv and columns past nv repeat the last valid
 * one (computed, never stored). */

/* The reduction. Each round R(X, Y) pairs the vectors up and, for each
 * pair (u, v), adds the first half of every group of lanes to the second
 * half: X picks the first halves of u's groups then of v's, Y the second
 * halves. The groups halve in width every round; after log2(VL) rounds
 * lane p of acc[0] holds the sum of all lanes of the original acc[p]. */
#ifdef HAVE_SHUFFLE
#if VL == 16
#define X16 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define Y16 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define X8 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27
#define Y8 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31
#define X4 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29
#define Y4 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31
#define X2 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define Y2 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#define ROUNDS R(X16, Y16) R(X8, Y8) R(X4, Y4) R(X2, Y2)
#elif VL == 8
#define X8 0, 1, 2, 3, 8, 9, 10, 11
#define Y8 4, 5, 6, 7, 12, 13, 14, 15
#define X4 0, 1, 4, 5, 8, 9, 12, 13
#define Y4 2, 3, 6, 7, 10, 11, 14, 15
#define X2 0, 2, 4, 6, 8, 10, 12, 14
#define Y2 1, 3, 5, 7, 9, 11, 13, 15
#define ROUNDS R(X8, Y8) R(X4, Y4) R(X2, Y2)
#elif VL == 4
#define ROUNDS R(P(0, 1, 4, 5), P(2, 3, 6, 7)) R(P(0, 2, 4, 6), P(1, 3, 5, 7))
#elif VL == 2
#define ROUNDS R(P(0, 2), P(1, 3))
#endif
static ALWAYS_INLINE vreal lane_sums(vreal *acc)
{
    int n = VL;
#define R(X, Y)                                                            \
    n /= 2;                                                                \
    UNROLL for (int p = 0; p < n; p++)                                     \
        acc[p] = __builtin_shufflevector(acc[2 * p], acc[2 * p + 1], X) +  \
                 __builtin_shufflevector(acc[2 * p], acc[2 * p + 1], Y);
    ROUNDS
#undef R
    (void)n;
    return acc[0];
}
#else
/* no shuffles: add each vector's lanes in order */
static ALWAYS_INLINE vreal lane_sums(vreal *acc)
{
    vreal s;
    for (int p = 0; p < VL; p++) {
        tg_real t = 0;
        for (int l = 0; l < VL; l++)
            t += acc[p][l];
        s[p] = t;
    }
    return s;
}
#endif

static ALWAYS_INLINE void dot_block(const int mr, const int nr, int64_t K,
                                    const tg_real *A, int64_t rsa,
                                    const tg_real *B, int64_t csb, tg_real *C,
                                    int64_t ldc, int mv, int nv, int load_c)
{
    const tg_real *ar[4], *bc[VL];
    UNROLL
    for (int i = 0; i < mr; i++)
        ar[i] = A + (i < mv ? i : mv - 1) * rsa;
    UNROLL
    for (int j = 0; j < nr; j++)
        bc[j] = B + (j < nv ? j : nv - 1) * csb;
    int64_t kfull = K - K % VL;
    vreal acc[VL];
    UNROLL
    for (int p = 0; p < VL; p++)
        acc[p] = (vreal){0};
    for (int64_t k = 0; k < kfull; k += VL) {
        vreal a[4], b[VL];
        UNROLL
        for (int i = 0; i < mr; i++)
            a[i] = LOADU(ar[i] + k);
        UNROLL
        for (int j = 0; j < nr; j++)
            b[j] = LOADU(bc[j] + k);
        UNROLL
        for (int i = 0; i < mr; i++)
            UNROLL
            for (int j = 0; j < nr; j++)
                acc[i * nr + j] = VFMA(a[i], b[j], acc[i * nr + j]);
    }
    if (kfull < K) {
        /* The last K % VL values of k: the vectors ending at k = K - 1
         * (K >= VL, so they start inside the rows), with the lanes that
         * were already counted set to zero. */
        vint lane;
        UNROLL
        for (int l = 0; l < VL; l++)
            lane[l] = l;
        vint keep = lane >= (int)(VL - (K - kfull));
        vreal a[4], b[VL];
        UNROLL
        for (int i = 0; i < mr; i++)
            a[i] = (vreal)((vint)LOADU(ar[i] + K - VL) & keep);
        UNROLL
        for (int j = 0; j < nr; j++)
            b[j] = (vreal)((vint)LOADU(bc[j] + K - VL) & keep);
        UNROLL
        for (int i = 0; i < mr; i++)
            UNROLL
            for (int j = 0; j < nr; j++)
                acc[i * nr + j] = VFMA(a[i], b[j], acc[i * nr + j]);
    }
    vreal s = lane_sums(acc);
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < nv; j++)
            C[i * ldc + j] = (load_c ? C[i * ldc + j] : 0) + s[i * nr + j];
}

typedef void (*dot_fn)(int64_t K, const tg_real *A, int64_t rsa,
                       const tg_real *B, int64_t csb, tg_real *C, int64_t ldc,
                       int mv, int nv, int load_c);
#define DOT(mr)                                                            \
    static void dot_##mr(int64_t K, const tg_real *A, int64_t rsa,          \
                         const tg_real *B, int64_t csb, tg_real *C,         \
                         int64_t ldc, int mv, int nv, int load_c)          \
    {                                                                      \
        dot_block(mr, VL / mr, K, A, rsa, B, csb, C, ldc, mv, nv, load_c);  \
    }
DOT(1)
DOT(2)
#if VL >= 4
DOT(4)
#define DOT_ROWS 4
#else
#define DOT_ROWS 2
#endif

/* ==== plans and tiles ================================================== */

enum { PATH_PACKED, PATH_DIRECT, PATH_DOT, PATH_PREPACKED };

typedef struct gemm_plan {
    int64_t M, N, K;
    int64_t rsa, csa, rsb, csb, ldc;
    int accumulate;
    const tg_real *bias; /* N numbers added to every row of C, or NULL */
    int path;
    int nvw;          /* panels of B are nvw vectors wide               */
    int64_t mc, nc;   /* tile size (the last tiles may be smaller)      */
    int64_t tm, tn;   /* number of tiles along M and N                  */
    int64_t scratch;  /* reals of packing buffer per thread             */
} gemm_plan;

/* Cuts M x N into about mc_max x nc_max tiles of equal size (multiples of
 * mq and nq); for nthr threads, into a multiple of nthr tiles (of the nb
 * products together) when the sizes allow, so that each thread gets the
 * same work. The tiles change nothing in the results (each element of C
 * sums over k in order, whoever computes it), only the speed: a tile packs
 * its panels of A once for all its columns, so one thread does best with
 * the fewest tiles, and small products (a few rows) are split along N. */
static void plan_tiles(gemm_plan *p, int64_t nb, int nthr, int64_t mc_max,
                       int64_t nc_max, int64_t mq, int64_t nq)
{
    int64_t M = p->M, N = p->N;
    int64_t tm = cdiv(M, mc_max), tn = cdiv(N, nc_max);
    while (nthr > 1 && (nb * tm * tn) % nthr) {
        bool split_n = N >= (tn + 1) * nq, split_m = M >= (tm + 1) * mq;
        /* split where the tiles are largest relative to the target */
        if (split_n && (!split_m || (double)N / (double)(tn * nc_max) >=
                                        (double)M / (double)(tm * mc_max)))
            tn++;
        else if (split_m)
            tm++;
        else
            break;
    }
    p->mc = round_up(cdiv(M, tm), mq);
    p->nc = round_up(cdiv(N, tn), nq);
    p->tm = cdiv(M, p->mc);
    p->tn = cdiv(N, p->nc);
}

/* Chooses the path from the sizes and strides alone (never from the
 * thread count: the dot path adds in another order), then the tiles.
 * prepacked: B is a panel layout made by tg_gemm_pack_b. */
static void plan_make(gemm_plan *p, int64_t nb, int nthr, int64_t M,
                      int64_t N, int64_t K, int64_t rsa, int64_t csa,
                      int64_t rsb, int64_t csb, int64_t ldc, int accumulate,
                      const tg_real *bias, bool prepacked)
{
    *p = (gemm_plan){.M = M, .N = N, .K = K, .rsa = rsa, .csa = csa,
                     .rsb = rsb, .csb = csb, .ldc = ldc,
                     .accumulate = accumulate, .bias = bias};
    p->nvw = M <= MR_SMALL && !prepacked ? NV_SMALL : NV;
    int64_t w = (int64_t)p->nvw * VL;
    if (prepacked) {
        /* B's panels are ready: only A is packed */
        p->path = PATH_PREPACKED;
        plan_tiles(p, nb, nthr, MC_TARGET, NC_TARGET, 4, w);
        p->scratch = p->mc * KC + VL;
    } else if (csa == 1 && rsb == 1 && csb != 1 && K >= VL &&
               (M <= DOT_MAX_M || (M <= DOT_MAX_M_LONG_K && K >= 256))) {
        p->path = PATH_DOT;
        plan_tiles(p, nb, nthr, M, NC_TARGET, M, VL); /* rows never split */
        p->scratch = 0;
    } else if (csb == 1) {
        /* B's rows are contiguous: read in place (the last, narrower panel
         * of a tile is copied, zero-padded, into a KC x w buffer) */
        p->path = PATH_DIRECT;
        plan_tiles(p, nb, nthr, MC_TARGET, NC_TARGET, 4, w);
        p->scratch = p->mc * KC + VL + KC * w;
    } else {
        /* B packed: the tile's KC x nc block, as w-wide panels */
        p->path = PATH_PACKED;
        plan_tiles(p, nb, nthr, MC_TARGET, NC_TARGET, 4, w);
        p->scratch = p->mc * KC + VL + KC * p->nc;
    }
    p->scratch = round_up(p->scratch, 64); /* keep every slice aligned */
}

/* C tile (mr x nr, nr < width of the kernel) through a small buffer (and
 * the bias's nr numbers through another, zero-padded) */
static void edge_block(int mr, int nr, int64_t kc, const tg_real *Ap,
                       const tg_real *B, int64_t ldb, tg_real *C, int64_t ldc,
                       int load_c, const tg_real *bias)
{
    int nv = (int)cdiv(nr, VL);
    tg_real tmp[MR_MAX * NV_MAX * VL] __attribute__((aligned(64)));
    tg_real tb[NV_MAX * VL] __attribute__((aligned(64)));
    int64_t w = nv * VL;
    if (bias) {
        memcpy(tb, bias, (size_t)nr * sizeof(tg_real));
        for (int64_t j = nr; j < w; j++)
            tb[j] = 0;
        bias = tb;
    }
    if (load_c)
        for (int i = 0; i < mr; i++) {
            memcpy(tmp + i * w, C + i * ldc, (size_t)nr * sizeof(tg_real));
            for (int64_t j = nr; j < w; j++)
                tmp[i * w + j] = 0;
        }
    kern_tab[nv][mr](kc, Ap, B, ldb, tmp, w, load_c, bias);
    for (int i = 0; i < mr; i++)
        memcpy(C + i * ldc, tmp + i * w, (size_t)nr * sizeof(tg_real));
}

/* The mc x kc block of A at A (row i0 of the matrix) as npanels panels
 * (heights as in tile_blocked), one after the other: panel q, of height
 * mr, starting ir rows down, at Ap + ir * kc. Ap has VL numbers of slack. */
static void pack_a_tile(const gemm_plan *p, const tg_real *A, int64_t i0,
                        int64_t mc, int64_t kc, int64_t npanels,
                        tg_real *restrict Ap)
{
    if (p->rsa == 1 && p->csa != 1) {
        /* A is a transposed view (dy^T in a weight gradient): k moves
         * along its far rows, so read each of them once, across all the
         * panels (panel by panel, the same cache lines would be fetched
         * again for every panel). Whole vectors where the rows they read
         * exist and what they write past the run stays in the panel (it
         * lands in the runs of the next k, written after). */
        for (int64_t k = 0; k < kc; k++) {
            const tg_real *src = A + k * p->csa;
            /* the rows are far apart (the hardware prefetcher does not
             * follow): ask for the one PACK_AHEAD rows on */
            if (k + PACK_AHEAD < kc)
                for (int64_t i = 0; i < mc; i += 64 / sizeof(tg_real))
                    __builtin_prefetch(src + PACK_AHEAD * p->csa + i);
            for (int64_t q = 0, ir = 0; q < npanels; q++) {
                int mr = (int)(mc / npanels + (q < mc % npanels));
                int64_t span = cdiv(mr, VL) * VL;
                tg_real *dst = Ap + ir * kc + k * mr;
                if (ir + span <= p->M - i0 && k * mr + span <= kc * mr)
                    copy_run(dst, src + ir, mr);
                else
                    for (int i = 0; i < mr; i++)
                        dst[i] = src[ir + i];
                ir += mr;
            }
        }
        return;
    }
    for (int64_t q = 0, ir = 0; q < npanels; q++) {
        int mr = (int)(mc / npanels + (q < mc % npanels));
        pack_a(mr, p->M - i0 - ir, kc, A + ir * p->rsa, p->rsa, p->csa,
               Ap + ir * kc);
        ir += mr;
    }
}

/* One tile of C (rows i0.., columns j0..) by the packed or direct-B
 * path. Its rows are cut into panels of nearly equal height (at most MR,
 * or MR_SMALL with the wide panels) so that no panel is a sliver. */
static void tile_blocked(const gemm_plan *p, const tg_real *A,
                         const tg_real *B, tg_real *C, int64_t i0,
                         int64_t j0, int64_t mc, int64_t nc, tg_real *scratch)
{
    bool direct = p->path == PATH_DIRECT;
    bool prepacked = p->path == PATH_PREPACKED;
    int nvw = p->nvw;
    int64_t w = (int64_t)nvw * VL;
    int64_t npanels = cdiv(mc, nvw == NV ? MR : MR_SMALL);
    tg_real *Ap = scratch, *Bbuf = scratch + p->mc * KC + VL;
    for (int64_t pc = 0; pc < p->K; pc += KC) {
        int64_t kc = min64(KC, p->K - pc);
        int load_c = p->accumulate || pc > 0;
        /* the bias joins on the first k-block only */
        const tg_real *bias = pc == 0 && p->bias ? p->bias + j0 : NULL;
        const tg_real *Bk = B + pc * p->rsb + j0 * p->csb;
        const tg_real *Bp = Bbuf; /* this k-block's panels of the tile */
        if (prepacked) {
            /* packed already (tg_gemm_pack_b): k-block pc starts at
             * pc * N rounded up to w, its panel of column j at j * kc */
            Bp = B + pc * round_up(p->N, w) + j0 * kc;
        } else if (!direct) {
            for (int64_t jr = 0; jr < nc; jr += w)
                pack_b(kc, min64(w, nc - jr), w, Bk + jr * p->csb, p->rsb,
                       p->csb, Bbuf + jr * kc);
        } else if (nc % w) {
            int64_t jr = nc - nc % w;
            pack_b(kc, nc - jr, w, Bk + jr, p->rsb, 1, Bbuf);
        }
        /* the tile's rows of A for this k-block, as panels */
        pack_a_tile(p, A + i0 * p->rsa + pc * p->csa, i0, mc, kc, npanels,
                    Ap);
        for (int64_t q = 0, ir = 0; q < npanels; q++) {
            int mr = (int)(mc / npanels + (q < mc % npanels));
            const tg_real *Aq = Ap + ir * kc;
            tg_real *Ci = C + (i0 + ir) * p->ldc + j0;
            for (int64_t jr = 0; jr < nc; jr += w) {
                int64_t nr = min64(w, nc - jr);
                const tg_real *bp = Bp + jr * kc;
                int64_t ldb = w;
                if (direct) {
                    bp = nr == w ? Bk + jr : Bp;
                    ldb = nr == w ? p->rsb : w;
                }
                const tg_real *bj = bias ? bias + jr : NULL;
                if (nr == w)
                    kern_tab[nvw][mr](kc, Aq, bp, ldb, Ci + jr, p->ldc,
                                      load_c, bj);
                else
                    edge_block(mr, (int)nr, kc, Aq, bp, ldb, Ci + jr,
                               p->ldc, load_c, bj);
            }
            ir += mr;
        }
    }
}

/* One tile of C by the dot path: blocks of DOT_ROWS rows, then 2, then 1. */
static void tile_dot(const gemm_plan *p, const tg_real *A, const tg_real *B,
                     tg_real *C, int64_t i0, int64_t j0, int64_t mc,
                     int64_t nc)
{
    static const dot_fn dots[DOT_ROWS + 1] = {
#if DOT_ROWS == 4
        0, dot_1, dot_2, 0, dot_4,
#else
        0, dot_1, dot_2,
#endif
    };
    int load_c = p->accumulate;
    if (p->bias) { /* the tile's rows start at (or gain) the bias */
        for (int64_t i = i0; i < i0 + mc; i++) {
            tg_real *c = C + i * p->ldc + j0;
            const tg_real *b = p->bias + j0;
            for (int64_t j = 0; j < nc; j++)
                c[j] = load_c ? c[j] + b[j] : b[j];
        }
        load_c = 1;
    }
    /* a chunk of DOT_NC columns of B (rows of B^T) stays in the L1 cache
     * while every row of A passes by */
    for (int64_t jc = 0; jc < nc; jc += DOT_NC) {
        int64_t ncc = min64(DOT_NC, nc - jc);
        for (int64_t i = 0; i < mc;) {
            int rows = mc - i >= DOT_ROWS ? DOT_ROWS : mc - i >= 2 ? 2 : 1;
            int cols = VL / rows;
            for (int64_t j = jc; j < jc + ncc; j += cols)
                dots[rows](p->K, A + (i0 + i) * p->rsa, p->rsa,
                           B + (j0 + j) * p->csb, p->csb,
                           C + (i0 + i) * p->ldc + j0 + j, p->ldc, rows,
                           (int)min64(cols, jc + ncc - j), load_c);
            i += rows;
        }
    }
}

static void run_tile(const gemm_plan *p, const tg_real *A, const tg_real *B,
                     tg_real *C, int64_t t, tg_real *scratch)
{
    int64_t i0 = (t / p->tn) * p->mc, j0 = (t % p->tn) * p->nc;
    int64_t mc = min64(p->mc, p->M - i0), nc = min64(p->nc, p->N - j0);
    if (p->path == PATH_DOT)
        tile_dot(p, A, B, C, i0, j0, mc, nc);
    else
        tile_blocked(p, A, B, C, i0, j0, mc, nc, scratch);
}

/* task t: tile t % tiles of product t / tiles */
static void run_task(const gemm_plan *p, int64_t tiles, const tg_real *A,
                     int64_t sa, const tg_real *B, int64_t sb, tg_real *C,
                     int64_t sc, int64_t t, tg_real *scratch)
{
    int64_t b = t / tiles;
    run_tile(p, A + b * sa, B + b * sb, C + b * sc, t % tiles, scratch);
}

/* All of B (K x N) in the layout of tg_gemm_pack_b: k-blocks of KC rows,
 * each its NR-wide panels one after the other. The panels are shared
 * among nthr threads; each is written by one thread, whoever it is, with
 * the same numbers. */
static void pack_b_panel(int64_t t, int64_t K, int64_t N, const tg_real *B,
                         int64_t rsb, int64_t csb, tg_real *Bp)
{
    int64_t njb = round_up(N, NR) / NR;
    int64_t pc = t / njb * KC, j = t % njb * NR, kc = min64(KC, K - pc);
    pack_b(kc, min64(NR, N - j), NR, B + pc * rsb + j * csb, rsb, csb,
           Bp + pc * round_up(N, NR) + j * kc);
}

static void pack_b_all(int64_t K, int64_t N, const tg_real *B, int64_t rsb,
                       int64_t csb, tg_real *Bp, int nthr)
{
    int64_t panels = cdiv(K, KC) * (round_up(N, NR) / NR);
#ifdef _OPENMP
    if (nthr > 1) {
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (int64_t t = 0; t < panels; t++)
            pack_b_panel(t, K, N, B, rsb, csb, Bp);
        return;
    }
#endif
    (void)nthr;
    for (int64_t t = 0; t < panels; t++)
        pack_b_panel(t, K, N, B, rsb, csb, Bp);
}

/* The (product, tile) pairs are shared among threads; each pair is
 * computed by one thread alone, and it writes its own tile of C only. */
static void gemm_run(int64_t nb, int64_t M, int64_t N, int64_t K,
                     const tg_real *A, int64_t sa, int64_t rsa, int64_t csa,
                     const tg_real *B, int64_t sb, int64_t rsb, int64_t csb,
                     tg_real *C, int64_t sc, int64_t ldc, int accumulate,
                     const tg_real *bias, bool prepacked)
{
    if (nb <= 0 || M <= 0 || N <= 0)
        return;
    if (K == 0) { /* an empty sum: C is (C +) the bias, or zero */
        for (int64_t b = 0; b < nb; b++)
            for (int64_t i = 0; i < M; i++) {
                tg_real *c = C + b * sc + i * ldc;
                for (int64_t j = 0; j < N && (bias || !accumulate); j++)
                    c[j] = (accumulate ? c[j] : 0) + (bias ? bias[j] : 0);
            }
        return;
    }
    int nthr = 1;
#ifdef _OPENMP
    if ((double)nb * (double)M * (double)N * (double)K >= GEMM_PAR_MIN)
        nthr = omp_get_max_threads();
#endif
    gemm_plan p;
    plan_make(&p, nb, nthr, M, N, K, rsa, csa, rsb, csb, ldc, accumulate,
              bias, prepacked);
    tg_arena_mark mark = tg_arena_get_mark();
    if (nb == 1 && p.tm > 1 &&
        (p.path == PATH_PACKED || p.path == PATH_DIRECT)) {
        /* Several tiles down M would each pack (or read in place, rows
         * far apart) the same columns of B: pack all of B once instead,
         * in the layout of tg_gemm_pack_b, and run the prepacked path.
         * The kernel then reads the same numbers in the same order: the
         * results are the same bits. */
        tg_real *Bp =
            tg_arena_alloc((size_t)(K * round_up(N, NR)) * sizeof(tg_real));
        pack_b_all(K, N, B, rsb, csb, Bp, nthr);
        B = Bp;
        rsb = csb = 0;
        plan_make(&p, nb, nthr, M, N, K, rsa, csa, 0, 0, ldc, accumulate,
                  bias, true);
    }
    int64_t tiles = p.tm * p.tn, tasks = nb * tiles;
    if (tasks < 2)
        nthr = 1;
    /* per-thread packing buffers, from the calling thread's arena (the
     * workers' own arenas are never used: allocated here, before the
     * threads start; released on return) */
    tg_real *scratch = p.scratch ? tg_arena_alloc((size_t)(nthr * p.scratch) *
                                                  sizeof(tg_real))
                                 : NULL;
#ifdef _OPENMP
    if (nthr > 1) {
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (int64_t t = 0; t < tasks; t++) {
            int th = omp_get_thread_num();
            TG_ASSERT(th < nthr);
            run_task(&p, tiles, A, sa, B, sb, C, sc, t,
                     scratch ? scratch + th * p.scratch : NULL);
        }
        tg_arena_rewind(mark);
        return;
    }
#endif
    /* (not an `omp parallel if (0)`: even a team of one costs a
     * microsecond, more than a small product) */
    for (int64_t t = 0; t < tasks; t++)
        run_task(&p, tiles, A, sa, B, sb, C, sc, t, scratch);
    tg_arena_rewind(mark);
}

/* ---- the entry points -----------------------------------------------
 * This is a kernel file (ops/kernels/kernel_table.h): compiled once per kernel
 * level, each copy exporting these under its level's names;
 * ops/kernels/kernels.c defines tg_gemm, tg_gemm_batched, ...
 * (ops/kernels/gemm.h, ops/matmul.h) to call the level in use. */
void TG_KFN(tg_k_gemm_batched)(int64_t nb, int64_t M, int64_t N, int64_t K,
                               const tg_real *A, int64_t sa, int64_t rsa,
                               int64_t csa, const tg_real *B, int64_t sb,
                               int64_t rsb, int64_t csb, tg_real *C,
                               int64_t sc, int64_t ldc, int accumulate,
                               const tg_real *bias)
{
    gemm_run(nb, M, N, K, A, sa, rsa, csa, B, sb, rsb, csb, C, sc, ldc,
             accumulate, bias, false);
}

/* ---- B packed once, used many times -----------------------------------
 * The layout tile_blocked reads: k-blocks of KC rows (the last may be
 * shorter), each holding its NR-wide panels one after the other (panel of
 * columns j.. at j * kc, zero-padded to a whole panel). NR depends on the
 * level: B packed by one level is for that level's tg_k_gemm_prepacked. */
int64_t TG_KFN(tg_k_gemm_packed_size)(int64_t K, int64_t N)
{
    return K * round_up(N, NR);
}

void TG_KFN(tg_k_gemm_pack_b)(int64_t K, int64_t N, const tg_real *B,
                              int64_t rsb, int64_t csb, tg_real *Bp)
{
    /* (by all threads when B is large: a prepared weight is packed once
     * a sequence, by the thread that runs the step) */
    int nthr = 1;
#ifdef _OPENMP
    if (K * N >= GEMM_PAR_MIN)
        nthr = omp_get_max_threads();
#endif
    pack_b_all(K, N, B, rsb, csb, Bp, nthr);
}

void TG_KFN(tg_k_gemm_prepacked)(int64_t M, int64_t N, int64_t K,
                                 const tg_real *A, int64_t rsa, int64_t csa,
                                 const tg_real *Bp, tg_real *C, int64_t ldc,
                                 int accumulate, const tg_real *bias)
{
    gemm_run(1, M, N, K, A, 0, rsa, csa, Bp, 0, 0, 0, C, 0, ldc, accumulate,
             bias, true);
}
