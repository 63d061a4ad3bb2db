/*
 * nn/optim_sgd.c - SGD with momentum, dampening, weight decay and
 * Nesterov's look-ahead, as torch.optim.SGD (1.13):
 *
 *   g = grad + wd * p
 *   buf = g (first step) | momentum * buf + (1 - dampening) * g
 *   g = nesterov ? g + momentum * buf : buf   (when momentum != 0)
 *   p -= lr * g
 *
 * Its state: the momentum buffer per parameter (in m), kept only when
 * momentum != 0 - so a file records "sgd" or "sgd_momentum".
 */
#include "nn/optim.h"
#include "nn/optim_internal.h"
#include "tensor/parallel.h"

typedef struct sgd {
    double momentum, dampening;
    bool nesterov;
} sgd;

/* p, g (and buf unless momentum is 0) are n numbers each; first: buf
 * holds nothing yet (this parameter's first step) */
static void sgd_update(const tg_optim *o, int64_t n, tg_real *p,
                       const tg_real *g, tg_real *buf, tg_real *unused,
                       bool first)
{
    (void)unused;
    const sgd *s = o->state;
    const double lr = o->lr, wd = o->weight_decay, mom = s->momentum;
    const double keep = 1 - s->dampening;
    const bool nesterov = s->nesterov;
    /* each iteration reads and writes p[i] and buf[i] alone */
    TG_OMP_FOR(n * 6)
    for (int64_t i = 0; i < n; i++) {
        double d = (double)g[i]; /* g = grad + wd * p */
        if (wd != 0)
            d += wd * (double)p[i];
        if (buf) {               /* buf = g | mom buf + (1 - damp) g */
            double b = first ? d : mom * (double)buf[i] + keep * d;
            buf[i] = (tg_real)b;
            d = nesterov ? d + mom * b : b; /* g = g + mom buf | buf */
        }
        p[i] = (tg_real)((double)p[i] - lr * d);
    }
}

static int sgd_state_of(const tg_optim *o)
{
    return ((const sgd *)o->state)->momentum != 0;
}

const tg_optim_type tg_sgd_type = {
    .name = "sgd",
    .states = {{"sgd", "SGD without momentum", 0, "sgd"},
               {"sgd_momentum", "SGD with momentum", 1, "sgd_momentum"}},
    .state_of = sgd_state_of,
    .update = sgd_update,
};

tg_optim *tg_sgd_new(tg_params *ps, double lr, double momentum,
                     double dampening, double weight_decay, bool nesterov)
{
    if (!(momentum >= 0)) {
        tg_error("sgd", "invalid momentum %g: it must be >= 0", momentum);
        return NULL;
    }
    /* Nesterov's look-ahead g + momentum * buf assumes buf is an undamped
     * sum of gradients; PyTorch refuses the combination, and so do we. */
    if (nesterov && (momentum <= 0 || dampening != 0)) {
        tg_error("sgd", "nesterov momentum requires a momentum > 0 and zero "
                 "dampening (got momentum %g, dampening %g)", momentum,
                 dampening);
        return NULL;
    }
    sgd *s = tg_xcalloc(1, sizeof *s);
    *s = (sgd){momentum, dampening, nesterov};
    return tg_optim_new("sgd", &tg_sgd_type, ps, lr, weight_decay, s);
}
