/*
 * examples/custom_cells.c - five recurrent cells written in user code only
 * (no derivative anywhere: the tape differentiates each step), trained
 * side by side on the adding problem and, briefly, as character models.
 *
 *   make custom-cells          (or build/custom_cells [--quick])
 *
 * The cells (peephole, mgu, ln_lstm, hard_gate, soft_gate) are defined in
 * examples/common/cells.c, the adding problem, its model and what "solved"
 * means in examples/common/tasks.h: shared with the other examples. Every
 * cell sees the same batches (same seed) and is tested on the same fixed
 * validation batch, so the table compares cells, not luck with data.
 *
 * docs/custom_cells.md has the measured table and a discussion.
 */
#include "examples/common/cells.h"
#include "examples/common/cli.h"
#include "examples/common/tasks.h"
#include "nn/charlm.h"
#include "nn/optim.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tg_cell_type *const cells[] = {&ex_peephole_cell, &ex_mgu_cell,
                                            &ex_ln_lstm_cell, &ex_hard_gate_cell,
                                            &ex_soft_gate_cell};
enum { NCELLS = sizeof cells / sizeof *cells };

typedef struct config {
    int T, B, H, steps, checkpoints, test_B;
    double lr;
    int lm_steps, lm_T, lm_B, lm_H, lm_E;
    long lm_bytes;
    const char *text;
} config;

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
    task_model m;
    task_model_init(&m, TASK_ADDING, type, cfg->H, 1.0, &rng);
    tg_optim *opt = tg_adam_new(&m.ps, cfg->lr, 0.9, 0.999, 1e-8, 0);
    double t0 = cli_now(), window = 0;
    int every = cfg->steps / cfg->checkpoints, nwin = 0;
    printf("%-10s", type->name);
    for (int step = 1; step <= cfg->steps; step++) {
        tg_tensor *x, *target;
        task_adding_batch(cfg->T, cfg->B, &data, &x, &target);
        double lv = task_train_step(&m, opt, TASK_ADDING, x, target, NULL,
                                    1.0);
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
    /* the fixed validation batch, the same for every cell */
    res->test_mse = task_validate(&m, TASK_ADDING, cfg->T, cfg->test_B, NULL);
    res->seconds = cli_now() - t0;
    printf("  | test %.4f  (%.1f s)\n", res->test_mse, res->seconds);
    tg_optim_free(opt);
    task_model_free(&m);
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

static char usage_line[600], help[sizeof usage_line + 1];

static int set_quick(void *c, const char *v)
{
    (void)v;
    config *cfg = c;
    cfg->T = 20, cfg->steps = 60, cfg->checkpoints = 3, cfg->test_B = 200,
    cfg->lm_steps = 20;
    return 0;
}

static int set_text(void *c, const char *v)
{
    if (!v)
        return cli_fail("%s", usage_line);
    ((config *)c)->text = v;
    return 0;
}

int main(int argc, char **argv)
{
    config cfg = {.T = 50, .B = 32, .H = 32, .steps = 1500, .checkpoints = 6,
                  .test_B = 1000, .lr = 1e-2,
                  .lm_steps = 300, .lm_T = 32, .lm_B = 16, .lm_H = 64,
                  .lm_E = 16, .lm_bytes = 200 * 1024,
                  .text = "/usr/share/games/fortunes/fortunes"};
    /* a bad argument prints the usage line (and so does --help) */
    snprintf(usage_line, sizeof usage_line, "usage: %s [--quick] [--text FILE]",
             argv[0]);
    snprintf(help, sizeof help, "%s\n", usage_line);
    static const cli_flag flags[] = {
        {"quick", NULL, CLI_SET, 0, 0, 0, 0, NULL},
        {"text", "FILE", CLI_SET, 1, 0, 0, 0, NULL},
    };
    static const cli_set_fn sets[] = {set_quick, set_text};
    const cli_spec spec = {"custom_cells", help, flags, CLI_COUNT(flags),
                           CLI_WANTS, usage_line, sets};
    cli_parse_or_exit(&spec, argc, argv, &cfg);
    /* Batches of 32 x 32 are too small to gain from threads (forking them
     * costs more than the work; results are the same bits either way). */
    tg_set_num_threads(1);
    /* registered, the cells are known by name like the built-in ones */
    ex_register_cells();
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
            double t0 = cli_now();
            train_charlm(&cfg, &text, cells[k], &res[k]);
            printf("%-10s training loss %.3f -> %.3f nats/char  (%.1f s)\n",
                   cells[k]->name, res[k].lm_first, res[k].lm_last, cli_now() - t0);
        }
        free(text.rows);
    } else {
        printf("\n(no text at %s: character models skipped)\n", cfg.text);
    }

    printf("\n| cell      | first mse | test mse (T=%d) | solved (< %.2f) | charlm loss |\n"
           "|-----------|-----------|-----------------|----------------|-------------|\n",
           cfg.T, TASK_ADDING_SOLVED);
    for (int k = 0; k < NCELLS; k++) {
        printf("| %-9s | %9.4f | %15.4f | %-14s |", cells[k]->name, res[k].first,
               res[k].test_mse,
               task_passes(TASK_ADDING, res[k].test_mse) ? "yes" : "no");
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
