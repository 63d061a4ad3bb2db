/*
 * examples/hf_vs_sgd.c - Hessian-free against SGD (and Adam, for scale) on
 * charlm's model, at an equal cost counted in gradient evaluations.
 *
 * The model is charlm's (nn/charlm.h: embedding, LSTM, linear decoder),
 * small, on the first --chars characters of a text (90% to train on, the
 * last 10% to validate on). Every step draws --B windows of --T characters
 * at random offsets; the validation loss is the mean cross-entropy over
 * fixed windows spread evenly over the held-out part.
 *
 * The cost unit is one gradient on --B windows (a forward and a backward
 * pass). SGD and Adam spend one per step. Hessian-free (nn/curvature.h)
 * spends, per step on its batch of --hf-B windows, one gradient, one
 * Gauss-Newton product per conjugate-gradient iteration (a forward, a
 * tangent sweep and a backward pass: counted as one gradient, which
 * flatters HF slightly - wall time is printed too) and forward-only loss
 * evaluations for backtracking (half a gradient each), all scaled by
 * hf-B / B. Every run stops at the same --budget; the validation loss is
 * recorded at fixed points of the budget.
 *
 *   build/hf_vs_sgd [--data FILE|DIR] [--budget 4000] [--doc FILE]
 *   build/hf_vs_sgd --quick --data FILE    (seconds, for the tests)
 *   make hf-vs-sgd                         (docs/hf_vs_sgd.md)
 */
#include "examples/common/cli.h"
#include "nn/charlm.h"
#include "nn/curvature.h"
#include "nn/optim.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#define PROG "hf_vs_sgd"
#define MAX_POINTS 64

typedef struct opts {
    const char *data, *doc;
    long chars, budget;
    int T, B, hf_B, hf_cg, hidden, embed, points, threads;
    double sgd_lrs[3], adam_lr, clip;
    bool quick, hf_only;
} opts;

/* ---- text -------------------------------------------------------------- */

typedef struct text {
    int64_t *ids; /* byte ids, 0..V-1 */
    int64_t n, ntrain;
    int V;
} text;

/* up to cap bytes of path into buf at *n: a file, or a directory's regular
 * files in name order (skipping *.dat and *.u8, as charlm does) */
static int read_into(const char *path, unsigned char *buf, size_t cap,
                     size_t *n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, PROG ": cannot read %s\n", path);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        struct dirent **names;
        int k = scandir(path, &names, NULL, alphasort);
        if (k < 0) {
            fprintf(stderr, PROG ": cannot read the directory %s\n", path);
            return -1;
        }
        for (int i = 0; i < k; i++) {
            const char *nm = names[i]->d_name;
            size_t len = strlen(nm);
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", path, nm);
            struct stat fs;
            if (nm[0] != '.' && !(len > 4 && !strcmp(nm + len - 4, ".dat")) &&
                !(len > 3 && !strcmp(nm + len - 3, ".u8")) &&
                lstat(full, &fs) == 0 && S_ISREG(fs.st_mode) && *n < cap)
                read_into(full, buf, cap, n);
            free(names[i]);
        }
        free(names);
        return 0;
    }
    FILE *f = S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, PROG ": cannot read %s (not a regular file)\n", path);
        return -1;
    }
    *n += fread(buf + *n, 1, cap - *n, f);
    fclose(f);
    return 0;
}

static int read_text(const opts *o, text *t)
{
    unsigned char *buf = malloc((size_t)o->chars);
    size_t n = 0;
    if (read_into(o->data, buf, (size_t)o->chars, &n) < 0) {
        free(buf);
        return -1;
    }
    if (n < (size_t)(20 * (o->T + 1))) {
        fprintf(stderr, PROG ": %s has %zu bytes; at least %d are needed\n",
                o->data, n, 20 * (o->T + 1));
        free(buf);
        return -1;
    }
    int map[256];
    for (int i = 0; i < 256; i++)
        map[i] = -1;
    t->V = 0;
    for (size_t i = 0; i < n; i++) /* ids in byte order */
        map[buf[i]] = 0;
    for (int i = 0; i < 256; i++)
        if (map[i] == 0)
            map[i] = t->V++;
    t->ids = malloc(n * sizeof *t->ids);
    for (size_t i = 0; i < n; i++)
        t->ids[i] = map[buf[i]];
    free(buf);
    t->n = (int64_t)n;
    t->ntrain = t->n * 9 / 10;
    return 0;
}

