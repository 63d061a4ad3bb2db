/*
 * tests/grad_fuse_guards.c - what a compiled step assumes, and what
 * happens when the assumption breaks (ops/fuse.h, "Guards and
 * lifetimes"). Each case is a schedule run twice from the same parameters
 * and inputs, with fusion off (the reference) and on, compared in double:
 *   - forwards at several batch sizes in flight before one backward (a
 *     program must outlive the tape entries that use it);
 *   - a cell that reads a scale and a mask through its declared user
 *     block, changed, replaced and written in place between batches (the
 *     guards re-trace; nothing stale);
 *   - a Light GRU whose weights are column slices (and slices of slices)
 *     of one parameter;
 *   - steps the compiler must refuse (an undeclared user pointer, a
 *     temporary read from outside the step), and a step whose output has
 *     the wrong shape: the same error on both paths;
 *   - 0-d values a group computes and another group reads; a group whose
 *     outputs do not all depend on an input that requires grad;
 *   - retained gradients of h_t: read again inside its own fused group
 *     (at its own map and at others), a view, or computed once per
 *     sequence (one tensor and one gradient per step all the same).
 */
#include "harness.h"
#include "nn/rnn.h"

/* max |a - b| / max(1, |b|) over two tensors of one shape */
static double max_rel_t(const tg_tensor *a, const tg_tensor *b)
{
    ck_assert_int_eq(a->numel, b->numel);
    double m = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = tg_flat_get(a, i), y = tg_flat_get(b, i);
        double d = fabs(x - y) / fmax(1.0, fabs(y));
        if (!(d <= m))
            m = d; /* NaN wins */
    }
    return m;
}

/* copies of every parameter gradient of r, concatenated (heap) */
static tg_tensor *param_grads(const tg_rnn *r)
{
    int64_t n = 0;
    for (int i = 0; i < tg_params_count(&r->params); i++)
        n += tg_params_at(&r->params, i)->tensor->numel;
    tg_tensor *g = tg_tensor_new(TG_SHAPE(n));
    int64_t at = 0;
    for (int i = 0; i < tg_params_count(&r->params); i++) {
        const tg_tensor *p = tg_params_at(&r->params, i)->tensor;
        if (p->grad)
            memcpy(g->data + at, p->grad, (size_t)p->numel * sizeof(tg_real));
        at += p->numel;
    }
    return g;
}

static void zero_param_grads(tg_rnn *r)
{
    for (int i = 0; i < tg_params_count(&r->params); i++)
        tg_zero_grad(tg_params_at(&r->params, i)->tensor);
}

static tg_tensor *keep(const tg_tensor *t)
{
    tg_tensor *k = tg_tensor_new(t->ndim, t->shape);
    tg_copy_(k, t);
    return k;
}

/* ---- 1. batch sizes in flight ---------------------------------------- */
/* Forward at B = 3, a no-grad evaluation at B = 2, forward at B = 5, at
 * B = 3 again, then one backward of the sum of the three losses; returns
 * the parameter gradients and the last output. */
static void in_flight(const tg_cell_type *type, bool fuse, tg_tensor **grads,
                      tg_tensor **y)
{
    tg_set_fusion(fuse);
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_rnn *r = tg_rnn_new(type, 3, 6, 2, 0.0, &rng);
    ck_assert_ptr_nonnull(r);
    zero_param_grads(r);
    const int64_t Bs[] = {3, 2, 5, 3};
    tg_tensor *loss = NULL;
    tg_rnn_out out;
    for (int i = 0; i < 4; i++) {
        bool eval = i == 1;
        bool was = tg_set_grad_enabled(!eval);
        tg_tensor *x = tgt_leaf(TG_SHAPE(4, Bs[i], 3), 30 + (uint64_t)i, -1, 1);
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, !eval, NULL, &out), 0);
        tg_set_grad_enabled(was);
        if (eval)
            continue;
        tg_tensor *R = tgt_leaf(TG_SHAPE(4, Bs[i], 6), 40 + (uint64_t)i, -1, 1);
        tg_tensor *l = tg_sum(tg_mul(out.y, R));
        loss = loss ? tg_add(loss, l) : l;
    }
    ck_assert_int_eq(tg_backward(loss), 0);
    *grads = param_grads(r);
    *y = keep(out.y);
    tg_tape_reset();
    tg_rnn_free(r);
    tg_set_fusion(true);
}

START_TEST(batch_sizes_in_flight)
{
    const tg_cell_type *types[] = {&tg_lstm_cell, &tg_gru_cell,
                                   &tg_rnn_tanh_cell};
    for (int i = 0; i < 3; i++) {
        tg_tensor *g0, *y0, *g1, *y1;
        in_flight(types[i], false, &g0, &y0);
        in_flight(types[i], true, &g1, &y1);
        double dy = max_rel_t(y1, y0), dg = max_rel_t(g1, g0);
        printf("%s, 4 forwards at B = 3, 2, 5, 3 then one backward: fused "
               "against unfused y %.1e, gradients %.1e\n", types[i]->name,
               dy, dg);
        ck_assert_msg(dy <= 1e-13 && dg <= 1e-12, "%s: %g %g", types[i]->name,
                      dy, dg);
        tg_tensor_free(g0);
        tg_tensor_free(y0);
        tg_tensor_free(g1);
        tg_tensor_free(y1);
    }
}
END_TEST

/* Programs stay cached per batch size: alternating sizes traces each
 * once. More sizes than the cache holds: the programs dropped from it
 * live on while the tape still uses them. */
