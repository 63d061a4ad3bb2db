/*
 * examples/walkthrough.c - the program behind docs/walkthrough.md: how the
 * tape differentiates, shown on a tiny expression, then on LSTM steps.
 *
 *   build/walkthrough expr|lstm|bptt|truncated|memory|rnn-vs-lstm|fused|all
 *   build/walkthrough bptt --dot FILE      (also writes the graph, DOT)
 *
 * Its output is the same on every run (fixed seeds, no addresses or
 * timings); tests/walkthrough_docs.sh checks that the document shows it.
 */
#include "nn/rnn.h"

#include <math.h>
#include <string.h>

#define NI 2 /* the cells here: input size 2, hidden size 2, batch 1 */
#define NH 2

static const char *dot_path; /* --dot FILE: where bptt writes its graph */

/* v for printing with 4 decimals: no "-0.0000" */
#define R4(v) (fabs(v) < 5e-5 ? 0.0 : (v))

static void print_vec(const char *label, const tg_real *p, int64_t n)
{
    printf("%s[", label);
    for (int64_t i = 0; i < n; i++)
        printf("%s%.4f", i ? ", " : "", R4((double)p[i]));
    printf("]\n");
}

/* a [1, n] temporary holding v[0..n-1] */
static tg_tensor *row(int n, const double *v)
{
    tg_tensor *t = tg_zeros(TG_SHAPE(1, n));
    for (int i = 0; i < n; i++)
        t->data[i] = (tg_real)v[i];
    return t;
}

/* how many entries the last backward ran */
static int64_t entries_run(void)
{
    int64_t n = 0;
    for (int64_t i = 0; i < tg_tape_size(); i++)
        n += tg_tape_entry(i)->consumed;
    return n;
}

/* the first entry tagged step that reads t */
static tg_entry *reader(const tg_tensor *t, int64_t step)
{
    for (int64_t i = 0; i < tg_tape_size(); i++) {
        tg_entry *e = tg_tape_entry(i);
        for (int k = 0; k < e->nin; k++)
            if (e->in[k] == t && e->step == step)
                return e;
    }
    return NULL;
}

/* ---- 1. a tiny expression: f = (x*w + b) * x, x used twice ------------ */

static tg_tensor *expr_f(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *x = in[0], *w = in[1], *b = in[2];
    tg_tensor *u = tg_set_name(tg_mul(x, w), "u"); /* entry #0 */
    tg_tensor *v = tg_set_name(tg_add(u, b), "v"); /* entry #1 */
    return tg_set_name(tg_mul(v, x), "f");         /* entry #2 */
}

static void make_leaves(tg_tensor **in)
{
    in[0] = tg_set_name(tg_requires_grad(tg_scalar(2)), "x");
    in[1] = tg_set_name(tg_requires_grad(tg_scalar(3)), "w");
    in[2] = tg_set_name(tg_requires_grad(tg_scalar(1)), "b");
}

/* The loop of tg_backward (autograd/tape.c, sweep) written out, without
 * its bookkeeping, printing as it goes. Every tensor here is one number. */
static void sweep_by_hand(tg_tensor *f)
{
    f->grad = tg_arena_calloc(sizeof(tg_real));
    f->grad[0] = 1; /* the seed: dL/df = 1, for L = f */
    for (int64_t i = f->entry; i >= 0; i--) {
        tg_entry *e = tg_tape_entry(i);
        bool mul = !strcmp(e->op->name, "mul");
        const char *y = e->out->name;
        printf("#%lld %-3s  %s = %s %s %s      dL/d%s = %g\n", (long long)i,
               e->op->name, y, e->in[0]->name, mul ? "*" : "+", e->in[1]->name, y,
               (double)e->out->grad[0]);
        double before[2];
        for (int k = 0; k < 2; k++) {
            if (!e->in[k]->grad) /* zeroed once, before its first share */
                e->in[k]->grad = tg_arena_calloc(sizeof(tg_real));
            before[k] = (double)e->in[k]->grad[0];
        }
        e->op->backward(e); /* the op's own rule: it ADDS into in[k]->grad */
        for (int k = 0; k < 2; k++) {
            const char *a = e->in[k]->name;
            char rule[64]; /* mul: da += dy * b, db += dy * a; add: dy */
            snprintf(rule, sizeof rule, mul ? "dL/d%s * %s" : "dL/d%s", y,
                     e->in[1 - k]->name);
            double after = (double)e->in[k]->grad[0];
            printf("         dL/d%s += %-10s = %g      dL/d%s: %g -> %g\n", a,
                   rule, after - before[k], a, before[k], after);
        }
    }
}

