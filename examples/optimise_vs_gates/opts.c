/*
 * examples/optimise_vs_gates/opts.c - the flags of build/optimise_vs_gates
 * and their defaults: the study's settings, each written into the page.
 */
#include "ovg.h"

#include "examples/common/cli.h"

#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: " PROG " [options]          the study, one line per job\n"
    "       " PROG " --report FILE... [--doc FILE] [--data-dir DIR]\n"
    "       " PROG " --calibrate        the cost of a curvature product\n\n"
    "Plain and gated RNNs on the adding problem and the copy task, each\n"
    "row tuned by the same rule, budgets counted in sequence-gradients\n"
    "(one forward-backward of one sequence; examples/optimise_vs_gates/).\n\n"
    "options:\n"
    "  --stage S        all (default), tune, or study (needs the tuning's\n"
    "                   lines in --results)\n"
    "  --rows R,..      of tanh, lstm, gru, orth, irnn-le, hf-ms, tanh-id,\n"
    "                   relu, irnn, hf, hf-sparse (default all)\n"
    "  --adding L,..    adding-problem lengths (default 10,50,100,200)\n"
    "  --copy L,..      copy-task lengths (default 10,20,50,100)\n"
    "  --seeds N        reported seeds per row and length (default 5)\n"
    "  --tune-seeds N   tuning seeds per setting (default 2)\n"
    "  --budget-adding W, --budget-copy W\n"
    "                   work per run in sequence-gradients (default\n"
    "                   250000, 150000)\n"
    "  --tune-budget-adding W, --tune-budget-copy W\n"
    "                   work per tuning run (default 60000, 50000)\n"
    "  --tune-adding T, --tune-copy T\n"
    "                   the tuning lengths (default 50, 20)\n"
    "  --H N            hidden size (default 64)\n"
    "  --B N            Adam/SGD batch (default 32)\n"
    "  --val-B N        validation batch (default 256)\n"
    "  --eval-every N   Adam/SGD steps between validations (default 50)\n"
    "  --curvature      also the curvature trajectories (study stage)\n"
    "  --no-runs        the study stage without its runs (the curvature\n"
    "                   alone)\n"
    "  --curv-T T       their length (default 50)\n"
    "  --curv-steps N   their Adam steps (default 1000)\n"
    "  --curv-seeds N   seeds per row and rate (default 3)\n"
    "  --curv-B N       the fixed batch they are measured on (default 128)\n"
    "  --curv-iters N   power iterations at most (default 30)\n"
    "  --shard I/N      run only jobs I, I+N, ... of the stage (0 <= I < N)\n"
    "  --out FILE       append the lines to FILE (default stdout)\n"
    "  --results FILE.. lines written before: their jobs are skipped, the\n"
    "                   tuning's choice is read from them (missing files\n"
    "                   are ignored)\n"
    "  --threads N      OpenMP threads (default 1)\n"
    "  --quick          seconds: H=16, adding T=10, copy T=5, one seed,\n"
    "                   small budgets and HF batches\n"
    "  --calibrate      time a gradient, a loss and a curvature product,\n"
    "                   and a sequence-gradient of each cell\n"
    "  --report FILE..  read lines, write the page (stdout or --doc) and\n"
    "                   DIR/solved.dat, DIR/curvature.dat\n";

static int set_quick(void *cfg, const char *v)
{
    (void)v;
    opts *o = cfg;
    o->quick = true;
    o->lengths[0][0] = 10, o->nlengths[0] = 1;
    o->lengths[1][0] = 5, o->nlengths[1] = 1;
    o->tune_T[0] = 10, o->tune_T[1] = 5;
    o->seeds = 1, o->tune_seeds = 1, o->H = 16;
    o->budget[0] = 1000 * 32, o->budget[1] = 300 * 32;
    o->tune_budget[0] = o->tune_budget[1] = 60 * 32;
    o->hf_div = 8, o->hf_cg_max = 20;
    o->curv_T = 10, o->curv_steps = 30, o->curv_seeds = 1, o->curv_B = 32;
    o->curv_iters = 10;
    return 0;
}

static int set_stage(void *cfg, const char *v)
{
    opts *o = cfg;
    static const char *const names[] = {"all", "tune", "study"};
    for (int i = 0; i < 3; i++)
        if (v && !strcmp(v, names[i])) {
            o->stage = (ovg_stage)i;
            return 0;
        }
    return cli_fail("--stage wants all, tune or study, got '%s'", v ? v : "");
}

static int add_file(const char **files, int *n, const char *v,
                    const char *flag)
{
    if (!v)
        return cli_fail("%s wants files", flag);
    if (*n == MAX_FILES)
        return 1;
    files[(*n)++] = v;
    return 0;
}
static int set_report(void *cfg, const char *v)
{
    opts *o = cfg;
    return add_file(o->report, &o->nreport, v, "--report");
}
static int set_results(void *cfg, const char *v)
{
    opts *o = cfg;
    return add_file(o->results, &o->nresults, v, "--results");
}

