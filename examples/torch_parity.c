/*
 * examples/torch_parity.c - does tapegrad compute what PyTorch computes?
 *
 *   build/torch_parity FILE.safetensors...
 *
 * Each file is a reference case computed by PyTorch and saved as
 * safetensors (scripts/gen_torch_fixtures.py writes them, and its
 * docstring is the format; tests/fixtures holds 16): the inputs (input.*),
 * parameters (PyTorch's state_dict names), outputs (expected.*) and
 * gradients (grad.*) of an nn.RNN/LSTM/GRU (metadata "kind": "seq";
 * cell, input_size, hidden_size, num_layers, seq_len, batch) or of a
 * whole character model with gradient clipping, an SGD step and two Adam
 * steps ("kind": "charlm"; also vocab, embed, sgd_lr, adam_lr, adam_eps,
 * clip_grad_norm). This program rebuilds the same model from tapegrad's own
 * modules, loads the same weights, runs forward and backward, and compares
 * every expected.* and grad.* tensor, one line each:
 *
 *   name  max |error|  max |error| / max(1, |expected|)
 *
 * then PASS or FAIL per file. Exit status 0 only if every file passes.
 */
#include "nn/charlm.h"
#include "nn/optim.h"
#include "nn/rnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

typedef struct check {
    const char *file;
    int failures;
    double worst;
} check;

/* expected tensor `name` from f against got (NULL: a missing output) */
static void compare(check *c, const tg_st_file *f, const char *name,
                    const tg_tensor *got)
{
    const tg_st_tensor *e = tg_st_find(f, name);
    if (!e) {
        printf("  %-44s missing from the file\n", name);
        c->failures++;
        return;
    }
    if (!got) {
        printf("  %-44s FAIL: tapegrad produced nothing\n", name);
        c->failures++;
        return;
    }
    char err[256];
    tg_tensor *want = tg_empty(e->ndim, e->shape);
    if (want->numel != got->numel ||
        tg_st_copy_to(e, want, err, sizeof err) < 0) {
        char s[96];
        printf("  %-44s FAIL: shape %s, expected %lld elements\n", name,
               tg_shape_str(got, s, sizeof s), (long long)e->numel);
        c->failures++;
        return;
    }
    double max_abs = 0, max_rel = 0;
    for (int64_t i = 0; i < want->numel; i++) {
        double w = tg_flat_get(want, i), g = tg_flat_get(got, i);
        double a = fabs(w - g), r = a / fmax(1.0, fabs(w));
        if (!(a <= max_abs))
            max_abs = a;
        if (!(r <= max_rel))
            max_rel = r;
    }
    bool ok = max_rel <= TOL;
    printf("  %-44s %.3e  %.3e%s\n", name, max_abs, max_rel, ok ? "" : "  FAIL");
    if (!ok)
        c->failures++;
    if (!(max_rel <= c->worst))
        c->worst = max_rel;
}

/* a gradient buffer seen as a tensor of t's shape */
static tg_tensor *grad_of(tg_tensor *t)
{
    return t->grad ? tg_wrap_buffer(t->ndim, t->shape, t->grad) : NULL;
}

/* a temporary leaf that requires grad, read from the file */
static tg_tensor *input(const tg_st_file *f, const char *name, bool grad)
{
    const tg_st_tensor *e = tg_st_find(f, name);
    if (!e)
        return NULL;
    tg_tensor *t = tg_empty(e->ndim, e->shape);
    if (tg_st_copy_to(e, t, NULL, 0) < 0)
        return NULL;
    return grad ? tg_requires_grad(t) : t;
}

static int64_t *ids(const tg_st_file *f, const char *name)
{
    const tg_st_tensor *e = tg_st_find(f, name);
    if (!e || e->dtype != TG_I64)
        return NULL;
    int64_t *v = tg_arena_alloc((size_t)e->numel * sizeof *v);
    tg_st_read_i64(e, v);
    return v;
}

static const char *meta(const tg_st_file *f, const char *key, bool *ok)
{
    const char *v = tg_st_meta(f, key);
    if (!v) {
        printf("  metadata '%s' missing\n", key);
        *ok = false;
        return "0";
    }
    return v;
}

/* sum(a * w) as a recorded scalar */
static tg_tensor *dot(tg_tensor *a, tg_tensor *w) { return tg_sum(tg_mul(a, w)); }

static void compare_param_grads(check *c, const tg_st_file *f,
                                const tg_params *ps, const char *prefix)
{
    char name[256];
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_param *p = tg_params_at(ps, i);
        snprintf(name, sizeof name, "grad.%s%s", prefix, p->name);
        compare(c, f, name, grad_of(p->tensor));
    }
}

static void compare_params(check *c, const tg_st_file *f, const tg_params *ps,
                           const char *prefix)
{
    char name[256];
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_param *p = tg_params_at(ps, i);
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        compare(c, f, name, p->tensor);
    }
}

