/*
 * examples/charlm/ckpt.c - checkpoints: one safetensors file that both
 * PyTorch and a resumed run can read.
 *
 * Tensors:
 *   embedding.weight, rnn.weight_ih_l0 ... rnn.bias_hh_l<L-1>,
 *   decoder.weight, decoder.bias          the model, PyTorch's names (F32)
 *   optim.<name>.m, optim.<name>.v, optim.step   optimizer state
 *   train.state.<k>   [L, B, H] the hidden state carried into the next
 *                     step (absent when the next step starts from zeros)
 *   train.rng         I64 [4] the generator of initialisation and dropout
 *   train.loss_sum    F64: training losses summed since the last evaluation
 * Metadata (strings):
 *   format "tapegrad-charlm", format_version "1", vocab (the characters,
 *   UTF-8), every hyperparameter under its flag name (cell, layers, ...;
 *   reals in the shortest form that reads back as the same double), step,
 *   pos,
 *   tokens, loss_count, elapsed_s, val_loss, grad_norm, corpus_chars,
 *   corpus_hash, checksum (of all the tensors' bytes).
 *
 * Everything a training step reads is in the file, bit for bit, which is
 * why a resumed run continues exactly as if it had never stopped.
 * Loading checks every value before building anything, so a truncated,
 * corrupt or foreign file is one clear message, never a crash.
 */
#include "charlm.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "tapegrad-charlm"
#define VERSION "1"

/* ---- saving ------------------------------------------------------------- */

static void meta_i64(tg_st_writer *w, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    tg_st_set_meta(w, key, buf);
}

static void meta_real(tg_st_writer *w, const char *key, double v)
{
    char buf[40];
    cl_shortest(buf, sizeof buf, v);
    tg_st_set_meta(w, key, buf);
}

/* FNV-1a over every tensor (sorted by name): name, dtype, shape, bytes.
 * Detects a damaged byte anywhere in the data, which the safetensors
 * checks (sizes, offsets, JSON) cannot see. */
static int by_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const tg_st_tensor *const *)a)->name,
                  (*(const tg_st_tensor *const *)b)->name);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t checksum(const tg_st_file *f)
{
    int n = tg_st_count(f);
    const tg_st_tensor **ts = tg_xmalloc((size_t)(n ? n : 1) * sizeof *ts);
    for (int i = 0; i < n; i++)
        ts[i] = tg_st_at(f, i);
    qsort(ts, (size_t)n, sizeof *ts, by_tensor_name);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        const tg_st_tensor *t = ts[i];
        int32_t head[2] = {(int32_t)t->dtype, t->ndim};
        h = fnv(h, t->name, strlen(t->name) + 1);
        h = fnv(h, head, sizeof head);
        h = fnv(h, t->shape, (size_t)t->ndim * sizeof *t->shape);
        h = fnv(h, t->data, (size_t)t->numel * (t->dtype == TG_F32 ? 4 : 8));
    }
    free(ts);
    return h;
}

int cl_ckpt_save(const cl_run *r, const char *path)
{
    tg_st_writer *w = tg_st_writer_new();
    tg_params_save(&r->model->params, w, "");
    if (r->opt)
        tg_optim_save(r->opt, w, "optim.");
    for (int k = 0; r->has_state && k < r->cell->nstate; k++) {
        char name[32];
        snprintf(name, sizeof name, "train.state.%d", k);
        tg_st_add(w, name, r->state[k]);
    }
    int64_t words[4];
    for (int k = 0; k < 4; k++)
        words[k] = (int64_t)r->rng.s[k];
    tg_st_add_raw(w, "train.rng", TG_I64, 1, (const int64_t[]){4}, words);
    tg_st_add_raw(w, "train.loss_sum", TG_F64, 0, NULL, &r->loss_sum);

    tg_st_set_meta(w, "format", FORMAT);
    tg_st_set_meta(w, "format_version", VERSION);
    char *vocab = cl_vocab_utf8(&r->vocab);
    tg_st_set_meta(w, "vocab", vocab);
    free(vocab);
    int n;
    const cl_opt *opts = cl_train_opts(&n);
    for (int i = 0; i < n; i++)
        if (opts[i].flags & CL_STORED) {
            char buf[4200];
            cl_opt_format(&opts[i], &r->cfg, buf, sizeof buf);
            tg_st_set_meta(w, opts[i].name, buf);
        }
    meta_i64(w, "step", r->step);
    meta_i64(w, "pos", r->pos);
    meta_i64(w, "tokens", r->tokens);
    meta_i64(w, "loss_count", r->loss_count);
    meta_real(w, "elapsed_s", r->elapsed_s);
    meta_real(w, "val_loss", r->val_loss);
    meta_real(w, "grad_norm", r->grad_norm);
    meta_i64(w, "corpus_chars", r->corpus_chars);
    char hash[24];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->corpus_hash);
    tg_st_set_meta(w, "corpus_hash", hash);

    /* The checksum of the tensors goes into the header, so it is computed
     * from a first copy read back (which also proves the copy readable),
     * then the file is written whole under its name: at every moment
     * path holds either the old checkpoint or the new one. */
    char err[512], partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", path);
    int rc = tg_st_save(w, partial, err, sizeof err);
    tg_st_file *back = rc < 0 ? NULL : tg_st_load(partial, err, sizeof err);
    if (back) {
        char sum[24];
        snprintf(sum, sizeof sum, "%016" PRIx64, checksum(back));
        tg_st_free(back);
        tg_st_set_meta(w, "checksum", sum);
        rc = tg_st_save(w, path, err, sizeof err);
    } else
        rc = -1;
    remove(partial);
    tg_st_writer_free(w);
    return rc < 0 ? cl_fail("cannot save the checkpoint: %s", err) : 0;
}

