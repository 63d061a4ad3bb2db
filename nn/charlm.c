/*
 * nn/charlm.c - the character language model (see charlm.h).
 */
#include "nn/charlm.h"

#include <stdlib.h>

tg_charlm *tg_charlm_new(const tg_cell_type *cell, int vocab, int embed,
                         int hidden, int layers, double dropout,
                         struct tg_rng *rng)
{
    tg_charlm *m = tg_xcalloc(1, sizeof *m);
    m->vocab = vocab;
    m->embed = embed;
    m->hidden = hidden;
    m->layers = layers;
    m->dropout = dropout;
    /* created in PyTorch's order: embedding, rnn, decoder */
    m->embedding = tg_embedding_new(vocab, embed, rng);
    m->rnn = m->embedding ? tg_rnn_new(cell, embed, hidden, layers,
                                       layers > 1 ? dropout : 0.0, rng)
                          : NULL;
    m->decoder = m->rnn ? tg_linear_new(hidden, vocab, true, rng) : NULL;
    if (!m->decoder) {
        tg_charlm_free(m);
        return NULL;
    }
    m->dropout = dropout;
    tg_params_add_from(&m->params, "embedding.", &m->embedding->params);
    tg_params_add_from(&m->params, "rnn.", &m->rnn->params);
    tg_params_add_from(&m->params, "decoder.", &m->decoder->params);
    return m;
}

void tg_charlm_free(tg_charlm *m)
{
    if (!m)
        return;
    /* the model's list first: flattened (data-parallel training), it
     * holds the modules' tensors in its block (nn/params.h) */
    tg_params_free(&m->params);
    tg_embedding_free(m->embedding);
    tg_rnn_free(m->rnn);
    tg_linear_free(m->decoder);
    free(m);
}

tg_tensor *tg_charlm_forward(tg_charlm *m, const int64_t *tokens, int64_t T,
                             int64_t B, tg_tensor *const *state0,
                             bool training, struct tg_rng *rng,
                             tg_rnn_out *out)
{
    tg_tensor *e = tg_embedding_forward(m->embedding, tokens, TG_SHAPE(T, B));
    if (!e || tg_rnn_forward(m->rnn, e, state0, training, rng, out) < 0)
        return NULL;
    tg_tensor *y = tg_dropout(out->y, m->dropout, training, rng);
    return tg_linear_forward(m->decoder, y);
}
