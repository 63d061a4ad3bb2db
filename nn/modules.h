/*
 * nn/modules.h - Linear, Embedding and Dropout layers: parameters owned by
 * the module, initialised like PyTorch's, and a forward made of one op.
 *
 *   Linear(in, out)     weight [out, in], bias [out]; both U(-1/sqrt(in), 1/sqrt(in))
 *   Embedding(V, E)     weight [V, E] ~ N(0, 1)
 *   Dropout(p)          no parameters; zeroes with probability p when training
 *
 *     tg_linear_mod *dec = tg_linear_new(H, V, true, NULL);
 *     tg_tensor *logits = tg_linear_forward(dec, h);   // [..., V]
 *     tg_linear_free(dec);
 */
#ifndef TG_NN_MODULES_H
#define TG_NN_MODULES_H

#include "nn/params.h"
#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_linear_mod {
    int in_features, out_features;
    tg_tensor *weight, *bias; /* bias NULL when made without one */
    tg_params params;         /* "weight", "bias" */
} tg_linear_mod;

tg_linear_mod *tg_linear_new(int in_features, int out_features, bool bias,
                             struct tg_rng *rng);
tg_tensor *tg_linear_forward(tg_linear_mod *m, tg_tensor *x);
void tg_linear_free(tg_linear_mod *m);

typedef struct tg_embedding_mod {
    int num_embeddings, embedding_dim;
    tg_tensor *weight; /* [V, E] */
    tg_params params;  /* "weight" */
} tg_embedding_mod;

tg_embedding_mod *tg_embedding_new(int num_embeddings, int embedding_dim,
                                   struct tg_rng *rng);
/* ids of the given shape -> [shape..., E] */
tg_tensor *tg_embedding_forward(tg_embedding_mod *m, const int64_t *ids,
                                int ndim, const int64_t *shape);
void tg_embedding_free(tg_embedding_mod *m);

typedef struct tg_dropout_mod {
    double p;
} tg_dropout_mod;

tg_tensor *tg_dropout_forward(const tg_dropout_mod *m, tg_tensor *x,
                              bool training, struct tg_rng *rng);

#ifdef __cplusplus
}
#endif

#endif
