/*
 * tests/grad_curvature.c - Gauss-Newton-vector products (nn/curvature.h),
 * double build:
 *   - a model linear in its parameters has G = H: G v against central
 *     differences of the gradient, (grad(theta + eps v) - grad(theta -
 *     eps v)) / (2 eps);
 *   - a nonlinear model: G v against J^T H J v assembled independently
 *     (J v by differences of the outputs, H by hand, J^T by backward);
 *   - G is symmetric (u . G v = v . G u), also through a compiled LSTM;
 *   - the top eigenvalue by power iteration against the dense G;
 *   - G v on an RNN, an LSTM and a GRU against J^T H J v with J built
 *     entirely by differences of the outputs;
 * and exact Hessian-vector products (reverse over forward):
 *   - H v against central differences of the gradient, for a model
 *     through every op with a forward-mode rule, the tanh layer, and
 *     sequence models (RNN, LSTM, GRU, the test cells of tests/cells.h);
 *   - H is symmetric, and power iteration finds the dense H's eigenvalue
 *     of largest magnitude.
 */
#include "harness.h"
#include "nn/curvature.h"
#include "nn/optim.h"
#include "nn/rnn.h"
#include "ops/fuse.h"

#include "cells.h"

typedef struct model {
    tg_params ps;
    tg_tensor *W, *b, *W2; /* W2: the hidden layer of the nonlinear one */
    tg_tensor *x;          /* persistent input */
    const int64_t *targets;
    bool nonlinear;
    tg_rnn *rnn;           /* the sequence model: z = linear(rnn(x)) */
    tg_tensor *E, *P;      /* the op zoo: an embedding table, a matrix */
    bool keep_hidden;      /* sequence model: remember its states */
    tg_tensor *hidden;     /* the states of the last outputs() call */
} model;

/* A model through every op with a forward-mode rule (elementwise codes,
 * views, reductions, joins, softmax, embedding, max), z: [3, 8] */
static tg_tensor *op_zoo(model *m)
{
    static const int64_t ids[3] = {4, 0, 4};
    tg_tensor *a = tg_embedding(m->E, ids, 1, (const int64_t[]){3}); /* [3, 4] */
    tg_tensor *b = tg_add(tg_matmul(m->x, m->P), m->b);     /* [3, 4] */
    tg_tensor *c = tg_mul(tg_sigmoid(b), tg_tanh(a));
    tg_tensor *d = tg_div(tg_exp(tg_mul_scalar(c, 0.5)),
                          tg_add_scalar(tg_pow_scalar(b, 2), 1));
    tg_tensor *f = tg_log(tg_sqrt(tg_add_scalar(tg_mul(d, d), 0.5)));
    tg_tensor *g = tg_pow(tg_add_scalar(tg_sigmoid(a), 0.5), tg_tanh(b));
    tg_tensor *fg[2] = {f, tg_sub(g, tg_neg(tg_softplus(b)))};
    tg_tensor *h = tg_concat(fg, 2, 1); /* [3, 8] */
    tg_tensor *hm = tg_max_dim(tg_transpose(h, 0, 1), 1, false); /* [8] */
    tg_tensor *st[2] = {tg_softmax(h, 1), tg_log_softmax(h, 0)};
    tg_tensor *k = tg_mean_dim(tg_stack(st, 2, 0), 0, false); /* [3, 8] */
    tg_tensor *w = tg_mul(tg_slice(tg_matmul(m->P, tg_reshape(m->W,
                                                              TG_SHAPE(4, 4))),
                                   1, 1, 4, 1),
                          tg_sum_dim(b, 1, true)); /* [3, 3] */
    tg_tensor *ws[2] = {tg_sum_dim(w, 1, true), tg_mean(w)};
    tg_tensor *u = tg_add(ws[0], ws[1]); /* [3, 1] */
    return tg_add(tg_add(tg_mul(k, u), h), hm);
}

static tg_tensor *outputs(void *ud)
{
    model *m = ud;
    if (m->E)
        return op_zoo(m);
    tg_tensor *h = m->x;
    if (m->rnn) {
        tg_rnn_out out;
        if (tg_rnn_forward(m->rnn, m->x, NULL, false, NULL, &out) < 0)
            return NULL;
        h = out.y;
        m->hidden = h;
    } else if (m->nonlinear) {
        h = tg_tanh(tg_linear(h, m->W2, NULL));
    }
    return tg_linear(h, m->W, m->b);
}

/* the loss itself, for differences of its gradient */
static double loss_and_grad(model *m, tg_curv_loss L, tg_real *grad)
{
    tg_tape_reset();
    tg_params_zero_grad(&m->ps);
    tg_tensor *z = outputs(m);
    tg_tensor *l = L.kind == TG_CURV_CROSS_ENTROPY
                       ? tg_cross_entropy(z, m->targets, L.reduction)
                       : tg_mse(z, tg_zeros(z->ndim, z->shape), L.reduction);
    tg_backward(l);
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        memcpy(grad + at, w->grad, (size_t)w->numel * sizeof(tg_real));
        at += w->numel;
    }
    double v = l->data[0];
    tg_params_zero_grad(&m->ps);
    tg_tape_reset();
    return v;
}

static void shift(model *m, const tg_real *v, double e)
{
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++)
            w->data[k] += (tg_real)(e * (double)v[at + k]);
        tg_bump_version(w);
        at += w->numel;
    }
}

static void make(model *m, bool nonlinear, int64_t N, int64_t I, int64_t C)
{
    static const int64_t tgt[8] = {0, 3, 1, 2, 2, 0, 1, 3};
    memset(m, 0, sizeof *m);
    tg_manual_seed(5);
    int64_t H = nonlinear ? 5 : I;
    m->W = tg_params_new(&m->ps, "W", TG_SHAPE(C, H));
    m->b = tg_params_new(&m->ps, "b", TG_SHAPE(C));
    if (nonlinear)
        m->W2 = tg_params_new(&m->ps, "W2", TG_SHAPE(H, I));
    for (int i = 0; i < tg_params_count(&m->ps); i++)
        tg_fill_normal_(tg_params_at(&m->ps, i)->tensor, NULL, 0, 0.7);
    m->x = tg_tensor_new(TG_SHAPE(N, I));
    tg_fill_normal_(m->x, NULL, 0, 1);
    m->targets = tgt;
    m->nonlinear = nonlinear;
}

