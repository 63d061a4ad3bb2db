/*
 * nn/charlm.h - a character language model: Embedding -> recurrent layers
 * -> Dropout -> Linear decoder, exactly the model of
 * scripts/train_torch_charlm.py (and PyTorch's word_language_model
 * example), with the same parameter names:
 *     embedding.weight  rnn.weight_ih_l0 ... rnn.bias_hh_l<L-1>
 *     decoder.weight    decoder.bias
 *
 *     tg_charlm *m = tg_charlm_new(&tg_lstm_cell, V, 64, 128, 2, 0.0, NULL);
 *     tg_rnn_out out;
 *     tg_tensor *logits = tg_charlm_forward(m, tokens, T, B, NULL, true,
 *                                           NULL, &out);   // [T, B, V]
 *     tg_tensor *loss = tg_cross_entropy(logits, targets, TG_MEAN);
 */
#ifndef TG_NN_CHARLM_H
#define TG_NN_CHARLM_H

#include "nn/modules.h"
#include "nn/rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_charlm {
    int vocab, embed, hidden, layers;
    double dropout;
    tg_embedding_mod *embedding;
    tg_rnn *rnn;
    tg_linear_mod *decoder;
    tg_params params; /* every parameter under its PyTorch name (borrowed) */
} tg_charlm;

tg_charlm *tg_charlm_new(const tg_cell_type *cell, int vocab, int embed,
                         int hidden, int layers, double dropout,
                         struct tg_rng *rng);
void tg_charlm_free(tg_charlm *m);

/* tokens [T, B] (row-major, ids in 0..vocab-1) -> logits [T, B, vocab];
 * state0 as for tg_rnn_forward. NULL after an error. */
tg_tensor *tg_charlm_forward(tg_charlm *m, const int64_t *tokens, int64_t T,
                             int64_t B, tg_tensor *const *state0,
                             bool training, struct tg_rng *rng,
                             tg_rnn_out *out);

#ifdef __cplusplus
}
#endif

#endif
