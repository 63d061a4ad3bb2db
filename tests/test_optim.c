/*
 * tests/test_optim.c - optimizers and gradient clipping against PyTorch
 * 1.13 numbers, state save/load (resume is bit-exact, bad files change
 * nothing), skipped parameters, argument errors, thread determinism.
 *
 * The reference numbers were printed (17 significant digits) by a script
 * that runs torch.optim.SGD / Adam / AdamW for three steps in float64 on
 * the parameters A0, b0 below with the fixed gradients GA[s], Gb[s], and
 * torch.nn.utils.clip_grad_norm_ / clip_grad_value_ on GA[0], Gb[0]:
 *
 *     A = torch.tensor(A0, requires_grad=True); b = torch.tensor(b0, ...)
 *     opt = torch.optim.SGD([A, b], lr=0.1, momentum=0.9, dampening=0.1,
 *                           weight_decay=0.01)
 *     for s in range(3):
 *         A.grad = torch.tensor(GA[s]); b.grad = torch.tensor(Gb[s])
 *         opt.step()
 *     print(A.flatten().tolist() + b.tolist())
 *
 * All inputs are exact binary fractions, so the float build starts from
 * the same numbers as PyTorch's float64 run.
 */
#include "harness.h"
#include "nn/optim.h"
#include "tensor/safetensors.h"

#include <unistd.h>

/* ---- the PyTorch fixture ------------------------------------------------ */

static const double A0[6] = {0.5, -1.25, 2.0, 0.75, -0.375, 1.5};
static const double b0[3] = {0.25, -2.0, 1.125};
static const double GA[3][6] = {{0.5, -0.25, 0.125, -1.0, 0.75, 0.0625},
                                {-0.25, 0.5, 1.0, 0.125, -0.625, 0.25},
                                {0.75, 0.0, -0.5, 0.5, 0.25, -1.5}};
static const double Gb[3][3] = {{0.375, -0.5, 1.5},
                                {-0.125, 0.25, -0.75},
                                {1.0, -0.375, 0.0625}};

/* A then b after three steps */
/* SGD(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01) */
static const double sgd_damp[] = {0.33724282409499995, -1.2611502662374998, 1.829617198255, 0.95030637789250005, -0.49167577169624999, 1.5673804637225, 0.078539151922499967, -1.8630191678799999, 0.83559688633875007};
/* SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=0.01, nesterov=True) */
static const double sgd_nest[] = {0.24970675762050001, -1.28955790495125, 1.7654319415445001, 0.95801468675575008, -0.50749062735287498, 1.6838581713427498, -0.036755481927250033, -1.808904109332, 0.79275843493362497};
/* SGD(lr=0.1, momentum=0, weight_decay=0.01) */
static const double sgd_plain[] = {0.39857644949999999, -1.2712537237499999, 1.9316309855, 0.78506484925000009, -0.41128869962499998, 1.6142919922500001, 0.12431321225, -1.9315809480000001, 1.040603223875};
/* Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0) */
static const double adam_wd0[] = {0.48098342815496503, -1.2464910263648705, 1.9789379136111838, 0.76684771197160906, -0.38725256425463761, 1.4862953461717736, 0.22891987396000193, -1.9820664222745867, 1.1100411468528288};
/* Adam(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1) */
static const double adam_wd01[] = {0.39900745932827852, -1.2022090448300129, 1.8801886521032034, 0.81730057269136369, -0.42570561615949654, 1.4229892787753904, 0.14123313530340176, -1.8834484017143447, 1.0462873203259471};
/* AdamW(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01) */
static const double adamw_wd001[] = {0.48083570939145798, -1.2461176976600228, 1.9783407949747707, 0.76662016203631134, -0.38713803748225617, 1.4858482754463957, 0.22884728157825626, -1.9814687485095797, 1.109705946838728};
/* AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.5): the
 * decoupled decay is large enough to be seen far above the tolerance */
static const double adamw_wd05[] = {0.24960346651925791, -1.0445484956698281, 1.5179864640658816, 0.79889569697512841, -0.43410065751094778, 1.1631878423680007, 0.015293582128183769, -1.5464959077154745, 0.82604002865035864};
/* clip_grad_norm_([A, c, b], max_norm) with c.grad None; grads of A, b */
static const double clip1_norm = 2.1295906296751026;
static const double clip1[] = {0.23478679810376676, -0.11739339905188338, 0.058696699525941691, -0.46957359620753353, 0.35218019715565013, 0.029348349762970845, 0.17609009857782507, -0.23478679810376676, 0.70436039431130026};
static const double clip10_norm = 2.1295906296751026;
static const double clip10[] = {0.5, -0.25, 0.125, -1, 0.75, 0.0625, 0.375, -0.5, 1.5};
/* clip_grad_norm_([A, b], 1e-6) on the gradients scaled by 2^-20: here
 * the + 1e-6 in max_norm / (norm + 1e-6) matters */
static const double cliptiny_norm = 2.030935887980559e-06;
static const double cliptiny[] = {1.5732340630960373e-07, -7.8661703154801863e-08, 3.9330851577400932e-08, -3.1464681261920745e-07, 2.3598510946440559e-07, 1.9665425788700466e-08, 1.1799255473220279e-07, -1.5732340630960373e-07, 4.7197021892881118e-07};
/* clip_grad_value_([A, b], 0.4) */
static const double clipv[] = {0.40000000000000002, -0.25, 0.125, -0.40000000000000002, 0.40000000000000002, 0.0625, 0.375, -0.40000000000000002, 0.40000000000000002};

#define REF_TOL 1e-6

static char err[512];

/* ps = {A [2, 3], b [3]} with A0, b0 */
static void fixture_params(tg_params *ps)
{
    tg_tensor *A = tg_params_new(ps, "A", TG_SHAPE(2, 3));
    tg_tensor *b = tg_params_new(ps, "b", TG_SHAPE(3));
    for (int i = 0; i < 6; i++)
        A->data[i] = (tg_real)A0[i];
    for (int i = 0; i < 3; i++)
        b->data[i] = (tg_real)b0[i];
}

