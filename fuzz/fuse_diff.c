/*
 * fuzz/fuse_diff.c - the differential fuzzer of the step compiler
 * (ops/fuse.h). From the input bytes: a random cell (fuzz/fuse_diff_gen.c)
 * and a random schedule for the sequence layer - sequences of varying T
 * and B in one or two layers, no-grad evaluations in between, fusion
 * switched on and off, several forwards recorded before one backward,
 * forward-mode sweeps (tg_jvp) with tangents on inputs, initial states
 * and parameters, parameters changed in place, and captured state changed
 * between calls (bug b's switch). The schedule runs twice from the same
 * parameters and inputs: as written (fusion off throughout: the
 * reference) and with its fusion switches. Every output, every gradient
 * (parameters, inputs, initial states, retained h_t) and every tangent
 * must agree to 1e-10, or both runs must stop at the same event with the
 * same error. A difference aborts after printing the cell as C, the
 * schedule and the numbers, so that libFuzzer keeps the input.
 *
 * The measure, per compared tensor: max |a - b| / max(1, max |a|). The
 * fused path adds some sums in another order (a prepared weight's packed
 * product, a group's gradient contributions), so single elements that
 * cancel to near zero may differ relatively by far more than 1e-10 while
 * the tensor agrees to rounding; the difference is therefore measured
 * against the tensor's scale, and against 1 when the whole tensor is
 * smaller (a gradient near zero). The values are bounded by construction
 * (|v| <= 1e3), so 1e-10 is some 1e5 roundings: a wrong rule, a stale
 * value or a misplaced slice is far above it, reassociation far below.
 */
#include "fuzz/fuse_diff.h"
#include "ops/fuse/fuse_stats.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-10
#define FD_MAXEV 24 /* events of a schedule, resets inserted included */
#define FD_MAXREC 24

/* ---- the schedule ------------------------------------------------------- */
enum { EV_FWD, EV_BWD, EV_JVP, EV_RESET, EV_CAPT, EV_ZERO, EV_BUMP };
static const char *const ev_names[] = {"forward", "backward", "jvp", "reset",
                                       "capture", "zero_grad", "bump"};

typedef struct fd_event {
    int kind;
    int T, B, s0;     /* forward: s0 0 zeros, 1 leaves, 2 kept states */
    bool grad, fuse, train;
    bool retain;      /* forward: the top layer's h[t] retain their grad */
    bool nan;         /* forward: one number of x is a NaN */
    unsigned tan;     /* jvp: 1 inputs, 2 initial states, 4 parameters */
    int capt;         /* 0 scale, 1 a new mask, 2 the mask in place */
    int which;        /* bump: a parameter */
    double val;
} fd_event;

typedef struct fd_sched {
    int n;
    uint64_t salt;
    bool flatten;     /* the parameters in one block (tg_params_flatten) */
    bool anomaly;     /* anomaly mode on throughout */
    fd_event ev[FD_MAXEV];
} fd_sched;

static bool bug(int k) { return fd_bugs >> k & 1u; }

static void sched_gen(fd_bytes *b, const fd_prog *p, fd_sched *s)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 4; k++)
        s->salt = s->salt << 8 | fd_byte(b);
    s->flatten = fd_chance(b, 20);
    s->anomaly = fd_chance(b, 10);
    int n = fd_range(b, 1, FD_MAXEV / 2 - 1), B = -1;
    /* clean: nothing recorded since the last reset, so a re-trace frees
     * no program the tape uses (bug a's switch off: B and the captured
     * state only change then) */
    bool clean = true, pending = false; /* a forward awaits backward */
    bool bumped = false; /* a parameter changed since a recorded forward */
    for (int i = 0; i < n && s->n < FD_MAXEV - 2; i++) {
        fd_event e;
        memset(&e, 0, sizeof e);
        int c = fd_pick(b, 100);
        e.kind = c < 45 ? EV_FWD : c < 60 ? EV_BWD : c < 70 ? EV_JVP
               : c < 78 ? EV_RESET : c < 87 ? EV_CAPT : c < 93 ? EV_ZERO
               : EV_BUMP;
        if (e.kind == EV_CAPT && !(p->features & FD_F_CAPTURED))
            e.kind = EV_FWD;
        switch (e.kind) {
        case EV_FWD:
            e.T = (fd_pick(b, 7) + 1) % 7; /* 1..6, and 0 */
            /* a state of the wrong shape is an input laid out unlike the
             * traced one at the next step: a re-trace (bug a) */
            if ((p->features & FD_F_WRONG_SHAPE) && !bug(FD_BUG_A) &&
                !((p->features & FD_F_ROW1) && bug(FD_BUG_D)) && e.T > 1)
                e.T = 1;
            /* 1..5, or 8: products of 8 rows use a prepared weight
             * packed once per sequence (ops/matmul.c) */
            e.B = fd_pick(b, 6) + 1;
            e.B = e.B < 6 ? e.B : 8;
            if (p->H > 256) /* rows of two blocks: few, short (memory) */
                e.T = e.T < 2 ? e.T : 2, e.B = e.B < 2 ? e.B : 2;
            e.grad = !fd_chance(b, 25);
            e.fuse = !fd_chance(b, 25);
            e.train = fd_chance(b, 50);
            e.s0 = fd_pick(b, 3);
            e.retain = e.grad && fd_chance(b, 25) &&
                       (!(p->features & FD_F_H_READ) || bug(FD_BUG_H)) &&
                       (!(p->features & FD_F_H_FIXED) || bug(FD_BUG_J));
            e.nan = fd_chance(b, 4) && (!s->anomaly || bug(FD_BUG_I));
            if (!bug(FD_BUG_A) && !clean)
                e.B = B;
            B = e.B;
            clean &= !e.grad;
            pending |= e.grad;
            break;
        case EV_BWD: pending = false; break;
        case EV_JVP:
            e.tan = 1 + (unsigned)fd_pick(b, 7);
            if (bumped && !bug(FD_BUG_L))
                e.kind = EV_RESET, clean = true, pending = bumped = false;
            break;
        case EV_RESET: clean = true, pending = bumped = false; break;
        case EV_CAPT:
            e.capt = fd_pick(b, 3);
            e.val = fd_byte(b) / 255.0;
            if (!bug(FD_BUG_A) && !clean) { /* a reset first */
                fd_event r;
                memset(&r, 0, sizeof r);
                r.kind = EV_RESET;
                s->ev[s->n++] = r;
                clean = true, pending = bumped = false;
            }
            /* the mask's numbers changed in place: like a parameter's for
             * a later tg_jvp (bug l) */
            if (e.capt == 2)
                bumped |= !clean;
            break;
        case EV_BUMP:
            e.which = fd_pick(b, 64);
            if (pending && !bug(FD_BUG_F))
                e.kind = EV_BWD, pending = false; /* a backward instead */
            else
                bumped |= !clean;
            break;
        }
        s->ev[s->n++] = e;
    }
}

