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
 *
 * The vocabulary is --data's. A file that records its own (metadata
 * "vocab": export writes it, and so can PyTorch's save_file) has its rows
 * of embedding.weight, decoder.weight and decoder.bias mapped by
 * character: a character of both keeps its rows, one new in --data keeps
 * its fresh initialisation, one absent from --data is left out - and a
 * line says which. A file without it has its rows taken in order, as
 * --data's characters (its V must be theirs), which the line also says.
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

/* the parameters with one row (or element) per character */
static bool per_char(const char *name)
{
    return !strcmp(name, "embedding.weight") || !strcmp(name, "decoder.weight") ||
           !strcmp(name, "decoder.bias");
}

static bool same_vocab(const cl_vocab *a, const cl_vocab *b)
{
    return a->n == b->n && !memcmp(a->chars, b->chars, (size_t)a->n * sizeof *a->chars);
}

/* the characters of a that are not in b: how many, and the first few
 * named in list */
static int64_t chars_not_in(const cl_vocab *a, const cl_vocab *b, char *list,
                            size_t cap)
{
    int64_t n = 0;
    size_t k = 0;
    list[0] = 0;
    for (int64_t i = 0; i < a->n; i++) {
        if (cl_vocab_id(b, a->chars[i]) >= 0)
            continue;
        char name[32];
        cl_char_name(a->chars[i], name, sizeof name);
        if (n < 5 && k < cap)
            k += (size_t)snprintf(list + k, cap - k, "%s%s", n ? ", " : "", name);
        else if (n == 5 && k < cap)
            k += (size_t)snprintf(list + k, cap - k, ", ...");
        n++;
    }
    return n;
}

/* Copies the weights of f into r's model, the per-character rows moved
 * from the file's vocabulary fv to the model's (shapes already checked).
 * Every number is checked before anything is copied. */
static int load_mapped(cl_run *r, const tg_st_file *f, const cl_vocab *fv,
                       const char *path)
{
    const tg_params *ps = &r->model->params;
    char err[512];
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_param *p = tg_params_at(ps, i);
        int64_t bad = tg_st_first_bad(tg_st_find(f, p->name), false);
        if (bad >= 0)
            return cli_fail("--init-from %s: tensor '%s' in the file holds a "
                           "NaN or infinite number (element %lld): the file "
                           "was saved from a run that had diverged, or is "
                           "damaged", path, p->name, (long long)bad);
    }
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_param *p = tg_params_at(ps, i);
        const tg_st_tensor *t = tg_st_find(f, p->name);
        if (!per_char(p->name)) {
            if (tg_st_copy_to(t, p->tensor, err, sizeof err) < 0)
                return cli_fail("--init-from %s: %s", path, err);
            continue;
        }
        int64_t cols = p->tensor->numel / r->vocab.n;
        for (int64_t c = 0; c < r->vocab.n; c++) {
            int64_t j = cl_vocab_id(fv, r->vocab.chars[c]);
            for (int64_t k = 0; j >= 0 && k < cols; k++)
                p->tensor->data[c * cols + k] = (tg_real)tg_st_value(t, j * cols + k);
        }
    }
    return 0;
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
    /* the file's own vocabulary, if it has one: the rows are mapped */
    const char *vmeta = tg_st_meta(f, "vocab");
    cl_vocab fv = {0};
    if (vmeta && cl_vocab_parse(vmeta, &fv) < 0) {
        cli_fail("--init-from %s: metadata 'vocab': %s", path, cli_error());
        tg_st_free(f);
        return -1;
    }
    bool mapped = vmeta && !same_vocab(&fv, &r->vocab);
    char missing[600] = "", unexpected[600] = "", shapes[1200] = "";
    int n_missing = 0, n_unexpected = 0, n_shapes = 0;
    bool rows = false; /* a per-character tensor of another size */
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_param *p = tg_params_at(ps, i);
        const tg_st_tensor *t = tg_st_find(f, p->name);
        if (!t) {
            list_add(missing, sizeof missing, &n_missing, p->name);
            continue;
        }
        int64_t shape[TG_MAX_DIMS];
        memcpy(shape, p->tensor->shape, sizeof shape);
        if (mapped && per_char(p->name)) /* rows: the file's characters */
            shape[0] = fv.n;
        bool same = t->dtype != TG_I64 && t->ndim == p->tensor->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == shape[d];
        if (same)
            continue;
        rows |= per_char(p->name) && t->ndim == p->tensor->ndim &&
                t->shape[0] != shape[0];
        char have[96], want[96], item[300];
        tg_st_shape_str(t, have, sizeof have);
        cl_shape_text(want, sizeof want, p->tensor->ndim, shape);
        snprintf(item, sizeof item, "%s is %s%s in the file, %s in the model%s",
                 p->name, t->dtype == TG_I64 ? "I64 " : "", have, want,
                 mapped && per_char(p->name) ? " (a row for each of the "
                 "file's characters)" : "");
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
        rc = cli_fail("--init-from %s does not fit the model of the flags (%s; "
                     "the vocabulary is that of --data):%s%s%s Give the "
                     "file's architecture with --cell, --layers, --hidden "
                     "and --embed%s", path, arch, m, u, s, rows && !vmeta ?
                     " (the file has no 'vocab' metadata to map its rows by "
                     "character: its V must be --data's)" : "");
    } else if (mapped) {
        rc = load_mapped(r, f, &fv, path);
        char gained[200], lost[200];
        int64_t n_gained = chars_not_in(&r->vocab, &fv, gained, sizeof gained);
        int64_t n_lost = chars_not_in(&fv, &r->vocab, lost, sizeof lost);
        if (rc == 0 && tg_dist_rank() == 0)
            fprintf(stderr, "starting from the weights of %s (%d tensors), "
                    "its vocabulary of %lld characters mapped onto --data's "
                    "%lld by character: %lld in both; %lld new (%s) with fresh "
                    "rows; %lld of the file's left out (%s)\n", path,
                    tg_params_count(ps), (long long)fv.n, (long long)r->vocab.n,
                    (long long)(r->vocab.n - n_gained), (long long)n_gained,
                    n_gained ? gained : "none", (long long)n_lost,
                    n_lost ? lost : "none");
    } else {
        char err[512];
        if (tg_params_load(&r->model->params, f, "", err, sizeof err) < 0)
            rc = cli_fail("--init-from %s: %s", path, err);
        else if (tg_dist_rank() == 0)
            fprintf(stderr, "starting from the weights of %s (%d tensors)%s\n",
                    path, tg_params_count(ps), vmeta ? "" : "; it has no "
                    "'vocab' metadata, so its rows are taken as --data's "
                    "characters in order, unchecked");
    }
    cl_vocab_free(&fv);
    tg_st_free(f);
    return rc;
}