START_TEST(programs_cached_and_kept_alive)
{
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 5, 1, 0.0, NULL);
    tg_tensor *x3 = tgt_leaf(TG_SHAPE(2, 3, 3), 1, -1, 1);
    tg_tensor *x5 = tgt_leaf(TG_SHAPE(2, 5, 3), 2, -1, 1);
    tg_rnn_out o3, o5;
    ck_assert_int_eq(tg_rnn_forward(r, x3, NULL, true, NULL, &o3), 0);
    tg_prog *p3 = r->layers[0]->prog[0];
    ck_assert_int_eq(tg_rnn_forward(r, x5, NULL, true, NULL, &o5), 0);
    tg_prog *p5 = r->layers[0]->prog[0];
    ck_assert_ptr_ne(p3, p5);
    ck_assert_int_eq(tg_rnn_forward(r, x3, NULL, true, NULL, &o3), 0);
    ck_assert_ptr_eq(r->layers[0]->prog[0], p3); /* from the cache */
    ck_assert_ptr_eq(r->layers[0]->prog[1], p5);
    tg_tensor *loss = tg_add(tg_sum(o3.y), tg_sum(o5.y));
    /* 2 * TG_CELL_PROGS more batch sizes: p3 and p5 leave the cache */
    for (int64_t B = 6; B < 6 + 2 * TG_CELL_PROGS; B++) {
        tg_tensor *x = tgt_leaf(TG_SHAPE(2, B, 3), (uint64_t)B, -1, 1);
        tg_rnn_out o;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &o), 0);
        loss = tg_add(loss, tg_sum(o.y));
    }
    for (int k = 0; k < TG_CELL_PROGS; k++)
        ck_assert(r->layers[0]->prog[k] != p3 && r->layers[0]->prog[k] != p5);
    ck_assert_int_eq(tg_backward(loss), 0);
    char buf[1 << 16];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    tg_tape_print(f); /* reads every group's label */
    fclose(f);
    ck_assert(strstr(buf, "fused["));
    tg_tape_reset();
    tg_rnn_free(r);
}
END_TEST

/* ---- 2. state read through the user block ----------------------------- */
typedef struct scaled_user {
    double scale;
    tg_tensor *mask; /* [H], broadcast over the batch; NULL: none */
} scaled_user;

/* h' = scale * tanh(xp + h W^T + b) + mask * h */
static void scaled_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                        tg_tensor **next)
{
    const scaled_user *u = c->user;
    tg_tensor *a = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
    tg_tensor *h = tg_mul_scalar(a, u->scale);
    next[0] = u->mask ? tg_add(h, tg_mul(u->mask, s[0])) : h;
}
static const tg_cell_type scaled = {
    "scaled", .nstate = 1, .gates = 1, .step = scaled_step,
                                    .user_size = sizeof(scaled_user)};

/* the same cell, but its type does not declare the block's size */
static const tg_cell_type undeclared = {
    "undeclared", .nstate = 1, .gates = 1, .step = scaled_step};

typedef struct sched_out {
    tg_tensor *y[6], *g[6];
    char why[6][512];
    bool compiled[6];
} sched_out;

/* Six batches; between them the scale changes, the mask is replaced (by
 * a persistent tensor, then by a temporary made for the batch) and
 * written in place. */
static void run_schedule(const tg_cell_type *type, bool fuse, sched_out *o)
{
    tg_set_fusion(fuse);
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    enum { T = 3, B = 2, I = 3, H = 4 };
    tg_rnn *r = tg_rnn_new(type, I, H, 1, 0.0, &rng);
    ck_assert_ptr_nonnull(r);
    scaled_user fallback = {1, NULL};
    tg_cell *c = r->layers[0];
    if (!c->user)
        c->user = &fallback; /* the undeclared type: a pointer of its own */
    scaled_user *u = c->user;
    tg_tensor *m1 = keep(tg_rand(TG_SHAPE(H), &rng, 0, 1)); /* persistent */
    tg_tensor *m2 = keep(tg_rand(TG_SHAPE(H), &rng, -1, 0));
    for (int b = 0; b < 6; b++) {
        switch (b) {
        case 0: u->scale = 1; u->mask = NULL; break;
        case 1: u->scale = 0; break;                /* a C scalar      */
        case 2: u->scale = 0.5; u->mask = m1; break; /* a tensor       */
        case 3: u->mask = m2; break;                /* replaced        */
        case 4: tg_fill_(m2, 0.25); break;          /* in place        */
        case 5: /* a temporary made for this batch only */
            u->mask = tg_full(TG_SHAPE(H), -0.75);
            break;
        }
        zero_param_grads(r);
        tg_tensor *x = tgt_leaf(TG_SHAPE(T, B, I), 50 + (uint64_t)b, -1, 1);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
        ck_assert_int_eq(tg_backward(tg_sum(tg_mul(out.y, out.y))), 0);
        o->y[b] = keep(out.y);
        o->g[b] = param_grads(r);
        o->compiled[b] = tg_prog_ok(c->prog[0]);
        snprintf(o->why[b], sizeof o->why[b], "%s",
                 c->prog[0] ? tg_prog_why(c->prog[0]) : "");
        tg_tape_reset();
    }
    if (c->user == &fallback)
        c->user = NULL;
    tg_tensor_free(m1);
    tg_tensor_free(m2);
    tg_rnn_free(r);
    tg_set_fusion(true);
}

static void free_sched(sched_out *o)
{
    for (int b = 0; b < 6; b++) {
        tg_tensor_free(o->y[b]);
        tg_tensor_free(o->g[b]);
    }
}

