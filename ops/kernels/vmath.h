/*
 * ops/kernels/vmath.h - exp, tanh and sigmoid written so that GCC vectorizes
 * the loops that call them (internal to ops/).
 *
 * glibc's expf and tanhf are scalar calls: in a recurrent network, where
 * every gate is a sigmoid or a tanh, they were a third of the run time.
 * These versions use only arithmetic, comparisons and selects, so a loop
 * over them becomes AVX-512 code, 16 floats at a time.
 *
 *   exp(x), x <= 0:  x = n ln2 + r with |r| <= ln2/2; exp(r) by its Taylor
 *                    polynomial to r^7 (truncation error < 2e-8 relative);
 *                    2^n applied in two halves so that results down to the
 *                    smallest denormal (x ~ -103) come out right.
 *   tanh(x):         |x| < 0.25: odd Taylor series to x^11;
 *                    else sign(x) (1 - e) / (1 + e), e = exp(-2|x|).
 *   sigmoid(x):      e = exp(-|x|); 1/(1+e) for x >= 0, e/(1+e) for x < 0
 *                    (never exponentiates a positive number: no overflow).
 * Maximum error measured against glibc over [-100, 100]: a few units in
 * the last place (tests/test_unary_reduce.c checks 1e-6 relative).
 * The double-precision build uses libm, where speed matters less than the
 * exactness the gradient checks rely on.
 */
#ifndef TG_OPS_VMATH_H
#define TG_OPS_VMATH_H

#include "tensor/tensor.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef TG_DOUBLE

/* 2^k for -126 <= k <= 127 (normal range), built from its bits */
static inline float tg_pow2i(int32_t k)
{
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* exp(x) for x <= 0 (larger x, +inf included, are clamped to 0);
 * exp(-inf) = 0 and exp(NaN) = NaN. NaN must not reach the conversion of
 * n to an integer (converting NaN or an out-of-range float to int32_t is
 * undefined behaviour, and UBSan's float-cast-overflow says so): the
 * arithmetic runs on a clamped copy xc, where NaN and -inf become -104,
 * and a select at the end hands NaN back. Both are comparisons and
 * selects, so the loops stay vectorized. */
static inline float tg_exp_nonpos(float x)
{
    float xc = x >= -104.0f ? x : -104.0f; /* NaN and -inf: -104 */
    xc = xc > 0.0f ? 0.0f : xc;
    /* n = round(xc / ln2): adding 1.5 * 2^23 rounds to an integer */
    const float shift = 12582912.0f;
    float n = (xc * 1.44269504088896341f + shift) - shift;
    /* r = xc - n ln2, with ln2 split in two so that n*ln2_hi is exact */
    float r = xc - n * 0.693145751953125f;
    r = r - n * 1.42860682030941723212e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t k = (int32_t)n, k1 = k / 2; /* k in [-150, 0] */
    float e = p * tg_pow2i(k1) * tg_pow2i(k - k1);
    return x == x ? e : x; /* NaN in, NaN out */
}

static inline float tg_vtanh(float x)
{
    float a = fabsf(x);
    /* small |x|: tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835
     *                     - 1382x^11/155925 */
    float x2 = x * x;
    float q = -1382.0f / 155925.0f;
    q = q * x2 + 62.0f / 2835.0f;
    q = q * x2 - 17.0f / 315.0f;
    q = q * x2 + 2.0f / 15.0f;
    q = q * x2 - 1.0f / 3.0f;
    float small = x + x * x2 * q;
    float e = tg_exp_nonpos(-2.0f * a);
    float big = copysignf((1.0f - e) / (1.0f + e), x);
    return a < 0.25f ? small : big;
}

static inline float tg_vsigmoid(float x)
{
    float e = tg_exp_nonpos(-fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s;
}

#else /* double: libm */

static inline double tg_vtanh(double x) { return tanh(x); }

static inline double tg_vsigmoid(double x)
{
    double e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

#endif

#endif