static void sched_print(const fd_sched *s, FILE *f)
{
    if (s->flatten || s->anomaly)
        fprintf(f, "  (%s%s%s)\n", s->flatten ? "parameters flattened" : "",
                s->flatten && s->anomaly ? ", " : "",
                s->anomaly ? "anomaly mode" : "");
    for (int i = 0; i < s->n; i++) {
        const fd_event *e = &s->ev[i];
        fprintf(f, "  %2d %s", i, ev_names[e->kind]);
        if (e->kind == EV_FWD)
            fprintf(f, " T=%d B=%d%s%s%s state0=%s%s%s", e->T, e->B,
                    e->grad ? "" : " no-grad", e->fuse ? "" : " fusion-off",
                    e->train ? " training" : "",
                    e->s0 == 0   ? "zeros"
                    : e->s0 == 1 ? "leaves"
                                 : "kept",
                    e->retain ? " retain-grad-h" : "",
                    e->nan ? " nan-in-x" : "");
        if (e->kind == EV_JVP)
            fprintf(f, " tangents on%s%s%s", e->tan & 1 ? " inputs" : "",
                    e->tan & 2 ? " states" : "",
                    e->tan & 4 ? " parameters" : "");
        if (e->kind == EV_CAPT)
            fprintf(f, " %s", e->capt == 0 ? "scale" : e->capt == 1
                                  ? "a new mask" : "the mask in place");
        fprintf(f, "\n");
    }
}

/* ---- what a run records ------------------------------------------------- */
typedef struct rec {
    int ev;
    char what[80];
    int64_t n;
    double *v;
    bool nograd; /* the gradient of a tensor that requires none (bug g) */
    bool lax;    /* a gradient or tangent after a NaN was put in x */
} rec;

typedef struct fd_log {
    rec *r;
    int n, cap;
    bool nan_seen;  /* a forward had a NaN in x */
    int err_ev;     /* the event that failed, or -1 */
    char err[600];  /* its first error */
} fd_log;

/* t's numbers; or, with from_buf, buf's: a gradient or tangent of t,
 * contiguous in t's logical order, where NULL means zeros */
static void log_numbers(fd_log *L, int ev, const char *what, const tg_tensor *t,
                        bool from_buf, const tg_real *buf)
{
    if (L->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 64;
        L->r = tg_xrealloc(L->r, (size_t)L->cap * sizeof *L->r);
    }
    rec *r = &L->r[L->n++];
    r->ev = ev;
    r->nograd = from_buf && t && !(t->flags & TG_REQUIRES_GRAD);
    r->lax = from_buf && L->nan_seen;
    snprintf(r->what, sizeof r->what, "%s", what);
    r->n = t ? t->numel : 0;
    r->v = tg_xcalloc((size_t)(r->n ? r->n : 1), sizeof(double));
    if (from_buf && buf)
        memcpy(r->v, buf, (size_t)r->n * sizeof(double));
    else if (!from_buf && t)
        tg_to_buffer(t, r->v);
}