START_TEST(user_block_is_guarded)
{
    sched_out ref, fused;
    run_schedule(&scaled, false, &ref);
    run_schedule(&scaled, true, &fused);
    /* tg_prog_why: the guard failures so far, one line each. Batch 4
     * needs no new trace (the mask is read live, and its version is
     * taken as the sequence begins) */
    const int traces[6] = {0, 1, 2, 3, 3, 4};
    for (int b = 0; b < 6; b++) {
        double dy = max_rel_t(fused.y[b], ref.y[b]);
        double dg = max_rel_t(fused.g[b], ref.g[b]);
        printf("scaled, batch %d: %s; y %.1e, gradients %.1e; why: %s\n", b,
               fused.compiled[b] ? "compiled" : "as written", dy, dg,
               fused.why[b]);
        ck_assert_msg(fused.compiled[b], "batch %d not compiled: %s", b,
                      fused.why[b]);
        ck_assert_msg(dy <= 1e-13 && dg <= 1e-12, "batch %d: stale? %g %g", b,
                      dy, dg);
        int n = 0;
        for (const char *w = fused.why[b]; (w = strstr(w, "traced again at "
                                            "layer 0, time step 0: the user "
                                            "block changed (byte "));
             w++)
            n++;
        ck_assert_msg(n == traces[b], "batch %d: why '%s'", b, fused.why[b]);
    }
    /* batch 1 really differs from batch 0 (the scale went to 0) */
    ck_assert(tg_flat_get(ref.y[1], 0) == 0 && tg_flat_get(ref.y[0], 0) != 0);
    free_sched(&ref);
    free_sched(&fused);
}
END_TEST

START_TEST(undeclared_user_pointer_is_not_compiled)
{
    sched_out ref, fused;
    run_schedule(&undeclared, false, &ref);
    run_schedule(&undeclared, true, &fused);
    for (int b = 0; b < 6; b++) {
        ck_assert_msg(!fused.compiled[b], "batch %d compiled", b);
        ck_assert_msg(strstr(fused.why[b], "user_size"), "%s", fused.why[b]);
        ck_assert(max_rel_t(fused.y[b], ref.y[b]) == 0);
        ck_assert(max_rel_t(fused.g[b], ref.g[b]) == 0);
    }
    free_sched(&ref);
    free_sched(&fused);
}
END_TEST

/* a temporary reached from outside the step other than through the user
 * block: the compiler cannot see it change, so it refuses */
static tg_tensor *global_mask;
static void global_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                        tg_tensor **next)
{
    tg_tensor *a = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
    next[0] = tg_mul(a, global_mask);
}
static const tg_cell_type global = {
    "global", .nstate = 1, .gates = 1, .step = global_step};

START_TEST(outside_temporary_is_refused)
{
    tg_rnn *r = tg_rnn_new(&global, 3, 4, 1, 0.0, NULL);
    tg_tensor *x = tgt_leaf(TG_SHAPE(2, 2, 3), 1, -1, 1);
    tg_rnn_out out;
    global_mask = tg_full(TG_SHAPE(4), 2.0);
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    const tg_prog *p = r->layers[0]->prog[0];
    ck_assert(!tg_prog_ok(p));
    ck_assert_msg(strstr(tg_prog_why(p), "'mul'") &&
                  strstr(tg_prog_why(p), "user block"), "%s", tg_prog_why(p));
    tg_tape_reset();
    /* a new mask next batch: read as written, so it is seen */
    x = tgt_leaf(TG_SHAPE(2, 2, 3), 1, -1, 1);
    global_mask = tg_full(TG_SHAPE(4), 0.0);
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    ck_assert(tg_flat_get(out.y, 0) == 0);
    tg_tape_reset();
    tg_rnn_free(r);
}
END_TEST

/* A captured tensor written in place during a sequence: what the
 * program computed from it once per sequence (a slice, a packed copy) is
 * computed again, at the program level (tg_prog_*). */
static void slice_step(void *ctx, tg_tensor *const *in, tg_tensor **out)
{
    tg_tensor *W = ctx; /* [6, 3]: its first 4 rows */
    out[0] = tg_tanh(tg_linear(in[0], tg_slice(W, 0, 0, 4, 1), NULL));
}

START_TEST(in_place_change_during_a_sequence)
{
    tg_tensor *W = tg_tensor_new(TG_SHAPE(6, 3));
    tg_fill_(W, 0.25);
    tg_tensor *x = tgt_leaf(TG_SHAPE(9, 3), 3, -1, 1); /* 9 rows: packed */
    bool was = tg_set_grad_enabled(false);
    tg_tensor *out[1];
    tg_prog *p = tg_prog_trace(slice_step, W, 1, &x, 1, out, 0, NULL);
    ck_assert_msg(tg_prog_ok(p), "%s", tg_prog_why(p));
    ck_assert_ptr_null(tg_prog_check(p, 1, &x, NULL));
    ck_assert_int_eq(tg_prog_begin(p), 0);
    tg_tensor *want[2];
    for (int k = 0; k < 2; k++) {
        if (k)
            tg_fill_(W, -0.5); /* in place, between two steps */
        slice_step(W, &x, want + k);
        ck_assert_int_eq(tg_prog_run(p, &x, out), 0);
        ck_assert(max_rel_t(out[0], want[k]) <= 1e-15);
    }
    ck_assert(max_rel_t(want[0], want[1]) > 0.1);
    ck_assert_msg(strstr(tg_prog_why(p), "changed in place"), "%s",
                  tg_prog_why(p));
    /* and the guards' words for other inputs */
    tg_tensor *y = tgt_leaf(TG_SHAPE(2, 3), 3, -1, 1);
    ck_assert(strstr(tg_prog_check(p, 1, &y, NULL), "input 0 is [2, 3]"));
    char block[8] = {0};
    tg_prog_env env = {block, sizeof block};
    ck_assert(strstr(tg_prog_check(p, 1, &x, &env), "user block moved"));
    tg_set_grad_enabled(was);
    tg_prog_free(p);
    tg_tensor_free(W);
}
END_TEST

/* A temporary held in the user block, and after two tg_tape_reset another
 * temporary at the same address: the block's bytes are the same, the
 * identity guard (address and id) is what sees the change. */
typedef struct mask_user {
    tg_tensor *mask;
} mask_user;

