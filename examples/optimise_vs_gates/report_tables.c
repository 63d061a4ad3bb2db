/*
 * examples/optimise_vs_gates/report_tables.c - the page
 * (docs/optimise_vs_gates.md) from what report.c gathered: the settings
 * (from the config line), the rows, the cost constants and their
 * calibration, the tuning grids with their scores and choices, per task
 * the solved fractions with 95% Wilson intervals and the work to solve,
 * and the curvature beside 2/lr and 38/lr; plus the plots' data files.
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ovg_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* the 95% Wilson score interval of k successes in n */
void ovg_wilson(int k, int n, double *lo, double *hi)
{
    double z = 1.959964, p = (double)k / n, z2n = z * z / n;
    double mid = (p + z2n / 2) / (1 + z2n);
    double half = z * sqrt(p * (1 - p) / n + z2n / (4.0 * n)) / (1 + z2n);
    *lo = fmax(0, mid - half);
    *hi = fmin(1, mid + half);
}

double cfg_num(const report *rp, const char *key)
{
    return rp->config ? kv_num(rp->config, key) : (double)NAN;
}

static void setting_text(char *buf, size_t cap, const ovg_row *r,
                         ovg_setting s)
{
    if (r->opt == OPT_HF)
        snprintf(buf, cap, "lambda0 %g", s.lr);
    else
        snprintf(buf, cap, "lr %g, clip %g", s.lr, s.clip);
}

static void page_intro(FILE *f, const report *rp)
{
    fprintf(f, "# Optimisation or gates? Plain and gated RNNs on the "
            "adding problem and the copy task\n\nMade by `make "
            "optimise-vs-gates` ([examples/optimise_vs_gates/]"
            "(../examples/optimise_vs_gates/)); what the numbers say, and "
            "their limits: README, section \"Optimisation or gates?\". "
            "Rerunning rewrites this file; the raw lines are in "
            "`optimise_vs_gates/results/`.\n\n## How every run is made\n\n");
    fprintf(f, "- One recurrent layer of **H = %.0f** and a linear readout "
            "(examples/common/tasks.h). The adding problem (solved: "
            "validation MSE < 0.01; predicting the mean scores 0.167) and "
            "the copy task (5 symbols of 8 recalled after T blanks; solved: "
            "accuracy >= 0.95 per symbol; chance 0.125).\n", cfg_num(rp, "H"));
    fprintf(f, "- **Work, not time**: the unit is one forward-backward pass "
            "of one sequence (a sequence-gradient, FBE). An Adam or SGD "
            "step on B = %.0f sequences costs %.0f; a Hessian-free step "
            "costs its gradient batch, **GN_COST = %g** per sequence of "
            "each curvature product, **FWD_COST = %g** per sequence of each "
            "loss-only evaluation (below: how they were measured). "
            "Validation is not counted. A run stops when solved or when "
            "its budget is spent: **%.0f FBE on the adding problem, %.0f on "
            "the copy task**. Wall seconds are recorded beside; nothing "
            "depends on them.\n", cfg_num(rp, "B"), cfg_num(rp, "B"),
            cfg_num(rp, "GN_COST"), cfg_num(rp, "FWD_COST"),
            cfg_num(rp, "budget_adding"), cfg_num(rp, "budget_copy"));
    fprintf(f, "- Validation on a fixed batch of %.0f sequences per task "
            "and length, every %.0f Adam/SGD steps and after every HF "
            "step. Reported seeds 1..%.0f (initialisation from the seed, "
            "training data from 1000 + seed).\n- **Tuning**, the same rule "
            "for every row: each point of the row's grid from %.0f tuning "
            "seeds (101, ...) at T = %.0f (adding) and T = %.0f (copy), "
            "%.0f FBE each (adding; copy %.0f), on a validation batch drawn "
            "from other seeds than the reported one, every run to the end "
            "of its budget. Chosen: the setting whose tuning runs solved "
            "most often, then the lowest median final validation MSE "
            "(copy: error rate 1 - accuracy).\n\n", cfg_num(rp, "val_B"),
            cfg_num(rp, "eval_every"), cfg_num(rp, "seeds"),
            cfg_num(rp, "tune_seeds"),
            cfg_num(rp, "tune_T_adding"), cfg_num(rp, "tune_T_copy"),
            cfg_num(rp, "tune_budget_adding"), cfg_num(rp, "tune_budget_copy"));
}

