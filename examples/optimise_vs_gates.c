/*
 * examples/optimise_vs_gates.c - do recurrent networks need gates to model
 * long-range structure, or to make optimisation work at all?
 *
 * A plain tanh RNN trained with Adam fails the adding problem beyond short
 * lengths (docs/memory_tasks.md). If that is an optimisation failure, a
 * plain RNN should succeed when the optimisation is helped - by a better
 * starting point (identity or orthogonal recurrent weights) or by an
 * optimiser that sees curvature (Hessian-free). If it is a limit of what
 * the cell can represent and keep, nothing but gates will do. This program
 * runs the rows side by side on the adding problem (examples/common/tasks.h)
 * at growing T, with the same hidden size, the same validation batch and
 * the same wall-clock budget per run:
 *
 *   tanh   plain tanh RNN, default init (U(-1/sqrt H, 1/sqrt H)), Adam + clip
 *   irnn   ReLU RNN, W_hh = I, biases 0, W_ih ~ N(0, 0.001) (Le et al. 2015),
 *          Adam + clip
 *   orth   tanh RNN with an orthogonal W_hh, Adam + clip
 *   hf     tanh RNN, default init, Hessian-free with structural damping
 *          (Martens and Sutskever 2011; nn/curvature.h)
 *   lstm   LSTM (forget bias 1), Adam + clip          - the reference rows
 *   gru    GRU, Adam + clip
 *
 * and measures curvature along the way (--curvature): for the tanh RNN and
 * the LSTM trained with Adam, the Hessian's eigenvalue of largest magnitude
 * (power iteration on exact Hessian-vector products) and the gradient norm
 * on a fixed batch, against the distance travelled from the initial
 * parameters.
 *
 *   build/optimise_vs_gates [--lengths 10,50,100,150,200] [--seeds 3]
 *                           [--seconds 40] [--rows tanh,irnn,...]
 *                           [--shard I/N] [--curvature]
 *   build/optimise_vs_gates --report FILE... [--doc docs/optimise_vs_gates.md]
 *   make optimise-vs-gates      (two shards in parallel, then the report)
 *
 * Output: one line per run ("run row=tanh T=50 seed=1 solved=0 ..."), one
 * per curvature measurement ("curv ..."); --report reads such lines and
 * writes the tables (markdown) and the plots' data. A run ends when solved
 * (validation MSE < 0.01, checked every --eval-every Adam steps and after
 * every HF step), at --seconds of training time (validation excluded), or at
 * --max-steps. Times depend on the machine and its load; the --max-steps
 * form (no time limit) prints the same on every run.
 */
#include "examples/common/cli.h"
#include "examples/common/tasks.h"
#include "nn/curvature.h"
#include "nn/optim.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "optimise_vs_gates"
#define MAX_LENGTHS 16
#define MAX_FILES 64

typedef enum row { TANH, IRNN, ORTH, HF, LSTM, GRU, NROWS } row;
static const char *const row_names[NROWS] = {"tanh", "irnn", "orth", "hf",
                                             "lstm", "gru"};
static const char *const row_titles[NROWS] = {
    "tanh RNN, Adam + clip", "IRNN (ReLU, W_hh = I), Adam + clip",
    "tanh RNN, orthogonal W_hh, Adam + clip",
    "tanh RNN, Hessian-free (structural damping)", "LSTM, Adam + clip",
    "GRU, Adam + clip"};

typedef struct opts {
    int lengths[MAX_LENGTHS], nlengths;
    bool rows[NROWS];
    int seeds, H, B, hf_B, val_B, eval_every, hf_cg, threads;
    long max_steps;
    double seconds, lr, irnn_lr, clip, mu;
    int shard, nshards;
    bool curvature, runs;
    int curv_T;
    long curv_steps;
    const char *report[MAX_FILES];
    int nreport;
    const char *doc, *datadir;
} opts;

/* ---- models ------------------------------------------------------------- */

static const tg_cell_type *row_cell(row r)
{
    return r == IRNN ? &tg_rnn_relu_cell
           : r == LSTM ? &tg_lstm_cell
           : r == GRU  ? &tg_gru_cell
                       : &tg_rnn_tanh_cell;
}

