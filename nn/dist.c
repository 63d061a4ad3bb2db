/*
 * nn/dist.c - data-parallel training over MPI (see nn/dist.h).
 *
 * Without MPI (TG_HAVE_MPI undefined) everything here is one rank: the
 * gradient sum runs the same block-ordered additions locally, so a run
 * with G blocks gives the same bits with or without MPI.
 *
 * The sum of one step, per bucket b (a range of the gradient block), on
 * rank r of N, holding local blocks 0..m-1 (kept[0..m-2], then the live
 * gradient for the last):
 *
 *   r == 0:  acc = kept[0] (+ kept[1] ... + grad)     -> send to 1
 *   r  > 0:  acc = ((prefix + kept[0]) + ...) + grad  -> send to r + 1
 *   r == N-1: total = acc * scale, into grad          -> send to r - 1
 *   r < N-1: receive total into grad from r + 1       -> send to r - 1
 *
 * Each addition is element by element, so the bits depend on the order
 * of the blocks only. Buckets are started by the grad-ready hook during
 * the last local backward and driven by progress(), which the hook also
 * calls; tg_dist_grads_end waits for what is left.
 */
#include "nn/dist.h"

#include "autograd/tape.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- ranks -------------------------------------------------------------- */

/* Process-wide, as MPI is: tg_dist_init and tg_dist_finalize belong to
 * one thread (the main one), before and after any other uses tapegrad. */
static bool started_here;

bool tg_dist_has_mpi(void)
{
#ifdef TG_HAVE_MPI
    return true;
#else
    return false;
#endif
}

#ifdef TG_HAVE_MPI
#ifdef TG_DOUBLE
#define MPI_REAL_T MPI_DOUBLE
#else
#define MPI_REAL_T MPI_FLOAT
#endif

static bool mpi_on(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    if (up)
        MPI_Finalized(&down);
    return up && !down;
}

/* an MPI call's result: 0, or -1 after reporting it */
static int mpi_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    tg_error("dist", "%s failed: %s", what, msg);
    return -1;
}
#endif

/* A whole number of at least 0 in the environment variable name, or -1. */
static int env_count(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long n = v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end && n >= 0 && n <= (1L << 30) ? (int)n : -1;
}

