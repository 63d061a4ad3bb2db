/*
 * examples/gradflow.c - why gates matter: how far back a gradient reaches
 * in a plain RNN, an LSTM and a GRU.
 *
 *   build/gradflow [--T 100] [--H 64] [--steps 300] [--seed 1] [--out DIR]
 *   build/gradflow --quick                 (tiny sizes, for the tests)
 *   make gradflow                          (also draws DIR/gradflow.svg)
 *
 * The task: a sequence x_0 .. x_{T-1} of N(0, 1) numbers (batch B = 16,
 * one feature); the answer, read by a linear layer from the last hidden
 * state h_{T-1}, is x_0. The loss (MSE, mean over the batch) sits at the
 * last step only, so everything the network learns about x_0 has to come
 * back through dL/dh_t for t = T-1, T-2, ..., 0.
 *
 * After tg_backward, tg_retain_grad has kept dL/dh_t for every t (the
 * sequence layer's out.h[t]); the program prints the L2 norm of that whole
 * [B, H] block against the distance T-1-t from the loss, for each cell at
 * initialisation and after --steps Adam steps. Then a plain RNN with large
 * recurrent weights (N(0, 3/sqrt(H)), spectral radius about 3): its
 * gradient grows at every step back, and tg_clip_grad_norm scales it down.
 *
 * Every curve is also written to --out (default build/gradflow_data/) as one
 * .dat file ("distance norm" lines) for examples/gradflow.gp (gnuplot).
 * The output is the same on every run (fixed seeds, no timings).
 */
#include "examples/common/cli.h"
#include "nn/modules.h"
#include "nn/optim.h"
#include "nn/rnn.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct opts {
    int T, H, B, steps;
    unsigned long seed;
    double lr, explode_gain, clip, noise, gate_bias;
    const char *out;
} opts;

/* A model: a sequence layer of one cell and a linear readout of h_{T-1}. */
typedef struct model {
    const char *name;
    tg_rnn *rnn;
    tg_linear_mod *head;
    tg_params params; /* both, borrowed */
} model;

static model *model_new(const char *name, const tg_cell_type *type,
                        const opts *o, tg_rng *rng)
{
    model *m = tg_xcalloc(1, sizeof *m);
    m->name = name;
    m->rnn = tg_rnn_new(type, 1, o->H, 1, 0.0, rng);
    m->head = tg_linear_new(o->H, 1, true, rng);
    if (type->gates > 1 && o->gate_bias != 0) /* lstm f, gru z */
        tg_cell_set_forget_bias(m->rnn->layers[0], o->gate_bias);
    tg_params_add_from(&m->params, "rnn.", &m->rnn->params);
    tg_params_add_from(&m->params, "head.", &m->head->params);
    return m;
}

static void model_free(model *m)
{
    tg_params_free(&m->params);
    tg_rnn_free(m->rnn);
    tg_linear_free(m->head);
    free(m);
}

/* A batch: x [T, B, 1] of N(0, 1) and the target x_0 [B, 1]. */
static void make_batch(const opts *o, tg_rng *rng, tg_tensor **x,
                       tg_tensor **y)
{
    *x = tg_randn(TG_SHAPE(o->T, o->B, 1), rng, 0, o->noise);
    for (int b = 0; b < o->B; b++) /* x_0 ~ N(0, 1) */
        (*x)->data[b] = (tg_real)tg_rng_normal(rng);
    *y = tg_zeros(TG_SHAPE(o->B, 1));
    for (int b = 0; b < o->B; b++)
        (*y)->data[b] = (*x)->data[b]; /* x[0][b][0] */
}

/* Forward and loss; with norms != NULL every out.h[t] keeps its gradient
 * and norms[d] receives || dL/dh_{T-1-d} || (the [B, H] block's L2 norm)
 * after the backward sweep. Returns the loss. The tape is left for the
 * caller to reset (the parameters' gradients are kept). */
static double forward_backward(model *m, tg_tensor *x, tg_tensor *y,
                               double *norms)
{
    tg_rnn_out out;
    if (tg_rnn_forward(m->rnn, x, NULL, true, NULL, &out))
        exit(1);
    if (norms)
        for (int64_t t = 0; t < out.T; t++)
            tg_retain_grad(out.h[t]);
    tg_tensor *pred = tg_linear_forward(m->head, out.h[out.T - 1]);
    tg_tensor *loss = tg_mse(pred, y, TG_MEAN);
    double value = tg_item(loss);
    if (tg_backward(loss))
        exit(1);
    if (norms)
        for (int64_t t = 0; t < out.T; t++) {
            const tg_tensor *h = out.h[t];
            double s = 0;
            for (int64_t i = 0; i < h->numel; i++)
                s += (double)h->grad[i] * (double)h->grad[i];
            norms[out.T - 1 - t] = sqrt(s);
        }
    return value;
}