static void sec_expr(void)
{
    printf("== expr: f = (x*w + b) * x  at x = 2, w = 3, b = 1\n\n");
    tg_tensor *in[3];
    make_leaves(in);
    tg_tensor *f = expr_f(in, NULL);
    printf("forward: each op computes its output and appends one entry\n");
    tg_tape_print(stdout);
    for (int64_t i = 0; i < tg_tape_size(); i++) {
        tg_tensor *y = tg_tape_entry(i)->out;
        printf("%s = %g%s", y->name, tg_item(y), y == f ? "\n" : ",  ");
    }
    printf("\nbackward by hand: entries from last to first; each rule adds "
           "into its inputs\n");
    sweep_by_hand(f);
    tg_tape_reset();

    printf("\nthe engine, on a fresh forward: tg_retain_grad(every "
           "intermediate); tg_backward(f)\n");
    make_leaves(in);
    f = expr_f(in, NULL);
    for (int64_t i = 0; i < tg_tape_size(); i++)
        tg_retain_grad(tg_tape_entry(i)->out);
    tg_backward(f);
    for (int64_t i = tg_tape_size() - 1; i >= 0; i--)
        printf("dL/d%s = %g,  ", tg_tape_entry(i)->out->name,
               (double)tg_tape_entry(i)->out->grad[0]);
    for (int k = 0; k < 3; k++)
        printf("dL/d%s = %g%s", in[k]->name, (double)in[k]->grad[0],
               k < 2 ? ",  " : "\n");
    double x = tg_item(in[0]), w = tg_item(in[1]), b = tg_item(in[2]);
    printf("by hand, f = w x^2 + b x:  df/dx = 2wx + b = %g,  df/dw = x^2 = "
           "%g,  df/db = x = %g\n", 2 * w * x + b, x * x, x);
    tg_tape_reset();

    make_leaves(in); /* finite differences: (L(x + eps) - L(x - eps)) / 2eps */
    tg_gradcheck_result r;
    int bad = tg_gradcheck(expr_f, NULL, 3, in, 1e-3, 1e-2, &r);
    printf("\ntg_gradcheck (central differences, eps 1e-3): %lld numbers, "
           "largest error %.1e: %s\n", (long long)r.checked, r.max_err,
           bad ? "FAIL" : "ok");
    tg_tape_reset();
}

/* ---- 2. two steps of an LSTM cell, and backward through them ---------- */

static tg_cell *make_cell(const tg_cell_type *type)
{
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    return tg_cell_new(type, NI, NH, &rng);
}

typedef struct unrolled {
    tg_tensor *x[3], *h[3], *c[3]; /* x[1], x[2]; h[0], c[0]: the start */
    tg_tensor *loss;               /* L = sum(h2) */
    tg_tensor *cut[2];             /* detached h1, c1 (when truncated) */
} unrolled;

/* h_t, c_t = lstm(x_t, h_{t-1}, c_{t-1}) for t = 1, 2 from h0 = c0 = 0,
 * each step's entries tagged t; L = sum(h2). With truncate, step 2 starts
 * from detached copies of h1 and c1. */
