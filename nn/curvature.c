/*
 * nn/curvature.c - Gauss-Newton-vector products and the top eigenvalue of
 * the Gauss-Newton matrix (see nn/curvature.h). No derivative is written
 * here: J v comes from forward mode, J^T u from reverse mode; only the
 * loss's own second derivative H, which is tiny and closed-form, is.
 */
#include "nn/curvature.h"

#include "ops/fuse.h"
#include "tensor/ds.h"
#include "tensor/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* u = H w for the loss at outputs z (w, u contiguous, z's shape) */
static void loss_hessian(tg_curv_loss loss, const tg_tensor *z,
                         const tg_real *w, tg_real *u)
{
    int64_t n = z->numel;
    if (loss.kind == TG_CURV_MSE) {
        double c = loss.reduction == TG_MEAN ? 2.0 / (double)n : 2.0;
        for (int64_t i = 0; i < n; i++)
            u[i] = (tg_real)(c * (double)w[i]);
        return;
    }
    /* cross-entropy: per row, H = diag(p) - p p^T, p = softmax(z_r) */
    int64_t C = z->ndim ? z->shape[z->ndim - 1] : 1, N = C ? n / C : 0;
    double scale = loss.reduction == TG_MEAN ? 1.0 / (double)N : 1.0;
    tg_real *zc = malloc((size_t)(n ? n : 1) * sizeof *zc);
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(z->ndim, z->shape, cs);
    tg_strided_copy(z->ndim, z->shape, zc, cs, z->data, z->stride, false);
    double *p = malloc((size_t)(C ? C : 1) * sizeof *p);
    for (int64_t r = 0; r < N; r++) {
        const tg_real *zr = zc + r * C, *wr = w + r * C;
        double mx = -INFINITY, s = 0, pw = 0;
        for (int64_t c = 0; c < C; c++)
            mx = fmax(mx, (double)zr[c]);
        for (int64_t c = 0; c < C; c++)
            s += p[c] = exp((double)zr[c] - mx);
        for (int64_t c = 0; c < C; c++) {
            p[c] /= s;
            pw += p[c] * (double)wr[c];
        }
        for (int64_t c = 0; c < C; c++)
            u[r * C + c] = (tg_real)(scale * p[c] * ((double)wr[c] - pw));
    }
    free(p);
    free(zc);
}

/* the parameters' gradients, flat (zeros where none) */
static void flat_grads(tg_params *ps, tg_real *out)
{
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_tensor *w = tg_params_at(ps, i)->tensor;
        if (w->grad)
            memcpy(out + at, w->grad, (size_t)w->numel * sizeof *out);
        else
            memset(out + at, 0, (size_t)w->numel * sizeof *out);
        at += w->numel;
    }
}

/* v (flat, in list order) as the parameters' tangents. 0 or -1. */
static int set_direction(tg_params *ps, const tg_real *v)
{
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_tensor *w = tg_params_at(ps, i)->tensor;
        if (tg_set_tangent(w, tg_wrap_buffer(w->ndim, w->shape,
                                             (tg_real *)v + at)) < 0)
            return -1;
        at += w->numel;
    }
    return 0;
}

/* gv = G v, plus k S v when hidden is given (k > 0): S = J_h^T J_h for the
 * states hidden() returns after f, scaled by 1 / their rows for a mean loss
 * (Hessian-free's structural damping). Both seeds go into one backward. */
