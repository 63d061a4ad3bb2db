/*
 * examples/charlm/interop.c - weights in and out of charlm, for PyTorch:
 *
 *   charlm train --init-from FILE   a new run starting from the weights of
 *                                   any safetensors file with the model's
 *                                   state_dict names (the architecture
 *                                   comes from the flags, the vocabulary
 *                                   from --data)
 *   charlm export --load CKPT --out FILE
 *                                   the weights alone, loadable by PyTorch's
 *                                   load_state_dict(strict=True)
 *   charlm logits --load CKPT --prime TEXT
 *                                   the scores after each character of
 *                                   TEXT, to compare with another program
 *
 * A checkpoint is more than weights: its checksum (ckpt_sum.c) covers
 * every tensor and every metadata value, so an edited checkpoint is
 * refused as corrupt. --init-from is the way in for edited or foreign
 * weights: it reads tensors only and starts a new run (step 0, a fresh
 * optimizer), after checking names and shapes the way PyTorch's strict
 * load_state_dict does - every missing, unexpected and misshapen tensor
 * named in one message, nothing loaded unless all fit.
 */
#include "charlm.h"
#include "nn/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- starting from a weights file (--init-from) ---------------------------- */

/* appends ", 'name'" (or "'name'" first) to a list kept under cap bytes */
static void list_add(char *list, size_t cap, int *count, const char *name)
{
    size_t k = strlen(list);
    if (k + strlen(name) + 16 < cap)
        snprintf(list + k, cap - k, "%s'%s'", *count ? ", " : "", name);
    else if (k + 6 < cap && !strstr(list, "..."))
        snprintf(list + k, cap - k, ", ...");
    (*count)++;
}

static bool is_param(const tg_params *ps, const char *name)
{
    return tg_params_get(ps, name) != NULL;
}

int cl_init_from(cl_run *r, const char *path)
{
    tg_st_file *f = cl_st_read(path, "--init-from", "--init-from");
    if (!f)
        return -1;
    /* a charlm checkpoint also holds its training state: not weights */
    const char *fmt = tg_st_meta(f, "format");
    bool ckpt = fmt && !strcmp(fmt, "tapegrad-charlm");
    const tg_params *ps = &r->model->params;
    char missing[600] = "", unexpected[600] = "", shapes[1200] = "";
    int n_missing = 0, n_unexpected = 0, n_shapes = 0;
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_param *p = tg_params_at(ps, i);
        const tg_st_tensor *t = tg_st_find(f, p->name);
        if (!t) {
            list_add(missing, sizeof missing, &n_missing, p->name);
            continue;
        }
        bool same = t->dtype != TG_I64 && t->ndim == p->tensor->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == p->tensor->shape[d];
        if (same)
            continue;
        char have[96], want[96], item[300];
        tg_st_shape_str(t, have, sizeof have);
        tg_shape_str(p->tensor, want, sizeof want);
        snprintf(item, sizeof item, "%s is %s%s in the file, %s in the model",
                 p->name, t->dtype == TG_I64 ? "I64 " : "", have, want);
        size_t k = strlen(shapes);
        if (k + strlen(item) + 8 < sizeof shapes)
            snprintf(shapes + k, sizeof shapes - k, "%s%s", n_shapes ? "; " : "",
                     item);
        n_shapes++;
    }
    for (int i = 0; i < tg_st_count(f); i++) {
        const char *name = tg_st_at(f, i)->name;
        if (ckpt && (!strncmp(name, "optim.", 6) || !strncmp(name, "train.", 6)))
            continue;
        if (!is_param(ps, name))
            list_add(unexpected, sizeof unexpected, &n_unexpected, name);
    }
    int rc = 0;
    if (n_missing || n_unexpected || n_shapes) {
        char arch[200];
        snprintf(arch, sizeof arch, "%s, %lld layers of %lld, embed %lld, "
                 "vocabulary %lld", r->cfg.cell, (long long)r->cfg.layers,
                 (long long)r->cfg.hidden, (long long)r->cfg.embed,
                 (long long)r->vocab.n);
        char m[700] = "", u[700] = "", s[1300] = "";
        if (n_missing)
            snprintf(m, sizeof m, " missing %d: %s.", n_missing, missing);
        if (n_unexpected)
            snprintf(u, sizeof u, " unexpected %d: %s.", n_unexpected, unexpected);
        if (n_shapes)
            snprintf(s, sizeof s, " size mismatch: %s.", shapes);
        rc = cl_fail("--init-from %s does not fit the model of the flags (%s; "
                     "the vocabulary is that of --data):%s%s%s Give the "
                     "file's architecture with --cell, --layers, --hidden "
                     "and --embed", path, arch, m, u, s);
    } else {
        char err[512];
        if (tg_params_load(&r->model->params, f, "", err, sizeof err) < 0)
            rc = cl_fail("--init-from %s: %s", path, err);
        else if (tg_dist_rank() == 0)
            fprintf(stderr, "starting from the weights of %s (%d tensors)\n",
                    path, tg_params_count(ps));
    }
    tg_st_free(f);
    return rc;
}