/* ---- loading ------------------------------------------------------------ */

static int meta_int(const tg_st_file *f, const char *path, const char *key,
                    int64_t *out)
{
    const char *v = tg_st_meta(f, key);
    char *end;
    if (!v)
        return cl_fail("checkpoint %s: metadata '%s' is missing", path, key);
    long long i = strtoll(v, &end, 10);
    if (!*v || *end || i < 0)
        return cl_fail("checkpoint %s: metadata '%s' = '%s' is not a count",
                       path, key, v);
    *out = i;
    return 0;
}

static int meta_double(const tg_st_file *f, const char *path, const char *key,
                       double *out)
{
    const char *v = tg_st_meta(f, key);
    char *end;
    if (!v)
        return cl_fail("checkpoint %s: metadata '%s' is missing", path, key);
    *out = strtod(v, &end);
    if (!*v || *end)
        return cl_fail("checkpoint %s: metadata '%s' = '%s' is not a number",
                       path, key, v);
    return 0;
}

/* a stored float tensor of exactly this shape, copied into a new
 * persistent tensor */
static tg_tensor *load_state(const tg_st_file *f, const char *path,
                             const char *name, const cl_config *c)
{
    const tg_st_tensor *t = tg_st_find(f, name);
    int64_t want[3] = {c->layers, c->batch, c->hidden};
    if (!t || t->dtype == TG_I64 || t->ndim != 3 || t->shape[0] != want[0] ||
        t->shape[1] != want[1] || t->shape[2] != want[2]) {
        cl_fail("checkpoint %s: tensor '%s' is %s (want [%lld, %lld, %lld] "
                "floats)", path, name, t ? "misshapen" : "missing",
                (long long)want[0], (long long)want[1], (long long)want[2]);
        return NULL;
    }
    return tg_st_new_tensor(t);
}

static bool all_finite(const tg_tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i]))
            return false;
    return true;
}

static int load_train(const tg_st_file *f, const char *path, cl_run *r)
{
    char err[512];
    if (tg_optim_load(r->opt, f, "optim.", err, sizeof err) < 0)
        return cl_fail("checkpoint %s: %s", path, err);
    if (meta_int(f, path, "pos", &r->pos) < 0 ||
        meta_int(f, path, "tokens", &r->tokens) < 0 ||
        meta_int(f, path, "loss_count", &r->loss_count) < 0 ||
        meta_int(f, path, "corpus_chars", &r->corpus_chars) < 0 ||
        meta_double(f, path, "elapsed_s", &r->elapsed_s) < 0 ||
        meta_double(f, path, "grad_norm", &r->grad_norm) < 0)
        return -1;
    const char *h = tg_st_meta(f, "corpus_hash");
    if (!h || sscanf(h, "%" SCNx64, &r->corpus_hash) != 1)
        return cl_fail("checkpoint %s: metadata 'corpus_hash' is missing or "
                       "not hexadecimal", path);
    const tg_st_tensor *rng = tg_st_find(f, "train.rng");
    int64_t words[4];
    if (!rng || rng->dtype != TG_I64 || rng->numel != 4 ||
        tg_st_read_i64(rng, words) < 0)
        return cl_fail("checkpoint %s: tensor 'train.rng' is missing or not "
                       "4 I64 words", path);
    for (int k = 0; k < 4; k++)
        r->rng.s[k] = (uint64_t)words[k];
    const tg_st_tensor *ls = tg_st_find(f, "train.loss_sum");
    if (!ls || ls->dtype != TG_F64 || ls->numel != 1)
        return cl_fail("checkpoint %s: tensor 'train.loss_sum' is missing or "
                       "not one F64 number", path);
    memcpy(&r->loss_sum, ls->data, sizeof r->loss_sum);
    r->has_state = tg_st_find(f, "train.state.0") != NULL;
    for (int k = 0; r->has_state && k < r->cell->nstate; k++) {
        char name[32];
        snprintf(name, sizeof name, "train.state.%d", k);
        if (!(r->state[k] = load_state(f, path, name, &r->cfg)))
            return -1;
    }
    return 0;
}

