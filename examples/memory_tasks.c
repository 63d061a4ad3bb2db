/*
 * examples/memory_tasks.c - the two classic long-memory benchmarks, the
 * adding problem and the copy task, for a plain RNN, an LSTM and a GRU at
 * growing sequence lengths: which cell learns to remember over how many
 * steps, and how fast.
 *
 *   build/memory_tasks [--lengths 10,50,100,200] [--copy-lengths 10,50,100]
 *                      [--budget 1500] [--seeds 2]
 *   build/memory_tasks --quick             (tiny sizes, for the tests)
 *   make memory-tasks
 *
 * The adding problem (Hochreiter & Schmidhuber 1997): x [T, B, 2]; channel
 * 0 holds values uniform in [0, 1), channel 1 is a marker with exactly two
 * 1s, one at a uniform step of the first half (t < T/2) and one at a
 * uniform step of the second half. The target is the sum of the two marked
 * values, read by a linear layer (a [H, 1] weight and a bias) from h at the
 * last step; loss = MSE. Predicting the mean 1 scores 1/6 ~ 0.167; the
 * problem counts as solved when the MSE on a fresh validation batch falls
 * below 0.01.
 *
 * The copy task (after Arjovsky, Shah & Bengio 2016, with the loss on the
 * recall steps only): K = 5 symbols drawn from an alphabet of 8, then T-1
 * blanks, a delimiter, and K more blanks during which the K symbols must
 * be produced in order - T + 2K steps in all, each symbol recalled T + K
 * steps after it was seen. Inputs are one-hot over 10 channels (8 symbols,
 * blank, delimiter); a linear layer [H, 8] reads the logits from h at each
 * of the last K steps; loss = cross-entropy, mean over the K steps and the
 * batch. Chance is log 8 ~ 2.08; solved = at least 95% of the validation
 * batch's symbols right.
 *
 * Every cell is one layer, H = 64, batch 32, Adam (lr 0.01) with the global
 * gradient norm clipped at 1, the LSTM's forget-gate bias at 1
 * (tg_cell_set_forget_bias). Every --eval-every steps the model is scored
 * on a validation batch (fixed per task and length, the same for every
 * cell and seed); the first step at which it passes is its "steps to
 * solve". A run that has not passed after --budget steps is "not solved".
 * Seed s initialises the parameters (seed s) and draws the training
 * batches (seed 1000 + s). Output is the same on every run and for any
 * thread count (no timings unless --times).
 *
 * docs/memory_tasks.md has the measured tables and what they say.
 */
#include "nn/optim.h"
#include "nn/rnn.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LENGTHS 16
#define COPY_K 5     /* symbols to remember */
#define COPY_A 8     /* alphabet */
#define COPY_IN (COPY_A + 2) /* one-hot: symbols, blank, delimiter */

typedef struct opts {
    int lengths[MAX_LENGTHS], nlengths;           /* adding problem */
    int copy_lengths[MAX_LENGTHS], ncopy_lengths; /* copy task */
    int budget, seeds, eval_every, H, B, val_B, threads;
    double lr, clip, forget_bias;
    bool adding, copy, times;
} opts;

typedef enum task { ADDING, COPY } task;

/* ---- data --------------------------------------------------------------- */

/* One batch of the adding problem: x [T, B, 2], target [B, 1]. */
static void adding_batch(int T, int B, tg_rng *rng, tg_tensor **x,
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

/* One batch of the copy task: x [T + 2K, B, 10] one-hot, and the K*B
 * symbols to recall, row k*B + b = symbol k of sequence b (the layout of
 * the stacked recall steps [K, B, 8]). */
static void copy_batch(int T, int B, tg_rng *rng, tg_tensor **x,
                       int64_t *targets)
{
    int L = T + 2 * COPY_K;
    *x = tg_zeros(TG_SHAPE(L, B, COPY_IN));
    tg_real *d = (*x)->data;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++) {
            int id;
            if (t < COPY_K) {
                id = (int)tg_rng_below(rng, COPY_A);
                targets[(int64_t)t * B + b] = id;
            } else
                id = t == COPY_K + T - 1 ? COPY_A + 1 : COPY_A; /* delimiter : blank */
            d[((int64_t)t * B + b) * COPY_IN + id] = 1;
        }
}