static void mask_step(void *ctx, tg_tensor *const *in, tg_tensor **out)
{
    const mask_user *u = ctx;
    out[0] = tg_tanh(tg_mul(in[0], u->mask));
}

START_TEST(captured_tensor_replaced_at_its_address)
{
    mask_user u;
    tg_prog_env env = {&u, sizeof u};
    tg_tensor *x = tg_tensor_new(TG_SHAPE(2, 3)); /* persistent */
    tg_fill_(x, 0.5);
    tg_tensor *out[1];
    u.mask = tg_full(TG_SHAPE(3), 2.0); /* the first temporary made */
    tg_prog *p = tg_prog_trace(mask_step, &u, 1, &x, 1, out, 0, &env);
    ck_assert_msg(tg_prog_ok(p), "%s", tg_prog_why(p));
    ck_assert_ptr_null(tg_prog_check(p, 1, &x, &env));
    tg_tensor *first = u.mask;
    /* headers of successive generations alternate between two pools
     * (tensor/arena.c), so the second reset hands out the same one */
    tg_tape_reset();
    tg_tape_reset();
    u.mask = tg_full(TG_SHAPE(3), -1.0);
    ck_assert_ptr_eq(u.mask, first);
    const char *why = tg_prog_check(p, 1, &x, &env);
    ck_assert_msg(why && strstr(why, "is gone"), "%s", why ? why : "NULL");
    tg_prog_free(p);
    tg_tensor_free(x);
}
END_TEST

/* A weight (a slice of a slice of weight_hh, prepared when compiled)
 * changed in place between forward and backward: both paths refuse the
 * backward, naming 'linear' - the replayed views and the prepared weight
 * count the changes of the parameter's numbers, as views do. */
static void sliced_w_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    (void)xp;
    tg_tensor *w = tg_slice(tg_slice(c->weight_hh, 0, 1, 30, 1), 0, 5, 21, 1);
    next[0] = tg_tanh(tg_linear(tg_relu(s[0]), w, NULL));
}
static const tg_cell_type sliced_w = {
    "sliced_w", .nstate = 1, .gates = 2, .step = sliced_w_step};

START_TEST(weight_changed_before_backward)
{
    tgt_capture_errors();
    for (int f = 0; f < 2; f++) {
        tg_set_fusion(f);
        tg_rnn *r = tg_rnn_new(&sliced_w, 5, 16, 1, 0.0, NULL);
        tg_tensor *x = tgt_leaf(TG_SHAPE(3, 2, 5), 1, -1, 1);
        tg_tensor *s0 = tgt_leaf(TG_SHAPE(1, 2, 16), 2, -1, 1);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, &s0, true, NULL, &out), 0);
        tg_fill_(r->layers[0]->weight_hh, 0.5);
        ck_assert_int_eq(tg_backward(tg_sum(out.y)), -1);
        tgt_expect_error("backward", "op 'linear'", "changed in place");
        tg_tape_reset();
        tg_rnn_free(r);
    }
    tg_set_fusion(true);
}
END_TEST

/* The same change before tg_jvp (forward mode reads the numbers backward
 * would), in three cells: the plain tanh cell at B = 8 (compiled, the
 * prepared weight_hh is packed for products of 8 rows: the tangent would
 * use the numbers from before the change, unfused those from after),
 * the slice of a slice, and a captured mask written in place. Tangents
 * on x and h_0, or on weight_hh: both paths refuse, naming the op
 * that reads the tensor and the tensor, before any tangent is computed. */
static const struct {
    const tg_cell_type *type;
    int B;
    const char *op, *what; /* fragments of the message */
} jvp_cases[] = {
    {&tg_rnn_tanh_cell, 8, "op 'linear", "weight_hh"},
    {&sliced_w, 2, "op 'linear", "[16, 16]"}, /* a view: #N[16, 16] */
    {&scaled, 3, "", "changed in place"},
};

START_TEST(weight_changed_before_jvp)
{
    tgt_capture_errors();
    for (size_t i = 0; i < sizeof jvp_cases / sizeof *jvp_cases; i++)
        for (int on = 0; on < 2; on++)
            for (int f = 0; f < 2; f++) {
                tg_set_fusion(f);
                tg_rnn *r = tg_rnn_new(jvp_cases[i].type, 5, 16, 1, 0.0, NULL);
                tg_cell *c = r->layers[0];
                tg_tensor *m = keep(tg_full(TG_SHAPE(16), 0.5));
                if (c->user)
                    *(scaled_user *)c->user = (scaled_user){0.5, m};
                int64_t B = jvp_cases[i].B;
                tg_tensor *x = tgt_leaf(TG_SHAPE(3, B, 5), 1, -1, 1);
                tg_tensor *s0 = tgt_leaf(TG_SHAPE(1, B, 16), 2, -1, 1);
                tg_rnn_out out;
                ck_assert_int_eq(tg_rnn_forward(r, x, &s0, true, NULL, &out),
                                 0);
                ck_assert(!f || tg_prog_ok(c->prog[0]));
                if (c->user)
                    tg_fill_(m, 0.25);
                else
                    tg_fill_(c->weight_hh, 0.5);
                if (on) {
                    tg_tensor *w = c->weight_hh;
                    tg_set_tangent(w, tg_full(w->ndim, w->shape, 1));
                } else { /* (sliced_w reads no x) */
                    tg_set_tangent(x, tg_full(x->ndim, x->shape, 1));
                    tg_set_tangent(s0, tg_full(s0->ndim, s0->shape, 1));
                }
                ck_assert_msg(tg_jvp() == -1, "case %zu, tangent on %s, "
                              "fusion %d: tg_jvp did not refuse", i,
                              on ? "weight_hh" : "x, h0", f);
                tgt_expect_error("jvp", jvp_cases[i].op, jvp_cases[i].what,
                                 "changed in place");
                ck_assert_ptr_null(out.y->tangent);
                tg_tape_reset();
                tg_tensor_free(m);
                tg_rnn_free(r);
            }
    tg_set_fusion(true);
}
END_TEST

