/*
 * examples/bench_fuse.c - the measurement behind how fused groups run
 * (README, "Fused steps"): an LSTM's elementwise step - four gates from a
 * pre-activation, the cell and the output - over T steps,
 *
 *   ops      one op at a time (TG_FUSE=0): 10 passes over memory a step;
 *   vm       the step compiled into one fused group, run by the blocked
 *            vector machine of ops/fuse/fuse.c (what tapegrad does);
 *   loop     the same arithmetic as one hand-written C loop, the code a
 *            generator specialised for this cell would emit,
 *
 * each forward only (no grad), median of --reps runs, 1 thread.
 *
 *   build/bench_fuse [--B 32] [--H 256] [--T 64] [--reps 21]
 */
#include "examples/common/cli.h"
#include "nn/rnn.h"
#include "ops/kernels/vmath.h" /* the same sigmoid and tanh the ops use */

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the elementwise part of lstm_step: x is the pre-activation [B, 4H] */
static void pointwise_step(tg_cell *c, tg_tensor *x, tg_tensor *const *s,
                           tg_tensor **next)
{
    (void)c;
    tg_tensor *g[4];
    tg_chunk(x, 4, 1, g);
    tg_tensor *in = tg_sigmoid(g[0]), *forget = tg_sigmoid(g[1]);
    tg_tensor *cand = tg_tanh(g[2]), *out = tg_sigmoid(g[3]);
    tg_tensor *kept = tg_mul(forget, s[1]), *added = tg_mul(in, cand);
    next[1] = tg_add(kept, added);
    next[0] = tg_mul(out, tg_tanh(next[1]));
}

static const tg_cell_type pointwise = {
    "pointwise_lstm", .nstate = 2, .gates = 0, .step = pointwise_step};

/* the hand-written loop: x [T, B, 4H] -> h, c [T, B, H] */
static void loop(const tg_real *x, tg_real *h, tg_real *c, int T, int B,
                 int H)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const tg_real *xr = x + ((size_t)t * B + b) * 4 * H;
            const tg_real *cp = t ? c + ((size_t)(t - 1) * B + b) * H : NULL;
            tg_real *cr = c + ((size_t)t * B + b) * H;
            tg_real *hr = h + ((size_t)t * B + b) * H;
            for (int j = 0; j < H; j++) {
                tg_real i = tg_vsigmoid(xr[j]), f = tg_vsigmoid(xr[H + j]);
                tg_real g = tg_vtanh(xr[2 * H + j]);
                tg_real o = tg_vsigmoid(xr[3 * H + j]);
                tg_real cn = f * (cp ? cp[j] : 0) + i * g;
                cr[j] = cn;
                hr[j] = o * tg_vtanh(cn);
            }
        }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

typedef struct opts {
    int B, H, T, reps;
} opts;

#define OFF(f) offsetof(opts, f)
static const cli_flag flags[] = {
    {"B", "n", CLI_INT, OFF(B), 1, 1 << 24, 0, NULL},
    {"H", "n", CLI_INT, OFF(H), 1, 1 << 24, 0, NULL},
    {"T", "n", CLI_INT, OFF(T), 1, 1 << 24, 0, NULL},
    {"reps", "n", CLI_INT, OFF(reps), 1, 1 << 24, 0, NULL},
};
#define USAGE "usage: bench_fuse [--B n] [--H n] [--T n] [--reps n]"
static const cli_spec spec = {"bench_fuse", USAGE "\n", flags,
                              CLI_COUNT(flags), CLI_WANTS, USAGE, NULL};

int main(int argc, char **argv)
{
    opts o = {32, 256, 64, 21};
    cli_parse_or_exit(&spec, argc, argv, &o);
    int B = o.B, H = o.H, T = o.T, reps = o.reps;
    tg_set_num_threads(1);
    tg_set_grad_enabled(false);
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_rnn *r = tg_rnn_new(&pointwise, 4 * H, H, 1, 0.0, &rng);
    tg_tensor *x = tg_tensor_new(TG_SHAPE(T, B, 4 * H));
    tg_fill_uniform_(x, &rng, -3, 3);
    double *times = malloc((size_t)reps * sizeof *times), med[3];
    tg_rnn_out out;
    for (int way = 0; way < 2; way++) { /* ops, vm */
        tg_set_fusion(way == 1);
        for (int k = 0; k < reps + 2; k++) {
            double t0 = now();
            tg_rnn_forward(r, x, NULL, false, NULL, &out);
            if (k >= 2)
                times[k - 2] = now() - t0;
            tg_tape_reset();
        }
        med[way] = median(times, reps);
    }
    tg_real *h = malloc((size_t)T * B * H * sizeof *h);
    tg_real *c = malloc((size_t)T * B * H * sizeof *c);
    for (int k = 0; k < reps + 2; k++) {
        double t0 = now();
        loop(x->data, h, c, T, B, H);
        if (k >= 2)
            times[k - 2] = now() - t0;
    }
    med[2] = median(times, reps);
    /* the three agree (the last step's h) */
    tg_rnn_forward(r, x, NULL, false, NULL, &out);
    double diff = 0;
    for (int i = 0; i < B * H; i++) {
        double d = (double)(out.h[T - 1]->data[i] - h[(size_t)(T - 1) * B * H + i]);
        diff = d > diff ? d : -d > diff ? -d : diff;
    }
    printf("LSTM elementwise step, B=%d H=%d T=%d, forward, 1 thread, median "
           "of %d:\n", B, H, T, reps);
    printf("  ops (one op at a time)  %8.3f ms  %6.2f ns per element and step\n",
           med[0] * 1e3, med[0] * 1e9 / ((double)T * B * H));
    printf("  vm  (one fused group)   %8.3f ms  %6.2f ns\n", med[1] * 1e3,
           med[1] * 1e9 / ((double)T * B * H));
    printf("  loop (hand-written)     %8.3f ms  %6.2f ns\n", med[2] * 1e3,
           med[2] * 1e9 / ((double)T * B * H));
    printf("  vm / loop = %.2f, ops / vm = %.2f; largest |h| difference "
           "vm - loop %.1e\n", med[1] / med[2], med[0] / med[1], diff);
    free(h);
    free(c);
    free(times);
    tg_tensor_free(x);
    tg_rnn_free(r);
    tg_tape_free_all();
    return 0;
}