int tg_dist_launched(int *rank)
{
    /* (Slurm's SLURM_NTASKS is left out: a batch script has it too, with
     * no launcher in sight; SLURM_STEP_NUM_TASKS is set in the tasks of
     * an srun step, whatever its --mpi plugin. srun --mpi=pmi2 also sets
     * PMI_SIZE; with pmix only the SLURM_ variables name the size.) */
    static const char *const vars[][2] = {
        {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"}, /* Open MPI */
        {"PMI_SIZE", "PMI_RANK"},                /* MPICH, Intel MPI, srun */
        {"MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"}, /* MVAPICH2 */
        {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID"}, /* srun, any plugin */
    };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        int n = env_count(vars[i][0]), r = env_count(vars[i][1]);
        if (n >= 1) {
            if (rank)
                *rank = r >= 0 && r < n ? r : 0;
            return n;
        }
    }
    if (rank)
        *rank = 0;
    return 0;
}

#ifdef TG_HAVE_MPI
/* ---- a crash on one rank -------------------------------------------------
 * Open MPI's MPI_Init installs a handler for SIGSEGV, SIGBUS, SIGFPE and
 * SIGABRT that prints a backtrace with functions that allocate: after a
 * heap corruption ("double free or corruption", then abort) it waits
 * forever for malloc's lock, the rank never dies, and the job hangs. Ours
 * replaces it: one line written with write(2) from a buffer made at start
 * (nothing else is safe in a signal handler), then the handler that was
 * there before MPI_Init (the default, or a sanitizer's) takes the signal
 * and the rank ends; mpirun then ends the others. */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define N_FATAL (sizeof fatal_signals / sizeof *fatal_signals)
static struct sigaction before_mpi[N_FATAL];
static char fatal_prefix[64];

static void say(const char *s)
{
    size_t n = strlen(s); /* async-signal-safe, as write is */
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_fatal(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    size_t k = 0;
    while (k < N_FATAL && fatal_signals[k] != sig)
        k++;
    static const char *const names[N_FATAL] = {
        "SIGSEGV (invalid memory access)", "SIGBUS (bus error)",
        "SIGFPE (arithmetic exception)", "SIGILL (illegal instruction)",
        "SIGABRT (aborted)"};
    say(fatal_prefix); /* (if stderr is gone, the signal still ends us) */
    say(k < N_FATAL ? names[k] : "a fatal signal");
    say("; this rank ends, and mpirun ends the others\n");
    if (k < N_FATAL)
        sigaction(sig, &before_mpi[k], NULL);
    else
        signal(sig, SIG_DFL);
    /* A signal that was sent (kill, raise, abort) is sent again, and is
     * delivered to the restored handler when this one returns; a fault
     * happens again when the instruction is run again. */
    if (info->si_code <= 0)
        raise(sig);
}

static void catch_crashes(void)
{
    snprintf(fatal_prefix, sizeof fatal_prefix, "tapegrad: rank %d of %d: ",
             tg_dist_rank(), tg_dist_size());
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < N_FATAL; k++)
        sigaction(fatal_signals[k], &sa, NULL);
}
#endif

int tg_dist_init(int *argc, char ***argv)
{
#ifdef TG_HAVE_MPI
    if (mpi_on())
        return 0;
    for (size_t k = 0; k < N_FATAL; k++)
        sigaction(fatal_signals[k], NULL, &before_mpi[k]);
    int provided = 0;
    if (mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided),
                  "MPI_Init_thread") < 0)
        return -1;
    started_here = true;
    /* errors come back as codes, reported by mpi_check, instead of a
     * silent abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    catch_crashes();
#else
    (void)argc;
    (void)argv;
    int rank, n = tg_dist_launched(&rank);
    if (n > 1) {
        tg_error("dist", "started by a launcher (mpirun) as process %d of %d, "
                 "but this program was built without MPI: each process would "
                 "run alone, and they would write the same files. Build it "
                 "with make MPI=1 (into build/mpi/), or run it without "
                 "mpirun", rank, n);
        return -1;
    }
    started_here = true;
#endif
    return 0;
}

void tg_dist_finalize(void)
{
#ifdef TG_HAVE_MPI
    if (started_here && mpi_on())
        MPI_Finalize();
#endif
    started_here = false;
}

int tg_dist_rank(void)
{
#ifdef TG_HAVE_MPI
    int r = 0;
    if (mpi_on())
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
#else
    return 0;
#endif
}

int tg_dist_size(void)
{
#ifdef TG_HAVE_MPI
    int n = 1;
    if (mpi_on())
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
#else
    return 1;
#endif
}

_Noreturn void tg_dist_abort(int code, const char *msg)
{
    fprintf(stderr, "tapegrad: rank %d: %s\n", tg_dist_rank(), msg);
    fflush(stderr);
#ifdef TG_HAVE_MPI
    if (mpi_on())
        MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

int tg_dist_broadcast(void *buf, size_t bytes, int root)
{
    if (root < 0 || root >= tg_dist_size()) {
        tg_error("dist_broadcast", "root %d is not a rank (0..%d)", root,
                 tg_dist_size() - 1);
        return -1;
    }
#ifdef TG_HAVE_MPI
    if (!mpi_on() || tg_dist_size() == 1)
        return 0;
    char *p = buf;
    while (bytes > 0) { /* counts are ints: 1 GB at a time */
        int n = bytes > (1u << 30) ? 1 << 30 : (int)bytes;
        if (mpi_check(MPI_Bcast(p, n, MPI_BYTE, root, MPI_COMM_WORLD),
                      "MPI_Bcast") < 0)
            return -1;
        p += n;
        bytes -= (size_t)n;
    }
#else
    (void)buf;
    (void)bytes;
#endif
    return 0;
}

