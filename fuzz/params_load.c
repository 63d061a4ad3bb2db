/*
 * fuzz/params_load.c - a parsed safetensors file loaded into models:
 * tg_st_parse, then tg_params_load (nn/params.c) into the character
 * models of the PyTorch fixtures in tests/fixtures (their seeds), and one
 * step of the model when a load succeeds. Loading is strict and all or
 * nothing: whatever the file holds, a load either fails with a message or
 * leaves finite numbers of the right shapes, which a forward pass uses.
 */
#include "fuzz/fuzz.h"
#include "autograd/tape.h"
#include "nn/charlm.h"
#include "nn/params.h"
#include "tensor/safetensors.h"

#include <math.h>
#include <string.h>

/* the models of tests/fixtures/charlm_*.safetensors */
static const struct {
    const tg_cell_type *cell;
    int V, E, H, L;
} kinds[] = {
    {&tg_lstm_cell, 11, 5, 6, 2},    {&tg_lstm_cell, 13, 7, 10, 3},
    {&tg_gru_cell, 11, 5, 6, 1},     {&tg_gru_cell, 17, 6, 8, 2},
    {&tg_rnn_tanh_cell, 11, 5, 6, 1}, {&tg_rnn_tanh_cell, 9, 4, 5, 3},
};
enum { NKINDS = sizeof kinds / sizeof *kinds };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tg_charlm *models[NKINDS];
    fuzz_capture_errors();
    if (!models[0])
        for (int k = 0; k < NKINDS; k++)
            models[k] = tg_charlm_new(kinds[k].cell, kinds[k].V, kinds[k].E,
                                      kinds[k].H, kinds[k].L, 0.0, NULL);
    char err[512];
    tg_st_file *f = tg_st_parse(data, size, "fuzz", err, sizeof err);
    if (!f)
        return 0;
    for (int k = 0; k < NKINDS; k++) {
        tg_charlm *m = models[k];
        err[0] = 0;
        if (tg_params_load(&m->params, f, "", err, sizeof err) < 0) {
            if (!err[0])
                abort(); /* a refusal always says why */
            continue;
        }
        for (int i = 0; i < tg_params_count(&m->params); i++) {
            const tg_tensor *t = tg_params_at(&m->params, i)->tensor;
            for (int64_t j = 0; j < t->numel; j++)
                if (!isfinite(t->data[j]))
                    abort(); /* loads refuse NaN and infinities */
        }
        const int64_t tokens[2] = {0, (int64_t)kinds[k].V - 1};
        tg_rnn_out out;
        tg_tensor *logits = tg_charlm_forward(m, tokens, 2, 1, NULL, false,
                                              NULL, &out);
        if (!logits)
            abort(); /* a model that loaded runs */
        tg_tape_reset();
    }
    tg_st_free(f);
    return 0;
}
