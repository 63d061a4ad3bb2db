/*
 * tensor/threads.c - how many threads the parallel kernels use, and the
 * governor that uses one when the machine is too busy for more (the why
 * and the rule are in tensor/tensor.h).
 *
 * What it measures: the second field of /proc/thread-self/schedstat, the
 * nanoseconds this thread spent runnable but waiting for a CPU. Spinning
 * OpenMP threads do not wait in a run queue, so an idle machine shows
 * (almost) none, whatever the wait policy; three busy threads on two
 * cores show about a third of the time.
 */
#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif

#define PERIOD_NS 20000000LL   /* look at most every 20 ms               */
#define QUICK_NS 10000000LL    /* at the start and in a probe: 10 ms      */
#define WAIT_FRACTION 0.05     /* more run-queue wait than this: busy    */
#define BACKOFF_MIN_NS 1000000000LL
#define BACKOFF_MAX_NS 8000000000LL

/* Per thread, as what they govern is: OpenMP's thread count
 * (omp_set_num_threads sets the caller's) for the parallel regions this
 * thread starts, and this thread's wait for a CPU. */
static _Thread_local int asked = 0; /* tg_set_num_threads; 0: OpenMP's default */
static _Thread_local int in_use = 0;
static _Thread_local int governor = -1; /* -1: TG_GOVERNOR not read yet */
static _Thread_local long long last_ns, backoff = BACKOFF_MIN_NS;
static _Thread_local bool probing, started;

#ifdef _OPENMP /* the governor's readings: nothing to govern without */
static _Thread_local long long last_wait, probe_at;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* nanoseconds this thread has waited for a CPU, or -1 if unknown */
static long long wait_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f)
        return -1;
    unsigned long long run, wait;
    int n = fscanf(f, "%llu %llu", &run, &wait);
    fclose(f);
    return n == 2 ? (long long)wait : -1;
}

/* runnable tasks on the machine other than this thread (the fourth field
 * of /proc/loadavg counts the runnable ones, this thread included), or -1 */
static int others_running(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return -1;
    double a, b, c;
    int running, total;
    int n = fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total);
    fclose(f);
    return n == 5 ? running - 1 : -1;
}
#endif

static void use(int n)
{
    in_use = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

static void read_env(void)
{
    if (governor < 0) {
        const char *v = getenv("TG_GOVERNOR");
        governor = !(v && !strcmp(v, "0"));
    }
}

void tg_set_num_threads(int n)
{
    asked = n > 0 ? n : 1;
    probing = false;
    backoff = BACKOFF_MIN_NS;
    last_ns = 0;
    started = false;
    read_env();
#ifdef _OPENMP
    /* Called before the first parallel region (as the tools do), no
     * thread of ours is running but this one: the runnable count says how
     * many cores others keep busy now. Start with what is left, and let
     * the probes find out when more comes free. */
    int others = governor && asked > 1 ? others_running() : -1;
    int free_cpus = omp_get_num_procs() - (others > 0 ? others : 0);
    if (others > 0 && free_cpus < asked) {
        use(free_cpus > 1 ? free_cpus : 1);
        probe_at = now_ns() + BACKOFF_MIN_NS;
        return;
    }
#endif
    use(asked);
}

int tg_get_num_threads(void)
{
#ifdef _OPENMP
    return asked ? asked : omp_get_max_threads();
#else
    return 1;
#endif
}

int tg_threads_in_use(void)
{
#ifdef _OPENMP
    return in_use ? in_use : omp_get_max_threads();
#else
    return 1;
#endif
}

bool tg_set_thread_governor(bool on)
{
    read_env();
    bool old = governor;
    governor = on;
    if (!on && asked)
        use(asked); /* back to what was asked for */
    return old;
}

bool tg_thread_governor(void)
{
    read_env();
    return governor;
}

void tg_threads_checkpoint(void)
{
#ifdef _OPENMP
    read_env();
    if (!governor)
        return;
    int want = tg_get_num_threads();
    if (want <= 1)
        return;
    long long t = now_ns();
    /* the first look and a probe are short: both run on every thread of
     * a possibly busy machine */
    long long period = (probing || !started) ? QUICK_NS : PERIOD_NS;
    if (last_ns && t - last_ns < period)
        return;
    long long w = wait_ns();
    if (w < 0) {
        governor = 0; /* no schedstat on this system: nothing to go by */
        return;
    }
    bool first = last_ns == 0;
    double busy = first ? 0 : (double)(w - last_wait) / (double)(t - last_ns);
    last_ns = t;
    last_wait = w;
    if (first) {
        if (!in_use)
            in_use = want;
        return;
    }
    started = true;
    int cur = tg_threads_in_use();
    if (cur > 1 && busy > WAIT_FRACTION) {
        /* waiting for CPUs: one thread until the next probe; a failed
         * probe waits twice as long before the next */
        if (probing && backoff < BACKOFF_MAX_NS)
            backoff *= 2;
        probing = false;
        use(1);
        probe_at = t + backoff;
    } else if (cur > 1 && probing) {
        probing = false; /* the probe went well: stay */
        backoff = BACKOFF_MIN_NS;
    } else if (cur == 1 && t >= probe_at) {
        probing = true;
        use(want);
    }
#endif
}

/* ---- subnormal numbers --------------------------------------------------
 * Gradients that vanish through many time steps end up below 1.2e-38,
 * where x86 arithmetic on floats takes a microcode assist per operation:
 * a GRU trained on a 200-step copy task ran 11 times longer than at 100
 * steps. Flush-to-zero (results) and denormals-are-zero (inputs) make such
 * numbers 0. Set in the thread that loads the library, before any OpenMP
 * thread exists, so every worker inherits it; set again in every worker
 * when changed later. The control register is per thread, and so is the
 * setting: a thread created later inherits its creator's register
 * (pthread_create copies the floating-point environment), and
 * tg_set_flush_denormals changes the calling thread and its OpenMP
 * workers only. */
static bool flush_default;                 /* read when the library loads */
static _Thread_local int flushing = -1;    /* -1: as inherited */

static void set_flush_here(bool on)
{
#ifdef HAVE_MXCSR
    unsigned csr = _mm_getcsr();
    csr = on ? csr | 0x8040u : csr & ~0x8040u; /* FTZ | DAZ */
    _mm_setcsr(csr);
#else
    (void)on;
#endif
}

bool tg_flush_denormals(void)
{
    if (flushing >= 0)
        return flushing;
#ifdef HAVE_MXCSR
    return (_mm_getcsr() & 0x8040u) == 0x8040u;
#else
    return flush_default;
#endif
}

bool tg_set_flush_denormals(bool on)
{
    bool old = tg_flush_denormals();
    flushing = on;
    set_flush_here(on);
#ifdef _OPENMP
    int n = omp_get_max_threads();
#pragma omp parallel num_threads(n)
    set_flush_here(on); /* each thread its own control register */
#endif
    return old;
}

void tg_threads_init_(void)
{
    const char *v = getenv("TG_FLUSH_DENORMALS");
    flush_default = !(v && !strcmp(v, "0"));
    flushing = flush_default;
    set_flush_here(flush_default); /* before any thread: all inherit it */
}