int tg_dist_gather(const void *mine, size_t bytes, void *all, int root)
{
    if (root < 0 || root >= tg_dist_size() || bytes > (1u << 30)) {
        tg_error("dist_gather", "root %d of %d ranks, %zu bytes: the root "
                 "must be a rank, and at most 1 GB", root, tg_dist_size(), bytes);
        return -1;
    }
#ifdef TG_HAVE_MPI
    if (mpi_on() && tg_dist_size() > 1)
        return mpi_check(MPI_Gather(mine, (int)bytes, MPI_BYTE, all, (int)bytes,
                                    MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Gather");
#endif
    if (bytes) /* one rank: root is 0 */
        memcpy(all, mine, bytes);
    return 0;
}

int tg_dist_broadcast_params(tg_params *ps, int root)
{
    if (!ps)
        return -1;
    if (!ps->block_data && tg_params_flatten(ps) < 0)
        return -1;
    int rc = tg_dist_broadcast(ps->block_data,
                               (size_t)ps->block_n * sizeof(tg_real), root);
    for (int i = 0; rc == 0 && i < tg_params_count(ps); i++)
        tg_bump_version(tg_params_at(ps, i)->tensor);
    return rc;
}

double tg_dist_sum_ordered(const double *mine, int m, double scale)
{
    int N = tg_dist_size();
    double *all = tg_xmalloc((size_t)(N * m > 0 ? N * m : 1) * sizeof *all);
    memcpy(all, mine, (size_t)m * sizeof *all);
#ifdef TG_HAVE_MPI
    if (mpi_on() && N > 1 &&
        mpi_check(MPI_Allgather(mine, m, MPI_DOUBLE, all, m, MPI_DOUBLE,
                                MPI_COMM_WORLD), "MPI_Allgather") < 0)
        tg_dist_abort(1, "cannot gather the ranks' values");
#endif
    double s = 0;
    for (int i = 0; i < N * m; i++)
        s = i ? s + all[i] : all[i];
    free(all);
    return s * scale;
}

double tg_dist_max(double x)
{
#ifdef TG_HAVE_MPI
    double y = x;
    if (mpi_on() && tg_dist_size() > 1 &&
        mpi_check(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX,
                                MPI_COMM_WORLD), "MPI_Allreduce") < 0)
        tg_dist_abort(1, "cannot reduce over the ranks");
    return y;
#else
    return x;
#endif
}

int tg_dist_allgather_rows(tg_real *buf, int64_t outer, int64_t chunk)
{
#ifdef TG_HAVE_MPI
    int N = tg_dist_size();
    if (!mpi_on() || N == 1)
        return 0;
    if (chunk > INT32_MAX) {
        tg_error("dist_allgather", "%lld numbers per rank: at most 2^31",
                 (long long)chunk);
        return -1;
    }
    for (int64_t o = 0; o < outer; o++)
        if (mpi_check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL,
                                    buf + o * N * chunk, (int)chunk,
                                    MPI_REAL_T, MPI_COMM_WORLD),
                      "MPI_Allgather") < 0)
            return -1;
#else
    (void)buf;
    (void)outer;
    (void)chunk;
#endif
    return 0;
}

#ifdef TG_HAVE_MPI
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
#endif

double tg_dist_pingpong(size_t bytes, int reps)
{
#ifdef TG_HAVE_MPI
    int r = tg_dist_rank();
    if (!mpi_on() || tg_dist_size() < 2 || reps < 1 || bytes > (1u << 30))
        return 0;
    char *buf = tg_xcalloc(bytes ? bytes : 1, 1);
    double *t = tg_xmalloc((size_t)reps * sizeof *t);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < reps; i++) {
        double t0 = MPI_Wtime();
        if (r == 0) {
            MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 7, MPI_COMM_WORLD);
            MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 7, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        } else if (r == 1) {
            MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 7, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 7, MPI_COMM_WORLD);
        }
        t[i] = (MPI_Wtime() - t0) / 2;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = t[reps / 2];
    free(t);
    free(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    return med;
#else
    (void)bytes;
    (void)reps;
    return 0;
#endif
}

/* ---- summing gradients -------------------------------------------------- */

enum { B_WAIT, B_READY, B_SENT, B_DONE }; /* a bucket's state in a step */