static void log_free(fd_log *L)
{
    for (int i = 0; i < L->n; i++)
        free(L->r[i].v);
    free(L->r);
}

/* Errors are recorded: the first of each event, with what names a
 * tensor's serial number (t123) or a tape entry (#45) made anonymous -
 * those differ between the runs, and between the paths (a compiled step
 * records fewer entries) without saying anything of the error. */
static char first_err[600];
static void record_error(const char *op, const char *msg, void *ud)
{
    (void)ud;
    if (first_err[0])
        return;
    char raw[600];
    snprintf(raw, sizeof raw, "%s: %s", op, msg);
    size_t n = 0;
    for (const char *c = raw; *c && n < sizeof first_err - 2; c++) {
        bool id =
            (*c == '#' ||
             (*c == 't' && (c == raw || !isalnum((unsigned char)c[-1])))) &&
            isdigit((unsigned char)c[1]);
        first_err[n++] = *c;
        if (id) {
            first_err[n++] = 'N';
            while (isdigit((unsigned char)c[1]))
                c++;
        }
    }
    first_err[n] = 0;
    /* backward's refusal of numbers changed in place names the entry that
     * read them: a member op unfused, its fused group or the 'prepare' of
     * a weight compiled - the same refusal, so compared as a class */
    const char *inplace = "which were changed in place after it ran";
    if (strstr(first_err, inplace))
        snprintf(first_err, sizeof first_err, "%s: an entry needs numbers "
                 "%s", op, inplace);
}

/* ---- one run of a schedule ---------------------------------------------- */
typedef struct fwd {
    tg_tensor *x, *s0[TG_CELL_MAX_STATE], *y, *st[TG_CELL_MAX_STATE];
    tg_tensor **h; /* the top layer's h[t], when they retain their grad */
    int B, T;
    bool fuse;
} fwd;

typedef struct run {
    const fd_prog *p;
    const fd_sched *s;
    bool ref;                 /* the reference: fusion off throughout */
    tg_rnn *r;
    fwd f[FD_MAXREC];         /* recorded since the last reset */
    int nf, pending;          /* f[pending..] await a backward */
    bool backward_done;       /* since the last reset */
    bool compiled;            /* a step ran compiled */
    bool bumped;              /* a parameter changed since a forward */
    tg_tensor *kept[FD_MAXEV + 1][TG_CELL_MAX_STATE]; /* final states */
    int nkept;
    /* the reference keeps a copy of each kept state's numbers, and the
     * compiled run starts from those (twin): see run_forward */
    tg_real *kept_copy[FD_MAXEV + 1][TG_CELL_MAX_STATE];
    int64_t kept_n[FD_MAXEV + 1][TG_CELL_MAX_STATE];
    const struct run *twin;
    double perturb; /* parameters scaled by 1 +- perturb at the start */
    tg_tensor *masks[FD_MAXEV + 1];
    int nmasks;
    void *own_user[2];
    tg_tensor *anchor; /* requires grad: 0 * its sum is in every loss */
    fd_log log;
} run;

static uint64_t seed_of(const run *R, int ev, int what)
{
    return R->s->salt * 1000003u + (uint64_t)ev * 131u + (uint64_t)what;
}

static void scen(const run *R, int s)
{
    if (!R->ref)
        fd_cov_add(s);
}

static tg_tensor *rand_like(const tg_tensor *t, tg_rng *rng)
{
    return tg_rand(t->ndim, t->shape, rng, -1, 1);
}

static void set_user(run *R, double scale, tg_tensor *mask)
{
    for (int l = 0; l < R->p->L; l++) {
        fd_user *u = R->r->layers[l]->user;
        u->scale = scale;
        u->mask = mask;
    }
}

static tg_tensor *new_mask(run *R, uint64_t seed)
{
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_tensor *m = tg_tensor_new(TG_SHAPE(R->p->H));
    tg_fill_uniform_(m, &rng, -1, 1);
    R->masks[R->nmasks++] = m;
    return m;
}

