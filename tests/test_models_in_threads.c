/*
 * tests/test_models_in_threads.c - independent models trained in parallel
 * threads give, bit for bit, what each gives trained alone (README,
 * "Threads": every thread has its own tape, arena, modes, generator and
 * error state).
 *
 * Each run trains a character model (its own cell, sizes and seed) for a
 * few steps of truncated BPTT with Adam and clipping, evaluates with grad
 * disabled every third step, adds a shared read-only tensor to its
 * logits, and makes one deliberate mistake that its own error handler
 * must see. The runs go once alone, one after the other, then together
 * in threads started at one barrier; losses, gradient norms, the final
 * parameters and the errors seen must be the same.
 *
 * make tsan builds this file and the library with -fsanitize=thread and
 * runs it (without OpenMP: GCC's libgomp is not instrumented for
 * ThreadSanitizer, and its barriers would be reported as races).
 * Before the state was per thread, two such threads crashed in 5 runs
 * of 6 and the sixth summed gradients to 7e37 instead of 5780.
 */
#include "harness.h"
#include "nn/charlm.h"
#include "nn/optim.h"
#include "ops/ops.h"

#include <pthread.h>

#define STEPS 9
#define MAX_THREADS 4

typedef struct run {
    /* what to train */
    const tg_cell_type *cell;
    int vocab, embed, hidden, layers, T, B;
    uint64_t seed;
    const tg_tensor *shared; /* [vocab], read by every run */
    /* what came out */
    double loss[STEPS], norm[STEPS], eval[STEPS];
    tg_real *params; /* every parameter's numbers, in list order */
    int64_t nparams;
    int errors_seen;         /* by this thread's handler */
    unsigned long counted;   /* tg_error_count() at the end */
    char last_error[160];
    bool failed;
    pthread_barrier_t *start; /* NULL: alone */
} run;

static void on_error(const char *op, const char *msg, void *ud)
{
    (void)op;
    (void)msg;
    ((run *)ud)->errors_seen++;
}

/* tokens and targets of step s, from the run's own generator */
static void batch(tg_rng *rng, const run *r, int64_t *tok, int64_t *tgt)
{
    for (int i = 0; i < r->T * r->B; i++) {
        tok[i] = (int64_t)tg_rng_below(rng, (uint64_t)r->vocab);
        tgt[i] = (int64_t)tg_rng_below(rng, (uint64_t)r->vocab);
    }
}

static void *train(void *arg)
{
    run *r = arg;
    tg_set_error_handler(on_error, r);
    if (r->start)
        pthread_barrier_wait(r->start);
    tg_manual_seed(r->seed); /* this thread's generator: init and dropout */
    tg_charlm *m = tg_charlm_new(r->cell, r->vocab, r->embed, r->hidden,
                                 r->layers, 0.25, NULL);
    tg_optim *opt = tg_adam_new(&m->params, 3e-3, 0.9, 0.999, 1e-8, 0);
    tg_rng data;
    tg_rng_seed(&data, r->seed + 1);
    int64_t tok[512], tgt[512];
    tg_tensor *keep[TG_CELL_MAX_STATE] = {NULL};
    for (int s = 0; s < STEPS && !r->failed; s++) {
        batch(&data, r, tok, tgt);
        tg_optim_zero_grad(opt);
        tg_rnn_out out;
        tg_tensor *logits = tg_charlm_forward(m, tok, r->T, r->B,
                                              s ? keep : NULL, true, NULL,
                                              &out);
        tg_tensor *loss = tg_cross_entropy(tg_add(logits, (tg_tensor *)r->shared),
                                           tgt, TG_MEAN);
        if (!loss || tg_backward(loss) < 0) {
            r->failed = true;
            break;
        }
        r->loss[s] = tg_item(loss);
        r->norm[s] = tg_clip_grad_norm(&m->params, 1.0);
        tg_optim_step(opt);
        tg_rnn_keep_state(m->rnn, &out, keep);
        if (s == (int)(r->seed % STEPS)) /* the mistake, at its own step */
            tg_add(logits, tg_zeros(TG_SHAPE(r->vocab + 1)));
        tg_tape_reset();
        if (s % 3 == 2) { /* evaluation: no tape for a while */
            bool was = tg_set_grad_enabled(false);
            tg_rnn_out ev;
            tg_tensor *l = tg_cross_entropy(
                tg_charlm_forward(m, tok, r->T, r->B, NULL, false, NULL, &ev),
                tgt, TG_MEAN);
            r->eval[s] = l ? tg_item(l) : (double)NAN;
            r->failed |= tg_tape_size() != 0;
            tg_set_grad_enabled(was);
            tg_tape_reset();
        }
    }
    r->nparams = tg_params_numel(&m->params);
    r->params = tg_xmalloc((size_t)r->nparams * sizeof(tg_real));
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&m->params); i++) {
        const tg_tensor *t = tg_params_at(&m->params, i)->tensor;
        memcpy(r->params + at, t->data, (size_t)t->numel * sizeof(tg_real));
        at += t->numel;
    }
    r->counted = tg_error_count();
    snprintf(r->last_error, sizeof r->last_error, "%s", tg_last_error());
    for (int k = 0; k < TG_CELL_MAX_STATE; k++)
        tg_tensor_free(keep[k]);
    tg_optim_free(opt);
    tg_charlm_free(m);
    /* no tg_tape_free_all: a thread's tape and arena go when it ends
     * (under make asan, a leak here fails the test) */
    return NULL;
}