struct tg_dist_grads {
    tg_params *ps;
    int blocks, local, rank, size;
    tg_real scale;
    int64_t n;          /* numbers in the block */
    tg_real **kept;     /* local - 1 earlier blocks' gradients */
    tg_real *acc, *pre; /* running sum sent on; prefix received */
    int nb;             /* buckets */
    int64_t bucket;     /* numbers per bucket (the last may be shorter) */
    int *left, *left0;  /* tensors still unfinished per bucket */
    int *state;
    int k;              /* current local block, -1 outside begin..end */
#ifdef TG_HAVE_MPI
    MPI_Request *r_pre, *r_fwd, *r_tot, *r_back;
#endif
    double t_first, wait_s, overlap_s, bytes;
    int steps;
    bool failed;
};

static int64_t lo_of(const tg_dist_grads *g, int b) { return b * g->bucket; }
static int64_t hi_of(const tg_dist_grads *g, int b)
{
    int64_t h = (b + 1) * g->bucket;
    return h < g->n ? h : g->n;
}

/* the sum of bucket b once this rank's part is final and the prefix (on
 * ranks after 0) has arrived */
static void add_local(tg_dist_grads *g, int b)
{
    int64_t lo = lo_of(g, b), hi = hi_of(g, b);
    tg_real *grad = g->ps->block_grad;
    tg_real *acc = g->acc;
    for (int j = 0; j < g->local; j++) {
        const tg_real *x = j < g->local - 1 ? g->kept[j] : grad;
        if (j == 0 && g->rank == 0)
            memcpy(acc + lo, x + lo, (size_t)(hi - lo) * sizeof *acc);
        else {
            const tg_real *y = j == 0 ? g->pre : acc;
            for (int64_t i = lo; i < hi; i++)
                acc[i] = y[i] + x[i];
        }
    }
    if (g->rank == g->size - 1) /* the total: scaled, into every rank's grad */
        for (int64_t i = lo; i < hi; i++)
            grad[i] = acc[i] * g->scale;
}

#ifdef TG_HAVE_MPI
static int send_bucket(tg_dist_grads *g, const tg_real *buf, int b, int to,
                       MPI_Request *req)
{
    int64_t lo = lo_of(g, b), hi = hi_of(g, b);
    g->bytes += (double)(hi - lo) * (double)sizeof(tg_real);
    return mpi_check(MPI_Isend(buf + lo, (int)(hi - lo), MPI_REAL_T, to, b,
                               MPI_COMM_WORLD, req), "MPI_Isend");
}

static int recv_bucket(tg_dist_grads *g, tg_real *buf, int b, int from,
                       MPI_Request *req)
{
    int64_t lo = lo_of(g, b), hi = hi_of(g, b);
    return mpi_check(MPI_Irecv(buf + lo, (int)(hi - lo), MPI_REAL_T, from, b,
                               MPI_COMM_WORLD, req), "MPI_Irecv");
}

static bool done(MPI_Request *r, bool wait, tg_dist_grads *g)
{
    int flag = 0;
    if (*r == MPI_REQUEST_NULL)
        return true;
    int rc = wait ? MPI_Wait(r, MPI_STATUS_IGNORE)
                  : MPI_Test(r, &flag, MPI_STATUS_IGNORE);
    if (mpi_check(rc, wait ? "MPI_Wait" : "MPI_Test") < 0) {
        g->failed = true;
        return true;
    }
    return wait || flag;
}
#endif

/* Moves every bucket as far as it can go; with wait, to the end. */
static void progress(tg_dist_grads *g, bool wait)
{
    (void)wait; /* without MPI there is nothing to wait for */
    for (int b = 0; b < g->nb; b++) {
        if (g->state[b] == B_READY) {
#ifdef TG_HAVE_MPI
            if (g->rank > 0 && !done(&g->r_pre[b], wait, g))
                continue;
#endif
            add_local(g, b);
#ifdef TG_HAVE_MPI
            if (g->rank < g->size - 1) {
                if (send_bucket(g, g->acc, b, g->rank + 1, &g->r_fwd[b]) < 0 ||
                    recv_bucket(g, g->ps->block_grad, b, g->rank + 1,
                                &g->r_tot[b]) < 0)
                    g->failed = true;
                g->state[b] = B_SENT;
            } else {
                if (g->rank > 0 &&
                    send_bucket(g, g->ps->block_grad, b, g->rank - 1,
                                &g->r_back[b]) < 0)
                    g->failed = true;
                g->state[b] = B_DONE;
            }
#else
            g->state[b] = B_DONE;
#endif
        }
#ifdef TG_HAVE_MPI
        if (g->state[b] == B_SENT && done(&g->r_tot[b], wait, g)) {
            if (g->rank > 0 &&
                send_bucket(g, g->ps->block_grad, b, g->rank - 1,
                            &g->r_back[b]) < 0)
                g->failed = true;
            g->state[b] = B_DONE;
        }
#endif
    }
}

