/*
 * ops/elementwise.c - add, sub, mul, div, pow with broadcasting; neg and
 * the scalar forms.
 *
 * Each op is its rule and its descriptor, as in ops/unary.c: the rule
 * names the vector machine's code for the forward and one for each
 * input's derivative (ops/kernels/vm_codes.h writes each code's
 * expression once), and two shared functions run every op, forward
 * out = code(a, b; k) and backward dL/d(input) += dcode(sources), through
 * tg_ew_run_code (ops/common.c), which walks any shape and strides: a
 * broadcast input is read with stride 0. Where an input was broadcast,
 * its backward writes into a scratch buffer of the output's shape, which
 * tg_unbroadcast_add then sums into the input's gradient.
 */
#include "ops/elementwise.h"
#include "ops/internal.h"

/* ---- every elementwise op's forward and backward (ops/internal.h) ----- */

/* out = code(a, b) with NumPy broadcasting */
tg_tensor *tg_ew_binary(const tg_op *op, tg_tensor *a, tg_tensor *b)
{
    TG_OP_INPUTS(op->name, a, b);
    int nd;
    int64_t shape[TG_MAX_DIMS], sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    if (tg_broadcast_shape(op->name, a, b, &nd, shape) < 0)
        return NULL;
    tg_tensor *out = tg_new_out(nd, shape);
    tg_broadcast_strides(a, nd, shape, sa);
    tg_broadcast_strides(b, nd, shape, sb);
    tg_real *base[] = {out->data, a->data, b->data, b->data};
    const int64_t *st[] = {out->stride, sa, sb, sb};
    tg_ew_run_code(op->ew->code, 0, false, base, st, nd, shape);
    tg_record(op, out, 2, (tg_tensor *[]){a, b});
    return tg_op_result(out);
}

/* out = code(a; k), the constant k kept in the entry's farg[TG_EW_K] */
tg_tensor *tg_ew_unary(const tg_op *op, tg_tensor *a, double k)
{
    TG_OP_INPUTS(op->name, a);
    tg_tensor *out = tg_new_out(a->ndim, a->shape);
    tg_real *base[] = {out->data, a->data, a->data, a->data};
    const int64_t *st[] = {out->stride, a->stride, a->stride, a->stride};
    tg_ew_run_code(op->ew->code, k, false, base, st, a->ndim, a->shape);
    tg_entry *e = tg_record(op, out, 1, &a);
    if (e)
        e->farg[TG_EW_K] = k;
    return tg_op_result(out);
}

/* dL/d(each input) += unbroadcast(dcode(sources)), the sources taken
 * from g = dL/dy, a, b, y as the rule names them, all read in y's shape */
void tg_ew_backward(tg_entry *e)
{
    const tg_ew_rule *r = e->op->ew;
    tg_tensor *a = e->in[0], *b = r->nin > 1 ? e->in[1] : a, *y = e->out;
    int nd = y->ndim;
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    tg_broadcast_strides(a, nd, y->shape, sa);
    tg_broadcast_strides(b, nd, y->shape, sb);
    tg_real *src[4] = {[TG_R_G] = y->grad, [TG_R_A] = a->data,
                       [TG_R_B] = b->data, [TG_R_Y] = y->data};
    const int64_t *sst[4] = {[TG_R_G] = y->stride, [TG_R_A] = sa,
                             [TG_R_B] = sb, [TG_R_Y] = y->stride};
    for (int k = 0; k < r->nin; k++) {
        tg_tensor *x = e->in[k];
        if (!x->grad)
            continue;
        const tg_ew_deriv *d = &r->d[k];
        bool direct = tg_same_shape(x, y);
        tg_real *dst = direct ? x->grad : tg_scratch_zero(y->numel);
        tg_real *base[4] = {dst};
        const int64_t *st[4] = {y->stride};
        for (int j = 0; j < 3; j++) {
            base[1 + j] = src[d->src[j]];
            st[1 + j] = sst[d->src[j]];
        }
        tg_ew_run_code(d->code, e->farg[TG_EW_K], true, base, st, nd,
                       y->shape);
        if (!direct)
            tg_unbroadcast_add(x->grad, x->ndim, x->shape, dst, nd, y->shape);
    }
}

/* Each op: its rule (forward code; each input's derivative code and its
 * sources, from g, a, b, y) and its descriptor. */

/* ---- add ---- out = a + b:  da += dy,  db += dy */
static const tg_ew_rule add_op_rule = {
    TG_VM_ADD, 2, {{TG_VM_COPY, {TG_R_G, 0, 0}},
    {TG_VM_COPY, {TG_R_G, 0, 0}}}};
static const tg_op add_op = {"add", tg_ew_backward, .ew = &add_op_rule,
                             .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_NONE};
tg_tensor *tg_add(tg_tensor *a, tg_tensor *b)
{
    return tg_ew_binary(&add_op, a, b);
}