static void two_steps(tg_cell *cell, unrolled *u, bool truncate)
{
    static const double xs[3][NI] = {{0, 0}, {1.0, -0.5}, {1.0, 1.0}};
    static const char *const names[3][3] = {
        {"", "x1", "x2"}, {"h0", "h1", "h2"}, {"c0", "c1", "c2"}};
    u->h[0] = tg_set_name(tg_zeros(TG_SHAPE(1, NH)), "h0");
    u->c[0] = tg_set_name(tg_zeros(TG_SHAPE(1, NH)), "c0");
    for (int t = 1; t <= 2; t++) {
        u->x[t] = tg_set_name(tg_requires_grad(row(NI, xs[t])), names[0][t]);
        tg_tensor *state[2] = {u->h[t - 1], u->c[t - 1]}, *next[2];
        if (truncate && t == 2) { /* same numbers, cut off from the tape */
            u->cut[0] = tg_set_name(tg_detach(u->h[1]), "h1.detached");
            u->cut[1] = tg_set_name(tg_detach(u->c[1]), "c1.detached");
            state[0] = u->cut[0];
            state[1] = u->cut[1];
        }
        tg_tape_set_step(t); /* tags the entries recorded from now on */
        tg_cell_step(cell, u->x[t], state, next);
        u->h[t] = tg_set_name(tg_retain_grad(next[0]), names[1][t]);
        u->c[t] = tg_set_name(tg_retain_grad(next[1]), names[2][t]);
    }
    tg_tape_set_step(-1);
    u->loss = tg_set_name(tg_sum(u->h[2]), "L");
}

static void sec_lstm(void)
{
    printf("== lstm: two steps of an LSTM cell (input 2, hidden 2, batch 1)"
           "\n\n");
    tg_cell *cell = make_cell(&tg_lstm_cell);
    unrolled u;
    two_steps(cell, &u, false);
    tg_tape_print(stdout);
    for (int t = 1; t <= 2; t++) {
        printf("h%d = ", t);
        print_vec("", u.h[t]->data, NH);
        printf("c%d = ", t);
        print_vec("", u.c[t]->data, NH);
    }
    printf("L = sum(h2) = %.4f\n", R4(tg_item(u.loss)));
    tg_tape_reset();
    tg_cell_free(cell);
}

static void print_bptt_grads(const unrolled *u)
{
    for (int t = 2; t >= 1; t--)
        for (int k = 0; k < 3; k++) {
            const tg_tensor *v = k == 0 ? u->h[t] : k == 1 ? u->c[t] : u->x[t];
            printf("%sdL/d%c%d = ", k ? "      " : t == 2 ? "t=2:  " : "t=1:  ",
                   "hcx"[k], t);
            if (v->grad)
                print_vec("", v->grad, NH);
            else
                printf("none (not reached)\n");
        }
}

