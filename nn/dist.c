/*
 * nn/dist.c - data-parallel training over MPI (see nn/dist.h): starting
 * and ending MPI, the ranks, a crash on one rank, and the small exchanges
 * (broadcast, gather, ordered sums of a few numbers, a ping-pong). The
 * gradient sums are in nn/dist_grads.c, the agreement before the work in
 * nn/dist_agree.c.
 *
 * Without MPI (TG_HAVE_MPI undefined) everything here is one rank.
 */
#include "nn/dist_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double tg_dist_now(void)
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
bool tg_dist_mpi_on(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    if (up)
        MPI_Finalized(&down);
    return up && !down;
}

int tg_dist_mpi_check(int rc, const char *what)
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
    if (tg_dist_mpi_on())
        return 0;
    for (size_t k = 0; k < N_FATAL; k++)
        sigaction(fatal_signals[k], NULL, &before_mpi[k]);
    int provided = 0;
    if (tg_dist_mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED,
                                          &provided), "MPI_Init_thread") < 0)
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
    if (started_here && tg_dist_mpi_on())
        MPI_Finalize();
#endif
    started_here = false;
}

int tg_dist_rank(void)
{
#ifdef TG_HAVE_MPI
    int r = 0;
    if (tg_dist_mpi_on())
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
    if (tg_dist_mpi_on())
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
    if (tg_dist_mpi_on())
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
    if (!tg_dist_mpi_on() || tg_dist_size() == 1)
        return 0;
    char *p = buf;
    while (bytes > 0) { /* counts are ints: 1 GB at a time */
        int n = bytes > (1u << 30) ? 1 << 30 : (int)bytes;
        if (tg_dist_mpi_check(MPI_Bcast(p, n, MPI_BYTE, root,
                                        MPI_COMM_WORLD), "MPI_Bcast") < 0)
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
    if (tg_dist_mpi_on() && tg_dist_size() > 1)
        return tg_dist_mpi_check(MPI_Gather(mine, (int)bytes, MPI_BYTE, all,
                                            (int)bytes, MPI_BYTE, root,
                                            MPI_COMM_WORLD), "MPI_Gather");
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
    if (tg_dist_mpi_on() && N > 1 &&
        tg_dist_mpi_check(MPI_Allgather(mine, m, MPI_DOUBLE, all, m,
                                        MPI_DOUBLE, MPI_COMM_WORLD),
                          "MPI_Allgather") < 0)
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
    if (tg_dist_mpi_on() && tg_dist_size() > 1 &&
        tg_dist_mpi_check(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX,
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
    if (!tg_dist_mpi_on() || N == 1)
        return 0;
    if (chunk > INT32_MAX) {
        tg_error("dist_allgather", "%lld numbers per rank: at most 2^31",
                 (long long)chunk);
        return -1;
    }
    for (int64_t o = 0; o < outer; o++)
        if (tg_dist_mpi_check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL,
                                            buf + o * N * chunk, (int)chunk,
                                            TG_MPI_REAL, MPI_COMM_WORLD),
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
    if (!tg_dist_mpi_on() || tg_dist_size() < 2 || reps < 1 ||
        bytes > (1u << 30))
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