static void fixture_grads(tg_params *ps, int s)
{
    tg_tensor *A = tg_params_get(ps, "A"), *b = tg_params_get(ps, "b");
    for (int i = 0; i < 6; i++)
        A->grad[i] = (tg_real)GA[s][i];
    for (int i = 0; i < 3; i++)
        b->grad[i] = (tg_real)Gb[s][i];
}

/* A then b against want[9] */
static void expect_params(const tg_params *ps, const double *want,
                          const char *label)
{
    const tg_tensor *A = tg_params_get(ps, "A"), *b = tg_params_get(ps, "b");
    for (int i = 0; i < 9; i++) {
        double got = i < 6 ? (double)A->data[i] : (double)b->data[i - 6];
        ck_assert_msg(fabs(got - want[i]) <= REF_TOL * fmax(1.0, fabs(want[i])),
                      "%s: element %d = %.9g, PyTorch %.9g", label, i, got,
                      want[i]);
    }
}

static void expect_grads(const tg_params *ps, const double *want,
                         const char *label)
{
    const tg_tensor *A = tg_params_get(ps, "A"), *b = tg_params_get(ps, "b");
    for (int i = 0; i < 9; i++) {
        double got = i < 6 ? (double)A->grad[i] : (double)b->grad[i - 6];
        ck_assert_msg(fabs(got - want[i]) <= REF_TOL * fmax(1.0, fabs(want[i])),
                      "%s: grad %d = %.9g, PyTorch %.9g", label, i, got,
                      want[i]);
    }
}

/* three steps of o on the fixture (o made over ps), compared with want */
static void three_steps(tg_optim *o, tg_params *ps, const double *want,
                        const char *label)
{
    ck_assert_ptr_nonnull(o);
    for (int s = 0; s < 3; s++) {
        fixture_grads(ps, s);
        tg_optim_step(o);
        ck_assert_int_eq(o->step, s + 1);
    }
    expect_params(ps, want, label);
}

/* ---- update rules --------------------------------------------------------- */

START_TEST(sgd_matches_pytorch)
{
    struct { double mom, damp; bool nest; const double *want; const char *label; } c[] = {
        {0.9, 0.1, false, sgd_damp, "sgd momentum+dampening"},
        {0.9, 0.0, true, sgd_nest, "sgd nesterov"},
        {0.0, 0.0, false, sgd_plain, "sgd plain"},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        tg_params ps = {0};
        fixture_params(&ps);
        tg_optim *o = tg_sgd_new(&ps, 0.1, c[k].mom, c[k].damp, 0.01, c[k].nest);
        three_steps(o, &ps, c[k].want, c[k].label);
        /* the momentum buffer exists exactly when momentum is used */
        if (c[k].mom != 0)
            ck_assert_ptr_nonnull(o->m[0]);
        else
            ck_assert_ptr_null(o->m[0]);
        ck_assert_ptr_null(o->v[0]);
        tg_optim_free(o);
        tg_params_free(&ps);
    }
}
END_TEST

START_TEST(adam_matches_pytorch)
{
    struct { bool w; double lr, b1, b2, eps, wd; const double *want; const char *label; } c[] = {
        {false, 0.01, 0.9, 0.999, 1e-8, 0.0, adam_wd0, "adam wd 0"},
        {false, 0.05, 0.8, 0.99, 1e-6, 0.1, adam_wd01, "adam wd 0.1"},
        {true, 0.01, 0.9, 0.999, 1e-8, 0.01, adamw_wd001, "adamw wd 0.01"},
        {true, 0.1, 0.9, 0.999, 1e-8, 0.5, adamw_wd05, "adamw wd 0.5"},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        tg_params ps = {0};
        fixture_params(&ps);
        tg_optim *o = c[k].w ? tg_adamw_new(&ps, c[k].lr, c[k].b1, c[k].b2,
                                            c[k].eps, c[k].wd)
                             : tg_adam_new(&ps, c[k].lr, c[k].b1, c[k].b2,
                                           c[k].eps, c[k].wd);
        three_steps(o, &ps, c[k].want, c[k].label);
        ck_assert_ptr_nonnull(o->m[1]);
        ck_assert_ptr_nonnull(o->v[1]);
        tg_optim_free(o);
        tg_params_free(&ps);
    }
}
END_TEST

/* Gradients are only read: an optimizer step leaves them as they were. */
START_TEST(step_reads_grads_only)
{
    tg_params ps = {0};
    fixture_params(&ps);
    tg_optim *o = tg_adam_new(&ps, 0.01, 0.9, 0.999, 1e-8, 0.1);
    fixture_grads(&ps, 1);
    tg_optim_step(o);
    const tg_tensor *A = tg_params_get(&ps, "A");
    for (int i = 0; i < 6; i++)
        ck_assert((double)A->grad[i] == GA[1][i]);
    ck_assert_int_eq(tg_tape_size(), 0); /* nothing recorded */
    tg_optim_free(o);
    tg_params_free(&ps);
}
END_TEST

/* A parameter whose ->grad is NULL is left alone (and gets no state),
 * the others are updated as if it were not there. */
START_TEST(null_grad_is_skipped)
{
    tg_params ps = {0};
    tg_tensor *A = tg_params_new(&ps, "A", TG_SHAPE(2, 3));
    tg_tensor *c = tg_params_new(&ps, "c", TG_SHAPE(2));
    tg_tensor *b = tg_params_new(&ps, "b", TG_SHAPE(3));
    for (int i = 0; i < 6; i++)
        A->data[i] = (tg_real)A0[i];
    for (int i = 0; i < 3; i++)
        b->data[i] = (tg_real)b0[i];
    c->data[0] = 3;
    c->data[1] = -4;
    free(c->grad);
    c->grad = NULL;
    tg_optim *sgd = tg_sgd_new(&ps, 0.1, 0.9, 0.1, 0.01, false);
    three_steps(sgd, &ps, sgd_damp, "sgd with a NULL grad");
    ck_assert_ptr_null(sgd->m[1]);
    tg_optim_free(sgd);

    for (int i = 0; i < 6; i++)
        A->data[i] = (tg_real)A0[i];
    for (int i = 0; i < 3; i++)
        b->data[i] = (tg_real)b0[i];
    tg_optim *adamw = tg_adamw_new(&ps, 0.1, 0.9, 0.999, 1e-8, 0.5);
    three_steps(adamw, &ps, adamw_wd05, "adamw with a NULL grad");
    /* decoupled decay applies only to parameters with a gradient */
    ck_assert(c->data[0] == 3 && c->data[1] == -4);
    ck_assert_ptr_null(adamw->m[1]);
    ck_assert_ptr_null(adamw->v[1]);
    tg_optim_free(adamw);
    tg_params_free(&ps);
}
END_TEST

