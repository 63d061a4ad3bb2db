/*
 * examples/optimise_vs_gates/rows.c - the rows of the study: which cell,
 * which starting point, which optimiser, and the grid each is tuned over.
 *
 * Three groups. The Adam rows (tanh, lstm, gru, orth). The published
 * regimes: irnn-le, the IRNN of Le, Jaitly and Hinton (2015) with plain
 * SGD and gradient clipping, tuned over a grid of rates and clips like
 * theirs; hf-ms, Hessian-free as Martens and Sutskever (2011) ran it on
 * plain tanh RNNs - sparse initialisation, structural damping, a gradient
 * batch much larger than Adam's and curvature products on a quarter of
 * it, up to 250 CG iterations per step. And controls that change one
 * thing at a time: tanh-id (identity W_hh, Adam), relu (ReLU, default
 * init, Adam), irnn (the IRNN's init with Adam), hf (tanh, default init,
 * our HF settings: one batch of 256 for everything, 50 CG iterations),
 * hf-sparse (hf from the sparse init).
 */
#include "ovg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const ovg_task_names[NTASKS] = {"adding", "copy"};

#define HF_OURS 256, 256, 50, 1.0 / 30
const ovg_row ovg_rows[NROWS] = {
    {"tanh", "tanh RNN, Adam", &tg_rnn_tanh_cell, INIT_DEFAULT, OPT_ADAM,
     0, 0, 0, 0},
    {"lstm", "LSTM (forget bias 1), Adam", &tg_lstm_cell, INIT_DEFAULT,
     OPT_ADAM, 0, 0, 0, 0},
    {"gru", "GRU, Adam", &tg_gru_cell, INIT_DEFAULT, OPT_ADAM, 0, 0, 0, 0},
    {"orth", "tanh RNN, orthogonal W_hh, Adam", &tg_rnn_tanh_cell, INIT_ORTH,
     OPT_ADAM, 0, 0, 0, 0},
    {"irnn-le", "IRNN, SGD + clip (Le et al. 2015)", &tg_rnn_relu_cell,
     INIT_IRNN, OPT_SGD, 0, 0, 0, 0},
    {"hf-ms", "tanh RNN, sparse init, HF (Martens & Sutskever 2011)",
     &tg_rnn_tanh_cell, INIT_SPARSE, OPT_HF, 512, 128, 250, 1.0 / 30},
    {"tanh-id", "tanh RNN, W_hh = I, Adam", &tg_rnn_tanh_cell, INIT_IDENTITY,
     OPT_ADAM, 0, 0, 0, 0},
    {"relu", "ReLU RNN, default init, Adam", &tg_rnn_relu_cell, INIT_DEFAULT,
     OPT_ADAM, 0, 0, 0, 0},
    {"irnn", "IRNN init, Adam", &tg_rnn_relu_cell, INIT_IRNN, OPT_ADAM,
     0, 0, 0, 0},
    {"hf", "tanh RNN, default init, HF (our settings)", &tg_rnn_tanh_cell,
     INIT_DEFAULT, OPT_HF, HF_OURS},
    {"hf-sparse", "tanh RNN, sparse init, HF (our settings)",
     &tg_rnn_tanh_cell, INIT_SPARSE, OPT_HF, HF_OURS},
};

int ovg_row_index(const char *name)
{
    for (int r = 0; r < NROWS; r++)
        if (!strcmp(ovg_rows[r].name, name))
            return r;
    return -1;
}

/* Adam: 4 rates (log-spaced, about a factor 3 apart) x 2 clips; SGD as
 * Le et al.: 4 rates a factor 10 apart x 3 clips; HF: 4 initial dampings
 * lambda0 (a factor 10 apart; the Levenberg-Marquardt rule moves lambda
 * from there), mu fixed by the row. */
int ovg_grid(const ovg_row *r, ovg_setting *g)
{
    static const double adam_lr[] = {3e-4, 1e-3, 3e-3, 1e-2};
    static const double adam_clip[] = {1, 10};
    static const double sgd_lr[] = {1e-4, 1e-3, 1e-2, 1e-1};
    static const double sgd_clip[] = {1, 10, 100};
    static const double hf_lambda0[] = {0.1, 1, 10, 100};
    int n = 0;
    if (r->opt == OPT_HF) {
        for (int i = 0; i < 4; i++)
            g[n++] = (ovg_setting){hf_lambda0[i], 0};
    } else if (r->opt == OPT_SGD) {
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 4; i++)
                g[n++] = (ovg_setting){sgd_lr[i], sgd_clip[c]};
    } else {
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 4; i++)
                g[n++] = (ovg_setting){adam_lr[i], adam_clip[c]};
    }
    return n;
}

