/*
 * nn/curvature.c - Gauss-Newton-vector products and the top eigenvalue of
 * the Gauss-Newton matrix (see nn/curvature.h). No derivative is written
 * here: J v comes from forward mode, J^T u from reverse mode; only the
 * loss's own second derivative H, which is tiny and closed-form, is.
 */
#include "nn/curvature.h"

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

int tg_gauss_newton_product(tg_model_fn f, void *ud, tg_curv_loss loss,
                            tg_params *ps, const tg_real *v, tg_real *gv)
{
    tg_tape_reset();
    tg_tensor *z = f(ud);
    if (!z)
        return -1;
    int np = tg_params_count(ps);
    int64_t at = 0;
    for (int i = 0; i < np; i++) { /* the direction, on the parameters */
        tg_tensor *w = tg_params_at(ps, i)->tensor;
        tg_tensor *vi = tg_wrap_buffer(w->ndim, w->shape, (tg_real *)v + at);
        if (tg_set_tangent(w, vi) < 0)
            return -1;
        at += w->numel;
    }
    if (tg_jvp() < 0) /* J v at the outputs */
        return -1;
    tg_tensor *u = tg_empty(z->ndim, z->shape);
    if (z->tangent)
        loss_hessian(loss, z, z->tangent, u->data);
    else /* the outputs do not move along v */
        memset(u->data, 0, (size_t)z->numel * sizeof(tg_real));
    tg_params_zero_grad(ps);
    int rc = tg_backward_seed(z, u); /* J^T (H J v) */
    at = 0;
    for (int i = 0; i < np; i++) {
        tg_tensor *w = tg_params_at(ps, i)->tensor;
        if (w->grad)
            memcpy(gv + at, w->grad, (size_t)w->numel * sizeof(tg_real));
        else
            memset(gv + at, 0, (size_t)w->numel * sizeof(tg_real));
        at += w->numel;
    }
    tg_params_zero_grad(ps);
    tg_tape_reset(); /* also forgets the tangents */
    return rc;
}

static double norm2(const tg_real *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return sqrt(s);
}

double tg_gauss_newton_top_eigenvalue(tg_model_fn f, void *ud,
                                      tg_curv_loss loss, tg_params *ps,
                                      int iters, double rel_tol,
                                      uint64_t seed, tg_real *vec)
{
    int64_t n = tg_params_numel(ps);
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
        if (tg_gauss_newton_product(f, ud, loss, ps, v, g) < 0) {
            lambda = NAN;
            break;
        }
        double l = 0; /* Rayleigh quotient v . G v (|v| = 1) */
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