static int gn_product_recorded(const char *op, tg_model_fn f,
                               tg_tensor *(*hidden)(void *), double k,
                               void *ud, tg_curv_loss loss, tg_params *ps,
                               const tg_real *v, tg_real *gv)
{
    unsigned long errors = tg_error_count();
    tg_tensor *z = f(ud);
    if (!z) {
        if (tg_error_count() == errors)
            tg_error(op, "the model function (closure.outputs) returned NULL "
                     "without reporting an error");
        return -1;
    }
    tg_tensor *hs = hidden ? hidden(ud) : NULL;
    if (hidden && !hs) {
        if (tg_error_count() == errors)
            tg_error(op, "closure.hidden returned NULL, but structural "
                     "damping (mu > 0) needs the hidden states that the "
                     "last outputs() call recorded: return them from "
                     "hidden(), or set mu = 0 (or hidden = NULL) to do "
                     "without");
        return -1;
    }
    if (set_direction(ps, v) < 0 || tg_jvp() < 0) /* J v at the outputs */
        return -1;
    tg_tensor *u = tg_zeros(z->ndim, z->shape); /* zero if z does not move */
    if (z->tangent)
        loss_hessian(loss, z, z->tangent, u->data);
    tg_params_zero_grad(ps);
    int rc;
    if (!hs) {
        rc = tg_backward_seed(z, u); /* J^T (H J v) */
    } else {
        tg_tensor *s = tg_zeros(hs->ndim, hs->shape);
        if (hs->tangent) {
            int64_t rows = hs->ndim ? hs->numel / hs->shape[hs->ndim - 1] : 1;
            double kr = k / (loss.reduction == TG_MEAN && rows ? (double)rows
                                                               : 1.0);
            for (int64_t i = 0; i < hs->numel; i++)
                s->data[i] = (tg_real)(kr * (double)hs->tangent[i]);
        }
        tg_tensor *seed = tg_add(tg_sum(tg_mul(z, u)), tg_sum(tg_mul(hs, s)));
        rc = seed ? tg_backward(seed) : -1;
    }
    flat_grads(ps, gv);
    tg_params_zero_grad(ps);
    return rc;
}

/* What a curvature routine records goes when it returns: the tape is
 * rewound to where the caller left it (the caller's entries and
 * temporaries stay), after forgetting the tangents - the directions set
 * on the parameters, and those the sweep gave the caller's entries too
 * (numbers in memory that the rewind frees). */
static void forget_since(tg_tape_mark m)
{
    tg_clear_tangents();
    tg_tape_rewind(m);
}

static int gn_product(const char *op, tg_model_fn f,
                      tg_tensor *(*hidden)(void *), double k, void *ud,
                      tg_curv_loss loss, tg_params *ps, const tg_real *v,
                      tg_real *gv)
{
    tg_tape_mark m = tg_tape_mark_get();
    int rc = gn_product_recorded(op, f, hidden, k, ud, loss, ps, v, gv);
    if (rc < 0)
        tg_params_zero_grad(ps); /* (scratch: zero, as on success) */
    forget_since(m);
    return rc;
}

int tg_gauss_newton_product(tg_model_fn f, void *ud, tg_curv_loss loss,
                            tg_params *ps, const tg_real *v, tg_real *gv)
{
    return gn_product("gauss_newton_product", f, NULL, 0, ud, loss, ps, v,
                      gv);
}

static double norm2(const tg_real *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return sqrt(s);
}

/* one curvature product, whichever matrix */
typedef struct product {
    tg_model_fn f;
    tg_loss_fn loss_of; /* Hessian */
    tg_curv_loss curv;  /* Gauss-Newton */
    void *ud;
    tg_params *ps;
    bool hessian;
} product;

static int apply(const product *m, const tg_real *v, tg_real *out)
{
    return m->hessian ? tg_hessian_vector_product(m->f, m->loss_of, m->ud,
                                                  m->ps, v, out)
                      : tg_gauss_newton_product(m->f, m->ud, m->curv, m->ps,
                                                v, out);
}

/* The eigenvalue of largest magnitude by power iteration: v <- A v / |A v|,
 * the Rayleigh quotient v . A v as the estimate */