static const tg_cell_type *cell_of(const tg_st_file *f, bool *ok)
{
    const char *name = meta(f, "cell", ok);
    const tg_cell_type *t = tg_cell_type_find(name);
    if (!t) {
        printf("  unknown cell '%s'\n", name);
        *ok = false;
    }
    return t;
}

static int run_seq(check *c, const tg_st_file *f)
{
    bool ok = true;
    const tg_cell_type *type = cell_of(f, &ok);
    int I = atoi(meta(f, "input_size", &ok)), H = atoi(meta(f, "hidden_size", &ok));
    int L = atoi(meta(f, "num_layers", &ok));
    if (!ok)
        return -1;
    tg_rnn *r = tg_rnn_new(type, I, H, L, 0.0, NULL);
    char err[256];
    if (!r || tg_params_load(&r->params, f, "rnn.", err, sizeof err) < 0) {
        printf("  cannot load the weights: %s\n", r ? err : tg_last_error());
        tg_rnn_free(r);
        return -1;
    }
    bool lstm = type->nstate == 2;
    tg_tensor *x = input(f, "input.x", true), *h0 = input(f, "input.h0", true);
    tg_tensor *c0 = lstm ? input(f, "input.c0", true) : NULL;
    tg_tensor *dy = input(f, "input.dy", false), *dh = input(f, "input.dh_n", false);
    tg_tensor *dc = lstm ? input(f, "input.dc_n", false) : NULL;
    tg_rnn_out out;
    if (!x || !h0 || !dy || !dh || (lstm && (!c0 || !dc)) ||
        tg_rnn_forward(r, x, (tg_tensor *[]){h0, c0}, false, NULL, &out) < 0) {
        printf("  inputs missing or of the wrong shape\n");
        tg_rnn_free(r);
        return -1;
    }
    tg_tensor *loss = tg_add(dot(out.y, dy), dot(out.state[0], dh));
    if (lstm)
        loss = tg_add(loss, dot(out.state[1], dc));
    tg_backward(loss);
    compare(c, f, "expected.y", out.y);
    compare(c, f, "expected.h_n", out.state[0]);
    if (lstm)
        compare(c, f, "expected.c_n", out.state[1]);
    compare(c, f, "expected.loss", loss);
    compare(c, f, "grad.input.x", grad_of(x));
    compare(c, f, "grad.input.h0", grad_of(h0));
    if (lstm)
        compare(c, f, "grad.input.c0", grad_of(c0));
    compare_param_grads(c, f, &r->params, "rnn.");
    tg_rnn_free(r);
    return 0;
}

/* forward + mean cross-entropy of the charlm case; NULL on error */
static tg_tensor *charlm_loss(tg_charlm *m, const int64_t *tok,
                              const int64_t *tgt, int64_t T, int64_t B,
                              tg_tensor *h0, tg_tensor *c0, tg_rnn_out *out,
                              tg_tensor **logits)
{
    *logits = tg_charlm_forward(m, tok, T, B, (tg_tensor *[]){h0, c0}, false,
                                NULL, out);
    return tg_cross_entropy(*logits, tgt, TG_MEAN);
}