/* W := an orthogonal matrix: Gram-Schmidt on Gaussian rows (in double) */
static void orthogonal_(tg_tensor *W, tg_rng *rng)
{
    int64_t n = W->shape[0];
    double *q = malloc((size_t)(n * n) * sizeof *q);
    for (int64_t i = 0; i < n * n; i++)
        q[i] = tg_rng_normal(rng);
    for (int64_t i = 0; i < n; i++) {
        for (int pass = 0; pass < 2; pass++) /* twice: stable enough */
            for (int64_t j = 0; j < i; j++) {
                double d = 0;
                for (int64_t k = 0; k < n; k++)
                    d += q[i * n + k] * q[j * n + k];
                for (int64_t k = 0; k < n; k++)
                    q[i * n + k] -= d * q[j * n + k];
            }
        double s = 0;
        for (int64_t k = 0; k < n; k++)
            s += q[i * n + k] * q[i * n + k];
        for (int64_t k = 0; k < n; k++)
            q[i * n + k] /= sqrt(s);
    }
    for (int64_t i = 0; i < n * n; i++)
        W->data[i] = (tg_real)q[i];
    tg_bump_version(W);
    free(q);
}

static void model_init(task_model *m, row r, const opts *o, tg_rng *rng)
{
    task_model_init(m, TASK_ADDING, row_cell(r), o->H, 1.0, rng);
    tg_cell *c = m->rnn->layers[0];
    if (r == IRNN) {
        tg_fill_(c->weight_hh, 0);
        for (int i = 0; i < o->H; i++)
            c->weight_hh->data[(int64_t)i * o->H + i] = 1;
        tg_fill_(c->bias_hh, 0);
        tg_fill_(c->bias_ih, 0);
        tg_fill_normal_(c->weight_ih, rng, 0, 0.001);
    } else if (r == ORTH) {
        orthogonal_(c->weight_hh, rng);
    }
}

/* ---- the model on a fixed batch, as a closure (HF, curvature) ------------- */

typedef struct batch {
    task_model *m;
    tg_tensor *x, *target; /* persistent (not arena) */
} batch;

static tg_tensor *batch_outputs(void *ud)
{
    batch *b = ud;
    return task_outputs(b->m, TASK_ADDING, b->x);
}
static tg_tensor *batch_loss(tg_tensor *z, void *ud)
{
    batch *b = ud;
    return task_loss_of(TASK_ADDING, z, b->target, NULL, NULL);
}
static tg_tensor *batch_hidden(void *ud)
{
    return ((batch *)ud)->m->hidden;
}

/* a persistent copy of an arena batch */
static tg_tensor *keep(tg_tensor *t)
{
    tg_tensor *k = tg_tensor_new(t->ndim, t->shape);
    tg_copy_(k, t);
    return k;
}

/* ---- one run -------------------------------------------------------------- */

typedef struct result {
    bool solved;
    double seconds; /* training time to solve, or spent */
    long steps;     /* optimiser steps */
    int64_t grads;  /* gradient evaluations (HF: + curvature products) */
    double metric;  /* validation MSE at the end */
} result;

static result run(row r, int T, int seed, const opts *o)
{
    tg_rng init, data;
    tg_rng_seed(&init, (uint64_t)seed);
    tg_rng_seed(&data, 1000 + (uint64_t)seed);
    task_model m;
    model_init(&m, r, o, &init);
    tg_optim *opt;
    if (r == HF) {
        tg_hf_config cfg = {.curv = {TG_CURV_MSE, TG_MEAN}, .lambda0 = 1,
                            .max_cg = o->hf_cg, .mu = o->mu};
        opt = tg_hf_optim_new(&m.ps, &cfg);
    } else {
        opt = tg_adam_new(&m.ps, r == IRNN ? o->irnn_lr : o->lr, 0.9, 0.999,
                          1e-8, 0);
    }
    result res = {.metric = NAN};
    double spent = 0;
    for (long step = 1; step <= o->max_steps && spent < o->seconds; step++) {
        double t0 = cli_now();
        tg_tensor *x, *target;
        task_adding_batch(T, r == HF ? o->hf_B : o->B, &data, &x, &target);
        double L;
        if (r == HF) {
            batch b = {&m, keep(x), keep(target)};
            tg_closure c = {batch_outputs, batch_loss,
                            o->mu > 0 ? batch_hidden : NULL, &b};
            L = tg_optim_step_closure(opt, &c);
            tg_tensor_free(b.x);
            tg_tensor_free(b.target);
            res.grads = opt->hf->gradients + opt->hf->products;
        } else {
            L = task_train_step(&m, opt, TASK_ADDING, x, target, NULL, o->clip);
            res.grads = step;
        }
        spent += cli_now() - t0;
        res.steps = step;
        if (!isfinite(L))
            break; /* diverged: not solved */
        if (r == HF || step % o->eval_every == 0) {
            res.metric = task_validate(&m, TASK_ADDING, T, o->val_B, NULL);
            if (task_passes(TASK_ADDING, res.metric)) {
                res.solved = true;
                break;
            }
        }
    }
    res.seconds = spent;
    tg_optim_free(opt);
    task_model_free(&m);
    return res;
}