static void destroy(model *m)
{
    tg_params_free(&m->ps);
    tg_tensor_free(m->x);
    tg_rnn_free(m->rnn);
}

static void randvec(tg_real *v, int64_t n, uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = (tg_real)tg_rng_normal(&r);
}

static double dotv(const tg_real *a, const tg_real *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

START_TEST(linear_model_gauss_newton_is_the_hessian)
{
    const tg_curv_loss losses[3] = {{TG_CURV_CROSS_ENTROPY, TG_MEAN},
                                    {TG_CURV_CROSS_ENTROPY, TG_SUM},
                                    {TG_CURV_MSE, TG_MEAN}};
    for (int li = 0; li < 3; li++) {
        model m;
        make(&m, false, 8, 3, 4);
        int64_t n = tg_params_numel(&m.ps);
        tg_real v[64], gv[64], gp[64], gm[64];
        randvec(v, n, 11);
        ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, losses[li], &m.ps,
                                                 v, gv), 0);
        const double eps = 1e-5;
        shift(&m, v, eps);
        loss_and_grad(&m, losses[li], gp);
        shift(&m, v, -2 * eps);
        loss_and_grad(&m, losses[li], gm);
        shift(&m, v, eps);
        double worst = 0, scale = 1;
        for (int64_t i = 0; i < n; i++) {
            double hv = ((double)gp[i] - (double)gm[i]) / (2 * eps);
            scale = fmax(scale, fabs(hv));
            worst = fmax(worst, fabs(hv - (double)gv[i]));
        }
        printf("G v = H v (linear model, loss %d): max err %.2g\n", li,
               worst / scale);
        ck_assert_msg(worst <= 1e-6 * scale, "loss %d: G v differs from "
                      "differences of the gradient by %g", li, worst);
        destroy(&m);
    }
}
END_TEST

START_TEST(nonlinear_model_against_jt_h_j)
{
    model m;
    make(&m, true, 6, 3, 4);
    tg_curv_loss L = {TG_CURV_MSE, TG_MEAN};
    int64_t n = tg_params_numel(&m.ps);
    tg_real v[128], gv[128];
    randvec(v, n, 12);
    ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, L, &m.ps, v, gv), 0);
    /* J v by differences of z; H = 2 / numel; J^T by a backward sweep */
    const double eps = 1e-6;
    bool was = tg_set_grad_enabled(false);
    shift(&m, v, eps);
    tg_tensor *zp = tg_clone(outputs(&m));
    shift(&m, v, -2 * eps);
    tg_tensor *zm = tg_clone(outputs(&m));
    shift(&m, v, eps);
    tg_set_grad_enabled(was);
    tg_tensor *z = outputs(&m);
    tg_tensor *u = tg_empty(z->ndim, z->shape);
    for (int64_t i = 0; i < z->numel; i++)
        u->data[i] = (tg_real)(2.0 / (double)z->numel *
                               ((double)zp->data[i] - (double)zm->data[i]) /
                               (2 * eps));
    tg_params_zero_grad(&m.ps);
    ck_assert_int_eq(tg_backward_seed(z, u), 0);
    int64_t at = 0;
    double worst = 0, scale = 1;
    for (int i = 0; i < tg_params_count(&m.ps); i++) {
        tg_tensor *w = tg_params_at(&m.ps, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++) {
            scale = fmax(scale, fabs((double)w->grad[k]));
            worst = fmax(worst, fabs((double)w->grad[k] - (double)gv[at + k]));
        }
        at += w->numel;
    }
    printf("G v = J^T H J v (tanh layer, mse): max err %.2g\n", worst / scale);
    ck_assert_msg(worst <= 1e-6 * scale, "G v differs from J^T H J v by %g",
                  worst);
    destroy(&m);
}
END_TEST

START_TEST(symmetric_also_through_a_compiled_lstm)
{
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        model m;
        memset(&m, 0, sizeof m);
        static const int64_t tgt[8] = {0, 3, 1, 2, 2, 0, 1, 3};
        tg_manual_seed(8);
        m.rnn = tg_rnn_new(&tg_lstm_cell, 3, 5, 1, 0.0, NULL);
        tg_params_add_from(&m.ps, "rnn.", &m.rnn->params);
        m.W = tg_params_new(&m.ps, "W", TG_SHAPE(4, 5));
        m.b = tg_params_new(&m.ps, "b", TG_SHAPE(4));
        tg_fill_normal_(m.W, NULL, 0, 0.5);
        m.x = tg_tensor_new(TG_SHAPE(4, 2, 3)); /* T = 4, B = 2: 8 rows */
        tg_fill_normal_(m.x, NULL, 0, 1);
        m.targets = tgt;
        int64_t n = tg_params_numel(&m.ps);
        tg_real *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
        tg_real *Ga = malloc((size_t)n * sizeof *a), *Gb = malloc((size_t)n * sizeof *b);
        randvec(a, n, 13);
        randvec(b, n, 14);
        tg_curv_loss L = {TG_CURV_CROSS_ENTROPY, TG_MEAN};
        ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, L, &m.ps, a, Ga), 0);
        ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, L, &m.ps, b, Gb), 0);
        double bGa = dotv(b, Ga, n), aGb = dotv(a, Gb, n), aGa = dotv(a, Ga, n);
        printf("LSTM%s: b.Ga = %.12g, a.Gb = %.12g, a.Ga = %.6g\n",
               fuse ? " (compiled)" : "", bGa, aGb, aGa);
        ck_assert_msg(fabs(bGa - aGb) <= 1e-9 * fmax(1.0, fabs(aGb)),
                      "G is not symmetric: %.15g vs %.15g", bGa, aGb);
        ck_assert(aGa >= 0); /* positive semi-definite */
        free(a);
        free(b);
        free(Ga);
        free(Gb);
        destroy(&m);
    }
}
END_TEST