static void page_rows(FILE *f, const report *rp)
{
    static const char *const inits[] = {
        "PyTorch default, U(-1/sqrt H, 1/sqrt H)",
        "default, W_hh orthogonal", "default, W_hh = I",
        "W_hh = I, biases 0, W_ih ~ N(0, 0.001)",
        "sparse: 15 nonzero N(0,1) weights into each unit, biases 0, W_hh "
        "at spectral radius 1.2"};
    static const char *const opt[] = {
        "Adam (0.9, 0.999, 1e-8, no weight decay) + clip",
        "plain SGD (no momentum, no weight decay) + clip",
        "Hessian-free (tg_hf: Gauss-Newton curvature of the task's loss - "
        "MSE, or softmax cross-entropy on the copy task - CG warm-started "
        "from the last step, Levenberg-Marquardt damping, backtracking)"};
    double div = cfg_num(rp, "hf_div"), cgmax = cfg_num(rp, "hf_cg_max");
    fprintf(f, "## The rows\n\n| row | | cell | init | optimiser | HF: "
            "gradient batch / curvature batch / CG iterations at most / "
            "structural damping mu |\n|---|---|---|---|---|---|\n");
    for (int r = 0; r < NROWS; r++) {
        const ovg_row *w = &ovg_rows[r];
        fprintf(f, "| %s | %s | %s | %s | %s |", w->name, w->title,
                w->cell->name, inits[w->init], opt[w->opt]);
        if (w->opt == OPT_HF)
            fprintf(f, " %.0f / %.0f / %.0f / %.4g |\n", w->hf_gB / div,
                    w->hf_cB / div, fmin(w->hf_cg, cgmax), w->hf_mu);
        else
            fprintf(f, " |\n");
    }
    fprintf(f, "\nThe published regimes as read here (from memory of the "
            "papers, not checked against them line by line): **irnn-le** - "
            "Le, Jaitly and Hinton (2015) trained the IRNN with plain SGD "
            "and gradient clipping, searching the learning rate and the "
            "clipping threshold over powers of ten; the batch here is "
            "every first-order row's B, not theirs. **hf-ms** - Martens "
            "and Sutskever (2011): tanh units, sparse initialisation (15 "
            "nonzero N(0, 1) weights into each unit; the recurrent matrix "
            "rescaled to spectral radius 1.2, our reading of their setup), "
            "structural damping mu = 1/30, curvature products on a "
            "minibatch a fraction of the gradient's, and many CG "
            "iterations; their batches were far larger than the 512 / 128 "
            "here, which the budget does not allow. The controls change "
            "one thing each: tanh-id and orth the tanh row's W_hh; relu "
            "its nonlinearity; irnn the IRNN's init under Adam instead of "
            "SGD; hf the optimiser of the tanh row; hf-sparse hf's "
            "starting point.\n\n");
}

static void page_calib(FILE *f, const report *rp)
{
    fprintf(f, "## The cost constants\n\nGN_COST = %g and FWD_COST = %g are "
            "fixed in the program (examples/optimise_vs_gates/ovg.h), so "
            "that a run does the same work on any machine and thread "
            "count. `optimise_vs_gates --calibrate` measures what they "
            "stand for (tanh RNN, T = 50, one thread, medians of 7): a "
            "curvature product with structural damping (tg_hf_product) "
            "and a loss-only evaluation, each per sequence against a "
            "gradient per sequence; then the microseconds of one "
            "sequence-gradient of each cell by length (Adam steps), from "
            "which the study's run time was estimated.\n\n",
            cfg_num(rp, "GN_COST"), cfg_num(rp, "FWD_COST"));
    if (!arrlen(rp->calib))
        fprintf(f, "(No calibration lines among the results.)\n\n");
    else
        fprintf(f, "```\n");
    for (ptrdiff_t i = 0; i < arrlen(rp->calib); i++)
        fputs(rp->calib[i], f);
    if (arrlen(rp->calib))
        fprintf(f, "```\n\n");
    double lo = INFINITY, hi = -INFINITY, gn = cfg_num(rp, "GN_COST");
    for (ptrdiff_t i = 0; i < arrlen(rp->calib); i++) {
        double r = kv_num(rp->calib[i], "gn_ratio");
        if (!isnan(r))
            lo = fmin(lo, r), hi = fmax(hi, r);
    }
    if (lo <= hi)
        fprintf(f, "Measured here, a curvature product cost %.2f-%.2f "
                "sequence-gradients a sequence against the %g the runs "
                "count: the Hessian-free rows' work is counted %+.0f%% to "
                "%+.0f%% off what this machine measured (their products are "
                "most of it), a margin to keep in mind where an HF run "
                "solved near its budget.\n\n", lo, hi, gn,
                100 * (gn / hi - 1), 100 * (gn / lo - 1));
    fprintf(f, "The run time was estimated before the study from these "
            "figures (seconds per sequence-gradient by cell and length, "
            "times the budgets, plus 10%% for validation and 40%% more for "
            "Hessian-free's vector work and validation after every step, "
            "checked on single runs): **77 minutes on 2 cores if no run "
            "solved**, about 55 with the gated cells solving the adding "
            "problem early and most rows T = 10. Measured (the script's "
            "clock, from the start of the calibration):\n\n");
    for (ptrdiff_t i = 0; i < arrlen(rp->elapsed); i++)
        fprintf(f, "- %s", rp->elapsed[i] + 8);
    if (!arrlen(rp->elapsed))
        fprintf(f, "- (not recorded)\n");
    fprintf(f, "\n");
}