/* B windows of T+1 ids at starts: inputs [T, B], targets [T*B] */
static void windows(const text *t, int T, int B, const int64_t *starts,
                    int64_t *x, int64_t *y)
{
    for (int b = 0; b < B; b++)
        for (int s = 0; s < T; s++) {
            x[(int64_t)s * B + b] = t->ids[starts[b] + s];
            y[(int64_t)s * B + b] = t->ids[starts[b] + s + 1];
        }
}

/* ---- the model on one batch ------------------------------------------------ */

typedef struct batch {
    tg_charlm *m;
    int64_t *x, *y;
    int T, B;
} batch;

static tg_tensor *outputs(void *ud)
{
    batch *b = ud;
    tg_rnn_out out;
    tg_tensor *l = tg_charlm_forward(b->m, b->x, b->T, b->B, NULL, false, NULL,
                                     &out);
    return l ? tg_reshape(l, TG_SHAPE((int64_t)b->T * b->B, b->m->vocab)) : NULL;
}
static tg_tensor *ce(tg_tensor *z, void *ud)
{
    return tg_cross_entropy(z, ((batch *)ud)->y, TG_MEAN);
}

/* mean cross-entropy over fixed windows of the held-out part */
static double validate(tg_charlm *m, const text *t, int T)
{
    int nwin = 128, B = 32;
    int64_t lo = t->ntrain, span = t->n - T - 1 - lo;
    int64_t *x = malloc((size_t)(T * B) * sizeof *x), *y = malloc((size_t)(T * B) * sizeof *y);
    int64_t starts[32];
    double sum = 0;
    bool was = tg_set_grad_enabled(false);
    for (int w0 = 0; w0 < nwin; w0 += B) {
        for (int b = 0; b < B; b++)
            starts[b] = lo + span * (w0 + b) / nwin;
        windows(t, T, B, starts, x, y);
        batch bt = {m, x, y, T, B};
        sum += (double)tg_item(ce(outputs(&bt), &bt));
        tg_tape_reset();
    }
    tg_set_grad_enabled(was);
    free(x);
    free(y);
    return sum / (nwin / B);
}

/* ---- one run ------------------------------------------------------------------ */

typedef enum kind { SGD, ADAM, HF } kind;

typedef struct curve {
    double cost[MAX_POINTS], val[MAX_POINTS], seconds[MAX_POINTS];
    int n;
} curve;

static curve run(kind k, double lr, const text *t, const opts *o)
{
    tg_rng init, draw;
    tg_rng_seed(&init, 1);
    tg_rng_seed(&draw, 2);
    tg_charlm *m = tg_charlm_new(&tg_lstm_cell, t->V, o->embed, o->hidden, 1,
                                 0.0, &init);
    tg_optim *opt = k == SGD ? tg_sgd_new(&m->params, lr, 0, 0, 0, false)
                    : k == ADAM ? tg_adam_new(&m->params, lr, 0.9, 0.999, 1e-8, 0)
                                : tg_hf_optim_new(&m->params, &(tg_hf_config){
                                      .curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN},
                                      .max_cg = o->hf_cg});
    int B = k == HF ? o->hf_B : o->B;
    double scale = (double)B / o->B; /* cost units per pass on B windows */
    int64_t *x = malloc((size_t)(o->T * B) * sizeof *x);
    int64_t *y = malloc((size_t)(o->T * B) * sizeof *y);
    int64_t *starts = malloc((size_t)B * sizeof *starts);
    curve c = {.n = 0};
    double cost = 0, spent = 0;
    int next = 0;
    while (next < o->points) {
        double at = (double)o->budget * next / (o->points - 1);
        if (cost >= at) { /* a point of the budget reached */
            c.cost[c.n] = cost;
            c.seconds[c.n] = spent;
            c.val[c.n++] = validate(m, t, o->T);
            next++;
            continue;
        }
        double t0 = cli_now();
        for (int b = 0; b < B; b++)
            starts[b] = (int64_t)tg_rng_below(&draw, (uint64_t)(t->ntrain - o->T - 1));
        windows(t, o->T, B, starts, x, y);
        batch bt = {m, x, y, o->T, B};
        tg_closure cl = {.outputs = outputs, .loss = ce, .ud = &bt};
        if (k == HF) {
            tg_hf *h = opt->hf;
            int64_t g0 = h->gradients, p0 = h->products, l0 = h->losses;
            if (!isfinite(tg_optim_step_closure(opt, &cl)))
                break;
            cost += scale * ((double)(h->gradients - g0) +
                             (double)(h->products - p0) +
                             0.5 * (double)(h->losses - l0));
        } else {
            tg_tape_reset();
            tg_optim_zero_grad(opt);
            tg_tensor *l = ce(outputs(&bt), &bt);
            if (!l || tg_backward(l) < 0 || !isfinite((double)tg_item(l)))
                break;
            tg_clip_grad_norm(&m->params, o->clip);
            tg_optim_step(opt);
            tg_tape_reset();
            cost += 1;
        }
        spent += cli_now() - t0;
    }
    free(x);
    free(y);
    free(starts);
    tg_optim_free(opt);
    tg_charlm_free(m);
    return c;
}