START_TEST(top_eigenvalue_by_power_iteration)
{
    model m;
    make(&m, true, 8, 3, 4);
    tg_curv_loss L = {TG_CURV_CROSS_ENTROPY, TG_MEAN};
    int64_t n = tg_params_numel(&m.ps);
    ck_assert_int_le(n, 64);
    /* the dense G, column by column */
    static tg_real G[64][64];
    tg_real e[64], col[64];
    for (int64_t j = 0; j < n; j++) {
        memset(e, 0, sizeof e);
        e[j] = 1;
        ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, L, &m.ps, e, col), 0);
        for (int64_t i = 0; i < n; i++)
            G[i][j] = col[i];
    }
    /* its top eigenvalue, by many dense power iterations */
    double x[64], y[64], lam = 0;
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0 / sqrt((double)n) * (1 + 0.01 * (double)i);
    for (int it = 0; it < 5000; it++) {
        double nrm = 0;
        for (int64_t i = 0; i < n; i++) {
            y[i] = 0;
            for (int64_t j = 0; j < n; j++)
                y[i] += (double)G[i][j] * x[j];
            nrm += y[i] * y[i];
        }
        nrm = sqrt(nrm);
        lam = 0;
        for (int64_t i = 0; i < n; i++)
            lam += x[i] * y[i];
        for (int64_t i = 0; i < n; i++)
            x[i] = y[i] / nrm;
    }
    double got = tg_gauss_newton_top_eigenvalue(outputs, &m, L, &m.ps, 500,
                                                1e-12, 3, NULL);
    printf("top eigenvalue of G: %.10g (dense: %.10g)\n", got, lam);
    ck_assert_msg(fabs(got - lam) <= 1e-6 * lam, "power iteration gave %.12g, "
                  "the dense matrix %.12g", got, lam);
    destroy(&m);
}
END_TEST


/* ---- Gauss-Newton on sequence models, J entirely by differences ------------ */

/* z = linear(rnn(x)) for cell type ct; T = 4, B = 2, I = 3, H = 4, C = 4 */
static void make_seq(model *m, const tg_cell_type *ct, uint64_t seed)
{
    static const int64_t tgt[8] = {0, 3, 1, 2, 2, 0, 1, 3};
    memset(m, 0, sizeof *m);
    tg_manual_seed(seed);
    m->rnn = tg_rnn_new(ct, 3, 4, 1, 0.0, NULL);
    ck_assert_ptr_nonnull(m->rnn);
    tg_params_add_from(&m->ps, "rnn.", &m->rnn->params);
    m->W = tg_params_new(&m->ps, "W", TG_SHAPE(4, 4));
    m->b = tg_params_new(&m->ps, "b", TG_SHAPE(4));
    tg_fill_normal_(m->W, NULL, 0, 0.6);
    tg_fill_normal_(m->b, NULL, 0, 0.3);
    m->x = tg_tensor_new(TG_SHAPE(4, 2, 3));
    tg_fill_normal_(m->x, NULL, 0, 1);
    m->targets = tgt;
}

/* the outputs' numbers at the current parameters (nothing recorded) */
static tg_tensor *z_now(model *m)
{
    bool was = tg_set_grad_enabled(false);
    tg_tensor *z = tg_clone(outputs(m));
    tg_set_grad_enabled(was);
    return z;
}

START_TEST(gauss_newton_on_sequence_models_by_differences)
{
    const tg_cell_type *cells[] = {&tg_rnn_tanh_cell, &tg_lstm_cell,
                                   &tg_gru_cell};
    for (int ci = 0; ci < 3; ci++) {
        model m;
        make_seq(&m, cells[ci], 21 + (uint64_t)ci);
        tg_curv_loss L = {TG_CURV_CROSS_ENTROPY, TG_MEAN};
        int64_t n = tg_params_numel(&m.ps);
        tg_real *v = malloc((size_t)n * sizeof *v);
        tg_real *gv = malloc((size_t)n * sizeof *gv);
        randvec(v, n, 30 + (uint64_t)ci);
        ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, L, &m.ps, v, gv), 0);
        /* the whole Jacobian dz/dtheta by central differences, column j
         * from theta +- eps e_j */
        const double eps = 1e-5;
        tg_tensor *z0 = tg_tensor_new(TG_SHAPE(4, 2, 4)); /* (outlives resets) */
        tg_copy_(z0, z_now(&m));
        int64_t nz = z0->numel, C = 4, N = nz / C;
        double *J = malloc((size_t)(nz * n) * sizeof *J);
        tg_real *e = calloc((size_t)n, sizeof *e);
        for (int64_t j = 0; j < n; j++) {
            e[j] = 1;
            shift(&m, e, eps);
            tg_tensor *zp = z_now(&m);
            shift(&m, e, -2 * eps);
            tg_tensor *zm = z_now(&m);
            shift(&m, e, eps);
            e[j] = 0;
            for (int64_t i = 0; i < nz; i++)
                J[i * n + j] = ((double)zp->data[i] - (double)zm->data[i]) /
                               (2 * eps);
            tg_tape_reset();
        }
        /* J^T H J v with H of the mean cross-entropy written out */
        double *Jv = calloc((size_t)nz, sizeof *Jv), *u = calloc((size_t)nz, sizeof *u);
        for (int64_t i = 0; i < nz; i++)
            for (int64_t j = 0; j < n; j++)
                Jv[i] += J[i * n + j] * (double)v[j];
        for (int64_t r = 0; r < N; r++) {
            double mx = -INFINITY, sum = 0, pJv = 0, p[4];
            for (int64_t c = 0; c < C; c++)
                mx = fmax(mx, (double)z0->data[r * C + c]);
            for (int64_t c = 0; c < C; c++)
                sum += p[c] = exp((double)z0->data[r * C + c] - mx);
            for (int64_t c = 0; c < C; c++)
                pJv += (p[c] /= sum) * Jv[r * C + c];
            for (int64_t c = 0; c < C; c++)
                u[r * C + c] = p[c] * (Jv[r * C + c] - pJv) / (double)N;
        }
        double worst = 0, scale = 1e-3;
        for (int64_t j = 0; j < n; j++) {
            double want = 0;
            for (int64_t i = 0; i < nz; i++)
                want += J[i * n + j] * u[i];
            scale = fmax(scale, fabs(want));
            worst = fmax(worst, fabs(want - (double)gv[j]));
        }
        printf("G v by differences, %s (%lld parameters): max err %.2g\n",
               cells[ci]->name, (long long)n, worst / scale);
        ck_assert_msg(worst <= 1e-6 * scale, "%s: G v differs by %g",
                      cells[ci]->name, worst);
        tg_tensor_free(z0);
        free(J);
        free(e);
        free(Jv);
        free(u);
        free(v);
        free(gv);
        destroy(&m);
    }
}
END_TEST

