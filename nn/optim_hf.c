/*
 * nn/optim_hf.c - Hessian-free (nn/curvature.h) as an optimizer:
 * conjugate gradient on Gauss-Newton products. It evaluates the model
 * itself, so it is stepped with a closure (tg_optim_step_closure), as
 * PyTorch's LBFGS is.
 *
 * Its state is its tg_hf: the damping lambda and the warm start of
 * conjugate gradient (one vector over all parameters, saved per parameter
 * as "<param>.m"), and the counts; no buffers per parameter.
 */
#include "nn/optim.h"
#include "nn/optim_internal.h"

#include <math.h>
#include <stdio.h>

static double hf_step_closure(tg_optim *o, const tg_closure *c)
{
    double L = tg_hf_step(o->hf, c);
    o->step = o->hf->steps;
    return L;
}

static void hf_save(const tg_optim *o, const tg_optim_io *io)
{
    int count = tg_params_count(o->params);
    int64_t at = 0; /* the warm start, per parameter */
    for (int i = 0; i < count && at < o->hf->n; i++) {
        const tg_param *p = tg_params_at(o->params, i);
        io->save_buffer(io, p, ".m", o->hf->prev + at);
        at += p->tensor->numel;
    }
    io->save_f64(io, "lambda", &o->hf->lambda);
}

static int hf_load(tg_optim *o, const tg_optim_io *io, int64_t step,
                   char *err, size_t errcap)
{
    double lambda = 0;
    int found = io->read_f64(io, "lambda", &lambda);
    if (found <= 0 || !(lambda > 0) || !isfinite(lambda)) {
        if (err && errcap)
            snprintf(err, errcap, "optimizer state '%slambda' is %s: it "
                     "should be one positive finite number (Hessian-free's "
                     "damping)", io->prefix, found == 0
                     ? "missing from the file" : "not valid");
        return -1;
    }
    for (int i = 0; i < o->n; i++)
        if (io->check_buffer(io, tg_params_at(o->params, i), ".m", err,
                             errcap) < 0)
            return -1;
    /* now copy: nothing below can fail */
    int64_t at = 0;
    for (int i = 0; i < o->n && at < o->hf->n; i++) {
        const tg_param *p = tg_params_at(o->params, i);
        io->load_buffer(io, p, ".m", o->hf->prev + at);
        at += p->tensor->numel;
    }
    o->hf->lambda = lambda;
    o->hf->steps = step;
    return 0;
}

static void hf_fini(tg_optim *o)
{
    tg_hf_free(o->hf);
}

const tg_optim_type tg_hf_type = {
    .name = "hf",
    .states = {{"hessian_free", "Hessian-free", 0, "hessian_free"}},
    .step_closure = hf_step_closure,
    .save = hf_save,
    .load = hf_load,
    .fini = hf_fini,
};

tg_optim *tg_hf_optim_new(tg_params *ps, const tg_hf_config *cfg)
{
    tg_hf *h = tg_hf_new(ps, cfg);
    return h ? tg_optim_new("hf", &tg_hf_type, ps, 0, 0, h) : NULL;
}