static const run configs[MAX_THREADS] = {
    {.cell = &tg_lstm_cell, .vocab = 13, .embed = 6, .hidden = 10,
     .layers = 2, .T = 7, .B = 3, .seed = 11},
    {.cell = &tg_gru_cell, .vocab = 17, .embed = 5, .hidden = 12,
     .layers = 1, .T = 9, .B = 2, .seed = 23},
    {.cell = &tg_rnn_tanh_cell, .vocab = 11, .embed = 4, .hidden = 8,
     .layers = 3, .T = 5, .B = 4, .seed = 31},
    /* large enough for OpenMP's parallel loops in the ops (not under
     * make tsan, built without OpenMP) */
    {.cell = &tg_lstm_cell, .vocab = 70, .embed = 16, .hidden = 64,
     .layers = 1, .T = 16, .B = 32, .seed = 47},
};

static void run_free(run *r)
{
    free(r->params);
    r->params = NULL;
}

static void expect_same(const run *alone, const run *together, int k)
{
    ck_assert_msg(!alone->failed && !together->failed, "run %d failed (%s)",
                  k, together->last_error);
    for (int s = 0; s < STEPS; s++) {
        ck_assert_msg(alone->loss[s] == together->loss[s],
                      "run %d, step %d: loss %.9g alone, %.9g in a thread", k,
                      s, alone->loss[s], together->loss[s]);
        ck_assert_msg(alone->norm[s] == together->norm[s],
                      "run %d, step %d: gradient norm %.9g alone, %.9g in a "
                      "thread", k, s, alone->norm[s], together->norm[s]);
        ck_assert(alone->eval[s] == together->eval[s] ||
                  (isnan(alone->eval[s]) && isnan(together->eval[s])));
    }
    ck_assert_int_eq(alone->nparams, together->nparams);
    ck_assert_msg(!memcmp(alone->params, together->params,
                          (size_t)alone->nparams * sizeof(tg_real)),
                  "run %d: the trained parameters differ", k);
    /* its own error, once, whatever the others did */
    ck_assert_int_eq(together->errors_seen, 1);
    ck_assert_int_eq(together->counted, 1);
    ck_assert_msg(strstr(together->last_error, "add: shapes"), "%s",
                  together->last_error);
}

/* n runs together (configs[first .. first + n - 1]) against each alone */
static void check_parallel(int first, int n, int repeat)
{
    tg_tensor *shared[MAX_THREADS];
    run alone[MAX_THREADS], together[MAX_THREADS];
    for (int k = 0; k < n; k++) {
        const run *c = &configs[first + k];
        shared[k] = tg_tensor_new(TG_SHAPE(c->vocab));
        tg_rng r;
        tg_rng_seed(&r, 5);
        tg_fill_uniform_(shared[k], &r, -0.5, 0.5);
        alone[k] = *c;
        alone[k].shared = shared[k];
        train(&alone[k]);
        tg_set_error_handler(NULL, NULL); /* (train installed one here) */
    }
    for (int rep = 0; rep < repeat; rep++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        pthread_t th[MAX_THREADS];
        for (int k = 0; k < n; k++) {
            together[k] = configs[first + k];
            together[k].shared = shared[k];
            together[k].start = &start;
            ck_assert_int_eq(pthread_create(&th[k], NULL, train, &together[k]),
                             0);
        }
        for (int k = 0; k < n; k++)
            pthread_join(th[k], NULL);
        pthread_barrier_destroy(&start);
        for (int k = 0; k < n; k++) {
            expect_same(&alone[k], &together[k], first + k);
            run_free(&together[k]);
        }
    }
    for (int k = 0; k < n; k++) {
        run_free(&alone[k]);
        tg_tensor_free(shared[k]);
    }
}

START_TEST(three_models_in_three_threads)
{
    check_parallel(0, 3, 3);
}
END_TEST

START_TEST(two_threads_one_of_them_large)
{
    check_parallel(2, 2, 1);
}
END_TEST

/* the same model twice at once, sharing one read-only tensor */
START_TEST(one_model_twice_at_once)
{
    tg_tensor *shared = tg_tensor_new(TG_SHAPE(13));
    tg_fill_(shared, 0.25);
    run a = configs[0], b = configs[0];
    a.shared = b.shared = shared;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    a.start = b.start = &start;
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, train, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, train, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&start);
    expect_same(&a, &b, 0);
    run_free(&a);
    run_free(&b);
    tg_tensor_free(shared);
}
END_TEST

/* modes are per thread: grad disabled here leaves another thread's
 * recording alone, and the other way round */