/* A parameter that is a strided view (tg_params_add_ref lets one in) is
 * reported and left alone; the others are updated. */
START_TEST(strided_parameter_is_refused)
{
    tg_params ps = {0};
    fixture_params(&ps);
    tg_tensor *base = tg_tensor_new(TG_SHAPE(2, 3));
    tg_fill_(base, 1.5);
    tg_tensor *vt = tg_view_transpose(base, 0, 1);
    vt->grad = tg_arena_calloc(6 * sizeof(tg_real));
    vt->grad[0] = 1;
    tg_params_add_ref(&ps, "vt", vt);
    tg_optim *o = tg_sgd_new(&ps, 0.1, 0.9, 0.1, 0.01, false);
    tgt_capture_errors();
    for (int s = 0; s < 3; s++) {
        fixture_grads(&ps, s);
        tg_optim_step(o);
        tgt_expect_error("optim_step", "'vt'", "[3, 2]", "contiguous");
    }
    expect_params(&ps, sgd_damp, "sgd beside a refused view");
    for (int i = 0; i < 6; i++)
        ck_assert(base->data[i] == (tg_real)1.5);
    ck_assert_ptr_null(o->m[2]);
    tg_optim_free(o);
    tg_params_free(&ps);
    tg_tensor_free(base);
}
END_TEST

START_TEST(zero_grad)
{
    tg_params ps = {0};
    fixture_params(&ps);
    tg_tensor *c = tg_params_new(&ps, "c", TG_SHAPE(2));
    free(c->grad);
    c->grad = NULL;
    tg_optim *o = tg_sgd_new(&ps, 0.1, 0, 0, 0, false);
    fixture_grads(&ps, 0);
    tg_optim_zero_grad(o);
    const tg_tensor *A = tg_params_get(&ps, "A"), *b = tg_params_get(&ps, "b");
    for (int i = 0; i < 6; i++)
        ck_assert(A->grad[i] == 0);
    for (int i = 0; i < 3; i++)
        ck_assert(b->grad[i] == 0);
    ck_assert_ptr_null(c->grad); /* not allocated by zero_grad */
    /* a step on zero gradients without decay changes nothing */
    tg_optim_step(o);
    expect_params(&ps, (double[]){0.5, -1.25, 2.0, 0.75, -0.375, 1.5, 0.25,
                                  -2.0, 1.125}, "step on zeros");
    tg_optim_free(o);
    tg_params_free(&ps);
}
END_TEST

START_TEST(argument_errors)
{
    tg_params ps = {0};
    fixture_params(&ps);
    tgt_capture_errors();
    ck_assert_ptr_null(tg_sgd_new(&ps, -0.1, 0, 0, 0, false));
    tgt_expect_error("sgd", "learning rate", "-0.1");
    ck_assert_ptr_null(tg_sgd_new(&ps, NAN, 0, 0, 0, false));
    tgt_expect_error("sgd", "learning rate");
    ck_assert_ptr_null(tg_sgd_new(&ps, 0.1, -0.5, 0, 0, false));
    tgt_expect_error("sgd", "momentum");
    ck_assert_ptr_null(tg_sgd_new(&ps, 0.1, 0.9, 0, -1, false));
    tgt_expect_error("sgd", "weight_decay");
    /* as torch.optim.SGD: Nesterov needs momentum and no dampening */
    ck_assert_ptr_null(tg_sgd_new(&ps, 0.1, 0.9, 0.1, 0, true));
    tgt_expect_error("sgd", "nesterov", "dampening");
    ck_assert_ptr_null(tg_sgd_new(&ps, 0.1, 0, 0, 0, true));
    tgt_expect_error("sgd", "nesterov", "momentum");
    ck_assert_ptr_null(tg_sgd_new(NULL, 0.1, 0, 0, 0, false));
    tgt_expect_error("sgd", "NULL");
    ck_assert_ptr_null(tg_adam_new(&ps, 0.1, 1.0, 0.999, 1e-8, 0));
    tgt_expect_error("adam", "betas");
    ck_assert_ptr_null(tg_adam_new(&ps, 0.1, 0.9, -0.1, 1e-8, 0));
    tgt_expect_error("adam", "betas");
    ck_assert_ptr_null(tg_adam_new(&ps, 0.1, 0.9, 0.999, -1e-8, 0));
    tgt_expect_error("adam", "eps");
    ck_assert_ptr_null(tg_adamw_new(&ps, 0.1, 0.9, 0.999, 1e-8, -0.01));
    tgt_expect_error("adamw", "weight_decay");
    ck_assert_ptr_null(tg_adamw_new(&ps, -1, 0.9, 0.999, 1e-8, 0.01));
    tgt_expect_error("adamw", "learning rate");
    /* the edges PyTorch accepts are accepted */
    tg_optim *o = tg_adam_new(&ps, 0, 0, 0, 0, 0);
    ck_assert_ptr_nonnull(o);
    tg_optim_free(o);
    ck_assert_int_eq(tgt_errors, 0);
    tg_optim_free(NULL);
    tg_params_free(&ps);
}
END_TEST

/* ---- clipping --------------------------------------------------------------- */

