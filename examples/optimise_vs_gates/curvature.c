/*
 * examples/optimise_vs_gates/curvature.c - curvature along training, and
 * the calibration of the work unit's constants (--calibrate).
 *
 * The tanh RNN and the LSTM are trained with Adam (clip 1) at two
 * learning rates from o->curv_seeds seeds; at a schedule of steps, on a
 * fixed batch of o->curv_B sequences, this measures the loss, the
 * gradient norm, the distance from the initial parameters and two top
 * eigenvalues (power iteration, at most o->curv_iters products, stopped at
 * a relative change below 1e-3, from a fixed random start):
 *
 *   eigH  of the Hessian H (tg_hessian_top_eigenvalue);
 *   eigP  of Adam's preconditioned Hessian P^-1/2 H P^-1/2, P = diag(
 *         sqrt(v_hat) + eps) from the optimiser's second moments v at
 *         that step (v_hat = v / (1 - beta2^t)). Adam's step is
 *         lr m_hat / P: gradient descent on the preconditioned problem,
 *         which is stable while eigP < (2 + 2 beta1) / ((1 - beta1) lr) =
 *         38 / lr for beta1 = 0.9 (Cohen et al. 2022, "Adaptive gradient
 *         methods at the edge of stability"); 2 / lr is plain gradient
 *         descent's threshold on H. The report sets both beside.
 *
 * The power iteration for eigP is written here on exact Hessian-vector
 * products: v -> D H D v with D = P^-1/2, in double where it sums.
 */
#include "ovg.h"

#include "examples/common/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the parameters (or, with adam, Adam's D = 1 / sqrt(sqrt(v_hat) + eps)),
 * flat, into out */
static void flat(const task_model *m, const tg_optim *adam, tg_real *out)
{
    int64_t at = 0;
    double c2 = adam ? 1 - pow(0.999, (double)adam->step) : 1;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        const tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        for (int64_t j = 0; j < w->numel; j++) {
            double v = adam && adam->v[i] ? (double)adam->v[i][j] : 0;
            out[at + j] = adam ? (tg_real)(1 / sqrt(sqrt(v / c2) + 1e-8))
                               : w->data[j];
        }
        at += w->numel;
    }
}

static double normalise(tg_real *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)v[i] * (double)v[i];
    s = sqrt(s);
    for (int64_t i = 0; s > 0 && i < n; i++)
        v[i] = (tg_real)((double)v[i] / s);
    return s;
}

/* the eigenvalue of D H D of largest magnitude (signed: the Rayleigh
 * quotient), by power iteration from a fixed random start; NAN after an
 * error */
static double top_preconditioned(ovg_fixed *f, const tg_real *D, int64_t n,
                                 int iters)
{
    size_t bytes = (size_t)n * sizeof(tg_real);
    tg_real *v = malloc(bytes), *u = malloc(bytes), *hu = malloc(bytes);
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    for (int64_t i = 0; i < n; i++)
        v[i] = (tg_real)tg_rng_normal(&rng);
    normalise(v, n);
    double lam = NAN, prev = NAN;
    for (int it = 0; it < iters; it++) {
        for (int64_t i = 0; i < n; i++)
            u[i] = (tg_real)((double)D[i] * (double)v[i]);
        if (tg_hessian_vector_product(ovg_fixed_outputs, ovg_fixed_loss, f,
                                      &f->m->ps, u, hu) < 0) {
            lam = NAN;
            break;
        }
        double r = 0;
        for (int64_t i = 0; i < n; i++) {
            hu[i] = (tg_real)((double)D[i] * (double)hu[i]);
            r += (double)v[i] * (double)hu[i];
        }
        lam = r;
        if (normalise(hu, n) == 0)
            break;
        memcpy(v, hu, (size_t)n * sizeof *v);
        if (it > 0 && fabs(lam - prev) < 1e-3 * fabs(lam))
            break;
        prev = lam;
    }
    free(v);
    free(u);
    free(hu);
    return lam;
}

/* loss and gradient norm on the fixed batch */
static double grad_norm(ovg_fixed *f, double *loss)
{
    tg_tape_reset();
    tg_params_zero_grad(&f->m->ps);
    tg_tensor *l = ovg_fixed_loss(ovg_fixed_outputs(f), f);
    if (!l || tg_backward(l) < 0) {
        tg_tape_reset();
        return *loss = NAN;
    }
    *loss = (double)tg_item(l);
    double s = 0;
    for (int i = 0; i < tg_params_count(&f->m->ps); i++) {
        const tg_tensor *w = tg_params_at(&f->m->ps, i)->tensor;
        for (int64_t k = 0; w->grad && k < w->numel; k++)
            s += (double)w->grad[k] * (double)w->grad[k];
    }
    tg_params_zero_grad(&f->m->ps);
    tg_tape_reset();
    return sqrt(s);
}