static void mark_ready(tg_dist_grads *g, int b)
{
    if (g->state[b] != B_WAIT)
        return;
    g->state[b] = B_READY;
    if (g->t_first == 0)
        g->t_first = now();
}

static void on_ready(tg_tensor *leaf, void *ud)
{
    tg_dist_grads *g = ud;
    const tg_real *base = g->ps->block_data;
    if (!leaf->data || leaf->data < base || leaf->data >= base + g->n)
        return; /* not one of the parameters */
    int64_t off = leaf->data - base;
    int b0 = (int)(off / g->bucket);
    int b1 = (int)((off + (leaf->numel ? leaf->numel : 1) - 1) / g->bucket);
    for (int b = b0; b <= b1 && b < g->nb; b++)
        if (--g->left[b] == 0)
            mark_ready(g, b);
    progress(g, false);
}

tg_dist_grads *tg_dist_grads_new(tg_params *ps, int blocks, double scale,
                                 size_t bucket_bytes)
{
    int N = tg_dist_size();
    if (!ps || blocks < 1 || blocks % N) {
        tg_error("dist_grads", "%d blocks cannot be spread evenly over %d "
                 "ranks: the number of ranks must divide the number of "
                 "blocks", blocks, N);
        return NULL;
    }
    if (!ps->block_data && tg_params_flatten(ps) < 0)
        return NULL;
    tg_dist_grads *g = tg_xcalloc(1, sizeof *g);
    g->ps = ps;
    g->blocks = blocks;
    g->size = N;
    g->rank = tg_dist_rank();
    g->local = blocks / N;
    g->scale = (tg_real)scale;
    g->n = ps->block_n;
    g->k = -1;
    size_t bytes = (size_t)(g->n ? g->n : 1) * sizeof(tg_real);
    g->kept = tg_xcalloc((size_t)g->local, sizeof *g->kept);
    for (int j = 0; j < g->local - 1; j++)
        g->kept[j] = tg_xcalloc_aligned(bytes);
    g->acc = tg_xcalloc_aligned(bytes);
    g->pre = tg_xcalloc_aligned(bytes);
    g->bucket = (int64_t)((bucket_bytes ? bucket_bytes : 4u << 20) /
                          sizeof(tg_real));
    if (g->bucket < 1024)
        g->bucket = 1024;
    if (g->bucket > (1 << 30))
        g->bucket = 1 << 30;
    g->nb = g->n ? (int)((g->n + g->bucket - 1) / g->bucket) : 0;
    int nb = g->nb ? g->nb : 1;
    g->left = tg_xcalloc((size_t)nb, sizeof *g->left);
    g->left0 = tg_xcalloc((size_t)nb, sizeof *g->left0);
    g->state = tg_xcalloc((size_t)nb, sizeof *g->state);
    /* how many tensors overlap each bucket (each tensor counted once) */
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_tensor *t = tg_params_at(ps, i)->tensor;
        int64_t off = t->data - ps->block_data;
        if (off < 0 || off >= g->n)
            continue;
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = tg_params_at(ps, j)->tensor == t;
        if (dup)
            continue;
        int b0 = (int)(off / g->bucket);
        int b1 = (int)((off + (t->numel ? t->numel : 1) - 1) / g->bucket);
        for (int b = b0; b <= b1 && b < g->nb; b++)
            g->left0[b]++;
    }
#ifdef TG_HAVE_MPI
    g->r_pre = tg_xmalloc((size_t)nb * sizeof *g->r_pre);
    g->r_fwd = tg_xmalloc((size_t)nb * sizeof *g->r_fwd);
    g->r_tot = tg_xmalloc((size_t)nb * sizeof *g->r_tot);
    g->r_back = tg_xmalloc((size_t)nb * sizeof *g->r_back);
    for (int b = 0; b < nb; b++)
        g->r_pre[b] = g->r_fwd[b] = g->r_tot[b] = g->r_back[b] =
            MPI_REQUEST_NULL;