static double power_iteration(const product *m, int iters, double rel_tol,
                              uint64_t seed, tg_real *vec)
{
    int64_t n = tg_params_numel(m->ps);
    tg_real *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    tg_real *g = malloc((size_t)(n ? n : 1) * sizeof *g);
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = (tg_real)tg_rng_normal(&r);
    double lambda = NAN, nv = norm2(v, n);
    for (int64_t i = 0; i < n; i++)
        v[i] = (tg_real)((double)v[i] / nv);
    for (int it = 0; it < iters; it++) {
        if (apply(m, v, g) < 0) {
            lambda = NAN;
            break;
        }
        double l = 0; /* Rayleigh quotient v . A v (|v| = 1) */
        for (int64_t i = 0; i < n; i++)
            l += (double)v[i] * (double)g[i];
        double ng = norm2(g, n);
        bool done = it > 0 && fabs(l - lambda) <= rel_tol * fabs(l);
        lambda = l;
        if (ng == 0 || done)
            break;
        for (int64_t i = 0; i < n; i++)
            v[i] = (tg_real)((double)g[i] / ng);
    }
    if (vec)
        memcpy(vec, v, (size_t)n * sizeof *v);
    free(v);
    free(g);
    return lambda;
}

double tg_gauss_newton_top_eigenvalue(tg_model_fn f, void *ud,
                                      tg_curv_loss loss, tg_params *ps,
                                      int iters, double rel_tol,
                                      uint64_t seed, tg_real *vec)
{
    product m = {.f = f, .curv = loss, .ud = ud, .ps = ps};
    return power_iteration(&m, iters, rel_tol, seed, vec);
}

/* ---- the exact Hessian ----------------------------------------------------
 * Reverse over forward: record the model and its loss L, then a forward-
 * mode sweep whose own work is recorded (tg_jvp_create_graph) gives L's
 * tangent along v as a recorded scalar, grad L . v; reverse mode
 * differentiates it: d(grad L . v)/dtheta = H v (v is constant). Exact up
 * to rounding, like the gradient, for one forward, one recorded tangent
 * sweep (about a forward's cost again) and one reverse sweep over both. */
int tg_hessian_vector_product(tg_model_fn f, tg_loss_fn loss_of, void *ud,
                              tg_params *ps, const tg_real *v, tg_real *hv)
{
    bool fused = tg_set_fusion(false); /* compiled steps: no recorded rule */
    tg_tape_mark m = tg_tape_mark_get();
    tg_tensor *z = f(ud);
    tg_tensor *L = z ? loss_of(z, ud) : NULL;
    int rc = -1;
    if (!L)
        goto out;
    if (L->numel != 1) {
        tg_error("hessian_vector_product", "the loss has %lld numbers, "
                 "not one", (long long)L->numel);
        goto out;
    }
    if (set_direction(ps, v) < 0)
        goto out;
    if (tg_jvp_create_graph() < 0)
        goto out;
    /* grad L . v, recorded; none, or not recorded: it does not depend on
     * the parameters (L does not reach them, or only linearly): H v = 0 */
    tg_tensor *Lv = tg_tangent(L);
    if (Lv && Lv->entry < 0)
        Lv = NULL;
    tg_params_zero_grad(ps);
    rc = Lv ? tg_backward(Lv) : 0;
    flat_grads(ps, hv); /* (zeros when Lv is none) */
    tg_params_zero_grad(ps);
out:
    tg_params_zero_grad(ps);
    forget_since(m);
    tg_set_fusion(fused);
    return rc;
}

double tg_hessian_top_eigenvalue(tg_model_fn f, tg_loss_fn loss_of, void *ud,
                                 tg_params *ps, int iters, double rel_tol,
                                 uint64_t seed, tg_real *vec)
{
    product m = {.f = f, .loss_of = loss_of, .ud = ud, .ps = ps,
                 .hessian = true};
    return power_iteration(&m, iters, rel_tol, seed, vec);
}

/* ---- Hessian-free optimisation ------------------------------------------ */

