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
 *   format "tapegrad-charlm", format_version "2", vocab (the characters,
 *   UTF-8), every hyperparameter under its flag name (cell, layers, ...;
 *   reals in the shortest form that reads back as the same double),
 *   optim.optimizer (the optimizer's kind, nn/optim.h: a checkpoint
 *   written before it existed resumes as before), step,
 *   pos, tokens, loss_count, elapsed_s, val_loss, grad_norm, corpus_chars,
 *   corpus_hash, checksum (of all the tensors and all the other metadata:
 *   ckpt_sum.c; version 1 files, whose checksum covers only the tensors,
 *   are still read).
 *
 * Everything a training step reads is in the file, bit for bit, which is
 * why a resumed run continues exactly as if it had never stopped.
 * Loading checks every value before building anything - metadata against
 * ranges and each other, the tensors' shapes against the hyperparameters
 * (so a small file cannot make the loader build a huge model), every
 * number finite - so a truncated, corrupt, foreign or crafted file is one
 * clear message, never a crash or a wrong-cause error later.
 *
 * Saving writes "<path>.partial.<pid>" and renames it over path. A save
 * killed on the way leaves that file (and tg_st_save's ".tmp.XXXXXX"
 * beside it); the next save to path removes those whose process is gone.
 * A training run replaces only the file it expects at path (cl_path_id:
 * the one there when it started, then its own): just before the rename it
 * looks again, and a file another run put there stays; the checkpoint
 * goes to "<path>.<pid>" instead. (POSIX has no rename that replaces only
 * a given file: a file put there between that look and the rename, a few
 * microseconds, is replaced.)
 */
#include "charlm.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FORMAT "tapegrad-charlm"
#define VERSION "2"
#define VERSION_NUM 2

/* Bounds of the counters a checkpoint stores: steps as --steps; tokens,
 * positions and corpus sizes far below INT64_MAX, so that adding a step's
 * T * B (at most 1e10) can never overflow. */
#define MAX_STEP 1000000000000LL     /* 1e12 */
#define MAX_COUNT 1000000000000000LL /* 1e15 */

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
    cli_shortest(buf, sizeof buf, v);
    tg_st_set_meta(w, key, buf);
}

/* s is tg_st_save's temporary suffix ".tmp.XXXXXX" */
static bool tmp_suffix(const char *s)
{
    return !strncmp(s, ".tmp.", 5) && strlen(s + 5) == 6;
}

/* Removes what saves to path killed on the way left behind:
 * "<base>.partial.<pid>" and "<base>.partial.<pid>.tmp.XXXXXX" whose
 * process is gone (kill(pid, 0) fails with ESRCH: a live writer's files
 * are never touched), and the names older versions used, without a pid
 * ("<base>.partial", "<base>.tmp.XXXXXX", "<base>.partial.tmp.XXXXXX"),
 * once nothing has written to them for an hour. */
static void remove_stale(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0, blen = strlen(base);
    char *dir = tg_xmalloc(dlen + 2);
    if (slash)
        snprintf(dir, dlen + 2, "%.*s", (int)dlen, path);
    else
        snprintf(dir, dlen + 2, ".");
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *rest = e->d_name + blen;
        if (strncmp(e->d_name, base, blen) || strncmp(rest, ".", 1))
            continue;
        bool stale = false, legacy = false;
        if (!strncmp(rest, ".partial.", 9) && rest[9] >= '1' && rest[9] <= '9') {
            char *end;
            errno = 0;
            long long pid = strtoll(rest + 9, &end, 10);
            if (!errno && pid <= INT32_MAX && (!*end || tmp_suffix(end)))
                stale = pid == (long long)getpid() ||
                        (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
        } else {
            legacy = !strcmp(rest, ".partial") || tmp_suffix(rest) ||
                     (!strncmp(rest, ".partial", 8) && tmp_suffix(rest + 8));
        }
        if (!stale && !legacy)
            continue;
        size_t n = dlen + strlen(e->d_name) + 1;
        char *full = tg_xmalloc(n);
        snprintf(full, n, "%.*s%s", (int)dlen, path, e->d_name);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) &&
            (stale || difftime(time(NULL), st.st_mtime) > 3600))
            unlink(full);
        free(full);
    }
    if (d)
        closedir(d);
    free(dir);
}