#endif
    return g;
}

void tg_dist_grads_free(tg_dist_grads *g)
{
    if (!g)
        return;
    if (g->k >= 0)
        tg_set_grad_ready_hook(NULL, NULL);
    for (int j = 0; j < g->local - 1; j++)
        free(g->kept[j]);
    free(g->kept);
    free(g->acc);
    free(g->pre);
    free(g->left);
    free(g->left0);
    free(g->state);
#ifdef TG_HAVE_MPI
    free(g->r_pre);
    free(g->r_fwd);
    free(g->r_tot);
    free(g->r_back);
#endif
    free(g);
}

int tg_dist_grads_local(const tg_dist_grads *g) { return g ? g->local : 0; }

/* false after an error: the list's block, which the sums read and write,
 * is not the one they were made for (the list was freed) */
static bool block_alive(const char *op, const tg_dist_grads *g)
{
    if (g->ps->block_grad && g->ps->block_n == g->n)
        return true;
    tg_error(op, "the parameter list's flattened block (%lld numbers) is "
             "gone: the list was freed (tg_params_free) while these "
             "gradient sums used it. Free them (tg_dist_grads_free) first",
             (long long)g->n);
    return false;
}

void tg_dist_grads_begin(tg_dist_grads *g, int k)
{
    if (!g)
        return;
    TG_ASSERT(k >= 0 && k < g->local);
    if (!block_alive("dist_grads_begin", g)) {
        g->failed = true;
        g->k = k; /* (end says it again) */
        return;
    }
    g->k = k;
    tg_params_zero_grad(g->ps);
    if (k < g->local - 1)
        return;
    /* the last block: buckets go out as backward finishes them */
    memcpy(g->left, g->left0, (size_t)(g->nb ? g->nb : 1) * sizeof *g->left);
    for (int b = 0; b < g->nb; b++)
        g->state[b] = B_WAIT;
    g->t_first = 0;
#ifdef TG_HAVE_MPI
    for (int b = 0; b < g->nb && g->rank > 0; b++)
        if (recv_bucket(g, g->pre, b, g->rank - 1, &g->r_pre[b]) < 0)
            g->failed = true;
#endif
    tg_set_grad_ready_hook(on_ready, g);
}

int tg_dist_grads_end(tg_dist_grads *g)
{
    if (!g || g->k < 0) {
        tg_error("dist_grads", "end without begin");
        return -1;
    }
    if (!block_alive("dist_grads_end", g)) {
        g->k = -1;
        return -1;
    }
    int k = g->k;
    g->k = -1;
    if (k < g->local - 1) { /* keep it for the ordered sum */
        memcpy(g->kept[k], g->ps->block_grad, (size_t)g->n * sizeof(tg_real));
        return 0;
    }
    tg_set_grad_ready_hook(NULL, NULL);
    double t_end = now();
    if (g->t_first > 0)
        g->overlap_s += t_end - g->t_first;
    /* parameters backward did not reach: their (zero) gradients are final */
    for (int b = 0; b < g->nb; b++)
        mark_ready(g, b);
    progress(g, true);
#ifdef TG_HAVE_MPI
    for (int b = 0; b < g->nb; b++) { /* our sends may still be in flight */
        done(&g->r_fwd[b], true, g);
        done(&g->r_back[b], true, g);
    }
#endif
    g->wait_s += now() - t_end;
    g->steps++;
    if (g->failed) {
        tg_error("dist_grads", "summing the gradients over %d ranks failed",
                 g->size);
        return -1;
    }
    return 0;
}

tg_dist_stats tg_dist_grads_stats(tg_dist_grads *g)
{
    tg_dist_stats s = {0};
    if (!g)
        return s;
    s.wait_s = g->wait_s;
    s.overlap_s = g->overlap_s;
    s.bytes_sent = g->bytes;
    s.steps = g->steps;
    g->wait_s = g->overlap_s = g->bytes = 0;
    g->steps = 0;
    return s;
}