tg_hf *tg_hf_new(tg_params *ps, const tg_hf_config *cfg)
{
    tg_hf_config c = cfg ? *cfg : (tg_hf_config){
        .curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN}};
    if (c.lambda0 == 0)
        c.lambda0 = 1;
    if (c.max_cg == 0)
        c.max_cg = 100;
    if (!ps || !(c.lambda0 > 0) || c.max_cg < 1 || !(c.mu >= 0)) {
        tg_error("hf_new", "needs parameters, lambda0 > 0 (got %g), max_cg "
                 ">= 1 (got %d) and mu >= 0 (got %g)", c.lambda0, c.max_cg,
                 c.mu);
        return NULL;
    }
    tg_hf *h = tg_xcalloc(1, sizeof *h);
    h->ps = ps;
    h->cfg = c;
    h->lambda = c.lambda0;
    h->n = tg_params_numel(ps);
    h->prev = tg_xcalloc((size_t)(h->n ? h->n : 1), sizeof(tg_real));
    return h;
}

void tg_hf_free(tg_hf *h)
{
    if (h) {
        free(h->prev);
        free(h);
    }
}

/* Is the closure's loss of the kind the curvature assumes? Read from
 * g = dL/dz: cross-entropy's (softmax(z) - target per row, scaled; soft
 * targets and row weights too) sums to zero over the classes in every
 * row; a squared error's, c (z - y), does not - and it satisfies
 * L = |g|^2 n / 4 (mean over n numbers) or L = |g|^2 / 4 (sum), which
 * also tells the reduction. A loss with other terms (a penalty on the
 * parameters) fails the squared error's identity and is then let pass:
 * only what is certain is reported. 0, or -1 after reporting. */
static int check_loss_kind(const tg_hf *h, const tg_tensor *z, double L)
{
    const tg_real *g = z->grad;
    int64_t n = z->numel, C = z->ndim ? z->shape[z->ndim - 1] : 1;
    if (!g || n == 0 || C == 0)
        return 0;
    double worst = 0, gg = 0; /* largest |row sum| / row's sum of |g| */
    int64_t worst_row = 0;
    for (int64_t r = 0; r < n / C; r++) {
        double sum = 0, mag = 0;
        for (int64_t k = 0; k < C; k++) {
            double x = (double)g[r * C + k];
            sum += x;
            mag += fabs(x);
            gg += x * x;
        }
        if (mag > 0 && fabs(sum) / mag > worst) {
            worst = fabs(sum) / mag;
            worst_row = r;
        }
    }
    if (gg == 0)
        return 0; /* at a minimum: nothing to tell them apart */
    const char *red = h->cfg.curv.reduction == TG_MEAN ? "TG_MEAN" : "TG_SUM";
    if (h->cfg.curv.kind == TG_CURV_CROSS_ENTROPY) {
        if (worst <= 1e-2)
            return 0;
        char shape[96];
        tg_error("hf_step", "the curvature is cross-entropy's (curv.kind = "
                 "TG_CURV_CROSS_ENTROPY, the default), but the closure's loss "
                 "is not cross-entropy of the outputs z %s: its gradient "
                 "dL/dz sums to %.3g of its size over the last axis in row "
                 "%lld, where cross-entropy's sums to zero. For a squared "
                 "error set curv.kind = TG_CURV_MSE (and curv.reduction): "
                 "Gauss-Newton for another loss gives wrong steps",
                 tg_shape_str(z, shape, sizeof shape), worst,
                 (long long)worst_row);
        return -1;
    }
    /* squared error: |g|^2 n / 4 for a mean, |g|^2 / 4 for a sum */
    double as_mean = gg * (double)n / 4, as_sum = gg / 4;
    double tol = 1e-3 * fmax(fabs(L), 1e-30);
    bool mean_ok = fabs(L - as_mean) <= tol, sum_ok = fabs(L - as_sum) <= tol;
    bool want_mean = h->cfg.curv.reduction == TG_MEAN;
    if (mean_ok || sum_ok) {
        if (want_mean ? mean_ok : sum_ok)
            return 0;
        tg_error("hf_step", "the closure's loss is a squared error %s over "
                 "the outputs (L = %.6g), but the curvature says %s "
                 "(curv.reduction = %s): set curv.reduction = %s", want_mean
                 ? "summed" : "averaged", L, want_mean ? "averaged" : "summed",
                 red, want_mean ? "TG_SUM" : "TG_MEAN");
        return -1;
    }
    if (C > 1 && worst < 1e-4) {
        tg_error("hf_step", "the curvature is a squared error's (curv.kind = "
                 "TG_CURV_MSE), but the closure's loss looks like "
                 "cross-entropy: its gradient dL/dz sums to zero over the "
                 "last axis in every row, and is not the gradient of a "
                 "squared error of value L = %.6g. Set curv.kind = "
                 "TG_CURV_CROSS_ENTROPY", L);
        return -1;
    }
    return 0;
}