/* ---- the exact Hessian --------------------------------------------------- */

static tg_tensor *loss_ce(tg_tensor *z, void *ud)
{
    const model *m = ud;
    return tg_cross_entropy(z, m->targets, TG_MEAN);
}

/* cross-entropy and a little squared error, so both losses' rules count */
static tg_tensor *loss_mixed(tg_tensor *z, void *ud)
{
    const model *m = ud;
    tg_tensor *t = tg_full(z->ndim, z->shape, 0.25);
    return tg_add(tg_cross_entropy(z, m->targets, TG_SUM),
                  tg_mul_scalar(tg_mse(z, t, TG_MEAN), 0.3));
}

/* the loss's gradient, flat (the loss of the model: lf) */
static void grad_of(model *m, tg_loss_fn lf, tg_real *grad)
{
    tg_tape_reset();
    tg_params_zero_grad(&m->ps);
    ck_assert_int_eq(tg_backward(lf(outputs(m), m)), 0);
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++)
            grad[at + k] = w->grad ? w->grad[k] : 0;
        at += w->numel;
    }
    tg_params_zero_grad(&m->ps);
    tg_tape_reset();
}

/* H v against (grad(theta + eps v) - grad(theta - eps v)) / (2 eps), and
 * u . H v = v . H u */
static void check_hessian(model *m, tg_loss_fn lf, const char *what)
{
    int64_t n = tg_params_numel(&m->ps);
    size_t bytes = (size_t)n * sizeof(tg_real);
    tg_real *v = malloc(bytes), *u = malloc(bytes), *hv = malloc(bytes);
    tg_real *hu = malloc(bytes), *gp = malloc(bytes), *gm = malloc(bytes);
    randvec(v, n, 41);
    randvec(u, n, 42);
    ck_assert_int_eq(tg_hessian_vector_product(outputs, lf, m, &m->ps, v, hv), 0);
    ck_assert_int_eq(tg_hessian_vector_product(outputs, lf, m, &m->ps, u, hu), 0);
    const double eps = 1e-5;
    shift(m, v, eps);
    grad_of(m, lf, gp);
    shift(m, v, -2 * eps);
    grad_of(m, lf, gm);
    shift(m, v, eps);
    double worst = 0, scale = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        double want = ((double)gp[i] - (double)gm[i]) / (2 * eps);
        scale = fmax(scale, fabs(want));
        worst = fmax(worst, fabs(want - (double)hv[i]));
    }
    double uHv = dotv(u, hv, n), vHu = dotv(v, hu, n);
    printf("H v by differences of the gradient, %s (%lld parameters): max "
           "err %.2g; u.Hv - v.Hu = %.2g\n", what, (long long)n,
           worst / scale, uHv - vHu);
    ck_assert_msg(worst <= 1e-6 * scale, "%s: H v differs from differences "
                  "of the gradient by %g (scale %g)", what, worst, scale);
    ck_assert_msg(fabs(uHv - vHu) <= 1e-9 * fmax(1.0, fabs(uHv)),
                  "%s: H is not symmetric: %.15g vs %.15g", what, uHv, vHu);
    free(v);
    free(u);
    free(hv);
    free(hu);
    free(gp);
    free(gm);
}

START_TEST(hessian_through_every_op)
{
    model m;
    memset(&m, 0, sizeof m);
    static const int64_t tgt[3] = {1, 7, 4};
    tg_manual_seed(9);
    m.E = tg_params_new(&m.ps, "E", TG_SHAPE(5, 4));
    m.P = tg_params_new(&m.ps, "P", TG_SHAPE(3, 4));
    m.b = tg_params_new(&m.ps, "b", TG_SHAPE(4));
    m.W = tg_params_new(&m.ps, "W", TG_SHAPE(16));
    for (int i = 0; i < tg_params_count(&m.ps); i++)
        tg_fill_normal_(tg_params_at(&m.ps, i)->tensor, NULL, 0, 0.5);
    m.x = tg_tensor_new(TG_SHAPE(3, 3));
    tg_fill_normal_(m.x, NULL, 0, 1);
    m.targets = tgt;
    check_hessian(&m, loss_ce, "op zoo, cross-entropy");
    check_hessian(&m, loss_mixed, "op zoo, cross-entropy + mse");
    tg_tensor_free(m.x);
    tg_params_free(&m.ps);
}
END_TEST

START_TEST(hessian_of_small_models)
{
    model m;
    make(&m, false, 8, 3, 4);
    check_hessian(&m, loss_ce, "linear model");
    destroy(&m);
    make(&m, true, 8, 3, 4);
    check_hessian(&m, loss_ce, "tanh layer");
    check_hessian(&m, loss_mixed, "tanh layer, mixed loss");
    destroy(&m);
}
END_TEST

START_TEST(hessian_of_sequence_models)
{
    const tg_cell_type *cells[] = {&tg_rnn_tanh_cell, &tg_lstm_cell,
                                   &tg_gru_cell, &zoo, &sliced};
    for (int ci = 0; ci < 5; ci++) {
        model m;
        make_seq(&m, cells[ci], 51 + (uint64_t)ci);
        check_hessian(&m, loss_ce, cells[ci]->name);
        destroy(&m);
    }
    /* the fused path is switched off inside, and restored */
    bool was = tg_set_fusion(true);
    model m;
    make_seq(&m, &tg_lstm_cell, 60);
    check_hessian(&m, loss_ce, "lstm, fusion on outside");
    ck_assert(tg_fusion_enabled());
    destroy(&m);
    tg_set_fusion(was);
}
END_TEST

