/*
 * ops/reduce.h - sums, means and maxima, over everything or one axis.
 *
 * Sums are computed in a fixed blocked order (tensor/parallel.h), so they
 * are the same bit for bit with any number of threads. The sum over all
 * elements accumulates in double, over one axis in tg_real.
 *
 * dim may be negative (-1 is the last axis). keepdim keeps the reduced
 * axis with size 1 (so the result broadcasts against the input). A 0-d
 * tensor accepts dim 0 or -1 and gives a 0-d result. Inputs may be
 * strided views (transpose, slice). Each returns a new temporary tensor,
 * recorded on the tape when x requires grad; NULL when x is NULL or after
 * reporting a bad dim. Empty inputs: sums are 0, means NaN (0/0), and
 * max_dim over a size-0 axis is an error.
 *
 *     tg_tensor *loss = tg_mean(tg_mul(d, d));     // 0-d tensor
 *     tg_tensor *row_max = tg_max_dim(x, -1, true);
 */
#ifndef TG_OPS_REDUCE_H
#define TG_OPS_REDUCE_H

#include "autograd/tape.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

tg_tensor *tg_sum(tg_tensor *x);  /* -> 0-d */
tg_tensor *tg_mean(tg_tensor *x); /* -> 0-d */
tg_tensor *tg_sum_dim(tg_tensor *x, int dim, bool keepdim);
tg_tensor *tg_mean_dim(tg_tensor *x, int dim, bool keepdim);
/* Maximum along dim. The gradient goes to the first maximal element of
 * each slice (PyTorch sends it to one element too). A NaN in a slice
 * makes its maximum NaN (and takes the gradient). */
tg_tensor *tg_max_dim(tg_tensor *x, int dim, bool keepdim);

#ifdef __cplusplus
}
#endif

#endif