START_TEST(clip_grad_norm_matches_pytorch)
{
    for (int k = 0; k < 2; k++) {
        tg_params ps = {0};
        tg_tensor *A = tg_params_new(&ps, "A", TG_SHAPE(2, 3));
        tg_tensor *c = tg_params_new(&ps, "c", TG_SHAPE(2)); /* no grad */
        tg_params_new(&ps, "b", TG_SHAPE(3));
        free(c->grad);
        c->grad = NULL;
        fixture_grads(&ps, 0);
        double norm = tg_clip_grad_norm(&ps, k == 0 ? 1.0 : 10.0);
        tgt_close(norm, k == 0 ? clip1_norm : clip10_norm, 1e-12);
        expect_grads(&ps, k == 0 ? clip1 : clip10, k == 0 ? "clip 1" : "clip 10");
        ck_assert_ptr_null(c->grad);
        if (k == 0) { /* the clipped norm is max_norm (up to the 1e-6) */
            double s = 0;
            for (int i = 0; i < 6; i++)
                s += (double)A->grad[i] * (double)A->grad[i];
            for (int i = 0; i < 3; i++) {
                double g = (double)tg_params_get(&ps, "b")->grad[i];
                s += g * g;
            }
            tgt_close(sqrt(s), 1.0, 1e-6);
        }
        tg_params_free(&ps);
    }
    /* tiny gradients, compared relatively */
    tg_params tiny = {0};
    fixture_params(&tiny);
    fixture_grads(&tiny, 0);
    for (int i = 0; i < tg_params_count(&tiny); i++) {
        tg_tensor *t = tg_params_at(&tiny, i)->tensor;
        for (int64_t k = 0; k < t->numel; k++)
            t->grad[k] = (tg_real)ldexp((double)t->grad[k], -20);
    }
    double norm = tg_clip_grad_norm(&tiny, 1e-6);
    tgt_close(norm / cliptiny_norm, 1.0, 1e-12);
    for (int i = 0; i < 9; i++) {
        double got = i < 6 ? (double)tg_params_get(&tiny, "A")->grad[i]
                           : (double)tg_params_get(&tiny, "b")->grad[i - 6];
        tgt_close(got / cliptiny[i], 1.0, REF_TOL);
    }
    tg_params_free(&tiny);
    /* no gradient at all: norm 0, as PyTorch */
    tg_params none = {0};
    tg_tensor *t = tg_params_new(&none, "t", TG_SHAPE(2));
    free(t->grad);
    t->grad = NULL;
    ck_assert(tg_clip_grad_norm(&none, 1.0) == 0.0);
    tg_params_free(&none);
}
END_TEST

/* a NaN gradient makes the norm NaN and every gradient NaN, as
 * clip_grad_norm_(error_if_nonfinite=False) does (torch.clamp keeps NaN) */
START_TEST(clip_grad_norm_nan)
{
    tg_params ps = {0};
    fixture_params(&ps);
    fixture_grads(&ps, 0);
    tg_params_get(&ps, "A")->grad[2] = (tg_real)NAN;
    ck_assert(isnan(tg_clip_grad_norm(&ps, 1.0)));
    ck_assert(isnan(tg_params_get(&ps, "b")->grad[0]));
    tg_params_free(&ps);
}
END_TEST

START_TEST(clip_grad_value_matches_pytorch)
{
    tg_params ps = {0};
    fixture_params(&ps);
    fixture_grads(&ps, 0);
    tg_tensor *c = tg_params_new(&ps, "c", TG_SHAPE(2));
    free(c->grad);
    c->grad = NULL;
    tg_clip_grad_value(&ps, 0.4);
    expect_grads(&ps, clipv, "clip value 0.4");
    ck_assert_ptr_null(c->grad);
    tg_params_free(&ps);
}
END_TEST

/* ---- state: save, load, resume ---------------------------------------- */

typedef tg_optim *(*make_fn)(tg_params *);
static tg_optim *mk_adam(tg_params *ps) { return tg_adam_new(ps, 0.01, 0.9, 0.999, 1e-8, 0.1); }
static tg_optim *mk_adamw(tg_params *ps) { return tg_adamw_new(ps, 0.02, 0.8, 0.99, 1e-8, 0.05); }
static tg_optim *mk_sgd(tg_params *ps) { return tg_sgd_new(ps, 0.1, 0.9, 0.1, 0.01, false); }
static tg_optim *mk_nest(tg_params *ps) { return tg_sgd_new(ps, 0.1, 0.9, 0.0, 0.01, true); }
static tg_optim *mk_plain(tg_params *ps) { return tg_sgd_new(ps, 0.1, 0.0, 0.0, 0.0, false); }

/* W [7, 5] and b [5], normal values from seed (0: zeros) */
static void rand_params(tg_params *ps, uint64_t seed)
{
    tg_tensor *W = tg_params_new(ps, "W", TG_SHAPE(7, 5));
    tg_tensor *b = tg_params_new(ps, "b", TG_SHAPE(5));
    if (!seed)
        return;
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_fill_normal_(W, &r, 0, 1);
    tg_fill_normal_(b, &r, 0, 1);
}

/* deterministic gradients for step s */
static void rand_grads(tg_params *ps, int s)
{
    tg_rng r;
    tg_rng_seed(&r, 1000 + (uint64_t)s);
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_tensor *t = tg_params_at(ps, i)->tensor;
        for (int64_t k = 0; k < t->numel; k++)
            t->grad[k] = (tg_real)tg_rng_normal(&r);
    }
}

static void expect_same_state(const tg_optim *a, const tg_optim *b,
                              const char *label)
{
    ck_assert_int_eq(a->step, b->step);
    ck_assert_int_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const tg_tensor *pa = tg_params_at(a->params, i)->tensor;
        const tg_tensor *pb = tg_params_at(b->params, i)->tensor;
        size_t bytes = (size_t)pa->numel * sizeof(tg_real);
        ck_assert_msg(!memcmp(pa->data, pb->data, bytes),
                      "%s: parameter %d differs", label, i);
        ck_assert_msg(!a->m[i] == !b->m[i] && !a->v[i] == !b->v[i],
                      "%s: buffers of %d allocated in one run only", label, i);
        ck_assert_msg(!a->m[i] || !memcmp(a->m[i], b->m[i], bytes),
                      "%s: m of %d differs", label, i);
        ck_assert_msg(!a->v[i] || !memcmp(a->v[i], b->v[i], bytes),
                      "%s: v of %d differs", label, i);
    }
}