START_TEST(hessian_top_eigenvalue)
{
    model m;
    make(&m, true, 8, 3, 4);
    int64_t n = tg_params_numel(&m.ps);
    ck_assert_int_le(n, 64);
    static double H[64][64];
    tg_real e[64], col[64];
    for (int64_t j = 0; j < n; j++) {
        memset(e, 0, sizeof e);
        e[j] = 1;
        ck_assert_int_eq(tg_hessian_vector_product(outputs, loss_ce, &m, &m.ps,
                                                   e, col), 0);
        for (int64_t i = 0; i < n; i++)
            H[i][j] = col[i];
    }
    double asym = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            asym = fmax(asym, fabs(H[i][j] - H[j][i]));
    ck_assert_msg(asym < 1e-12, "dense H not symmetric: %g", asym);
    /* the dense eigenvalue of largest magnitude: power iteration on H^2
     * finds |lambda|, the Rayleigh quotient of H its sign */
    double x[64], y[64], lam = 0;
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0 / sqrt((double)n) * (1 + 0.01 * (double)i);
    for (int it = 0; it < 20000; it++) {
        double nrm = 0;
        for (int64_t i = 0; i < n; i++) {
            y[i] = 0;
            for (int64_t j = 0; j < n; j++)
                y[i] += H[i][j] * x[j];
            nrm += y[i] * y[i];
        }
        nrm = sqrt(nrm);
        lam = 0;
        for (int64_t i = 0; i < n; i++)
            lam += x[i] * y[i];
        for (int64_t i = 0; i < n; i++)
            x[i] = y[i] / nrm;
    }
    double got = tg_hessian_top_eigenvalue(outputs, loss_ce, &m, &m.ps, 2000,
                                           1e-13, 3, NULL);
    printf("top eigenvalue of H: %.10g (dense: %.10g)\n", got, lam);
    ck_assert_msg(fabs(got - lam) <= 1e-6 * fabs(lam), "power iteration gave "
                  "%.12g, the dense matrix %.12g", got, lam);
    destroy(&m);
}
END_TEST

/* ---- Hessian-free ------------------------------------------------------- */

static tg_tensor *ce_of(tg_tensor *z, void *ud)
{
    const model *m = ud;
    return tg_cross_entropy(z, m->targets, TG_MEAN);
}

static double grad_norm(model *m)
{
    tg_tape_reset();
    tg_params_zero_grad(&m->ps);
    tg_backward(ce_of(outputs(m), m));
    double s = 0;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++)
            s += (double)w->grad[k] * (double)w->grad[k];
    }
    tg_params_zero_grad(&m->ps);
    tg_tape_reset();
    return sqrt(s);
}

static tg_tensor *last_hidden(void *ud)
{
    return ((model *)ud)->hidden;
}

/* softmax regression, convex: every point appears twice under two labels,
 * so the best the model can do is p = 1/2 for both - the loss tends to
 * ln 2, which HF must approach (and the gradient vanish) */
/* The routines (and the closure step of every optimizer) rewind to
 * where the caller was, not reset: a temporary
 * and a recorded loss made before them are still there afterwards, and
 * the caller's backward gives the caller's gradient. */
START_TEST(curvature_keeps_the_callers_tape)
{
    model m;
    make(&m, false, 8, 3, 4);
    int64_t n = tg_params_numel(&m.ps);
    tg_real v[64], out[64];
    randvec(v, n, 5);
    const tg_curv_loss ce = {TG_CURV_CROSS_ENTROPY, TG_MEAN};
    tg_tensor *kept = tg_full(TG_SHAPE(5), 3.0);
    tg_tensor *mine = tg_sum(tg_mul(m.W, m.W)); /* the caller's own loss */
    int64_t entries = tg_tape_size();
    ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, ce, &m.ps, v, out),
                     0);
    ck_assert_int_eq(tg_tape_size(), entries);
    ck_assert_int_eq(tg_hessian_vector_product(outputs, ce_of, &m, &m.ps, v,
                                               out), 0);
    ck_assert_int_eq(tg_tape_size(), entries);
    /* the caller's loss, whole: d sum(W*W) / dW = 2 W */
    ck_assert_int_eq(tg_backward(mine), 0);
    for (int64_t i = 0; i < m.W->numel; i++)
        tgt_close(m.W->grad[i], 2 * m.W->data[i], 0);
    tg_params_zero_grad(&m.ps);
    tg_hf_config cfg = {.curv = ce, .max_cg = 5};
    tg_optim *o = tg_hf_optim_new(&m.ps, &cfg);
    tg_closure c = {.outputs = outputs, .loss = ce_of, .ud = &m};
    ck_assert(isfinite(tg_optim_step_closure(o, &c)));
    ck_assert_int_eq(tg_tape_size(), entries);
    tg_optim *sgd = tg_sgd_new(&m.ps, 0.1, 0, 0, 0, false);
    ck_assert(isfinite(tg_optim_step_closure(sgd, &c))); /* the plain one */
    ck_assert_int_eq(tg_tape_size(), entries);
    tg_optim_free(sgd);
    ck_assert_double_eq(tg_item(tg_sum(kept)), 15.0);
    tg_optim_free(o);
    destroy(&m);
}
END_TEST

