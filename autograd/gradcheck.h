/*
 * autograd/gradcheck.h - compare the tape's gradients with finite
 * differences.
 *
 * The tool every op in tapegrad is tested with, and the one to reach for
 * when writing a new cell: if your cell's gradients pass, the tape
 * differentiates it correctly. Build the library in double precision
 * (-DTG_DOUBLE, libtapegrad_f64.a) for tight tolerances; in float,
 * finite differences are only good to about 1e-2.
 *
 * How it works: f maps the inputs to any tensor y. The check picks a fixed
 * random weight R of y's shape and studies the scalar L = sum(y * R), so
 * every element of y matters. The analytic gradient comes from one
 * tg_backward_seed(y, R); the numeric one from central differences
 *     dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
 * with recording off. Each element's error is
 *     |analytic - numeric| / max(1, |analytic|, |numeric|)
 * (relative for large gradients, absolute for small ones).
 *
 * f is called many times; every call's temporaries are freed by rewinding
 * the tape to where the check began, so inputs made before the call
 * (temporary or persistent) stay valid. Inputs must require grad. On
 * return each input's ->grad holds the analytic gradient (persistent
 * inputs) or is NULL (temporary inputs).
 *
 *     static tg_tensor *f(tg_tensor *const *in, void *ud)
 *     { return tg_tanh(tg_matmul(in[0], in[1])); }
 *     ...
 *     tg_gradcheck_result r;
 *     int bad = tg_gradcheck(f, NULL, 2, (tg_tensor *[]){A, B}, 1e-6, 1e-6, &r);
 */
#ifndef TG_GRADCHECK_H
#define TG_GRADCHECK_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef tg_tensor *(*tg_gradcheck_fn)(tg_tensor *const *inputs, void *ud);

typedef struct tg_gradcheck_result {
    double max_err;      /* largest error as defined above               */
    double max_abs_err;  /* largest |analytic - numeric|                 */
    int worst_input;     /* where max_err was seen: input index ...      */
    int64_t worst_index; /* ... and row-major element index              */
    double analytic, numeric; /* the two values there                   */
    int64_t checked;     /* number of elements compared                  */
} tg_gradcheck_result;

/* Returns 0 if every element's error is at most tol, 1 if not, -1 if f
 * failed or an input is unusable (reported through tg_error). res may be
 * NULL. eps: the finite-difference step (1e-6 suits double). */
int tg_gradcheck(tg_gradcheck_fn f, void *ud, int n, tg_tensor *const *inputs,
                 double eps, double tol, tg_gradcheck_result *res);

/* Prints a result in one line, with the worst element. */
void tg_gradcheck_print(FILE *out, const char *label,
                        const tg_gradcheck_result *r, double tol);

#ifdef __cplusplus
}
#endif

#endif