typedef struct mode_probe {
    pthread_barrier_t *sync;
    bool grad_seen;
    int64_t tape_seen;
} mode_probe;

static void *record_one_op(void *arg)
{
    mode_probe *p = arg;
    pthread_barrier_wait(p->sync); /* the main thread has disabled grad */
    tg_tensor *x = tg_requires_grad(tg_ones(TG_SHAPE(3)));
    tg_tanh(x);
    p->grad_seen = tg_is_grad_enabled();
    p->tape_seen = tg_tape_size();
    return NULL;
}

START_TEST(grad_mode_and_tape_are_per_thread)
{
    pthread_barrier_t sync;
    pthread_barrier_init(&sync, NULL, 2);
    mode_probe p = {&sync, false, -1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, record_one_op, &p), 0);
    tg_set_grad_enabled(false);
    tg_tensor *x = tg_requires_grad(tg_ones(TG_SHAPE(3)));
    tg_tanh(tg_tanh(x));
    pthread_barrier_wait(&sync);
    pthread_join(th, NULL);
    ck_assert(p.grad_seen);          /* its own mode: on */
    ck_assert_int_eq(p.tape_seen, 1); /* its own tape: its one op */
    ck_assert_int_eq(tg_tape_size(), 0); /* ours: nothing recorded */
    tg_set_grad_enabled(true);
}
END_TEST

/* a temporary belongs to the thread that made it: another thread's is
 * refused like one freed by a reset (while its maker still runs) */
typedef struct maker {
    pthread_barrier_t *made, *used;
    tg_tensor *t;
} maker;

static void *make_one(void *arg)
{
    maker *m = arg;
    m->t = tg_full(TG_SHAPE(2, 3), 1.0);
    pthread_barrier_wait(m->made);
    pthread_barrier_wait(m->used); /* alive until the other has tried */
    return NULL;
}

START_TEST(another_threads_temporary_is_refused)
{
    tgt_capture_errors();
    pthread_barrier_t made, used;
    pthread_barrier_init(&made, NULL, 2);
    pthread_barrier_init(&used, NULL, 2);
    maker m = {&made, &used, NULL};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, make_one, &m), 0);
    pthread_barrier_wait(&made);
    tg_tensor *y = tg_sum(m.t);
    pthread_barrier_wait(&used);
    pthread_join(th, NULL);
    ck_assert_ptr_null(y);
    tgt_expect_error("sum: tensor t", "[2, 3] is a temporary of tape generation",
                     "or another thread made it");
    pthread_barrier_destroy(&made);
    pthread_barrier_destroy(&used);
}
END_TEST

/* In inference mode a weight keeps its W^T packed between calls
 * (ops/matmul.c): threads that evaluate one weight at once share that
 * copy - the first to need it makes it under a lock, the others wait for
 * it or read it whole - and get what one thread alone gets. */
typedef struct evaluator {
    tg_tensor *W;
    pthread_barrier_t *start;
    tg_real out[16 * 48];
} evaluator;

static void evaluate_shared(evaluator *e)
{
    bool was = tg_set_inference_mode(true);
    tg_rng r;
    tg_rng_seed(&r, 5);
    for (int k = 0; k < 20; k++) {
        tg_tensor *y = tg_linear(tg_rand(TG_SHAPE(16, 40), &r, -1, 1), e->W,
                                 NULL);
        memcpy(e->out, y->data, sizeof e->out);
        tg_tape_reset();
    }
    tg_set_inference_mode(was);
}

static void *evaluate_thread(void *arg)
{
    evaluator *e = arg;
    pthread_barrier_wait(e->start);
    evaluate_shared(e);
    tg_tape_free_all();
    return NULL;
}

START_TEST(threads_share_a_kept_weight)
{
    tg_rng r;
    tg_rng_seed(&r, 4);
    tg_tensor *W = tg_tensor_new(TG_SHAPE(48, 40));
    tg_fill_uniform_(W, &r, -1, 1);
    static evaluator alone, e[2];
    alone.W = W;
    evaluate_shared(&alone);
    tg_tensor_free(W); /* again from nothing: the threads race to make it */
    W = tg_tensor_new(TG_SHAPE(48, 40));
    tg_rng_seed(&r, 4);
    tg_fill_uniform_(W, &r, -1, 1);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        e[i].W = W;
        e[i].start = &start;
        ck_assert_int_eq(pthread_create(&th[i], NULL, evaluate_thread, &e[i]),
                         0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert(memcmp(e[i].out, alone.out, sizeof alone.out) == 0);
    }
    ck_assert_ptr_nonnull(W->packed);
    pthread_barrier_destroy(&start);
    tg_tensor_free(W);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("models_in_threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300); /* ThreadSanitizer is slow */
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, three_models_in_three_threads);
    tcase_add_test(tc, two_threads_one_of_them_large);
    tcase_add_test(tc, one_model_twice_at_once);
    tcase_add_test(tc, grad_mode_and_tape_are_per_thread);
    tcase_add_test(tc, another_threads_temporary_is_refused);
    tcase_add_test(tc, threads_share_a_kept_weight);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
