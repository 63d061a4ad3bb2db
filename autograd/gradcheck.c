/*
 * autograd/gradcheck.c - finite-difference gradient checks (see
 * gradcheck.h for the method).
 */
#include "autograd/gradcheck.h"
#include "tensor/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* memory offset of row-major element i */
static int64_t offset_of(const tg_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return off;
}

/* L = sum(y * R), accumulated in double in row-major order */
static double weighted_sum(const tg_tensor *y, const double *R)
{
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++)
        s += (double)y->data[offset_of(y, i)] * R[i];
    return s;
}

static int eval(tg_gradcheck_fn f, void *ud, tg_tensor *const *in,
                const double *R, int64_t numel, double *L)
{
    tg_tensor *y = f(in, ud);
    if (!y || y->numel != numel) {
        tg_error("gradcheck", "the function %s", y ? "returned a tensor of "
                 "another size on a later call" : "returned NULL");
        return -1;
    }
    *L = weighted_sum(y, R);
    return 0;
}

/* 0, or -1 after reporting why the inputs cannot be checked */
static int check_inputs(tg_gradcheck_fn f, int n, tg_tensor *const *inputs)
{
    if (n < 1 || !inputs || !f) {
        tg_error("gradcheck", "needs a function and at least one input "
                 "(got %d)", n);
        return -1;
    }
    for (int k = 0; k < n; k++)
        if (!inputs[k] || !(inputs[k]->flags & TG_REQUIRES_GRAD) ||
            inputs[k]->entry >= 0) {
            tg_error("gradcheck", "input %d is %s", k,
                     !inputs[k] ? "NULL"
                     : inputs[k]->entry >= 0 ? "the output of an op; inputs "
                       "must be leaves" : "not marked with tg_requires_grad");
            return -1;
        }
    return 0;
}

/* Analytic: one backward of y = f(inputs) with a random seed R, so that
 * every input's gradient is that of L = sum(R * y). Fills R (*numel
 * numbers, malloc'ed) and analytic[k] (inputs[k]'s numel each); 0, or -1
 * after an error. */
static int analytic_pass(tg_gradcheck_fn f, void *ud, int n,
                         tg_tensor *const *inputs, double **R, int64_t *numel,
                         double **analytic)
{
    tg_tensor *y = f(inputs, ud);
    if (!y)
        return -1;
    if (!(y->flags & TG_REQUIRES_GRAD)) {
        tg_error("gradcheck", "the function's output does not depend on any "
                 "input");
        return -1;
    }
    *numel = y->numel;
    *R = malloc((size_t)(*numel ? *numel : 1) * sizeof **R);
    tg_rng rng;
    tg_rng_seed(&rng, 1234);
    tg_tensor *seed = tg_empty(y->ndim, y->shape);
    for (int64_t i = 0; i < *numel; i++) {
        (*R)[i] = tg_rng_uniform(&rng) * 2 - 1;
        seed->data[i] = (tg_real)(*R)[i];
    }
    if (tg_backward_seed(y, seed) < 0)
        return -1;
    for (int k = 0; k < n; k++) {
        int64_t m = inputs[k]->numel;
        analytic[k] = calloc((size_t)(m ? m : 1), sizeof(double));
        for (int64_t i = 0; inputs[k]->grad && i < m; i++)
            analytic[k][i] = (double)inputs[k]->grad[i];
        if (!(inputs[k]->flags & TG_PERSISTENT))
            inputs[k]->grad = NULL;
    }
    return 0;
}

/* Numeric: every element of every input moved by +-eps in turn, L by
 * central differences, recording off; each against its analytic value,
 * the worst kept in *r. 0, or -1 after an error. */
