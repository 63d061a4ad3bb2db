/*
 * nn/dist.h - data-parallel training over MPI.
 *
 * Every process ("rank") holds the whole model and trains on its own
 * share of every batch; before each optimizer step the ranks sum their
 * gradients, so that they all take the same step and stay identical. MPI
 * does the transport (mpirun starts the ranks, on one machine or many);
 * tapegrad built without MPI (the default, `make`) runs the same code as
 * one rank, and `make MPI=1` builds it with mpicc.
 *
 * Same results for any number of ranks. A batch is cut into G blocks of
 * rows ("micro-batches"), G fixed by the run; rank r of N computes the
 * gradients of blocks r*G/N ... (r+1)*G/N - 1, one after the other, and
 * the gradient of the batch is summed in an order fixed by G alone,
 * whoever holds which block. Each block is computed by the same code on
 * the same number of rows everywhere, so one process with G blocks and N
 * ranks with G/N blocks each produce the same bits. Three ways to sum
 * (tg_dist_reduce):
 *
 * - the tree (the default): one balanced binary tree over the G blocks,
 *   ((g0 + g1) + (g2 + g3)) + ... - the first ceil(n/2) blocks of a
 *   subtree of n on the left. Each rank sums its run of G/N blocks along
 *   it, and the ranks sum the levels above (recursive halving, then
 *   recursive doubling: Rabenseifner's all-reduce): the same bits as one
 *   process for every N that is a power of two dividing G, in 2 log2 N
 *   messages and 2 (N-1)/N of the gradients' bytes sent per rank - the
 *   bandwidth of a ring, the latency of a tree. Another N (3, 6 ...)
 *   cannot cut the tree between ranks: the sum falls back to the chain
 *   (tg_dist_grads_reduce says which is used).
 * - the chain: in block order, ((g0 + g1) + g2) + ..., travelling along
 *   the ranks 0 -> 1 -> ... -> N-1 and back: the same bits for every N
 *   dividing G, but 2 (N - 1) hops per bucket - slow at many ranks.
 * - the ring: MPI_Allreduce of each rank's sum (along the tree), in
 *   whatever order the MPI library picks for N ranks: its own algorithm
 *   for the network at hand (or the network's hardware), and not the
 *   same bits for another N (nor necessarily another MPI library).
 *
 * The tree and the chain agree for G <= 3 (the same additions); from
 * G = 4 on they are two computations, so a checkpoint resumed with the
 * other one is not the run it would have been.
 *
 * The sum starts while backward still runs: the parameters live in one
 * block (tg_params_flatten) cut into buckets of about bucket_bytes, and a
 * bucket is sent as soon as backward has finished every gradient in it
 * (tg_set_grad_ready_hook).
 *
 *     tg_dist_init(&argc, &argv);
 *     int N = tg_dist_size(), r = tg_dist_rank(), m = G / N;
 *     tg_dist_broadcast_params(&model->params, 0);
 *     tg_dist_grads *dg = tg_dist_grads_new(&model->params, G, 1.0 / G, 0);
 *     for (step ...) {
 *         double loss[m];
 *         for (int k = 0; k < m; k++) {
 *             tg_dist_grads_begin(dg, k);           // zeroes the grads
 *             tg_tensor *l = forward(block r * m + k);  // mean over it
 *             loss[k] = l->data[0];
 *             tg_backward(l);
 *             tg_dist_grads_end(dg);  // the last one: grads = the mean
 *         }
 *         double mean = tg_dist_sum_ordered(loss, m, 1.0 / G);
 *         tg_optim_step(opt);                      // the same everywhere
 *         tg_tape_reset();
 *     }
 *     tg_dist_grads_free(dg);
 *     tg_dist_finalize();
 *
 * examples/dist_train.c is that loop as a complete program.
 */
#ifndef TG_NN_DIST_H
#define TG_NN_DIST_H

#include "nn/params.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* true when this build of tapegrad has MPI (make MPI=1) */
bool tg_dist_has_mpi(void);

/* The number of processes a launcher started together with this one, as
 * its environment says (Open MPI's mpirun: OMPI_COMM_WORLD_SIZE; MPICH,
 * Intel MPI and srun --mpi=pmi2: PMI_SIZE; MVAPICH2: MV2_COMM_WORLD_SIZE;
 * srun with any --mpi plugin, pmix included: SLURM_STEP_NUM_TASKS),
 * and this one's place among them in *rank (if rank is not NULL); 0 when
 * no launcher started it. Known before tg_dist_init, with or without MPI. */
