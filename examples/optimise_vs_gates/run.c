/*
 * examples/optimise_vs_gates/run.c - one training run: a row's model and
 * optimiser on one task and length, until the validation passes or the
 * work budget (in sequence-gradients, ovg.h) is spent.
 *
 * Adam and SGD take a fresh batch of o->B sequences per step (cost B) and
 * are validated every o->eval_every steps. Hessian-free takes a fresh
 * gradient batch of the row's hf_gB sequences per step; its curvature
 * products use the first hf_cB of them (Martens' curvature minibatch:
 * tg_closure.curv_ud), and its loss-only evaluations the whole batch. HF
 * is validated after every step. A step that ends past the budget still
 * runs, but a pass after it does not count as solved.
 *
 * The reported runs are validated on the task's fixed batch
 * (task_val_batch); the tuning runs on another, drawn from other seeds.
 */
#include "ovg.h"

#include "examples/common/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a persistent copy of an arena tensor */
static tg_tensor *keep(const tg_tensor *t)
{
    tg_tensor *k = tg_tensor_new(t->ndim, t->shape);
    tg_copy_(k, (tg_tensor *)t);
    return k;
}

void ovg_batch_make(ovg_batch *b, task_kind k, int T, int B, tg_rng *rng)
{
    tg_tensor *x, *target = NULL;
    *b = (ovg_batch){.B = B};
    if (k == TASK_ADDING) {
        task_adding_batch(T, B, rng, &x, &target);
        b->target = keep(target);
    } else {
        b->ids = malloc((size_t)B * TASK_COPY_K * sizeof *b->ids);
        task_copy_batch(T, B, rng, &x, b->ids);
    }
    b->x = keep(x);
    tg_tape_reset();
}

/* the reported runs' validation batch: the task's fixed one */
static void batch_fixed(ovg_batch *b, task_kind k, int T, int B)
{
    tg_tensor *x, *target = NULL;
    *b = (ovg_batch){.B = B};
    if (k == TASK_COPY)
        b->ids = malloc((size_t)B * TASK_COPY_K * sizeof *b->ids);
    task_val_batch(k, T, B, &x, &target, b->ids);
    b->x = keep(x);
    b->target = target ? keep(target) : NULL;
    tg_tape_reset();
}

void ovg_batch_free(ovg_batch *b)
{
    tg_tensor_free(b->x);
    if (b->target)
        tg_tensor_free(b->target);
    free(b->ids);
    *b = (ovg_batch){0};
}

/* the first c sequences of batch g (x is [T, B, C]) */
static void batch_head(ovg_batch *c, const ovg_batch *g, task_kind k, int n)
{
    const tg_tensor *x = g->x;
    int64_t T = x->shape[0], B = x->shape[1], C = x->shape[2];
    *c = (ovg_batch){.B = n};
    c->x = tg_tensor_new(TG_SHAPE(T, n, C));
    for (int64_t t = 0; t < T; t++)
        memcpy(c->x->data + t * n * C, x->data + t * B * C,
               (size_t)(n * C) * sizeof(tg_real));
    if (k == TASK_ADDING) {
        c->target = tg_tensor_new(TG_SHAPE(n, 1));
        memcpy(c->target->data, g->target->data, (size_t)n * sizeof(tg_real));
    } else {
        c->ids = malloc((size_t)n * TASK_COPY_K * sizeof *c->ids);
        for (int s = 0; s < TASK_COPY_K; s++)
            for (int b = 0; b < n; b++)
                c->ids[s * n + b] = g->ids[s * B + b];
    }
}

void ovg_val_batch(ovg_batch *b, task_kind k, int T, int B, bool tuning)
{
    if (tuning) { /* a validation batch of its own, not the reported one */
        tg_rng v;
        tg_rng_seed(&v, 888000 + (uint64_t)T * 2 + (uint64_t)k);
        ovg_batch_make(b, k, T, B, &v);
    } else {
        batch_fixed(b, k, T, B);
    }
}

void ovg_constant_mse(int T, int B, bool tuning, double *one, double *mean)
{
    ovg_batch b;
    ovg_val_batch(&b, TASK_ADDING, T, B, tuning);
    const tg_real *y = b.target->data;
    double m = 0, s1 = 0, sm = 0;
    for (int i = 0; i < B; i++)
        m += (double)y[i] / B;
    for (int i = 0; i < B; i++) {
        double d1 = (double)y[i] - 1, dm = (double)y[i] - m;
        s1 += d1 * d1 / B;
        sm += dm * dm / B;
    }
    *one = s1, *mean = sm;
    ovg_batch_free(&b);
}

double ovg_metric(task_model *m, task_kind k, const ovg_batch *b)
{
    bool was = tg_set_grad_enabled(false);
    int64_t correct = 0;
    tg_tensor *loss = task_loss_of(k, task_outputs(m, k, b->x), b->target,
                                   b->ids, &correct);
    double v = !loss ? (double)NAN
               : k == TASK_ADDING
                   ? (double)tg_item(loss)
                   : (double)correct / (double)(TASK_COPY_K * b->B);
    tg_tape_reset();
    tg_set_grad_enabled(was);
    return v;
}