/* The gradient norms on a fixed measuring batch (the same for every
 * model: seed + 1000). Returns the loss on it. */
static double measure(model *m, const opts *o, double *norms)
{
    tg_rng rng;
    tg_rng_seed(&rng, o->seed + 1000);
    tg_tensor *x, *y;
    make_batch(o, &rng, &x, &y);
    double loss = forward_backward(m, x, y, norms);
    tg_params_zero_grad(&m->params);
    tg_tape_reset();
    return loss;
}

/* The global L2 norm of every parameter gradient. */
static double grad_norm(const tg_params *ps)
{
    double s = 0;
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_tensor *t = tg_params_at(ps, i)->tensor;
        if (t->grad)
            for (int64_t k = 0; k < t->numel; k++)
                s += (double)t->grad[k] * (double)t->grad[k];
    }
    return sqrt(s);
}

/* steps of opt on fresh batches; clip > 0 clips the global norm first.
 * Returns the mean loss of the last tenth of the steps. */
static double train(model *m, tg_optim *opt, const opts *o, int steps,
                    double clip, tg_rng *rng)
{
    double tail = 0;
    int ntail = steps / 10 > 0 ? steps / 10 : 1;
    for (int s = 0; s < steps; s++) {
        tg_tensor *x, *y;
        make_batch(o, rng, &x, &y);
        tg_optim_zero_grad(opt);
        double loss = forward_backward(m, x, y, NULL);
        if (clip > 0)
            tg_clip_grad_norm(&m->params, clip);
        tg_optim_step(opt);
        tg_tape_reset();
        if (s >= steps - ntail)
            tail += loss;
    }
    return tail / ntail;
}

/* ---- output ------------------------------------------------------------ */

static void write_dat(const opts *o, const char *file, const char *what,
                      const double *norms)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->out, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gradflow: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(f, "# %s: ||dL/dh_t|| (L2 norm of the [B, H] block), T=%d H=%d B=%d\n"
               "# distance T-1-t   norm\n", what, o->T, o->H, o->B);
    for (int d = 0; d < o->T; d++)
        fprintf(f, "%d %.6e\n", d, norms[d]);
    fclose(f);
}

/* the distances of the table that exist for this T (T-1 always last) */
static int table_distances(const opts *o, int *ds)
{
    static const int want[] = {0, 1, 2, 5, 10, 20, 50};
    int n = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (want[i] < o->T - 1)
            ds[n++] = want[i];
    ds[n++] = o->T - 1;
    return n;
}

static double lg(double v) { return v > 0 ? log10(v) : -HUGE_VAL; }

static void print_table(const opts *o, const char *title, int ncurves,
                        const char *const *names, double *const *norms)
{
    int ds[8], nd = table_distances(o, ds);
    printf("\n%s\n%-10s", title, "distance");
    for (int c = 0; c < ncurves; c++)
        printf(" %13s", names[c]);
    printf("\n");
    for (int i = 0; i < nd; i++) {
        printf("%-10d", ds[i]);
        for (int c = 0; c < ncurves; c++)
            printf(" %13.2f", lg(norms[c][ds[i]]));
        printf("\n");
    }
}

/* ---- command line ------------------------------------------------------- */

static const char help[] =
    "usage: gradflow [options]\n\n"
    "Measures ||dL/dh_t|| against the distance from the loss for a plain\n"
    "RNN, an LSTM and a GRU (at initialisation and after training on\n"
    "\"remember x_0\"), and a plain RNN with large weights (exploding\n"
    "gradients, clipping). Writes one .dat file per curve to --out.\n\n"
    "options:\n"
    "  --T N        sequence length (default 100)\n"
    "  --H N        hidden size (default 64)\n"
    "  --B N        batch size (default 16)\n"
    "  --steps N    Adam steps per cell (default 300)\n"
    "  --lr X       Adam learning rate (default 0.01)\n"
    "  --noise X    std of the inputs x_1.. (x_0 ~ N(0, 1); default 0.1)\n"
    "  --gate-bias X  initial bias of the LSTM forget gate and the GRU\n"
    "               update gate z (tg_cell_set_forget_bias; default 3;\n"
    "               0 is PyTorch's initialisation)\n"
    "  --seed N     seed of parameters and data (default 1)\n"
    "  --out DIR    where the .dat files go (default build/gradflow_data)\n"
    "  --quick      tiny sizes: --T 20 --H 8 --B 4 --steps 20\n"
    "  --help       this text\n";

