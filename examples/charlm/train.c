/*
 * examples/charlm/train.c - `charlm train`: the training loop of the
 * PyTorch reference, step for step:
 *
 *   if pos + T + 1 > n: pos = 0, state = zeros     (streams wrap round)
 *   x = rows [pos, pos + T), y = rows [pos + 1, pos + 1 + T); pos += T
 *   logits, state = model(x, detach(state))        (truncated BPTT)
 *   loss = mean cross-entropy over T * B
 *   zero grads; backward; clip the global norm; optimizer step
 *   every --eval-every steps and at the end: validation loss, one line
 *   of text (and of JSON in --log), a checkpoint (and --keep-best's)
 *
 * The carried state lives in persistent tensors (tg_rnn_keep_state): the
 * next step starts from its numbers, but nothing flows back into the
 * previous step, and tg_tape_reset frees everything else of the step.
 *
 * What is never lost: checkpoints are written atomically; a loss or
 * gradient that is not finite (or a loss that has diverged) stops
 * training before the bad numbers can reach a file; Ctrl-C (or SIGTERM) lets the current step finish, saves, and
 * exits with status 130 (143) - also when it comes during an evaluation
 * or a save, the last ones included.
 */
#define _XOPEN_SOURCE 700 /* SA_RESETHAND */
#include "charlm.h"
#include "nn/dist.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

/* Under MPI a signal may come while this rank waits for another that is
 * gone (mpirun ends the job with SIGTERM when a rank dies): say so in one
 * line at once - the wait may never end - then stop as usual if it does. */
static char signal_line[160];
static size_t signal_len;

static void on_signal(int sig)
{
    if (signal_len && !stop_signal) {
        ssize_t w = write(2, signal_line, signal_len);
        (void)w;
    }
    stop_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "42s", "3:07", "1h05m" */
static void duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0))
        s = 0;
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, cap, "%lds", t);
    else if (t < 3600)
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
    else
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
}

/* ---- one run -------------------------------------------------------------- */
typedef struct session {
    cl_run *r;
    const cl_config *c; /* the command line: save, log, threads */
    cl_streams train, val;
    int64_t *rows;            /* [T + 1, B]: a step's input and targets */
    FILE *log;                /* --log: a file, or stdout for "-"; written
                                 with write(2), unbuffered (log_line) */
    FILE *out;                /* the readable lines: stdout, or stderr
                                 when stdout has the JSON */
    bool tty;                 /* stderr is a terminal: a live line */
    char *best_path;          /* --keep-best's file, NULL without */
    double best_val;          /* its validation loss */
    int64_t best_step;
    double t0, elapsed0, last_draw;
    int64_t step0, tokens;    /* at the start of this session; since */
    int64_t saved_step;       /* last step written to c->save, -1: none */
    const char *saved_path;   /* where the last good checkpoint is */
    cl_path_id save_id, best_id; /* the files this run may replace at
                                    --save and its .best (cl_ckpt_save) */
    /* blocks and ranks (nn/dist.h): this rank computes blocks
     * rank * local ... of cfg.blocks; only rank 0 (lead) prints, logs and
     * saves */
    tg_dist_grads *dg;
    int rank, nranks, local;
    bool lead;
    int64_t *block_rows;      /* [T + 1, B / G]: one block's columns */
    double *block_loss;       /* [local] */
} session;

static double elapsed(const session *S) { return S->elapsed0 + now_s() - S->t0; }

static bool budget_spent(const session *S)
{
    const cl_config *c = &S->r->cfg;
    return S->r->step >= c->steps || (c->minutes > 0 && elapsed(S) >= 60 * c->minutes);
}

static double tokens_per_s(const session *S)
{
    double dt = now_s() - S->t0;
    return dt > 0 ? (double)S->tokens / dt : 0;
}

static void clear_line(const session *S)
{
    if (S->tty)
        fputs("\r\033[K", stderr);
}

/* "/500" (the step budget, if there is one) and the time to go ("-" if
 * unknown) */