void cl_path_id_get(const char *path, cl_path_id *id)
{
    struct stat st;
    *id = (cl_path_id){0};
    if (stat(path, &st) != 0)
        return;
    *id = (cl_path_id){
        .exists = true, .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino,
        .size = (int64_t)st.st_size,
        .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
}

/* Where the checkpoint goes when path was taken: "<path>.<pid>", or
 * "<path>.<pid>.<k>" if that exists (a pid used again); NULL if all do. */
static char *side_name(const char *path)
{
    size_t cap = strlen(path) + 48;
    char *side = tg_xmalloc(cap);
    struct stat st;
    for (int k = 0; k < 100; k++) {
        snprintf(side, cap, k ? "%s.%ld.%d" : "%s.%ld", path, (long)getpid(), k);
        if (lstat(side, &st) != 0 && errno == ENOENT)
            return side;
    }
    free(side);
    return NULL;
}

static bool same_id(const cl_path_id *a, const cl_path_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* rename(tmp, path), unless path no longer holds the file *mine says:
 * then tmp goes to a side file, and -2 with err saying so. -1 with err set
 * if the file could not be put anywhere; *mine becomes what path holds
 * after a rename. */
static int put_in_place(const cl_run *r, const char *tmp, const char *path,
                        cl_path_id *mine, char *err, size_t cap)
{
    cl_path_id now;
    if (mine)
        cl_path_id_get(path, &now);
    if (mine && now.exists && !same_id(&now, mine)) {
        char was[160] = "another file";
        int64_t step;
        if (cl_ckpt_peek(path, &step))
            snprintf(was, sizeof was, "a checkpoint at step %lld",
                     (long long)step);
        char *side = side_name(path);
        if (!side || rename(tmp, side) < 0) {
            snprintf(err, cap, "%s was replaced during this run (it now holds "
                     "%s) and is not overwritten; saving to %s instead failed: %s",
                     path, was, side ? side : "PATH.<pid>",
                     side ? strerror(errno) : "all taken");
            free(side);
            return -1;
        }
        snprintf(err, cap, "%s was replaced during this run (it now holds %s) "
                 "and is not overwritten: step %lld is saved to %s instead (continue "
                 "with: charlm train --resume %s)", path, was,
                 (long long)r->step, side, side);
        free(side);
        return -2;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, cap, "%s: could not write: %s (the previous file, if "
                 "any, is unchanged)", path, strerror(errno));
        return -1;
    }
    if (mine)
        cl_path_id_get(path, mine);
    return 0;
}

int cl_ckpt_save(const cl_run *r, const char *path, cl_path_id *mine)
{
    struct stat st; /* stat, not open: a FIFO must not block us */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !mine) /* else: taken */
        return cli_fail("cannot save the checkpoint: %s is not a regular file "
                       "(a directory, FIFO or device), and charlm replaces "
                       "only files", path);
    remove_stale(path);
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

    /* The checksum goes into the header, so it is computed from a first
     * copy read back (which also proves the copy readable); the copy is
     * then written again with it, whole, and renamed over path: at every
     * moment path holds either the old checkpoint or the new one. */
    char err[2048] = "";
    size_t cap = strlen(path) + 32;
    char *tmp = tg_xmalloc(cap);
    snprintf(tmp, cap, "%s.partial.%ld", path, (long)getpid());
    int rc = tg_st_save(w, tmp, err, sizeof err);
    tg_st_file *back = rc < 0 ? NULL : tg_st_load(tmp, err, sizeof err);
    if (back) {
        char sum[24];
        snprintf(sum, sizeof sum, "%016" PRIx64,
                 cl_ckpt_checksum(back, VERSION_NUM));
        tg_st_free(back);
        tg_st_set_meta(w, "checksum", sum);
        rc = tg_st_save(w, tmp, err, sizeof err);
        if (rc == 0)
            rc = put_in_place(r, tmp, path, mine, err, sizeof err);
    } else
        rc = -1;
    if (rc < 0 && rc != -2)
        unlink(tmp);
    free(tmp);
    tg_st_writer_free(w);
    if (rc == -2) /* saved, elsewhere */
        return cli_fail("%s", err);
    return rc < 0 ? cli_fail("cannot save the checkpoint: %s", err) : 0;
}

/* ---- loading ------------------------------------------------------------ */

