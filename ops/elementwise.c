/*
 * ops/elementwise.c - add, sub, mul, div, pow with broadcasting; neg and
 * the scalar forms.
 *
 * Each op has three parts, in this order: the forward inner loop (plain
 * arrays), the backward inner loops (which *add* into a gradient), and the
 * recording function. Inner loops get n elements of each operand with a
 * stride (see tg_ew_run): forward p = {out, a, b}; backward
 * p = {dst, dy, a, b, y} where dst is dL/da or dL/db in the output's shape.
 * Where an input was broadcast, dst is a scratch buffer that
 * tg_unbroadcast_add then sums into the input's gradient.
 */
#include "ops/elementwise.h"
#include "ops/internal.h"

#include <math.h>

/* Inner loops are written once with strides; GCC versions them for unit
 * strides, which is the common case, and vectorizes that version. */
#define EW_LOOP(expr)                                                      \
    do {                                                                   \
        tg_real *o_ = p[0];                                                \
        const tg_real *A = p[1], *B = p[2];                               \
        int64_t so = s[0], sa = s[1], sb = s[2];                           \
        (void)B;                                                           \
        (void)sb;                                                          \
        (void)args;                                                        \
        for (int64_t i = 0; i < n; i++) {                                  \
            tg_real a = A[i * sa];                                         \
            tg_real b = B ? B[i * sb] : 0;                                 \
            (void)a;                                                       \
            (void)b;                                                       \
            o_[i * so] = (expr);                                           \
        }                                                                  \
    } while (0)

/* backward: dst += expr(dy, a, b, y) */
#define EW_GRAD(expr)                                                      \
    do {                                                                   \
        tg_real *g_ = p[0];                                                \
        const tg_real *DY = p[1], *A = p[2], *B = p[3], *Y = p[4];        \
        (void)args;                                                        \
        for (int64_t i = 0; i < n; i++) {                                  \
            tg_real dy = DY[i * s[1]], a = A[i * s[2]];                   \
            tg_real b = B ? B[i * s[3]] : 0, y = Y[i * s[4]];             \
            (void)a;                                                       \
            (void)b;                                                       \
            (void)y;                                                       \
            g_[i * s[0]] += (expr);                                        \
        }                                                                  \
    } while (0)

/* ---- shared plumbing for the two-input ops ---------------------------- */

static tg_tensor *binary_forward(const tg_op *op, tg_tensor *a, tg_tensor *b,
                                 tg_ew_inner fwd)
{
    TG_OP_INPUTS(op->name, a, b);
    int nd;
    int64_t shape[TG_MAX_DIMS], sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    if (tg_broadcast_shape(op->name, a, b, &nd, shape) < 0)
        return NULL;
    tg_tensor *out = tg_new_out(nd, shape);
    tg_broadcast_strides(a, nd, shape, sa);
    tg_broadcast_strides(b, nd, shape, sb);
    tg_real *base[] = {out->data, a->data, b->data};
    const int64_t *st[] = {out->stride, sa, sb};
    tg_ew_run(3, base, st, nd, shape, fwd, NULL);
    tg_record(op, out, 2, (tg_tensor *[]){a, b});
    return tg_op_result(out);
}

/* dL/d(input k) += unbroadcast(inner(dy, a, b, y)). */
static void binary_grad(tg_entry *e, int k, tg_ew_inner inner)
{
    tg_tensor *x = e->in[k], *a = e->in[0], *b = e->in[1], *y = e->out;
    if (!x->grad)
        return;
    int nd = y->ndim;
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    tg_broadcast_strides(a, nd, y->shape, sa);
    tg_broadcast_strides(b, nd, y->shape, sb);
    bool direct = tg_same_shape(x, y);
    tg_real *dst = direct ? x->grad : tg_scratch_zero(y->numel);
    tg_real *base[] = {dst, y->grad, a->data, b->data, y->data};
    const int64_t *st[] = {y->stride, y->stride, sa, sb, y->stride};
    tg_ew_run(5, base, st, nd, y->shape, inner, NULL);
    if (!direct)
        tg_unbroadcast_add(x->grad, x->ndim, x->shape, dst, nd, y->shape);
}

/* The descriptor of a two-input op: name, backward, and its rule as data
 * (ops/internal.h): forward code, and the derivative for a and for b. */

/* ---- add ---- */
static void add_fwd(int64_t n, tg_real *const *p, const int64_t *s,
                    const double *args)
{
    EW_LOOP(a + b);
}
static void pass_grad(int64_t n, tg_real *const *p, const int64_t *s,
                      const double *args)
{
    EW_GRAD(dy);
}
/* out = a + b:  da += dy,  db += dy */
static void add_bwd(tg_entry *e)
{
    binary_grad(e, 0, pass_grad);
    binary_grad(e, 1, pass_grad);
}
static const tg_ew_rule add_op_rule = {
    TG_VM_ADD, 2, {{TG_VM_COPY, {TG_R_G, 0, 0}},
    {TG_VM_COPY, {TG_R_G, 0, 0}}}};