/* What a run carries between its steps and validations. */
typedef struct runstate {
    task_model m;
    task_kind k;
    ovg_batch val;
    double budget, work;
    bool tuning;
    ovg_result res;
} runstate;

/* Validates; true when the run should stop (solved, not tuning). */
static bool validate(runstate *rs)
{
    rs->res.metric = ovg_metric(&rs->m, rs->k, &rs->val);
    if (!rs->res.solved && rs->work <= rs->budget &&
        task_passes(rs->k, rs->res.metric)) {
        rs->res.solved = true;
        rs->res.work = rs->work;
    }
    return rs->res.solved && !rs->tuning;
}

static void run_first_order(runstate *rs, const opts *o, tg_optim *opt,
                            int T, ovg_setting s, tg_rng *data)
{
    int64_t *ids = malloc((size_t)o->B * TASK_COPY_K * sizeof *ids);
    bool checked = true;
    while (rs->work + o->B <= rs->budget) {
        double t0 = cli_now();
        tg_tensor *x, *target = NULL;
        if (rs->k == TASK_ADDING)
            task_adding_batch(T, o->B, data, &x, &target);
        else
            task_copy_batch(T, o->B, data, &x, ids);
        double L = task_train_step(&rs->m, opt, rs->k, x, target, ids,
                                   s.clip);
        rs->res.wall += cli_now() - t0;
        rs->work += o->B;
        rs->res.steps++;
        checked = false;
        if (!isfinite(L))
            break; /* diverged: not solved */
        if (rs->res.steps % o->eval_every == 0) {
            checked = true;
            if (validate(rs))
                break;
        }
    }
    if (!checked)
        validate(rs);
    free(ids);
}

/* ---- Hessian-free ---- */

tg_tensor *ovg_fixed_outputs(void *ud)
{
    ovg_fixed *f = ud;
    return task_outputs(f->m, f->k, f->b.x);
}
tg_tensor *ovg_fixed_loss(tg_tensor *z, void *ud)
{
    ovg_fixed *f = ud;
    return task_loss_of(f->k, z, f->b.target, f->b.ids, NULL);
}
tg_tensor *ovg_fixed_hidden(void *ud)
{
    return ((ovg_fixed *)ud)->m->hidden;
}

static void run_hf(runstate *rs, const ovg_row *r, tg_optim *opt, int T,
                   tg_rng *data)
{
    tg_hf *h = opt->hf;
    while (rs->work < rs->budget) {
        double t0 = cli_now();
        /* the gradient batch, and the curvature batch (its head) that
         * the products use (tg_closure.curv_ud) */
        ovg_fixed hg = {.m = &rs->m, .k = rs->k}, hc = hg;
        ovg_batch_make(&hg.b, rs->k, T, r->hf_gB, data);
        bool head = r->hf_cB < r->hf_gB;
        if (head)
            batch_head(&hc.b, &hg.b, rs->k, r->hf_cB);
        tg_closure c = {ovg_fixed_outputs, ovg_fixed_loss,
                        r->hf_mu > 0 ? ovg_fixed_hidden : NULL, &hg,
                        head ? &hc : NULL};
        double L = tg_optim_step_closure(opt, &c);
        if (head)
            ovg_batch_free(&hc.b);
        ovg_batch_free(&hg.b);
        rs->res.wall += cli_now() - t0;
        rs->work = (double)h->gradients * r->hf_gB +
                   (double)h->products * GN_COST * r->hf_cB +
                   (double)h->losses * FWD_COST * r->hf_gB;
        rs->res.steps++;
        if (!isfinite(L) || validate(rs))
            break;
    }
}

ovg_result ovg_run(const opts *o, const ovg_row *r, task_kind k, int T,
                   int seed, ovg_setting s, double budget, bool tuning)
{
    ovg_row row = *r; /* --quick: smaller HF batches, fewer CG iterations */
    row.hf_gB /= o->hf_div, row.hf_cB /= o->hf_div;
    row.hf_cg = row.hf_cg < o->hf_cg_max ? row.hf_cg : o->hf_cg_max;
    r = &row;
    tg_rng init, data;
    tg_rng_seed(&init, (uint64_t)seed);
    tg_rng_seed(&data, 1000 + (uint64_t)seed);
    runstate rs = {.k = k, .budget = budget, .tuning = tuning,
                   .res = {.metric = NAN}};
    ovg_model_init(&rs.m, r, k, o->H, &init);
    ovg_val_batch(&rs.val, k, T, o->val_B, tuning);
    tg_optim *opt = ovg_optim_new(r, &rs.m, k, s);
    if (r->opt == OPT_HF)
        run_hf(&rs, r, opt, T, &data);
    else
        run_first_order(&rs, o, opt, T, s, &data);
    if (!rs.res.solved)
        rs.res.work = rs.work;
    tg_optim_free(opt);
    ovg_batch_free(&rs.val);
    task_model_free(&rs.m);
    return rs.res;
}