/* ---- sub ---- out = a - b:  da += dy,  db -= dy */
static const tg_ew_rule sub_op_rule = {
    TG_VM_SUB, 2, {{TG_VM_COPY, {TG_R_G, 0, 0}},
    {TG_VM_NEG, {TG_R_G, 0, 0}}}};
static const tg_op sub_op = {"sub", tg_ew_backward, .ew = &sub_op_rule,
                             .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_NONE};
tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b)
{
    return tg_ew_binary(&sub_op, a, b);
}

/* ---- mul ---- out = a * b:  da += dy * b,  db += dy * a */
static const tg_ew_rule mul_op_rule = {
    TG_VM_MUL, 2, {{TG_VM_MUL, {TG_R_G, TG_R_B, 0}},
    {TG_VM_MUL, {TG_R_G, TG_R_A, 0}}}};
static const tg_op mul_op = {"mul", tg_ew_backward, .ew = &mul_op_rule,
                             .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_IN(0) | TG_READS_IN(1)};
tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b)
{
    return tg_ew_binary(&mul_op, a, b);
}

/* ---- div ----
 * out = a / b:  da += dy / b,  db += -dy * out / b (d(a/b)/db = -a/b^2
 * = -y/b) */
static const tg_ew_rule div_op_rule = {
    TG_VM_DIV, 2, {{TG_VM_DIV, {TG_R_G, TG_R_B, 0}},
    {TG_VM_DDIVB, {TG_R_G, TG_R_Y, TG_R_B}}}};
static const tg_op div_op = {"div", tg_ew_backward, .ew = &div_op_rule,
                             .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_IN(1) | TG_READS_OUT};
tg_tensor *tg_div(tg_tensor *a, tg_tensor *b)
{
    return tg_ew_binary(&div_op, a, b);
}

/* ---- pow ----
 * out = a ** b:  da += dy * b * a^(b-1),  db += dy * out * log(a).
 * d(a^b)/da is written with pow, not y/a, so a = 0 works. d(a^b)/db is
 * taken as 0 where a = 0, as PyTorch does for b >= 0 (0^0 = 1 would
 * otherwise give 1 * log 0 = -inf; for b < 0 PyTorch's inf * log 0 is
 * no gradient either). */
static const tg_ew_rule pow_op_rule = {
    TG_VM_POW, 2, {{TG_VM_DPOWA, {TG_R_G, TG_R_A, TG_R_B}},
    {TG_VM_DPOWB, {TG_R_G, TG_R_Y, TG_R_A}}}};
static const tg_op pow_op = {"pow", tg_ew_backward, .ew = &pow_op_rule,
                             .jvp = tg_jvp_elementwise};
tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b)
{
    return tg_ew_binary(&pow_op, a, b);
}

/* ---- one input and a constant k: neg, add_scalar, mul_scalar,
 * pow_scalar ---- */

/* out = -a:  da -= dy */
static const tg_ew_rule neg_op_rule = {
    TG_VM_NEG, 1, {{TG_VM_NEG, {TG_R_G, 0, 0}}}};
static const tg_op neg_op = {"neg", tg_ew_backward, .ew = &neg_op_rule,
                             .jvp = tg_jvp_elementwise,
                             .reads = TG_READS_NONE};
tg_tensor *tg_neg(tg_tensor *a)
{
    return tg_ew_unary(&neg_op, a, 0);
}

/* out = a + k:  da += dy */
static const tg_ew_rule adds_op_rule = {
    TG_VM_ADDK, 1, {{TG_VM_COPY, {TG_R_G, 0, 0}}}};
static const tg_op adds_op = {"add_scalar", tg_ew_backward, .ew = &adds_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_NONE};
tg_tensor *tg_add_scalar(tg_tensor *a, double s)
{
    return tg_ew_unary(&adds_op, a, s);
}

/* out = a * k:  da += dy * k */
static const tg_ew_rule muls_op_rule = {
    TG_VM_MULK, 1, {{TG_VM_MULK, {TG_R_G, 0, 0}}}};
static const tg_op muls_op = {"mul_scalar", tg_ew_backward, .ew = &muls_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_NONE};
tg_tensor *tg_mul_scalar(tg_tensor *a, double s)
{
    return tg_ew_unary(&muls_op, a, s);
}

/* out = a ** k:  da += dy * k * a^(k-1) */
static const tg_ew_rule pows_op_rule = {
    TG_VM_POWK, 1, {{TG_VM_DPOWK, {TG_R_G, TG_R_A, 0}}}};
static const tg_op pows_op = {"pow_scalar", tg_ew_backward, .ew = &pows_op_rule,
                              .jvp = tg_jvp_elementwise,
                              .reads = TG_READS_IN(0)};
tg_tensor *tg_pow_scalar(tg_tensor *a, double p)
{
    return tg_ew_unary(&pows_op, a, p);
}