static const tg_op add_op = {"add", add_bwd, .ew = &add_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_NONE};
tg_tensor *tg_add(tg_tensor *a, tg_tensor *b)
{
    return binary_forward(&add_op, a, b, add_fwd);
}

/* ---- sub ---- */
static void sub_fwd(int64_t n, tg_real *const *p, const int64_t *s,
                    const double *args)
{
    EW_LOOP(a - b);
}
static void negated_grad(int64_t n, tg_real *const *p, const int64_t *s,
                         const double *args)
{
    EW_GRAD(-dy);
}
/* out = a - b:  da += dy,  db -= dy */
static void sub_bwd(tg_entry *e)
{
    binary_grad(e, 0, pass_grad);
    binary_grad(e, 1, negated_grad);
}
static const tg_ew_rule sub_op_rule = {
    TG_VM_SUB, 2, {{TG_VM_COPY, {TG_R_G, 0, 0}},
    {TG_VM_NEG, {TG_R_G, 0, 0}}}};
static const tg_op sub_op = {"sub", sub_bwd, .ew = &sub_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_NONE};
tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b)
{
    return binary_forward(&sub_op, a, b, sub_fwd);
}

/* ---- mul ---- */
static void mul_fwd(int64_t n, tg_real *const *p, const int64_t *s,
                    const double *args)
{
    EW_LOOP(a * b);
}
static void mul_grad_a(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    EW_GRAD(dy * b);
}
static void mul_grad_b(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    EW_GRAD(dy * a);
}
/* out = a * b:  da += dy * b,  db += dy * a */
static void mul_bwd(tg_entry *e)
{
    binary_grad(e, 0, mul_grad_a);
    binary_grad(e, 1, mul_grad_b);
}
static const tg_ew_rule mul_op_rule = {
    TG_VM_MUL, 2, {{TG_VM_MUL, {TG_R_G, TG_R_B, 0}},
    {TG_VM_MUL, {TG_R_G, TG_R_A, 0}}}};
static const tg_op mul_op = {"mul", mul_bwd, .ew = &mul_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_IN(0) | TG_READS_IN(1)};
tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b)
{
    return binary_forward(&mul_op, a, b, mul_fwd);
}

/* ---- div ---- */
static void div_fwd(int64_t n, tg_real *const *p, const int64_t *s,
                    const double *args)
{
    EW_LOOP(a / b);
}
static void div_grad_a(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    EW_GRAD(dy / b);
}
static void div_grad_b(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    EW_GRAD(-dy * y / b); /* d(a/b)/db = -a/b^2 = -y/b */
}
/* out = a / b:  da += dy / b,  db += -dy * out / b */
static void div_bwd(tg_entry *e)
{
    binary_grad(e, 0, div_grad_a);
    binary_grad(e, 1, div_grad_b);
}
static const tg_ew_rule div_op_rule = {
    TG_VM_DIV, 2, {{TG_VM_DIV, {TG_R_G, TG_R_B, 0}},
    {TG_VM_DDIVB, {TG_R_G, TG_R_Y, TG_R_B}}}};
static const tg_op div_op = {"div", div_bwd, .ew = &div_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_IN(1) | TG_READS_OUT};
tg_tensor *tg_div(tg_tensor *a, tg_tensor *b)
{
    return binary_forward(&div_op, a, b, div_fwd);
}

/* ---- pow ---- */
static void pow_fwd(int64_t n, tg_real *const *p, const int64_t *s,
                    const double *args)
{
    EW_LOOP(rpow(a, b));
}
static void pow_grad_a(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    /* d(a^b)/da = b * a^(b-1); written with pow, not y/a, so a = 0 works */
    EW_GRAD(b == 0 ? 0 : dy * b * rpow(a, b - 1));
}
static void pow_grad_b(int64_t n, tg_real *const *p, const int64_t *s,
                       const double *args)
{
    /* d(a^b)/db = a^b * log(a); taken as 0 where a = 0, as PyTorch does
     * for b >= 0 (0^0 = 1 would otherwise give 1 * log 0 = -inf; for
     * b < 0 PyTorch's inf * log 0 is no gradient either) */
    EW_GRAD(a == 0 ? 0 : dy * y * rlog(a));
}
/* out = a ** b:  da += dy * b * a^(b-1),  db += dy * out * log(a) */
static void pow_bwd(tg_entry *e)
{
    binary_grad(e, 0, pow_grad_a);
    binary_grad(e, 1, pow_grad_b);
}
static const tg_ew_rule pow_op_rule = {
    TG_VM_POW, 2, {{TG_VM_DPOWA, {TG_R_G, TG_R_A, TG_R_B}},
    {TG_VM_DPOWB, {TG_R_G, TG_R_Y, TG_R_A}}}};
static const tg_op pow_op = {"pow", pow_bwd, .ew = &pow_op_rule, .jvp = tg_jvp_elementwise};
tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b)
{
    return binary_forward(&pow_op, a, b, pow_fwd);
}

