/*
 * nn/optim_adam.c - Adam and AdamW, as torch.optim.Adam and AdamW (1.13):
 *
 *   Adam   g = grad + wd * p                        (L2, coupled)
 *          m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
 *          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   AdamW  p *= 1 - lr * wd, then Adam with wd = 0  (decoupled decay)
 *
 * Their state: the moments m and v per parameter (the same for both, so
 * a file saved before files recorded the kind loads into either).
 */
#include "nn/optim.h"
#include "nn/optim_internal.h"
#include "tensor/parallel.h"

#include <math.h>

typedef struct adam {
    double beta1, beta2, eps;
} adam;

/* p, g, m, v are n numbers each. step_size and bc2_sqrt fold the bias
 * corrections of this step. */
static void adam_update(const tg_optim *o, int64_t n, tg_real *p,
                        const tg_real *g, tg_real *m, tg_real *v, bool first)
{
    (void)first;
    const adam *a = o->state;
    const double b1 = a->beta1, b2 = a->beta2, eps = a->eps;
    const double t = (double)o->step;
    const double step_size = o->lr / (1 - pow(b1, t));
    const double bc2_sqrt = sqrt(1 - pow(b2, t));
    /* Adam adds the decay to the gradient (L2); AdamW shrinks p first */
    const bool adamw = o->type == &tg_adamw_type;
    const double wd = adamw ? 0 : o->weight_decay;
    const double shrink = 1 - o->lr * o->weight_decay;
    /* each iteration reads and writes p[i], m[i], v[i] alone */
    TG_OMP_FOR(n * 16)
    for (int64_t i = 0; i < n; i++) {
        double pi = (double)p[i];
        if (adamw)
            pi *= shrink;                    /* p *= 1 - lr wd */
        double gi = (double)g[i];
        if (wd != 0)
            gi += wd * pi;                   /* g = grad + wd p */
        double mi = b1 * (double)m[i] + (1 - b1) * gi;
        double vi = b2 * (double)v[i] + (1 - b2) * gi * gi;
        /* p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
        pi -= step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
        m[i] = (tg_real)mi;
        v[i] = (tg_real)vi;
        p[i] = (tg_real)pi;
    }
}

/* with eps = 0, a zero gap of a flattened block would become 0 / 0 */
static bool adam_gap_safe(const tg_optim *o)
{
    return ((const adam *)o->state)->eps > 0;
}

const tg_optim_type tg_adam_type = {
    .name = "adam",
    .states = {{"adam", "Adam", 2, "adam"}},
    .nonneg_v = true,
    .update = adam_update,
    .gap_safe = adam_gap_safe,
};

const tg_optim_type tg_adamw_type = {
    .name = "adamw",
    .states = {{"adamw", "AdamW", 2, "adam"}},
    .nonneg_v = true,
    .update = adam_update,
    .gap_safe = adam_gap_safe,
};

static tg_optim *adam_new(const tg_optim_type *type, tg_params *ps,
                          double lr, double beta1, double beta2, double eps,
                          double weight_decay)
{
    if (!(eps >= 0)) {
        tg_error(type->name, "invalid eps %g: it must be >= 0", eps);
        return NULL;
    }
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
        tg_error(type->name, "invalid betas (%g, %g): each must be in [0, 1)",
                 beta1, beta2);
        return NULL;
    }
    adam *a = tg_xcalloc(1, sizeof *a);
    *a = (adam){beta1, beta2, eps};
    return tg_optim_new(type->name, type, ps, lr, weight_decay, a);
}

tg_optim *tg_adam_new(tg_params *ps, double lr, double beta1, double beta2,
                      double eps, double weight_decay)
{
    return adam_new(&tg_adam_type, ps, lr, beta1, beta2, eps, weight_decay);
}

tg_optim *tg_adamw_new(tg_params *ps, double lr, double beta1, double beta2,
                       double eps, double weight_decay)
{
    return adam_new(&tg_adamw_type, ps, lr, beta1, beta2, eps, weight_decay);
}