static void temp_path(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/tg_optim_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

/* Runs 'saved' steps, saves model and optimizer, frees both, rebuilds them
 * from the file and takes two more steps: the same bits as a run that was
 * never interrupted. */
static void check_resume(make_fn mk, int saved, const char *label)
{
    tg_params a = {0}, b = {0};
    rand_params(&a, 7);
    rand_params(&b, 7);
    tg_optim *oa = mk(&a), *ob = mk(&b);
    for (int s = 0; s < saved; s++) {
        rand_grads(&a, s);
        tg_optim_step(oa);
        rand_grads(&b, s);
        tg_optim_step(ob);
    }
    char path[64];
    temp_path(path, sizeof path);
    tg_st_writer *w = tg_st_writer_new();
    tg_params_save(&b, w, "model.");
    tg_optim_save(ob, w, "optim.");
    ck_assert_msg(tg_st_save(w, path, err, sizeof err) == 0, "%s", err);
    tg_st_writer_free(w);
    tg_optim_free(ob);
    tg_params_free(&b);

    tg_params c = {0};
    rand_params(&c, 0);
    tg_optim *oc = mk(&c);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_msg(tg_params_load(&c, f, "model.", err, sizeof err) == 0, "%s", err);
    ck_assert_msg(tg_optim_load(oc, f, "optim.", err, sizeof err) == 0, "%s", err);
    tg_st_free(f);
    unlink(path);
    expect_same_state(oa, oc, label);
    for (int s = saved; s < saved + 2; s++) {
        rand_grads(&a, s);
        tg_optim_step(oa);
        rand_grads(&c, s);
        tg_optim_step(oc);
    }
    expect_same_state(oa, oc, label);
    ck_assert_int_eq(oc->step, saved + 2);
    tg_optim_free(oa);
    tg_optim_free(oc);
    tg_params_free(&a);
    tg_params_free(&c);
}

START_TEST(resume_is_bit_exact)
{
    check_resume(mk_adam, 3, "adam after 3");
    check_resume(mk_adamw, 2, "adamw after 2");
    check_resume(mk_sgd, 2, "sgd after 2");
    check_resume(mk_nest, 1, "nesterov after 1");
    check_resume(mk_plain, 2, "plain sgd after 2");
    /* saved before any step: the loaded optimizer is a fresh one (SGD's
     * first step must copy the gradient into the buffer, not damp it) */
    check_resume(mk_sgd, 0, "sgd after 0");
    check_resume(mk_adam, 0, "adam after 0");
}
END_TEST

START_TEST(saved_names_and_types)
{
    tg_params ps = {0};
    rand_params(&ps, 3);
    tg_optim *o = mk_adam(&ps);
    rand_grads(&ps, 0);
    tg_optim_step(o);
    char path[64];
    temp_path(path, sizeof path);
    tg_st_writer *w = tg_st_writer_new();
    tg_optim_save(o, w, "opt/");
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    unlink(path);
    ck_assert_int_eq(tg_st_count(f), 5);
    const char *names[] = {"opt/W.m", "opt/W.v", "opt/b.m", "opt/b.v"};
    for (int k = 0; k < 4; k++) {
        const tg_st_tensor *t = tg_st_find(f, names[k]);
        ck_assert_msg(t, "%s missing", names[k]);
        ck_assert_int_eq(t->dtype, TG_F32);
        ck_assert_int_eq(t->ndim, k < 2 ? 2 : 1);
        ck_assert_int_eq(t->shape[0], k < 2 ? 7 : 5);
    }
    /* the stored moments are the optimizer's */
    tg_tensor *m = tg_st_new_tensor(tg_st_find(f, "opt/W.m"));
    for (int64_t i = 0; i < m->numel; i++)
        ck_assert(m->data[i] == o->m[0][i]);
    tg_tensor_free(m);
    const tg_st_tensor *st = tg_st_find(f, "opt/step");
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->dtype, TG_I64);
    ck_assert_int_eq(st->ndim, 0);
    int64_t step = 0;
    ck_assert_int_eq(tg_st_read_i64(st, &step), 0);
    ck_assert_int_eq(step, 1);
    tg_st_free(f);
    /* SGD without momentum keeps no buffers: only the step */
    tg_optim *plain = mk_plain(&ps);
    w = tg_st_writer_new();
    tg_optim_save(plain, w, NULL);
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    unlink(path);
    ck_assert_int_eq(tg_st_count(f), 1);
    ck_assert_ptr_nonnull(tg_st_find(f, "step"));
    tg_st_free(f);
    tg_optim_free(plain);
    tg_optim_free(o);
    tg_params_free(&ps);
}
END_TEST

/* A file with the state of `from` (prefix "opt."), with one tensor left
 * out (skip) and/or one replaced by a bad version. */
enum bad { BAD_NONE, BAD_SHAPE, BAD_I64, BAD_STEP_F32, BAD_STEP_NEG,
           BAD_NAN, BAD_INF, BAD_NEG, BAD_STEP_HUGE };
static tg_st_file *bad_file(const tg_optim *from, const char *skip,
                            enum bad what, const char *target)
{
    tg_st_writer *w = tg_st_writer_new();
    for (int i = 0; i < from->n; i++) {
        const tg_param *p = tg_params_at(from->params, i);
        for (int k = 0; k < 2; k++) {
            char name[64];
            snprintf(name, sizeof name, "opt.%s.%c", p->name, k ? 'v' : 'm');
            if (skip && !strcmp(skip, name))
                continue;
            tg_tensor *t = tg_wrap_buffer(p->tensor->ndim, p->tensor->shape,
                                          k ? from->v[i] : from->m[i]);
            tg_st_add(w, name, t);
        }
    }
    if (!skip || strcmp(skip, "opt.step"))
        tg_st_add_raw(w, "opt.step", TG_I64, 0, NULL, &from->step);
    if (what == BAD_SHAPE)
        tg_st_add(w, target, tg_zeros(TG_SHAPE(5, 7)));
    if (what == BAD_I64)
        tg_st_add_raw(w, target, TG_I64, 2, (int64_t[]){7, 5},
                      tg_arena_calloc(35 * sizeof(int64_t)));
    if (what == BAD_STEP_F32)
        tg_st_add(w, "opt.step", tg_scalar(2));
    if (what == BAD_STEP_NEG)
        tg_st_add_raw(w, "opt.step", TG_I64, 0, NULL, (int64_t[]){-3});
    if (what == BAD_STEP_HUGE) /* step++ would overflow */
        tg_st_add_raw(w, "opt.step", TG_I64, 0, NULL, (int64_t[]){INT64_MAX});
    if (what == BAD_NAN || what == BAD_INF || what == BAD_NEG) {
        /* one number of a [7, 5] buffer: NaN, infinite or -1e-3 */
        tg_tensor *t = tg_zeros(TG_SHAPE(7, 5));
        t->data[12] = what == BAD_NAN ? (tg_real)NAN
                      : what == BAD_INF ? (tg_real)INFINITY : (tg_real)-1e-3;
        tg_st_add(w, target, t);
    }
    char path[64];
    temp_path(path, sizeof path);
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    unlink(path);
    return f;
}