/* W := an orthogonal matrix: Gram-Schmidt on Gaussian rows (in double) */
static void orthogonal_(tg_tensor *W, tg_rng *rng)
{
    int64_t n = W->shape[0];
    double *q = malloc((size_t)(n * n) * sizeof *q);
    for (int64_t i = 0; i < n * n; i++)
        q[i] = tg_rng_normal(rng);
    for (int64_t i = 0; i < n; i++) {
        for (int pass = 0; pass < 2; pass++) /* twice: stable enough */
            for (int64_t j = 0; j < i; j++) {
                double d = 0;
                for (int64_t k = 0; k < n; k++)
                    d += q[i * n + k] * q[j * n + k];
                for (int64_t k = 0; k < n; k++)
                    q[i * n + k] -= d * q[j * n + k];
            }
        double s = 0;
        for (int64_t k = 0; k < n; k++)
            s += q[i * n + k] * q[i * n + k];
        for (int64_t k = 0; k < n; k++)
            q[i * n + k] /= sqrt(s);
    }
    for (int64_t i = 0; i < n * n; i++)
        W->data[i] = (tg_real)q[i];
    tg_bump_version(W);
    free(q);
}

/* The spectral radius of a square n x n matrix by Gelfand's formula,
 * rho = lim |W^k|^(1/k), at k = 2^12 by repeated squaring (each square
 * rescaled to norm 1, the logs summed): within a factor n^(1/k) of it. */
static double spectral_radius(const double *w, int64_t n)
{
    double *a = malloc((size_t)(n * n) * sizeof *a);
    double *b = malloc((size_t)(n * n) * sizeof *b);
    memcpy(a, w, (size_t)(n * n) * sizeof *a);
    double logn = 0, k = 1; /* |W^k| = exp(logn) * |a| */
    for (int s = 0; s < 12; s++) {
        double f = 0;
        for (int64_t i = 0; i < n * n; i++)
            f += a[i] * a[i];
        f = sqrt(f);
        if (f == 0)
            break;
        logn += log(f);
        for (int64_t i = 0; i < n * n; i++)
            a[i] /= f;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double d = 0;
                for (int64_t l = 0; l < n; l++)
                    d += a[i * n + l] * a[l * n + j];
                b[i * n + j] = d;
            }
        memcpy(a, b, (size_t)(n * n) * sizeof *a);
        logn *= 2, k *= 2;
    }
    double f = 0;
    for (int64_t i = 0; i < n * n; i++)
        f += a[i] * a[i];
    free(a);
    free(b);
    return f > 0 ? exp((logn + 0.5 * log(f)) / k) : 0;
}

/* Martens' sparse initialisation of W [rows, cols]: each row gets
 * min(15, cols) nonzero weights N(0, 1) at distinct random columns; with
 * radius > 0 (a square W_hh), scaled to that spectral radius. */
static void sparse_(tg_tensor *W, tg_rng *rng, double radius)
{
    int64_t rows = W->shape[0], cols = W->shape[1];
    int nz = cols < 15 ? (int)cols : 15;
    double *w = calloc((size_t)(rows * cols), sizeof *w);
    for (int64_t i = 0; i < rows; i++)
        for (int k = 0; k < nz; k++) {
            int64_t j;
            do
                j = (int64_t)tg_rng_below(rng, (uint64_t)cols);
            while (w[i * cols + j] != 0);
            w[i * cols + j] = tg_rng_normal(rng);
        }
    double s = radius > 0 ? radius / spectral_radius(w, rows) : 1;
    for (int64_t i = 0; i < rows * cols; i++)
        W->data[i] = (tg_real)(w[i] * s);
    tg_bump_version(W);
    free(w);
}

void ovg_model_init(task_model *m, const ovg_row *r, task_kind k, int H,
                    tg_rng *rng)
{
    task_model_init(m, k, r->cell, H, 1.0, rng);
    tg_cell *c = m->rnn->layers[0];
    switch (r->init) {
    case INIT_DEFAULT:
        break;
    case INIT_ORTH:
        orthogonal_(c->weight_hh, rng);
        break;
    case INIT_IRNN:
        tg_fill_(c->bias_hh, 0);
        tg_fill_(c->bias_ih, 0);
        tg_fill_normal_(c->weight_ih, rng, 0, 0.001);
        /* fall through - and W_hh = I */
    case INIT_IDENTITY:
        tg_fill_(c->weight_hh, 0);
        for (int i = 0; i < H; i++)
            c->weight_hh->data[(int64_t)i * H + i] = 1;
        tg_bump_version(c->weight_hh);
        break;
    case INIT_SPARSE:
        tg_fill_(c->bias_hh, 0);
        tg_fill_(c->bias_ih, 0);
        sparse_(c->weight_ih, rng, 0);
        sparse_(c->weight_hh, rng, 1.2);
        break;
    }
}

tg_optim *ovg_optim_new(const ovg_row *r, task_model *m, task_kind k,
                        ovg_setting s)
{
    if (r->opt == OPT_SGD)
        return tg_sgd_new(&m->ps, s.lr, 0, 0, 0, false);
    if (r->opt == OPT_ADAM)
        return tg_adam_new(&m->ps, s.lr, 0.9, 0.999, 1e-8, 0);
    tg_hf_config cfg = {
        .curv = {k == TASK_ADDING ? TG_CURV_MSE : TG_CURV_CROSS_ENTROPY,
                 TG_MEAN},
        .lambda0 = s.lr, .max_cg = r->hf_cg, .mu = r->hf_mu};
    return tg_hf_optim_new(&m->ps, &cfg);
}