int tg_dist_launched(int *rank);

/* Starts MPI (with one thread calling it; OpenMP threads never do) unless
 * it is started already. 0, or -1 after reporting an error. Without MPI:
 * one rank, nothing to start - but a process that a launcher started as
 * one of several (tg_dist_launched) is refused (-1): it would run alone,
 * and its copies would write the same files.
 * With MPI it also replaces Open MPI's crash handler (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGABRT), which allocates and can wait forever for
 * malloc after a heap corruption, by one that only writes "tapegrad: rank
 * R of N: SIGSEGV ..." and lets the signal end the rank (the handler there
 * before, the default or a sanitizer's, takes it); mpirun ends the others. */
int tg_dist_init(int *argc, char ***argv);
/* Ends MPI if tg_dist_init started it. */
void tg_dist_finalize(void);
int tg_dist_rank(void); /* 0 .. size-1 */
int tg_dist_size(void);
/* Ends every rank at once: prints "tapegrad: rank R: msg" and aborts the
 * whole job with exit status code (plain exit without MPI). */
TG_NORETURN void tg_dist_abort(int code, const char *msg);

/* Copies root's numbers of every parameter to every rank: one message
 * over the flattened block (flattens ps if needed). 0 or -1. */
int tg_dist_broadcast_params(tg_params *ps, int root);
/* Copies bytes at buf from root to every rank. 0 or -1. */
int tg_dist_broadcast(void *buf, size_t bytes, int root);
/* Every rank gives the same number of bytes (at most 1 GB) at mine; root
 * receives them all at all, rank after rank (size * bytes; the other
 * ranks may pass NULL). 0 or -1. */
int tg_dist_gather(const void *mine, size_t bytes, void *all, int root);
/* Every rank gives its m numbers (the same m on all); returns on every
 * rank the sum of all of them in rank order, each rank's in its order,
 * times scale - the same bits on every rank and for any N. */
double tg_dist_sum_ordered(const double *mine, int m, double scale);
/* The largest of x over the ranks, on every rank (e.g. "stop" flags). */
double tg_dist_max(double x);
/* buf holds `outer` rows of size * chunk numbers, rank r owning numbers
 * r * chunk .. (r + 1) * chunk - 1 of every row; afterwards every rank
 * holds every rank's part (e.g. the carried hidden states [L, B, H] of
 * the streams each rank computes, before a checkpoint). 0 or -1. */
int tg_dist_allgather_rows(tg_real *buf, int64_t outer, int64_t chunk);

/* Seconds one message of `bytes` takes from rank 0 to rank 1: half the
 * median round trip of reps ping-pongs (0 with fewer than 2 ranks; other
 * ranks wait). For the cost model of docs/scaling.md. */
double tg_dist_pingpong(size_t bytes, int reps);

/* ---- agreeing before the work ----------------------------------------- *
 * Ranks started with other flags, data or builds would exchange messages
 * of other sizes (and hang, or overrun a buffer), or train on inputs that
 * differ in silence. So, before any other exchange, each rank describes
 * what it is about to do in a digest - named fields of text: the build,
 * the configuration, the sizes and hashes of its inputs - or says why it
 * cannot start; rank 0 compares them all and every rank learns the
 * outcome, in one line:
 *
 *     tg_dist_digest d = {0};
 *     if (ready) {
 *         tg_dist_digest_add(&d, "--hidden", "%d", H);
 *         tg_dist_digest_add(&d, "data", "%lld bytes, hash %016llx", n, h);
 *     } else
 *         tg_dist_digest_fail(&d, "cannot read data.txt: no such file");
 *     char why[TG_DIST_WHY];
 *     if (tg_dist_agree(&d, why, sizeof why) != 0) {
 *         if (tg_dist_rank() == 0) fprintf(stderr, "%s\n", why);
 *         return 1;                          // every rank, together
 *     }
 *
 * A rank that fails before it can describe itself must still call
 * tg_dist_agree, with its error: the others are waiting for it. A digest
 * has a fixed size, so that ranks that disagree still exchange it safely. */