/* The loss at the current parameters into *L; with grad: its gradient,
 * flat, and the loss's kind checked against cfg.curv. 0, or -1 after an
 * error was reported (by the closure's ops, by backward, or here). */
static int hf_loss(tg_hf *h, const tg_closure *c, tg_real *grad, double *L)
{
    tg_tape_mark m = tg_tape_mark_get();
    tg_params_zero_grad(h->ps);
    unsigned long errors = tg_error_count();
    bool was = tg_set_grad_enabled(grad != NULL);
    tg_tensor *z = c->outputs(c->ud);
    tg_tensor *l = z ? c->loss(z, c->ud) : NULL;
    tg_set_grad_enabled(was);
    int rc = -1;
    if (!l) {
        if (tg_error_count() == errors)
            tg_error("hf_step", "the closure's %s returned NULL without "
                     "reporting an error", z ? "loss" : "outputs");
        goto out;
    }
    if (l->numel != 1) {
        char shape[96];
        tg_error("hf_step", "the closure's loss has shape %s; it must be one "
                 "number", tg_shape_str(l, shape, sizeof shape));
        goto out;
    }
    *L = (double)l->data[0];
    if (grad) {
        h->gradients++;
        tg_retain_grad(z); /* dL/dz: which loss is it? */
        if (tg_backward(l) < 0 || check_loss_kind(h, z, *L) < 0)
            goto out;
        flat_grads(h->ps, grad);
    } else {
        h->losses++;
    }
    rc = 0;
out:
    tg_params_zero_grad(h->ps);
    tg_tape_rewind(m);
    return rc;
}

/* out = (G + mu lambda S + lambda I) v: G v as tg_gauss_newton_product,
 * S v = J_h^T J_h v from the same sweeps (both seeds in one backward) */
int tg_hf_product(tg_hf *h, const tg_closure *c, const tg_real *v,
                      tg_real *out)
{
    h->products++;
    double ml = h->cfg.mu * h->lambda;
    bool structural = ml > 0 && c->hidden;
    if (gn_product("hf_product", c->outputs, structural ? c->hidden : NULL,
                   ml, c->curv_ud ? c->curv_ud : c->ud, h->cfg.curv, h->ps,
                   v, out) < 0)
        return -1;
    for (int64_t i = 0; i < h->n; i++)
        out[i] = (tg_real)((double)out[i] + h->lambda * (double)v[i]);
    return 0;
}

/* the parameters, flat: out = theta, or theta = in */
static void hf_params(tg_hf *h, tg_real *out, const tg_real *in)
{
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(h->ps); i++) {
        tg_tensor *w = tg_params_at(h->ps, i)->tensor;
        size_t b = (size_t)w->numel * sizeof(tg_real);
        if (out)
            memcpy(out + at, w->data, b);
        else {
            memcpy(w->data, in + at, b);
            tg_bump_version(w);
        }
        at += w->numel;
    }
}

/* theta = theta0 + s d */
static void hf_set(tg_hf *h, const tg_real *theta0, const tg_real *d, double s)
{
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(h->ps); i++) {
        tg_tensor *w = tg_params_at(h->ps, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++)
            w->data[k] = (tg_real)((double)theta0[at + k] +
                                   s * (double)d[at + k]);
        tg_bump_version(w);
        at += w->numel;
    }
}