static void sec_bptt(void)
{
    printf("== bptt: backward through the two LSTM steps, L = sum(h2)\n\n");
    tg_cell *cell = make_cell(&tg_lstm_cell);
    unrolled u;
    two_steps(cell, &u, false);
    tg_backward(u.loss);
    printf("tg_backward(L) ran the %lld entries from #%lld down to #0: the "
           "loss, step 2, step 1\n", (long long)entries_run(),
           (long long)u.loss->entry);
    print_bptt_grads(&u);
    printf("t=0:  dL/dh0, dL/dc0: none (zeros from tg_zeros: constants)\n");

    /* c1 was read by two entries, and each added its share into dL/dc1;
     * the entries point to the tensors their rules read (f2, o1, tanh c1) */
    tg_entry *e2 = reader(u.c[1], 2), *e1 = reader(u.c[1], 1);
    tg_entry *eh = tg_tape_entry(u.h[1]->entry); /* h1 = o1 * tanh(c1) */
    const tg_real *f2 = e2->in[0]->data, *o1 = eh->in[0]->data;
    const tg_real *th = eh->in[1]->data, *dc2 = u.c[2]->grad;
    tg_real a[NH], b[NH];
    for (int j = 0; j < NH; j++) { /* as the sweep computes them */
        a[j] = f2[j] * dc2[j];
        b[j] = (u.h[1]->grad[j] * o1[j]) * ((tg_real)1 - th[j] * th[j]);
    }
    print_vec("\ndL/dc1 is the sum of one share per entry that read c1: ",
              u.c[1]->grad, NH);
    printf("#%-3d %-4s [t=2] c2 = f2 * c1 + ...   adds f2 * dL/dc2      "
           "              = ", (int)e2->out->entry, e2->op->name);
    print_vec("", a, NH);
    printf("#%-3d %-4s [t=1] h1 = o1 * tanh(c1)   adds dL/dh1 * o1 * (1 - "
           "tanh(c1)^2) = ", (int)e1->out->entry, e1->op->name);
    print_vec("", b, NH);
    FILE *fp = dot_path ? fopen(dot_path, "w") : NULL;
    if (fp) { /* render: dot -Grankdir=TB -Tsvg FILE -o graph.svg */
        tg_tape_dot(fp, u.loss);
        fclose(fp);
    } else if (dot_path)
        perror(dot_path);
    tg_tape_reset();
    tg_cell_free(cell);
}

/* ---- 3. truncated BPTT -------------------------------------------------- */

static void sec_truncated(void)
{
    printf("== truncated: cutting the tape between the two steps\n\n");
    tg_cell *cell = make_cell(&tg_lstm_cell);
    unrolled u;
    two_steps(cell, &u, true);
    printf("step 2 starts from tg_detach(h1), tg_detach(c1); the entries that "
           "read them:\n");
    for (int k = 0; k < 2; k++) {
        tg_entry *e = reader(u.cut[k], 2);
        printf("#%d %s (..., %s, ...)\n", (int)e->out->entry, e->op->name,
               u.cut[k]->name);
    }
    tg_backward(u.loss);
    printf("backward ran %lld of the %lld entries\n", (long long)entries_run(),
           (long long)tg_tape_size());
    print_bptt_grads(&u);
    tg_tape_reset();
    tg_cell_free(cell);

    printf("\na long sequence in chunks of T = 2, the state carried by "
           "tg_rnn_keep_state:\n");
    tg_rng rng, data;
    tg_rng_seed(&rng, 7);
    tg_rng_seed(&data, 31);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, NI, NH, 1, 0.0, &rng);
    tg_tensor *keep[2] = {NULL, NULL};
    tg_rnn_out out;
    for (int chunk = 1; chunk <= 3; chunk++) {
        tg_tensor *x = tg_randn(TG_SHAPE(2, 1, NI), &data, 0, 1); /* [T,B,I] */
        tg_rnn_forward(r, x, chunk > 1 ? keep : NULL, true, NULL, &out);
        tg_backward(tg_sum(out.y));
        tg_rnn_keep_state(r, &out, keep); /* numbers only, no graph */
        printf("chunk %d: %lld entries, backward ran %lld, carried ", chunk,
               (long long)tg_tape_size(), (long long)entries_run());
        print_vec("h = ", keep[0]->data, NH);
        tg_tape_reset(); /* every temporary and entry of this chunk: gone */
    }
    tg_tensor_free(keep[0]);
    tg_tensor_free(keep[1]);
    tg_rnn_free(r);
}

/* ---- 4. memory per step ----------------------------------------------- */