/* ---- command line and report ------------------------------------------------------ */

static const char help[] =
    "usage: " PROG " [options]\n\n"
    "Trains charlm's model (LSTM) with SGD (three learning rates), Adam\n"
    "and Hessian-free to the same cost in gradient evaluations, and\n"
    "prints the validation loss along the way.\n\n"
    "options:\n"
    "  --data FILE|DIR text, or a directory's files (default\n"
    "                  /usr/share/games/fortunes)\n"
    "  --chars N       characters of it to use (default 300000)\n"
    "  --budget N      gradient evaluations per run (default 4000)\n"
    "  --points N      validations along the budget (default 9)\n"
    "  --T N --B N     window length and windows per step (32, 32)\n"
    "  --hf-B N        Hessian-free's windows per step (default 128)\n"
    "  --hf-cg N       its CG iterations per step at most (default 50)\n"
    "  --hidden N      LSTM size (default 128); --embed N (default 32)\n"
    "  --threads N     OpenMP threads (default 2)\n"
    "  --hf-only       run Hessian-free alone (to try its settings)\n"
    "  --doc FILE      also write the table as markdown to FILE\n"
    "  --quick         a seconds-long run (for the tests)\n";

static int set_quick(void *cfg, const char *v)
{
    (void)v;
    opts *o = cfg;
    o->quick = true, o->chars = 20000, o->budget = 120, o->points = 3;
    o->hidden = 16, o->embed = 8, o->T = 16, o->B = 8, o->hf_B = 16;
    o->hf_cg = 10;
    return 0;
}