/* ---- curvature along training ---------------------------------------------- */

static double flat_distance(const task_model *m, const tg_real *theta0)
{
    double s = 0;
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        const tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++) {
            double d = (double)w->data[k] - (double)theta0[at + k];
            s += d * d;
        }
        at += w->numel;
    }
    return sqrt(s);
}

/* loss and gradient norm on the fixed batch */
static double grad_norm(batch *c, double *loss)
{
    tg_tape_reset();
    tg_params_zero_grad(&c->m->ps);
    tg_tensor *l = batch_loss(batch_outputs(c), c);
    if (!l || tg_backward(l) < 0)
        exit(1);
    *loss = (double)tg_item(l);
    double s = 0;
    for (int i = 0; i < tg_params_count(&c->m->ps); i++) {
        const tg_tensor *w = tg_params_at(&c->m->ps, i)->tensor;
        for (int64_t k = 0; w->grad && k < w->numel; k++)
            s += (double)w->grad[k] * (double)w->grad[k];
    }
    tg_params_zero_grad(&c->m->ps);
    tg_tape_reset();
    return sqrt(s);
}

static void curvature(row r, const opts *o, FILE *out)
{
    int T = o->curv_T;
    tg_rng init, data, fixed;
    tg_rng_seed(&init, 1);
    tg_rng_seed(&data, 1001);
    tg_rng_seed(&fixed, 4242);
    task_model m;
    model_init(&m, r, o, &init);
    int64_t n = tg_params_numel(&m.ps), at = 0;
    tg_real *theta0 = malloc((size_t)n * sizeof *theta0);
    for (int i = 0; i < tg_params_count(&m.ps); i++) {
        const tg_tensor *w = tg_params_at(&m.ps, i)->tensor;
        memcpy(theta0 + at, w->data, (size_t)w->numel * sizeof *theta0);
        at += w->numel;
    }
    tg_tensor *x, *target;
    task_adding_batch(T, 128, &fixed, &x, &target);
    batch c = {&m, keep(x), keep(target)};
    tg_tape_reset();
    tg_optim *opt = tg_adam_new(&m.ps, o->lr, 0.9, 0.999, 1e-8, 0);
    long next = 0;
    for (long step = 0; step <= o->curv_steps; step++) {
        if (step == next) {
            double loss, g = grad_norm(&c, &loss);
            double eig = tg_hessian_top_eigenvalue(batch_outputs, batch_loss, &c,
                                                   &m.ps, 30, 1e-3, 7, NULL);
            fprintf(out, "curv row=%s T=%d step=%ld dist=%.6g gnorm=%.6g "
                    "eig=%.6g loss=%.6g\n", row_names[r], T, step,
                    flat_distance(&m, theta0), g, eig, loss);
            fflush(out);
            next = next < 25 ? next + 5 : next < 200 ? next + 25 : next + 100;
        }
        if (step == o->curv_steps)
            break;
        task_adding_batch(T, o->B, &data, &x, &target);
        task_train_step(&m, opt, TASK_ADDING, x, target, NULL, o->clip);
    }
    tg_optim_free(opt);
    tg_tensor_free(c.x);
    tg_tensor_free(c.target);
    free(theta0);
    task_model_free(&m);
}

/* ---- the report -------------------------------------------------------------- */

typedef struct cellstat {
    int runs, solved;
    double times[64]; /* of the solved runs */
    double grads[64];
} cellstat;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int length_index(int *lengths, int *n, int T)
{
    for (int i = 0; i < *n; i++)
        if (lengths[i] == T)
            return i;
    if (*n == MAX_LENGTHS)
        return -1;
    int i = (*n)++;
    while (i > 0 && lengths[i - 1] > T) { /* keep them sorted */
        lengths[i] = lengths[i - 1];
        i--;
    }
    lengths[i] = T;
    return i;
}