/* ---- 3. a Light GRU with one weight [2H, I + H] ------------------------ */
/* z = sigmoid(x Wzx^T + h Wzh^T + bz); n = relu(x Wnx^T + h Wnh^T);
 * h' = z h + (1 - z) n, every W a block of W = [[Wzx Wzh]; [Wnx Wnh]]:
 * column slices of W, then row slices of those (slices of slices). */
static int light_init(tg_cell *c, tg_rng *rng)
{
    int64_t H = c->hidden_size, I = c->input_size;
    return tg_cell_param_new(c, "weight", TG_SHAPE(2 * H, I + H), rng) &&
                   tg_cell_param_new(c, "bias", TG_SHAPE(H), rng)
               ? 0
               : -1;
}
static void light_step(tg_cell *c, tg_tensor *x, tg_tensor *const *s,
                       tg_tensor **next)
{
    int64_t H = c->hidden_size, I = c->input_size;
    tg_tensor *W = tg_cell_param(c, "weight"), *h = s[0];
    tg_tensor *Wx = tg_slice(W, 1, 0, I, 1), *Wh = tg_slice(W, 1, I, I + H, 1);
    tg_tensor *z = tg_sigmoid(tg_add(
        tg_add(tg_linear(x, tg_slice(Wx, 0, 0, H, 1), NULL),
               tg_linear(h, tg_slice(Wh, 0, 0, H, 1), NULL)),
        tg_cell_param(c, "bias")));
    tg_tensor *n = tg_relu(tg_add(tg_linear(x, tg_slice(Wx, 0, H, 2 * H, 1), NULL),
                                  tg_linear(h, tg_slice(Wh, 0, H, 2 * H, 1), NULL)));
    next[0] = tg_add(tg_mul(z, h), tg_mul(tg_add_scalar(tg_neg(z), 1), n));
}
static const tg_cell_type light = {
    "light_gru", .nstate = 1, .gates = 0, .init = light_init,
    .step = light_step};

static tg_tensor *light_fn(tg_tensor *const *in, void *ud)
{
    tg_rnn *r = ud;
    tg_rnn_out out;
    if (tg_rnn_forward(r, in[0], in + 1, false, NULL, &out) < 0)
        return NULL;
    return tg_reshape(out.y, TG_SHAPE(-1));
}

START_TEST(column_slices_as_weights)
{
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    tg_rnn *r = tg_rnn_new(&light, 3, 5, 2, 0.0, &rng);
    ck_assert_ptr_nonnull(r);
    tg_tensor *y[2], *g[2];
    for (int f = 0; f < 2; f++) {
        tg_set_fusion(f);
        zero_param_grads(r);
        tg_tensor *x = tgt_leaf(TG_SHAPE(4, 3, 3), 1, -1, 1);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
        if (f)
            ck_assert_msg(tg_prog_ok(r->layers[1]->prog[0]), "%s",
                          tg_prog_why(r->layers[1]->prog[0]));
        ck_assert_int_eq(tg_backward(tg_sum(tg_mul(out.y, out.y))), 0);
        y[f] = keep(out.y);
        g[f] = param_grads(r);
        tg_tape_reset();
    }
    double dy = max_rel_t(y[1], y[0]), dg = max_rel_t(g[1], g[0]);
    printf("light_gru (column slices of one weight): fused against unfused "
           "y %.1e, gradients %.1e\n", dy, dg);
    ck_assert(dy <= 1e-13 && dg <= 1e-12);
    /* and the compiled path against central differences */
    tg_tensor *in[8];
    int n = 0;
    in[n++] = tgt_leaf(TG_SHAPE(3, 2, 3), 2, -1, 1);
    in[n++] = tgt_leaf(TG_SHAPE(2, 2, 5), 3, -0.5, 0.5);
    for (int i = 0; i < tg_params_count(&r->params); i++)
        in[n++] = tg_params_at(&r->params, i)->tensor;
    tg_gradcheck_result res;
    int rc = tg_gradcheck(light_fn, r, n, in, TGT_EPS, TGT_TOL, &res);
    tg_gradcheck_print(stdout, "light_gru compiled", &res, TGT_TOL);
    ck_assert(tg_prog_ok(r->layers[0]->prog[0]));
    ck_assert(rc == 0);
    for (int f = 0; f < 2; f++) {
        tg_tensor_free(y[f]);
        tg_tensor_free(g[f]);
    }
    tg_rnn_free(r);
}
END_TEST

/* ---- 4. a step output of the wrong shape ------------------------------- */
/* h' = mean over the batch of tanh(...): [1, H], a mistake */
static void mean_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    tg_tensor *a = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
    next[0] = tg_mean_dim(a, 0, true);
}
static const tg_cell_type meanc = {
    "mean_cell", .nstate = 1, .gates = 1, .step = mean_step};

START_TEST(step_output_shape_is_checked)
{
    tgt_capture_errors();
    tg_rnn *r = tg_rnn_new(&meanc, 3, 4, 2, 0.0, NULL);
    for (int f = 0; f < 2; f++) {
        tg_set_fusion(f);
        tg_tensor *x = tgt_leaf(TG_SHAPE(3, 5, 3), 1, -1, 1);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), -1);
        tgt_expect_error("mean_cell", "next[0]", "layer 0", "time step 0",
                         "[1, 4]", "[5, 4]");
        tg_tape_reset();
    }
    tg_set_fusion(true);
    tg_rnn_free(r);
}
END_TEST

/* ---- 5. 0-d values computed in fused groups ---------------------------- */
/* A scalar computed by a group stays 0-d, as the member op makes it
 * (those groups used to make it [1], and the next group reading it
 * stopped: "an input of fused[...] is laid out unlike the traced one"):
 * a constant's negation, once per sequence; the tanh of a sum, every step
 * (a replayed sum reads it between two groups); a select of a parameter's
 * tanh down to 0-d. */