static double dotd(const tg_real *a, const tg_real *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* an iterate kept for backtracking, with A d */
typedef struct kept {
    tg_real *d, *Ad;
    int iter;
} kept;

/* One step's buffers, n numbers each (phi: max_cg + 1), and the kept
 * iterates (an stb_ds array). */
typedef struct hf_work {
    int64_t n;
    size_t bytes;
    tg_real *g, *d, *r, *p, *Ap, *Ad, *theta;
    double *phi;
    kept *keep;
} hf_work;

static void keep_iterate(hf_work *w, int iter)
{
    kept k = {malloc(w->bytes), malloc(w->bytes), iter};
    memcpy(k.d, w->d, w->bytes);
    memcpy(k.Ad, w->Ad, w->bytes);
    arrput(w->keep, k);
}

/* CG on A d = -g from d = 0.95 * the last step's final iterate, keeping
 * iterates 1, 2, 3, 4, 6, 8, 11, ... (gaps growing by 1.3) and the last
 * for backtracking. Stops at max_cg, at a small residual, or when the
 * quadratic model phi(d) = g.d + d.A d / 2 improves by less than
 * 5e-4 per iteration over the last k = max(10, i / 10) (Martens 2010).
 * 0, or -1 after an error was reported. */
static int hf_cg(tg_hf *h, const tg_closure *c, hf_work *w)
{
    int64_t n = w->n;
    tg_real *g = w->g, *d = w->d, *r = w->r, *p = w->p, *Ap = w->Ap;
    tg_real *Ad = w->Ad;
    double *phi = w->phi;
    for (int64_t i = 0; i < n; i++)
        d[i] = (tg_real)(0.95 * (double)h->prev[i]);
    if (tg_hf_product(h, c, d, Ad) < 0)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        r[i] = (tg_real)(-(double)g[i] - (double)Ad[i]);
        p[i] = r[i];
    }
    double rr = dotd(r, r, n), bb = dotd(g, g, n);
    int it = 0, next_keep = 1;
    double gap = 1;
    for (; it < h->cfg.max_cg && rr > 1e-24 * bb; it++) {
        if (tg_hf_product(h, c, p, Ap) < 0)
            return -1;
        double pAp = dotd(p, Ap, n);
        if (!(pAp > 0))
            break; /* A is positive definite: only rounding gets here */
        double a = rr / pAp;
        for (int64_t i = 0; i < n; i++) {
            d[i] = (tg_real)((double)d[i] + a * (double)p[i]);
            Ad[i] = (tg_real)((double)Ad[i] + a * (double)Ap[i]);
            r[i] = (tg_real)((double)r[i] - a * (double)Ap[i]);
        }
        double rr2 = dotd(r, r, n);
        for (int64_t i = 0; i < n; i++)
            p[i] = (tg_real)((double)r[i] + rr2 / rr * (double)p[i]);
        rr = rr2;
        int i1 = it + 1;
        phi[i1] = dotd(g, d, n) + 0.5 * dotd(d, Ad, n);
        if (i1 == next_keep && !h->cfg.no_backtrack) {
            keep_iterate(w, i1);
            while (next_keep <= i1) {
                gap *= 1.3;
                next_keep = (int)ceil(gap);
            }
        }
        int k = i1 / 10 > 10 ? i1 / 10 : 10;
        if (i1 > k && phi[i1] < 0 &&
            (phi[i1] - phi[i1 - k]) / phi[i1] < (double)k * 5e-4)
            { it++; break; }
    }
    h->cg_iters = it;
    memcpy(h->prev, d, w->bytes); /* the warm start: CG's final iterate */
    if (arrlen(w->keep) == 0 || w->keep[arrlen(w->keep) - 1].iter != it)
        keep_iterate(w, it);
    return 0;
}

/* Backtracking: from the last kept iterate back while the loss falls.
 * The index of the one chosen, its loss in *Lbest; -1 after an error. */
