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
 * The tasks, their models and what "solved" means are defined once, in
 * examples/common/tasks.h (shared with the other examples).
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
#include "examples/common/cli.h"
#include "examples/common/tasks.h"
#include "nn/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LENGTHS 16
#define COPY_K TASK_COPY_K
#define COPY_A TASK_COPY_A

typedef struct opts {
    int lengths[MAX_LENGTHS], nlengths;           /* adding problem */
    int copy_lengths[MAX_LENGTHS], ncopy_lengths; /* copy task */
    int budget, seeds, eval_every, H, B, val_B, threads;
    double lr, clip, forget_bias;
    bool adding, copy, times;
} opts;

typedef task_kind task;
#define ADDING TASK_ADDING
#define COPY TASK_COPY

/* ---- one run: train until solved or out of budget ----------------------- */

typedef struct run_result {
    int solved_at; /* step, or 0 if not solved */
    double metric; /* validation mse (adding) or accuracy (copy) at the end */
} run_result;

static run_result run(task k, const tg_cell_type *type, int T, int seed,
                      const opts *o)
{
    tg_rng rng, data;
    tg_rng_seed(&rng, (uint64_t)seed);
    tg_rng_seed(&data, 1000 + (uint64_t)seed);
    task_model m;
    task_model_init(&m, k, type, o->H, o->forget_bias, &rng);
    tg_optim *opt = tg_adam_new(&m.ps, o->lr, 0.9, 0.999, 1e-8, 0);
    int64_t nids = (int64_t)COPY_K * (o->B > o->val_B ? o->B : o->val_B);
    int64_t *ids = tg_xcalloc((size_t)nids, sizeof *ids);
    run_result res = {0, k == ADDING ? (double)NAN : 0};
    for (int step = 1; step <= o->budget; step++) {
        tg_tensor *x, *target = NULL;
        if (k == ADDING)
            task_adding_batch(T, o->B, &data, &x, &target);
        else
            task_copy_batch(T, o->B, &data, &x, ids);
        double lv = task_train_step(&m, opt, k, x, target, ids, o->clip);
        if (!isfinite(lv))
            break; /* diverged: not solved */
        if (step % o->eval_every == 0 || step == o->budget) {
            res.metric = task_validate(&m, k, T, o->val_B, ids);
            if (task_passes(k, res.metric)) {
                res.solved_at = step;
                break;
            }
        }
    }
    free(ids);
    tg_optim_free(opt);
    task_model_free(&m);
    return res;
}

/* ---- command line ------------------------------------------------------- */

static const char help[] =
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
    "  --help          this text\n";

static int set_quick(void *cfg, const char *v)
{
    (void)v;
    opts *o = cfg;
    o->lengths[0] = 5, o->lengths[1] = 10, o->nlengths = 2;
    o->copy_lengths[0] = 5, o->copy_lengths[1] = 10, o->ncopy_lengths = 2;
    o->budget = 200, o->seeds = 1;
    return 0;
}

static int set_lengths(void *cfg, const char *v) /* both tasks */
{
    opts *o = cfg;
    cli_lengths("memory_tasks", "--lengths", v, o->lengths, &o->nlengths,
                MAX_LENGTHS);
    cli_lengths("memory_tasks", "--lengths", v, o->copy_lengths,
                &o->ncopy_lengths, MAX_LENGTHS);
    return 0;
}

static int set_copy_lengths(void *cfg, const char *v)
{
    opts *o = cfg;
    cli_lengths("memory_tasks", "--copy-lengths", v, o->copy_lengths,
                &o->ncopy_lengths, MAX_LENGTHS);
    return 0;
}

static int set_task(void *cfg, const char *v)
{
    opts *o = cfg;
    if (v && !strcmp(v, "adding"))
        o->adding = true, o->copy = false;
    else if (v && !strcmp(v, "copy"))
        o->adding = false, o->copy = true;
    else if (v && !strcmp(v, "both"))
        o->adding = o->copy = true;
    else
        return cli_fail("--task wants adding, copy or both, got '%s'",
                        v ? v : "");
    return 0;
}

#define OFF(f) offsetof(opts, f)
static const cli_flag flags[] = {
    {"quick", NULL, CLI_SET, 0, 0, 0, 0, NULL},
    {"times", NULL, CLI_SWITCH, OFF(times), 0, 0, 0, NULL},
    {"lengths", "L,..", CLI_SET, 1, 0, 0, 0, NULL},
    {"copy-lengths", "L,..", CLI_SET, 2, 0, 0, 0, NULL},
    {"budget", "N", CLI_INT, OFF(budget), 1, 100000000, 0, NULL},
    {"seeds", "N", CLI_INT, OFF(seeds), 1, 1000, 0, NULL},
    {"eval-every", "N", CLI_INT, OFF(eval_every), 1, 100000000, 0, NULL},
    {"H", "N", CLI_INT, OFF(H), 1, 100000, 0, NULL},
    {"B", "N", CLI_INT, OFF(B), 1, 100000, 0, NULL},
    {"val-B", "N", CLI_INT, OFF(val_B), 1, 1000000, 0, NULL},
    {"threads", "N", CLI_INT, OFF(threads), 1, 1024, 0, NULL},
    {"lr", "X", CLI_REAL, OFF(lr), 1e-12, 0, 0, NULL},
    {"clip", "X", CLI_REAL, OFF(clip), 1e-12, 0, 0, NULL},
    {"forget-bias", "X", CLI_REAL, OFF(forget_bias), -1e9, 0, 0, NULL},
    {"task", "T", CLI_SET, 3, 0, 0, 0, NULL},
};
static const cli_set_fn sets[] = {set_quick, set_lengths, set_copy_lengths,
                                  set_task};
static const cli_spec spec = {"memory_tasks", help, flags, CLI_COUNT(flags),
                              CLI_WANTS, NULL, sets};

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.lengths = {10, 50, 100, 200}, .nlengths = 4,
                .copy_lengths = {10, 50, 100}, .ncopy_lengths = 3, .budget = 1500,
                .seeds = 2, .eval_every = 50, .H = 64, .B = 32, .val_B = 256,
                .threads = 2, .lr = 1e-2, .clip = 1.0, .forget_bias = 1.0,
                .adding = true, .copy = true};
    cli_parse_or_exit(&spec, argc, argv, o);
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
                double t0 = cli_now();
                run_result r = run(k, types[c], lengths[l], s, o);
                printf("%s %-4s T=%-4d seed %d: ", name, cell_names[c], lengths[l], s);
                if (r.solved_at)
                    printf("solved at step %d", r.solved_at);
                else
                    printf("not solved in %d steps", o->budget);
                printf(k == ADDING ? " (val mse %.4f)" : " (val acc %.3f)", r.metric);
                if (o->times)
                    printf(" [%.1f s]", cli_now() - t0);
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
    double t0 = cli_now();
    if (o.adding)
        run_task(ADDING, &o);
    if (o.copy)
        run_task(COPY, &o);
    tg_tape_free_all();
    if (o.times)
        printf("\ntotal %.1f s on %d thread(s)\n", cli_now() - t0, o.threads);
    return 0;
}
