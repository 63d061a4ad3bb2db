/*
 * tests/grad_fuse.c - compiled (fused) steps against the steps as written.
 *
 * For every built-in cell and for cells written here to reach every code
 * of the vector machine (ops/fuse/fuse_vm.c), one forward and backward through
 * the sequence layer with fusion off and on, from the same parameters and
 * inputs. The bound, relative, in double: outputs within 1e-13 (a group
 * evaluates each member with the member's own expression), gradients within
 * 1e-12 (a group sums the contributions to one gradient in another order than
 * separate entries do; and a compiled step prepares its recurrent weight, whose
 * packed product adds in another order than the unprepared product of a few
 * rows). The fused path is also gradient-checked on its own, including
 * broadcast parameters, column broadcasts from a reduction and overlapping
 * reads of one input, which take the scratch path of the group's backward.
 */
#include "cells.h"
#include "harness.h"
#include "nn/rnn.h"
#include "rnn_check.h"

/* ---- cells that exercise the compiler (zoo, sliced: tests/cells.h) --- */

/* a hard gate: forward [a > 0], backward sigmoid' (not gradient-checkable,
 * compared with the unfused path only) */
static void hard_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    tg_tensor *h = s[0], *g[2];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 2, 1, g);
    tg_tensor *mask = tg_step_ste(g[0]);
    next[0] = tg_add(h, tg_mul(mask, tg_sub(tg_tanh(g[1]), h)));
}
static const tg_cell_type hard = {
    "hard", .nstate = 1, .gates = 2, .step = hard_step};


/* dropout inside the step: draws random numbers, so never compiled */
static void noisy_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                       tg_tensor **next)
{
    tg_tensor *a = tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh));
    next[0] = tg_tanh(tg_dropout(a, 0.5, true, NULL));
}
static const tg_cell_type noisy = {
    "noisy", .nstate = 1, .gates = 1, .step = noisy_step};

/* ---- one forward and backward ------------------------------------------ */
typedef struct run {
    tg_real *y, *state, *grads; /* copies */
    int64_t ny, nstate, ngrads;
} run;

static void copy_out(tg_real **dst, int64_t *n, const tg_tensor *t)
{
    *n = t->numel;
    *dst = malloc((size_t)t->numel * sizeof(tg_real));
    tg_to_buffer(t, *dst);
}

/* x, state0 and every parameter get gradients of L = sum(y * R) +
 * sum(state * R2); returns the numbers and the gradients */
static run one_run(tg_rnn *r, int64_t T, int64_t B, bool fuse)
{
    tg_set_fusion(fuse);
    int ns = r->type->nstate, L = r->num_layers;
    int64_t H = r->hidden_size;
    tg_tensor *x = tgt_leaf(TG_SHAPE(T, B, r->input_size), 11, -1, 1);
    tg_tensor *s0[TG_CELL_MAX_STATE];
    for (int k = 0; k < ns; k++)
        s0[k] = tgt_leaf(TG_SHAPE(L, B, H), 12 + k, -0.5, 0.5);
    for (int i = 0; i < tg_params_count(&r->params); i++)
        tg_zero_grad(tg_params_at(&r->params, i)->tensor);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, x, s0, true, NULL, &out), 0);
    tg_tensor *Ry = tgt_leaf(TG_SHAPE(T, B, H), 21, -1, 1);
    tg_tensor *Rs = tgt_leaf(TG_SHAPE(L, B, H), 22, -1, 1);
    tg_tensor *loss = tg_add(tg_sum(tg_mul(out.y, Ry)),
                             tg_sum(tg_mul(out.state[ns - 1], Rs)));
    ck_assert_int_eq(tg_backward(loss), 0);
    run res;
    copy_out(&res.y, &res.ny, out.y);
    copy_out(&res.state, &res.nstate, out.state[ns - 1]);
    int64_t n = x->numel;
    for (int k = 0; k < ns; k++)
        n += s0[k]->numel;
    for (int i = 0; i < tg_params_count(&r->params); i++)
        n += tg_params_at(&r->params, i)->tensor->numel;
    res.grads = calloc((size_t)n, sizeof(tg_real));
    res.ngrads = n;
    int64_t at = 0;
    memcpy(res.grads, x->grad, (size_t)x->numel * sizeof(tg_real));
    at += x->numel;
    for (int k = 0; k < ns; k++) {
        memcpy(res.grads + at, s0[k]->grad, (size_t)s0[k]->numel * sizeof(tg_real));
        at += s0[k]->numel;
    }
    for (int i = 0; i < tg_params_count(&r->params); i++) {
        tg_tensor *p = tg_params_at(&r->params, i)->tensor;
        if (p->grad)
            memcpy(res.grads + at, p->grad, (size_t)p->numel * sizeof(tg_real));
        at += p->numel;
    }
    tg_tape_reset();
    tg_set_fusion(true);
    return res;
}