static int report(const opts *o)
{
    static cellstat st[NROWS][MAX_LENGTHS];
    int lengths[MAX_LENGTHS], nl = 0;
    char line[512];
    double seconds = 0;
    int seeds = 0;
    /* first pass: the lengths (sorted), so that indices are stable */
    for (int f = 0; f < o->nreport; f++) {
        FILE *in = fopen(o->report[f], "r");
        if (!in) {
            fprintf(stderr, PROG ": cannot read %s\n", o->report[f]);
            return 1;
        }
        while (fgets(line, sizeof line, in)) {
            int T;
            if (!strncmp(line, "run ", 4) && sscanf(strstr(line, "T="), "T=%d", &T) == 1)
                length_index(lengths, &nl, T);
        }
        fclose(in);
    }
    char dat[600];
    snprintf(dat, sizeof dat, "%s/curvature.dat", o->datadir);
    FILE *cv = fopen(dat, "w");
    if (!cv) {
        fprintf(stderr, PROG ": cannot write %s\n", dat);
        return 1;
    }
    fprintf(cv, "# row T step distance grad_norm top_hessian_eigenvalue loss\n");
    for (int f = 0; f < o->nreport; f++) {
        FILE *in = fopen(o->report[f], "r");
        while (in && fgets(line, sizeof line, in)) {
            char name[16];
            int T, seed, solved;
            long steps;
            double secs, metric, grads;
            if (sscanf(line, "run row=%15s T=%d seed=%d solved=%d seconds=%lf "
                       "steps=%ld grads=%lf mse=%lf budget=%lf", name, &T,
                       &seed, &solved, &secs, &steps, &grads, &metric,
                       &seconds) == 9) {
                int r = 0;
                while (r < NROWS && strcmp(row_names[r], name))
                    r++;
                int l = length_index(lengths, &nl, T);
                if (r == NROWS || l < 0 || st[r][l].runs == 64)
                    continue;
                cellstat *c = &st[r][l];
                c->runs++;
                seeds = c->runs > seeds ? c->runs : seeds;
                if (solved) {
                    c->times[c->solved] = secs;
                    c->grads[c->solved++] = grads;
                }
            } else if (!strncmp(line, "curv ", 5)) {
                long step;
                double d, g, e, L;
                if (sscanf(line, "curv row=%15s T=%d step=%ld dist=%lf gnorm=%lf "
                           "eig=%lf loss=%lf", name, &T, &step, &d, &g, &e,
                           &L) == 7)
                    fprintf(cv, "%s %d %ld %.6g %.6g %.6g %.6g\n", name, T,
                            step, d, g, e, L);
            }
        }
        if (in)
            fclose(in);
    }
    fclose(cv);
    FILE *out = o->doc ? fopen(o->doc, "w") : stdout;
    if (!out) {
        fprintf(stderr, PROG ": cannot write %s\n", o->doc);
        return 1;
    }
    fprintf(out, "# Optimisation or gates? The adding problem with plain and "
            "gated RNNs\n\nMade by `make optimise-vs-gates` "
            "([examples/optimise_vs_gates.c](../examples/optimise_vs_gates.c)"
            "); what the numbers say, and their limits: README, section "
            "\"Optimisation or gates?\". Rerunning rewrites this file; the "
            "raw lines are in `optimise_vs_gates/runs.*`.\n\n");
    fprintf(out, "Every run: one recurrent layer of the same size, the "
            "adding problem at length T (examples/common/tasks.h: a fresh "
            "batch per step, a fixed validation batch of 256), **solved = "
            "validation MSE < 0.01** (predicting the mean scores 0.167), "
            "checked every 50 Adam steps and after every HF step; ");
    if (seconds > 0)
        fprintf(out, "a budget of **%.0f s of training time** per run "
                "(validation not counted), the same for every row. Two runs "
                "at a time on the two cores, one thread each.\n\n", seconds);
    else
        fprintf(out, "a budget of optimiser steps (--max-steps), no time "
                "limit.\n\n");
    fprintf(out, "## Solved\n\nsolved/seeds, then the median seconds to "
            "solve among the solved runs and (in brackets) their median "
            "gradient evaluations - for Hessian-free, gradients plus "
            "curvature products, each about the cost of one gradient.\n\n");
    fprintf(out, "| row |");
    for (int l = 0; l < nl; l++)
        fprintf(out, " T=%d |", lengths[l]);
    fprintf(out, "\n|---|");
    for (int l = 0; l < nl; l++)
        fprintf(out, "---|");
    fprintf(out, "\n");
    snprintf(dat, sizeof dat, "%s/solved.dat", o->datadir);
    FILE *sd = fopen(dat, "w");
    if (!sd) {
        fprintf(stderr, PROG ": cannot write %s\n", dat);
        return 1;
    }
    fprintf(sd, "# T, then per row (%s ...): fraction solved, median "
            "seconds to solve (nan: none)\nT", row_names[0]);
    for (int r = 0; r < NROWS; r++)
        fprintf(sd, " %s_frac %s_sec", row_names[r], row_names[r]);
    fprintf(sd, "\n");
    for (int r = 0; r < NROWS; r++) {
        bool any = false;
        for (int l = 0; l < nl; l++)
            any |= st[r][l].runs > 0;
        if (!any)
            continue;
        fprintf(out, "| %s |", row_titles[r]);
        for (int l = 0; l < nl; l++) {
            cellstat *c = &st[r][l];
            if (!c->runs)
                fprintf(out, " |");
            else if (!c->solved)
                fprintf(out, " 0/%d |", c->runs);
            else
                fprintf(out, " %d/%d, %.1f s (%.0f) |", c->solved, c->runs,
                        median(c->times, c->solved),
                        median(c->grads, c->solved));
        }
        fprintf(out, "\n");
    }
    fprintf(out, "\nLongest T solved by every seed:");
    for (int r = 0; r < NROWS; r++) {
        int best = 0;
        bool any = false;
        for (int l = 0; l < nl; l++) {
            any |= st[r][l].runs > 0;
            if (st[r][l].runs && st[r][l].solved == st[r][l].runs)
                best = lengths[l];
        }
        if (any && best)
            fprintf(out, " %s T=%d;", row_names[r], best);
        else if (any)
            fprintf(out, " %s none;", row_names[r]);
    }
    fprintf(out, "\n\n![solved fraction and time to solve against T]"
            "(optimise_vs_gates/solved.svg)\n\n");
    fprintf(out, "## Curvature during training\n\nThe tanh RNN and the "
            "LSTM trained with Adam (the rows above, seed 1), measured on a "
            "fixed batch of 128 sequences: the Hessian's eigenvalue of "
            "largest magnitude (power iteration, up to 30 exact Hessian-"
            "vector products) and the gradient norm, against the distance "
            "|theta - theta_0| travelled from the initial parameters. Data: "
            "`optimise_vs_gates/curvature.dat`.\n\n"
            "![top Hessian eigenvalue and gradient norm against distance]"
            "(optimise_vs_gates/curvature.svg)\n\n");
    fprintf(out, "| row | T | step | distance | gradient norm | top "
            "eigenvalue | loss |\n|---|---|---|---|---|---|---|\n");
    snprintf(dat, sizeof dat, "%s/curvature.dat", o->datadir);
    FILE *cin = fopen(dat, "r");
    while (cin && fgets(line, sizeof line, cin)) {
        char name[16];
        int T;
        long step;
        double d, g, e, L;
        if (sscanf(line, "%15s %d %ld %lf %lf %lf %lf", name, &T, &step, &d,
                   &g, &e, &L) == 7 &&
            (step % 100 == 0 || step == 25))
            fprintf(out, "| %s | %d | %ld | %.3g | %.3g | %.4g | %.4g |\n",
                    name, T, step, d, g, e, L);
    }
    if (cin)
        fclose(cin);
    for (int l = 0; l < nl; l++) {
        fprintf(sd, "%d", lengths[l]);
        for (int r = 0; r < NROWS; r++) {
            cellstat *c = &st[r][l];
            fprintf(sd, " %.4g", c->runs ? (double)c->solved / c->runs : (double)NAN);
            fprintf(sd, " %.4g", c->solved ? median(c->times, c->solved) : (double)NAN);
        }
        fprintf(sd, "\n");
    }
    fclose(sd);
    if (out != stdout)
        fclose(out);
    (void)seeds;
    return 0;
}