static int ev_forward(run *R, const fd_event *e, int ei)
{
    const fd_prog *p = R->p;
    int64_t L = p->L, H = p->H, B = e->B;
    tg_rng rng;
    tg_rng_seed(&rng, seed_of(R, ei, 1));
    tg_set_fusion(!R->ref && e->fuse);
    tg_set_grad_enabled(e->grad);
    tg_tensor *x = tg_rand(TG_SHAPE(e->T, B, p->I), &rng, -1, 1);
    if (e->nan && x->numel > 0) {
        x->data[tg_rng_below(&rng, (uint64_t)x->numel)] = (tg_real)NAN;
        R->log.nan_seen = true;
    }
    if (e->grad)
        tg_requires_grad(x);
    tg_tensor *s0[TG_CELL_MAX_STATE] = {NULL};
    tg_tensor *const *init = NULL;
    if (e->s0 == 1) {
        for (int k = 0; k < p->nstate; k++) {
            s0[k] = tg_rand(TG_SHAPE(L, B, H), &rng, -0.5, 0.5);
            if (e->grad)
                tg_requires_grad(s0[k]);
        }
        init = s0;
    } else if (e->s0 == 2 && R->nkept > 0) {
        tg_tensor **k = R->kept[R->nkept - 1];
        if (k[0]->ndim == 3 && k[0]->shape[0] == L && k[0]->shape[1] == B &&
            k[0]->shape[2] == H) {
            init = k;
            scen(R, SC_KEPT);
            /* Both runs start this forward from the reference's numbers.
             * Each forward's final states are compared on their own (a
             * wrong rule shows there); chained from each run's own
             * states, a cell whose steps stretch differences (a product
             * over the batch of tanh'd matrices, 36 steps) turned the
             * two paths' rounding, 1e-16, into 9e-10 - over the bound
             * without anything being wrong. */
            const run *tw = R->twin;
            if (tw && tw->nkept >= R->nkept)
                for (int j = 0; j < p->nstate; j++)
                    if (tw->kept_copy[R->nkept - 1][j] &&
                        k[j]->numel == tw->kept_n[R->nkept - 1][j])
                        memcpy(k[j]->data, tw->kept_copy[R->nkept - 1][j],
                               (size_t)k[j]->numel * sizeof(tg_real));
        }
    }
    if (!R->ref && R->nf > R->pending) {
        if (!e->grad)
            scen(R, SC_NOGRAD_BETWEEN);
    }
    tg_rng drop;
    tg_rng_seed(&drop, seed_of(R, ei, 2));
    tg_rnn_out out;
    int rc = tg_rnn_forward(R->r, x, init, e->train, &drop, &out);
    tg_set_grad_enabled(true);
    if (e->T == 0)
        scen(R, SC_T0);
    if (e->nan)
        scen(R, SC_NAN);
    if (p->L > 1 && e->train && p->dropout > 0)
        scen(R, SC_DROPOUT);
    if (!R->ref && e->fuse)
        for (int l = 0; l < p->L; l++) {
            const tg_prog *pr = R->r->layers[l]->prog[0];
            if (!pr)
                continue;
            if (tg_prog_ok(pr))
                scen(R, SC_COMPILED), R->compiled = true;
            else
                scen(R, SC_REFUSED), fd_cov_refused(tg_prog_why(pr));
        }
    if (rc < 0)
        return -1;
    for (int k = 0; k < p->nstate; k++)
        if (!out.state[k])
            return -1; /* tg_rnn_forward said 0 after an error (reported) */
    if (e->retain)
        for (int64_t t = 0; t < out.T; t++)
            tg_retain_grad(out.h[t]);
    log_numbers(&R->log, ei, "y", out.y, false, NULL);
    for (int k = 0; k < p->nstate; k++) {
        char what[80];
        snprintf(what, sizeof what, "final state %d", k);
        log_numbers(&R->log, ei, what, out.state[k], false, NULL);
    }
    /* kept in new tensors: the forward just run may read the last ones */
    tg_rnn_keep_state(R->r, &out, R->kept[R->nkept++]);
    if (R->ref)
        for (int j = 0; j < p->nstate; j++) {
            const tg_tensor *t = R->kept[R->nkept - 1][j];
            size_t bytes = (size_t)t->numel * sizeof(tg_real);
            R->kept_n[R->nkept - 1][j] = t->numel;
            R->kept_copy[R->nkept - 1][j] =
                memcpy(tg_xmalloc(bytes ? bytes : 1), t->data, bytes);
        }
    if (e->grad && R->nf < FD_MAXREC) {
        fwd *f = &R->f[R->nf++];
        memset(f, 0, sizeof *f);
        f->x = x;
        memcpy(f->s0, s0, sizeof s0);
        f->y = out.y;
        memcpy(f->st, out.state, sizeof f->st);
        f->B = e->B;
        f->T = e->T;
        f->h = e->retain ? out.h : NULL;
        f->fuse = e->fuse;
    }
    return 0;
}

