/*
 * examples/dist_train.c - data-parallel training in one page (nn/dist.h).
 *
 *   make MPI=1 BUILD=build/mpi build/mpi/dist_train
 *   mpirun -np 2 build/mpi/dist_train            (2 ranks)
 *   build/dist_train                             (1 process, no MPI)
 *
 * A character LSTM learns a short text. Each step's batch of B streams is
 * cut into G blocks (--blocks, default 4) of B/G streams; rank r of N
 * computes blocks r*G/N ... one after the other, and tg_dist_grads sums
 * the blocks' gradients over the ranks along a tree fixed by G (--reduce
 * chain: in block order; ring: MPI_Allreduce). Every N dividing G (a power
 * of two for the tree) prints the same losses to the last bit, and the
 * same final checksum of the parameters: try -np 1, 2 and 4.
 */
#include "examples/common/cli.h"
#include "nn/charlm.h"
#include "nn/dist.h"
#include "nn/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char text[] =
    "the quick brown fox jumps over the lazy dog while the five boxing "
    "wizards jump quickly and a wizard's job is to vex chumps quickly in fog ";

typedef struct opts {
    int G, steps, B, bucket; /* bucket: bytes per message */
    bool pingpong;
    const char *reduce;
} opts;

/* (--blocks 0 is refused below, with the rule it breaks) */
#define OFF(f) offsetof(opts, f)
static const cli_flag flags[] = {
    {"blocks", "G", CLI_INT, OFF(G), 0, 1 << 20, 0, NULL},
    {"steps", "S", CLI_INT, OFF(steps), 0, 1 << 30, 0, NULL},
    {"B", "B", CLI_INT, OFF(B), 1, 1 << 20, 0, NULL},
    {"bucket", "BYTES", CLI_INT, OFF(bucket), 0, 1 << 30, 0, NULL},
    {"pingpong", NULL, CLI_SWITCH, OFF(pingpong), 0, 0, 0, NULL},
    {"reduce", "HOW", CLI_STR, OFF(reduce), 0, 0, 0, NULL},
};
#define USAGE "usage: dist_train [--blocks G] [--steps S] [--B B] " \
              "[--bucket BYTES] [--reduce tree|chain|ring]"
static const cli_spec spec = {"dist_train", USAGE "\n", flags,
                              CLI_COUNT(flags), CLI_WANTS, USAGE, NULL};

int main(int argc, char **argv)
{
    if (tg_dist_init(&argc, &argv) < 0)
        return 1;
    opts o = {.G = 4, .steps = 30, .B = 8, .bucket = 0, .reduce = "tree"};
    cli_parse_or_exit(&spec, argc, argv, &o);
    int G = o.G, steps = o.steps, T = 16, B = o.B, H = 32, bucket = o.bucket;
    tg_dist_reduce how = !strcmp(o.reduce, "tree")    ? TG_DIST_TREE
                         : !strcmp(o.reduce, "chain") ? TG_DIST_CHAIN
                         : !strcmp(o.reduce, "ring")  ? TG_DIST_RING
                                                      : (tg_dist_reduce)-1;
    if ((int)how < 0) {
        fprintf(stderr, "dist_train: --reduce: '%s' is not tree, chain or "
                "ring\n%s\n", o.reduce, USAGE);
        return 2;
    }
    int N = tg_dist_size(), r = tg_dist_rank();
    if (o.pingpong) { /* alpha and beta */
        for (size_t bytes = 8; bytes <= (64u << 20); bytes *= 8) {
            double s = tg_dist_pingpong(bytes, bytes > (1u << 20) ? 9 : 101);
            if (r == 0)
                printf("pingpong bytes %zu seconds %.9f\n", bytes, s);
        }
        tg_dist_finalize();
        return 0;
    }
    if (G < 1 || B % G || G % N) {
        if (r == 0)
            fprintf(stderr, "dist_train: B = %d streams in G = %d blocks over %d "
                    "ranks: G must divide B, and the ranks G\n", B, G, N);
        tg_dist_finalize();
        return 2;
    }
    int64_t n = (int64_t)strlen(text), V = 128, Bb = B / G, m = G / N;
    tg_manual_seed(1);
    tg_charlm *model = tg_charlm_new(&tg_lstm_cell, (int)V, 16, H, 1, 0.0, NULL);
    tg_dist_broadcast_params(&model->params, 0); /* one starting point */
    tg_dist_grads *dg = tg_dist_grads_new_reduce(&model->params, G, 1.0 / G, (size_t)bucket, how);
    tg_optim *opt = tg_adam_new(&model->params, 0.01, 0.9, 0.999, 1e-8, 0);
    int64_t *tok = malloc((size_t)(T * Bb) * sizeof *tok), *tgt = malloc((size_t)(T * Bb) * sizeof *tgt);
    for (int s = 0; s < steps; s++) {
        double loss[64];
        for (int k = 0; k < m; k++) {
            int64_t block = r * m + k;
            for (int64_t t = 0; t < T; t++) /* stream b starts at 7 b + 3 s */
                for (int64_t b = 0; b < Bb; b++) {
                    int64_t at = (7 * (block * Bb + b) + 3 * s + t) % (n - 1);
                    tok[t * Bb + b] = (unsigned char)text[at];
                    tgt[t * Bb + b] = (unsigned char)text[at + 1];
                }
            tg_dist_grads_begin(dg, k);
            tg_rnn_out out;
            tg_tensor *l = tg_cross_entropy(tg_charlm_forward(model, tok, T, Bb, NULL, true, NULL, &out), tgt, TG_MEAN);
            loss[k] = l->data[0];
            tg_backward(l);
            if (tg_dist_grads_end(dg) < 0)
                tg_dist_abort(1, tg_last_error());
            tg_tape_reset();
        }
        double mean = tg_dist_sum_ordered(loss, m, 1.0 / G);
        tg_clip_grad_norm(&model->params, 1.0);
        tg_optim_step(opt);
        if (r == 0)
            printf("step %d loss %.17g\n", s, mean);
    }
    uint64_t h = 1469598103934665603u; /* FNV-1a over the parameters' bytes */
    const unsigned char *p = (const unsigned char *)model->params.block_data;
    for (size_t i = 0; i < (size_t)model->params.block_n * sizeof(tg_real); i++)
        h = (h ^ p[i]) * 1099511628211u;
    tg_dist_stats st = tg_dist_grads_stats(dg);
    if (r == 0)
        printf("parameters %016llx\nranks %d, blocks %d, %s: %.3f s waiting, %.0f bytes sent by rank 0\n",
               (unsigned long long)h, N, G, tg_dist_reduce_name(tg_dist_grads_reduce(dg)), st.wait_s, st.bytes_sent);
    free(tok);
    free(tgt);
    tg_optim_free(opt);
    tg_dist_grads_free(dg);
    tg_charlm_free(model);
    tg_dist_finalize();
    return 0;
}
