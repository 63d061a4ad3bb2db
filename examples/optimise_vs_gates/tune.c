/*
 * examples/optimise_vs_gates/tune.c - the tuning stage, the same for every
 * row: each point of the row's grid (rows.c) is run from o->tune_seeds
 * tuning seeds (101, 102, ...: not the reported seeds 1..N) at one length
 * per task (o->tune_T) with a smaller budget (o->tune_budget), on a
 * validation batch of its own, and each run goes to the end of its budget.
 * The rule: the setting whose tuning runs solved most often; among those,
 * the lowest median final validation badness (MSE; for the copy task
 * 1 - accuracy; a diverged run counts as the worst).
 */
#include "ovg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void tune_key(char *key, size_t cap, int r, task_kind k, int T,
                     int set, int seed)
{
    snprintf(key, cap, "tune row=%s task=%s T=%d set=%d seed=%d ",
             ovg_rows[r].name, ovg_task_names[k], T, set, seed);
}

void ovg_tune_stage(const opts *o, int *job)
{
    for (int k = 0; k < NTASKS; k++)
        for (int r = 0; r < NROWS; r++) {
            if (!o->rows[r])
                continue;
            ovg_setting g[MAX_GRID];
            int n = ovg_grid(&ovg_rows[r], g);
            for (int i = 0; i < n; i++)
                for (int s = 1; s <= o->tune_seeds; s++) {
                    char key[160];
                    int T = o->tune_T[k], seed = TUNE_SEED0 + s;
                    tune_key(key, sizeof key, r, (task_kind)k, T, i, seed);
                    if ((*job)++ % o->nshards != o->shard || ovg_done(key))
                        continue;
                    ovg_result res = ovg_run(o, &ovg_rows[r], (task_kind)k,
                                             T, seed, g[i],
                                             o->tune_budget[k], true);
                    ovg_emit("%slr=%g clip=%g solved=%d metric=%.6g "
                             "work=%.0f steps=%ld wall=%.2f\n", key, g[i].lr,
                             g[i].clip, res.solved, res.metric, res.work,
                             res.steps, res.wall);
                }
        }
}

double ovg_badness(task_kind k, double metric)
{
    if (isnan(metric))
        return INFINITY;
    return k == TASK_ADDING ? metric : 1 - metric;
}

void ovg_gather(char **lines, int T, int nseeds, int r, task_kind k,
                ovg_tally *t, int n)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "tune row=%s task=%s T=%d ",
             ovg_rows[r].name, ovg_task_names[k], T);
    for (ptrdiff_t i = 0; i < arrlen(lines); i++) {
        if (strncmp(lines[i], prefix, strlen(prefix)))
            continue;
        double set = kv_num(lines[i], "set"), seed = kv_num(lines[i], "seed");
        int s = (int)seed - TUNE_SEED0;
        if (!(set >= 0 && set < n) || s < 1 || s > nseeds || s > MAX_SEEDS)
            continue;
        ovg_tally *a = &t[(int)set];
        if (a->seen >> (s - 1) & 1)
            continue; /* a resumed run wrote it twice */
        a->seen |= 1ull << (s - 1);
        a->solved += kv_num(lines[i], "solved") == 1;
        a->bad[a->n++] = ovg_badness(k, kv_num(lines[i], "metric"));
    }
}

int ovg_pick(ovg_tally *t, int n)
{
    int best = -1;
    double best_med = INFINITY;
    for (int i = 0; i < n; i++) {
        if (!t[i].n)
            continue;
        double med = ovg_median(t[i].bad, t[i].n);
        if (best < 0 || t[i].solved > t[best].solved ||
            (t[i].solved == t[best].solved && med < best_med))
            best = i, best_med = med;
    }
    return best;
}

int ovg_chosen(const opts *o, int r, task_kind k, ovg_setting *s, int *idx)
{
    ovg_setting g[MAX_GRID];
    int n = ovg_grid(&ovg_rows[r], g);
    ovg_tally t[MAX_GRID] = {{0}};
    ovg_gather(ovg_store(), o->tune_T[k], o->tune_seeds, r, k, t, n);
    for (int i = 0; i < n; i++)
        if (t[i].n < o->tune_seeds) {
            fprintf(stderr, PROG ": the tuning of row %s on the %s task is "
                    "not complete (setting %d: %d of %d runs); run --stage "
                    "tune first and pass its lines with --results\n",
                    ovg_rows[r].name, ovg_task_names[k], i, t[i].n,
                    o->tune_seeds);
            return -1;
        }
    *idx = ovg_pick(t, n);
    *s = g[*idx];
    return 0;
}
