/*
 * examples/optimise_vs_gates/calibrate.c - --calibrate: what the work
 * unit's constants (ovg.h: GN_COST, FWD_COST) stand for, measured.
 *
 * On the tanh RNN at the study's hidden size (adding problem, T = 50,
 * 256 sequences, one thread), the median of 7 timings each of: a gradient
 * (forward and backward), a loss evaluation (forward only, no tape), and
 * a Hessian-free curvature product with structural damping
 * (tg_hf_product: a forward pass, a tangent sweep, a backward); printed
 * per sequence and as ratios to the gradient, beside the constants. Then
 * the seconds per sequence-gradient of every cell at T = 10..200 and
 * batch o->B, which is what the study's run time is estimated from.
 * Timings depend on the machine; nothing in a run does.
 */
#include "ovg.h"

#include "examples/common/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REPEATS 7

typedef struct cal {
    task_model m;
    ovg_batch b;
    int what; /* 0 gradient, 1 loss, 2 product */
    tg_hf *hf;
    tg_real *v, *out;
} cal;

static tg_tensor *cal_outputs(void *ud)
{
    cal *c = ud;
    return task_outputs(&c->m, TASK_ADDING, c->b.x);
}
static tg_tensor *cal_loss(tg_tensor *z, void *ud)
{
    cal *c = ud;
    return task_loss_of(TASK_ADDING, z, c->b.target, NULL, NULL);
}
static tg_tensor *cal_hidden(void *ud)
{
    return ((cal *)ud)->m.hidden;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* seconds of one evaluation of kind c->what: the median of REPEATS */
static double time_one(cal *c)
{
    double t[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        double t0 = cli_now();
        if (c->what == 2) {
            tg_closure cl = {.outputs = cal_outputs, .loss = cal_loss,
                             .hidden = cal_hidden, .ud = c};
            tg_hf_product(c->hf, &cl, c->v, c->out);
        } else {
            bool was = tg_set_grad_enabled(c->what == 0);
            tg_params_zero_grad(&c->m.ps);
            tg_tensor *l = cal_loss(cal_outputs(c), c);
            if (c->what == 0 && l)
                tg_backward(l);
            tg_set_grad_enabled(was);
        }
        tg_tape_reset();
        t[r] = cli_now() - t0;
    }
    qsort(t, REPEATS, sizeof *t, cmp);
    return t[REPEATS / 2];
}

/* the ratios of a product and a loss evaluation to a gradient */
static void ratios(const opts *o, int B)
{
    cal c = {.what = 0};
    tg_rng init, data;
    tg_rng_seed(&init, 1);
    tg_rng_seed(&data, 2);
    ovg_model_init(&c.m, &ovg_rows[ovg_row_index("tanh")], TASK_ADDING, o->H,
                   &init);
    ovg_batch_make(&c.b, TASK_ADDING, 50, B, &data);
    tg_hf_config cfg = {.curv = {TG_CURV_MSE, TG_MEAN}, .lambda0 = 1,
                        .max_cg = 10, .mu = 1.0 / 30};
    c.hf = tg_hf_new(&c.m.ps, &cfg);
    int64_t n = tg_params_numel(&c.m.ps);
    c.v = malloc((size_t)n * sizeof *c.v);
    c.out = malloc((size_t)n * sizeof *c.out);
    for (int64_t i = 0; i < n; i++)
        c.v[i] = (tg_real)tg_rng_normal(&data);
    double t[3];
    for (c.what = 0; c.what < 3; c.what++)
        t[c.what] = time_one(&c);
    printf("calib H=%d T=50 B=%d gradient_us_per_seq=%.2f "
           "loss_us_per_seq=%.2f product_us_per_seq=%.2f gn_ratio=%.3f "
           "fwd_ratio=%.3f GN_COST=%g FWD_COST=%g\n", o->H, B,
           1e6 * t[0] / B, 1e6 * t[1] / B, 1e6 * t[2] / B, t[2] / t[0],
           t[1] / t[0], GN_COST, FWD_COST);
    tg_hf_free(c.hf);
    free(c.v);
    free(c.out);
    ovg_batch_free(&c.b);
    task_model_free(&c.m);
}

/* seconds per sequence-gradient of a cell at length T (Adam steps) */
static double fbe_seconds(const opts *o, const ovg_row *r, task_kind k, int T)
{
    tg_rng init, data;
    tg_rng_seed(&init, 1);
    tg_rng_seed(&data, 2);
    task_model m;
    ovg_model_init(&m, r, k, o->H, &init);
    tg_optim *opt = tg_adam_new(&m.ps, 1e-3, 0.9, 0.999, 1e-8, 0);
    int64_t *ids = malloc((size_t)o->B * TASK_COPY_K * sizeof *ids);
    double t[REPEATS];
    for (int rep = 0; rep < REPEATS; rep++) {
        tg_tensor *x, *target = NULL;
        if (k == TASK_ADDING)
            task_adding_batch(T, o->B, &data, &x, &target);
        else
            task_copy_batch(T, o->B, &data, &x, ids);
        double t0 = cli_now();
        task_train_step(&m, opt, k, x, target, ids, 1.0);
        t[rep] = cli_now() - t0;
    }
    qsort(t, REPEATS, sizeof *t, cmp);
    free(ids);
    tg_optim_free(opt);
    task_model_free(&m);
    return t[REPEATS / 2] / o->B;
}

int ovg_calibrate(const opts *o)
{
    ratios(o, 64);
    ratios(o, 256);
    static const char *const cells[] = {"tanh", "relu", "lstm", "gru"};
    static const int Ts[] = {10, 20, 50, 100, 200};
    for (int k = 0; k < NTASKS; k++)
        for (int c = 0; c < 4; c++) {
            printf("fbe task=%s cell=%s H=%d B=%d", ovg_task_names[k],
                   cells[c], o->H, o->B);
            for (int i = 0; i < 5; i++)
                printf(" T%d_us=%.2f", Ts[i],
                       1e6 * fbe_seconds(o, &ovg_rows[ovg_row_index(
                                                 cells[c])],
                                         (task_kind)k, Ts[i]));
            printf("\n");
            fflush(stdout);
        }
    return 0;
}
