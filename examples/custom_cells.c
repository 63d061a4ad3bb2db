/*
 * examples/custom_cells.c - five recurrent cells written in user code only
 * (no derivative anywhere: the tape differentiates each step), trained
 * side by side on the adding problem and, briefly, as character models.
 *
 *   make custom-cells          (or build/custom_cells [--quick])
 *
 * The cells, each a step function of ordinary ops and a tg_cell_type:
 *   peephole   LSTM whose gates also see the cell state (Gers 2000)
 *   mgu        minimal gated unit: one gate (Zhou et al. 2016)
 *   ln_lstm    LSTM with layer norm of its gate pre-activations and of
 *              the cell state (Ba, Kiros & Hinton 2016), learned gain/bias
 *   hard_gate  h' = m tanh(a_n) + (1 - m) h with m = [a_m > 0], a hard 0/1
 *              mask trained through tg_step_ste's straight-through gradient
 *   soft_gate  the same cell with m = sigmoid(a_m)
 *
 * The adding problem (Hochreiter & Schmidhuber 1997): x [T, B, 2] holds a
 * random value in [0, 1) and a marker channel with exactly two 1s (one in
 * each half of the sequence); the target is the sum of the two marked
 * values, read by a linear layer from h at the last step. Predicting the
 * mean, 1, scores mse 1/6 ~ 0.167; a cell "solves" it below 0.05, which
 * needs it to hold a value for up to T steps while ignoring the rest.
 * Every cell sees the same batches (same seed), so the table compares
 * cells, not luck with data.
 *
 * docs/custom_cells.md has the measured table and a discussion.
 */
#include "nn/charlm.h"
#include "nn/optim.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- 1. peephole LSTM ------------------------------------------------- */
static int peephole_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size; /* three peephole vectors */
    tg_cell_param_new(c, "w_ci", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_cf", TG_SHAPE(H), rng);
    tg_cell_param_new(c, "w_co", TG_SHAPE(H), rng);
    return 0;
}

/* i = s(a_i + w_ci c)  f = s(a_f + w_cf c)  c' = f c + i tanh(a_g)
 * o = s(a_o + w_co c')  h' = o tanh(c') */
static void peephole_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    tg_tensor *h = s[0], *cell = s[1], *g[4];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 4, 1, g);
    tg_tensor *i = tg_sigmoid(tg_add(g[0], tg_mul(tg_cell_param(c, "w_ci"), cell)));
    tg_tensor *f = tg_sigmoid(tg_add(g[1], tg_mul(tg_cell_param(c, "w_cf"), cell)));
    next[1] = tg_add(tg_mul(f, cell), tg_mul(i, tg_tanh(g[2])));
    tg_tensor *o = tg_sigmoid(tg_add(g[3], tg_mul(tg_cell_param(c, "w_co"), next[1])));
    next[0] = tg_mul(o, tg_tanh(next[1]));
}

static const tg_cell_type peephole = {"peephole", .nstate = 2, .gates = 4,
                                      .init = peephole_init,
                                      .step = peephole_step};

/* ---- 2. minimal gated unit: one gate ---------------------------------- */
/* f = s(x_f + h W_hf^T + b_hf);  n = tanh(x_n + (f h) W_hn^T + b_hn)
 * h' = (1 - f) h + f n  =  h + f (n - h) */
static void mgu_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                     tg_tensor **next)
{
    tg_tensor *h = s[0], *x[2], *W[2], *b[2];
    tg_chunk(xp, 2, 1, x);
    tg_chunk(c->weight_hh, 2, 0, W); /* rows of W_hh per gate */
    tg_chunk(c->bias_hh, 2, 0, b);
    tg_tensor *f = tg_sigmoid(tg_add(x[0], tg_linear(h, W[0], b[0])));
    tg_tensor *n = tg_tanh(tg_add(x[1], tg_linear(tg_mul(f, h), W[1], b[1])));
    next[0] = tg_add(h, tg_mul(f, tg_sub(n, h)));
}