/* ---- export --------------------------------------------------------------- */

int cl_export(const cl_config *c)
{
    struct stat st, ls;
    if (stat(c->out, &st) == 0) { /* stat: never blocks, even on a FIFO */
        if (!S_ISREG(st.st_mode)) {
            cli_fail("--out %s is not a regular file (a directory, FIFO or "
                    "device): give a file name", c->out);
            return 1;
        }
        if (stat(c->load, &ls) == 0 && st.st_dev == ls.st_dev &&
            st.st_ino == ls.st_ino) {
            cli_fail("--out %s is the checkpoint itself: exporting over it "
                    "would lose its training state", c->out);
            return 1;
        }
        if (!c->overwrite) {
            cli_fail("--out %s already exists: choose another --out (or pass "
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
        cli_fail("cannot write --out: %s", err);
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
        cli_fail("--prime is empty: give the text whose scores to print");
        goto done;
    }
    ids = tg_xmalloc((size_t)text.n * sizeof *ids);
    for (int64_t i = 0; i < text.n; i++) {
        ids[i] = cl_vocab_id(&r.vocab, text.cp[i]);
        if (ids[i] < 0) {
            char name[32];
            cl_char_name(text.cp[i], name, sizeof name);
            cli_fail("--prime: character %lld, %s, is not in the model's "
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
        cli_fail("%s", cl_lib_error());
        goto done;
    }
    int64_t V = r.vocab.n;
    for (int64_t t = 0; t < text.n; t++)
        for (int64_t i = 0; i < V; i++)
            printf("%.9g%c", tg_flat_get(logits, t * V + i), i + 1 < V ? ' ' : '\n');
    tg_tape_reset();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_fail("cannot write to stdout");
        goto done;
    }
    status = 0;
done:
    free(ids);
    cl_text_free(&text);
    cl_run_free(&r);
    return status;
}