static int set_quick(void *cfg, const char *v)
{
    (void)v;
    opts *o = cfg;
    o->T = 20, o->H = 8, o->B = 4, o->steps = 20;
    return 0;
}

static int set_out(void *cfg, const char *v)
{
    if (!v)
        return cli_fail("--out wants a directory");
    ((opts *)cfg)->out = v;
    return 0;
}

#define OFF(f) offsetof(opts, f)
static const cli_flag flags[] = {
    {"T", "N", CLI_INT, OFF(T), 2, 100000, 0, NULL},
    {"H", "N", CLI_INT, OFF(H), 1, 100000, 0, NULL},
    {"B", "N", CLI_INT, OFF(B), 1, 100000, 0, NULL},
    {"steps", "N", CLI_INT, OFF(steps), 0, 100000000, 0, NULL},
    {"seed", "N", CLI_LONG, OFF(seed), 0, 2147483647, 0, NULL},
    {"lr", "X", CLI_REAL, OFF(lr), 1e-12, 0, 0, NULL},
    {"noise", "X", CLI_REAL, OFF(noise), 0, 0, 0, NULL},
    {"gate-bias", "X", CLI_REAL, OFF(gate_bias), -1e9, 0, 0, NULL},
    {"out", "DIR", CLI_SET, 1, 0, 0, 0, NULL},
    {"quick", NULL, CLI_SET, 0, 0, 0, 0, NULL},
};
static const cli_set_fn sets[] = {set_quick, set_out};
static const cli_spec spec = {"gradflow", help, flags, CLI_COUNT(flags),
                              CLI_WANTS, NULL, sets};

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.T = 100, .H = 64, .B = 16, .steps = 300, .seed = 1,
                .gate_bias = 3.0, .noise = 0.1, .lr = 1e-2, .explode_gain = 3.0, .clip = 1.0,
                .out = "build/gradflow_data"};
    cli_parse_or_exit(&spec, argc, argv, o);
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    if (mkdir(o.out, 0777) && errno != EEXIST) {
        fprintf(stderr, "gradflow: cannot make %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    printf("gradflow: T=%d H=%d B=%d, loss = MSE of a linear readout of h_{T-1}\n"
           "against x_0; ||dL/dh_t|| = L2 norm of the whole [B, H] block of\n"
           "dL/dh_t (loss = mean over the batch), on one fixed batch.\n",
           o.T, o.H, o.B);

    /* ---- 1. three cells, at initialisation and after training ---- */
    static const char *const names[3] = {"rnn", "lstm", "gru"};
    const tg_cell_type *types[3] = {&tg_rnn_tanh_cell, &tg_lstm_cell, &tg_gru_cell};
    double *init[3], *trained[3];
    double loss0[3], loss1[3];
    for (int c = 0; c < 3; c++) {
        tg_rng rng;
        tg_rng_seed(&rng, o.seed);
        model *m = model_new(names[c], types[c], &o, &rng);
        init[c] = tg_xcalloc((size_t)o.T, sizeof(double));
        trained[c] = tg_xcalloc((size_t)o.T, sizeof(double));
        loss0[c] = measure(m, &o, init[c]);
        tg_optim *opt = tg_adam_new(&m->params, o.lr, 0.9, 0.999, 1e-8, 0);
        tg_rng data;
        tg_rng_seed(&data, o.seed + 1);
        train(m, opt, &o, o.steps, 0, &data);
        loss1[c] = measure(m, &o, trained[c]);
        tg_optim_free(opt);
        model_free(m);
        char file[64], what[64];
        snprintf(file, sizeof file, "%s_init.dat", names[c]);
        snprintf(what, sizeof what, "%s at initialisation", names[c]);
        write_dat(&o, file, what, init[c]);
        snprintf(file, sizeof file, "%s_trained.dat", names[c]);
        snprintf(what, sizeof what, "%s after %d Adam steps", names[c], o.steps);
        write_dat(&o, file, what, trained[c]);
    }
    const char *cols[6];
    double *curves[6];
    char colnames[6][32];
    for (int c = 0; c < 3; c++) {
        snprintf(colnames[2 * c], 32, "%s init", names[c]);
        snprintf(colnames[2 * c + 1], 32, "%s trained", names[c]);
        cols[2 * c] = colnames[2 * c], curves[2 * c] = init[c];
        cols[2 * c + 1] = colnames[2 * c + 1], curves[2 * c + 1] = trained[c];
    }
    char title[128];
    snprintf(title, sizeof title,
             "log10 ||dL/dh_t|| by distance T-1-t (trained: %d Adam steps, lr %g)",
             o.steps, o.lr);
    print_table(&o, title, 6, cols, curves);
    printf("\nloss on the measuring batch (predicting x_0 by 0 gives about 1):\n");
    for (int c = 0; c < 3; c++)
        printf("loss %-5s init %.4f trained %.4f\n", names[c], loss0[c], loss1[c]);

    /* ---- 2. exploding: a plain RNN with large recurrent weights ---- */
    tg_rng rng;
    tg_rng_seed(&rng, o.seed);
    model *m = model_new("rnn-big", &tg_rnn_tanh_cell, &o, &rng);
    tg_tensor *Whh = m->rnn->layers[0]->weight_hh;
    tg_fill_normal_(Whh, &rng, 0, o.explode_gain / sqrt((double)o.H));
    double *big = tg_xcalloc((size_t)o.T, sizeof(double));
    tg_rng mrng;
    tg_rng_seed(&mrng, o.seed + 1000);
    tg_tensor *x, *y;
    make_batch(&o, &mrng, &x, &y);
    forward_backward(m, x, y, big);
    double before_own = grad_norm(&m->params);
    double before = tg_clip_grad_norm(&m->params, o.clip);
    double after = grad_norm(&m->params);
    tg_params_zero_grad(&m->params);
    tg_tape_reset();
    write_dat(&o, "rnn_explode.dat", "rnn, W_hh ~ N(0, 3/sqrt(H))", big);

    snprintf(title, sizeof title,
             "exploding: rnn with W_hh ~ N(0, %g/sqrt(H)), log10 ||dL/dh_t||",
             o.explode_gain);
    const char *ecols[2] = {"rnn small", "rnn large"};
    double *ecurves[2] = {init[0], big};
    print_table(&o, title, 2, ecols, ecurves);
    printf("growth per step back (geometric mean over %d steps): "
           "large %.3f, small %.3f\n", o.T - 1,
           pow(big[o.T - 1] / big[0], 1.0 / (o.T - 1)),
           pow(init[0][o.T - 1] / init[0][0], 1.0 / (o.T - 1)));
    printf("global gradient norm (all parameters): %.4e (tg_clip_grad_norm "
           "returned %.4e)\n", before_own, before);
    printf("after tg_clip_grad_norm(params, %g): %.6f\n", o.clip, after);

    /* the same model trained by SGD, with and without clipping */
    int n = o.steps / 3 > 0 ? o.steps / 3 : 1;
    double lr = 0.05, tail[2];
    for (int k = 0; k < 2; k++) {
        tg_rng_seed(&rng, o.seed);
        model *mk = model_new("rnn-big", &tg_rnn_tanh_cell, &o, &rng);
        tg_fill_normal_(mk->rnn->layers[0]->weight_hh, &rng, 0,
                        o.explode_gain / sqrt((double)o.H));
        tg_optim *opt = tg_sgd_new(&mk->params, lr, 0, 0, 0, false);
        tg_rng data;
        tg_rng_seed(&data, o.seed + 1);
        tail[k] = train(mk, opt, &o, n, k ? o.clip : 0, &data);
        tg_optim_free(opt);
        model_free(mk);
    }
    printf("SGD lr %g, %d steps, mean loss of the last tenth: unclipped ", lr, n);
    printf(isfinite(tail[0]) ? "%.4g" : "diverged (%g)", fabs(tail[0]));
    printf(", clipped to %g: ", o.clip);
    printf(isfinite(tail[1]) ? "%.4g\n" : "diverged (%g)\n", fabs(tail[1]));

    model_free(m);
    for (int c = 0; c < 3; c++)
        free(init[c]), free(trained[c]);
    free(big);
    tg_tape_free_all();
    printf("\ncurves written to %s/*.dat\n", o.out);
    return 0;
}
