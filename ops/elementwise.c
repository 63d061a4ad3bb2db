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

static tg_tensor *binary_forward(const char *op, tg_tensor *a, tg_tensor *b,
                                 tg_ew_inner fwd, tg_backward_fn bw)
{
    TG_PROPAGATE_NULL(a, b);
    int nd;
    int64_t shape[TG_MAX_DIMS], sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    if (tg_broadcast_shape(op, a, b, &nd, shape) < 0)
        return NULL;
    tg_tensor *out = tg_new_out(nd, shape);
    tg_broadcast_strides(a, nd, shape, sa);
    tg_broadcast_strides(b, nd, shape, sb);
    tg_real *base[] = {out->data, a->data, b->data};
    const int64_t *st[] = {out->stride, sa, sb};
    tg_ew_run(3, base, st, nd, shape, fwd, NULL);
    tg_record(op, bw, out, 2, (tg_tensor *[]){a, b});
    return out;
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
tg_tensor *tg_add(tg_tensor *a, tg_tensor *b)
{
    return binary_forward("add", a, b, add_fwd, add_bwd);
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
tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b)
{
    return binary_forward("sub", a, b, sub_fwd, sub_bwd);
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
tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b)
{
    return binary_forward("mul", a, b, mul_fwd, mul_bwd);
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
tg_tensor *tg_div(tg_tensor *a, tg_tensor *b)
{
    return binary_forward("div", a, b, div_fwd, div_bwd);
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
    /* d(a^b)/db = a^b * log(a); taken as 0 where a^b is 0 (a = 0, b > 0) */
    EW_GRAD(y == 0 ? 0 : dy * y * rlog(a));
}
/* out = a ** b:  da += dy * b * a^(b-1),  db += dy * out * log(a) */
static void pow_bwd(tg_entry *e)
{
    binary_grad(e, 0, pow_grad_a);
    binary_grad(e, 1, pow_grad_b);
}
tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b)
{
    return binary_forward("pow", a, b, pow_fwd, pow_bwd);
}

/* ---- one input and a constant: neg, add_scalar, mul_scalar, pow_scalar.
 * Operands: forward {out, a}, backward {dst, dy, a} (p[2] = a), with the
 * constant in args[0]. */

static tg_tensor *scalar_forward(const char *op, tg_tensor *a, double c,
                                 tg_ew_inner fwd, tg_backward_fn bw)
{
    TG_PROPAGATE_NULL(a);
    tg_tensor *out = tg_new_out(a->ndim, a->shape);
    tg_real *base[] = {out->data, a->data};
    const int64_t *st[] = {out->stride, a->stride};
    double args[1] = {c};
    tg_ew_run(2, base, st, a->ndim, a->shape, fwd, args);
    tg_entry *e = tg_record(op, bw, out, 1, &a);
    if (e)
        e->farg[0] = c;
    return out;
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
tg_tensor *tg_neg(tg_tensor *a)
{
    return scalar_forward("neg", a, 0, neg_fwd, neg_bwd);
}

/* out = a + c:  da += dy */
SCALAR_FWD(adds_fwd, a + c)
SCALAR_BWD(adds_grad, dy)
static void adds_bwd(tg_entry *e) { scalar_grad(e, adds_grad); }
tg_tensor *tg_add_scalar(tg_tensor *a, double s)
{
    return scalar_forward("add_scalar", a, s, adds_fwd, adds_bwd);
}

/* out = a * c:  da += dy * c */
SCALAR_FWD(muls_fwd, a * c)
SCALAR_BWD(muls_grad, dy * c)
static void muls_bwd(tg_entry *e) { scalar_grad(e, muls_grad); }
tg_tensor *tg_mul_scalar(tg_tensor *a, double s)
{
    return scalar_forward("mul_scalar", a, s, muls_fwd, muls_bwd);
}

/* out = a ** c:  da += dy * c * a^(c-1) */
SCALAR_FWD(pows_fwd, rpow(a, c))
SCALAR_BWD(pows_grad, c == 0 ? 0 : dy * c * rpow(a, c - 1))
static void pows_bwd(tg_entry *e) { scalar_grad(e, pows_grad); }
tg_tensor *tg_pow_scalar(tg_tensor *a, double p)
{
    return scalar_forward("pow_scalar", a, p, pows_fwd, pows_bwd);
}
