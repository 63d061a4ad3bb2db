/*
 * ops/unary.c - one-input elementwise functions: exp, log, tanh, sigmoid,
 * relu, sqrt, and step_ste (a hard 0/1 step with a straight-through
 * gradient: the one op whose backward is deliberately not its derivative;
 * see the last section).
 *
 * Each op is its rule and its descriptor: the rule names the vector
 * machine's code for the forward and one for the derivative (each code
 * is one line of ops/kernels/vm_codes.h, its expression written once),
 * and the same two functions run every elementwise op (tg_ew_unary and
 * tg_ew_backward, ops/elementwise.c), through tg_ew_run_code
 * (ops/common.c), which walks any shape and strides, so a transposed or
 * sliced x needs no copy. The fused programs (ops/fuse/fuse_vm.c) and
 * forward mode (ops/jvp.c) run the very same rules.
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

/* Each op: its rule (forward code; the derivative's code and sources,
 * from g, x (TG_R_A), y) and its descriptor. */

/* ---- exp ---- */
/* y = exp(x):  dx += dy * y */
static const tg_ew_rule exp_op_rule = {
    TG_VM_EXP, 1, {{TG_VM_MUL, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op exp_op = {"exp", tg_ew_backward, .ew = &exp_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_exp(tg_tensor *x)
{
    return tg_ew_unary(&exp_op, x, 0);
}

/* ---- log ----
 * logf is exact to an ulp down to the smallest denormal; log(0) = -inf,
 * and the gradient there is dy/0 = inf, as in PyTorch. */
/* y = log(x):  dx += dy / x */
static const tg_ew_rule log_op_rule = {
    TG_VM_LOG, 1, {{TG_VM_DIV, {TG_R_G, TG_R_A, 0}}}};
static const tg_op log_op = {"log", tg_ew_backward, .ew = &log_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_log(tg_tensor *x)
{
    return tg_ew_unary(&log_op, x, 0);
}

/* ---- tanh ----
 * tg_vtanh (ops/kernels/vmath.h, vectorizable) saturates to exactly +-1 for
 * |x| > ~9 and never overflows, so the derivative 1 - y^2 there is exactly
 * 0, not NaN. */
/* y = tanh(x):  dx += dy * (1 - y^2) */
static const tg_ew_rule tanh_op_rule = {
    TG_VM_TANH, 1, {{TG_VM_DTANH, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op tanh_op = {"tanh", tg_ew_backward, .ew = &tanh_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_tanh(tg_tensor *x)
{
    return tg_ew_unary(&tanh_op, x, 0);
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
static const tg_op sigmoid_op = {"sigmoid", tg_ew_backward, .ew = &sigmoid_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_sigmoid(tg_tensor *x)
{
    return tg_ew_unary(&sigmoid_op, x, 0);
}

/* ---- relu ----
 * max(x, 0), written so that a NaN passes through (a NaN hidden as 0
 * would hide a diverging model). The gradient is 0 at x = 0, as in
 * PyTorch; y > 0 exactly where x > 0. */
/* y = relu(x):  dx += dy * [x > 0] */
static const tg_ew_rule relu_op_rule = {
    TG_VM_RELU, 1, {{TG_VM_DRELU, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op relu_op = {"relu", tg_ew_backward, .ew = &relu_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_relu(tg_tensor *x)
{
    return tg_ew_unary(&relu_op, x, 0);
}

/* ---- sqrt ----
 * sqrt(0) = 0 and its gradient 0.5/0 = inf, as in PyTorch; sqrt of a
 * negative number is NaN. */
/* y = sqrt(x):  dx += dy * 0.5 / y */
static const tg_ew_rule sqrt_op_rule = {
    TG_VM_SQRT, 1, {{TG_VM_DSQRT, {TG_R_G, TG_R_Y, 0}}}};
static const tg_op sqrt_op = {"sqrt", tg_ew_backward, .ew = &sqrt_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_OUT};
tg_tensor *tg_sqrt(tg_tensor *x)
{
    return tg_ew_unary(&sqrt_op, x, 0);
}

/* ---- softplus ----
 * log(1 + e^x), a smooth relu, computed as max(x, 0) + log1p(e^-|x|) so
 * that e^x never overflows (softplus(100) is 100, softplus(-100) is
 * e^-100); its derivative is sigmoid(x), from x. */
/* y = softplus(x):  dx += dy * sigmoid(x) */
static const tg_ew_rule softplus_op_rule = {
    TG_VM_SOFTPLUS, 1, {{TG_VM_DSOFTPLUS, {TG_R_G, TG_R_A, 0}}}};
static const tg_op softplus_op = {"softplus", tg_ew_backward,
                                  .ew = &softplus_op_rule,
                                  .jvp = tg_jvp_elementwise,
                                  .reads = TG_READS_IN(0)};
tg_tensor *tg_softplus(tg_tensor *x)
{
    return tg_ew_unary(&softplus_op, x, 0);
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
static const tg_op step_op = {"step_ste", tg_ew_backward, .ew = &step_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_step_ste(tg_tensor *x)
{
    return tg_ew_unary(&step_op, x, 0);
}