static void progress_text(const session *S, char *total, size_t cap_total,
                          char *eta, size_t cap_eta)
{
    const cl_run *r = S->r;
    double left = (double)INFINITY, t = now_s();
    int64_t done = r->step - S->step0;
    total[0] = 0;
    if (r->cfg.steps < (int64_t)1e12) {
        snprintf(total, cap_total, "/%lld", (long long)r->cfg.steps);
        if (done > 0)
            left = (double)(r->cfg.steps - r->step) * (t - S->t0) / (double)done;
    }
    if (r->cfg.minutes > 0 && 60 * r->cfg.minutes - elapsed(S) < left)
        left = 60 * r->cfg.minutes - elapsed(S);
    if (isfinite(left))
        duration(eta, cap_eta, left);
    else
        snprintf(eta, cap_eta, "-");
}

/* the live line: step, loss since the last evaluation, last val loss,
 * speed, time to go */
static void draw(session *S)
{
    double t = now_s();
    if (!S->tty || t - S->last_draw < 0.1)
        return;
    S->last_draw = t;
    const cl_run *r = S->r;
    char total[32], loss[32] = "-", val[32] = "-", eta[32];
    progress_text(S, total, sizeof total, eta, sizeof eta);
    if (isfinite(r->val_loss) && r->val_loss > 0)
        snprintf(val, sizeof val, "%.4f", r->val_loss);
    if (r->loss_count) /* the mean since the last evaluation */
        snprintf(loss, sizeof loss, "%.4f", r->loss_sum / (double)r->loss_count);
    fprintf(stderr, "\r\033[Kstep %lld%s  loss %s  val %s  %.0f tok/s  ETA %s",
            (long long)r->step, total, loss, val, tokens_per_s(S), eta);
    fflush(stderr);
}

static bool params_finite(const cl_run *r)
{
    for (int i = 0; i < tg_params_count(&r->model->params); i++) {
        const tg_tensor *t = tg_params_at(&r->model->params, i)->tensor;
        for (int64_t k = 0; k < t->numel; k++)
            if (!isfinite(t->data[k]))
                return false;
    }
    return true;
}

/* the end of the message when training stops on bad numbers */
static const char *kept(const session *S)
{
    static char buf[1200];
    if (S->saved_step >= 0)
        snprintf(buf, sizeof buf, "stopped without saving; the last good "
                 "checkpoint %s (step %lld) is kept. Try a smaller --lr or a "
                 "--clip", S->saved_path, (long long)S->saved_step);
    else
        snprintf(buf, sizeof buf, "stopped before any checkpoint was saved. "
                 "Try a smaller --lr or a --clip");
    return buf;
}

/* A loss that is not finite, or so large that the model has diverged
 * (1000 times the loss of a uniform guess, ln V nats: a probability of
 * e^-4700 for the right character when V = 113), stops training before
 * the bad numbers can be saved. true with the message set. */
static bool bad_loss(const session *S, int64_t step, const char *which,
                     double loss)
{
    double uniform = log((double)S->r->vocab.n > 2 ? (double)S->r->vocab.n : 2.0);
    if (isfinite(loss) && loss <= 1000 * uniform)
        return false;
    char what[64];
    if (isfinite(loss))
        snprintf(what, sizeof what, "%.3g: training has diverged", loss);
    else
        snprintf(what, sizeof what, "%s", isnan(loss) ? "NaN" : "infinite");
    cli_fail("step %lld: the %s loss is %s; %s", (long long)step, which, what,
            kept(S));
    return true;
}

/* Every rank calls it at the same step: the carried states of all
 * streams are gathered (each rank computed its own blocks'), rank 0
 * writes, and every rank learns whether that worked. */
static int save(session *S)
{
    cl_run *r = S->r;
    if (!params_finite(r))
        return cli_fail("step %lld: the parameters are no longer finite; %s",
                       (long long)r->step, kept(S));
    r->elapsed_s = elapsed(S);
    int64_t L = r->cfg.layers, Bl = r->cfg.batch / S->nranks;
    for (int k = 0; S->nranks > 1 && k < r->cell->nstate; k++)
        if (r->state[k] && tg_dist_allgather_rows(r->state[k]->data, L,
                                                  Bl * r->cfg.hidden) < 0)
            tg_dist_abort(1, "cannot gather the carried states");
    double failed = 0;
    if (S->lead && cl_ckpt_save(r, S->c->save, &S->save_id) < 0)
        failed = 1;
    if (tg_dist_max(failed) > 0)
        return S->lead ? -1 : cli_fail("rank 0 could not save %s", S->c->save);
    S->saved_step = r->step;
    S->saved_path = S->c->save;
    return 0;
}