START_TEST(hessian_free_converges_on_a_convex_problem)
{
    model m;
    make(&m, false, 8, 3, 4);
    /* rows 4-7 repeat rows 0-3, each under another label */
    memcpy(m.x->data + 4 * 3, m.x->data, 4 * 3 * sizeof(tg_real));
    static const int64_t mixed[8] = {0, 3, 1, 2, 2, 0, 3, 1};
    m.targets = mixed;
    tg_hf_config cfg = {.curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN}, .max_cg = 50};
    tg_optim *o = tg_hf_optim_new(&m.ps, &cfg);
    tg_closure c = {.outputs = outputs, .loss = ce_of, .ud = &m};
    double g0 = grad_norm(&m), last = INFINITY;
    for (int s = 0; s < 40; s++) {
        double L = tg_optim_step_closure(o, &c);
        ck_assert(isfinite(L));
        if (getenv("HF_DEBUG"))
            printf("step %d loss %.12g lambda %.3g rho %.3f cg %d/%d alpha "
                   "%.3g\n", s, L, o->hf->lambda, o->hf->rho,
                   o->hf->cg_taken, o->hf->cg_iters, o->hf->alpha);
        ck_assert_msg(L <= last, "step %d: the loss rose", s);
        last = L;
    }
    double g1 = grad_norm(&m);
    printf("HF, convex: loss %.6g, gradient norm %.2g -> %.2g in 40 steps, "
           "lambda %.3g\n", last, g0, g1, o->hf->lambda);
    ck_assert_msg(g1 < 1e-6 * g0, "HF did not converge: |g| %g -> %g", g0, g1);
    ck_assert_msg(fabs(last - log(2.0)) < 1e-6, "loss %.12g, not ln 2", last);
    /* the plain step refuses, by name */
    tgt_capture_errors();
    tg_optim_step(o);
    tgt_expect_error("tg_optim_step_closure");
    tg_set_error_handler(NULL, NULL);
    tg_optim_free(o);
    destroy(&m);
}
END_TEST

/* a tanh layer: HF brings the loss down, and never takes a step up */
START_TEST(hessian_free_on_a_nonlinear_model)
{
    model m;
    make(&m, true, 8, 3, 4);
    tg_hf_config cfg = {.curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN}, .max_cg = 20};
    tg_optim *o = tg_hf_optim_new(&m.ps, &cfg);
    tg_closure c = {.outputs = outputs, .loss = ce_of, .ud = &m};
    double first = NAN, last = INFINITY;
    for (int s = 0; s < 20; s++) {
        double L = tg_optim_step_closure(o, &c);
        if (s == 0)
            first = L;
        ck_assert_msg(L <= last + 1e-12, "step %d: the loss rose", s);
        last = L;
    }
    printf("HF, tanh layer: loss %.4g -> %.4g in 20 steps (lambda %.3g; %lld "
           "gradients, %lld products, %lld losses)\n", first, last,
           o->hf->lambda, (long long)o->hf->gradients,
           (long long)o->hf->products, (long long)o->hf->losses);
    ck_assert(last < 0.5 * first);
    tg_optim_free(o);
    destroy(&m);
}
END_TEST

/* structural damping: on an RNN, the product HF uses is
 * G v + mu lambda J_h^T J_h v / rows + lambda v, with J_h^T J_h v assembled
 * here from a forward sweep and a reverse sweep seeded at the states; and
 * HF with it trains the RNN */
START_TEST(hessian_free_structural_damping)
{
    model m;
    make_seq(&m, &tg_rnn_tanh_cell, 70);
    m.keep_hidden = true;
    int64_t n = tg_params_numel(&m.ps);
    tg_real *v = malloc((size_t)n * sizeof *v), *Sv = calloc((size_t)n, sizeof *Sv);
    randvec(v, n, 71);
    /* J_h^T J_h v */
    tg_tape_reset();
    tg_tensor *z = outputs(&m);
    ck_assert_ptr_nonnull(z);
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m.ps); i++) {
        tg_tensor *w = tg_params_at(&m.ps, i)->tensor;
        tg_set_tangent(w, tg_wrap_buffer(w->ndim, w->shape, v + at));
        at += w->numel;
    }
    ck_assert_int_eq(tg_jvp(), 0);
    tg_tensor *h = m.hidden;
    tg_tensor *seed = tg_empty(h->ndim, h->shape);
    memcpy(seed->data, h->tangent, (size_t)h->numel * sizeof(tg_real));
    tg_params_zero_grad(&m.ps);
    ck_assert_int_eq(tg_backward_seed(h, seed), 0);
    at = 0;
    for (int i = 0; i < tg_params_count(&m.ps); i++) {
        tg_tensor *w = tg_params_at(&m.ps, i)->tensor;
        if (w->grad)
            memcpy(Sv + at, w->grad, (size_t)w->numel * sizeof(tg_real));
        at += w->numel;
    }
    tg_params_zero_grad(&m.ps);
    tg_tape_reset();
    tg_curv_loss L = {TG_CURV_CROSS_ENTROPY, TG_MEAN};
    tg_real *Gv = malloc((size_t)n * sizeof *Gv);
    ck_assert_int_eq(tg_gauss_newton_product(outputs, &m, L, &m.ps, v, Gv), 0);
    /* lambda 0.5, mu 0.3 */
    tg_hf_config cfg = {.curv = L, .lambda0 = 0.5, .mu = 0.3, .max_cg = 30};
    tg_hf *hf = tg_hf_new(&m.ps, &cfg);
    tg_closure c = {.outputs = outputs, .loss = ce_of,
                    .hidden = last_hidden, .ud = &m};
    double rows = (double)(h->numel / h->shape[h->ndim - 1]);
    tg_real *Av = malloc((size_t)n * sizeof *Av);
    ck_assert_int_eq(tg_hf_product(hf, &c, v, Av), 0);
    double worst = 0, scale = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        double want = (double)Gv[i] + 0.3 * 0.5 * (double)Sv[i] / rows +
                      0.5 * (double)v[i];
        scale = fmax(scale, fabs(want));
        worst = fmax(worst, fabs(want - (double)Av[i]));
    }
    printf("HF product with structural damping: max err %.2g\n", worst / scale);
    ck_assert_msg(worst <= 1e-10 * scale, "structural damping product off by "
                  "%g", worst);
    /* and it trains: 15 steps, the loss falls, never up */
    double first = NAN, last = INFINITY;
    for (int s = 0; s < 15; s++) {
        double Ls = tg_hf_step(hf, &c);
        ck_assert(isfinite(Ls));
        if (s == 0)
            first = Ls;
        ck_assert_msg(Ls <= last + 1e-12, "step %d: the loss rose", s);
        last = Ls;
    }
    printf("HF with structural damping, RNN: loss %.4g -> %.4g in 15 steps\n",
           first, last);
    ck_assert(last < 0.7 * first);
    tg_hf_free(hf);
    free(v);
    free(Sv);
    free(Gv);
    free(Av);
    destroy(&m);
}
END_TEST

