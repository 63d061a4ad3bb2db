/*
 * ops/elementwise.h - two-input elementwise ops with NumPy broadcasting,
 * and their scalar forms.
 *
 * Broadcasting lines shapes up from the right; a dimension of size 1 (or a
 * missing one) is stretched to match the other: [B, H] + [H] adds a bias
 * to every row. Backward sums the gradient back over stretched dimensions
 * (tg_unbroadcast_add in ops/common.c), so the bias receives the sum over
 * the batch.
 *
 * Every function returns a new temporary tensor (see tensor/tensor.h for
 * its lifetime), recorded on the tape when an input requires grad; NULL
 * after reporting an error (shapes that do not broadcast), or when an input
 * is NULL.
 *
 *     tg_tensor *h = tg_add(tg_mul(a, x), b);   // a*x + b, any broadcast
 */
#ifndef TG_OPS_ELEMENTWISE_H
#define TG_OPS_ELEMENTWISE_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

tg_tensor *tg_add(tg_tensor *a, tg_tensor *b); /* a + b */
tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b); /* a - b */
tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b); /* a * b */
tg_tensor *tg_div(tg_tensor *a, tg_tensor *b); /* a / b */
/* a ** b elementwise; the gradient with respect to b needs a > 0. */
tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b);
tg_tensor *tg_neg(tg_tensor *a);                   /* -a      */
tg_tensor *tg_add_scalar(tg_tensor *a, double s);  /* a + s   */
tg_tensor *tg_mul_scalar(tg_tensor *a, double s);  /* a * s   */
tg_tensor *tg_pow_scalar(tg_tensor *a, double p);  /* a ** p  */

#ifdef __cplusplus
}
#endif

#endif
