/*
 * examples/charlm/eval.c - the validation loss: used by training at each
 * evaluation and by `charlm eval` on a checkpoint.
 */
#include "charlm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference's evaluate(): the held-out streams in chunks of T (the
 * last one shorter), the state carried from chunk to chunk, no dropout,
 * nothing recorded; the summed cross-entropy over the count. */
double cl_evaluate(cl_run *r, const cl_streams *v)
{
    bool was = tg_set_grad_enabled(false);
    tg_tensor *state[TG_CELL_MAX_STATE] = {NULL};
    bool has = false;
    double total = 0;
    int64_t count = 0, T = r->cfg.seq, B = v->B;
    /* rows [s, s + t + 1): the chunk's input and, one row later, targets */
    int64_t *rows = tg_xmalloc((size_t)((T + 1) * B) * sizeof *rows);
    cl_lib_clear();
    for (int64_t s = 0; s < v->n - 1; s += T) {
        int64_t t = T < v->n - 1 - s ? T : v->n - 1 - s;
        cl_streams_rows(v, s, t + 1, rows);
        tg_rnn_out out;
        tg_tensor *logits = tg_charlm_forward(r->model, rows, t, B,
                                              has ? state : NULL, false, NULL, &out);
        tg_tensor *loss = tg_cross_entropy(logits, rows + B, TG_SUM);
        if (!loss) {
            total = (double)NAN;
            break;
        }
        total += tg_item(loss);
        count += t * B;
        tg_rnn_keep_state(r->model->rnn, &out, state);
        has = true;
        tg_tape_reset();
    }
    tg_tape_reset();
    free(rows);
    for (int k = 0; k < TG_CELL_MAX_STATE; k++)
        tg_tensor_free(state[k]);
    tg_set_grad_enabled(was);
    return count ? total / (double)count : (double)NAN;
}

/* What is scored: without --data, the held-out end of the checkpoint's
 * corpus (split as in training, so the number is the one training
 * logged); with --data, the whole text, cut into the model's B streams
 * (the first character of each stream and the last n mod B characters
 * are not predicted); with --val-frac F, the held-out last F of either. */
int cl_eval(const cl_config *c)
{
    cl_run r;
    if (cl_ckpt_load(c->load, &r, false) < 0)
        return 1;
    int status = 1;
    const char *path = c->data ? c->data : r.cfg.data;
    bool whole = c->data && c->val_frac < 0;
    if (!c->data && !strcmp(path, "-")) {
        cli_fail("checkpoint %s was trained on standard input: give --data "
                "FILE (or --data - and the text)", c->load);
        cl_run_free(&r);
        return 1;
    }
    const char *what = strcmp(path, "-") ? path : "standard input";
    cl_ids ids;
    cl_streams train = {0}, val = {0};
    if (cl_corpus_read(path, c->max_data_mb, true, &r.vocab, &ids) < 0) {
        cl_run_free(&r);
        return 1;
    }
    if (c->val_frac >= 0)
        r.cfg.val_frac = c->val_frac;
    if (whole ? cl_streams_whole(&ids, r.cfg.batch, &val, what) < 0
              : cl_split(&ids, &r.cfg, &train, &val, what) < 0)
        goto done;
    double loss = cl_evaluate(&r, &val);
    if (!isfinite(loss)) {
        cli_fail("the loss is not finite: %s", cl_lib_error());
        goto done;
    }
    /* each stream predicts all its characters but the first */
    long long scored = (long long)((val.n - 1) * val.B);
    if (whole)
        printf("loss %.4f nats/char = %.4f bits/char (%lld characters scored, "
               "all of %s; model at step %lld)\n", loss, loss / log(2.0),
               scored, what, (long long)r.step);
    else
        printf("val loss %.4f nats/char = %.4f bits/char (%lld held-out "
               "characters of %s; model at step %lld)\n", loss,
               loss / log(2.0), (long long)(val.n * val.B), what,
               (long long)r.step);
    status = 0;
done:
    cl_ids_free(&ids);
    cl_streams_free(&train);
    cl_streams_free(&val);
    cl_run_free(&r);
    return status;
}