static void sec_memory(void)
{
    printf("== memory: what LSTM steps leave in the arena "
           "(tg_arena_get_stats().used)\n");
    static const int sizes[2][3] = {{1, 2, 2}, {32, 64, 256}};
    for (int k = 0; k < 2; k++) {
        int B = sizes[k][0], I = sizes[k][1], H = sizes[k][2];
        printf("\nbatch %d, input %d, hidden %d:\n", B, I, H);
        printf("   T   entries   bytes after forward   after backward\n");
        tg_rng rng;
        tg_rng_seed(&rng, 7);
        tg_cell *cell = tg_cell_new(&tg_lstm_cell, I, H, &rng);
        int64_t n[5];        /* entries, for T = 1, 2, 4, 8, 16 */
        size_t fw[5], bw[5]; /* arena bytes after forward and backward */
        for (int q = 0; q < 5; q++) {
            tg_tensor *s[2] = {tg_zeros(TG_SHAPE(B, H)),
                               tg_zeros(TG_SHAPE(B, H))}, *next[2];
            for (int t = 0; t < 1 << q; t++) {
                tg_tensor *x = tg_randn(TG_SHAPE(B, I), &rng, 0, 1);
                tg_cell_step(cell, x, s, next);
                s[0] = next[0];
                s[1] = next[1];
            }
            n[q] = tg_tape_size();
            fw[q] = tg_arena_get_stats().used;
            tg_backward(tg_sum(s[0]));
            bw[q] = tg_arena_get_stats().used;
            printf("%4d %9lld %21zu %16zu\n", 1 << q, (long long)n[q], fw[q],
                   bw[q]);
            tg_tape_reset();
        }
        printf("each step (T = 8 to 16): %lld entries, %zu bytes in forward, "
               "%zu more in backward\n", (long long)(n[4] - n[3]) / 8,
               (fw[4] - fw[3]) / 8, (bw[4] - fw[4] - bw[3] + fw[3]) / 8);
        tg_cell_free(cell);
    }
    printf("\nan entry itself takes %zu bytes in the tape's array (outside "
           "the arena)\n", sizeof(tg_entry));
}

/* ---- 5. how gates change the backward path ---------------------------- */

/* J[i][j] = d s_T[k][i] / d s_0[k][j] for state k (0: h, 1: c) after T
 * steps of cell from s0 with inputs xs: a backward seeded with the unit
 * vector e_i differentiates L = s_T[k][i], so s_0[k]->grad is row i. */
static void jacobian(tg_cell *cell, int T, const double *xs,
                     const double s0[2][NH], int k, double J[NH][NH])
{
    for (int i = 0; i < NH; i++) {
        tg_tape_mark mark = tg_tape_mark_get();
        tg_tensor *s[2] = {tg_requires_grad(row(NH, s0[0])),
                           tg_requires_grad(row(NH, s0[1]))}, *next[2];
        tg_tensor *start = s[k];
        for (int t = 0; t < T; t++) {
            tg_cell_step(cell, row(NI, xs + NI * t), s, next);
            for (int q = 0; q < cell->type->nstate; q++) /* RNN: h only */
                s[q] = next[q];
        }
        tg_tensor *seed = tg_zeros(TG_SHAPE(1, NH));
        seed->data[i] = 1;
        tg_backward_seed(s[k], seed);
        for (int j = 0; j < NH; j++)
            J[i][j] = start->grad ? (double)start->grad[j] : 0;
        tg_tape_rewind(mark); /* forget this row's entries and tensors */
    }
}

/* the largest singular value of J, the most this backward path can
 * stretch a gradient; for 2 x 2, with F = sum of squares, d = det J:
 * sigma^2 = (F + sqrt(F^2 - 4 d^2)) / 2 */
_Static_assert(NH == 2, "norm2 is written for 2 x 2 matrices");
static double norm2(double J[NH][NH])
{
    double F = J[0][0] * J[0][0] + J[0][1] * J[0][1] + J[1][0] * J[1][0] +
               J[1][1] * J[1][1];
    double d = J[0][0] * J[1][1] - J[0][1] * J[1][0];
    return sqrt((F + sqrt(fmax(0, F * F - 4 * d * d))) / 2);
}

static void print_mat(const char *label, double J[NH][NH])
{
    printf("%s\n", label);
    for (int i = 0; i < NH; i++)
        printf("  [%.4f, %.4f]\n", R4(J[i][0]), R4(J[i][1]));
}