static void neg_const_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                           tg_tensor **next)
{
    (void)c;
    tg_tensor *k = tg_neg(tg_full(0, NULL, 2));
    next[0] = tg_tanh(tg_add(xp, tg_mul(s[0], k)));
}
static void tanh_sum_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    (void)c;
    tg_tensor *k = tg_tanh(tg_mul_scalar(tg_sum(s[0]), 0.1));
    (void)tg_sum(k);
    next[0] = tg_tanh(tg_add(xp, tg_mul(s[0], k)));
}
static void select_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                        tg_tensor **next)
{
    tg_tensor *k = tg_select(tg_tanh(c->bias_hh), 0, 2);
    next[0] = tg_tanh(tg_add(xp, tg_mul(s[0], k)));
}
static const tg_cell_type scalar_cells[] = {
    {"neg_const", .nstate = 1, .gates = 1, .step = neg_const_step},
    {"tanh_sum", .nstate = 1, .gates = 1, .step = tanh_sum_step},
    {"select_0d", .nstate = 1, .gates = 1, .step = select_step},
};

START_TEST(scalars_stay_0d)
{
    tgt_capture_errors();
    for (int i = 0; i < 3; i++) {
        const tg_cell_type *type = &scalar_cells[i];
        tg_tensor *y[2], *g[2], *gx[2], *gs[2];
        for (int f = 0; f < 2; f++) {
            tg_set_fusion(f);
            tg_rng rng;
            tg_rng_seed(&rng, 11);
            tg_rnn *r = tg_rnn_new(type, 3, 4, 1, 0.0, &rng);
            ck_assert_ptr_nonnull(r);
            tg_tensor *x = tgt_leaf(TG_SHAPE(3, 2, 3), 5, -1, 1);
            tg_tensor *s0 = tgt_leaf(TG_SHAPE(1, 2, 4), 6, -1, 1);
            tg_rnn_out out;
            ck_assert_msg(tg_rnn_forward(r, x, &s0, true, NULL, &out) == 0,
                          "%s, fusion %d: %s", type->name, f, tg_last_error());
            if (f)
                ck_assert_msg(tg_prog_ok(r->layers[0]->prog[0]), "%s: %s",
                              type->name, tg_prog_why(r->layers[0]->prog[0]));
            ck_assert_int_eq(tg_backward(tg_sum(tg_mul(out.y, out.y))), 0);
            y[f] = keep(out.y);
            g[f] = param_grads(r);
            gx[f] = tg_tensor_new(x->ndim, x->shape);
            memcpy(gx[f]->data, x->grad, (size_t)x->numel * sizeof(tg_real));
            gs[f] = tg_tensor_new(s0->ndim, s0->shape);
            memcpy(gs[f]->data, s0->grad, (size_t)s0->numel * sizeof(tg_real));
            tg_tape_reset();
            tg_rnn_free(r);
        }
        tg_set_fusion(true);
        double dy = max_rel_t(y[1], y[0]), dg = max_rel_t(g[1], g[0]);
        double dx = fmax(max_rel_t(gx[1], gx[0]), max_rel_t(gs[1], gs[0]));
        printf("%s (a 0-d value between groups): fused against unfused y "
               "%.1e, parameter gradients %.1e, dx and dh0 %.1e\n", type->name,
               dy, dg, dx);
        ck_assert_msg(dy <= 1e-13 && dg <= 1e-12 && dx <= 1e-12, "%s: %g %g %g",
                      type->name, dy, dg, dx);
        for (int f = 0; f < 2; f++) {
            tg_tensor_free(y[f]);
            tg_tensor_free(g[f]);
            tg_tensor_free(gx[f]);
            tg_tensor_free(gs[f]);
        }
    }
}
END_TEST

/* ---- 6. which outputs of a group require grad -------------------------- */
/* One group, three outputs: a (a sum reads it) and next[1] depend on xp,
 * which requires grad; next[0] only on s[0], which does not. Each output
 * requires grad as its own op would (fused, all three used to: a backward
 * from y then ran compiled and was refused as written). */
static void mixed_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                       tg_tensor **next)
{
    (void)c;
    tg_tensor *a = tg_sigmoid(xp);
    (void)tg_sum(a);
    next[0] = tg_tanh(s[0]);
    next[1] = tg_mul(a, s[1]);
}
static const tg_cell_type mixed = {
    "mixed_grad", .nstate = 2, .gates = 1, .step = mixed_step};

START_TEST(outputs_require_grad_as_unfused)
{
    enum { T = 3, B = 2, I = 3, H = 4 };
    tgt_capture_errors();
    tg_tensor *gx[2];
    for (int f = 0; f < 2; f++) {
        tg_set_fusion(f);
        tg_rng rng;
        tg_rng_seed(&rng, 12);
        tg_rnn *r = tg_rnn_new(&mixed, I, H, 1, 0.0, &rng);
        ck_assert_ptr_nonnull(r);
        tg_tensor *x = tgt_leaf(TG_SHAPE(T, B, I), 7, -1, 1);
        tg_tensor *s0[2] = {tg_rand(TG_SHAPE(1, B, H), &rng, -1, 1),
                            tg_rand(TG_SHAPE(1, B, H), &rng, -1, 1)};
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, s0, true, NULL, &out), 0);
        if (f)
            ck_assert_msg(tg_prog_ok(r->layers[0]->prog[0]), "%s",
                          tg_prog_why(r->layers[0]->prog[0]));
        /* as written: h_t = tanh(h_{t-1}) never requires grad, c_t does */
        for (int t = 0; t < T; t++)
            ck_assert_msg(!(out.h[t]->flags & TG_REQUIRES_GRAD),
                          "fusion %d: h[%d] requires grad", f, t);
        ck_assert(!(out.y->flags & TG_REQUIRES_GRAD));
        ck_assert(!(out.state[0]->flags & TG_REQUIRES_GRAD));
        ck_assert(out.state[1]->flags & TG_REQUIRES_GRAD);
        ck_assert_int_eq(tg_backward(tg_sum(out.y)), -1);
        tgt_expect_error("backward", "does not require grad");
        ck_assert_int_eq(tg_backward(tg_sum(out.state[1])), 0);
        gx[f] = tg_tensor_new(x->ndim, x->shape);
        memcpy(gx[f]->data, x->grad, (size_t)x->numel * sizeof(tg_real));
        tg_tape_reset();
        tg_rnn_free(r);
    }
    tg_set_fusion(true);
    double dx = max_rel_t(gx[1], gx[0]);
    printf("mixed_grad (outputs of one group with and without grad): fused "
           "against unfused dx %.1e\n", dx);
    ck_assert(dx <= 1e-12);
    tg_tensor_free(gx[0]);
    tg_tensor_free(gx[1]);
}
END_TEST