int cl_ckpt_load(const char *path, cl_run *r, bool with_train)
{
    char err[512];
    *r = (cl_run){0};
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    if (!f)
        return cl_fail("cannot load checkpoint: %s", err);
    int rc = -1;
    const char *fmt = tg_st_meta(f, "format"), *ver = tg_st_meta(f, "format_version");
    if (!fmt || strcmp(fmt, FORMAT)) {
        cl_fail("%s is not a charlm checkpoint (its metadata has no \"format\": "
                "\"" FORMAT "\")", path);
        goto done;
    }
    if (!ver || strcmp(ver, VERSION)) {
        cl_fail("checkpoint %s has format version %s; this charlm reads "
                "version " VERSION, path, ver ? ver : "(none)");
        goto done;
    }
    const char *sum = tg_st_meta(f, "checksum");
    char mine[24];
    snprintf(mine, sizeof mine, "%016" PRIx64, checksum(f));
    if (!sum || strcmp(sum, mine)) {
        cl_fail("checkpoint %s is corrupt: %s", path, sum ? "its tensors do "
                "not match the checksum saved with them" : "it has no checksum");
        goto done;
    }
    /* hyperparameters: the same parser and checks as the flags */
    cl_config_defaults(&r->cfg);
    int n;
    const cl_opt *opts = cl_train_opts(&n);
    for (int i = 0; i < n; i++) {
        if (!(opts[i].flags & CL_STORED))
            continue;
        const char *v = tg_st_meta(f, opts[i].name);
        char ctx[600];
        snprintf(ctx, sizeof ctx, "checkpoint %s: metadata '%s'", path,
                 opts[i].name);
        if (!v) {
            cl_fail("%s is missing", ctx);
            goto done;
        }
        if (cl_opt_parse(&opts[i], &r->cfg, cl_strdup(v), ctx) < 0)
            goto done;
    }
    const char *vocab = tg_st_meta(f, "vocab");
    if (!vocab) {
        cl_fail("checkpoint %s: metadata 'vocab' is missing", path);
        goto done;
    }
    if (cl_vocab_parse(vocab, &r->vocab) < 0) {
        cl_fail("checkpoint %s: %s", path, cl_error());
        goto done;
    }
    if (meta_int(f, path, "step", &r->step) < 0 ||
        meta_double(f, path, "val_loss", &r->val_loss) < 0)
        goto done;
    if (cl_run_build(r, with_train) < 0) {
        cl_fail("checkpoint %s: %s", path, cl_error());
        goto done;
    }
    if (tg_params_load(&r->model->params, f, "", err, sizeof err) < 0) {
        cl_fail("checkpoint %s does not fit its own hyperparameters (%s %lld "
                "x %lld, vocabulary %lld): %s", path, r->cfg.cell,
                (long long)r->cfg.layers, (long long)r->cfg.hidden,
                (long long)r->vocab.n, err);
        goto done;
    }
    for (int i = 0; i < tg_params_count(&r->model->params); i++) {
        const tg_param *p = tg_params_at(&r->model->params, i);
        if (!all_finite(p->tensor)) {
            cl_fail("checkpoint %s: tensor '%s' holds NaN or infinite values",
                    path, p->name);
            goto done;
        }
    }
    if (with_train && load_train(f, path, r) < 0)
        goto done;
    rc = 0;
done:
    tg_st_free(f);
    if (rc < 0)
        cl_run_free(r);
    return rc;
}

bool cl_ckpt_peek(const char *path, int64_t *step)
{
    char err[512];
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    if (!f)
        return false;
    const char *fmt = tg_st_meta(f, "format"), *s = tg_st_meta(f, "step");
    bool ok = fmt && !strcmp(fmt, FORMAT);
    *step = ok && s ? strtoll(s, NULL, 10) : -1;
    tg_st_free(f);
    return ok;
}