/* ---- command line -------------------------------------------------------------- */

static const char help[] =
    "usage: " PROG " [options]\n"
    "       " PROG " --report FILE... [--doc FILE] [--data-dir DIR]\n\n"
    "Trains plain and gated RNNs on the adding problem at several lengths\n"
    "with several optimisers, one line per run; with --curvature, also\n"
    "measures the Hessian's top eigenvalue during training.\n\n"
    "options:\n"
    "  --lengths L,..   sequence lengths (default 10,50,100,150,200)\n"
    "  --rows R,..      of tanh, irnn, orth, hf, lstm, gru (default all)\n"
    "  --seeds N        seeds per row and length (default 3)\n"
    "  --seconds S      training-time budget per run (default 40)\n"
    "  --max-steps N    optimiser steps per run at most (default: no limit)\n"
    "  --H N            hidden size (default 64)\n"
    "  --B N            Adam batch (default 32)\n"
    "  --hf-B N         HF batch (default 256)\n"
    "  --hf-cg N        HF conjugate-gradient iterations per step (default 50)\n"
    "  --mu X           HF structural damping (default 1/30)\n"
    "  --lr X           Adam learning rate (default 0.01)\n"
    "  --irnn-lr X      the IRNN's Adam learning rate (default 0.001)\n"
    "  --clip X         gradient norm clip for Adam (default 1)\n"
    "  --eval-every N   Adam steps between validations (default 50)\n"
    "  --val-B N        validation batch (default 256)\n"
    "  --shard I/N      run only runs I, I+N, I+2N, ... (0 <= I < N)\n"
    "  --curvature      also measure curvature (tanh and lstm, shard 0)\n"
    "  --no-runs        only the curvature\n"
    "  --curv-T T       its length (default 50)\n"
    "  --curv-steps N   its Adam steps (default 1000)\n"
    "  --threads N      OpenMP threads (default 1)\n"
    "  --quick          T=10, one seed, 300 steps: seconds, same output\n"
    "                   on every run\n"
    "  --report FILE..  read run lines, write the tables (stdout or --doc)\n"
    "                   and DIR/solved.dat, DIR/curvature.dat\n";