/* A curvature minibatch (tg_closure.curv_ud): the products are those of
 * the batch curv_ud holds (bit for bit what a closure of that batch alone
 * gives), not of the gradient's batch; the gradient and the loss are the
 * whole batch's, and steps still lower it. */
START_TEST(hessian_free_curvature_minibatch)
{
    model m;
    make(&m, true, 8, 3, 4);
    model head = m; /* the same parameters, the first 4 rows */
    head.x = tg_tensor_new(TG_SHAPE(4, 3));
    memcpy(head.x->data, m.x->data, 4 * 3 * sizeof(tg_real));
    int64_t n = tg_params_numel(&m.ps);
    tg_real *v = malloc((size_t)n * sizeof *v);
    tg_real *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    tg_real *full = malloc((size_t)n * sizeof *full);
    randvec(v, n, 12);
    tg_hf_config cfg = {.curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN}, .max_cg = 20};
    tg_hf *hf = tg_hf_new(&m.ps, &cfg);
    tg_closure mixed = {.outputs = outputs, .loss = ce_of, .ud = &m,
                        .curv_ud = &head};
    tg_closure only = {.outputs = outputs, .loss = ce_of, .ud = &head};
    tg_closure whole = {.outputs = outputs, .loss = ce_of, .ud = &m};
    ck_assert_int_eq(tg_hf_product(hf, &mixed, v, a), 0);
    ck_assert_int_eq(tg_hf_product(hf, &only, v, b), 0);
    ck_assert_int_eq(tg_hf_product(hf, &whole, v, full), 0);
    double apart = 0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert(a[i] == b[i]);
        apart = fmax(apart, fabs((double)a[i] - (double)full[i]));
    }
    ck_assert(apart > 1e-6); /* the two batches' curvatures differ */
    double first = NAN, last = INFINITY;
    for (int s = 0; s < 10; s++) {
        double L = tg_hf_step(hf, &mixed);
        ck_assert(isfinite(L));
        ck_assert_msg(L <= last + 1e-12, "step %d: the loss rose", s);
        first = s ? first : L;
        last = L;
    }
    ck_assert(last < first);
    tg_hf_free(hf);
    free(v);
    free(a);
    free(b);
    free(full);
    tg_tensor_free(head.x);
    destroy(&m);
}
END_TEST

/* HF's state saved and loaded: two steps in a row equal a step, a save,
 * a load into a fresh optimizer and a step, to the bit */
START_TEST(hessian_free_resumes_exactly)
{
    tg_real after[2][200];
    int64_t n = 0;
    for (int way = 0; way < 2; way++) {
        model m;
        make_seq(&m, &tg_gru_cell, 80);
        n = tg_params_numel(&m.ps);
        ck_assert_int_le(n, 200);
        tg_hf_config cfg = {.curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN},
                            .max_cg = 10};
        tg_closure c = {.outputs = outputs, .loss = ce_of, .ud = &m};
        tg_optim *o = tg_hf_optim_new(&m.ps, &cfg);
        ck_assert(isfinite(tg_optim_step_closure(o, &c)));
        if (way == 1) {
            tg_st_writer *w = tg_st_writer_new();
            tg_optim_save(o, w, "opt.");
            char err[256];
            ck_assert_int_eq(tg_st_save(w, "/tmp/tg_hf_state.safetensors",
                                        err, sizeof err), 0);
            tg_st_writer_free(w);
            tg_optim_free(o);
            o = tg_hf_optim_new(&m.ps, &cfg);
            tg_st_file *f = tg_st_load("/tmp/tg_hf_state.safetensors", err,
                                       sizeof err);
            ck_assert_msg(f, "%s", err);
            ck_assert_int_eq(tg_optim_load(o, f, "opt.", err, sizeof err), 0);
            tg_st_free(f);
            remove("/tmp/tg_hf_state.safetensors");
        }
        ck_assert(isfinite(tg_optim_step_closure(o, &c)));
        ck_assert_int_eq(o->hf->steps, 2);
        int64_t at = 0;
        for (int i = 0; i < tg_params_count(&m.ps); i++) {
            tg_tensor *w = tg_params_at(&m.ps, i)->tensor;
            memcpy(after[way] + at, w->data, (size_t)w->numel * sizeof(tg_real));
            at += w->numel;
        }
        tg_optim_free(o);
        destroy(&m);
    }
    ck_assert_msg(memcmp(after[0], after[1], (size_t)n * sizeof(tg_real)) == 0,
                  "a resumed HF run differs");
}
END_TEST

/* ---- Hessian-free's failures: one message that says what happened -------- */

/* the parameters, flat, to see that a failed step left them alone */
static void params_of(model *m, tg_real *out)
{
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m->ps); i++) {
        tg_tensor *w = tg_params_at(&m->ps, i)->tensor;
        memcpy(out + at, w->data, (size_t)w->numel * sizeof(tg_real));
        at += w->numel;
    }
}

/* one HF step that must fail with exactly one error holding every
 * fragment, and leave the parameters as they were */
#define expect_hf_failure(m, cfg, c, ...)                                  \
    do {                                                                   \
        tg_real before_[64], after_[64];                                   \
        ck_assert_int_le(tg_params_numel(&(m)->ps), 64);                   \
        params_of(m, before_);                                             \
        tg_hf *h_ = tg_hf_new(&(m)->ps, cfg);                              \
        tgt_capture_errors();                                              \
        ck_assert(isnan(tg_hf_step(h_, c)));                               \
        tgt_expect_error(__VA_ARGS__);                                     \
        params_of(m, after_);                                              \
        ck_assert(!memcmp(before_, after_, (size_t)tg_params_numel(        \
                                               &(m)->ps) * sizeof(tg_real))); \
        tg_set_error_handler(NULL, NULL);                                  \
        tg_hf_free(h_);                                                    \
    } while (0)

/* structural damping asked for (mu > 0) with a hidden() that returns
 * NULL: the step used to give NaN with no message */
