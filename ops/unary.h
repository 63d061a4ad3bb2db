/*
 * ops/unary.h - one-input elementwise functions.
 *
 * All are numerically stable over the whole float range: sigmoid(+-100)
 * is 1 or 0 without overflow, tanh(+-50) is +-1, log(0) is -inf (and its
 * gradient inf, as in PyTorch), sqrt(0)'s gradient is inf. Backward rules
 * reuse the output where they can (sigmoid' = y(1-y), tanh' = 1-y^2,
 * exp' = y, sqrt' = 1/(2y)), so nothing else is saved.
 *
 * Each returns a new temporary tensor of x's shape, recorded on the tape
 * when x requires grad; NULL when x is NULL.
 *
 *     tg_tensor *gate = tg_sigmoid(pre);   // an LSTM gate
 *
 * tg_step_ste is the one op here whose backward is NOT its derivative.
 * Forward: the hard step, 1 where x > 0 and 0 elsewhere (x = 0 gives 0; a
 * NaN passes through, as in relu). Its true derivative is 0 almost
 * everywhere, which would teach nothing, so backward uses the
 * "sigmoid straight-through" surrogate
 *     dx += dy * s (1 - s),   s = sigmoid(x)
 * i.e. the gradient of tg_sigmoid(x), the smooth gate the step is the
 * hard version of. (Chosen over the plain identity dx += dy because it
 * fades for |x| >> 1 - a gate that is firmly open or shut is not pushed
 * further - and because a hard-gated cell then gets exactly the backward
 * pass of its sigmoid-gated twin, so the two differ only in the forward.)
 * A finite-difference check does not apply; tests/grad_unary.c checks
 * the gradient equals tg_sigmoid's.
 *
 *     tg_tensor *m = tg_step_ste(a);       // a hard 0/1 gate
 */
#ifndef TG_OPS_UNARY_H
#define TG_OPS_UNARY_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

tg_tensor *tg_exp(tg_tensor *x);
tg_tensor *tg_log(tg_tensor *x);
tg_tensor *tg_tanh(tg_tensor *x);
tg_tensor *tg_sigmoid(tg_tensor *x);
tg_tensor *tg_relu(tg_tensor *x); /* gradient 0 at x = 0, as in PyTorch */
tg_tensor *tg_sqrt(tg_tensor *x);
/* log(1 + e^x), without overflow; its gradient is sigmoid(x) */
tg_tensor *tg_softplus(tg_tensor *x);
/* [x > 0] forward, sigmoid'(x) backward (straight-through, see above) */
tg_tensor *tg_step_ste(tg_tensor *x);

#ifdef __cplusplus
}
#endif

#endif
