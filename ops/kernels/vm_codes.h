/*
 * ops/kernels/vm_codes.h - the vector machine's codes, one line each (an
 * internal header).
 * Everything that is said about a code is said here, and the rest of ops/ is
 * made from this table:
 *
 *   the enum tg_vm_code (ops/internal.h)            TG_VM_##NAME
 *   the machine's loop (ops/kernels/vm.c)           d[i] (+)= VALUE
 *   its name in listings (ops/fuse/fuse_stats.c)    "name"
 *   what backward keeps (ops/fuse/fuse_group.c)     COST
 *   the recorded form (ops/jvp.c)                   RECORDED
 *
 * An elementwise op says what it computes as codes (its tg_ew_rule: one
 * code forward, one per input for the derivative; ops/internal.h), and
 * every path runs those codes: the ops' own forward and backward
 * (ops/unary.c, ops/elementwise.c), the fused groups, and forward mode.
 * A new elementwise op is a line here (two with a derivative of its own)
 * and its rule and descriptor in its family's file.
 *
 * The columns:
 *   NAME      the code
 *   name      as printed
 *   COST      CHEAP (a few additions and products) or DEAR (exp, log,
 *             pow, sqrt, tanh, sigmoid: backward keeps such a value in
 *             memory instead of computing it again)
 *   VALUE     one number from A, B, C (the instruction's sources at i) and
 *             K (its constant), in tg_real: the expression of the op's
 *             own forward or backward, so that every path gives the same
 *             bits (no fused multiply-add: C11 keeps GCC from contracting)
 *   RECORDED  the same value computed with recorded ops from the tensors
 *             TA, TB, TC and the constant K, so that forward mode's
 *             tangents can be differentiated again (tg_jvp_create_graph).
 *             A step's value is a constant: tg_vm_rec_mask (ops/jvp.c).
 *
 * In a derivative the sources are the op's values named by the rule
 * (g = dL/dy, its inputs a and b, its output y), in the rule's order.
 */
#ifndef TG_OPS_VM_CODES_H
#define TG_OPS_VM_CODES_H

/* X(NAME, name, COST, VALUE, RECORDED) */
#define TG_VM_CODES(X)                                                     \
    /* forward codes: what the ops compute */                              \
    X(COPY, "copy", CHEAP, A, TA)                                          \
    X(ADD, "add", CHEAP, A + B, tg_add(TA, TB))                            \
    X(SUB, "sub", CHEAP, A - B, tg_sub(TA, TB))                            \
    X(MUL, "mul", CHEAP, A * B, tg_mul(TA, TB))                            \
    X(DIV, "div", CHEAP, A / B, tg_div(TA, TB))                            \
    X(POW, "pow", DEAR, rpow(A, B), tg_pow(TA, TB))                        \
    X(NEG, "neg", CHEAP, -A, tg_neg(TA))                                   \
    X(ADDK, "addk", CHEAP, A + K, tg_add_scalar(TA, K))                    \
    X(MULK, "mulk", CHEAP, A * K, tg_mul_scalar(TA, K))                    \
    X(POWK, "powk", DEAR, rpow(A, K), tg_pow_scalar(TA, K))                \
    X(EXP, "exp", DEAR, rexp(A), tg_exp(TA))                               \
    X(LOG, "log", DEAR, rlog(A), tg_log(TA))                               \
    X(TANH, "tanh", DEAR, tg_vtanh(A), tg_tanh(TA))                        \
    X(SIGMOID, "sigmoid", DEAR, tg_vsigmoid(A), tg_sigmoid(TA))            \
    /* max(a, 0), a NaN passing through */                                 \
    X(RELU, "relu", CHEAP, (A > 0 || A != A) ? A : 0, tg_relu(TA))         \
    X(SQRT, "sqrt", DEAR, rsqrt(A), tg_sqrt(TA))                           \
    /* log(1 + e^a) as max(a, 0) + log1p(e^-|a|): no overflow */           \
    X(SOFTPLUS, "softplus", DEAR,                                          \
      (A > 0 ? A : 0) + rlog1p(rexp(-rfabs(A))), tg_softplus(TA))          \
    /* [a > 0], a NaN passing through; no derivative (a constant) */       \
    X(STEP, "step", CHEAP, A > 0 ? (tg_real)1 : (A != A ? A : 0),          \
      tg_vm_rec_mask(TA, false))                                           \
    /* derivative codes: (g, y) for dtanh, dsigmoid, drelu, dsqrt */       \
    X(DTANH, "dtanh", CHEAP, A * ((tg_real)1 - B * B),                     \
      tg_mul(TA, tg_add_scalar(tg_neg(tg_mul(TB, TB)), 1)))                \
    X(DSIGMOID, "dsigmoid", CHEAP, A * B * ((tg_real)1 - B),               \
      tg_mul(TA, tg_mul(TB, tg_add_scalar(tg_neg(TB), 1))))                \
    X(DRELU, "drelu", CHEAP, B > 0 ? A : 0,                                \
      tg_mul(TA, tg_vm_rec_mask(TB, false)))                               \
    X(DSQRT, "dsqrt", CHEAP, A * (tg_real)0.5 / B,                         \
      tg_div(tg_mul_scalar(TA, 0.5), TB))                                  \
    /* g s (1 - s), s = sigmoid(x): (g, x) */                              \
    X(DSTEP, "dstep", CHEAP,                                               \
      A * tg_vsigmoid(B) * ((tg_real)1 - tg_vsigmoid(B)),                  \
      tg_vm_rec_dstep(TA, TB))                                             \
    /* g sigmoid(x), softplus' (g, x) */                                   \
    X(DSOFTPLUS, "dsoftplus", CHEAP, A * tg_vsigmoid(B),                   \
      tg_mul(TA, tg_sigmoid(TB)))                                          \
    /* -g y / b: (g, y, b) */                                              \
    X(DDIVB, "ddivb", CHEAP, -A * B / C, tg_neg(tg_div(tg_mul(TA, TB), TC))) \
    /* g b a^(b - 1), 0 where b = 0: (g, a, b) */                          \
    X(DPOWA, "dpowa", CHEAP, C == 0 ? 0 : A * C * rpow(B, C - 1),          \
      tg_vm_rec_dpowa(TA, TB, TC))                                         \
    /* g y log a, 0 where a = 0: (g, y, a) */                              \
    X(DPOWB, "dpowb", CHEAP, C == 0 ? 0 : A * B * rlog(C),                 \
      tg_vm_rec_dpowb(TA, TB, TC))                                         \
    /* g k a^(k - 1), 0 where k = 0: (g, a) */                             \
    X(DPOWK, "dpowk", CHEAP, K == 0 ? 0 : A * K * rpow(B, K - 1),          \
      tg_vm_rec_dpowk(TA, TB, K))

#endif
