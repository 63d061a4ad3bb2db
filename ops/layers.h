/*
 * ops/layers.h - embedding lookup and dropout: the two ops of a language
 * model that are neither arithmetic nor shape.
 *
 *     tg_tensor *e = tg_embedding(W, ids, TG_SHAPE(T, B));  // [T, B, E]
 *     e = tg_dropout(e, 0.2, training, NULL);
 */
#ifndef TG_OPS_LAYERS_H
#define TG_OPS_LAYERS_H

#include "autograd/tape.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tg_rng;

/* Rows of weight [V, E] picked by ids (shape given by ndim/shape, every id
 * in 0..V-1; read at call time and copied) -> [shape..., E]. Backward
 * scatter-adds into the picked rows, so a repeated id accumulates. */
tg_tensor *tg_embedding(tg_tensor *weight, const int64_t *ids, int ndim,
                        const int64_t *shape);

/* Zeroes each element with probability p and scales the rest by 1/(1-p)
 * (inverted dropout), drawing from rng (NULL: the global generator) in
 * row-major order on one thread, so it is reproducible. When !training or
 * p == 0 it returns x itself. 0 <= p < 1. */
tg_tensor *tg_dropout(tg_tensor *x, double p, bool training,
                      struct tg_rng *rng);

#ifdef __cplusplus
}
#endif

#endif