static int run_charlm(check *c, const tg_st_file *f)
{
    bool ok = true;
    const tg_cell_type *type = cell_of(f, &ok);
    int V = atoi(meta(f, "vocab", &ok)), E = atoi(meta(f, "embed", &ok));
    int H = atoi(meta(f, "hidden_size", &ok)), L = atoi(meta(f, "num_layers", &ok));
    int64_t T = atoll(meta(f, "seq_len", &ok)), B = atoll(meta(f, "batch", &ok));
    double lr = atof(meta(f, "sgd_lr", &ok)), clip = atof(meta(f, "clip_grad_norm", &ok));
    double adam_lr = atof(meta(f, "adam_lr", &ok)), eps = atof(meta(f, "adam_eps", &ok));
    if (!ok)
        return -1;
    tg_charlm *m = tg_charlm_new(type, V, E, H, L, 0.0, NULL);
    char err[256];
    if (!m || tg_params_load(&m->params, f, "", err, sizeof err) < 0) {
        printf("  cannot load the weights: %s\n", m ? err : tg_last_error());
        tg_charlm_free(m);
        return -1;
    }
    bool lstm = type->nstate == 2;
    int64_t *tok = ids(f, "input.tokens"), *tgt = ids(f, "input.targets");
    tg_tensor *h0 = input(f, "input.h0", true);
    tg_tensor *c0 = lstm ? input(f, "input.c0", true) : NULL;
    tg_rnn_out out;
    tg_tensor *logits;
    tg_tensor *loss = tok && tgt && h0 && (c0 || !lstm)
                          ? charlm_loss(m, tok, tgt, T, B, h0, c0, &out, &logits)
                          : NULL;
    if (!loss) {
        printf("  inputs missing or of the wrong shape\n");
        tg_charlm_free(m);
        return -1;
    }
    tg_backward(loss);
    compare(c, f, "expected.logits", logits);
    compare(c, f, "expected.loss", loss);
    compare(c, f, "expected.h_n", out.state[0]);
    if (lstm)
        compare(c, f, "expected.c_n", out.state[1]);
    compare_param_grads(c, f, &m->params, "");
    /* grad.input.h0 / c0: files with the metadata key grad_h0 hold the
     * gradient of the one backward pass above, like every grad.* tensor.
     * Older files hold the sum of three passes' gradients (their generator
     * stored h0.grad without copying it, so the two Adam passes below
     * added into it): for those we keep the same sum. */
    bool one_pass = tg_st_meta(f, "grad_h0") != NULL;
    tg_tensor *acc[2] = {tg_tensor_new(h0->ndim, h0->shape),
                         lstm ? tg_tensor_new(c0->ndim, c0->shape) : NULL};
    tg_tensor *leaf[2] = {h0, c0};
    for (int k = 0; k < (lstm ? 2 : 1); k++)
        for (int64_t i = 0; i < acc[k]->numel; i++)
            acc[k]->data[i] += leaf[k]->grad[i];
    if (one_pass) {
        compare(c, f, "grad.input.h0", acc[0]);
        if (lstm)
            compare(c, f, "grad.input.c0", acc[1]);
    }

    /* clip the global norm, one SGD step */
    double norm = tg_clip_grad_norm(&m->params, clip);
    compare(c, f, "expected.grad_norm", tg_scalar(norm));
    tg_optim *sgd = tg_sgd_new(&m->params, lr, 0, 0, 0, false);
    tg_optim_step(sgd);
    tg_optim_free(sgd);
    compare_params(c, f, &m->params, "expected.sgd_step.");

    /* two Adam steps from the initial weights on the same batch */
    tg_params_load(&m->params, f, "", err, sizeof err);
    tg_optim *adam = tg_adam_new(&m->params, adam_lr, 0.9, 0.999, eps, 0);
    for (int step = 0; step < 2; step++) {
        tg_optim_zero_grad(adam);
        tg_tape_reset();
        leaf[0] = h0 = input(f, "input.h0", true);
        leaf[1] = c0 = lstm ? input(f, "input.c0", true) : NULL;
        tok = ids(f, "input.tokens");
        tgt = ids(f, "input.targets");
        tg_backward(charlm_loss(m, tok, tgt, T, B, h0, c0, &out, &logits));
        tg_optim_step(adam);
        for (int k = 0; k < (lstm ? 2 : 1); k++)
            for (int64_t i = 0; i < acc[k]->numel; i++)
                acc[k]->data[i] += leaf[k]->grad[i];
    }
    if (!one_pass) {
        compare(c, f, "grad.input.h0", acc[0]);
        if (lstm)
            compare(c, f, "grad.input.c0", acc[1]);
    }
    tg_tensor_free(acc[0]);
    tg_tensor_free(acc[1]);
    tg_optim_free(adam);
    compare_params(c, f, &m->params, "expected.adam_step2.");
    tg_charlm_free(m);
    return 0;
}

static void on_error(const char *op, const char *msg, void *ud)
{
    (void)ud;
    printf("  error: %s: %s\n", op, msg);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: %s FILE.safetensors...\n"
                "Compares tapegrad with PyTorch reference fixtures (written "
                "by\nscripts/gen_torch_fixtures.py);\nexits non-zero if any tensor "
                "differs by more than %g relative to max(1, |expected|).\n",
                argv[0], TOL);
        return argc < 2 ? 2 : 0;
    }
    tg_set_error_handler(on_error, NULL);
    int failed = 0;
    double worst = 0;
    for (int i = 1; i < argc; i++) {
        check c = {argv[i], 0, 0};
        unsigned long errors_before = tg_error_count();
        char err[512];
        printf("%s\n", argv[i]);
        tg_st_file *f = tg_st_load(argv[i], err, sizeof err);
        int rc = -1;
        if (!f) {
            printf("  cannot read: %s\n", err);
        } else {
            const char *kind = tg_st_meta(f, "kind");
            if (kind && !strcmp(kind, "seq"))
                rc = run_seq(&c, f);
            else if (kind && !strcmp(kind, "charlm"))
                rc = run_charlm(&c, f);
            else
                printf("  unknown fixture kind '%s'\n", kind ? kind : "(none)");
        }
        bool pass = rc == 0 && c.failures == 0 && tg_error_count() == errors_before;
        printf("%s %s (worst relative error %.3e)\n", pass ? "PASS" : "FAIL",
               argv[i], c.worst);
        if (!pass)
            failed++;
        if (c.worst > worst)
            worst = c.worst;
        tg_st_free(f);
        tg_tape_reset();
    }
    printf("%d of %d files passed; worst relative error %.3e\n",
           argc - 1 - failed, argc - 1, worst);
    tg_tape_free_all();
    return failed ? 1 : 0;
}