#define OFF(f) offsetof(opts, f)
static const cli_flag flags[] = {
    {"quick", NULL, CLI_SET, 0, 0, 0, 0, NULL},
    {"hf-only", NULL, CLI_SWITCH, OFF(hf_only), 0, 0, 0, NULL},
    {"data", "FILE|DIR", CLI_STR, OFF(data), 0, 0, 0, NULL},
    {"doc", "FILE", CLI_STR, OFF(doc), 0, 0, 0, NULL},
    {"chars", "N", CLI_LONG, OFF(chars), 1000, 1000000000L, 0, NULL},
    {"budget", "N", CLI_LONG, OFF(budget), 1, 100000000L, 0, NULL},
    {"points", "N", CLI_INT, OFF(points), 2, MAX_POINTS, 0, NULL},
    {"T", "N", CLI_INT, OFF(T), 2, 10000, 0, NULL},
    {"B", "N", CLI_INT, OFF(B), 1, 10000, 0, NULL},
    {"hf-B", "N", CLI_INT, OFF(hf_B), 1, 100000, 0, NULL},
    {"hf-cg", "N", CLI_INT, OFF(hf_cg), 1, 10000, 0, NULL},
    {"hidden", "N", CLI_INT, OFF(hidden), 1, 8192, 0, NULL},
    {"embed", "N", CLI_INT, OFF(embed), 1, 8192, 0, NULL},
    {"threads", "N", CLI_INT, OFF(threads), 1, 1024, 0, NULL},
};
static const cli_set_fn sets[] = {set_quick};
static const cli_spec spec = {PROG, help, flags, CLI_COUNT(flags), CLI_WANTS,
                              NULL, sets};

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.data = "/usr/share/games/fortunes", .chars = 300000,
                .budget = 4000, .T = 32, .B = 32, .hf_B = 128, .hf_cg = 50,
                .hidden = 128, .embed = 32, .points = 9, .threads = 2,
                .sgd_lrs = {0.3, 1.0, 3.0}, .adam_lr = 2e-3, .clip = 5};
    cli_parse_or_exit(&spec, argc, argv, o);
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    tg_set_num_threads(o.threads);
    text t;
    if (read_text(&o, &t) < 0)
        return 1;
    const char *names[5] = {"SGD lr 0.3", "SGD lr 1", "SGD lr 3", "Adam lr 2e-3",
                            "Hessian-free"};
    curve c[5] = {{.n = 0}};
    for (int i = o.hf_only ? 4 : 0; i < 5; i++) {
        kind k = i < 3 ? SGD : i == 3 ? ADAM : HF;
        c[i] = run(k, i < 3 ? o.sgd_lrs[i] : o.adam_lr, &t, &o);
    }
    FILE *outs[2] = {stdout, o.doc ? fopen(o.doc, "w") : NULL};
    if (o.doc && !outs[1]) {
        fprintf(stderr, PROG ": cannot write %s\n", o.doc);
        return 1;
    }
    for (int f = 0; f < 2 && outs[f]; f++) {
        FILE *out = outs[f];
        if (f == 1)
            fprintf(out, "# Hessian-free against SGD on charlm's model\n\n"
                    "Made by `make hf-vs-sgd` ([examples/hf_vs_sgd.c]"
                    "(../examples/hf_vs_sgd.c), which explains the cost "
                    "count).\n\n");
        fprintf(out, "%s: first %lld characters (vocabulary %d, 10%% held "
                "out); LSTM %d (embedding %d), windows of %d, %d per step "
                "(HF: %d); validation loss (nats/char) against the cost in "
                "gradient evaluations of %d windows; seconds of training in "
                "brackets\n\n", o.data, (long long)t.n, t.V, o.hidden,
                o.embed, o.T, o.B, o.hf_B, o.B);
        fprintf(out, "| cost |");
        for (int i = 0; i < 5; i++)
            fprintf(out, " %s |", names[i]);
        fprintf(out, "\n|---|---|---|---|---|---|\n");
        for (int p = 0; p < o.points; p++) {
            fprintf(out, "| %.0f |", (double)o.budget * p / (o.points - 1));
            for (int i = 0; i < 5; i++)
                if (p < c[i].n)
                    fprintf(out, " %.4f (%.0f s) |", c[i].val[p], c[i].seconds[p]);
                else
                    fprintf(out, " %s |", o.hf_only && i < 4 ? "-" : "diverged");
            fprintf(out, "\n");
        }
        int bs = 0;
        for (int i = 1; i < 3; i++)
            if (c[i].n == o.points &&
                (c[bs].n < o.points || c[i].val[o.points - 1] < c[bs].val[o.points - 1]))
                bs = i;
        double sgd = c[bs].n == o.points ? c[bs].val[o.points - 1] : (double)NAN;
        double hf = c[4].n == o.points ? c[4].val[o.points - 1] : (double)NAN;
        if (o.hf_only)
            fprintf(out, "\nat the full budget: Hessian-free %.4f\n", hf);
        else
            fprintf(out, "\nat the full budget: Hessian-free %.4f, the best "
                    "SGD (%s) %.4f: Hessian-free is %s\n", hf, names[bs], sgd,
                    hf < sgd ? "lower" : "NOT lower");
        if (f == 1)
            fclose(out);
    }
    free(t.ids);
    tg_tape_free_all();
    return 0;
}
