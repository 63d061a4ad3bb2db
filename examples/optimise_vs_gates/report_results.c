/*
 * examples/optimise_vs_gates/report_results.c - the results' sections of
 * the page: per task, the fraction of seeds solved with its 95% Wilson
 * interval, the work to solve (median and range over the solved runs,
 * wall seconds beside); the curvature along training beside 2/lr and
 * 38/lr; and the plots' data (solved.dat, curvature.dat).
 */
#include "report.h"

#include <math.h>
#include <string.h>

static void table_head(FILE *f, const report *rp, task_kind k)
{
    fprintf(f, "| row |");
    for (int l = 0; l < rp->nlengths[k]; l++)
        fprintf(f, " T=%d |", rp->lengths[k][l]);
    fprintf(f, "\n|---|");
    for (int l = 0; l < rp->nlengths[k]; l++)
        fprintf(f, "---|");
    fprintf(f, "\n");
}

static bool row_present(const report *rp, task_kind k, int r)
{
    for (int l = 0; l < rp->nlengths[k]; l++)
        if (rp->cells[k][r][l].runs)
            return true;
    return false;
}

static void solved_table(FILE *f, const report *rp, task_kind k)
{
    fprintf(f, "### The %s task: solved\n\nseeds solved / seeds, and the "
            "95%% Wilson interval of the fraction.\n\n", ovg_task_names[k]);
    if (k == TASK_ADDING && rp->nlengths[k]) {
        fprintf(f, "The plateau: on each reported validation batch, "
                "predicting the expected sum 1 scores an MSE of");
        for (int l = 0; l < rp->nlengths[k]; l++) {
            double one, mean;
            ovg_constant_mse(rp->lengths[k][l], (int)cfg_num(rp, "val_B"),
                             false, &one, &mean);
            fprintf(f, "%s %.4f (T = %d)", l ? "," : "", one,
                    rp->lengths[k][l]);
        }
        fprintf(f, "; solved is below 0.01.\n\n");
    }
    table_head(f, rp, k);
    for (int r = 0; r < NROWS; r++) {
        if (!row_present(rp, k, r))
            continue;
        fprintf(f, "| %s |", ovg_rows[r].name);
        for (int l = 0; l < rp->nlengths[k]; l++) {
            const cell *c = &rp->cells[k][r][l];
            double lo, hi;
            if (!c->runs) {
                fprintf(f, " |");
                continue;
            }
            ovg_wilson(c->solved, c->runs, &lo, &hi);
            fprintf(f, " %d/%d [%.2f, %.2f] |", c->solved, c->runs, lo, hi);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* the training sequences a step of row r draws: Adam's and SGD's batch,
 * or Hessian-free's gradient batch (its curvature batch is a part of it) */
static double examples_per_step(const report *rp, int r)
{
    const ovg_row *w = &ovg_rows[r];
    return w->opt == OPT_HF ? w->hf_gB / cfg_num(rp, "hf_div")
                            : cfg_num(rp, "B");
}

static void work_table(FILE *f, const report *rp, task_kind k)
{
    fprintf(f, "### The %s task: work to solve\n\nAmong the solved runs: "
            "the median sequence-gradients (FBE) to solve, (min-max); the "
            "median examples processed (training sequences drawn: steps x "
            "batch; HF's curvature batch is part of its gradient batch); "
            "and the median wall seconds of training (one thread; not part "
            "of any decision).\n\n", ovg_task_names[k]);
    table_head(f, rp, k);
    for (int r = 0; r < NROWS; r++) {
        if (!row_present(rp, k, r))
            continue;
        fprintf(f, "| %s |", ovg_rows[r].name);
        for (int l = 0; l < rp->nlengths[k]; l++) {
            cell c = rp->cells[k][r][l]; /* a copy: the median sorts */
            if (!c.solved) {
                fprintf(f, c.runs ? " - |" : " |");
                continue;
            }
            double med = ovg_median(c.work, c.solved);
            double ex = ovg_median(c.steps, c.solved) * examples_per_step(rp, r);
            fprintf(f, " %.0f (%.0f-%.0f); %.0f ex.; %.1f s |", med,
                    c.work[0], c.work[c.solved - 1], ex,
                    ovg_median(c.wall, c.solved));
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* solved.dat: a block per task and row (every row, in table order, each
 * block ended by two blank lines: gnuplot's index k * NROWS + r), a line
 * per length; a row without runs has one line of nan */
static int solved_data(const opts *o, const report *rp)
{
    char path[600];
    snprintf(path, sizeof path, "%s/solved.dat", o->datadir);
    FILE *d = fopen(path, "w");
    if (!d) {
        fprintf(stderr, PROG ": cannot write %s\n", path);
        return 1;
    }
    for (int k = 0; k < NTASKS; k++)
        for (int r = 0; r < NROWS; r++) {
            fprintf(d, "# %s %s: T fraction wilson_lo wilson_hi solved runs "
                    "median_work_to_solve\n", ovg_task_names[k],
                    ovg_rows[r].name);
            bool any = false;
            for (int l = 0; l < rp->nlengths[k]; l++) {
                cell c = rp->cells[k][r][l];
                if (!c.runs)
                    continue;
                double lo, hi;
                ovg_wilson(c.solved, c.runs, &lo, &hi);
                fprintf(d, "%d %.4g %.4g %.4g %d %d %.6g\n",
                        rp->lengths[k][l], (double)c.solved / c.runs, lo, hi,
                        c.solved, c.runs, ovg_median(c.work, c.solved));
                any = true;
            }
            fprintf(d, "%s\n\n", any ? "" : "nan nan nan nan 0 0 nan\n");
        }
    fclose(d);
    return 0;
}

/* "median (min-max)" of n values into buf; NaNs are left out */
static void spread(char *buf, size_t cap, const double *v, int n)
{
    double w[CURV_MAX];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            w[m++] = v[i];
    if (!m) {
        snprintf(buf, cap, "-");
        return;
    }
    double med = ovg_median(w, m);
    snprintf(buf, cap, "%.4g (%.4g-%.4g)", med, w[0], w[m - 1]);
}

static int curvature_section(FILE *f, const opts *o, const report *rp)
{
    fprintf(f, "## Curvature along training, at matched learning rates\n\n"
            "The tanh RNN and the LSTM trained with Adam (clip 1) at two "
            "learning rates, on the adding problem at T = %.0f, %.0f seeds "
            "each; at each step on a fixed batch of %.0f sequences: the "
            "top eigenvalue (largest magnitude, signed) of the Hessian H, "
            "and of Adam's preconditioned Hessian P^-1/2 H P^-1/2 with P = "
            "diag(sqrt(v_hat) + eps) from the optimiser's second moments "
            "at that step (power iteration on exact Hessian-vector "
            "products, at most %.0f each). Gradient descent at rate lr is "
            "stable while the top eigenvalue of H is below 2/lr; Adam "
            "(beta1 = 0.9) while that of the preconditioned Hessian is "
            "below (2 + 2 beta1) / ((1 - beta1) lr) = 38/lr (Cohen et al. "
            "2022). Median over seeds (min-max); step 0 has no second "
            "moments yet.\n\n| row | lr | step | top eig. H | 2/lr | top "
            "eig. P^-1/2 H P^-1/2 | 38/lr | loss |\n"
            "|---|---|---|---|---|---|---|---|\n", cfg_num(rp, "curv_T"),
            cfg_num(rp, "curv_seeds"), cfg_num(rp, "curv_B"),
            cfg_num(rp, "curv_iters"));
    char path[600];
    snprintf(path, sizeof path, "%s/curvature.dat", o->datadir);
    FILE *d = fopen(path, "w");
    if (!d) {
        fprintf(stderr, PROG ": cannot write %s\n", path);
        return 1;
    }
    for (ptrdiff_t i = 0; i < arrlen(rp->curv); i++) {
        curvpoint p = rp->curv[i];
        if (i == 0 || p.row != rp->curv[i - 1].row ||
            p.lr != rp->curv[i - 1].lr) /* a block per row and rate */
            fprintf(d, "%s# %s lr=%g: step seeds eigH_median eigP_median "
                    "loss_median two_over_lr 38_over_lr\n", i ? "\n\n" : "",
                    ovg_rows[p.row].name, p.lr);
        char h[64], pp[64], l[64];
        spread(h, sizeof h, p.eigH, p.n);
        spread(pp, sizeof pp, p.eigP, p.n);
        spread(l, sizeof l, p.loss, p.n);
        fprintf(f, "| %s | %g | %ld | %s | %.4g | %s | %.4g | %s |\n",
                ovg_rows[p.row].name, p.lr, p.step, h, 2 / p.lr, pp,
                38 / p.lr, l);
        fprintf(d, "%ld %d %.6g %.6g %.6g %.6g %.6g\n", p.step, p.n,
                ovg_median(p.eigH, p.n), ovg_median(p.eigP, p.n),
                ovg_median(p.loss, p.n), 2 / p.lr, 38 / p.lr);
    }
    fclose(d);
    fprintf(f, "\n![top eigenvalues against the steps, with 2/lr and 38/lr]"
            "(optimise_vs_gates/curvature.svg)\n\n");
    return 0;
}

int ovg_page_results(FILE *f, const opts *o, const report *rp)
{
    for (int k = 0; k < NTASKS; k++) {
        fprintf(f, "## Results: the %s task\n\n", k == TASK_ADDING
                ? "adding" : "copy");
        solved_table(f, rp, (task_kind)k);
        work_table(f, rp, (task_kind)k);
    }
    fprintf(f, "![fraction of seeds solved against T, per task]"
            "(optimise_vs_gates/solved.svg)\n\n");
    if (solved_data(o, rp))
        return 1;
    return curvature_section(f, o, rp);
}