/* ---- export --------------------------------------------------------------- */

int cl_export(const cl_config *c)
{
    struct stat st, ls;
    if (stat(c->out, &st) == 0) { /* stat: never blocks, even on a FIFO */
        if (!S_ISREG(st.st_mode)) {
            cl_fail("--out %s is not a regular file (a directory, FIFO or "
                    "device): give a file name", c->out);
            return 1;
        }
        if (stat(c->load, &ls) == 0 && st.st_dev == ls.st_dev &&
            st.st_ino == ls.st_ino) {
            cl_fail("--out %s is the checkpoint itself: exporting over it "
                    "would lose its training state", c->out);
            return 1;
        }
        if (!c->overwrite) {
            cl_fail("--out %s already exists: choose another --out (or pass "
                    "--overwrite)", c->out);
            return 1;
        }
    }
    cl_run r;
    if (cl_ckpt_load(c->load, &r, false) < 0)
        return 1;
    tg_st_writer *w = tg_st_writer_new();
    const tg_params *ps = &r.model->params;
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_param *p = tg_params_at(ps, i);
        tg_st_add_as(w, p->name, p->tensor, TG_F32);
    }
    /* what a reader needs to rebuild the model (PyTorch ignores it) */
    tg_st_set_meta(w, "format", "pt");
    int n;
    const cl_opt *opts = cl_train_opts(&n);
    for (int i = 0; i < n; i++)
        if (opts[i].flags & CL_FIXED) {
            char buf[4200];
            cl_opt_format(&opts[i], &r.cfg, buf, sizeof buf);
            tg_st_set_meta(w, opts[i].name, buf);
        }
    char *vocab = cl_vocab_utf8(&r.vocab);
    tg_st_set_meta(w, "vocab", vocab);
    free(vocab);
    char err[512];
    int rc = tg_st_save(w, c->out, err, sizeof err); /* temporary + rename */
    tg_st_writer_free(w);
    if (rc < 0)
        cl_fail("cannot write --out: %s", err);
    else
        fprintf(stderr, "exported %d tensors of %s (step %lld) to %s\n",
                tg_params_count(ps), c->load, (long long)r.step, c->out);
    cl_run_free(&r);
    return rc < 0 ? 1 : 0;
}

/* ---- logits --------------------------------------------------------------- */

int cl_logits(const cl_config *c)
{
    cl_run r;
    if (cl_ckpt_load(c->load, &r, false) < 0)
        return 1;
    int status = 1;
    cl_text text = {0};
    int64_t *ids = NULL;
    if (cl_utf8_decode(c->prime, &text, "--prime") < 0)
        goto done;
    if (text.n == 0) {
        cl_fail("--prime is empty: give the text whose scores to print");
        goto done;
    }
    ids = tg_xmalloc((size_t)text.n * sizeof *ids);
    for (int64_t i = 0; i < text.n; i++) {
        ids[i] = cl_vocab_id(&r.vocab, text.cp[i]);
        if (ids[i] < 0) {
            char name[32];
            cl_char_name(text.cp[i], name, sizeof name);
            cl_fail("--prime: character %lld, %s, is not in the model's "
                    "vocabulary", (long long)i + 1, name);
            goto done;
        }
    }
    tg_set_grad_enabled(false);
    cl_lib_clear();
    tg_rnn_out o;
    tg_tensor *logits = tg_charlm_forward(r.model, ids, text.n, 1, NULL, false,
                                          NULL, &o);
    if (!logits) {
        cl_fail("%s", cl_lib_error());
        goto done;
    }
    int64_t V = r.vocab.n;
    for (int64_t t = 0; t < text.n; t++)
        for (int64_t i = 0; i < V; i++)
            printf("%.9g%c", tg_flat_get(logits, t * V + i), i + 1 < V ? ' ' : '\n');
    tg_tape_reset();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cl_fail("cannot write to stdout");
        goto done;
    }
    status = 0;
done:
    free(ids);
    cl_text_free(&text);
    cl_run_free(&r);
    return status;
}