/* --keep-best: the checkpoint just saved is the best so far; rank 0
 * writes it (atomically, as every checkpoint) and every rank learns
 * whether that worked. */
static int save_best(session *S)
{
    double failed = 0;
    if (S->lead && cl_ckpt_save(S->r, S->best_path, &S->best_id) < 0)
        failed = 1;
    if (tg_dist_max(failed) > 0)
        return S->lead ? -1 : cli_fail("rank 0 could not save %s", S->best_path);
    S->best_val = S->r->val_loss;
    S->best_step = S->r->step;
    return 0;
}

/* CKPT with ".best" before its extension: model.safetensors ->
 * model.best.safetensors, model -> model.best */
static char *best_name(const char *save)
{
    size_t n = strlen(save);
    char *p = tg_xmalloc(n + 6);
    const char *slash = strrchr(save, '/'), *base = slash ? slash + 1 : save;
    const char *dot = strrchr(base, '.');
    size_t at = dot && dot > base ? (size_t)(dot - save) : n;
    snprintf(p, n + 6, "%.*s.best%s", (int)at, save, save + at);
    return p;
}

/* The best validation loss so far: that of the .best checkpoint when a
 * run resumes (a fresh run may not replace one without --overwrite). */
static int best_start(session *S)
{
    const cl_config *c = S->c;
    S->best_val = (double)INFINITY;
    S->best_step = -1;
    if (!c->keep_best)
        return 0;
    S->best_path = best_name(c->save);
    cl_path_id_get(S->best_path, &S->best_id);
    struct stat st;
    if (stat(S->best_path, &st) != 0)
        return 0;
    if (!S_ISREG(st.st_mode))
        return cli_fail("--keep-best: %s is not a regular file, and charlm "
                       "replaces only files: give another --save",
                       S->best_path);
    int64_t step;
    bool ckpt = cl_ckpt_peek(S->best_path, &step);
    if (!c->resume && !c->overwrite)
        return cli_fail("--keep-best: %s already exists%s: choose another "
                       "--save, or pass --overwrite to replace it",
                       S->best_path, ckpt ? " (a checkpoint of another run)" : "");
    if (!c->resume)
        return 0;
    if (!ckpt)
        return cli_fail("--keep-best: %s exists and is not a charlm checkpoint: "
                       "move it away, or give another --save", S->best_path);
    cl_run b;
    if (cl_ckpt_load(S->best_path, &b, false) < 0)
        return cli_fail("--keep-best: %s", cli_error());
    if (isfinite(b.val_loss)) {
        S->best_val = b.val_loss;
        S->best_step = b.step;
    }
    cl_run_free(&b);
    return 0;
}

/* a failure of the library on one rank: every rank must stop, now */
static int rank_fail(const session *S)
{
    if (S->nranks > 1)
        tg_dist_abort(1, cli_error());
    return -1;
}

/* c += d for counters (d >= 0), stopping at INT64_MAX instead of
 * overflowing; checkpoints refuse counters anywhere near it. */
static void count_up(int64_t *c, int64_t d)
{
    *c = *c > INT64_MAX - d ? INT64_MAX : *c + d;
}

/* One step: this rank's blocks, one after the other, their gradients
 * summed in block order over the ranks (nn/dist.h), one optimizer step.
 * 0, or -1 with a message (a non-finite loss or gradient) - on every
 * rank at the same step, as all of them see the same summed numbers. */