static void sec_jacobian(void)
{
    printf("== rnn-vs-lstm: the Jacobian of a step's state by the previous "
           "state\n\nx1, x2, ..., h0 and c0: random (seed 67)\n");
    enum { TMAX = 50 };
    double xs[TMAX * NI], s0[2][NH], J[NH][NH], D[NH][NH];
    tg_rng rng;
    tg_rng_seed(&rng, 67);
    for (int i = 0; i < TMAX * NI; i++)
        xs[i] = tg_rng_normal(&rng);
    for (int j = 0; j < 2 * NH; j++)
        s0[j / NH][j % NH] = 0.5 * tg_rng_normal(&rng);
    /* one recorded step of each cell, for the values h1 and f1 */
    tg_cell *rnn = make_cell(&tg_rnn_tanh_cell);
    tg_cell *lstm = make_cell(&tg_lstm_cell);
    tg_tensor *x1 = row(NI, xs), *c0 = tg_requires_grad(row(NH, s0[1]));
    tg_tensor *s[2] = {row(NH, s0[0]), c0}, *h1[1], *next[2];
    tg_cell_step(rnn, x1, s, h1);
    tg_cell_step(lstm, x1, s, next);

    printf("\nRNN: h1 = tanh(x1 W_ih^T + b_ih + h0 W_hh^T + b_hh)\n");
    jacobian(rnn, 1, xs, s0, 0, J);
    print_mat("dh1/dh0, row i from tg_backward_seed(h1, e_i):", J);
    for (int i = 0; i < NH * NH; i++) { /* W_hh [NH, NH] is contiguous */
        double y = (double)h1[0]->data[i / NH];
        D[i / NH][i % NH] = (1 - y * y) * (double)rnn->weight_hh->data[i];
    }
    print_mat("diag(1 - h1^2) W_hh, by hand:", D);
    printf("largest singular value: %.4f\n", R4(norm2(J)));

    printf("\nLSTM: c1 = f1 * c0 + i1 * g1,  h1 = o1 * tanh(c1)\n");
    jacobian(lstm, 1, xs, s0, 0, J);
    print_mat("dh1/dh0:", J);
    printf("largest singular value: %.4f\n", R4(norm2(J)));
    jacobian(lstm, 1, xs, s0, 1, J);
    print_mat("dc1/dc0:", J);
    /* f1 from the tape: the entry mul(f1, c0) points to it */
    print_vec("forget gate f1 = ", reader(c0, -1)->in[0]->data, NH);
    tg_tape_reset();

    printf("\nover T steps (inputs x1, x2, ... from the same seed), largest "
           "singular values:\n");
    printf("   T   RNN dh_T/dh_0   LSTM dh_T/dh_0   LSTM dc_T/dc_0   "
           "same, forget bias 3\n");
    tg_cell *lstm3 = make_cell(&tg_lstm_cell);
    tg_cell_set_forget_bias(lstm3, 3.0);
    tg_cell *cells[4] = {rnn, lstm, lstm, lstm3};
    static const int Ts[] = {1, 2, 5, 10, 20, 50};
    for (size_t n = 0; n < sizeof Ts / sizeof *Ts; n++) {
        printf("%4d", Ts[n]);
        for (int q = 0; q < 4; q++) {
            jacobian(cells[q], Ts[n], xs, s0, q >= 2, J);
            printf(" %*.1e", q == 0 ? 15 : q == 3 ? 20 : 16, norm2(J));
        }
        printf("\n");
    }
    tg_cell_free(rnn);
    tg_cell_free(lstm);
    tg_cell_free(lstm3);
}

/* ---- 7. compiled steps ------------------------------------------------- */

/* arena bytes per step of an LSTM layer (T = 8 to 16) after forward and
 * after backward, as written or compiled */
