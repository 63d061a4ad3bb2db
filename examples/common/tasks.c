/*
 * examples/common/tasks.c - the adding problem and the copy task (see
 * tasks.h).
 */
#include "examples/common/tasks.h"

#include "nn/optim.h"
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>

void task_adding_batch(int T, int B, tg_rng *rng, tg_tensor **x,
                       tg_tensor **target)
{
    *x = tg_zeros(TG_SHAPE(T, B, 2));
    *target = tg_zeros(TG_SHAPE(B, 1));
    tg_real *d = (*x)->data;
    int half = T / 2;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++)
            d[((int64_t)t * B + b) * 2] = (tg_real)tg_rng_uniform(rng);
        int p = (int)tg_rng_below(rng, (uint64_t)half);              /* first half */
        int q = half + (int)tg_rng_below(rng, (uint64_t)(T - half)); /* second */
        d[((int64_t)p * B + b) * 2 + 1] = 1;
        d[((int64_t)q * B + b) * 2 + 1] = 1;
        (*target)->data[b] = d[((int64_t)p * B + b) * 2] + d[((int64_t)q * B + b) * 2];
    }
}

void task_copy_batch(int T, int B, tg_rng *rng, tg_tensor **x,
                     int64_t *targets)
{
    int L = T + 2 * TASK_COPY_K;
    *x = tg_zeros(TG_SHAPE(L, B, TASK_COPY_IN));
    tg_real *d = (*x)->data;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++) {
            int id;
            if (t < TASK_COPY_K) {
                id = (int)tg_rng_below(rng, TASK_COPY_A);
                targets[(int64_t)t * B + b] = id;
            } else /* delimiter : blank */
                id = t == TASK_COPY_K + T - 1 ? TASK_COPY_A + 1 : TASK_COPY_A;
            d[((int64_t)t * B + b) * TASK_COPY_IN + id] = 1;
        }
}

void task_val_batch(task_kind k, int T, int B, tg_tensor **x,
                    tg_tensor **target, int64_t *ids)
{
    tg_rng rng;
    tg_rng_seed(&rng, 777000 + (uint64_t)T * 2 + (uint64_t)k);
    if (k == TASK_ADDING)
        task_adding_batch(T, B, &rng, x, target);
    else
        task_copy_batch(T, B, &rng, x, ids);
}

bool task_passes(task_kind k, double metric)
{
    return k == TASK_ADDING ? metric < TASK_ADDING_SOLVED
                            : metric >= TASK_COPY_SOLVED;
}

void task_model_init(task_model *m, task_kind k, const tg_cell_type *type,
                     int H, double forget_bias, tg_rng *rng)
{
    int in = k == TASK_ADDING ? 2 : TASK_COPY_IN;
    int out = k == TASK_ADDING ? 1 : TASK_COPY_A;
    *m = (task_model){.rnn = tg_rnn_new(type, in, H, 1, 0.0, rng)};
    if (type == &tg_lstm_cell)
        tg_cell_set_forget_bias(m->rnn->layers[0], forget_bias);
    tg_params_add_from(&m->ps, "rnn.", &m->rnn->params); /* borrowed */
    m->w = tg_params_new(&m->ps, "readout.weight", TG_SHAPE(H, out)); /* owned */
    m->b = tg_params_new(&m->ps, "readout.bias", TG_SHAPE(out));
    double r = 1 / sqrt((double)H); /* as torch.nn.Linear */
    tg_fill_uniform_(m->w, rng, -r, r);
    tg_fill_uniform_(m->b, rng, -r, r);
}

void task_model_free(task_model *m)
{
    tg_params_free(&m->ps); /* frees the readout too */
    tg_rnn_free(m->rnn);
}

tg_tensor *task_outputs(task_model *m, task_kind k, tg_tensor *x)
{
    tg_rnn_out out;
    if (tg_rnn_forward(m->rnn, x, NULL, true, NULL, &out))
        return NULL;
    m->hidden = out.y;
    if (k == TASK_ADDING)
        return tg_add(tg_matmul(out.h[out.T - 1], m->w), m->b);
    /* the last K steps' h stacked: [K, B, H] -> [K*B, H] -> logits [K*B, 8] */
    int64_t B = x->shape[1];
    tg_tensor *h = tg_reshape(tg_stack(out.h + out.T - TASK_COPY_K,
                                       TASK_COPY_K, 0),
                              TG_SHAPE(TASK_COPY_K * B, m->w->shape[0]));
    return tg_add(tg_matmul(h, m->w), m->b);
}

tg_tensor *task_loss_of(task_kind k, tg_tensor *z, tg_tensor *target,
                        const int64_t *ids, int64_t *correct)
{
    if (!z)
        return NULL;
    if (k == TASK_ADDING)
        return tg_mse(z, target, TG_MEAN);
    if (correct) {
        *correct = 0;
        for (int64_t r = 0; r < z->shape[0]; r++) {
            const tg_real *l = z->data + r * TASK_COPY_A;
            int best = 0;
            for (int c = 1; c < TASK_COPY_A; c++)
                if (l[c] > l[best])
                    best = c;
            *correct += best == ids[r];
        }
    }
    return tg_cross_entropy(z, ids, TG_MEAN);
}

double task_validate(task_model *m, task_kind k, int T, int val_B,
                     int64_t *ids)
{
    bool was = tg_set_grad_enabled(false);
    tg_tensor *x, *target = NULL;
    task_val_batch(k, T, val_B, &x, &target, ids);
    int64_t correct = 0;
    tg_tensor *loss = task_loss_of(k, task_outputs(m, k, x), target, ids,
                                   &correct);
    double v = !loss ? (double)NAN
               : k == TASK_ADDING ? (double)tg_item(loss)
                                  : (double)correct / (double)(TASK_COPY_K * val_B);
    tg_tape_reset(); /* frees the temporaries */
    tg_set_grad_enabled(was);
    return v;
}

double task_train_step(task_model *m, tg_optim *opt, task_kind k,
                       tg_tensor *x, tg_tensor *target, const int64_t *ids,
                       double clip)
{
    tg_optim_zero_grad(opt);
    tg_tensor *loss = task_loss_of(k, task_outputs(m, k, x), target, ids,
                                   NULL);
    if (!loss || tg_backward(loss) < 0) {
        tg_tape_reset();
        return (double)NAN;
    }
    double lv = (double)tg_item(loss);
    if (clip > 0)
        tg_clip_grad_norm(&m->ps, clip);
    tg_optim_step(opt);
    tg_tape_reset();
    return lv;
}
