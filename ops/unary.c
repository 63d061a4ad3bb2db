/*
 * ops/unary.c - one-input elementwise functions: exp, log, tanh, sigmoid,
 * relu, sqrt, and step_ste (a hard 0/1 step with a straight-through
 * gradient: the one op whose backward is deliberately not its derivative;
 * see the last section).
 *
 * Each op has three parts, in this order: the forward inner loop, the
 * backward inner loop (which *adds* into dL/dx), and the recording
 * function. Inner loops are driven by tg_ew_run (ops/common.c), which
 * walks any shape and strides, so a transposed or sliced x needs no copy.
 * Operands: forward p = {out, x}; backward p = {dx, dy, x, y}, where dx
 * and dy are contiguous (gradients always are) and x may be strided.
 *
 * Backward rules reuse the output y where the derivative is a function of
 * it (exp' = y, tanh' = 1 - y^2, sigmoid' = y(1 - y), sqrt' = 1/(2y),
 * relu' = [y > 0]), so nothing is saved besides what the entry already
 * holds. Only log needs x (log' = 1/x), and step_ste, whose surrogate
 * gradient sigmoid'(x) cannot be read off its 0/1 output.
 *
 * Not here: two-input and scalar-constant ops (ops/elementwise.c),
 * softmax and friends (ops/loss.c).
 */
#include "ops/unary.h"
#include "ops/internal.h"
#include "ops/vmath.h"

#include <math.h>

/* forward: out[i] = expr(x[i]) */
#define UNARY_FWD(name, expr)                                              \
    static void name(int64_t n, tg_real *const *p, const int64_t *s,       \
                     const double *args)                                   \
    {                                                                      \
        (void)args;                                                        \
        tg_real *out = p[0];                                               \
        const tg_real *X = p[1];                                           \
        for (int64_t i = 0; i < n; i++) {                                  \
            tg_real x = X[i * s[1]];                                       \
            out[i * s[0]] = (expr);                                        \
        }                                                                  \
    }

/* forward as above, but contiguous operands (the common case) go to the
 * vector machine's instruction `code` (ops/vm.c: the same expression,
 * compiled for the kernel level in use, so the same bits, sooner) */