static int step(session *S)
{
    cl_run *r = S->r;
    int64_t T = r->cfg.seq, B = r->cfg.batch, n = r->step + 1;
    int64_t G = r->cfg.blocks, Bb = B / G, H = r->cfg.hidden, L = r->cfg.layers;
    int ns = r->cell->nstate;
    /* pos + T + 1 > n, written so that no pos can overflow it (cl_split
     * made n >= T + 1) */
    if (r->pos < 0 || r->pos > S->train.n - T - 1) { /* wrap, from zeros */
        r->pos = 0;
        r->has_state = false;
    }
    cl_streams_rows(&S->train, r->pos, T + 1, S->rows);
    r->pos += T;
    for (int k = 0; k < ns; k++)
        if (!r->state[k])
            r->state[k] = tg_tensor_new(TG_SHAPE(L, B, H));
    /* dropout: one generator for one block (as before blocks existed);
     * with several, block j draws from its own, seeded from the run's */
    uint64_t seed = G > 1 ? tg_rng_next(&r->rng) : 0;
    for (int k = 0; k < S->local; k++) {
        int64_t j = (int64_t)S->rank * S->local + k; /* the block */
        for (int64_t t = 0; t <= T; t++)
            memcpy(S->block_rows + t * Bb, S->rows + t * B + j * Bb,
                   (size_t)Bb * sizeof *S->rows);
        tg_tensor *s0[TG_CELL_MAX_STATE];
        for (int i = 0; i < ns; i++)
            s0[i] = tg_view_slice(r->state[i], 1, j * Bb, (j + 1) * Bb, 1);
        tg_rng own, *rng = &r->rng;
        if (G > 1) {
            tg_rng_seed(&own, seed + 0x9E3779B97F4A7C15u * (uint64_t)(j + 1));
            rng = &own;
        }
        tg_dist_grads_begin(S->dg, k);
        tg_rnn_out out;
        cl_lib_clear();
        tg_tensor *logits = tg_charlm_forward(r->model, S->block_rows, T, Bb,
                                              r->has_state ? s0 : NULL, true,
                                              rng, &out);
        tg_tensor *loss = tg_cross_entropy(logits, S->block_rows + Bb, TG_MEAN);
        if (!loss || tg_backward(loss) < 0 || tg_dist_grads_end(S->dg) < 0) {
            cli_fail("step %lld: %s", (long long)n, cl_lib_error());
            return rank_fail(S);
        }
        S->block_loss[k] = tg_item(loss);
        for (int i = 0; i < ns; i++) /* the block's streams carry on */
            tg_copy_(s0[i], out.state[i]);
        tg_tape_reset();
    }
    double lv = tg_dist_sum_ordered(S->block_loss, S->local, 1.0 / (double)G);
    if (bad_loss(S, n, "training", lv))
        return -1;
    /* clip <= 0: the norm is still computed (for the log), nothing clipped */
    double gn = tg_clip_grad_norm(&r->model->params,
                                  r->cfg.clip > 0 ? r->cfg.clip : (double)INFINITY);
    if (!isfinite(gn))
        return cli_fail("step %lld: the gradient norm is %s; %s", (long long)n,
                       isnan(gn) ? "NaN" : "infinite", kept(S));
    tg_optim_step(r->opt);
    r->has_state = true;
    r->step = n;
    count_up(&r->tokens, T * B);
    count_up(&S->tokens, T * B);
    r->loss_sum += lv;
    count_up(&r->loss_count, 1);
    r->grad_norm = gn;
    return 0;
}

/* One line of --log, written whole or not at all: a write that fails (a
 * full disk, a closed pipe) is cut off again from a --log FILE, so that
 * the log stays whole lines, and -1 with err set ("cannot write --log
 * FILE: No space left on device"). */