static const tg_cell_type mgu = {"mgu", .nstate = 1, .gates = 2,
                                 .step = mgu_step};

/* ---- 3. layer-normalised LSTM ----------------------------------------- */
/* LN(a) = gain * (a - mean(a)) / sqrt(var(a) + eps) + bias, over the last
 * dimension: made of existing ops, so its backward comes for free. */
static tg_tensor *layer_norm(tg_tensor *a, tg_tensor *gain, tg_tensor *bias)
{
    tg_tensor *d = tg_sub(a, tg_mean_dim(a, -1, true));
    tg_tensor *var = tg_mean_dim(tg_mul(d, d), -1, true);
    tg_tensor *z = tg_div(d, tg_sqrt(tg_add_scalar(var, 1e-5)));
    return tg_add(tg_mul(z, gain), bias);
}

static int ln_lstm_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size;   /* gain 1, bias 0 (forget block: 1) */
    tg_fill_(tg_cell_param_new(c, "ln_gain", TG_SHAPE(4 * H), rng), 1);
    tg_tensor *b = tg_cell_param_new(c, "ln_bias", TG_SHAPE(4 * H), rng);
    tg_fill_(b, 0);
    for (int64_t k = H; k < 2 * H; k++)
        b->data[k] = 1;
    tg_fill_(tg_cell_param_new(c, "ln_c_gain", TG_SHAPE(H), rng), 1);
    tg_fill_(tg_cell_param_new(c, "ln_c_bias", TG_SHAPE(H), rng), 0);
    return 0;
}

/* i,f,g,o = chunks of LN(x W_ih^T + b_ih + h W_hh^T + b_hh)
 * c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(LN(c')) */
static void ln_lstm_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                         tg_tensor **next)
{
    tg_tensor *h = s[0], *cell = s[1], *g[4];
    tg_tensor *a = tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh));
    a = layer_norm(a, tg_cell_param(c, "ln_gain"), tg_cell_param(c, "ln_bias"));
    tg_chunk(a, 4, 1, g);
    tg_tensor *kept = tg_mul(tg_sigmoid(g[1]), cell);
    next[1] = tg_add(kept, tg_mul(tg_sigmoid(g[0]), tg_tanh(g[2])));
    tg_tensor *cn = layer_norm(next[1], tg_cell_param(c, "ln_c_gain"),
                               tg_cell_param(c, "ln_c_bias"));
    next[0] = tg_mul(tg_sigmoid(g[3]), tg_tanh(cn));
}

static const tg_cell_type ln_lstm = {"ln_lstm", .nstate = 2, .gates = 4,
                                     .init = ln_lstm_init,
                                     .step = ln_lstm_step};

/* ---- 4. the simplest gate: a 0/1 mask, hard or smooth ----------------- */
/* a_m, a_n = chunks of (x W_ih^T + b_ih + h W_hh^T + b_hh)
 * m = gate(a_m);  h' = m tanh(a_n) + (1 - m) h  =  h + m (tanh(a_n) - h)
 * Hard: m = [a_m > 0], each unit either keeps h exactly or overwrites it;
 * backward pretends m was sigmoid(a_m) (tg_step_ste, ops/unary.h).
 * Smooth: m = sigmoid(a_m) forward too - otherwise the same cell. */
static void masked_step(tg_cell *c, tg_tensor *xp, tg_tensor *h,
                        tg_tensor **next, tg_tensor *(*gate)(tg_tensor *))
{
    tg_tensor *a[2];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 2, 1, a);
    tg_tensor *m = gate(a[0]);
    next[0] = tg_add(h, tg_mul(m, tg_sub(tg_tanh(a[1]), h)));
}

static void hard_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    masked_step(c, xp, s[0], next, tg_step_ste);
}

static void soft_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    masked_step(c, xp, s[0], next, tg_sigmoid);
}

static const tg_cell_type hard_gate = {"hard_gate", .nstate = 1, .gates = 2,
                                       .step = hard_step};