static int set_quick(void *cfg, const char *v)
{
    (void)v;
    opts *o = cfg;
    o->lengths[0] = 10, o->nlengths = 1, o->seeds = 1;
    o->max_steps = 300, o->seconds = 1e9, o->hf_B = 64, o->hf_cg = 20;
    o->curv_T = 10, o->curv_steps = 30, o->H = 16;
    return 0;
}

static int set_no_runs(void *cfg, const char *v)
{
    (void)v;
    ((opts *)cfg)->runs = false;
    return 0;
}

/* one file of --report FILE... (NULL: none was given); 1: no room */
static int set_report(void *cfg, const char *v)
{
    opts *o = cfg;
    if (!v)
        return cli_fail("--report wants files");
    if (o->nreport == MAX_FILES)
        return 1;
    o->report[o->nreport++] = v;
    return 0;
}

static int set_lengths(void *cfg, const char *v)
{
    opts *o = cfg;
    cli_lengths(PROG, "--lengths", v, o->lengths, &o->nlengths, MAX_LENGTHS);
    return 0;
}

static int set_rows(void *cfg, const char *v)
{
    opts *o = cfg;
    for (int r = 0; r < NROWS; r++)
        o->rows[r] = false;
    const char *p = v ? v : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        int r = 0;
        while (r < NROWS && (strlen(row_names[r]) != n ||
                             strncmp(row_names[r], p, n)))
            r++;
        if (r == NROWS)
            return cli_fail("--rows: unknown row '%.*s' (rows: tanh, irnn, "
                            "orth, hf, lstm, gru)", (int)n, p);
        o->rows[r] = true;
        p += n + (p[n] == ',');
    }
    return v ? 0 : cli_fail("--rows wants a value");
}

static int set_shard(void *cfg, const char *v)
{
    opts *o = cfg;
    if (!v || sscanf(v, "%d/%d", &o->shard, &o->nshards) != 2 ||
        o->nshards < 1 || o->shard < 0 || o->shard >= o->nshards)
        return cli_fail("--shard wants I/N with 0 <= I < N, got '%s'",
                        v ? v : "");
    return 0;
}