static int ev_backward(run *R, int ei)
{
    const fd_prog *p = R->p;
    tg_rng rng;
    tg_rng_seed(&rng, seed_of(R, ei, 3));
    tg_tensor *loss = NULL;
    int from = R->pending;
    for (int i = from; i < R->nf; i++) {
        fwd *f = &R->f[i];
        tg_tensor *t = tg_sum(tg_mul(f->y, rand_like(f->y, &rng)));
        for (int k = 0; k < p->nstate; k++)
            t = tg_add(t, tg_sum(tg_mul(f->st[k], rand_like(f->st[k], &rng))));
        loss = loss ? tg_add(loss, t) : t;
        if (i > from && f->B != R->f[from].B)
            scen(R, SC_MULTI_B);
        if (i > from && f->fuse != R->f[from].fuse)
            scen(R, SC_TOGGLE);
    }
    if (R->nf - from > 1)
        scen(R, SC_MULTI_FWD);
    R->pending = R->nf;
    if (!bug(FD_BUG_G)) /* every loss requires grad on both paths */
        loss = tg_add(loss, tg_mul_scalar(tg_sum(R->anchor), 0));
    if (tg_backward(loss) < 0)
        return -1;
    R->backward_done = true;
    char what[80];
    for (int i = from; i < R->nf; i++) {
        fwd *f = &R->f[i];
        snprintf(what, sizeof what, "grad x of forward %d", i);
        log_numbers(&R->log, ei, what, f->x, true, f->x->grad);
        for (int k = 0; k < p->nstate; k++)
            if (f->s0[k]) {
                snprintf(what, sizeof what, "grad state0[%d] of forward %d",
                         k, i);
                log_numbers(&R->log, ei, what, f->s0[k], true, f->s0[k]->grad);
            }
        for (int t = 0; f->h && t < f->T; t++) {
            snprintf(what, sizeof what, "grad h[%d] of forward %d", t, i);
            log_numbers(&R->log, ei, what, f->h[t], true, f->h[t]->grad);
            scen(R, SC_RETAIN);
        }
    }
    for (int j = 0; j < tg_params_count(&R->r->params); j++) {
        const tg_param *q = tg_params_at(&R->r->params, j);
        snprintf(what, sizeof what, "grad %s", q->name);
        log_numbers(&R->log, ei, what, q->tensor, true, q->tensor->grad);
    }
    return 0;
}

static int ev_jvp(run *R, const fd_event *e, int ei)
{
    const fd_prog *p = R->p;
    if (R->nf == 0)
        return 0;
    tg_rng rng;
    tg_rng_seed(&rng, seed_of(R, ei, 4));
    for (int i = 0; i < R->nf; i++) {
        fwd *f = &R->f[i];
        if (e->tan & 1) {
            tg_set_tangent(f->x, rand_like(f->x, &rng));
            scen(R, SC_JVP_X);
        }
        for (int k = 0; k < p->nstate && (e->tan & 2); k++)
            if (f->s0[k]) {
                tg_set_tangent(f->s0[k], rand_like(f->s0[k], &rng));
                scen(R, SC_JVP_S0);
            }
    }
    for (int j = 0; j < tg_params_count(&R->r->params) && (e->tan & 4); j++)
        if (tg_rng_below(&rng, 2)) {
            tg_tensor *w = tg_params_at(&R->r->params, j)->tensor;
            tg_set_tangent(w, rand_like(w, &rng));
            scen(R, SC_JVP_PARAM);
        }
    if (R->backward_done)
        scen(R, SC_JVP_AFTER_BWD);
    if (R->bumped)
        scen(R, SC_BUMP_JVP);
    if (tg_jvp() < 0)
        return -1;
    char what[80];
    for (int i = 0; i < R->nf; i++) {
        fwd *f = &R->f[i];
        snprintf(what, sizeof what, "tangent y of forward %d", i);
        log_numbers(&R->log, ei, what, f->y, true, f->y->tangent);
        for (int k = 0; k < p->nstate; k++) {
            tg_tensor *t = f->st[k];
            snprintf(what, sizeof what, "tangent state %d of forward %d", k, i);
            log_numbers(&R->log, ei, what, t, true, t->tangent);
        }
    }
    return 0;
}

static int run_event(run *R, int ei)
{
    const fd_event *e = &R->s->ev[ei];
    const fd_prog *p = R->p;
    switch (e->kind) {
    case EV_FWD: return ev_forward(R, e, ei);
    case EV_BWD: return R->nf > R->pending ? ev_backward(R, ei) : 0;
    case EV_JVP: return ev_jvp(R, e, ei);
    case EV_RESET:
        tg_tape_reset();
        R->nf = R->pending = 0;
        R->backward_done = R->bumped = false;
        return 0;
    case EV_CAPT: {
        fd_user *u = R->r->layers[0]->user;
        if (e->capt == 0) {
            set_user(R, e->val, u->mask);
            scen(R, SC_CAPT_SCALE);
        } else if (e->capt == 1) {
            set_user(R, u->scale, new_mask(R, seed_of(R, ei, 5)));
            scen(R, SC_CAPT_REPLACE);
        } else {
            tg_rng rng;
            tg_rng_seed(&rng, seed_of(R, ei, 6));
            for (int64_t i = 0; i < u->mask->numel; i++)
                u->mask->data[i] = tg_rng_uniform(&rng) * 2 - 1;
            tg_bump_version(u->mask);
            scen(R, SC_CAPT_INPLACE);
        }
        return 0;
    }
    case EV_ZERO:
        tg_params_zero_grad(&R->r->params);
        scen(R, SC_ZERO);
        return 0;
    case EV_BUMP: {
        int np = tg_params_count(&R->r->params);
        if (np == 0)
            return 0;
        tg_tensor *w = tg_params_at(&R->r->params, e->which % np)->tensor;
        for (int64_t i = 0; i < w->numel; i++)
            w->data[i] *= 0.5;
        tg_bump_version(w);
        scen(R, R->nf > R->pending ? SC_BUMP_PENDING : SC_BUMP);
        R->bumped |= R->nf > 0;
        return 0;
    }
    }
    (void)p;
    return 0;
}