START_TEST(load_errors_change_nothing)
{
    /* `to` has taken 2 steps; `from` (another run) 5: loading from's state
     * would change every number */
    tg_params pa = {0}, pb = {0};
    rand_params(&pa, 1);
    rand_params(&pb, 2);
    tg_optim *to = mk_adam(&pa), *from = mk_adam(&pb);
    for (int s = 0; s < 5; s++) {
        if (s < 2) {
            rand_grads(&pa, s);
            tg_optim_step(to);
        }
        rand_grads(&pb, s + 10);
        tg_optim_step(from);
    }
    /* a copy of to's state, to compare against */
    tg_params pc = {0};
    rand_params(&pc, 1);
    tg_optim *copy = mk_adam(&pc);
    for (int s = 0; s < 2; s++) {
        rand_grads(&pc, s);
        tg_optim_step(copy);
    }
    expect_same_state(to, copy, "copy");

    struct { const char *skip; enum bad what; const char *target;
             const char *frag[3]; } c[] = {
        {"opt.b.v", BAD_NONE, NULL, {"'opt.b.v'", "missing", "missing"}},
        {"opt.W.m", BAD_NONE, NULL, {"'opt.W.m'", "missing", "missing"}},
        {"opt.step", BAD_NONE, NULL, {"'opt.step'", "missing", "I64"}},
        {NULL, BAD_SHAPE, "opt.W.v", {"'opt.W.v'", "[5, 7]", "[7, 5]"}},
        {NULL, BAD_SHAPE, "opt.b.m", {"'opt.b.m'", "[5, 7]", "[5]"}},
        {NULL, BAD_I64, "opt.W.m", {"'opt.W.m'", "I64", "'W'"}},
        {NULL, BAD_STEP_F32, NULL, {"'opt.step'", "not valid", "I64"}},
        {NULL, BAD_STEP_NEG, NULL, {"'opt.step'", "non-negative", "I64"}},
        {NULL, BAD_STEP_HUGE, NULL, {"'opt.step'", "not valid", "2^53"}},
        {NULL, BAD_NAN, "opt.W.v", {"'opt.W.v'", "NaN", "element 12"}},
        {NULL, BAD_INF, "opt.W.m", {"'opt.W.m'", "infinite", "element 12"}},
        {NULL, BAD_NEG, "opt.W.v", {"'opt.W.v'", "negative", "element 12"}},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        tg_st_file *f = bad_file(from, c[k].skip, c[k].what, c[k].target);
        err[0] = 0;
        ck_assert_int_eq(tg_optim_load(to, f, "opt.", err, sizeof err), -1);
        for (int j = 0; j < 3; j++)
            ck_assert_msg(strstr(err, c[k].frag[j]), "case %zu: \"%s\" lacks "
                          "\"%s\"", k, err, c[k].frag[j]);
        expect_same_state(to, copy, err);
        /* a wrong prefix finds nothing */
        ck_assert_int_eq(tg_optim_load(to, f, "other.", err, sizeof err), -1);
        ck_assert_msg(strstr(err, "'other.step'"), "%s", err);
        expect_same_state(to, copy, err);
        tg_st_free(f);
    }
    /* the good file loads, and does change the state */
    tg_st_file *f = bad_file(from, NULL, BAD_NONE, NULL);
    ck_assert_msg(tg_optim_load(to, f, "opt.", err, sizeof err) == 0, "%s", err);
    tg_st_free(f);
    ck_assert_int_eq(to->step, 5);
    for (int i = 0; i < to->n; i++) {
        size_t bytes = (size_t)tg_params_at(&pa, i)->tensor->numel * sizeof(tg_real);
        ck_assert(!memcmp(to->m[i], from->m[i], bytes));
        ck_assert(!memcmp(to->v[i], from->v[i], bytes));
        ck_assert(memcmp(to->m[i], copy->m[i], bytes));
    }
    tg_optim_free(to);
    tg_optim_free(from);
    tg_optim_free(copy);
    tg_params_free(&pa);
    tg_params_free(&pb);
    tg_params_free(&pc);
}
END_TEST

/* ---- the kind of optimizer a file holds ------------------------------------ */

static tg_optim *mk_hf(tg_params *ps) { return tg_hf_optim_new(ps, NULL); }
/* SGD with momentum again, other hyperparameters: the same kind of state */
static tg_optim *mk_sgd2(tg_params *ps) { return tg_sgd_new(ps, 0.5, 0.5, 0.0, 0.0, true); }

/* o's state saved under "opt." and read back; old: without its metadata,
 * as a file saved before the kind was recorded */
