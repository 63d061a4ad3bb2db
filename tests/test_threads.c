/*
 * tests/test_threads.c - the thread governor (tensor/threads.c).
 *
 * What can be tested without depending on how busy the test machine is:
 * the switches, and that with a busy process on every core the governor
 * goes down to one thread (a quiet machine cannot be promised, so the
 * other direction is not tested). Linux only: where schedstat is missing
 * the governor turns itself off, and the busy test checks just that.
 * Also tg_state_print (nn/state.h), which shows these with the others.
 */
#include "harness.h"
#include "nn/state.h"
#include "ops/ops.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef _OPENMP
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

START_TEST(switches)
{
    bool was = tg_set_thread_governor(false);
    ck_assert(was); /* on by default (TG_GOVERNOR unset in the tests) */
#ifdef _OPENMP
    const int two = 2;
#else
    const int two = 1; /* without OpenMP there is one thread, always */
#endif
    tg_set_num_threads(2);
    ck_assert_int_eq(tg_get_num_threads(), two);
    for (int i = 0; i < 10; i++)
        tg_threads_checkpoint(); /* off: never changes anything */
    ck_assert_int_eq(tg_threads_in_use(), two);
    ck_assert(!tg_set_thread_governor(true));
    tg_set_num_threads(1);
    ck_assert_int_eq(tg_threads_in_use(), 1);
}
END_TEST

START_TEST(busy_machine_gets_one_thread)
{
#ifdef _OPENMP
    int ncpu = omp_get_num_procs();
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f) {
        printf("busy_machine_gets_one_thread: no schedstat here; skipped\n");
        return;
    }
    fclose(f);
    /* asked for on a machine that may be quiet: then the readings, not the
     * start, must find the busy processes started next */
    tg_set_thread_governor(true);
    tg_set_num_threads(ncpu > 1 ? ncpu : 2);
    /* a busy process on every core (they never touch OpenMP) */
    pid_t kids[64];
    int nkids = ncpu < 64 ? ncpu : 64;
    for (int k = 0; k < nkids; k++) {
        kids[k] = fork();
        ck_assert(kids[k] >= 0);
        if (kids[k] == 0) {
            volatile unsigned long x = 0;
            for (;;)
                x++;
        }
    }
    tg_tensor *a = tg_rand(TG_SHAPE(1 << 20), NULL, -1, 1);
    double t0 = now();
    int in_use = tg_threads_in_use();
    /* parallel work between checkpoints, for at most 5 s */
    while (now() - t0 < 5 && (in_use = tg_threads_in_use()) > 1) {
        tg_arena_mark m = tg_arena_get_mark();
        tg_sum(tg_mul(a, a));
        tg_arena_rewind(m);
        tg_threads_checkpoint();
    }
    for (int k = 0; k < nkids; k++) {
        kill(kids[k], SIGKILL);
        waitpid(kids[k], NULL, 0);
    }
    printf("busy machine: %d thread(s) after %.2f s\n", in_use, now() - t0);
    ck_assert_int_eq(in_use, 1);
#endif
}
END_TEST

/* tg_state_print shows each setting as it is now, for this thread */
static char *state_text(void)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    ck_assert_ptr_nonnull(f);
    tg_state_print(f);
    fclose(f);
    return buf;
}

START_TEST(state_print_shows_the_settings)
{
    bool fused = tg_set_fusion(false);
    bool rec = tg_set_grad_enabled(false);
    bool gov = tg_set_thread_governor(false);
    tg_tape_set_step(7);
    char *text = state_text();
    const char *want[] = {"kernel level   ", "fusion         off",
                          "anomaly mode   off", "recording      off",
                          "inference      off", "step tag       7", "governor       off",
                          "subnormals     ", "tape           0 entries"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(text, want[i]), "no '%s' in:\n%s", want[i],
                      text);
    ck_assert(strstr(text, tg_kernels_level()));
    free(text);
    tg_tape_set_step(-1);
    tg_set_fusion(true);
    tg_set_grad_enabled(true);
    tg_set_thread_governor(true);
    text = state_text();
    ck_assert(strstr(text, "fusion         on"));
    ck_assert(strstr(text, "recording      on"));
    ck_assert(strstr(text, "governor       on"));
    free(text);
    tg_set_inference_mode(true); /* recording off with it, back after */
    text = state_text();
    ck_assert(strstr(text, "inference      on"));
    ck_assert(strstr(text, "recording      off"));
    free(text);
    tg_set_inference_mode(false);
    ck_assert(tg_is_grad_enabled());
    tg_set_fusion(fused);
    tg_set_grad_enabled(rec);
    tg_set_thread_governor(gov);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("governor");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, switches);
    tcase_add_test(tc, busy_machine_gets_one_thread);
    tcase_add_test(tc, state_print_shows_the_settings);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