static void run_schedule(run *R)
{
    const fd_prog *p = R->p;
    R->log.err_ev = -1;
    tg_rng rng;
    tg_rng_seed(&rng, R->s->salt);
    tg_manual_seed(R->s->salt); /* dropout in a step draws from it */
    R->r = tg_rnn_new(&fd_type, p->I, p->H, p->L, p->dropout, &rng);
    TG_ASSERT(R->r);
    for (int i = 0; R->perturb != 0 && i < tg_params_count(&R->r->params);
         i++) {
        tg_tensor *w = tg_params_at(&R->r->params, i)->tensor;
        for (int64_t k = 0; k < w->numel; k++)
            w->data[k] *= 1 + (k % 2 ? R->perturb : -R->perturb);
        tg_bump_version(w);
    }
    R->anchor = tg_requires_grad(tg_tensor_new(TG_SHAPE(1)));
    if (R->s->flatten) {
        int rc = tg_params_flatten(&R->r->params);
        TG_ASSERT(rc == 0);
        scen(R, SC_FLATTEN);
    }
    tg_set_anomaly_mode(R->s->anomaly);
    if (R->s->anomaly)
        scen(R, SC_ANOMALY);
    if (p->features & FD_F_CAPTURED) {
        for (int l = 0; l < p->L; l++) {
            tg_cell *c = R->r->layers[l];
            if (!c->user) /* not made by the library: no user_size */
                c->user = R->own_user[l] = tg_xcalloc(1, sizeof(fd_user));
        }
        set_user(R, 0.75, new_mask(R, seed_of(R, 0, 7)));
    }
    int n = R->s->n;
    for (int ei = 0; ei <= n; ei++) {
        first_err[0] = 0;
        unsigned long before = tg_error_count();
        int rc = ei < n ? run_event(R, ei)
                        : R->nf > R->pending ? ev_backward(R, ei) : 0;
        if (rc < 0 || tg_error_count() != before) {
            R->log.err_ev = ei;
            snprintf(R->log.err, sizeof R->log.err, "%s",
                     first_err[0] ? first_err : "(failed, no error reported)");
            break;
        }
    }
    tg_set_fusion(true);
    tg_set_grad_enabled(true);
    tg_set_anomaly_mode(false);
    /* freeing everything is never an error (a flattened layer's cells
     * were once refused, and leaked) */
    first_err[0] = 0;
    unsigned long before = tg_error_count();
    tg_tape_reset();
    tg_rnn_free(R->r);
    tg_tensor_free(R->anchor);
    for (int l = 0; l < 2; l++)
        free(R->own_user[l]);
    for (int i = 0; i < R->nmasks; i++)
        tg_tensor_free(R->masks[i]);
    for (int i = 0; i < R->nkept; i++)
        for (int k = 0; k < TG_CELL_MAX_STATE; k++)
            tg_tensor_free(R->kept[i][k]);
    /* (the reference's copies of their numbers stay for the twin) */
    if (tg_error_count() != before) {
        fprintf(stderr, "\n==== fuse_diff: freeing the %s run's layer and "
                "tensors failed (%s): %s\n", R->ref ? "unfused" : "compiled",
                fd_input_label, first_err);
        abort();
    }
}

/* ---- comparing ---------------------------------------------------------- */
/* max |a - b| / max(1, max |a|); identical non-finite numbers agree, and
 * with lax a NaN on either side agrees with anything: gradients after a
 * NaN input hold 0 * NaN where one path multiplies a zero gradient (a
 * column a fused view never reads, a result nothing uses) and the other
 * does not - which tells nothing about the compiler */
static double rel_diff(const double *a, const double *b, int64_t n, bool lax,
                       int64_t *at)
{
    double scale = 1, worst = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(a[i]))
            scale = fmax(scale, fabs(a[i]));
    *at = -1;
    for (int64_t i = 0; i < n; i++) {
        double d;
        if (a[i] == b[i] || (isnan(a[i]) && isnan(b[i])) ||
            (lax && (isnan(a[i]) || isnan(b[i]))))
            d = 0;
        else if (!isfinite(a[i]) || !isfinite(b[i]))
            d = HUGE_VAL;
        else
            d = fabs(a[i] - b[i]) / scale;
        if (!(d <= worst)) {
            worst = d;
            *at = i;
        }
    }
    return worst;
}

/* Reports a difference and aborts - unless FUSE_DIFF_ONLY is set and the
 * report lacks it: then minimizing a finding (libFuzzer -minimize_crash)
 * keeps to that finding instead of drifting to another. */
static void difference(const fd_prog *p, const fd_sched *s, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));
static void difference(const fd_prog *p, const fd_sched *s, const char *fmt,
                       ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *only = getenv("FUSE_DIFF_ONLY");
    if (only && !strstr(msg, only))
        return;
    fprintf(stderr, "\n==== fuse_diff: the compiled path differs from the "
            "unfused one (%s) ====\n%s\n", fd_input_label, msg);
    fprintf(stderr, "---- the cell's step (known-bug switches 0x%x):\n",
            fd_bugs);
    fd_print(p, stderr);
    fprintf(stderr, "---- the schedule (then a backward if one is pending):\n");
    sched_print(s, stderr);
    fflush(stderr);
    abort();
}