/* ---- 7. retained gradients of h_t --------------------------------------
 * tg_retain_grad(out.h[t]) must give this step's whole dL/dh_t on both
 * paths: also what flows back through reads of h_t inside its own fused
 * group, and for an h_t that depends on no step input (computed once per
 * sequence when compiled), one tensor and one gradient per step. */

/* a = tanh(xp + h W^T + b); h' = a, c' = exp(a): the group that makes h'
 * reads it again */
static void reread_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                        tg_tensor **next)
{
    next[0] = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
    next[1] = tg_exp(next[0]);
}
static const tg_cell_type reread = {
    "reread", .nstate = 2, .gates = 1, .step = reread_step};

/* ... read again at other maps (B == H): transposed, and row 0 broadcast
 * over the batch */
static void reread_maps_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                             tg_tensor **next)
{
    tg_tensor *a =
        tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
    next[0] = a;
    next[1] = tg_mul(tg_exp(tg_transpose(a, 0, 1)), tg_select(a, 0, 0));
}
static const tg_cell_type reread_maps = {
    "reread_maps", .nstate = 2, .gates = 1, .step = reread_maps_step};

/* h' a view of a group's value that the group reads (not h' itself) */
static void view_out_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    tg_tensor *a =
        tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
    next[0] = tg_transpose(tg_transpose(a, 0, 1), 0, 1);
    next[1] = tg_exp(a);
}
static const tg_cell_type view_out = {
    "view_out", .nstate = 2, .gates = 1, .step = view_out_step};

/* h' = tanh(ones W^T): no step input in it */
static void fixed_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                       tg_tensor **next)
{
    (void)xp;
    int64_t B = s[0]->shape[0], H = c->hidden_size;
    next[0] = tg_tanh(tg_linear(tg_full(TG_SHAPE(B, H), 1), c->weight_hh,
                                NULL));
}
static const tg_cell_type fixed = {
    "fixed", .nstate = 1, .gates = 1, .step = fixed_step};

/* ... and c' = h' W^T + c: the step reads its fixed h' again */
static void fixed_read_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                            tg_tensor **next)
{
    (void)xp;
    int64_t B = s[0]->shape[0], H = c->hidden_size;
    next[0] = tg_linear(tg_full(TG_SHAPE(B, H), 0.5), c->weight_hh, c->bias_hh);
    next[1] = tg_add(tg_linear(next[0], c->weight_hh, NULL), s[1]);
}
static const tg_cell_type fixed_read = {
    "fixed_read", .nstate = 2, .gates = 1, .step = fixed_read_step};

/* h' = bias_hh seen at [B, H] (a view), c' = h' * c + tanh(xp) */
static void fixed_view_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                            tg_tensor **next)
{
    int64_t B = s[0]->shape[0], H = c->hidden_size;
    next[0] = tg_expand(c->bias_hh, TG_SHAPE(B, H));
    next[1] = tg_add(tg_mul(next[0], s[1]), tg_tanh(xp));
}
static const tg_cell_type fixed_view = {
    "fixed_view", .nstate = 2, .gates = 1, .step = fixed_view_step};

enum { RT = 4 };
typedef struct retained {
    tg_tensor *dh, *g, *y; /* dL/dh_t of every t, parameter grads, y */
    bool distinct;         /* out.h[t] are RT different tensors */
} retained;

/* One forward at B, every h[t] retained, backward of
 * sum(y * R) + sum over k of sum(state[k] * R_k) */
static void retain_run(const tg_cell_type *type, int64_t B, int64_t H,
                       bool fuse, retained *o)
{
    tg_set_fusion(fuse);
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    tg_rnn *r = tg_rnn_new(type, 3, (int)H, 1, 0.0, &rng);
    ck_assert_ptr_nonnull(r);
    zero_param_grads(r);
    tg_tensor *x = tgt_leaf(TG_SHAPE(RT, B, 3), 60, -1, 1);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    if (fuse)
        ck_assert_msg(tg_prog_ok(r->layers[0]->prog[0]), "%s: %s", type->name,
                      tg_prog_why(r->layers[0]->prog[0]));
    for (int t = 0; t < RT; t++)
        tg_retain_grad(out.h[t]);
    tg_tensor *loss = tg_sum(tg_mul(out.y, tgt_leaf(TG_SHAPE(RT, B, H), 61,
                                                    -1, 1)));
    for (int k = 0; k < type->nstate; k++)
        loss = tg_add(loss, tg_sum(tg_mul(out.state[k],
                                          tgt_leaf(TG_SHAPE(1, B, H),
                                                   62 + (uint64_t)k, -1, 1))));
    ck_assert_int_eq(tg_backward(loss), 0);
    o->dh = tg_tensor_new(TG_SHAPE(RT, B, H));
    o->distinct = true;
    for (int t = 0; t < RT; t++) {
        ck_assert_msg(out.h[t]->grad, "%s: h[%d] has no gradient", type->name,
                      t);
        memcpy(o->dh->data + t * B * H, out.h[t]->grad,
               (size_t)(B * H) * sizeof(tg_real));
        for (int u = 0; u < t; u++)
            o->distinct &= out.h[u] != out.h[t];
    }
    o->g = param_grads(r);
    o->y = keep(out.y);
    tg_tape_reset();
    tg_rnn_free(r);
    tg_set_fusion(true);
}

