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

/* The first line of every op, and the one place its inputs are checked
 * before anything reads them: the op returns NULL when given NULL (an
 * earlier op failed and reported), and after an error naming the op and
 * the tensor when given a temporary that tg_tape_reset has freed or
 * another thread made (tg_check_live, tensor/tensor.h). An optional
 * input (linear's bias) is checked with tg_check_live where present. */
#define TG_OP_INPUTS(op, ...)                                             \
    do {                                                                  \
        const tg_tensor *in_[] = {__VA_ARGS__};                           \
        if (!tg_check_live((op), (int)(sizeof in_ / sizeof in_[0]), in_)) \
            return NULL;                                                  \
    } while (0)

/* What an op returns after tg_record: its output, or NULL when anomaly
 * mode found a NaN or infinity in it (reported once there; the ops after
 * it then quietly propagate the NULL, like after any other error). */
static inline tg_tensor *tg_op_result(tg_tensor *out)
{
    return out && (out->flags & TG_ANOMALOUS) ? NULL : out;
}

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

/* ---- elementwise rules as data ----------------------------------------
 * Every elementwise op describes itself to the fused programs (ops/fuse_vm.c)
 * as one instruction of their small vector machine for its forward, and
 * one per input for its derivative. An instruction names a code and up to
 * three sources; in a derivative the sources are the op's own values:
 * its inputs a and b, its output y, the gradient g = dL/dy it receives,
 * and the op's constant k (farg[0] of scalar ops). Read them side by side
 * with the op's hand-written backward kernel: they say the same thing. */
enum tg_vm_code {
    TG_VM_COPY,     /* a                      */
    TG_VM_ADD,      /* a + b                  */
    TG_VM_SUB,      /* a - b                  */
    TG_VM_MUL,      /* a * b                  */
    TG_VM_DIV,      /* a / b                  */
    TG_VM_POW,      /* a ** b                 */
    TG_VM_NEG,      /* -a                     */
    TG_VM_ADDK,     /* a + k                  */
    TG_VM_MULK,     /* a * k                  */
    TG_VM_POWK,     /* a ** k                 */
    TG_VM_EXP,
    TG_VM_LOG,
    TG_VM_TANH,
    TG_VM_SIGMOID,
    TG_VM_RELU,
    TG_VM_SQRT,
    TG_VM_STEP,     /* [a > 0] (NaN passes)   */
    /* derivative shapes that are not one of the above */
    TG_VM_DTANH,    /* a * (1 - b*b)          (g, y) */
    TG_VM_DSIGMOID, /* a * b * (1 - b)        (g, y) */
    TG_VM_DRELU,    /* b > 0 ? a : 0          (g, y) */
    TG_VM_DSQRT,    /* a * 0.5 / b            (g, y) */
    TG_VM_DSTEP,    /* a * s * (1 - s), s = sigmoid(b)  (g, x) */
    TG_VM_DDIVB,    /* -a * b / c             (g, y, b) */
    TG_VM_DPOWA,    /* c == 0 ? 0 : a * c * b ** (c - 1)  (g, a, b) */
    TG_VM_DPOWB,    /* c == 0 ? 0 : a * b * log(c)        (g, y, a) */
    TG_VM_DPOWK,    /* k == 0 ? 0 : a * k * b ** (k - 1)  (g, a) */
    TG_VM_NCODES
};
/* where a derivative's sources come from */
enum { TG_R_G, TG_R_A, TG_R_B, TG_R_Y };

typedef struct tg_ew_deriv {
    unsigned char code, src[3];
} tg_ew_deriv;

struct tg_ew_rule {
    unsigned char code;  /* forward: y = code(a, b) (k from farg[0])     */
    unsigned char nin;   /* 1 or 2                                       */
    tg_ew_deriv d[2];    /* dL/da, dL/db contributions                   */
};
typedef struct tg_ew_rule tg_ew_rule;

/* acc + x W^T + b computed in acc's numbers (acc contiguous, of the
 * output's shape; otherwise an ordinary add of a linear). acc's old
 * numbers are gone: only for a tensor nothing else reads again (the
 * compiled steps of ops/fuse.c use it on a layer's own input projection).
 * Backward: dacc += dy and linear's rules. */
tg_tensor *tg_linear_into(tg_tensor *acc, tg_tensor *x, tg_tensor *W,
                          tg_tensor *b);
/* ---- forward mode (ops/jvp.c) ----------------------------------------
 * d (+)= code(a, b, c; k) over n numbers: one instruction of the vector
 * machine (ops/fuse_vm.c), for rules evaluated outside a program. */
void tg_vm_eval(int code, int64_t n, tg_real *d, const tg_real *a,
                const tg_real *b, const tg_real *c, tg_real k, bool acc);
/* t's tangent as a tensor (zeros if it has none); y's tangent := r's */
tg_tensor *tg_tangent_of(const tg_tensor *t);
void tg_set_out_tangent(tg_tensor *y, const tg_tensor *r);
/* the shared rules: elementwise ops from their derivative rules, views,
 * and ops linear in their inputs (replayed on the tangents) */
void tg_jvp_elementwise(tg_entry *e);
void tg_jvp_view(tg_entry *e);
void tg_jvp_linear_op(tg_entry *e);

/* the descriptor of tg_prepare_weight, for compiled steps to insert */
extern const tg_op tg_prepare_op;

/* "alias": x again as a tensor of its own, recorded (backward: dx +=
 * dy) - a contiguous x copied, a strided one viewed with its layout kept
 * (ops/shape.c). Only replayed: a compiled step inserts it so that an
 * output that depends on no step input is each step's own tensor, as
 * unfused (ops/fuse_plan.c). */
extern const tg_op tg_alias_op;

#endif