/* ---- model -------------------------------------------------------------- */

typedef struct model {
    tg_rnn *rnn;
    tg_tensor *w, *b; /* readout: [H, out], [out] */
    tg_params ps;
} model;

static void model_init(model *m, task k, const tg_cell_type *type,
                       const opts *o, tg_rng *rng)
{
    int in = k == ADDING ? 2 : COPY_IN, out = k == ADDING ? 1 : COPY_A;
    *m = (model){.rnn = tg_rnn_new(type, in, o->H, 1, 0.0, rng)};
    if (type == &tg_lstm_cell)
        tg_cell_set_forget_bias(m->rnn->layers[0], o->forget_bias);
    tg_params_add_from(&m->ps, "rnn.", &m->rnn->params); /* borrowed */
    m->w = tg_params_new(&m->ps, "readout.weight", TG_SHAPE(o->H, out)); /* owned */
    m->b = tg_params_new(&m->ps, "readout.bias", TG_SHAPE(out));
    double r = 1 / sqrt((double)o->H); /* as torch.nn.Linear */
    tg_fill_uniform_(m->w, rng, -r, r);
    tg_fill_uniform_(m->b, rng, -r, r);
}

static void model_free(model *m)
{
    tg_params_free(&m->ps); /* frees the readout too */
    tg_rnn_free(m->rnn);
}

/* The loss of one batch (a 0-d tensor on the tape); for the copy task
 * *correct receives how many recalled symbols the argmax gets right. */
static tg_tensor *forward(model *m, task k, tg_tensor *x, tg_tensor *target,
                          const int64_t *ids, int64_t *correct)
{
    tg_rnn_out out;
    if (tg_rnn_forward(m->rnn, x, NULL, true, NULL, &out))
        exit(1);
    if (k == ADDING) {
        tg_tensor *pred = tg_add(tg_matmul(out.h[out.T - 1], m->w), m->b);
        return tg_mse(pred, target, TG_MEAN);
    }
    /* the last K steps' h stacked: [K, B, H] -> [K*B, H] -> logits [K*B, 8] */
    int64_t B = x->shape[1];
    tg_tensor *h = tg_reshape(tg_stack(out.h + out.T - COPY_K, COPY_K, 0),
                              TG_SHAPE(COPY_K * B, m->w->shape[0]));
    tg_tensor *logits = tg_add(tg_matmul(h, m->w), m->b);
    if (correct) {
        *correct = 0;
        for (int64_t r = 0; r < COPY_K * B; r++) {
            const tg_real *l = logits->data + r * COPY_A;
            int best = 0;
            for (int c = 1; c < COPY_A; c++)
                if (l[c] > l[best])
                    best = c;
            *correct += best == ids[r];
        }
    }
    return tg_cross_entropy(logits, ids, TG_MEAN);
}

/* ---- one run: train until solved or out of budget ----------------------- */

typedef struct run_result {
    int solved_at; /* step, or 0 if not solved */
    double metric; /* validation mse (adding) or accuracy (copy) at the end */
} run_result;

static bool passes(task k, double metric)
{
    return k == ADDING ? metric < 0.01 : metric >= 0.95;
}

/* the validation batch of a task and length: the same for every run */
static void val_batch(task k, int T, const opts *o, tg_tensor **x,
                      tg_tensor **target, int64_t *ids)
{
    tg_rng rng;
    tg_rng_seed(&rng, 777000 + (uint64_t)T * 2 + (uint64_t)k);
    if (k == ADDING)
        adding_batch(T, o->val_B, &rng, x, target);
    else
        copy_batch(T, o->val_B, &rng, x, ids);
}

