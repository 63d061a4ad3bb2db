/*
 * ops/unary.c - one-input elementwise functions: exp, log, tanh, sigmoid,
 * relu, sqrt, and step_ste (a hard 0/1 step with a straight-through
 * gradient: the one op whose backward is deliberately not its derivative;
 * see the last section).
 *
 * Each op is its rule and its descriptor: the rule names the vector
 * machine's code for the forward and one for the derivative (each code
 * is one line of ops/kernels/vm_codes.h, its expression written once), and the
 * same two shared functions run every op: forward out = code(x), backward
 * dx += dcode(sources). They go through tg_ew_run_code (ops/common.c),
 * which walks any shape and strides, so a transposed or sliced x needs no
 * copy; the fused programs (ops/fuse/fuse_vm.c) and forward mode (ops/jvp.c)
 * run the very same rules. Backward operands: dx and dy are contiguous
 * (gradients always are), x may be strided.
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

/* ---- shared plumbing ---------------------------------------------------- */

/* out = code(x), the rule's forward code */
static tg_tensor *unary_forward(const tg_op *op, tg_tensor *x)
{
    TG_OP_INPUTS(op->name, x);
    tg_tensor *out = tg_new_out(x->ndim, x->shape);
    if (!out)
        return NULL;
    tg_real *base[] = {out->data, x->data, x->data, x->data};
    const int64_t *st[] = {out->stride, x->stride, x->stride, x->stride};
    tg_ew_run_code(op->ew->code, 0, false, base, st, x->ndim, x->shape);
    tg_record(op, out, 1, &x);
    return tg_op_result(out);
}

/* dL/dx += the rule's derivative code over its sources, each of g = dy,
 * x (TG_R_A) and y. dx, dy and y are contiguous in y's shape, which is
 * also y's data layout (outputs are contiguous). */
static void unary_bwd(tg_entry *e)
{
    tg_tensor *x = e->in[0], *y = e->out;
    if (!x->grad)
        return;
    const tg_ew_deriv *d = &e->op->ew->d[0];
    tg_real *src[4] = {[TG_R_G] = y->grad, [TG_R_A] = x->data,
                       [TG_R_B] = y->grad, [TG_R_Y] = y->data};
    const int64_t *sst[4] = {[TG_R_G] = y->stride, [TG_R_A] = x->stride,
                             [TG_R_B] = y->stride, [TG_R_Y] = y->stride};
    tg_real *base[4] = {x->grad};
    const int64_t *st[4] = {y->stride};
    for (int j = 0; j < 3; j++) {
        base[1 + j] = src[d->src[j]];
        st[1 + j] = sst[d->src[j]];
    }
    tg_ew_run_code(d->code, 0, true, base, st, y->ndim, y->shape);
}

/* Each op: its rule (forward code; the derivative's code and sources,
 * from g, x (TG_R_A), y) and its descriptor. */

/* ---- exp ---- */
/* y = exp(x):  dx += dy * y */
static const tg_ew_rule exp_op_rule = {
    TG_VM_EXP, 1, {{TG_VM_MUL, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op exp_op = {"exp", unary_bwd, .ew = &exp_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_exp(tg_tensor *x)
{
    return unary_forward(&exp_op, x);
}

/* ---- log ----
 * logf is exact to an ulp down to the smallest denormal; log(0) = -inf,
 * and the gradient there is dy/0 = inf, as in PyTorch. */
/* y = log(x):  dx += dy / x */
static const tg_ew_rule log_op_rule = {
    TG_VM_LOG, 1, {{TG_VM_DIV, {TG_R_G, TG_R_A, 0}}}};
static const tg_op log_op = {"log", unary_bwd, .ew = &log_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_log(tg_tensor *x)
{
    return unary_forward(&log_op, x);
}

/* ---- tanh ----
 * tg_vtanh (ops/kernels/vmath.h, vectorizable) saturates to exactly +-1 for
 * |x| > ~9 and never overflows, so the derivative 1 - y^2 there is exactly
 * 0, not NaN. */
/* y = tanh(x):  dx += dy * (1 - y^2) */
static const tg_ew_rule tanh_op_rule = {
    TG_VM_TANH, 1, {{TG_VM_DTANH, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op tanh_op = {"tanh", unary_bwd, .ew = &tanh_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_tanh(tg_tensor *x)
{
    return unary_forward(&tanh_op, x);
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
/* y = sigmoid(x):  dx += dy * y * (1 - y) */
static const tg_ew_rule sigmoid_op_rule = {
    TG_VM_SIGMOID, 1, {{TG_VM_DSIGMOID, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op sigmoid_op = {"sigmoid", unary_bwd, .ew = &sigmoid_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_sigmoid(tg_tensor *x)
{
    return unary_forward(&sigmoid_op, x);
}

/* ---- relu ----
 * max(x, 0), written so that a NaN passes through (a NaN hidden as 0
 * would hide a diverging model). The gradient is 0 at x = 0, as in
 * PyTorch; y > 0 exactly where x > 0. */
/* y = relu(x):  dx += dy * [x > 0] */
static const tg_ew_rule relu_op_rule = {
    TG_VM_RELU, 1, {{TG_VM_DRELU, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op relu_op = {"relu", unary_bwd, .ew = &relu_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_relu(tg_tensor *x)
{
    return unary_forward(&relu_op, x);
}

/* ---- sqrt ----
 * sqrt(0) = 0 and its gradient 0.5/0 = inf, as in PyTorch; sqrt of a
 * negative number is NaN. */
/* y = sqrt(x):  dx += dy * 0.5 / y */
static const tg_ew_rule sqrt_op_rule = {
    TG_VM_SQRT, 1, {{TG_VM_DSQRT, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op sqrt_op = {"sqrt", unary_bwd, .ew = &sqrt_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_sqrt(tg_tensor *x)
{
    return unary_forward(&sqrt_op, x);
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
/* y = [x > 0]:  dx += dy * s * (1 - s),  s = sigmoid(x)  (the surrogate) */
static const tg_ew_rule step_op_rule = {
    TG_VM_STEP, 1, {{TG_VM_DSTEP, {TG_R_G, TG_R_A, 0}}}};
static const tg_op step_op = {"step_ste", unary_bwd, .ew = &step_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_step_ste(tg_tensor *x)
{
    return unary_forward(&step_op, x);
}
