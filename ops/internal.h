/*
 * ops/internal.h - helpers shared by the op families (not a public
 * header): output allocation, broadcasting and its reverse, and the
 * elementwise loop driver.
 */
#ifndef TG_OPS_INTERNAL_H
#define TG_OPS_INTERNAL_H

#include "autograd/tape.h"
#include "tensor/arena.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

/* Math on tg_real without promoting floats to double. */
#ifdef TG_DOUBLE
#define rexp exp
#define rlog log
#define rpow pow
#define rtanh tanh
#define rsqrt sqrt
#define rfabs fabs
#define rlog1p log1p
#else
#define rexp expf
#define rlog logf
#define rpow powf
#define rtanh tanhf
#define rsqrt sqrtf
#define rfabs fabsf
#define rlog1p log1pf
#endif

/* Ops return NULL when given NULL (an earlier op failed and reported). */
#define TG_PROPAGATE_NULL(...)                                            \
    do {                                                                  \
        const tg_tensor *in_[] = {__VA_ARGS__};                           \
        for (size_t k_ = 0; k_ < sizeof in_ / sizeof in_[0]; k_++)        \
            if (!in_[k_])                                                 \
                return NULL;                                              \
    } while (0)

/* A shape as "[2, 3]" in a small buffer, for error messages. */
typedef struct shape_buf {
    char s[96];
} shape_buf;
shape_buf tg_shp(const tg_tensor *t);
#define SHP(t) (tg_shp(t).s)

/* A new contiguous temporary of the given shape (uninitialised). */
tg_tensor *tg_new_out(int ndim, const int64_t *shape);
/* A contiguous temporary buffer of n reals (uninitialised / zeroed). */
tg_real *tg_scratch(int64_t n);
tg_real *tg_scratch_zero(int64_t n);

/* NumPy broadcasting of a and b into (ndim, shape); reports an error
 * naming op and both shapes and returns -1 if they do not broadcast. */
int tg_broadcast_shape(const char *op, const tg_tensor *a,
                       const tg_tensor *b, int *ndim, int64_t *shape);
/* t's strides seen at the broadcast shape: 0 on dimensions t lacks or
 * has size 1 where the shape is larger. */
void tg_broadcast_strides(const tg_tensor *t, int ndim, const int64_t *shape,
                          int64_t *stride);
/* The reverse of broadcasting, used by every two-input op's backward:
 * dst (contiguous, shape dshape of dndim dims) += g (contiguous, shape) summed
 * over the dimensions that broadcasting stretched. */
void tg_unbroadcast_add(tg_real *dst, int dndim, const int64_t *dshape,
                        const tg_real *g, int ndim, const int64_t *shape);

/* The elementwise driver. An inner loop handles n elements of each of nop
 * operands (operand 0 is written, the rest read), operand k at
 * p[k][i * s[k]]; args carries op constants. The driver walks any shape
 * and strides in tiles, in parallel when large; each tile writes its own
 * part of operand 0, so results do not depend on the thread count
 * (operand 0 must not have a zero stride). */
typedef void (*tg_ew_inner)(int64_t n, tg_real *const *p, const int64_t *s,
                            const double *args);
#define TG_EW_MAX_OPS 5
void tg_ew_run(int nop, tg_real *const *base, const int64_t *const *strides,
               int ndim, const int64_t *shape, tg_ew_inner fn,
               const double *args);

#endif