/* mse (adding) or accuracy (copy) on the validation batch, no tape */
static double validate(model *m, task k, int T, const opts *o, int64_t *ids)
{
    bool was = tg_set_grad_enabled(false);
    tg_tensor *x, *target = NULL;
    val_batch(k, T, o, &x, &target, ids);
    int64_t correct = 0;
    tg_tensor *loss = forward(m, k, x, target, ids, &correct);
    double v = k == ADDING ? tg_item(loss)
                           : (double)correct / (double)(COPY_K * o->val_B);
    tg_tape_reset(); /* frees the temporaries */
    tg_set_grad_enabled(was);
    return v;
}

static run_result run(task k, const tg_cell_type *type, int T, int seed,
                      const opts *o)
{
    tg_rng rng, data;
    tg_rng_seed(&rng, (uint64_t)seed);
    tg_rng_seed(&data, 1000 + (uint64_t)seed);
    model m;
    model_init(&m, k, type, o, &rng);
    tg_optim *opt = tg_adam_new(&m.ps, o->lr, 0.9, 0.999, 1e-8, 0);
    int64_t nids = (int64_t)COPY_K * (o->B > o->val_B ? o->B : o->val_B);
    int64_t *ids = tg_xcalloc((size_t)nids, sizeof *ids);
    run_result res = {0, k == ADDING ? (double)NAN : 0};
    for (int step = 1; step <= o->budget; step++) {
        tg_tensor *x, *target = NULL;
        if (k == ADDING)
            adding_batch(T, o->B, &data, &x, &target);
        else
            copy_batch(T, o->B, &data, &x, ids);
        tg_optim_zero_grad(opt);
        tg_tensor *loss = forward(&m, k, x, target, ids, NULL);
        double lv = tg_item(loss);
        if (tg_backward(loss))
            exit(1);
        tg_clip_grad_norm(&m.ps, o->clip);
        tg_optim_step(opt);
        tg_tape_reset();
        if (!isfinite(lv))
            break; /* diverged: not solved */
        if (step % o->eval_every == 0 || step == o->budget) {
            res.metric = validate(&m, k, T, o, ids);
            if (passes(k, res.metric)) {
                res.solved_at = step;
                break;
            }
        }
    }
    free(ids);
    tg_optim_free(opt);
    model_free(&m);
    return res;
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: memory_tasks [options]\n\n"
        "Trains a plain tanh RNN, an LSTM and a GRU on the adding problem and\n"
        "the copy task at several sequence lengths and prints, per task, a\n"
        "table of how many seeds solved each length and in how many steps.\n\n"
        "options:\n"
        "  --lengths L,..  lengths T of both tasks (adding: T steps; copy: delay\n"
        "                  T, T + 10 steps) (default: adding 10,50,100,200)\n"
        "  --copy-lengths L,..  the copy task's alone, after --lengths (default\n"
        "                  10,50,100: at 1500 steps no cell solves 50, and 200\n"
        "                  takes minutes)\n"
        "  --budget N      training steps per run at most (default 1500)\n"
        "  --seeds N       seeds per cell and length: 1..N (default 2)\n"
        "  --eval-every N  validation every N steps (default 50)\n"
        "  --task T        adding, copy or both (default both)\n"
        "  --H N           hidden size (default 64)\n"
        "  --B N           batch size (default 32)\n"
        "  --val-B N       validation batch size (default 256)\n"
        "  --lr X          Adam learning rate (default 0.01)\n"
        "  --clip X        global gradient norm clip (default 1)\n"
        "  --forget-bias X LSTM forget-gate bias (default 1)\n"
        "  --threads N     OpenMP threads (default 2)\n"
        "  --times         also print seconds per run (output then varies)\n"
        "  --quick         tiny: --lengths 5,10 --budget 200 --seeds 1\n"
        "  --help          this text\n");
}

static long int_arg(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || n < lo || n > hi) {
        fprintf(stderr, "memory_tasks: %s wants an integer in [%ld, %ld], got '%s'\n",
                flag, lo, hi, v ? v : "");
        exit(2);
    }
    return n;
}