#define TG_DIST_FIELDS 64 /* fields in a digest */
#define TG_DIST_NAME 32   /* bytes of a field's name, with its NUL */
#define TG_DIST_VALUE 96  /* of its value */
#define TG_DIST_WHY 1280  /* of an error, and of tg_dist_agree's why */
typedef struct tg_dist_digest {
    int n; /* fields in use */
    struct {
        char name[TG_DIST_NAME], value[TG_DIST_VALUE];
    } field[TG_DIST_FIELDS];
    char error[TG_DIST_WHY]; /* "": ready; else why this rank cannot start */
} tg_dist_digest;

/* Adds a field, its value printf-style. A longer value keeps its start
 * and a hash of the whole, so that no difference is lost. More than
 * TG_DIST_FIELDS fields, or a longer name, is a bug (TG_ASSERT). */
void tg_dist_digest_add(tg_dist_digest *d, const char *name, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
/* This rank cannot start, for this reason (one line). */
void tg_dist_digest_fail(tg_dist_digest *d, const char *msg);
/* Every rank calls it at the same point of the program. 0 on every rank
 * when every rank is ready and every field is the same on all; otherwise
 * the same one-line explanation on every rank in why (cap bytes) and
 *   -1: a rank could not start: "rank 1 of 4: <its error>" for the first
 *       such rank (and how many more), or the error alone when every rank
 *       gave the same one (with one rank, always: nothing else to say);
 *   -2: the ranks differ: "ranks differ in --hidden: 32 on rank 1 of 4, 24
 *       on rank 0", the first field of the first rank unlike rank 0.
 * A failure of MPI itself ends the job (tg_dist_abort). */
int tg_dist_agree(const tg_dist_digest *d, char *why, size_t cap);

/* ---- summing gradients ------------------------------------------------ */
typedef struct tg_dist_grads tg_dist_grads;

/* How the blocks' gradients are summed (see the top of this file). */
typedef enum tg_dist_reduce {
    TG_DIST_TREE,  /* fixed tree: bitwise for N a power of two dividing G */
    TG_DIST_CHAIN, /* block order: bitwise for every N dividing G */
    TG_DIST_RING   /* MPI_Allreduce: not bitwise across N */
} tg_dist_reduce;
/* "tree", "chain", "ring" */
const char *tg_dist_reduce_name(tg_dist_reduce how);
/* true when the tree can be cut between this many ranks (a power of 2) */
bool tg_dist_tree_fits(int ranks);

/* Sums the gradients of ps over `blocks` blocks spread evenly over the
 * ranks, along the tree, then multiplies by scale (1.0 / blocks: the mean
 * of per-block mean losses). blocks must be a multiple of the number of
 * ranks. bucket_bytes: size of one message (0: 4 MB). Flattens ps. NULL
 * after reporting an error. tg_dist_grads_new_reduce sums another way;
 * the tree on a number of ranks that is not a power of two, and the ring
 * on one rank, fall back to the chain and the tree. */
tg_dist_grads *tg_dist_grads_new(tg_params *ps, int blocks, double scale,
                                 size_t bucket_bytes);
tg_dist_grads *tg_dist_grads_new_reduce(tg_params *ps, int blocks,
                                        double scale, size_t bucket_bytes,
                                        tg_dist_reduce how);
void tg_dist_grads_free(tg_dist_grads *g);
/* The number of blocks this rank computes per step (blocks / size). */
int tg_dist_grads_local(const tg_dist_grads *g);
/* The way the sums are made, after any fallback. */
tg_dist_reduce tg_dist_grads_reduce(const tg_dist_grads *g);
/* Before the backward of this rank's k-th block (k = 0 .. local-1): zeroes
 * the gradients; before the last, also starts sending buckets as backward
 * completes them. */
void tg_dist_grads_begin(tg_dist_grads *g, int k);
/* After that backward. For blocks before the last it keeps the gradient;
 * after the last it completes the sum, and every rank's parameters then
 * hold the same summed and scaled gradient. 0 or -1 (a block skipped, or
 * an MPI failure). */
int tg_dist_grads_end(tg_dist_grads *g);

/* What the last steps cost: seconds spent waiting for messages after
 * backward ended (communication that backward did not hide), seconds of
 * messages in flight while backward ran (hidden), and bytes sent (the
 * ring: those a ring all-reduce sends; MPI does not say). Reset by
 * reading. */
typedef struct tg_dist_stats {
    double wait_s, overlap_s;
    double bytes_sent;
    int steps;
} tg_dist_stats;
tg_dist_stats tg_dist_grads_stats(tg_dist_grads *g);

#ifdef __cplusplus
}
#endif

#endif