#define OFF(f) offsetof(opts, f)
static const cli_flag flags[] = {
    {"quick", NULL, CLI_SET, 0, 0, 0, 0, NULL},
    {"curvature", NULL, CLI_SWITCH, OFF(curvature), 0, 0, 0, NULL},
    {"no-runs", NULL, CLI_SET, 1, 0, 0, 0, NULL},
    {"report", "FILE..", CLI_SET, 2, 0, 0, CLI_MANY, NULL},
    {"lengths", "L,..", CLI_SET, 3, 0, 0, 0, NULL},
    {"rows", "R,..", CLI_SET, 4, 0, 0, 0, NULL},
    {"seeds", "N", CLI_INT, OFF(seeds), 1, 64, 0, NULL},
    {"seconds", "S", CLI_REAL, OFF(seconds), 1e-3, 0, 0, NULL},
    {"max-steps", "N", CLI_LONG, OFF(max_steps), 1, 1000000000L, 0, NULL},
    {"H", "N", CLI_INT, OFF(H), 1, 4096, 0, NULL},
    {"B", "N", CLI_INT, OFF(B), 1, 100000, 0, NULL},
    {"hf-B", "N", CLI_INT, OFF(hf_B), 1, 100000, 0, NULL},
    {"hf-cg", "N", CLI_INT, OFF(hf_cg), 1, 100000, 0, NULL},
    {"mu", "X", CLI_REAL, OFF(mu), 0, 0, 0, NULL},
    {"lr", "X", CLI_REAL, OFF(lr), 1e-12, 0, 0, NULL},
    {"irnn-lr", "X", CLI_REAL, OFF(irnn_lr), 1e-12, 0, 0, NULL},
    {"clip", "X", CLI_REAL, OFF(clip), 1e-12, 0, 0, NULL},
    {"eval-every", "N", CLI_INT, OFF(eval_every), 1, 100000000, 0, NULL},
    {"val-B", "N", CLI_INT, OFF(val_B), 1, 1000000, 0, NULL},
    {"curv-T", "T", CLI_INT, OFF(curv_T), 2, 100000, 0, NULL},
    {"curv-steps", "N", CLI_LONG, OFF(curv_steps), 0, 100000000, 0, NULL},
    {"threads", "N", CLI_INT, OFF(threads), 1, 1024, 0, NULL},
    {"doc", "FILE", CLI_STR, OFF(doc), 0, 0, 0, NULL},
    {"data-dir", "DIR", CLI_STR, OFF(datadir), 0, 0, 0, NULL},
    {"shard", "I/N", CLI_SET, 5, 0, 0, 0, NULL},
};
static const cli_set_fn sets[] = {set_quick, set_no_runs, set_report,
                                  set_lengths, set_rows, set_shard};
static const cli_spec spec = {PROG, help, flags, CLI_COUNT(flags), CLI_WANTS,
                              NULL, sets};

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.lengths = {10, 50, 100, 150, 200}, .nlengths = 5,
                .seeds = 3, .H = 64, .B = 32, .hf_B = 256, .val_B = 256,
                .eval_every = 50, .hf_cg = 50, .threads = 1,
                .max_steps = 1000000000L, .seconds = 40, .lr = 1e-2,
                .irnn_lr = 1e-3, .clip = 1, .mu = 1.0 / 30, .nshards = 1,
                .runs = true, .curv_T = 50, .curv_steps = 1000,
                .datadir = "."};
    for (int r = 0; r < NROWS; r++)
        o->rows[r] = true;
    cli_parse_or_exit(&spec, argc, argv, o);
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    if (o.nreport)
        return report(&o);
    tg_set_num_threads(o.threads);
    if (o.curvature && o.shard == 0) {
        curvature(TANH, &o, stdout);
        curvature(LSTM, &o, stdout);
    }
    int k = 0;
    for (int l = 0; o.runs && l < o.nlengths; l++)
        for (int r = 0; r < NROWS; r++)
            for (int s = 1; s <= o.seeds; s++) {
                if (!o.rows[r] || k++ % o.nshards != o.shard)
                    continue;
                result res = run((row)r, o.lengths[l], s, &o);
                printf("run row=%s T=%d seed=%d solved=%d seconds=%.2f "
                       "steps=%ld grads=%lld mse=%.4g budget=%.0f\n",
                       row_names[r], o.lengths[l], s, res.solved,
                       o.max_steps < 1000000000L ? 0.0 : res.seconds,
                       res.steps, (long long)res.grads, res.metric,
                       o.max_steps < 1000000000L ? 0.0 : o.seconds);
                fflush(stdout);
            }
    tg_tape_free_all();
    return 0;
}