static int log_line(session *S, const char *line, char *err, size_t cap)
{
    int fd = fileno(S->log);
    struct stat st;
    bool cut = S->log != stdout && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    size_t n = strlen(line), done = 0;
    fflush(S->log);
    while (done < n) {
        ssize_t w = write(fd, line + done, n - done);
        if (w < 0 && errno == EINTR) /* a signal: it is looked at later */
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (cut && done) { /* at worst the partial line stays */
                int t = ftruncate(fd, st.st_size);
                (void)t;
            }
            snprintf(err, cap, "cannot write --log %s%s: %s", S->c->log,
                     S->log == stdout ? " (standard output)" : "", strerror(e));
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

/* Validation, the JSON line, the checkpoint. A regular evaluation (every
 * --eval-every steps) starts a new train-loss average; the one at the end
 * of a run reports the average so far but leaves it running in the
 * checkpoint, so that a resumed run logs what an uninterrupted one would. */
static int evaluate(session *S, bool regular)
{
    cl_run *r = S->r;
    double val = 0; /* rank 0 evaluates the whole held-out text */
    if (S->lead)
        val = cl_evaluate(r, &S->val);
    if (tg_dist_broadcast(&val, sizeof val, 0) < 0)
        tg_dist_abort(1, "cannot share the validation loss");
    if (bad_loss(S, r->step, "validation", val))
        return -1;
    r->val_loss = val;
    double train = r->loss_count ? r->loss_sum / (double)r->loss_count : (double)NAN;
    char f[6][40];
    cli_shortest(f[0], sizeof f[0], train);
    cli_shortest(f[1], sizeof f[1], val);
    cli_shortest(f[2], sizeof f[2], tokens_per_s(S));
    cli_shortest(f[3], sizeof f[3], elapsed(S));
    cli_shortest(f[4], sizeof f[4], r->cfg.lr);
    cli_shortest(f[5], sizeof f[5], r->grad_norm);
    char line[513];
    snprintf(line, sizeof line - 1, "{\"impl\": \"tapegrad\", \"step\": %lld, "
             "\"train_loss\": %s, \"val_loss\": %s, \"tokens_per_s\": %s, "
             "\"elapsed_s\": %s, \"lr\": %s, \"grad_norm\": %s}",
             (long long)r->step, f[0], f[1], f[2], f[3], f[4], f[5]);
    /* a log that cannot be written stops the run, after the checkpoint:
     * once there is room, --resume goes on logging what an uninterrupted
     * run would, with one line missing, which the message names */
    char log_err[600] = "";
    if (S->log) {
        clear_line(S);
        strcat(line, "\n");
        log_line(S, line, log_err, sizeof log_err);
    }
    if (regular) {
        r->loss_sum = 0;
        r->loss_count = 0;
    }
    if (save(S) < 0)
        return -1;
    bool best = S->best_path && val < S->best_val;
    if (best) {
        if (save_best(S) < 0)
            return -1;
    }
    if (S->lead) {
        char total[32], eta[32], t[32], saved[4200];
        progress_text(S, total, sizeof total, eta, sizeof eta);
        duration(t, sizeof t, elapsed(S));
        snprintf(saved, sizeof saved, "saved %s%s%s", S->c->save,
                 best ? " and " : "", best ? S->best_path : "");
        clear_line(S);
        fprintf(S->out, "step %lld%s  train %.4f  val %.4f nats = %.4f "
                "bits/char  %.0f tok/s  %s elapsed  ETA %s  %s\n", (long long)r->step,
                total, train, val, val / log(2.0), tokens_per_s(S), t, eta,
                saved);
        fflush(S->out);
    }
    if (tg_dist_max(log_err[0] != 0) > 0)
        return !S->lead ? cli_fail("rank 0 could not write --log")
             : cli_fail("%s (the line of step %lld is not in it); stopped after "
                       "saving %s: once the log can be written, continue with: "
                       "charlm train --resume %s --log %s", log_err,
                       (long long)r->step, S->c->save, S->c->save, S->c->log);
    return 0;
}

/* Everything before the ranks compare their runs, each rank on its own:
 * the run prepared, buffers, the gradient sum, the log, --keep-best's
 * file. -1 with a message. */
static int setup(session *S, cl_config *c, const bool *given,
                 const cl_opt *opts, int nopts)
{
    cl_run *r = S->r;
    if (cl_prepare(r, c, given, opts, nopts, &S->train, &S->val) < 0)
        return -1;
    S->rows = tg_xmalloc((size_t)((r->cfg.seq + 1) * r->cfg.batch) *
                         sizeof *S->rows);
    S->block_rows = tg_xmalloc((size_t)((r->cfg.seq + 1) * r->cfg.batch /
                                        r->cfg.blocks) * sizeof *S->rows);
    cl_lib_clear();
    tg_dist_reduce how = !strcmp(r->cfg.reduce, "chain") ? TG_DIST_CHAIN
                         : !strcmp(r->cfg.reduce, "ring") ? TG_DIST_RING
                                                          : TG_DIST_TREE;
    if (!(S->dg = tg_dist_grads_new_reduce(
              &r->model->params, (int)r->cfg.blocks,
              1.0 / (double)r->cfg.blocks, 0, how)))
        return cli_fail("%s", cl_lib_error());
    S->local = tg_dist_grads_local(S->dg);
    S->block_loss = tg_xmalloc((size_t)S->local * sizeof *S->block_loss);
    if (c->resume) { /* the last good checkpoint, until the next save */
        S->saved_step = r->step;
        S->saved_path = c->resume;
    }
    cl_path_id_get(c->save, &S->save_id); /* checked and accepted at start */
    /* the readable lines go to stdout, unless --log - puts the JSON there */
    S->out = stdout;
    if (c->log && S->lead && !strcmp(c->log, "-")) {
        S->log = stdout;
        S->out = stderr;
    } else if (c->log && S->lead && !(S->log = fopen(c->log, "a"))) {
        return cli_fail("cannot open --log %s: %s", c->log, strerror(errno));
    }
    return best_start(S);
}

/* Every rank starts from the same numbers: the same seed or checkpoint
 * made them, the comparison checked it, the broadcast makes sure; and
 * rank 0, which writes --keep-best's file, knows the best so far. */
static int share_start(session *S)
{
    cl_lib_clear();
    double best[2] = {S->best_val, (double)S->best_step};
    if (tg_dist_broadcast_params(&S->r->model->params, 0) < 0 ||
        tg_dist_broadcast(best, sizeof best, 0) < 0) {
        cli_fail("%s", cl_lib_error());
        rank_fail(S);
        return -1;
    }
    S->best_val = best[0];
    S->best_step = (int64_t)best[1];
    return 0;
}

/* Ctrl-C and SIGTERM stop the run at the next step, after a save. */
static void catch_signals(session *S)
{
    struct sigaction sa = {0};
    if (S->nranks > 1) {
        int n = snprintf(signal_line, sizeof signal_line, "charlm train (rank "
                         "%d of %d): stopping on a signal (Ctrl-C, or mpirun "
                         "ending the job because another rank failed)\n",
                         S->rank, S->nranks);
        signal_len = n > 0 && (size_t)n < sizeof signal_line ? (size_t)n : 0;
    }
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C quits at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (S->log == stdout) /* a reader gone: EPIPE, a message and a save */
        signal(SIGPIPE, SIG_IGN);
}

/* The first line: what trains, on what, how. */
static void print_start(const session *S)
{
    const cl_run *r = S->r;
    const cl_config *c = S->c;
    char from[4200] = "";
    if (c->resume)
        snprintf(from, sizeof from, " at step %lld of %s:", (long long)r->step,
                 c->resume);
    char ranks[128] = "";
    if (S->nranks > 1 || r->cfg.blocks > 1)
        snprintf(ranks, sizeof ranks, "; %d MPI rank%s x %d block%s of %lld "
                 "streams, summed along the %s", S->nranks,
                 S->nranks > 1 ? "s" : "", S->local, S->local > 1 ? "s" : "",
                 (long long)(r->cfg.batch / r->cfg.blocks),
                 tg_dist_reduce_name(tg_dist_grads_reduce(S->dg)));
    fprintf(stderr, "%s%s %s, %lld layers of %lld (%lld parameters, "
            "vocabulary %lld), on %s: %lld characters, %lld held out; %d "
            "thread%s%s\n", c->resume ? "resuming" : "training", from,
            r->cell->name, (long long)r->cfg.layers, (long long)r->cfg.hidden,
            (long long)tg_params_numel(&r->model->params), (long long)r->vocab.n,
            r->cfg.data, (long long)r->corpus_chars,
            (long long)(S->val.n * S->val.B), tg_get_num_threads(),
            tg_get_num_threads() > 1 ? "s" : "", ranks);
}

/* Steps until the budget is spent (0) or a signal came (128 + it, after
 * a save); 1 after a failure. */
static int train_loop(session *S)
{
    cl_run *r = S->r;
    S->t0 = now_s();
    S->elapsed0 = r->elapsed_s;
    S->step0 = r->step;
    for (;;) {
        if (step(S) < 0)
            return 1;
        /* the ranks agree: rank 0's clock decides a --minutes budget, a
         * signal to any rank stops all - one that came during the
         * evaluation too, the last one included */
        bool last = tg_dist_max(S->lead && budget_spent(S)) > 0;
        bool regular = r->step % r->cfg.eval_every == 0;
        if ((regular || last) && evaluate(S, regular) < 0)
            return 1;
        if (last) { /* from the check below on, a signal ends the process */
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
        }
        int stop = (int)tg_dist_max((double)stop_signal);
        if (stop) {
            if (S->saved_step != r->step && save(S) < 0)
                return 1;
            clear_line(S);
            if (S->lead)
                fprintf(stderr, "charlm train: interrupted at step %lld; saved "
                        "%s (%s%s)\n", (long long)r->step, S->c->save, last ?
                        "the last step of the run: nothing is left to train"
                        : "continue with: charlm train --resume ",
                        last ? "" : S->c->save);
            return 128 + stop;
        }
        if (last)
            return 0;
        draw(S);
    }
}

/* The last lines: communication, the loss, where the model is. */
static void print_done(session *S)
{
    const cl_run *r = S->r;
    const cl_config *c = S->c;
    clear_line(S);
    tg_dist_stats ds = tg_dist_grads_stats(S->dg);
    if (!S->lead)
        return;
    if (S->nranks > 1 && ds.steps > 0)
        fprintf(stderr, "communication: %.2f ms per step waiting after "
                "backward, %.2f ms while backward ran; %.0f KB sent per step "
                "by rank 0\n", 1e3 * ds.wait_s / ds.steps,
                1e3 * ds.overlap_s / ds.steps, ds.bytes_sent / ds.steps / 1e3);
    if (S->best_step >= 0)
        fprintf(stderr, "done: step %lld, val loss %.4f nats = %.4f bits/char; "
                "saved %s; the best, %.4f nats at step %lld, in %s (try: "
                "charlm sample --load %s)\n", (long long)r->step, r->val_loss,
                r->val_loss / log(2.0), c->save, S->best_val,
                (long long)S->best_step, S->best_path, S->best_path);
    else
        fprintf(stderr, "done: step %lld, val loss %.4f nats = %.4f bits/char; "
                "saved %s (try: charlm sample --load %s)\n", (long long)r->step,
                r->val_loss, r->val_loss / log(2.0), c->save, c->save);
}

int cl_train(cl_config *c, const bool *given, const cl_opt *opts, int nopts)
{
    cl_run run = {0};
    session S = {.r = &run, .c = c, .saved_step = -1,
                 .rank = tg_dist_rank(), .nranks = tg_dist_size()};
    S.lead = S.rank == 0;
    S.tty = S.lead && isatty(2);
    int status = 1;
    /* Under MPI every rank takes part in the comparison, even one that has
     * failed, before anything is exchanged: a rank that stopped alone
     * would leave the others waiting forever in their first broadcast,
     * and ranks with other flags or data would overrun its buffer or
     * train on a different run. From here on, a rank that fails alone
     * ends the job (rank_fail); every other failure is met by every rank
     * at the same step. */
    int ready = setup(&S, c, given, opts, nopts);
    if (cl_ranks_agree_run(&run, c, ready < 0 ? cli_error() : "") < 0 ||
        share_start(&S) < 0)
        goto done;
    catch_signals(&S);
    if (S.lead)
        print_start(&S);
    status = train_loop(&S);
    if (status == 0)
        print_done(&S);
done:
    if (status == 1)
        clear_line(&S);
    if (S.log && S.log != stdout && fclose(S.log) != 0 && status != 1) {
        cli_fail("cannot write --log %s: %s (when closing it)", c->log,
                strerror(errno));
        status = 1;
    }
    free(S.best_path);
    free(S.rows);
    free(S.block_rows);
    free(S.block_loss);
    tg_dist_grads_free(S.dg);
    cl_streams_free(&S.val);
    cl_streams_free(&S.train);
    cl_run_free(&run);
    return status;
}
