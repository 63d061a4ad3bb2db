/*
 * examples/optimise_vs_gates/main.c - the command line, the stages, the
 * shards and the resuming of build/optimise_vs_gates.
 *
 *   build/optimise_vs_gates [--stage all|tune|study] [--curvature]
 *       [--rows R,..] [--adding L,..] [--copy L,..] [--seeds N]
 *       [--shard I/N] [--out FILE] [--results FILE...] ...
 *   build/optimise_vs_gates --report FILE... [--doc FILE] [--data-dir DIR]
 *   build/optimise_vs_gates --calibrate
 *   make optimise-vs-gates JOBS=2   (scripts/optimise_vs_gates.sh)
 *
 * The study has two stages. tune: every row's grid on each task at its
 * tuning length (tune.c). study: every row at every length of each task
 * from seeds 1..N at the setting the tuning chose, and with --curvature
 * the curvature trajectories (curvature.c). Each job is one line; with
 * --shard I/N a process runs jobs I, I+N, ... of the stage's list.
 * --results names the files of lines written before: the jobs found
 * there are skipped (a killed study resumes where it was), and the study
 * stage reads the tuning's choice from them. --out appends the new lines
 * to a file (default: stdout). Every process first writes a "config"
 * line; lines from another configuration are refused.
 */
#include "ovg.h"

#include "examples/common/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static char **store; /* stb_ds array of heap lines */
static FILE *out;

char **ovg_store(void)
{
    return store;
}

bool ovg_done(const char *key)
{
    size_t n = strlen(key);
    for (ptrdiff_t i = 0; i < arrlen(store); i++)
        if (!strncmp(store[i], key, n))
            return true;
    return false;
}

void ovg_emit(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fputs(line, out);
    fflush(out);
    arrput(store, strdup(line));
}

/* the configuration line: everything a run's result depends on */
static void config_line(const opts *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "config H=%d B=%d val_B=%d eval_every=%d seeds=%d "
             "tune_seeds=%d budget_adding=%.0f budget_copy=%.0f "
             "tune_budget_adding=%.0f tune_budget_copy=%.0f "
             "tune_T_adding=%d tune_T_copy=%d hf_div=%d hf_cg_max=%d "
             "curv_T=%d curv_steps=%ld curv_seeds=%d curv_B=%d "
             "curv_iters=%d curv_lr1=%g curv_lr2=%g GN_COST=%g "
             "FWD_COST=%g\n", o->H, o->B, o->val_B, o->eval_every, o->seeds,
             o->tune_seeds, o->budget[0], o->budget[1], o->tune_budget[0],
             o->tune_budget[1], o->tune_T[0], o->tune_T[1], o->hf_div,
             o->hf_cg_max, o->curv_T, o->curv_steps, o->curv_seeds,
             o->curv_B, o->curv_iters, o->curv_lr[0], o->curv_lr[1],
             GN_COST, FWD_COST);
}

/* the lines of --results into the store; -1 when they come from another
 * configuration */
static int load_results(const opts *o, const char *config)
{
    if (ovg_read_lines(o->results, o->nresults, false, &store) < 0)
        return -1;
    for (ptrdiff_t i = 0; i < arrlen(store); i++)
        if (!strncmp(store[i], "config ", 7) && strcmp(store[i], config)) {
            fprintf(stderr, PROG ": --results holds lines of another "
                    "configuration:\n  %.*s\nnot this one's:\n  %.*s\nstart "
                    "afresh in an empty directory, or run with the same "
                    "options\n", (int)strcspn(store[i], "\n"), store[i],
                    (int)strcspn(config, "\n"), config);
            return -1;
        }
    return 0;
}

/* the study stage's runs: every task, length, row and seed */
static int study_runs(const opts *o, int *job)
{
    ovg_setting chosen[NTASKS][NROWS];
    int idx[NTASKS][NROWS];
    for (int k = 0; k < NTASKS; k++)
        for (int r = 0; r < NROWS; r++)
            if (o->rows[r] && ovg_chosen(o, r, (task_kind)k, &chosen[k][r],
                                         &idx[k][r]) < 0)
                return -1;
    for (int k = 0; k < NTASKS; k++)
        for (int l = 0; l < o->nlengths[k]; l++)
            for (int r = 0; r < NROWS; r++)
                for (int s = 1; s <= o->seeds && o->rows[r]; s++) {
                    char key[160];
                    int T = o->lengths[k][l];
                    snprintf(key, sizeof key, "run row=%s task=%s T=%d "
                             "seed=%d ", ovg_rows[r].name, ovg_task_names[k],
                             T, s);
                    if ((*job)++ % o->nshards != o->shard || ovg_done(key))
                        continue;
                    ovg_setting st = chosen[k][r];
                    ovg_result res = ovg_run(o, &ovg_rows[r], (task_kind)k,
                                             T, s, st, o->budget[k], false);
                    ovg_emit("%sset=%d lr=%g clip=%g solved=%d work=%.0f "
                             "steps=%ld metric=%.6g wall=%.2f budget=%.0f\n",
                             key, idx[k][r], st.lr, st.clip, res.solved,
                             res.work, res.steps, res.metric, res.wall,
                             o->budget[k]);
                }
    return 0;
}


/* path opened to append lines; a last line cut short (a killed run) is
 * ended first, so that the next line starts on a line of its own */
static FILE *open_append(const char *path)
{
    FILE *f = fopen(path, "r");
    int last = '\n';
    if (f && fseek(f, -1, SEEK_END) == 0)
        last = fgetc(f);
    if (f)
        fclose(f);
    f = fopen(path, "a");
    if (f && last != '\n' && last != EOF)
        fputc('\n', f);
    return f;
}

int main(int argc, char **argv)
{
    opts o;
    ovg_parse(argc, argv, &o);
    if (o.nreport)
        return ovg_report(&o);
    tg_set_num_threads(o.threads);
    if (o.calibrate)
        return ovg_calibrate(&o);
    out = stdout;
    char config[1024];
    config_line(&o, config, sizeof config);
    if (load_results(&o, config) < 0)
        return 1;
    if (o.out && !(out = open_append(o.out))) {
        fprintf(stderr, PROG ": cannot append to %s\n", o.out);
        return 1;
    }
    ovg_emit("%s", config);
    int job = 0, rc = 0;
    if (o.stage != STAGE_STUDY)
        ovg_tune_stage(&o, &job);
    if (o.stage != STAGE_TUNE) {
        job = 0;
        rc = !o.no_runs && study_runs(&o, &job) < 0;
        if (!rc && o.curvature)
            ovg_curvature_jobs(&o, &job);
    }
    if (out != stdout)
        fclose(out);
    ovg_free_lines(store);
    tg_tape_free_all();
    return rc;
}