static const tg_cell_type soft_gate = {"soft_gate", .nstate = 1, .gates = 2,
                                       .step = soft_step};

/* ======================================================================= */

static const tg_cell_type *const cells[] = {&peephole, &mgu, &ln_lstm,
                                            &hard_gate, &soft_gate};
enum { NCELLS = sizeof cells / sizeof *cells };

typedef struct config {
    int T, B, H, steps, checkpoints, test_B;
    double lr, solved;
    int lm_steps, lm_T, lm_B, lm_H, lm_E;
    long lm_bytes;
    const char *text;
} config;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One batch of the adding problem: x [T, B, 2], target [B, 1]. */
static void adding_batch(int T, int B, tg_rng *rng, tg_tensor **x,
                         tg_tensor **target)
{
    *x = tg_empty(TG_SHAPE(T, B, 2)); /* temporaries: gone at tape reset */
    tg_fill_(*x, 0);
    *target = tg_empty(TG_SHAPE(B, 1));
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++)
            (*x)->data[((int64_t)t * B + b) * 2] = (tg_real)tg_rng_uniform(rng);
        int half = T / 2;
        int p = (int)(tg_rng_uniform(rng) * half) % half;
        int q = half + (int)(tg_rng_uniform(rng) * (T - half)) % (T - half);
        (*x)->data[((int64_t)p * B + b) * 2 + 1] = 1;
        (*x)->data[((int64_t)q * B + b) * 2 + 1] = 1;
        (*target)->data[b] = (*x)->data[((int64_t)p * B + b) * 2] +
                             (*x)->data[((int64_t)q * B + b) * 2];
    }
}

typedef struct model {
    tg_rnn *rnn;
    tg_tensor *w, *b; /* readout [H, 1], [1] */
    tg_params ps;
} model;

/* mse of the readout of h_T; *loss_t keeps the tensor for backward */
static double adding_loss(model *m, tg_tensor *x, tg_tensor *target,
                          bool training, tg_tensor **loss_t)
{
    tg_rnn_out out;
    if (tg_rnn_forward(m->rnn, x, NULL, training, NULL, &out) < 0)
        return (double)NAN;
    tg_tensor *pred = tg_add(tg_matmul(out.h[out.T - 1], m->w), m->b);
    tg_tensor *loss = tg_mse(pred, target, TG_MEAN);
    if (loss_t)
        *loss_t = loss;
    return loss ? tg_item(loss) : (double)NAN;
}

typedef struct result {
    double first, final_train, test_mse, seconds, lm_first, lm_last;
    bool lm_done;
} result;

static void train_adding(const config *cfg, const tg_cell_type *type,
                         result *res)
{
    tg_rng rng, data;
    tg_rng_seed(&rng, 1);
    tg_rng_seed(&data, 2); /* the same batches for every cell */
    model m = {.rnn = tg_rnn_new(type, 2, cfg->H, 1, 0.0, &rng)};
    m.w = tg_requires_grad(tg_tensor_new(TG_SHAPE(cfg->H, 1)));
    m.b = tg_requires_grad(tg_tensor_new(TG_SHAPE(1)));
    tg_fill_uniform_(m.w, &rng, -0.1, 0.1);
    tg_params_add_from(&m.ps, "rnn.", &m.rnn->params);
    tg_params_add_ref(&m.ps, "readout.weight", m.w);
    tg_params_add_ref(&m.ps, "readout.bias", m.b);
    tg_optim *opt = tg_adam_new(&m.ps, cfg->lr, 0.9, 0.999, 1e-8, 0);
    double t0 = now(), window = 0;
    int every = cfg->steps / cfg->checkpoints, nwin = 0;
    printf("%-10s", type->name);
    for (int step = 1; step <= cfg->steps; step++) {
        tg_tensor *x, *target, *loss = NULL;
        adding_batch(cfg->T, cfg->B, &data, &x, &target);
        double lv = adding_loss(&m, x, target, true, &loss);
        tg_optim_zero_grad(opt);
        tg_backward(loss);
        tg_clip_grad_norm(&m.ps, 1.0);
        tg_optim_step(opt);
        tg_tape_reset();
        if (step == 1)
            res->first = lv;
        window += lv, nwin++;
        if (step % every == 0) { /* mean training loss since the last one */
            printf(" %7.4f", window / nwin);
            fflush(stdout);
            res->final_train = window / nwin;
            window = 0, nwin = 0;
        }
    }
    /* a fresh test batch, the same for every cell */
    tg_rng test;
    tg_rng_seed(&test, 3);
    tg_tensor *x, *target;
    adding_batch(cfg->T, cfg->test_B, &test, &x, &target);
    res->test_mse = adding_loss(&m, x, target, false, NULL);
    tg_tape_reset();
    res->seconds = now() - t0;
    printf("  | test %.4f  (%.1f s)\n", res->test_mse, res->seconds);
    tg_optim_free(opt);
    tg_params_free(&m.ps);
    tg_tensor_free(m.w);
    tg_tensor_free(m.b);
    tg_rnn_free(m.rnn);
}