static void free_run(run *r)
{
    free(r->y);
    free(r->state);
    free(r->grads);
}

/* max |a - b| / max(1, |b|) */
static double max_rel(const tg_real *a, const tg_real *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(d <= m))
            m = d; /* NaN wins */
    }
    return m;
}

/* fused against unfused for one cell and size; returns whether compiled */
static bool compare(const tg_cell_type *type, int I, int H, int L, int T, int B)
{
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_rnn *r = tg_rnn_new(type, I, H, L, 0.0, &rng);
    ck_assert_ptr_nonnull(r);
    run plain = one_run(r, T, B, false);
    ck_assert_ptr_null(r->layers[0]->prog[0]); /* fusion off: never traced */
    run fused = one_run(r, T, B, true);
    bool compiled = tg_prog_ok(r->layers[0]->prog[0]);
    double dy = max_rel(fused.y, plain.y, plain.ny);
    double ds = max_rel(fused.state, plain.state, plain.nstate);
    double dg = max_rel(fused.grads, plain.grads, plain.ngrads);
    printf("fused vs unfused %-8s I=%d H=%d L=%d T=%d B=%d: %s; y %.1e, "
           "state %.1e, gradients %.1e\n", type->name, I, H, L, T, B,
           compiled ? "compiled" : tg_prog_why(r->layers[0]->prog[0]), dy, ds,
           dg);
    ck_assert_msg(dy <= 1e-13 && ds <= 1e-13, "%s: fused outputs differ "
                  "(%g, %g)", type->name, dy, ds);
    ck_assert_msg(dg <= 1e-12, "%s: fused gradients differ by %g", type->name,
                  dg);
    free_run(&plain);
    free_run(&fused);
    tg_rnn_free(r);
    return compiled;
}

START_TEST(builtin_cells_match)
{
    const tg_cell_type *types[] = {&tg_lstm_cell, &tg_gru_cell,
                                   &tg_rnn_tanh_cell, &tg_rnn_relu_cell};
    for (int i = 0; i < 4; i++) {
        ck_assert(compare(types[i], 3, 5, 2, 6, 3));
        ck_assert(compare(types[i], 4, 300, 1, 3, 2)); /* partial blocks */
        ck_assert(compare(types[i], 2, 4, 1, 5, 1));   /* one row */
    }
}
END_TEST

START_TEST(custom_cells_match)
{
    ck_assert(compare(&zoo, 3, 6, 2, 5, 3));
    ck_assert(compare(&zoo, 3, 260, 1, 3, 2));
    ck_assert(compare(&hard, 3, 5, 2, 5, 3));
    ck_assert(compare(&sliced, 3, 5, 2, 5, 3));
}
END_TEST

/* ---- gradient checks through compiled steps --------------------------- */
static void gradcheck_cell(const tg_cell_type *type, int L)
{
    enum { T = 4, B = 2, I = 3, H = 4 };
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_rnn *rnn = tg_rnn_new(type, I, H, L, 0.0, &rng);
    tgt_gradcheck_rnn(rnn, T, B, type->name);
    ck_assert_msg(tg_prog_ok(rnn->layers[0]->prog[0]), "%s was not compiled: "
                  "%s", type->name, tg_prog_why(rnn->layers[0]->prog[0]));
    tg_rnn_free(rnn);
}

START_TEST(gradcheck_compiled)
{
    gradcheck_cell(&zoo, 2);
    gradcheck_cell(&sliced, 1);
    gradcheck_cell(&tg_lstm_cell, 2);
    gradcheck_cell(&tg_gru_cell, 1);
}
END_TEST

