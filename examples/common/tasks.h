/*
 * examples/common/tasks.h - the long-memory tasks the examples train on,
 * defined once: the adding problem and the copy task (data, the model that
 * reads them, what "solved" means, the fixed validation batches).
 *
 * The adding problem (Hochreiter & Schmidhuber 1997): x [T, B, 2]; channel
 * 0 holds values uniform in [0, 1), channel 1 is a marker with exactly two
 * 1s, one at a uniform step of the first half (t < T/2) and one at a
 * uniform step of the second half. The target is the sum of the two marked
 * values, read by a linear layer from h at the last step; loss = MSE.
 * Predicting the mean 1 scores 1/6 ~ 0.167. Solved: validation MSE below
 * TASK_ADDING_SOLVED.
 *
 * The copy task (after Arjovsky, Shah & Bengio 2016, loss on the recall
 * steps only): K = 5 symbols of an alphabet of 8, T - 1 blanks, a
 * delimiter, K blanks during which the symbols must be output in order:
 * T + 2K steps. One-hot inputs over 10 channels; a linear layer reads
 * logits from h at each of the last K steps; loss = cross-entropy, mean
 * over the K steps and the batch (chance log 8 = 2.08). Solved: validation
 * accuracy per symbol at least TASK_COPY_SOLVED.
 */
#ifndef EXAMPLES_COMMON_TASKS_H
#define EXAMPLES_COMMON_TASKS_H

#include "nn/rnn.h"
#include "tensor/rng.h"

#define TASK_COPY_K 5                 /* symbols to remember */
#define TASK_COPY_A 8                 /* alphabet */
#define TASK_COPY_IN (TASK_COPY_A + 2) /* one-hot: symbols, blank, delimiter */
#define TASK_ADDING_SOLVED 0.01       /* validation MSE below this */
#define TASK_COPY_SOLVED 0.95         /* validation accuracy at least this */

typedef enum task_kind { TASK_ADDING, TASK_COPY } task_kind;

/* One batch of the adding problem: x [T, B, 2], target [B, 1]. */
void task_adding_batch(int T, int B, tg_rng *rng, tg_tensor **x,
                       tg_tensor **target);
/* One batch of the copy task: x [T + 2K, B, 10] one-hot, and the K*B
 * symbols to recall (row k*B + b = symbol k of sequence b). */
void task_copy_batch(int T, int B, tg_rng *rng, tg_tensor **x,
                     int64_t *targets);
/* The validation batch of a task and length: the same for every run. */
void task_val_batch(task_kind k, int T, int B, tg_tensor **x,
                    tg_tensor **target, int64_t *ids);
/* metric passes: MSE < 0.01 (adding), accuracy >= 0.95 (copy) */
bool task_passes(task_kind k, double metric);

/* One recurrent layer and a linear readout. */
typedef struct task_model {
    tg_rnn *rnn;
    tg_tensor *w, *b;  /* readout: [H, out], [out] */
    tg_params ps;      /* rnn.* then readout.* */
    tg_tensor *hidden; /* the states [T, B, H] of the last task_outputs */
} task_model;

/* The layer's cell type, hidden size, the LSTM's forget-gate bias (other
 * cells ignore it); the readout initialised as torch.nn.Linear. */
void task_model_init(task_model *m, task_kind k, const tg_cell_type *type,
                     int H, double forget_bias, tg_rng *rng);
void task_model_free(task_model *m);
/* The model's outputs: predictions [B, 1] (adding) or logits [K*B, 8]
 * (copy). NULL after an error. */
tg_tensor *task_outputs(task_model *m, task_kind k, tg_tensor *x);
/* The loss of outputs z: MSE against target (adding), cross-entropy
 * against ids (copy); for the copy task *correct (if not NULL) receives
 * how many symbols the argmax gets right. */
tg_tensor *task_loss_of(task_kind k, tg_tensor *z, tg_tensor *target,
                        const int64_t *ids, int64_t *correct);
/* One training step on the batch (x, target or ids): zero the gradients,
 * the loss, backward, clip the global gradient norm at clip (<= 0: no
 * clipping), the optimizer's step, tape reset. The loss before the step;
 * NAN after an error (reported) or for a loss that is not finite. */
struct tg_optim;
double task_train_step(task_model *m, struct tg_optim *opt, task_kind k,
                       tg_tensor *x, tg_tensor *target, const int64_t *ids,
                       double clip);
/* MSE (adding) or accuracy (copy) on the validation batch, nothing
 * recorded; ids: room for K * val_B symbols. */
double task_validate(task_model *m, task_kind k, int T, int val_B,
                     int64_t *ids);

#endif