static int set_adding(void *cfg, const char *v)
{
    opts *o = cfg;
    cli_lengths(PROG, "--adding", v, o->lengths[0], &o->nlengths[0],
                MAX_LENGTHS);
    return 0;
}
static int set_copy(void *cfg, const char *v)
{
    opts *o = cfg;
    cli_lengths(PROG, "--copy", v, o->lengths[1], &o->nlengths[1],
                MAX_LENGTHS);
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
        while (r < NROWS && (strlen(ovg_rows[r].name) != n ||
                             strncmp(ovg_rows[r].name, p, n)))
            r++;
        if (r == NROWS)
            return cli_fail("--rows: unknown row '%.*s' (rows: tanh, lstm, "
                            "gru, orth, irnn-le, hf-ms, tanh-id, relu, irnn, "
                            "hf, hf-sparse)", (int)n, p);
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
    {"stage", "S", CLI_SET, 1, 0, 0, 0, NULL},
    {"report", "FILE..", CLI_SET, 2, 0, 0, CLI_MANY, NULL},
    {"results", "FILE..", CLI_SET, 3, 0, 0, CLI_MANY, NULL},
    {"adding", "L,..", CLI_SET, 4, 0, 0, 0, NULL},
    {"copy", "L,..", CLI_SET, 5, 0, 0, 0, NULL},
    {"rows", "R,..", CLI_SET, 6, 0, 0, 0, NULL},
    {"shard", "I/N", CLI_SET, 7, 0, 0, 0, NULL},
    {"curvature", NULL, CLI_SWITCH, OFF(curvature), 0, 0, 0, NULL},
    {"calibrate", NULL, CLI_SWITCH, OFF(calibrate), 0, 0, 0, NULL},
    {"no-runs", NULL, CLI_SWITCH, OFF(no_runs), 0, 0, 0, NULL},
    {"seeds", "N", CLI_INT, OFF(seeds), 1, MAX_SEEDS, 0, NULL},
    {"tune-seeds", "N", CLI_INT, OFF(tune_seeds), 1, MAX_SEEDS, 0, NULL},
    {"budget-adding", "W", CLI_REAL, OFF(budget[0]), 1, 0, 0, NULL},
    {"budget-copy", "W", CLI_REAL, OFF(budget[1]), 1, 0, 0, NULL},
    {"tune-budget-adding", "W", CLI_REAL, OFF(tune_budget[0]), 1, 0, 0, NULL},
    {"tune-budget-copy", "W", CLI_REAL, OFF(tune_budget[1]), 1, 0, 0, NULL},
    {"tune-adding", "T", CLI_INT, OFF(tune_T[0]), 2, 100000, 0, NULL},
    {"tune-copy", "T", CLI_INT, OFF(tune_T[1]), 2, 100000, 0, NULL},
    {"H", "N", CLI_INT, OFF(H), 1, 4096, 0, NULL},
    {"B", "N", CLI_INT, OFF(B), 1, 100000, 0, NULL},
    {"val-B", "N", CLI_INT, OFF(val_B), 1, 1000000, 0, NULL},
    {"eval-every", "N", CLI_INT, OFF(eval_every), 1, 100000000, 0, NULL},
    {"curv-T", "T", CLI_INT, OFF(curv_T), 2, 100000, 0, NULL},
    {"curv-steps", "N", CLI_LONG, OFF(curv_steps), 1, 100000000, 0, NULL},
    {"curv-seeds", "N", CLI_INT, OFF(curv_seeds), 1, MAX_SEEDS, 0, NULL},
    {"curv-B", "N", CLI_INT, OFF(curv_B), 1, 100000, 0, NULL},
    {"curv-iters", "N", CLI_INT, OFF(curv_iters), 1, 10000, 0, NULL},
    {"threads", "N", CLI_INT, OFF(threads), 1, 1024, 0, NULL},
    {"out", "FILE", CLI_STR, OFF(out), 0, 0, 0, NULL},
    {"doc", "FILE", CLI_STR, OFF(doc), 0, 0, 0, NULL},
    {"data-dir", "DIR", CLI_STR, OFF(datadir), 0, 0, 0, NULL},
};
static const cli_set_fn sets[] = {set_quick,   set_stage,  set_report,
                                  set_results, set_adding, set_copy,
                                  set_rows,    set_shard};
static const cli_spec spec = {PROG, help, flags, CLI_COUNT(flags), CLI_WANTS,
                              NULL, sets};

void ovg_parse(int argc, char **argv, opts *o)
{
    *o = (opts){.lengths = {{10, 50, 100, 200}, {10, 20, 50, 100}},
                .nlengths = {4, 4}, .tune_T = {50, 20},
                .budget = {250000, 150000}, .tune_budget = {60000, 50000},
                .seeds = 5, .tune_seeds = 2, .H = 64, .B = 32, .val_B = 256,
                .eval_every = 50, .threads = 1, .nshards = 1,
                .hf_div = 1, .hf_cg_max = 100000, .curv_T = 50,
                .curv_steps = 1000, .curv_seeds = 3, .curv_B = 128,
                .curv_iters = 30, .curv_lr = {1e-3, 1e-2}, .datadir = "."};
    for (int r = 0; r < NROWS; r++)
        o->rows[r] = true;
    cli_parse_or_exit(&spec, argc, argv, o);
}