tg_st_file *cl_st_read(const char *path, const char *what, const char *failure)
{
    char ctx[64];
    snprintf(ctx, sizeof ctx, "%s ", what);
    int64_t size;
    FILE *in = cl_open_regular(path, ctx, &size);
    if (!in)
        return NULL;
    unsigned char *buf = tg_xmalloc((size_t)(size ? size : 1));
    size_t got = fread(buf, 1, (size_t)size, in);
    int bad = ferror(in);
    fclose(in);
    char err[512];
    tg_st_file *f = NULL;
    if (bad || got != (size_t)size)
        cli_fail("cannot read %s %s: read %zu of %lld bytes", what, path, got,
                (long long)size);
    else if (!(f = tg_st_parse(buf, got, path, err, sizeof err)))
        cli_fail("%s: %s", failure, err);
    free(buf);
    return f;
}

/* A whole number in [0, max] under key. */
static int meta_count(const tg_st_file *f, const char *path, const char *key,
                      int64_t max, int64_t *out)
{
    const char *v = tg_st_meta(f, key);
    char *end;
    if (!v)
        return cli_fail("checkpoint %s: metadata '%s' is missing", path, key);
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (!*v || *end || *v == ' ' || *v == '+')
        return cli_fail("checkpoint %s: metadata '%s' = '%s' is not a whole "
                       "number", path, key, v);
    if (errno == ERANGE || i < 0 || i > max)
        return cli_fail("checkpoint %s: metadata '%s' = '%s' is out of range "
                       "(0 to %lld)", path, key, v, (long long)max);
    *out = i;
    return 0;
}

/* A finite number >= 0 (or NaN if nan_ok) under key. */
static int meta_real_ge0(const tg_st_file *f, const char *path,
                         const char *key, bool nan_ok, double *out)
{
    const char *v = tg_st_meta(f, key);
    char *end;
    if (!v)
        return cli_fail("checkpoint %s: metadata '%s' is missing", path, key);
    *out = strtod(v, &end);
    if (!*v || *end)
        return cli_fail("checkpoint %s: metadata '%s' = '%s' is not a number",
                       path, key, v);
    if (isnan(*out) ? !nan_ok : !(*out >= 0 && *out < 1e300))
        return cli_fail("checkpoint %s: metadata '%s' = '%s' is out of range "
                       "(a finite number >= 0%s)", path, key, v,
                       nan_ok ? ", or NaN" : "");
    return 0;
}

/* "[44, 8]" */
void cl_shape_text(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld",
                              (long long)shape[d]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* The parameters' shapes the hyperparameters imply, checked against the
 * file before the model is built: a small file cannot make the loader
 * allocate a large model. Cells with gates have PyTorch's four tensors per
 * layer; a cell's extra parameters (peephole's w_ci...) are checked by
 * tg_params_load. */
static int check_shapes(const tg_st_file *f, const char *path, const cl_run *r,
                        const tg_cell_type *cell)
{
    const cl_config *c = &r->cfg;
    int64_t V = r->vocab.n, E = c->embed, H = c->hidden, G = cell->gates;
    struct { char name[64]; int ndim; int64_t shape[2]; } want[4 + 4 * 64];
    int n = 0;
#define WANT(nd, a, b, ...)                                                   \
    do {                                                                      \
        snprintf(want[n].name, sizeof want[n].name, __VA_ARGS__);            \
        want[n].ndim = nd;                                                   \
        want[n].shape[0] = a;                                                \
        want[n].shape[1] = b;                                                \
        n++;                                                                 \
    } while (0)
    WANT(2, V, E, "embedding.weight");
    WANT(2, V, H, "decoder.weight");
    WANT(1, V, 0, "decoder.bias");
    for (int64_t l = 0; G > 0 && l < c->layers; l++) {
        WANT(2, G * H, l ? H : E, "rnn.weight_ih_l%lld", (long long)l);
        WANT(2, G * H, H, "rnn.weight_hh_l%lld", (long long)l);
        WANT(1, G * H, 0, "rnn.bias_ih_l%lld", (long long)l);
        WANT(1, G * H, 0, "rnn.bias_hh_l%lld", (long long)l);
    }
#undef WANT
    for (int i = 0; i < n; i++) {
        const tg_st_tensor *t = tg_st_find(f, want[i].name);
        bool same = t && t->dtype != TG_I64 && t->ndim == want[i].ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == want[i].shape[d];
        if (same)
            continue;
        char have[96] = "missing", wants[64];
        if (t) {
            snprintf(have, sizeof have, "%s ", t->dtype == TG_I64 ? "I64"
                     : "float");
            cl_shape_text(have + strlen(have), sizeof have - strlen(have),
                       t->ndim, t->shape);
        }
        cl_shape_text(wants, sizeof wants, want[i].ndim, want[i].shape);
        return cli_fail("checkpoint %s does not fit its own hyperparameters "
                       "(%s %lld x %lld, embed %lld, vocabulary %lld): tensor "
                       "'%s' is %s in the file, but they make it %s", path,
                       c->cell, (long long)c->layers, (long long)H,
                       (long long)E, (long long)V, want[i].name, have, wants);
    }
    return 0;
}

