/*
 * ops/internal.h - helpers shared by the op families (not a public
 * header): output allocation, broadcasting and its reverse, and the
 * elementwise loop driver.
 */
#ifndef TG_OPS_INTERNAL_H
#define TG_OPS_INTERNAL_H

#include "autograd/tape.h"
#include "ops/kernels/vm_codes.h"
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
/* The same driver running one code of the vector machine (ops/
 * vm_codes.h): operand 0 (+)= code(operands 1..3; k), with acc adding.
 * Contiguous operands go to the machine as they are; strided ones are
 * gathered (and a strided operand 0 scattered) a few hundred numbers at
 * a time. Same bits as the code's own loop: it is that loop. */
void tg_ew_run_code(int code, double k, bool acc, tg_real *const *base,
                    const int64_t *const *strides, int ndim,
                    const int64_t *shape);
/* Every elementwise op, from its descriptor's rule (ops/elementwise.c):
 * out = code(a, b) with broadcasting; out = code(a; k), k kept in the
 * entry's farg[TG_EW_K]; and the backward of both, dL/d(input) += dcode. */
tg_tensor *tg_ew_binary(const tg_op *op, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_ew_unary(const tg_op *op, tg_tensor *a, double k);
void tg_ew_backward(tg_entry *e);

/* ---- elementwise rules as data ----------------------------------------
 * Every elementwise op describes itself as codes of the vector machine
 * (ops/kernels/vm_codes.h, where each code is one line): one for its
 * forward, one per input for its derivative. An instruction names a code
 * and up to three sources; in a derivative the sources are the op's own
 * values: its inputs a and b, its output y, the gradient g = dL/dy it
 * receives, and the op's constant k (farg[TG_EW_K]). The ops' own
 * kernels (ops/unary.c, ops/elementwise.c), the fused programs
 * (ops/fuse/fuse_vm.c) and forward mode (ops/jvp.c) all run these
 * (tests/test_vm_rules.c). */
#define TG_VM_ENUM(NAME, name, cost, value, recorded) TG_VM_##NAME,
enum tg_vm_code { TG_VM_CODES(TG_VM_ENUM) TG_VM_NCODES };
#undef TG_VM_ENUM
/* where a derivative's sources come from */
enum { TG_R_G, TG_R_A, TG_R_B, TG_R_Y };

/* where an elementwise op keeps its constant in its tape entry */
enum {
    TG_EW_K /* farg: the k of code(a; k) (0 for two-input ops) */
};

typedef struct tg_ew_deriv {
    unsigned char code, src[3];
} tg_ew_deriv;

struct tg_ew_rule {
    unsigned char code;  /* forward: y = code(a, b) (k: farg[TG_EW_K])   */
    unsigned char nin;   /* 1 or 2                                       */
    tg_ew_deriv d[2];    /* dL/da, dL/db contributions                   */
};
typedef struct tg_ew_rule tg_ew_rule;

/* acc + x W^T + b computed in acc's numbers (acc contiguous, of the
 * output's shape; otherwise an ordinary add of a linear). acc's old
 * numbers are gone: only for a tensor nothing else reads again (the
 * compiled steps of ops/fuse/fuse.c use it on a layer's own input projection).
 * Backward: dacc += dy and linear's rules. */
tg_tensor *tg_linear_into(tg_tensor *acc, tg_tensor *x, tg_tensor *W,
                          tg_tensor *b);
/* ---- the vector machine outside a program ----------------------------
 * d (+)= code(a, b, c; k) over n numbers: one instruction of the vector
 * machine (defined in ops/fuse/fuse_vm.c), for rules evaluated outside a
 * compiled program - the unfused backward of ops/unary.c and the
 * forward-mode rules of ops/jvp.c. */
void tg_vm_eval(int code, int64_t n, tg_real *d, const tg_real *a,
                const tg_real *b, const tg_real *c, tg_real k, bool acc);
/* ---- forward mode (ops/jvp.c) ----------------------------------------
 * t's tangent as a tensor (zeros if it has none); y's tangent := r's */
tg_tensor *tg_tangent_of(const tg_tensor *t);
void tg_set_out_tangent(tg_tensor *y, const tg_tensor *r);
/* the shared rules: elementwise ops from their derivative rules, views,
 * and ops linear in their inputs (replayed on the tangents) */
void tg_jvp_elementwise(tg_entry *e);
void tg_jvp_view(tg_entry *e);
void tg_jvp_linear_op(tg_entry *e);

/* the descriptor of tg_prepare_weight, for compiled steps to insert */
extern const tg_op tg_prepare_op;

/* ---- views (ops/shape.c) ---------------------------------------------
 * Where a view op keeps its gradient view in its tape entry: the offset
 * and the strides of its elements in a contiguous copy of its input (the
 * comment atop ops/shape.c). Backward, forward mode (ops/jvp.c) and the
 * compiled steps (ops/fuse/) read them. */
enum {
    TG_VIEW_OFF,   /* iarg: the offset */
    TG_VIEW_STRIDE /* iarg[TG_VIEW_STRIDE + d]: the stride of dimension d */
};

/* "alias": x again as a tensor of its own, recorded (backward: dx +=
 * dy) - a contiguous x copied, a strided one viewed with its layout kept
 * (ops/shape.c). Only replayed: a compiled step inserts it so that an
 * output that depends on no step input is each step's own tensor, as
 * unfused (ops/fuse/fuse_plan.c). */
extern const tg_op tg_alias_op;

#endif