static double real_arg(const char *flag, const char *v, double lo)
{
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || !(x >= lo) || !isfinite(x)) {
        fprintf(stderr, "memory_tasks: %s wants a number >= %g, got '%s'\n",
                flag, lo, v ? v : "");
        exit(2);
    }
    return x;
}

static void lengths_arg(const char *flag, const char *v, int *lengths, int *nlengths)
{
    *nlengths = 0;
    const char *p = v ? v : "";
    for (;;) {
        char *end;
        errno = 0;
        long n = strtol(p, &end, 10);
        if (end == p || errno || n < 2 || n > 100000 || *nlengths == MAX_LENGTHS ||
            (*end && *end != ',')) {
            fprintf(stderr, "memory_tasks: %s wants up to %d integers >= 2 "
                            "separated by commas, got '%s'\n", flag, MAX_LENGTHS, v ? v : "");
            exit(2);
        }
        lengths[(*nlengths)++] = (int)n;
        if (!*end)
            break;
        p = end + 1;
    }
}

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.lengths = {10, 50, 100, 200}, .nlengths = 4,
                .copy_lengths = {10, 50, 100}, .ncopy_lengths = 3, .budget = 1500,
                .seeds = 2, .eval_every = 50, .H = 64, .B = 32, .val_B = 256,
                .threads = 2, .lr = 1e-2, .clip = 1.0, .forget_bias = 1.0,
                .adding = true, .copy = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--quick")) {
            o->lengths[0] = 5, o->lengths[1] = 10, o->nlengths = 2;
            o->copy_lengths[0] = 5, o->copy_lengths[1] = 10, o->ncopy_lengths = 2;
            o->budget = 200, o->seeds = 1;
            continue;
        } else if (!strcmp(a, "--times")) {
            o->times = true;
            continue;
        } else if (!strcmp(a, "--lengths")) { /* both tasks */
            lengths_arg(a, v, o->lengths, &o->nlengths);
            lengths_arg(a, v, o->copy_lengths, &o->ncopy_lengths);
        } else if (!strcmp(a, "--copy-lengths"))
            lengths_arg(a, v, o->copy_lengths, &o->ncopy_lengths);
        else if (!strcmp(a, "--budget"))
            o->budget = (int)int_arg(a, v, 1, 100000000);
        else if (!strcmp(a, "--seeds"))
            o->seeds = (int)int_arg(a, v, 1, 1000);
        else if (!strcmp(a, "--eval-every"))
            o->eval_every = (int)int_arg(a, v, 1, 100000000);
        else if (!strcmp(a, "--H"))
            o->H = (int)int_arg(a, v, 1, 100000);
        else if (!strcmp(a, "--B"))
            o->B = (int)int_arg(a, v, 1, 100000);
        else if (!strcmp(a, "--val-B"))
            o->val_B = (int)int_arg(a, v, 1, 1000000);
        else if (!strcmp(a, "--threads"))
            o->threads = (int)int_arg(a, v, 1, 1024);
        else if (!strcmp(a, "--lr"))
            o->lr = real_arg(a, v, 1e-12);
        else if (!strcmp(a, "--clip"))
            o->clip = real_arg(a, v, 1e-12);
        else if (!strcmp(a, "--forget-bias"))
            o->forget_bias = real_arg(a, v, -1e9);
        else if (!strcmp(a, "--task")) {
            if (v && !strcmp(v, "adding"))
                o->adding = true, o->copy = false;
            else if (v && !strcmp(v, "copy"))
                o->adding = false, o->copy = true;
            else if (v && !strcmp(v, "both"))
                o->adding = o->copy = true;
            else {
                fprintf(stderr, "memory_tasks: --task wants adding, copy or both, "
                                "got '%s'\n", v ? v : "");
                exit(2);
            }
        } else {
            fprintf(stderr, "memory_tasks: unknown option '%s' (see --help)\n", a);
            exit(2);
        }
        i++; /* the flag's value */
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- main ----------------------------------------------------------------- */