static tg_st_file *saved_state(const tg_optim *o, bool old)
{
    char path[64];
    temp_path(path, sizeof path);
    tg_st_writer *w = tg_st_writer_new();
    tg_optim_save(o, w, "opt.");
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    if (old) { /* the tensors alone */
        ck_assert_int_eq(tg_st_meta_count(f), 1);
        w = tg_st_writer_new();
        for (int i = 0; i < tg_st_count(f); i++) {
            const tg_st_tensor *t = tg_st_at(f, i);
            tg_st_add_raw(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        }
        tg_st_free(f);
        ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
        tg_st_writer_free(w);
        f = tg_st_load(path, err, sizeof err);
        ck_assert_msg(f, "%s", err);
    }
    unlink(path);
    return f;
}

/* Every file records its optimizer's kind ("opt.optimizer"), and loads
 * only into that kind, with a message naming both; a Hessian-free state
 * used to load into SGD with momentum (its warm start read as momentum
 * buffers). */
START_TEST(state_files_record_their_kind)
{
    make_fn mks[] = {mk_plain, mk_sgd, mk_adam, mk_adamw, mk_hf};
    const char *ids[] = {"sgd", "sgd_momentum", "adam", "adamw", "hessian_free"};
    const char *words[] = {"SGD without momentum", "SGD with momentum", "Adam",
                           "AdamW", "Hessian-free"};
    for (int a = 0; a < 5; a++) {
        tg_params pa = {0};
        rand_params(&pa, 3);
        tg_optim *from = mks[a](&pa);
        tg_st_file *f = saved_state(from, false);
        ck_assert_str_eq(tg_st_meta(f, "opt.optimizer"), ids[a]);
        for (int b = 0; b < 5; b++) {
            tg_params pb = {0};
            rand_params(&pb, 4);
            tg_optim *to = mks[b](&pb);
            err[0] = 0;
            int rc = tg_optim_load(to, f, "opt.", err, sizeof err);
            if (a == b) {
                ck_assert_msg(rc == 0, "%s into %s: %s", ids[a], ids[b], err);
            } else {
                ck_assert_msg(rc == -1, "%s loaded into %s", ids[a], ids[b]);
                ck_assert_msg(strstr(err, words[a]) && strstr(err, words[b]) &&
                              strstr(err, "'opt.optimizer'"),
                              "%s into %s: \"%s\"", ids[a], ids[b], err);
            }
            tg_optim_free(to);
            tg_params_free(&pb);
        }
        tg_st_free(f);
        tg_optim_free(from);
        tg_params_free(&pa);
    }
    /* other hyperparameters, the same kind: loads */
    tg_params p1 = {0}, p2 = {0};
    rand_params(&p1, 5);
    rand_params(&p2, 5);
    tg_optim *o1 = mk_sgd(&p1), *o2 = mk_sgd2(&p2);
    rand_grads(&p1, 0);
    tg_optim_step(o1);
    tg_st_file *f = saved_state(o1, false);
    ck_assert_msg(tg_optim_load(o2, f, "opt.", err, sizeof err) == 0, "%s", err);
    ck_assert(!memcmp(o2->m[0], o1->m[0], 35 * sizeof(tg_real)));
    tg_st_free(f);
    tg_optim_free(o1);
    tg_optim_free(o2);
    tg_params_free(&p1);
    tg_params_free(&p2);
}
END_TEST

/* A kind of optimizer defined by the program, outside the library: a
 * descriptor with an update rule and the state it keeps (here Signum: a
 * momentum buffer m = beta m + g, and p -= lr * sign(m)) is stepped,
 * saved and loaded by the same code as the built-in kinds, flattened
 * blocks included, and its files are refused by other kinds by name. */
typedef struct signum {
    double beta;
} signum;

static void signum_update(const tg_optim *o, int64_t n, tg_real *p,
                          const tg_real *g, tg_real *m, tg_real *v,
                          bool first)
{
    (void)v;
    const double beta = ((const signum *)o->state)->beta;
    for (int64_t i = 0; i < n; i++) {
        double mi = (first ? 0 : beta * (double)m[i]) + (double)g[i];
        m[i] = (tg_real)mi;
        p[i] = (tg_real)((double)p[i] - o->lr * ((mi > 0) - (mi < 0)));
    }
}

static const tg_optim_type signum_type = {
    .name = "signum",
    .states = {{"signum", "Signum", 1, NULL}},
    .update = signum_update,
};

static tg_optim *mk_signum(tg_params *ps)
{
    signum *s = malloc(sizeof *s);
    s->beta = 0.5;
    return tg_optim_new("signum", &signum_type, ps, 0.125, 0, s);
}

START_TEST(a_kind_defined_outside_the_library)
{
    tg_params ps = {0};
    fixture_params(&ps);
    tg_optim *o = mk_signum(&ps);
    double m[9] = {0}, want[9];
    for (int i = 0; i < 9; i++)
        want[i] = i < 6 ? A0[i] : b0[i - 6];
    for (int s = 0; s < 3; s++) {
        fixture_grads(&ps, s);
        tg_optim_step(o);
        for (int i = 0; i < 9; i++) {
            m[i] = 0.5 * m[i] + (i < 6 ? GA[s][i] : Gb[s][i - 6]);
            want[i] -= 0.125 * ((m[i] > 0) - (m[i] < 0));
        }
    }
    expect_params(&ps, want, "signum");
    /* its state in a file, under its own id; loaded back bit for bit */
    tg_st_file *f = saved_state(o, false);
    ck_assert_str_eq(tg_st_meta(f, "opt.optimizer"), "signum");
    tg_params p2 = {0};
    fixture_params(&p2);
    tg_optim *o2 = mk_signum(&p2);
    ck_assert_msg(tg_optim_load(o2, f, "opt.", err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(o2->step, 3);
    ck_assert(!memcmp(o2->m[0], o->m[0], 6 * sizeof(tg_real)));
    ck_assert(!memcmp(o2->m[1], o->m[1], 3 * sizeof(tg_real)));
    /* into Adam: refused, naming the id (not a kind the library lists) */
    tg_params p3 = {0};
    fixture_params(&p3);
    tg_optim *o3 = mk_adam(&p3);
    ck_assert_int_eq(tg_optim_load(o3, f, "opt.", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "'signum'") && strstr(err, "Adam"), "%s", err);
    tg_st_free(f);
    /* Adam's file into it: refused, naming both */
    fixture_grads(&p3, 0);
    tg_optim_step(o3);
    f = saved_state(o3, false);
    ck_assert_int_eq(tg_optim_load(o2, f, "opt.", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "Adam") && strstr(err, "Signum"), "%s", err);
    tg_st_free(f);
    /* a file without the metadata: none was ever saved by this kind */
    f = saved_state(o, true);
    ck_assert_int_eq(tg_optim_load(o2, f, "opt.", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "Signum"), "%s", err);
    tg_st_free(f);
    tg_optim_free(o);
    tg_optim_free(o2);
    tg_optim_free(o3);
    tg_params_free(&ps);
    tg_params_free(&p2);
    tg_params_free(&p3);
}
END_TEST

/* A file saved before the kind was recorded still loads into the kind that
 * saved it (charlm's older checkpoints resume); its tensors tell the
 * kinds whose state differs apart, Adam's and AdamW's pass for each
 * other (the same moments). */
START_TEST(old_state_files_are_judged_by_their_tensors)
{
    make_fn mks[] = {mk_plain, mk_sgd, mk_adam, mk_adamw, mk_hf};
    const char *words[] = {"SGD without momentum", "SGD with momentum",
                           "Adam or AdamW", "Adam or AdamW", "Hessian-free"};
    for (int a = 0; a < 5; a++) {
        tg_params pa = {0};
        rand_params(&pa, 3);
        tg_optim *from = mks[a](&pa);
        tg_st_file *f = saved_state(from, true);
        ck_assert_ptr_null(tg_st_meta(f, "opt.optimizer"));
        for (int b = 0; b < 5; b++) {
            tg_params pb = {0};
            rand_params(&pb, 4);
            tg_optim *to = mks[b](&pb);
            err[0] = 0;
            int rc = tg_optim_load(to, f, "opt.", err, sizeof err);
            bool same = a == b || (a >= 2 && a <= 3 && b >= 2 && b <= 3);
            if (same) {
                ck_assert_msg(rc == 0, "old %d into %d: %s", a, b, err);
            } else {
                ck_assert_msg(rc == -1, "old %d loaded into %d", a, b);
                ck_assert_msg(strstr(err, words[a]) &&
                              strstr(err, "before the metadata"),
                              "old %d into %d: \"%s\"", a, b, err);
            }
            tg_optim_free(to);
            tg_params_free(&pb);
        }
        tg_st_free(f);
        tg_optim_free(from);
        tg_params_free(&pa);
    }
}
END_TEST

/* ---- threads ---------------------------------------------------------------- */

/* A model of 300,007 numbers; two steps with clipping; the results. */
typedef struct big_run {
    tg_real *p, *m, *v;
    double norm[2];
} big_run;

static big_run run_big(make_fn mk, int threads)
{
    tgt_threads(threads);
    tg_params ps = {0};
    tg_tensor *W = tg_params_new(&ps, "W", TG_SHAPE(600, 500));
    tg_params_new(&ps, "b", TG_SHAPE(7));
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_fill_normal_(W, &r, 0, 1);
    tg_optim *o = mk(&ps);
    big_run out;
    for (int s = 0; s < 2; s++) {
        rand_grads(&ps, s);
        out.norm[s] = tg_clip_grad_norm(&ps, 100.0);
        tg_clip_grad_value(&ps, 0.05);
        tg_optim_step(o);
    }
    size_t bytes = (size_t)W->numel * sizeof(tg_real);
    out.p = malloc(bytes);
    memcpy(out.p, W->data, bytes);
    out.m = malloc(bytes);
    memcpy(out.m, o->m[0], bytes);
    out.v = NULL;
    if (o->v[0]) {
        out.v = malloc(bytes);
        memcpy(out.v, o->v[0], bytes);
    }
    tg_optim_free(o);
    tg_params_free(&ps);
    return out;
}

START_TEST(thread_determinism)
{
    make_fn mks[] = {mk_adam, mk_adamw, mk_sgd, mk_nest};
    const char *names[] = {"adam", "adamw", "sgd", "nesterov"};
    size_t bytes = 300000 * sizeof(tg_real);
    for (int k = 0; k < 4; k++) {
        big_run one = run_big(mks[k], 1), two = run_big(mks[k], 2);
        ck_assert_msg(!memcmp(one.p, two.p, bytes), "%s: parameters differ "
                      "between 1 and 2 threads", names[k]);
        ck_assert_msg(!memcmp(one.m, two.m, bytes), "%s: m differs", names[k]);
        ck_assert(!one.v == !two.v);
        ck_assert_msg(!one.v || !memcmp(one.v, two.v, bytes), "%s: v differs",
                      names[k]);
        for (int s = 0; s < 2; s++)
            ck_assert_msg(memcmp(&one.norm[s], &two.norm[s], sizeof(double)) == 0,
                          "%s: norm %d differs: %.17g vs %.17g", names[k], s,
                          one.norm[s], two.norm[s]);
        free(one.p);
        free(one.m);
        free(one.v);
        free(two.p);
        free(two.m);
        free(two.v);
    }
}
END_TEST

/* The blocked norm of a large gradient against a plain running sum, and
 * clipping of it (max_norm below the norm). */
START_TEST(clip_grad_norm_large)
{
    tg_params ps = {0};
    tg_tensor *W = tg_params_new(&ps, "W", TG_SHAPE(600, 500));
    tg_tensor *b = tg_params_new(&ps, "b", TG_SHAPE(7));
    rand_grads(&ps, 3);
    double s = 0;
    for (int64_t i = 0; i < W->numel; i++)
        s += (double)W->grad[i] * (double)W->grad[i];
    double sb = 0;
    for (int64_t i = 0; i < b->numel; i++)
        sb += (double)b->grad[i] * (double)b->grad[i];
    double want = sqrt(s + sb);
    tg_real g0 = W->grad[12345];
    double norm = tg_clip_grad_norm(&ps, 10.0);
    tgt_close(norm / want, 1.0, 1e-12);
    double coef = 10.0 / (want + 1e-6);
    ck_assert(g0 != 0);
    tgt_close((double)W->grad[12345] / ((double)g0 * coef), 1.0, 1e-6);
    tg_params_free(&ps);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, sgd_matches_pytorch);
    tcase_add_test(tc, adam_matches_pytorch);
    tcase_add_test(tc, step_reads_grads_only);
    tcase_add_test(tc, null_grad_is_skipped);
    tcase_add_test(tc, strided_parameter_is_refused);
    tcase_add_test(tc, zero_grad);
    tcase_add_test(tc, argument_errors);
    tcase_add_test(tc, clip_grad_norm_matches_pytorch);
    tcase_add_test(tc, clip_grad_norm_nan);
    tcase_add_test(tc, clip_grad_value_matches_pytorch);
    tcase_add_test(tc, resume_is_bit_exact);
    tcase_add_test(tc, saved_names_and_types);
    tcase_add_test(tc, load_errors_change_nothing);
    tcase_add_test(tc, state_files_record_their_kind);
    tcase_add_test(tc, a_kind_defined_outside_the_library);
    tcase_add_test(tc, old_state_files_are_judged_by_their_tensors);
    tcase_add_test(tc, thread_determinism);
    tcase_add_test(tc, clip_grad_norm_large);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