static int64_t hf_backtrack(tg_hf *h, const tg_closure *c, hf_work *w,
                            double *Lbest)
{
    int64_t best = arrlen(w->keep) - 1;
    hf_set(h, w->theta, w->keep[best].d, 1.0);
    if (hf_loss(h, c, NULL, Lbest) < 0)
        return -1;
    while (!h->cfg.no_backtrack && best > 0) {
        hf_set(h, w->theta, w->keep[best - 1].d, 1.0);
        double L = NAN;
        if (hf_loss(h, c, NULL, &L) < 0)
            return -1;
        if (!(L < *Lbest))
            break;
        *Lbest = L;
        best--;
    }
    return best;
}

/* Levenberg-Marquardt: rho = the loss's decrease over the model's
 * (without the lambda I term); lambda shrinks when the model was good,
 * grows when it was poor. */
static void hf_adjust_lambda(tg_hf *h, const kept *k, const tg_real *g,
                             int64_t n, double L0, double L)
{
    double gd = dotd(g, k->d, n);
    double q = gd + 0.5 * (dotd(k->d, k->Ad, n) -
                           h->lambda * dotd(k->d, k->d, n));
    h->rho = q < 0 ? (L - L0) / q : -1;
    if (h->rho > 0.75)
        h->lambda *= 2.0 / 3.0;
    else if (h->rho < 0.25)
        h->lambda *= 1.5;
}

/* Armijo line search on alpha from the backtracked step dd (loss L at
 * alpha = 1); leaves theta at the step taken, or exactly back at theta0
 * when no step decreases the loss. The alpha taken (0: none), or -1 after
 * an error. */
static double hf_line_search(tg_hf *h, const tg_closure *c, hf_work *w,
                             const tg_real *dd, double L0, double L)
{
    double gd = dotd(w->g, dd, w->n), alpha = 1;
    int tries = 0;
    while (!(L <= L0 + 0.01 * alpha * gd) && !h->cfg.no_backtrack &&
           tries < 8) {
        alpha *= 0.8;
        tries++;
        hf_set(h, w->theta, dd, alpha);
        if (hf_loss(h, c, NULL, &L) < 0)
            return -1;
    }
    if (!(L <= L0)) { /* no decrease (or NaN): not taken, theta exactly back */
        hf_params(h, NULL, w->theta);
        memset(h->prev, 0, w->bytes);
        return 0;
    }
    hf_set(h, w->theta, dd, alpha);
    return alpha;
}

double tg_hf_step(tg_hf *h, const tg_closure *c)
{
    hf_work w = {.n = h->n};
    w.bytes = (size_t)(w.n ? w.n : 1) * sizeof(tg_real);
    tg_real **bufs[] = {&w.g, &w.d, &w.r, &w.p, &w.Ap, &w.Ad, &w.theta};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        *bufs[i] = malloc(w.bytes);
    w.phi = malloc((size_t)(h->cfg.max_cg + 1) * sizeof *w.phi);
    double result = NAN, L0 = NAN, Lbest = NAN;
    hf_params(h, w.theta, NULL);
    if (hf_loss(h, c, w.g, &L0) < 0)
        goto done; /* reported: nothing more to say */
    if (!isfinite(L0)) {
        tg_error("hf_step", "the loss is %g at the current parameters", L0);
        goto done;
    }
    if (hf_cg(h, c, &w) < 0)
        goto done;
    int64_t best = hf_backtrack(h, c, &w, &Lbest);
    if (best < 0)
        goto done;
    h->cg_taken = w.keep[best].iter;
    hf_adjust_lambda(h, &w.keep[best], w.g, w.n, L0, Lbest);
    double alpha = hf_line_search(h, c, &w, w.keep[best].d, L0, Lbest);
    if (alpha < 0)
        goto done;
    h->alpha = alpha;
    h->loss = L0;
    h->steps++;
    result = L0;
done:
    if (isnan(result))
        hf_params(h, NULL, w.theta);
    for (int64_t i = 0; i < arrlen(w.keep); i++) {
        free(w.keep[i].d);
        free(w.keep[i].Ad);
    }
    arrfree(w.keep);
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(*bufs[i]);
    free(w.phi);
    return result;
}