/* Rounding grows along a computation as much as its numbers stretch
 * differences, and some random cells stretch them a lot (products over
 * the batch of tanh'd matrices, pre-activations of 700): the two paths,
 * which round some sums in other orders, then differ by more than TOL
 * with nothing wrong. A difference below COND_MAX at record i is checked
 * against the reference's own sensitivity: the reference runs once more
 * from parameters moved by 1e-15 (a few roundings), and if that moves
 * record i by at least a hundredth of the difference, the difference is
 * what this computation does to roundings. A wrong rule, a stale value or
 * a misplaced slice differs by far more than COND_MAX in all but cells
 * that stretch 1e-15 to 1e-8 and beyond. Only when a difference is seen:
 * the ordinary input runs twice, as before. */
#define COND_MAX 1e-6
static const fd_log *ref_log; /* the reference's, for ill_conditioned */

static bool ill_conditioned(int i, double d, const fd_prog *p,
                            const fd_sched *s)
{
    run moved;
    memset(&moved, 0, sizeof moved);
    moved.p = p;
    moved.s = s;
    moved.ref = true;
    moved.perturb = 1e-15;
    run_schedule(&moved);
    bool yes = false;
    const rec *x = &ref_log->r[i];
    if (i < moved.log.n) {
        const rec *z = &moved.log.r[i];
        int64_t at;
        if (z->ev == x->ev && !strcmp(z->what, x->what) && z->n == x->n) {
            double own = rel_diff(x->v, z->v, x->n, x->lax, &at);
            yes = own >= d / 100;
            if (getenv("FUSE_DIFF_COND"))
                fprintf(stderr, "fuse_diff: event %d, %s: the paths differ "
                        "by %.3g, the reference moved by %.3g from 1e-15\n",
                        x->ev, x->what, d, own);
        }
    }
    for (int k = 0; k < moved.nkept; k++)
        for (int j = 0; j < TG_CELL_MAX_STATE; j++)
            free(moved.kept_copy[k][j]);
    log_free(&moved.log);
    return yes;
}

static void compare(const fd_log *a, const fd_log *b, const fd_prog *p,
                    const fd_sched *s)
{
    int n = a->n < b->n ? a->n : b->n;
    for (int i = 0; i < n; i++) {
        const rec *x = &a->r[i], *y = &b->r[i];
        if (x->ev != y->ev || strcmp(x->what, y->what) || x->n != y->n) {
            difference(p, s, "event %d: unfused recorded %s (%lld numbers), "
                       "compiled event %d %s (%lld numbers)", x->ev, x->what,
                       (long long)x->n, y->ev, y->what, (long long)y->n);
            return;
        }
        if (x->nograd && !bug(FD_BUG_G))
            continue; /* unfused, no gradient at all: compiled, perhaps 0 */
        int64_t at;
        double d = rel_diff(x->v, y->v, x->n, x->lax, &at);
        if (d > TOL && d < COND_MAX && ill_conditioned(i, d, p, s)) {
            fd_cov_add(SC_ILL_CONDITIONED);
            return;
        }
        if (d > TOL) {
            if (getenv("FUSE_DIFF_DUMP"))
                for (int64_t j = 0; j < x->n; j++)
                    fprintf(stderr, "  [%lld] unfused %.17g compiled %.17g\n",
                            (long long)j, x->v[j], y->v[j]);
            difference(p, s, "event %d (%s): %s differs by %.3g relative "
                       "(max |a - b| / max(1, max |a|)); first worst at "
                       "element %lld: unfused %.17g, compiled %.17g", x->ev,
                       x->ev < s->n ? ev_names[s->ev[x->ev].kind] : "backward",
                       x->what, d, (long long)at, x->v[at], y->v[at]);
            return;
        }
    }
    /* A compiled group recomputes its cheap intermediates in backward
     * from its inputs (ops/fuse.h), so it reads numbers - a bias - that
     * the member ops alone did not keep reading: a change to them in
     * place before backward is refused compiled and not unfused. That is
     * the safe side (the recomputed values would be wrong), and no
     * difference: compared up to the refusal. The unfused run goes on
     * past it, so its own first error, if any, comes later. (AOTAutograd
     * does the same: what it recomputes from is saved, and saved tensors
     * are version-checked.) */
    if (b->err_ev >= 0 && (a->err_ev < 0 || a->err_ev > b->err_ev) &&
        strstr(b->err, "changed in place")) {
        fd_cov_add(SC_STRICTER);
        return;
    }
    /* The other way round: a value nothing uses is recorded unfused, and
     * its op's tangent would be wrong after a change in place to what it
     * read - compiled, the step never computes it. Only in a program
     * with such a value (a dead read of a parameter or the mask), only
     * by tg_jvp (backward reaches nothing dead), and compared up to the
     * refusal. */
    if (a->err_ev >= 0 && (b->err_ev < 0 || b->err_ev > a->err_ev) &&
        a->err_ev < s->n && s->ev[a->err_ev].kind == EV_JVP &&
        strstr(a->err, "changed in place") &&
        (p->features & FD_F_DEAD_READ)) {
        fd_cov_add(SC_DEAD_READ);
        return;
    }
    if (a->err_ev != b->err_ev || strcmp(a->err, b->err)) {
        difference(p, s,
                   "errors differ: unfused %s%s%s (event %d), compiled "
                   "%s%s%s (event %d)",
                   a->err_ev < 0 ? "none" : "\"", a->err,
                   a->err_ev < 0 ? "" : "\"", a->err_ev,
                   b->err_ev < 0 ? "none" : "\"", b->err,
                   b->err_ev < 0 ? "" : "\"", b->err_ev);
        return;
    }
    if (a->n != b->n)
        difference(p, s, "the unfused run recorded %d results (error \"%s\" "
                   "at event %d), the compiled one %d (error \"%s\" at event "
                   "%d)", a->n, a->err, a->err_ev, b->n, b->err, b->err_ev);
}