static const char *const cell_names[3] = {"rnn", "lstm", "gru"};

static void run_task(task k, const opts *o)
{
    const int *lengths = k == ADDING ? o->lengths : o->copy_lengths;
    int nlengths = k == ADDING ? o->nlengths : o->ncopy_lengths;
    const tg_cell_type *types[3] = {&tg_rnn_tanh_cell, &tg_lstm_cell, &tg_gru_cell};
    const char *name = k == ADDING ? "adding" : "copy";
    if (k == ADDING)
        printf("\n== adding problem: T steps, solved = validation mse < 0.01 "
               "(predicting 1: 0.167)\n");
    else
        printf("\n== copy task: K=%d symbols of %d, delay T (T + %d steps), "
               "solved = validation accuracy >= 0.95 (chance 0.125, loss log 8 = 2.08)\n",
               COPY_K, COPY_A, 2 * COPY_K);
    /* cell x length: solved count and sum of steps among solved */
    int solved[3][MAX_LENGTHS] = {{0}};
    double steps[3][MAX_LENGTHS] = {{0}};
    for (int c = 0; c < 3; c++)
        for (int l = 0; l < nlengths; l++)
            for (int s = 1; s <= o->seeds; s++) {
                double t0 = now();
                run_result r = run(k, types[c], lengths[l], s, o);
                printf("%s %-4s T=%-4d seed %d: ", name, cell_names[c], lengths[l], s);
                if (r.solved_at)
                    printf("solved at step %d", r.solved_at);
                else
                    printf("not solved in %d steps", o->budget);
                printf(k == ADDING ? " (val mse %.4f)" : " (val acc %.3f)", r.metric);
                if (o->times)
                    printf(" [%.1f s]", now() - t0);
                printf("\n");
                fflush(stdout);
                if (r.solved_at)
                    solved[c][l]++, steps[c][l] += r.solved_at;
            }
    printf("\n%s: solved/seeds, mean steps to solve among solved "
           "(budget %d, eval every %d)\n%-6s", name, o->budget, o->eval_every, "cell");
    for (int l = 0; l < nlengths; l++) {
        char head[32];
        snprintf(head, sizeof head, "T=%d", lengths[l]);
        printf("  %15s", head);
    }
    printf("\n");
    for (int c = 0; c < 3; c++) {
        printf("%-6s", cell_names[c]);
        for (int l = 0; l < nlengths; l++) {
            char cellbuf[32];
            if (solved[c][l])
                snprintf(cellbuf, sizeof cellbuf, "%d/%d %6.0f", solved[c][l],
                         o->seeds, steps[c][l] / solved[c][l]);
            else
                snprintf(cellbuf, sizeof cellbuf, "%d/%d      -", 0, o->seeds);
            printf("  %15s", cellbuf);
        }
        printf("\n");
    }
    printf("%s longest solved (by every seed):", name);
    for (int c = 0; c < 3; c++) {
        int best = 0;
        for (int l = 0; l < nlengths; l++)
            if (solved[c][l] == o->seeds && lengths[l] > best)
                best = lengths[l];
        if (best)
            printf(" %s T=%d", cell_names[c], best);
        else
            printf(" %s none", cell_names[c]);
        printf(c < 2 ? "," : "\n");
    }
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    tg_set_num_threads(o.threads);
    printf("memory_tasks: rnn (tanh), lstm (forget bias %g), gru; H=%d, batch %d, "
           "Adam lr %g, clip %g,\n%d seed(s), budget %d steps, validation batch %d\n",
           o.forget_bias, o.H, o.B, o.lr, o.clip, o.seeds, o.budget, o.val_B);
    double t0 = now();
    if (o.adding)
        run_task(ADDING, &o);
    if (o.copy)
        run_task(COPY, &o);
    tg_tape_free_all();
    if (o.times)
        printf("\ntotal %.1f s on %d thread(s)\n", now() - t0, o.threads);
    return 0;
}