/* a stored float tensor of exactly this shape, all finite, copied into a
 * new persistent tensor */
static tg_tensor *load_state(const tg_st_file *f, const char *path,
                             const char *name, const cl_config *c)
{
    const tg_st_tensor *t = tg_st_find(f, name);
    int64_t want[3] = {c->layers, c->batch, c->hidden};
    if (!t || t->dtype == TG_I64 || t->ndim != 3 || t->shape[0] != want[0] ||
        t->shape[1] != want[1] || t->shape[2] != want[2]) {
        cli_fail("checkpoint %s: tensor '%s' is %s (want [%lld, %lld, %lld] "
                "floats)", path, name, t ? "misshapen" : "missing",
                (long long)want[0], (long long)want[1], (long long)want[2]);
        return NULL;
    }
    tg_tensor *s = tg_st_new_tensor(t);
    for (int64_t i = 0; s && i < s->numel; i++)
        if (!isfinite(s->data[i])) {
            cli_fail("checkpoint %s: tensor '%s' holds a NaN or infinite "
                    "number (element %lld)", path, name, (long long)i);
            tg_tensor_free(s);
            return NULL;
        }
    return s;
}

static int load_train(const tg_st_file *f, const char *path, cl_run *r)
{
    char err[512];
    if (tg_optim_load(r->opt, f, "optim.", err, sizeof err) < 0)
        return cli_fail("checkpoint %s: %s", path, err);
    if (r->opt->step != r->step)
        return cli_fail("checkpoint %s: the optimizer's step count %lld is not "
                       "the run's step %lld", path, (long long)r->opt->step,
                       (long long)r->step);
    if (meta_count(f, path, "corpus_chars", MAX_COUNT, &r->corpus_chars) < 0 ||
        meta_count(f, path, "pos", r->corpus_chars, &r->pos) < 0 ||
        meta_count(f, path, "tokens", MAX_COUNT, &r->tokens) < 0 ||
        meta_count(f, path, "loss_count", r->step, &r->loss_count) < 0 ||
        meta_real_ge0(f, path, "elapsed_s", false, &r->elapsed_s) < 0 ||
        meta_real_ge0(f, path, "grad_norm", false, &r->grad_norm) < 0)
        return -1;
    const char *h = tg_st_meta(f, "corpus_hash");
    if (!h || strlen(h) != 16 || strspn(h, "0123456789abcdef") != 16 ||
        sscanf(h, "%" SCNx64, &r->corpus_hash) != 1)
        return cli_fail("checkpoint %s: metadata 'corpus_hash' is missing or "
                       "not 16 hexadecimal digits", path);
    const tg_st_tensor *rng = tg_st_find(f, "train.rng");
    int64_t words[4];
    if (!rng || rng->dtype != TG_I64 || rng->numel != 4 ||
        tg_st_read_i64(rng, words) < 0 ||
        !(words[0] | words[1] | words[2] | words[3]))
        return cli_fail("checkpoint %s: tensor 'train.rng' is missing or not "
                       "4 I64 words (not all zero)", path);
    for (int k = 0; k < 4; k++)
        r->rng.s[k] = (uint64_t)words[k];
    const tg_st_tensor *ls = tg_st_find(f, "train.loss_sum");
    if (!ls || ls->dtype != TG_F64 || ls->numel != 1)
        return cli_fail("checkpoint %s: tensor 'train.loss_sum' is missing or "
                       "not one F64 number", path);
    memcpy(&r->loss_sum, ls->data, sizeof r->loss_sum);
    if (!(r->loss_sum >= 0 && r->loss_sum < 1e300)) /* a sum of losses */
        return cli_fail("checkpoint %s: tensor 'train.loss_sum' is %g, not a "
                       "finite number >= 0", path, r->loss_sum);
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
    tg_st_file *f = cl_st_read(path, "checkpoint", "cannot load checkpoint");
    if (!f)
        return -1;
    int rc = -1;
    const char *fmt = tg_st_meta(f, "format"), *ver = tg_st_meta(f, "format_version");
    if (!fmt || strcmp(fmt, FORMAT)) {
        cli_fail("%s is not a charlm checkpoint (its metadata has no \"format\": "
                "\"" FORMAT "\"); a file of weights alone is a start for "
                "charlm train --init-from", path);
        goto done;
    }
    if (!ver || (strcmp(ver, "1") && strcmp(ver, VERSION))) {
        cli_fail("checkpoint %s has format version %s; this charlm reads "
                "versions 1 and " VERSION, path, ver ? ver : "(none)");
        goto done;
    }
    const char *sum = tg_st_meta(f, "checksum");
    char mine[24];
    uint64_t checksum = cl_ckpt_checksum(f, ver[0] - '0');
    snprintf(mine, sizeof mine, "%016" PRIx64, checksum);
    if (!sum || strcmp(sum, mine)) {
        cli_fail("checkpoint %s is corrupt: %s (weights edited on purpose are "
                "started from with charlm train --init-from)", path,
                sum ? "its tensors and metadata do not match the checksum saved "
                "with them" : "it has no checksum");
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
        if (!v && !strcmp(opts[i].name, "blocks")) {
            r->cfg.blocks = 1; /* written before blocks existed: one */
            continue;
        }
        if (!v && !strcmp(opts[i].name, "reduce")) {
            r->cfg.reduce = "chain"; /* written before the tree: in order */
            continue;
        }
        if (!v) {
            cli_fail("%s is missing", ctx);
            goto done;
        }
        if (cl_opt_parse(&opts[i], &r->cfg, cl_strdup(v), ctx) < 0)
            goto done;
    }
    const char *vocab = tg_st_meta(f, "vocab");
    if (!vocab) {
        cli_fail("checkpoint %s: metadata 'vocab' is missing", path);
        goto done;
    }
    if (cl_vocab_parse(vocab, &r->vocab) < 0) {
        cli_fail("checkpoint %s: %s", path, cli_error());
        goto done;
    }
    if (meta_count(f, path, "step", MAX_STEP, &r->step) < 0 ||
        meta_real_ge0(f, path, "val_loss", true, &r->val_loss) < 0)
        goto done;
    const tg_cell_type *cell = tg_cell_type_find(r->cfg.cell);
    if (cell && check_shapes(f, path, r, cell) < 0)
        goto done;
    if (cl_run_build(r, with_train) < 0) {
        cli_fail("checkpoint %s: %s", path, cli_error());
        goto done;
    }
    if (tg_params_load(&r->model->params, f, "", err, sizeof err) < 0) {
        cli_fail("checkpoint %s (%s %lld x %lld, vocabulary %lld): %s", path,
                r->cfg.cell, (long long)r->cfg.layers, (long long)r->cfg.hidden,
                (long long)r->vocab.n, err);
        goto done;
    }
    if (with_train && load_train(f, path, r) < 0)
        goto done;
    r->checksum = checksum;
    rc = 0;
done:
    tg_st_free(f);
    if (rc < 0)
        cl_run_free(r);
    return rc;
}

bool cl_ckpt_peek(const char *path, int64_t *step)
{
    char keep[2048]; /* peeking leaves the last message alone */
    snprintf(keep, sizeof keep, "%s", cli_error());
    tg_st_file *f = cl_st_read(path, "checkpoint", "cannot load checkpoint");
    cli_fail("%s", keep);
    if (!f)
        return false;
    const char *fmt = tg_st_meta(f, "format"), *s = tg_st_meta(f, "step");
    bool ok = fmt && !strcmp(fmt, FORMAT);
    *step = ok && s ? strtoll(s, NULL, 10) : -1;
    tg_st_free(f);
    return ok;
}