/* ---- one input ---------------------------------------------------------- */
const char *fd_input_label = "the input libFuzzer saves";

static void print_coverage(void) { fd_cov_print(stderr); }
static bool under_libfuzzer; /* LLVMFuzzerInitialize ran */

/* libFuzzer only (the seeded runner prints its own): coverage at exit */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    under_libfuzzer = true;
    atexit(print_coverage);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    if (!started) {
        started = true;
        if (fd_bugs_from_env() < 0)
            abort();
    }
    tg_error_handler old = tg_set_error_handler(record_error, NULL);
    fd_bytes b = {data, size, 0};
    static fd_prog p;
    fd_sched s;
    fd_gen(&b, &p);
    sched_gen(&b, &p, &s);
    fd_type_set(&p);
    if (getenv("FUSE_DIFF_PRINT")) { /* the input as C and a schedule */
        fd_print(&p, stderr);
        sched_print(&s, stderr);
    }
    if (p.gates == 0)
        fd_cov_add(SC_GATES0);
    if (p.L > 1)
        fd_cov_add(SC_L2);
    static const struct { unsigned f; int sc; } feats[] = {
        {FD_F_SLICED_W, SC_SLICED_W},     {FD_F_BATCH_MIX, SC_BATCH_MIX},
        {FD_F_PASSTHROUGH, SC_PASSTHROUGH}, {FD_F_WRONG_SHAPE, SC_WRONG_SHAPE},
        {FD_F_ROW1, SC_ROW1},             {FD_F_COLSLICE_LINEAR, SC_COLSLICE},
        {FD_F_VIEW_OUT, SC_VIEW_OUT},     {FD_F_UNDECLARED, SC_UNDECLARED}};
    for (size_t i = 0; i < sizeof feats / sizeof *feats; i++)
        if (p.features & feats[i].f)
            fd_cov_add(feats[i].sc);
    tg_fuse_stats before;
    tg_fuse_stats_get(&before);
    run ref, fused;
    memset(&ref, 0, sizeof ref);
    memset(&fused, 0, sizeof fused);
    ref.p = fused.p = &p;
    ref.s = fused.s = &s;
    ref.ref = true;
    run_schedule(&ref);
    fused.twin = &ref;
    run_schedule(&fused);
    ref_log = &ref.log;
    for (int i = 0; i < ref.nkept; i++)
        for (int k = 0; k < TG_CELL_MAX_STATE; k++)
            free(ref.kept_copy[i][k]);
    tg_fuse_stats after;
    tg_fuse_stats_get(&after);
    if (after.guard[TG_GUARD_LAYOUT] > before.guard[TG_GUARD_LAYOUT])
        fd_cov_add(SC_RETRACE);
    if (ref.log.err_ev >= 0 && ref.log.err_ev == fused.log.err_ev &&
        !strcmp(ref.log.err, fused.log.err))
        fd_cov_add(SC_SAME_ERROR);
    fd_cov_input(fused.compiled);
    compare(&ref.log, &fused.log, &p, &s);
    log_free(&ref.log);
    log_free(&fused.log);
    tg_set_error_handler(old, NULL);
    /* Under libFuzzer every input frees what it allocated, the thread's
     * arena and tape too (kept, they only grow - at an input larger than
     * any before). libFuzzer runs an input again, then LeakSanitizer over
     * the whole heap, whenever it allocated more blocks than it freed,
     * and stops looking for leaks after 1000 such inputs: with memory
     * kept from one input to the next, those reruns took a third of the
     * time under AddressSanitizer, and leak detection would soon have
     * been off. (The seeded runner keeps them: no leak check per input,
     * and mapping the chunks afresh each time costs it a fifth.) */
    if (under_libfuzzer)
        tg_tape_free_all();
    return 0;
}