/* ---- one input and a constant: neg, add_scalar, mul_scalar, pow_scalar.
 * Operands: forward {out, a}, backward {dst, dy, a} (p[2] = a), with the
 * constant in args[0]. */

static tg_tensor *scalar_forward(const tg_op *op, tg_tensor *a, double c,
                                 tg_ew_inner fwd)
{
    TG_OP_INPUTS(op->name, a);
    tg_tensor *out = tg_new_out(a->ndim, a->shape);
    tg_real *base[] = {out->data, a->data};
    const int64_t *st[] = {out->stride, a->stride};
    double args[1] = {c};
    tg_ew_run(2, base, st, a->ndim, a->shape, fwd, args);
    tg_entry *e = tg_record(op, out, 1, &a);
    if (e)
        e->farg[0] = c;
    return tg_op_result(out);
}

static void scalar_grad(tg_entry *e, tg_ew_inner inner)
{
    tg_tensor *a = e->in[0], *y = e->out;
    tg_real *base[] = {a->grad, y->grad, a->data, y->data};
    const int64_t *st[] = {y->stride, y->stride, a->stride, y->stride};
    tg_ew_run(4, base, st, y->ndim, y->shape, inner, e->farg);
}

#define SCALAR_FWD(name, expr)                                             \
    static void name(int64_t n, tg_real *const *p, const int64_t *s,       \
                     const double *args)                                   \
    {                                                                      \
        tg_real c = (tg_real)args[0];                                      \
        (void)c;                                                           \
        for (int64_t i = 0; i < n; i++) {                                  \
            tg_real a = p[1][i * s[1]];                                    \
            p[0][i * s[0]] = (expr);                                       \
        }                                                                  \
    }
/* backward operands: {da, dy, a, y}: da += expr(dy, a, y, c) */
#define SCALAR_BWD(name, expr)                                             \
    static void name(int64_t n, tg_real *const *p, const int64_t *s,       \
                     const double *args)                                   \
    {                                                                      \
        tg_real c = (tg_real)args[0];                                      \
        (void)c;                                                           \
        for (int64_t i = 0; i < n; i++) {                                  \
            tg_real dy = p[1][i * s[1]], a = p[2][i * s[2]];              \
            tg_real y = p[3][i * s[3]];                                    \
            (void)a;                                                       \
            (void)y;                                                       \
            p[0][i * s[0]] += (expr);                                      \
        }                                                                  \
    }


/* out = -a:  da -= dy */
SCALAR_FWD(neg_fwd, -a)
SCALAR_BWD(neg_grad, -dy)
static void neg_bwd(tg_entry *e) { scalar_grad(e, neg_grad); }
static const tg_ew_rule neg_op_rule = {
    TG_VM_NEG, 1, {{TG_VM_NEG, {TG_R_G, 0, 0}}}};
static const tg_op neg_op = {"neg", neg_bwd, .ew = &neg_op_rule, .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_NONE};
tg_tensor *tg_neg(tg_tensor *a)
{
    return scalar_forward(&neg_op, a, 0, neg_fwd);
}

/* out = a + c:  da += dy */
SCALAR_FWD(adds_fwd, a + c)
SCALAR_BWD(adds_grad, dy)
static void adds_bwd(tg_entry *e) { scalar_grad(e, adds_grad); }
static const tg_ew_rule adds_op_rule = {
    TG_VM_ADDK, 1, {{TG_VM_COPY, {TG_R_G, 0, 0}}}};
static const tg_op adds_op = {"add_scalar", adds_bwd, .ew = &adds_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_NONE};
tg_tensor *tg_add_scalar(tg_tensor *a, double s)
{
    return scalar_forward(&adds_op, a, s, adds_fwd);
}

/* out = a * c:  da += dy * c */
SCALAR_FWD(muls_fwd, a * c)
SCALAR_BWD(muls_grad, dy * c)
static void muls_bwd(tg_entry *e) { scalar_grad(e, muls_grad); }
static const tg_ew_rule muls_op_rule = {
    TG_VM_MULK, 1, {{TG_VM_MULK, {TG_R_G, 0, 0}}}};
static const tg_op muls_op = {"mul_scalar", muls_bwd, .ew = &muls_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_NONE};
tg_tensor *tg_mul_scalar(tg_tensor *a, double s)
{
    return scalar_forward(&muls_op, a, s, muls_fwd);
}

/* out = a ** c:  da += dy * c * a^(c-1) */
SCALAR_FWD(pows_fwd, rpow(a, c))
SCALAR_BWD(pows_grad, c == 0 ? 0 : dy * c * rpow(a, c - 1))
static void pows_bwd(tg_entry *e) { scalar_grad(e, pows_grad); }
static const tg_ew_rule pows_op_rule = {
    TG_VM_POWK, 1, {{TG_VM_DPOWK, {TG_R_G, TG_R_A, 0}}}};
static const tg_op pows_op = {"pow_scalar", pows_bwd, .ew = &pows_op_rule, .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_pow_scalar(tg_tensor *a, double p)
{
    return scalar_forward(&pows_op, a, p, pows_fwd);
}