static void retain_compare(const tg_cell_type *type, int64_t B, int64_t H)
{
    retained ref, fused;
    retain_run(type, B, H, false, &ref);
    retain_run(type, B, H, true, &fused);
    double dh = max_rel_t(fused.dh, ref.dh), dg = max_rel_t(fused.g, ref.g);
    double dy = max_rel_t(fused.y, ref.y);
    printf("%s, B = %lld, H = %lld, every h[t] retained: fused against "
           "unfused y %.1e, dL/dh_t %.1e, gradients %.1e\n", type->name,
           (long long)B, (long long)H, dy, dh, dg);
    ck_assert(ref.distinct);
    ck_assert_msg(fused.distinct, "%s: one tensor for several h[t]",
                  type->name);
    ck_assert_msg(dy <= 1e-13 && dh <= 1e-12 && dg <= 1e-12,
                  "%s: y %g, dL/dh_t %g, gradients %g", type->name, dy, dh,
                  dg);
    tg_tensor *all[] = {ref.dh, ref.g, ref.y, fused.dh, fused.g, fused.y};
    for (int i = 0; i < 6; i++)
        tg_tensor_free(all[i]);
}

START_TEST(retained_h_read_in_its_group)
{
    retain_compare(&reread, 3, 5);
    retain_compare(&reread, 2, 300); /* two blocks per row */
    retain_compare(&reread_maps, 4, 4);
    retain_compare(&reread_maps, 260, 260); /* in threads */
    retain_compare(&view_out, 3, 5);
}
END_TEST

START_TEST(retained_h_computed_once)
{
    retain_compare(&fixed, 3, 5);
    retain_compare(&fixed_read, 3, 5);
    retain_compare(&fixed_view, 3, 5);
}
END_TEST

/* h' = sigmoid(h), which depends on no input that requires grad (the
 * initial state is zeros), read again in its own group by c' = tanh(xp +
 * h' + 0.1), which does: h' requires no grad, so its retained gradient
 * stays NULL on both paths, although the group's registers carry numbers
 * back through it (those used to be written into a gradient of its own,
 * compiled only) */
static void const_h_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                         tg_tensor **next)
{
    (void)c;
    next[0] = tg_sigmoid(s[0]);
    next[1] = tg_tanh(tg_add(xp, tg_add_scalar(next[0], 0.1)));
}
static const tg_cell_type const_h = {
    "const_h", .nstate = 2, .gates = 1, .step = const_h_step};

START_TEST(retained_h_without_grad)
{
    tg_tensor *g[2];
    for (int fuse = 0; fuse < 2; fuse++) {
        tg_set_fusion(fuse);
        tg_rng rng;
        tg_rng_seed(&rng, 12);
        tg_rnn *r = tg_rnn_new(&const_h, 3, 260, 1, 0.0, &rng);
        zero_param_grads(r);
        tg_tensor *x = tgt_leaf(TG_SHAPE(2, 2, 3), 63, -1, 1);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
        if (fuse)
            ck_assert_msg(tg_prog_ok(r->layers[0]->prog[0]), "%s",
                          tg_prog_why(r->layers[0]->prog[0]));
        for (int t = 0; t < 2; t++)
            tg_retain_grad(out.h[t]);
        tg_tensor *loss = tg_sum(tg_mul(out.state[1],
                                        tgt_leaf(TG_SHAPE(1, 2, 260), 64,
                                                 -1, 1)));
        ck_assert_int_eq(tg_backward(loss), 0);
        for (int t = 0; t < 2; t++) {
            ck_assert(!(out.h[t]->flags & TG_REQUIRES_GRAD));
            ck_assert_msg(!out.h[t]->grad, "fusion %d: h[%d] got a gradient",
                          fuse, t);
        }
        g[fuse] = param_grads(r);
        tg_tape_reset();
        tg_rnn_free(r);
    }
    tg_set_fusion(true);
    double dg = max_rel_t(g[1], g[0]);
    printf("const_h (a retained h that requires no grad): fused against "
           "unfused gradients %.1e\n", dg);
    ck_assert(dg <= 1e-12);
    tg_tensor_free(g[0]);
    tg_tensor_free(g[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_fuse_guards");
    TCase *tc = tcase_create("guards");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, batch_sizes_in_flight);
    tcase_add_test(tc, programs_cached_and_kept_alive);
    tcase_add_test(tc, user_block_is_guarded);
    tcase_add_test(tc, undeclared_user_pointer_is_not_compiled);
    tcase_add_test(tc, outside_temporary_is_refused);
    tcase_add_test(tc, in_place_change_during_a_sequence);
    tcase_add_test(tc, captured_tensor_replaced_at_its_address);
    tcase_add_test(tc, weight_changed_before_backward);
    tcase_add_test(tc, weight_changed_before_jvp);
    tcase_add_test(tc, column_slices_as_weights);
    tcase_add_test(tc, step_output_shape_is_checked);
    tcase_add_test(tc, scalars_stay_0d);
    tcase_add_test(tc, outputs_require_grad_as_unfused);
    tcase_add_test(tc, retained_h_read_in_its_group);
    tcase_add_test(tc, retained_h_computed_once);
    tcase_add_test(tc, retained_h_without_grad);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
