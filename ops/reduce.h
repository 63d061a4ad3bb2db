/*
 * ops/reduce.h - sums, means and maxima, over everything or one axis.
 *
 * Sums are computed in a fixed blocked order (tensor/parallel.h), so they
 * are the same bit for bit with any number of threads. The sum over all
 * elements accumulates in double, over one axis in tg_real.
 *
 * dim may be negative (-1 is the last axis). keepdim keeps the reduced
 * axis with size 1 (so the result broadcasts against the input).
 *
 *     tg_tensor *loss = tg_mean(tg_mul(d, d));     // 0-d tensor
 *     tg_tensor *row_max = tg_max_dim(x, -1, true);
 */
#ifndef TG_OPS_REDUCE_H
#define TG_OPS_REDUCE_H

#include "autograd/tape.h"

#include <stdbool.h>

tg_tensor *tg_sum(tg_tensor *x);  /* -> 0-d */
tg_tensor *tg_mean(tg_tensor *x); /* -> 0-d */
tg_tensor *tg_sum_dim(tg_tensor *x, int dim, bool keepdim);
tg_tensor *tg_mean_dim(tg_tensor *x, int dim, bool keepdim);
/* Maximum along dim. The gradient goes to the first maximal element of
 * each slice (PyTorch sends it to one element too). */
tg_tensor *tg_max_dim(tg_tensor *x, int dim, bool keepdim);

#endif