/* one measurement line at this step */
static void measure(const opts *o, ovg_fixed *f, const tg_optim *adam,
                    const tg_real *theta0, const char *key)
{
    int64_t n = tg_params_numel(&f->m->ps);
    tg_real *D = malloc((size_t)n * sizeof *D);
    flat(f->m, NULL, D);
    double dist = 0;
    for (int64_t i = 0; i < n; i++)
        dist += ((double)D[i] - (double)theta0[i]) *
                ((double)D[i] - (double)theta0[i]);
    double loss, g = grad_norm(f, &loss);
    double eigH = tg_hessian_top_eigenvalue(ovg_fixed_outputs, ovg_fixed_loss,
                                            f, &f->m->ps, o->curv_iters, 1e-3,
                                            7, NULL);
    double eigP = NAN; /* step 0: no second moments yet */
    if (adam->step > 0) {
        flat(f->m, adam, D);
        eigP = top_preconditioned(f, D, n, o->curv_iters);
    }
    ovg_emit("%sloss=%.6g gnorm=%.6g eigH=%.6g eigP=%.6g dist=%.6g\n", key,
             loss, g, eigH, eigP, sqrt(dist));
    free(D);
}

/* the next step of the schedule after s (0, 10, 25, 50, 100, 200, 400,
 * 700, 1000, then every 500), at most last */
static long next_step(long s, long last)
{
    static const long sched[] = {10, 25, 50, 100, 200, 400, 700, 1000};
    long n = s + 500;
    for (int i = 0; i < 8; i++)
        if (sched[i] > s) {
            n = sched[i];
            break;
        }
    return n < last ? n : last;
}

static void trajectory(const opts *o, int r, double lr, int seed)
{
    tg_rng init, data, frng;
    tg_rng_seed(&init, (uint64_t)seed);
    tg_rng_seed(&data, 1000 + (uint64_t)seed);
    tg_rng_seed(&frng, 4242 + (uint64_t)o->curv_T);
    task_model m;
    ovg_model_init(&m, &ovg_rows[r], TASK_ADDING, o->H, &init);
    ovg_fixed f = {&m, TASK_ADDING, {0}};
    ovg_batch_make(&f.b, TASK_ADDING, o->curv_T, o->curv_B, &frng);
    tg_real *theta0 = malloc((size_t)tg_params_numel(&m.ps) * sizeof *theta0);
    flat(&m, NULL, theta0);
    tg_optim *opt = tg_adam_new(&m.ps, lr, 0.9, 0.999, 1e-8, 0);
    long at = 0;
    for (long step = 0;; step++) {
        if (step == at) {
            char key[160];
            snprintf(key, sizeof key, "curv row=%s lr=%g seed=%d T=%d "
                     "step=%ld ", ovg_rows[r].name, lr, seed, o->curv_T, step);
            measure(o, &f, opt, theta0, key);
            if (step >= o->curv_steps)
                break;
            at = next_step(step, o->curv_steps);
        }
        tg_tensor *x, *target;
        task_adding_batch(o->curv_T, o->B, &data, &x, &target);
        task_train_step(&m, opt, TASK_ADDING, x, target, NULL, 1.0);
    }
    tg_optim_free(opt);
    ovg_batch_free(&f.b);
    free(theta0);
    task_model_free(&m);
}

void ovg_curvature_jobs(const opts *o, int *job)
{
    const int rows[2] = {ovg_row_index("tanh"), ovg_row_index("lstm")};
    for (int i = 0; i < 2; i++)
        for (int l = 0; l < 2; l++)
            for (int s = 1; s <= o->curv_seeds; s++) {
                char key[160];
                snprintf(key, sizeof key, "curv row=%s lr=%g seed=%d T=%d "
                         "step=%ld ", ovg_rows[rows[i]].name, o->curv_lr[l],
                         s, o->curv_T, o->curv_steps);
                if ((*job)++ % o->nshards != o->shard || ovg_done(key))
                    continue;
                trajectory(o, rows[i], o->curv_lr[l], s);
            }
}
