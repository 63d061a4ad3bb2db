/*
 * nn/modules.c - Linear, Embedding, Dropout (see modules.h).
 */
#include "nn/modules.h"

#include <math.h>
#include <stdlib.h>

tg_linear_mod *tg_linear_new(int in_features, int out_features, bool bias,
                             struct tg_rng *rng)
{
    if (in_features < 1 || out_features < 1) {
        tg_error("linear_new", "sizes %d -> %d must be positive", in_features,
                 out_features);
        return NULL;
    }
    tg_linear_mod *m = tg_xcalloc(1, sizeof *m);
    m->in_features = in_features;
    m->out_features = out_features;
    /* PyTorch: kaiming_uniform_(a=sqrt(5)) for the weight, which is
     * U(-1/sqrt(in), 1/sqrt(in)), and the same bound for the bias */
    double k = 1.0 / sqrt((double)in_features);
    m->weight = tg_params_new(&m->params, "weight",
                              TG_SHAPE(out_features, in_features));
    tg_fill_uniform_(m->weight, rng, -k, k);
    if (bias) {
        m->bias = tg_params_new(&m->params, "bias", TG_SHAPE(out_features));
        tg_fill_uniform_(m->bias, rng, -k, k);
    }
    return m;
}

tg_tensor *tg_linear_forward(tg_linear_mod *m, tg_tensor *x)
{
    return tg_linear(x, m->weight, m->bias);
}

void tg_linear_free(tg_linear_mod *m)
{
    if (!m)
        return;
    tg_params_free(&m->params);
    free(m);
}

tg_embedding_mod *tg_embedding_new(int num_embeddings, int embedding_dim,
                                   struct tg_rng *rng)
{
    if (num_embeddings < 1 || embedding_dim < 1) {
        tg_error("embedding_new", "sizes %d x %d must be positive",
                 num_embeddings, embedding_dim);
        return NULL;
    }
    tg_embedding_mod *m = tg_xcalloc(1, sizeof *m);
    m->num_embeddings = num_embeddings;
    m->embedding_dim = embedding_dim;
    m->weight = tg_params_new(&m->params, "weight",
                              TG_SHAPE(num_embeddings, embedding_dim));
    tg_fill_normal_(m->weight, rng, 0, 1); /* PyTorch: N(0, 1) */
    return m;
}

tg_tensor *tg_embedding_forward(tg_embedding_mod *m, const int64_t *ids,
                                int ndim, const int64_t *shape)
{
    return tg_embedding(m->weight, ids, ndim, shape);
}

void tg_embedding_free(tg_embedding_mod *m)
{
    if (!m)
        return;
    tg_params_free(&m->params);
    free(m);
}

tg_tensor *tg_dropout_forward(const tg_dropout_mod *m, tg_tensor *x,
                              bool training, struct tg_rng *rng)
{
    return tg_dropout(x, m->p, training, rng);
}