/* ---- what the programs look like ---------------------------------------- */
START_TEST(program_structure)
{
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 8, 1, 0.0, NULL);
    tg_tensor *x = tgt_leaf(TG_SHAPE(4, 2, 3), 1, -1, 1);
    tg_rnn_out out;
    int64_t before = tg_tape_size();
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    /* per step (the traced one too: it was undone and run compiled):
     * select, linear_into, one fused group */
    int64_t fused = 0, per_step[4] = {0};
    for (int64_t i = before; i < tg_tape_size(); i++) {
        tg_entry *e = tg_tape_entry(i);
        if (e->step >= 0)
            per_step[e->step]++;
        if (!strcmp(e->op->name, "fused")) {
            fused++;
            ck_assert_int_eq(e->nout, 2); /* c and h */
            char label[256];
            ck_assert(strstr(tg_entry_label(e, label, sizeof label),
                             "fused[sigmoid sigmoid tanh sigmoid mul"));
        }
    }
    ck_assert_int_eq(fused, 4);
    for (int t = 0; t < 4; t++)
        ck_assert_int_eq(per_step[t], 3);
    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    tg_prog_print(r->layers[0]->prog[0], f);
    fclose(f);
    ck_assert_msg(strstr(buf, "once per sequence:\n  prepare"), "%s", buf);
    ck_assert_msg(strstr(buf, "every step:\n  linear_into"), "%s", buf);
    ck_assert_msg(strstr(buf, "-> 2 x [2, 8]"), "%s", buf);
    tg_rnn_free(r);

    /* weight slices move out of the loop: once per sequence */
    r = tg_rnn_new(&sliced, 3, 8, 1, 0.0, NULL);
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    f = fmemopen(buf, sizeof buf, "w");
    tg_prog_print(r->layers[0]->prog[0], f);
    fclose(f);
    ck_assert_msg(strstr(buf, "once per sequence:\n  chunk"), "%s", buf);
    tg_rnn_free(r);

    /* a step with dropout is not compiled, and says why */
    r = tg_rnn_new(&noisy, 3, 8, 1, 0.0, NULL);
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    ck_assert(!tg_prog_ok(r->layers[0]->prog[0]));
    ck_assert(strstr(tg_prog_why(r->layers[0]->prog[0]), "dropout"));
    tg_rnn_free(r);
}
END_TEST

/* one large LSTM step, forward and backward, on 1 and 2 threads */
static void lstm_run(int threads, tg_real **y, tg_real **g, int64_t *ny,
                     int64_t *ng)
{
    tg_set_thread_governor(false); /* really run on `threads` threads */
    tg_set_num_threads(threads);
    tg_rng rng;
    tg_rng_seed(&rng, 8);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 16, 512, 1, 0.0, &rng);
    tg_tensor *x = tgt_leaf(TG_SHAPE(3, 64, 16), 1, -1, 1);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    ck_assert(tg_prog_ok(r->layers[0]->prog[0]));
    tg_tensor *R = tgt_leaf(TG_SHAPE(3, 64, 512), 2, -1, 1);
    ck_assert_int_eq(tg_backward(tg_sum(tg_mul(out.y, R))), 0);
    copy_out(y, ny, out.y);
    *ng = x->numel;
    *g = malloc((size_t)x->numel * sizeof(tg_real));
    memcpy(*g, x->grad, (size_t)x->numel * sizeof(tg_real));
    tg_tape_reset();
    tg_rnn_free(r);
}

START_TEST(thread_count_does_not_matter)
{
    tg_real *y1, *g1, *y2, *g2;
    int64_t ny, ng;
    lstm_run(1, &y1, &g1, &ny, &ng);
    lstm_run(2, &y2, &g2, &ny, &ng);
    ck_assert(!memcmp(y1, y2, (size_t)ny * sizeof(tg_real)));
    ck_assert(!memcmp(g1, g2, (size_t)ng * sizeof(tg_real)));
    free(y1);
    free(g1);
    free(y2);
    free(g2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_fuse");
    TCase *tc = tcase_create("fuse");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, builtin_cells_match);
    tcase_add_test(tc, custom_cells_match);
    tcase_add_test(tc, gradcheck_compiled);
    tcase_add_test(tc, program_structure);
    tcase_add_test(tc, thread_count_does_not_matter);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
