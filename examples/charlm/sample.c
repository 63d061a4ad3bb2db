/*
 * examples/charlm/sample.c - `charlm sample` (generate text) and
 * `charlm eval` (the validation loss of a checkpoint).
 *
 * Sampling feeds the prime through the model in one [P, 1] forward pass
 * to warm the state up, then repeats: scores of the next character ->
 * divide by the temperature -> keep the top k -> softmax -> draw with a
 * seeded generator -> feed the drawn character back. Nothing is recorded
 * (grad disabled) and the tape is reset after every character; the state
 * is carried in persistent tensors, so memory stays flat for any length.
 */
#include "charlm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct scored {
    double logit;
    int64_t id;
} scored;

static int by_score(const void *a, const void *b)
{
    const scored *x = a, *y = b; /* descending, ties by id: deterministic */
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Draws an id from softmax(logits / temperature) over the k best (0: all).
 * -1 if the scores are not finite. */
static int64_t draw(const tg_real *logits, int64_t V, double temperature,
                    int64_t k, tg_rng *rng, scored *buf)
{
    for (int64_t i = 0; i < V; i++) {
        if (!isfinite(logits[i]))
            return -1;
        buf[i] = (scored){(double)logits[i], i};
    }
    qsort(buf, (size_t)V, sizeof *buf, by_score);
    if (k <= 0 || k > V)
        k = V;
    double total = 0;
    for (int64_t i = 0; i < k; i++) { /* weights relative to the best */
        buf[i].logit = exp((buf[i].logit - buf[0].logit) / temperature);
        total += buf[i].logit;
    }
    double u = tg_rng_uniform(rng) * total, acc = 0;
    for (int64_t i = 0; i < k; i++) {
        acc += buf[i].logit;
        if (u < acc)
            return buf[i].id;
    }
    return buf[k - 1].id; /* u rounded up to the total */
}

/* Feeds ids [n, 1] from the carried state; copies the last position's
 * scores into out [V]. -1 with a message. */
static int feed(cl_run *r, const int64_t *ids, int64_t n, tg_real *out)
{
    tg_rnn_out o;
    cl_lib_clear();
    tg_tensor *logits = tg_charlm_forward(r->model, ids, n, 1,
                                          r->has_state ? r->state : NULL, false,
                                          NULL, &o);
    if (!logits)
        return cl_fail("%s", cl_lib_error());
    tg_rnn_keep_state(r->model->rnn, &o, r->state);
    r->has_state = true;
    int64_t V = r->vocab.n;
    for (int64_t i = 0; i < V; i++)
        out[i] = (tg_real)tg_flat_get(logits, (n - 1) * V + i);
    tg_tape_reset();
    return 0;
}

static void put(uint32_t c, FILE *f)
{
    char b[4];
    fwrite(b, 1, (size_t)cl_utf8_put(c, b), f);
}

int cl_sample(const cl_config *c)
{
    cl_run r;
    if (cl_ckpt_load(c->load, &r, false) < 0)
        return 1;
    int status = 1;
    int64_t V = r.vocab.n;
    cl_text prime = {0};
    int64_t *ids = NULL;
    tg_real *logits = tg_xmalloc((size_t)V * sizeof *logits);
    scored *buf = tg_xmalloc((size_t)V * sizeof *buf);
    if (c->prime) {
        if (cl_utf8_decode(c->prime, &prime, "--prime") < 0)
            goto done;
    } else { /* a newline starts a fortune; else the first character */
        prime.cp = tg_xmalloc(sizeof *prime.cp);
        prime.cp[0] = cl_vocab_id(&r.vocab, '\n') >= 0 ? '\n' : r.vocab.chars[0];
        prime.n = 1;
    }
    uint32_t *ids32 = tg_xmalloc((size_t)prime.n * sizeof *ids32);
    int rc = cl_encode(&r.vocab, prime.cp, prime.n, ids32, "--prime");
    ids = tg_xmalloc((size_t)prime.n * sizeof *ids);
    for (int64_t i = 0; rc == 0 && i < prime.n; i++)
        ids[i] = ids32[i];
    free(ids32);
    if (rc < 0)
        goto done;

    tg_set_grad_enabled(false);
    tg_rng rng;
    tg_rng_seed(&rng, (uint64_t)c->seed);
    if (feed(&r, ids, prime.n, logits) < 0)
        goto done;
    if (c->prime)
        for (int64_t i = 0; i < prime.n; i++)
            put(prime.cp[i], stdout);
    uint32_t last = c->prime ? prime.cp[prime.n - 1] : '\n';
    for (int64_t i = 0; i < c->length; i++) {
        int64_t id = draw(logits, V, c->temperature, c->top_k, &rng, buf);
        if (id < 0) {
            cl_fail("the model's scores are not finite after %lld characters",
                    (long long)i);
            goto done;
        }
        put(last = r.vocab.chars[id], stdout);
        if (i + 1 < c->length && feed(&r, &id, 1, logits) < 0)
            goto done;
    }
    if (last != '\n' && isatty(1)) /* leave the shell prompt on its line */
        putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cl_fail("cannot write the sample to stdout");
        goto done;
    }
    status = 0;
done:
    free(ids);
    free(logits);
    free(buf);
    cl_text_free(&prime);
    cl_run_free(&r);
    return status;
}