static void per_step(bool fuse, int B, int I, int H, size_t *fw, size_t *bw)
{
    bool was = tg_set_fusion(fuse);
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, I, H, 1, 0.0, &rng);
    size_t f[2], b[2];
    for (int q = 0; q < 2; q++) {
        tg_tensor *x = tg_randn(TG_SHAPE(8 << q, B, I), &rng, 0, 1);
        tg_rnn_out out;
        size_t at = tg_arena_get_stats().used;
        tg_rnn_forward(r, x, NULL, true, NULL, &out);
        f[q] = tg_arena_get_stats().used - at;
        tg_backward(tg_sum(out.y));
        b[q] = tg_arena_get_stats().used - at;
        tg_tape_reset();
    }
    *fw = (f[1] - f[0]) / 8;
    *bw = (b[1] - b[0]) / 8 - *fw;
    tg_rnn_free(r);
    tg_set_fusion(was);
}

static void sec_fused(void)
{
    printf("== fused: the LSTM of section 2 in the sequence layer, its step "
           "compiled\n\n");
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, NI, NH, 1, 0.0, &rng);
    /* persistent: used again after tg_tape_reset */
    tg_tensor *x = tg_tensor_new(TG_SHAPE(2, 1, NI));
    tg_fill_uniform_(x, &rng, -1, 1);
    tg_rnn_out out;
    tg_rnn_forward(r, x, NULL, true, NULL, &out);
    printf("the program (tg_prog_print):\n");
    tg_prog_print(r->layers[0]->prog[0], stdout);
    printf("\nthe tape of two steps (tg_tape_print):\n");
    tg_tape_print(stdout);
    tg_real h_fused[NH];
    memcpy(h_fused, out.h[1]->data, sizeof h_fused);
    tg_backward(tg_sum(out.y));
    tg_real g_fused[4 * NH * NH];
    memcpy(g_fused, r->layers[0]->weight_hh->grad, sizeof g_fused);
    tg_tape_reset();

    /* the same steps as written */
    tg_zero_grad(r->layers[0]->weight_hh);
    bool was = tg_set_fusion(false);
    tg_rnn_forward(r, x, NULL, true, NULL, &out);
    int64_t written = tg_tape_size();
    double dh = 0, dg = 0;
    for (int i = 0; i < NH; i++)
        dh = fmax(dh, fabs((double)(out.h[1]->data[i] - h_fused[i])));
    tg_backward(tg_sum(out.y));
    for (int i = 0; i < 4 * NH * NH; i++)
        dg = fmax(dg, fabs((double)(r->layers[0]->weight_hh->grad[i] -
                                    g_fused[i])));
    tg_set_fusion(was);
    tg_tape_reset();
    printf("\nas written the same two steps take %lld entries; h2 differs by "
           "%s, dL/dW_hh by %s\n", (long long)written,
           dh < 1e-6 ? "less than 1e-6" : "MORE than 1e-6",
           dg < 1e-6 ? "less than 1e-6" : "MORE than 1e-6");
    tg_tensor_free(x);
    tg_rnn_free(r);

    printf("\narena bytes per step, batch 32, input 64, hidden 256:\n"
           "              forward   backward adds\n");
    for (int fuse = 0; fuse < 2; fuse++) {
        size_t fw, bw;
        per_step(fuse, 32, 64, 256, &fw, &bw);
        printf("%-11s %9zu %16zu\n", fuse ? "compiled" : "as written", fw, bw);
    }
}

/* Section 8: forward mode on section 1's expression, then what each mode
 * costs: one reverse sweep gives df/dx, df/dw, df/db together; forward
 * mode needs one sweep per input direction. */