/* one task's tuning: every row's grid with its scores, the choice marked */
static void page_tuning_task(FILE *f, const report *rp, task_kind k)
{
    int T = (int)cfg_num(rp, k == TASK_ADDING ? "tune_T_adding"
                                              : "tune_T_copy");
    int nseeds = (int)cfg_num(rp, "tune_seeds");
    fprintf(f, "### Tuning: the %s task at T = %d\n\n", ovg_task_names[k], T);
    if (k == TASK_ADDING) {
        double one, mean;
        ovg_constant_mse(T, (int)cfg_num(rp, "val_B"), true, &one, &mean);
        fprintf(f, "On this tuning validation batch, predicting the expected "
                "sum 1 scores an MSE of %.4f, and the batch's own mean "
                "%.4f: a row at about that has learnt nothing of the marked "
                "numbers.\n\n", one, mean);
    }
    fprintf(f, "| row | setting | solved / runs | median final %s | |\n"
            "|---|---|---|---|---|\n", k == TASK_ADDING ? "MSE" : "accuracy");
    for (int r = 0; r < NROWS; r++) {
        ovg_setting g[MAX_GRID];
        int n = ovg_grid(&ovg_rows[r], g);
        ovg_tally t[MAX_GRID] = {{0}};
        ovg_gather(rp->lines, T, nseeds, r, k, t, n);
        int best = ovg_pick(t, n);
        for (int i = 0; i < n && best >= 0; i++) {
            char s[64];
            setting_text(s, sizeof s, &ovg_rows[r], g[i]);
            double med = ovg_median(t[i].bad, t[i].n);
            if (k == TASK_COPY)
                med = 1 - med;
            fprintf(f, "| %s | %s | %d/%d | %.4g | %s |\n", ovg_rows[r].name,
                    s, t[i].solved, t[i].n, med,
                    i == best ? "**chosen**" : "");
        }
    }
    fprintf(f, "\n");
}

static void page_tuning(FILE *f, const report *rp)
{
    fprintf(f, "## The settings chosen\n\nGrids: Adam, learning rate "
            "{3e-4, 1e-3, 3e-3, 1e-2} x gradient-norm clip {1, 10}; SGD "
            "(irnn-le, as Le et al. searched), learning rate {1e-4, 1e-3, "
            "1e-2, 1e-1} x clip {1, 10, 100}; Hessian-free, the initial "
            "damping lambda0 {0.1, 1, 10, 100} (the Levenberg-Marquardt "
            "rule moves it from there; mu is fixed by the row). Where no "
            "setting of a row solved a tuning run, the choice rests on the "
            "final metric alone, whose differences near the plateau (MSE "
            "about 0.17) are small and may be noise; the grids below show "
            "them.\n\n| row | adding | copy |\n|---|---|---|\n");
    for (int r = 0; r < NROWS; r++) {
        fprintf(f, "| %s |", ovg_rows[r].name);
        for (int k = 0; k < NTASKS; k++) {
            ovg_setting g[MAX_GRID];
            int n = ovg_grid(&ovg_rows[r], g);
            ovg_tally t[MAX_GRID] = {{0}};
            ovg_gather(rp->lines,
                       (int)cfg_num(rp, k ? "tune_T_copy" : "tune_T_adding"),
                       (int)cfg_num(rp, "tune_seeds"), r, (task_kind)k, t, n);
            int best = ovg_pick(t, n);
            char s[64] = "(not tuned)";
            if (best >= 0)
                setting_text(s, sizeof s, &ovg_rows[r], g[best]);
            fprintf(f, " %s |", s);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
    for (int k = 0; k < NTASKS; k++)
        page_tuning_task(f, rp, (task_kind)k);
}

int ovg_write_page(const opts *o, const report *rp)
{
    FILE *f = o->doc ? fopen(o->doc, "w") : stdout;
    if (!f) {
        fprintf(stderr, PROG ": cannot write %s\n", o->doc);
        return 1;
    }
    page_intro(f, rp);
    page_rows(f, rp);
    page_calib(f, rp);
    page_tuning(f, rp);
    int rc = ovg_page_results(f, o, rp);
    if (f != stdout)
        fclose(f);
    return rc;
}