#define UNARY_FWD_VM(name, code, expr)                                     \
    UNARY_FWD(name##_strided, expr)                                        \
    static void name(int64_t n, tg_real *const *p, const int64_t *s,       \
                     const double *args)                                   \
    {                                                                      \
        if (s[0] == 1 && s[1] == 1)                                        \
            tg_vm_eval(code, n, p[0], p[1], NULL, NULL, 0, false);         \
        else                                                               \
            name##_strided(n, p, s, args);                                 \
    }

/* backward: dx[i] += expr(dy[i], x[i], y[i]) */
#define UNARY_BWD(name, expr)                                              \
    static void name(int64_t n, tg_real *const *p, const int64_t *s,       \
                     const double *args)                                   \
    {                                                                      \
        (void)args;                                                        \
        tg_real *dx = p[0];                                                \
        const tg_real *DY = p[1], *X = p[2], *Y = p[3];                    \
        for (int64_t i = 0; i < n; i++) {                                  \
            tg_real dy = DY[i * s[1]], x = X[i * s[2]], y = Y[i * s[3]];   \
            (void)x;                                                       \
            (void)y;                                                       \
            dx[i * s[0]] += (expr);                                        \
        }                                                                  \
    }

/* ---- shared plumbing ---------------------------------------------------- */

static tg_tensor *unary_forward(const tg_op *op, tg_tensor *x, tg_ew_inner fwd)
{
    TG_OP_INPUTS(op->name, x);
    tg_tensor *out = tg_new_out(x->ndim, x->shape);
    if (!out)
        return NULL;
    tg_real *base[] = {out->data, x->data};
    const int64_t *st[] = {out->stride, x->stride};
    tg_ew_run(2, base, st, x->ndim, x->shape, fwd, NULL);
    tg_record(op, out, 1, &x);
    return tg_op_result(out);
}

/* dL/dx += inner(dy, x, y). dx and dy are contiguous in y's shape, which
 * is also y's data layout (outputs are contiguous). */
static void unary_grad(tg_entry *e, tg_ew_inner inner)
{
    tg_tensor *x = e->in[0], *y = e->out;
    if (!x->grad)
        return;
    tg_real *base[] = {x->grad, y->grad, x->data, y->data};
    const int64_t *st[] = {y->stride, y->stride, x->stride, y->stride};
    tg_ew_run(4, base, st, y->ndim, y->shape, inner, NULL);
}

/* The descriptor: name, backward, and the rule as data (ops/internal.h):
 * forward code and the derivative, whose sources are g, x (TG_R_A), y. */

/* ---- exp ---- */
UNARY_FWD_VM(exp_fwd, TG_VM_EXP, rexp(x))
UNARY_BWD(exp_grad, dy * y)
/* y = exp(x):  dx += dy * y */
static void exp_bwd(tg_entry *e) { unary_grad(e, exp_grad); }
static const tg_ew_rule exp_op_rule = {
    TG_VM_EXP, 1, {{TG_VM_MUL, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op exp_op = {"exp", exp_bwd, .ew = &exp_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_OUT};
tg_tensor *tg_exp(tg_tensor *x)
{
    return unary_forward(&exp_op, x, exp_fwd);
}

/* ---- log ----
 * logf is exact to an ulp down to the smallest denormal; log(0) = -inf,
 * and the gradient there is dy/0 = inf, as in PyTorch. */
UNARY_FWD_VM(log_fwd, TG_VM_LOG, rlog(x))
UNARY_BWD(log_grad, dy / x)
/* y = log(x):  dx += dy / x */
static void log_bwd(tg_entry *e) { unary_grad(e, log_grad); }
static const tg_ew_rule log_op_rule = {
    TG_VM_LOG, 1, {{TG_VM_DIV, {TG_R_G, TG_R_A, 0}}}};
static const tg_op log_op = {"log", log_bwd, .ew = &log_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_IN(0)};
tg_tensor *tg_log(tg_tensor *x)
{
    return unary_forward(&log_op, x, log_fwd);
}

/* ---- tanh ----
 * tg_vtanh (ops/vmath.h, vectorizable) saturates to exactly +-1 for
 * |x| > ~9 and never overflows, so the derivative 1 - y^2 there is exactly
 * 0, not NaN. */
UNARY_FWD_VM(tanh_fwd, TG_VM_TANH, tg_vtanh(x))
UNARY_BWD(tanh_grad, dy * ((tg_real)1 - y * y))
/* y = tanh(x):  dx += dy * (1 - y^2) */
static void tanh_bwd(tg_entry *e) { unary_grad(e, tanh_grad); }
static const tg_ew_rule tanh_op_rule = {
    TG_VM_TANH, 1, {{TG_VM_DTANH, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op tanh_op = {"tanh", tanh_bwd, .ew = &tanh_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_tanh(tg_tensor *x)
{
    return unary_forward(&tanh_op, x, tanh_fwd);
}

/* ---- sigmoid ----
 * The textbook 1 / (1 + exp(-x)) overflows exp for x < -88 in float (it
 * still gives 0, but through inf, and trips floating-point traps). The
 * two-branch form only ever exponentiates a non-positive number:
 *     x >= 0:  1 / (1 + exp(-x))
 *     x <  0:  exp(x) / (1 + exp(x))
 * (one exp(-|x|) serves both branches), so exp stays in (0, 1]:
 * sigmoid(100) is exactly 1, sigmoid(-100) is exp(-100) ~ 3.8e-44 (a
 * float denormal, the correctly rounded answer), sigmoid(-200) underflows
 * to exactly 0, and the gradient y(1 - y) is finite everywhere. */
UNARY_FWD_VM(sigmoid_fwd, TG_VM_SIGMOID,
             tg_vsigmoid(x)) /* the two-branch form, ops/vmath.h */
UNARY_BWD(sigmoid_grad, dy * y * ((tg_real)1 - y))
/* y = sigmoid(x):  dx += dy * y * (1 - y) */
static void sigmoid_bwd(tg_entry *e) { unary_grad(e, sigmoid_grad); }
static const tg_ew_rule sigmoid_op_rule = {
    TG_VM_SIGMOID, 1, {{TG_VM_DSIGMOID, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op sigmoid_op = {"sigmoid", sigmoid_bwd,
                                 .ew = &sigmoid_op_rule, .jvp = tg_jvp_elementwise,
                                 .reads = TG_READS_OUT};
tg_tensor *tg_sigmoid(tg_tensor *x)
{
    return unary_forward(&sigmoid_op, x, sigmoid_fwd);
}

/* ---- relu ----
 * max(x, 0), written so that a NaN passes through (a NaN hidden as 0
 * would hide a diverging model). The gradient is 0 at x = 0, as in
 * PyTorch; y > 0 exactly where x > 0. */
UNARY_FWD_VM(relu_fwd, TG_VM_RELU, (x > 0 || x != x) ? x : (tg_real)0)
UNARY_BWD(relu_grad, y > 0 ? dy : (tg_real)0)
/* y = relu(x):  dx += dy * [x > 0] */
static void relu_bwd(tg_entry *e) { unary_grad(e, relu_grad); }
static const tg_ew_rule relu_op_rule = {
    TG_VM_RELU, 1, {{TG_VM_DRELU, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op relu_op = {"relu", relu_bwd, .ew = &relu_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_relu(tg_tensor *x)
{
    return unary_forward(&relu_op, x, relu_fwd);
}

/* ---- sqrt ----
 * sqrt(0) = 0 and its gradient 0.5/0 = inf, as in PyTorch; sqrt of a
 * negative number is NaN. */
UNARY_FWD_VM(sqrt_fwd, TG_VM_SQRT, rsqrt(x))
UNARY_BWD(sqrt_grad, dy * (tg_real)0.5 / y)
/* y = sqrt(x):  dx += dy * 0.5 / y */
static void sqrt_bwd(tg_entry *e) { unary_grad(e, sqrt_grad); }
static const tg_ew_rule sqrt_op_rule = {
    TG_VM_SQRT, 1, {{TG_VM_DSQRT, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op sqrt_op = {"sqrt", sqrt_bwd, .ew = &sqrt_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_sqrt(tg_tensor *x)
{
    return unary_forward(&sqrt_op, x, sqrt_fwd);
}

/* ---- step_ste: a hard gate with a straight-through gradient ----
 * Forward: y = [x > 0], so x = 0 (and -0) gives 0; a NaN passes through
 * (as in relu) rather than becoming a confident 0.
 * Backward: the true derivative of a step is 0 everywhere but at 0, where
 * it does not exist - a gate made of it could never learn. A
 * straight-through estimator (Bengio, Leonard & Courville 2013) keeps the
 * hard forward and uses the gradient of a smooth stand-in backward. We
 * use sigmoid, the smooth gate the step is the limit of (sigmoid(x / tau)
 * as tau -> 0):
 *     dx += dy * s (1 - s),   s = sigmoid(x)
 * (rather than the identity, dx += dy: this one fades where the gate is
 * firmly decided, |x| >> 1, and gives a hard-gated cell exactly the
 * backward pass of the same cell with m = sigmoid(a)). s is recomputed
 * from x with the same stable two-branch form as tg_sigmoid, so the
 * gradient equals tg_sigmoid's bit for bit. */
UNARY_FWD(step_fwd, x > 0 ? (tg_real)1 : (x != x ? x : (tg_real)0))
UNARY_BWD(step_grad, dy * tg_vsigmoid(x) * ((tg_real)1 - tg_vsigmoid(x)))
/* y = [x > 0]:  dx += dy * s * (1 - s),  s = sigmoid(x)  (the surrogate) */
static void step_bwd(tg_entry *e) { unary_grad(e, step_grad); }
static const tg_ew_rule step_op_rule = {
    TG_VM_STEP, 1, {{TG_VM_DSTEP, {TG_R_G, TG_R_A, 0}}}};
static const tg_op step_op = {"step_ste", step_bwd, .ew = &step_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_step_ste(tg_tensor *x)
{
    return unary_forward(&step_op, x, step_fwd);
}