static void sec_forward(void)
{
    printf("== forward: J v in one sweep forward, on f = (x*w + b) * x\n\n");
    tg_tensor *in[3];
    make_leaves(in);
    tg_tensor *f = expr_f(in, NULL);
    const char *names[3] = {"x", "w", "b"};
    for (int k = 0; k < 3; k++) { /* one sweep per direction */
        for (int j = 0; j < 3; j++)
            tg_set_tangent(in[j], tg_scalar(j == k ? 1 : 0));
        tg_jvp();
        printf("direction d%s = 1 (others 0):", names[k]);
        for (int64_t i = 0; i < tg_tape_size(); i++) {
            const tg_tensor *y = tg_tape_entry(i)->out;
            printf("  d%s = %g", y->name, y->tangent ? (double)y->tangent[0] : 0.0);
        }
        printf("\n");
    }
    tg_backward(f);
    printf("\none reverse sweep instead: df/dx = %g, df/dw = %g, df/db = %g\n",
           (double)in[0]->grad[0], (double)in[1]->grad[0],
           (double)in[2]->grad[0]);
    printf("forward mode: 3 sweeps for 3 inputs (one per direction), "
           "all outputs at once;\nreverse mode: 1 sweep for 1 output, "
           "all inputs at once\n");
    tg_tape_reset();

    /* a Hessian-vector product: the dx sweep again, recorded, then reverse */
    make_leaves(in); /* (the reset freed them: they live in the arena) */
    f = expr_f(in, NULL);
    int64_t n0 = tg_tape_size();
    for (int j = 0; j < 3; j++)
        tg_set_tangent(in[j], tg_scalar(j == 0 ? 1 : 0));
    tg_jvp_create_graph(); /* the rules' own ops go on the tape */
    printf("\nH v, reverse over forward: the dx sweep again with its work "
           "recorded\n(tg_jvp_create_graph) appends %lld entries:",
           (long long)(tg_tape_size() - n0));
    for (int64_t i = n0; i < tg_tape_size(); i++) {
        char buf[32];
        printf(" %s", tg_entry_label(tg_tape_entry(i), buf, sizeof buf));
    }
    tg_tensor *df = tg_tangent(f); /* df = grad f . v, a recorded number */
    tg_backward(df);
    printf("\ndf = %g is grad f . v; its gradient is H v = (%g, %g, %g)\n",
           (double)df->data[0], (double)in[0]->grad[0],
           (double)in[1]->grad[0], (double)in[2]->grad[0]);
    printf("by hand, f = x^2 w + b x: H v = (d2f/dx2, d2f/dw dx, d2f/db dx) "
           "= (2w, 2x, 1) = (%g, %g, %g)\n",
           2 * (double)in[1]->data[0], 2 * (double)in[0]->data[0], 1.0);
    tg_tape_reset();
}

static const struct {
    const char *name;
    void (*run)(void);
} sections[] = {{"expr", sec_expr},           {"lstm", sec_lstm},
                {"bptt", sec_bptt},           {"truncated", sec_truncated},
                {"memory", sec_memory},       {"rnn-vs-lstm", sec_jacobian},
                {"fused", sec_fused},         {"forward", sec_forward}};
enum { NSEC = sizeof sections / sizeof *sections };

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "";
    if (argc == 4 && !strcmp(argv[2], "--dot"))
        dot_path = argv[3];
    else if (argc != 2)
        which = "";
    /* one thread: the numbers never depend on it, but the arena bytes
     * printed by sections 5 and 7 include per-thread scratch */
    tg_set_thread_governor(false);
    tg_set_num_threads(1);
    int ran = 0;
    for (int i = 0; i < NSEC; i++)
        if (!strcmp(which, "all") || !strcmp(which, sections[i].name)) {
            if (ran++)
                printf("\n");
            sections[i].run();
        }
    if (!ran) {
        fprintf(stderr, "usage: walkthrough SECTION [--dot FILE]\nsections:");
        for (int i = 0; i < NSEC; i++)
            fprintf(stderr, " %s", sections[i].name);
        fprintf(stderr, " all\n");
        return 2;
    }
    tg_tape_free_all();
    return 0;
}
