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
 */
#ifndef TG_OPS_UNARY_H
#define TG_OPS_UNARY_H

#include "autograd/tape.h"

tg_tensor *tg_exp(tg_tensor *x);
tg_tensor *tg_log(tg_tensor *x);
tg_tensor *tg_tanh(tg_tensor *x);
tg_tensor *tg_sigmoid(tg_tensor *x);
tg_tensor *tg_relu(tg_tensor *x); /* gradient 0 at x = 0, as in PyTorch */
tg_tensor *tg_sqrt(tg_tensor *x);

#endif
