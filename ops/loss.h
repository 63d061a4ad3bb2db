/*
 * ops/loss.h - softmax, log-softmax and the losses built for training.
 *
 * tg_cross_entropy is fused: it computes log-softmax and picks the target
 * in one pass with the max subtracted (stable for any logits), and its
 * backward is (softmax - onehot) / N, never forming a one-hot tensor.
 *
 *     // logits [N, V], targets[N] in 0..V-1
 *     tg_tensor *loss = tg_cross_entropy(logits, targets, TG_MEAN);
 */
#ifndef TG_OPS_LOSS_H
#define TG_OPS_LOSS_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_reduction { TG_MEAN, TG_SUM } tg_reduction;

/* Along dim (negative counts from the end). */
tg_tensor *tg_softmax(tg_tensor *x, int dim);
tg_tensor *tg_log_softmax(tg_tensor *x, int dim);
/* logits [..., C] (class scores in the last axis); targets has one id in
 * 0..C-1 per row (numel / C of them), read at call time and copied.
 * Returns a 0-d tensor: the mean (or sum) over rows of -log softmax[target].
 * An id out of range is reported with its position. */
tg_tensor *tg_cross_entropy(tg_tensor *logits, const int64_t *targets,
                            tg_reduction reduction);
/* mean (or sum) of (pred - target)^2; shapes must be equal. */
tg_tensor *tg_mse(tg_tensor *pred, tg_tensor *target, tg_reduction reduction);

#ifdef __cplusplus
}
#endif

#endif