START_TEST(hessian_free_hidden_returning_null)
{
    model m;
    make(&m, true, 8, 3, 4); /* no sequence model: m.hidden stays NULL */
    tg_hf_config cfg = {.curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN},
                        .max_cg = 5, .mu = 0.1};
    tg_closure c = {.outputs = outputs, .loss = ce_of,
                    .hidden = last_hidden, .ud = &m};
    expect_hf_failure(&m, &cfg, &c, "hf_product", "closure.hidden returned "
                      "NULL", "mu = 0");
    /* mu = 0: hidden() is not needed, and not called */
    cfg.mu = 0;
    tg_hf *h = tg_hf_new(&m.ps, &cfg);
    ck_assert(isfinite(tg_hf_step(h, &c)));
    tg_hf_free(h);
    destroy(&m);
}
END_TEST

/* a loss whose backward fails (it changes a weight its ops read): the
 * backward's error alone, not followed by "the loss is nan" */
static tg_tensor *ce_then_change_W(tg_tensor *z, void *ud)
{
    model *m = ud;
    tg_tensor *l = tg_cross_entropy(z, m->targets, TG_MEAN);
    tg_bump_version(m->W);
    return l;
}

START_TEST(hessian_free_backward_error_is_reported_alone)
{
    model m;
    make(&m, true, 8, 3, 4);
    tg_hf_config cfg = {.curv = {TG_CURV_CROSS_ENTROPY, TG_MEAN}, .max_cg = 5};
    tg_closure c = {.outputs = outputs, .loss = ce_then_change_W, .ud = &m};
    expect_hf_failure(&m, &cfg, &c, "backward", "changed in place");
    destroy(&m);
}
END_TEST

/* The curvature's loss against the closure's: cross-entropy's curvature
 * (the default) for a squared error used to go unnoticed, and so did the
 * other way round and a squared error summed where a mean was said. */
static tg_tensor *mse_mean_of(tg_tensor *z, void *ud)
{
    (void)ud;
    return tg_mse(z, tg_full(z->ndim, z->shape, 0.25), TG_MEAN);
}

static tg_tensor *mse_sum_of(tg_tensor *z, void *ud)
{
    (void)ud;
    return tg_mse(z, tg_full(z->ndim, z->shape, 0.25), TG_SUM);
}

/* a squared error plus a penalty on the parameters: still a squared error
 * of z for the curvature, and not to be refused */
static tg_tensor *mse_penalised_of(tg_tensor *z, void *ud)
{
    model *m = ud;
    tg_tensor *pen = tg_mul_scalar(tg_sum(tg_mul(m->W, m->W)), 0.01);
    return tg_add(mse_mean_of(z, ud), pen);
}

START_TEST(hessian_free_checks_the_loss_kind)
{
    model m;
    make(&m, true, 8, 3, 4);
    tg_hf_config ce = {.max_cg = 5}; /* curv: cross-entropy, mean */
    tg_closure mse_c = {.outputs = outputs, .loss = mse_mean_of, .ud = &m};
    expect_hf_failure(&m, &ce, &mse_c, "hf_step", "TG_CURV_CROSS_ENTROPY",
                      "not cross-entropy", "set curv.kind = TG_CURV_MSE");
    tg_hf_config mse = {.curv = {TG_CURV_MSE, TG_MEAN}, .max_cg = 5};
    tg_closure ce_c = {.outputs = outputs, .loss = ce_of, .ud = &m};
    expect_hf_failure(&m, &mse, &ce_c, "hf_step", "TG_CURV_MSE",
                      "looks like cross-entropy",
                      "Set curv.kind = TG_CURV_CROSS_ENTROPY");
    tg_closure sum_c = {.outputs = outputs, .loss = mse_sum_of, .ud = &m};
    expect_hf_failure(&m, &mse, &sum_c, "hf_step", "summed", "TG_MEAN",
                      "set curv.reduction = TG_SUM");
    /* the right ones step */
    tg_closure pen_c = {.outputs = outputs, .loss = mse_penalised_of, .ud = &m};
    const tg_closure *ok[] = {&mse_c, &pen_c, &sum_c};
    tg_hf_config cfgs[] = {mse, mse, {.curv = {TG_CURV_MSE, TG_SUM},
                                      .max_cg = 5}};
    tgt_capture_errors();
    for (int i = 0; i < 3; i++) {
        tg_hf *h = tg_hf_new(&m.ps, &cfgs[i]);
        ck_assert_msg(isfinite(tg_hf_step(h, ok[i])), "case %d: %s", i,
                      tg_last_error());
        tg_hf_free(h);
    }
    tg_hf *h = tg_hf_new(&m.ps, &ce);
    ck_assert(isfinite(tg_hf_step(h, &ce_c)));
    tg_hf_free(h);
    ck_assert_int_eq(tgt_errors, 0);
    destroy(&m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("curvature");
    TCase *tc = tcase_create("curvature");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, linear_model_gauss_newton_is_the_hessian);
    tcase_add_test(tc, nonlinear_model_against_jt_h_j);
    tcase_add_test(tc, symmetric_also_through_a_compiled_lstm);
    tcase_add_test(tc, top_eigenvalue_by_power_iteration);
    tcase_add_test(tc, gauss_newton_on_sequence_models_by_differences);
    tcase_add_test(tc, hessian_through_every_op);
    tcase_add_test(tc, hessian_of_small_models);
    tcase_add_test(tc, hessian_of_sequence_models);
    tcase_add_test(tc, hessian_top_eigenvalue);
    tcase_add_test(tc, curvature_keeps_the_callers_tape);
    tcase_add_test(tc, hessian_free_converges_on_a_convex_problem);
    tcase_add_test(tc, hessian_free_on_a_nonlinear_model);
    tcase_add_test(tc, hessian_free_structural_damping);
    tcase_add_test(tc, hessian_free_curvature_minibatch);
    tcase_add_test(tc, hessian_free_resumes_exactly);
    tcase_add_test(tc, hessian_free_hidden_returning_null);
    tcase_add_test(tc, hessian_free_backward_error_is_reported_alone);
    tcase_add_test(tc, hessian_free_checks_the_loss_kind);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