/* ---- a short character model per cell ---------------------------------- */
typedef struct corpus {
    int64_t *rows; /* [n, B]: B parallel streams of the text */
    int64_t n;
    int vocab;
} corpus;

static int load_corpus(const config *cfg, corpus *c)
{
    FILE *f = fopen(cfg->text, "rb");
    if (!f)
        return -1;
    unsigned char *buf = malloc((size_t)cfg->lm_bytes);
    long len = (long)fread(buf, 1, (size_t)cfg->lm_bytes, f);
    fclose(f);
    int id[256], B = cfg->lm_B;
    memset(id, -1, sizeof id);
    c->vocab = 0;
    for (long i = 0; i < len; i++) /* ids in order of first appearance */
        if (id[buf[i]] < 0)
            id[buf[i]] = c->vocab++;
    c->n = len / B;
    c->rows = malloc((size_t)(c->n * B) * sizeof *c->rows);
    for (int64_t t = 0; t < c->n; t++)
        for (int b = 0; b < B; b++)
            c->rows[t * B + b] = id[buf[b * c->n + t]];
    free(buf);
    return c->n > cfg->lm_T + 1 ? 0 : -1;
}

/* Truncated BPTT over the streams, Adam 3e-3, clip 5, 1 layer; returns
 * the mean training loss (nats/char) of the first and last tenth. */
static void train_charlm(const config *cfg, const corpus *c,
                         const tg_cell_type *type, result *res)
{
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    tg_charlm *m = tg_charlm_new(type, c->vocab, cfg->lm_E, cfg->lm_H, 1, 0.0, &rng);
    tg_optim *opt = tg_adam_new(&m->params, 3e-3, 0.9, 0.999, 1e-8, 0);
    tg_tensor *state[TG_CELL_MAX_STATE] = {0};
    int64_t T = cfg->lm_T, B = cfg->lm_B, pos = 0;
    int tenth = cfg->lm_steps / 10 > 0 ? cfg->lm_steps / 10 : 1;
    bool has_state = false;
    double first = 0, last = 0;
    for (int step = 0; step < cfg->lm_steps; step++) {
        if (pos + T + 1 > c->n)
            pos = 0, has_state = false;
        const int64_t *x = c->rows + pos * B, *y = x + B;
        pos += T;
        tg_rnn_out out;
        tg_tensor *logits = tg_charlm_forward(m, x, T, B, has_state ? state : NULL,
                                              true, &rng, &out);
        tg_tensor *loss = tg_cross_entropy(logits, y, TG_MEAN);
        double lv = tg_item(loss);
        tg_optim_zero_grad(opt);
        tg_backward(loss);
        tg_clip_grad_norm(&m->params, 5.0);
        tg_optim_step(opt);
        tg_rnn_keep_state(m->rnn, &out, state);
        has_state = true;
        tg_tape_reset();
        if (step < tenth)
            first += lv / tenth;
        if (step >= cfg->lm_steps - tenth)
            last += lv / tenth;
    }
    res->lm_first = first, res->lm_last = last, res->lm_done = true;
    for (int k = 0; k < TG_CELL_MAX_STATE; k++)
        tg_tensor_free(state[k]);
    tg_optim_free(opt);
    tg_charlm_free(m);
}