static int numeric_pass(tg_gradcheck_fn f, void *ud, int n,
                        tg_tensor *const *inputs, const double *R,
                        int64_t numel, double *const *analytic, double eps,
                        tg_tape_mark mark, tg_gradcheck_result *r)
{
    for (int k = 0; k < n; k++) {
        tg_tensor *x = inputs[k];
        for (int64_t i = 0; i < x->numel; i++) {
            tg_real *px = &x->data[offset_of(x, i)];
            tg_real orig = *px;
            double lp, lm;
            *px = (tg_real)((double)orig + eps);
            int e1 = eval(f, ud, inputs, R, numel, &lp);
            tg_tape_rewind(mark);
            *px = (tg_real)((double)orig - eps);
            int e2 = eval(f, ud, inputs, R, numel, &lm);
            tg_tape_rewind(mark);
            *px = orig;
            if (e1 < 0 || e2 < 0)
                return -1;
            double num = (lp - lm) / (2 * eps), an = analytic[k][i];
            double abs_err = fabs(an - num);
            double scale = fmax(1.0, fmax(fabs(an), fabs(num)));
            double err = abs_err / scale;
            /* NaN compares false, so a NaN error counts as the worst */
            if (r->worst_input < 0 || !(err <= r->max_err)) {
                r->max_err = err;
                r->worst_input = k;
                r->worst_index = i;
                r->analytic = an;
                r->numeric = num;
            }
            if (!(abs_err <= r->max_abs_err))
                r->max_abs_err = abs_err;
            r->checked++;
        }
    }
    return 0;
}

int tg_gradcheck(tg_gradcheck_fn f, void *ud, int n, tg_tensor *const *inputs,
                 double eps, double tol, tg_gradcheck_result *res)
{
    tg_gradcheck_result r;
    memset(&r, 0, sizeof r);
    r.worst_input = -1;
    if (check_inputs(f, n, inputs) < 0)
        return -1;
    /* The differences below write the inputs' numbers in place and put
     * them back, without counting the changes (tg_bump_version): a
     * caller's recorded ops that read an input stay valid. So nothing may
     * keep a copy of them meanwhile: inference mode off. */
    bool inference = tg_set_inference_mode(false);
    bool was = tg_set_grad_enabled(true);
    tg_tape_mark mark = tg_tape_mark_get();
    for (int k = 0; k < n; k++)
        if (inputs[k]->flags & TG_PERSISTENT)
            tg_zero_grad(inputs[k]);
        else
            inputs[k]->grad = NULL;
    int rc = -1;
    int64_t numel = 0;
    double *R = NULL, **analytic = calloc((size_t)n, sizeof *analytic);
    if (analytic_pass(f, ud, n, inputs, &R, &numel, analytic) < 0)
        goto done;
    tg_tape_rewind(mark);
    tg_set_grad_enabled(false);
    if (numeric_pass(f, ud, n, inputs, R, numel, analytic, eps, mark, &r) < 0)
        goto done;
    /* leave the analytic gradient in persistent inputs */
    for (int k = 0; k < n; k++)
        if (inputs[k]->flags & TG_PERSISTENT)
            for (int64_t i = 0; i < inputs[k]->numel; i++)
                inputs[k]->grad[i] = (tg_real)analytic[k][i];
    rc = (r.max_err <= tol) ? 0 : 1;
done:
    tg_tape_rewind(mark);
    tg_set_grad_enabled(was);
    tg_set_inference_mode(inference);
    for (int k = 0; k < n; k++) {
        free(analytic[k]);
        if (!(inputs[k]->flags & TG_PERSISTENT))
            inputs[k]->grad = NULL;
    }
    free(analytic);
    free(R);
    if (res)
        *res = r;
    return rc;
}

void tg_gradcheck_print(FILE *out, const char *label,
                        const tg_gradcheck_result *r, double tol)
{
    fprintf(out, "gradcheck %-24s %s  max err %.3g (tol %.1g), %lld elements;"
            " worst: input %d element %lld analytic %.9g numeric %.9g\n",
            label, r->max_err <= tol ? "ok  " : "FAIL", r->max_err, tol,
            (long long)r->checked, r->worst_input, (long long)r->worst_index,
            r->analytic, r->numeric);
}