int main(int argc, char **argv)
{
    config cfg = {.T = 50, .B = 32, .H = 32, .steps = 1500, .checkpoints = 6,
                  .test_B = 1000, .lr = 1e-2, .solved = 0.05,
                  .lm_steps = 300, .lm_T = 32, .lm_B = 16, .lm_H = 64,
                  .lm_E = 16, .lm_bytes = 200 * 1024,
                  .text = "/usr/share/games/fortunes/fortunes"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            cfg.T = 20, cfg.steps = 60, cfg.checkpoints = 3, cfg.test_B = 200,
            cfg.lm_steps = 20;
        else if (!strcmp(argv[i], "--text") && i + 1 < argc)
            cfg.text = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--text FILE]\n", argv[0]);
            return 2;
        }
    }
    /* Batches of 32 x 32 are too small to gain from threads (forking them
     * costs more than the work; results are the same bits either way). */
    tg_set_num_threads(1);
    /* registered, the cells are known by name like the built-in ones */
    for (int k = 0; k < NCELLS; k++)
        if (tg_cell_type_register(cells[k]) < 0)
            return 1;
    char names[256];
    printf("cells known by name: %s\n\n", tg_cell_type_names(names, sizeof names));

    result res[NCELLS] = {{0}};
    printf("adding problem, T = %d, batch %d, H = %d, Adam lr %g, clip 1\n"
           "mean training mse over each %d steps (predicting 1 scores 0.167):\n",
           cfg.T, cfg.B, cfg.H, cfg.lr, cfg.steps / cfg.checkpoints);
    for (int k = 0; k < NCELLS; k++)
        train_adding(&cfg, tg_cell_type_find(cells[k]->name), &res[k]);

    corpus text;
    if (load_corpus(&cfg, &text) == 0) {
        printf("\ncharacter model on %s (%lld chars, vocab %d): 1 layer, E = %d,"
               " H = %d, T = %d, batch %d, %d Adam steps\n",
               cfg.text, (long long)(text.n * cfg.lm_B), text.vocab, cfg.lm_E,
               cfg.lm_H, cfg.lm_T, cfg.lm_B, cfg.lm_steps);
        for (int k = 0; k < NCELLS; k++) {
            double t0 = now();
            train_charlm(&cfg, &text, cells[k], &res[k]);
            printf("%-10s training loss %.3f -> %.3f nats/char  (%.1f s)\n",
                   cells[k]->name, res[k].lm_first, res[k].lm_last, now() - t0);
        }
        free(text.rows);
    } else {
        printf("\n(no text at %s: character models skipped)\n", cfg.text);
    }

    printf("\n| cell      | first mse | test mse (T=%d) | solved (< %.2f) | charlm loss |\n"
           "|-----------|-----------|-----------------|----------------|-------------|\n",
           cfg.T, cfg.solved);
    for (int k = 0; k < NCELLS; k++) {
        printf("| %-9s | %9.4f | %15.4f | %-14s |", cells[k]->name, res[k].first,
               res[k].test_mse, res[k].test_mse < cfg.solved ? "yes" : "no");
        if (res[k].lm_done)
            printf(" %5.3f->%5.3f |\n", res[k].lm_first, res[k].lm_last);
        else
            printf(" %11s |\n", "-");
    }
    /* one line per cell for tests/custom_cells.sh */
    for (int k = 0; k < NCELLS; k++)
        printf("RESULT %s %.6f %.6f %.6f\n", cells[k]->name, res[k].first,
               res[k].final_train, res[k].test_mse);
    tg_tape_free_all();
    return 0;
}
