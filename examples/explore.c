/*
 * examples/explore.c - the pages of docs/explorer/ (make explore): the tape
 * of a run, written by tg_tape_html (autograd/explore.h) to step through
 * in a browser.
 *
 *   build/explore DIR [--expect FILE]   writes DIR/expr.html,
 *       DIR/lstm_compiled.html, DIR/lstm_written.html, DIR/rnn_vs_lstm.html;
 *       with --expect, also the numbers the pages must show, from C
 *       (tg_tape_print's labels, retained gradients), for tests/explorer.sh
 *   build/explore --large FILE [--written]   a 2-layer LSTM, hidden 128,
 *       over T = 64 (compiled, or as written): how big a large page is
 *
 * The models are those of docs/walkthrough.md (examples/walkthrough.c):
 * the tiny expression of section 1, the compiled LSTM steps of section 7,
 * the RNN and LSTM cells and the 50-step sequence of section 6.
 */
#include "autograd/explore.h"
#include "nn/rnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NI 2 /* the walkthrough's cells: input 2, hidden 2, batch 1 */
#define NH 2

static FILE *expect; /* --expect: the numbers the pages must show (JSON) */
static int expect_pages;

/* a [1, n] temporary holding v[0..n-1] */
static tg_tensor *row(int n, const double *v)
{
    tg_tensor *t = tg_zeros(TG_SHAPE(1, n));
    for (int i = 0; i < n; i++)
        t->data[i] = (tg_real)v[i];
    return t;
}

static int write_page(const char *dir, const char *file, const tg_tensor *root,
                      const tg_html_opts *opts)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    int rc = tg_tape_html(f, root, opts);
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0)
        printf("wrote %s\n", path);
    return rc;
}

/* ---- what the test reads off the pages --------------------------------
 * For each entry on the page: its forward step and label, the numbers of
 * its first output; its reverse step and the gradient that arrived there
 * (retained by tg_retain_grad: the engine's own number, not the
 * recording's); for leaves, their gradient after the whole sweep. */
static void print_nums(const tg_real *p, int64_t n)
{
    if (!p) { /* no gradient reached it */
        fputs("null", expect);
        return;
    }
    fputc('[', expect);
    for (int64_t i = 0; i < n; i++)
        fprintf(expect, "%s%.9g", i ? "," : "", (double)p[i]);
    fputc(']', expect);
}

static void expect_begin(const char *file)
{
    if (expect)
        fprintf(expect, "%s\n{\"file\":\"%s\",\"steps\":[", expect_pages++ ? ","
                                                                        : "",
                file);
}

/* Before backward: keep every intermediate gradient on the way to root */
static void retain_path(const tg_tensor *root)
{
    for (int64_t i = 0; expect && i <= root->entry; i++) {
        tg_entry *e = tg_tape_entry(i);
        for (int k = 0; k < e->nout; k++)
            tg_retain_grad(e->outs[k]);
    }
}

/* After backward: the steps (small tensors only: the page shows those in
 * full), then the leaves' gradients and the time axes' norms. */
static void expect_steps(const tg_tensor *root, const tg_html_strip *strips,
                         int nstrips)
{
    if (!expect)
        return;
    /* the page's steps: entries leading to root in tape order, then the
     * ones backward ran, last first (all of them, here) */
    int64_t *path = NULL, n = 0;
    path = malloc((size_t)(root->entry + 1) * sizeof *path);
    for (int64_t i = 0; i <= root->entry; i++)
        if (tg_tape_entry(i)->consumed)
            path[n++] = i;
    char label[512];
    bool first = true;
    for (int64_t q = 0; q < n; q++) {
        const tg_entry *e = tg_tape_entry(path[q]);
        const tg_tensor *y = e->out;
        if (y->numel > TG_HTML_FULL)
            continue;
        const char *op = tg_entry_label(e, label, sizeof label);
        /* A fused group's outputs may be read inside the group too (an
         * LSTM's c by its own tanh): what arrives at the group, and what
         * the page shows, is what its readers outside gave; the retained
         * gradient is the whole of dL/dy, the group's own reads included.
         * There the two differ by design, and only the forward value is
         * compared. */
        bool group = e->op->member != NULL;
        for (int phase = 0; phase < 2; phase++) {
            fprintf(expect, "%s\n {\"step\":%lld,\"phase\":\"%s\",\"entry\":"
                    "\"#%lld\",\"op\":\"%s\",\"nums\":{",
                    first ? "" : ",",
                    (long long)(phase ? 2 * n - 1 - q : q),
                    phase ? "reverse" : "forward", (long long)path[q], op);
            first = false;
            bool sep = false;
            if (!(phase && group)) {
                fprintf(expect, "\"%s\":", phase ? "grad:out0" : "value:out0");
                tg_real v[TG_HTML_FULL];
                for (int64_t i = 0; i < y->numel; i++)
                    v[i] = (tg_real)tg_flat_get(y, i);
                print_nums(phase ? y->grad : v, y->numel);
                sep = true;
            }
            if (!phase && y->tangent) { /* where tg_jvp ran */
                fputs(",\"tangent:out0\":", expect);
                print_nums(y->tangent, y->numel);
            }
            /* an input that is a leaf: its gradient is final after the
             * last entry that reads it, which is the first in tape order */
            for (int k = 0; phase && k < e->nin; k++) {
                const tg_tensor *x = e->in[k];
                bool last = x->entry < 0 && x->grad && x->numel <= TG_HTML_FULL;
                for (int64_t j = 0; last && j < q; j++) {
                    const tg_entry *o = tg_tape_entry(path[j]);
                    for (int m = 0; m < o->nin; m++)
                        last &= o->in[m] != x;
                }
                if (!last)
                    continue;
                fprintf(expect, "%s\"total:in%d\":", sep ? "," : "", k);
                sep = true;
                print_nums(x->grad, x->numel);
            }
            fputs("}}", expect);
        }
    }
    fputs("],\n\"strips\":{", expect);
    for (int s = 0; s < nstrips; s++) {
        fprintf(expect, "%s\"%s\":[", s ? "," : "", strips[s].name);
        for (int t = 0; t < strips[s].n; t++) {
            const tg_tensor *h = strips[s].t[t];
            double sq = 0;
            for (int64_t i = 0; h->grad && i < h->numel; i++)
                sq += (double)h->grad[i] * (double)h->grad[i];
            fprintf(expect, "%s%.9g", t ? "," : "", sqrt(sq));
        }
        fputc(']', expect);
    }
    fputs("}}", expect);
    free(path);
}

/* ---- 1. the tiny expression: f = (x*w + b) * x -------------------------- */

static int page_expr(const char *dir)
{
    tg_tensor *x = tg_set_name(tg_requires_grad(tg_scalar(2)), "x");
    tg_tensor *w = tg_set_name(tg_requires_grad(tg_scalar(3)), "w");
    tg_tensor *b = tg_set_name(tg_requires_grad(tg_scalar(1)), "b");
    tg_tensor *u = tg_set_name(tg_mul(x, w), "u");
    tg_tensor *v = tg_set_name(tg_add(u, b), "v");
    tg_tensor *f = tg_set_name(tg_mul(v, x), "f");
    /* forward mode along dx = 1: the tangents are df/dx on the way */
    tg_set_tangent(x, tg_scalar(1));
    tg_set_tangent(w, tg_scalar(0));
    tg_set_tangent(b, tg_scalar(0));
    tg_jvp();
    expect_begin("expr.html");
    retain_path(f);
    tg_sweep_rec *rec = tg_sweep_record_begin();
    tg_backward(f);
    tg_sweep_record_end(rec);
    expect_steps(f, NULL, 0);
    int rc = write_page(dir, "expr.html", f, &(tg_html_opts){
        .title = "f = (x*w + b) * x at x = 2, w = 3, b = 1", .sweep = rec});
    tg_sweep_record_free(rec);
    tg_tape_reset();
    return rc;
}

/* ---- 2. two LSTM steps, compiled and as written ------------------------ */

static int page_lstm(const char *dir, bool fuse)
{
    bool was = tg_set_fusion(fuse);
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, NI, NH, 1, 0.0, &rng);
    tg_tensor *x = tg_set_name(tg_zeros(TG_SHAPE(2, 1, NI)), "x");
    tg_fill_uniform_(x, &rng, -1, 1);
    tg_rnn_out out;
    tg_rnn_forward(r, x, NULL, true, NULL, &out);
    tg_tensor *L = tg_set_name(tg_sum(out.y), "L");
    const char *file = fuse ? "lstm_compiled.html" : "lstm_written.html";
    expect_begin(file);
    retain_path(L);
    tg_sweep_rec *rec = tg_sweep_record_begin();
    tg_backward(L);
    tg_sweep_record_end(rec);
    tg_html_strip strip = {"h_t", out.h, (int)out.T};
    expect_steps(L, &strip, 1);
    int rc = write_page(dir, file, L, &(tg_html_opts){
        .title = fuse ? "two LSTM steps, compiled: L = sum(h1) + sum(h2)"
                      : "two LSTM steps, as written: L = sum(h1) + sum(h2)",
        .sweep = rec, .strips = &strip, .nstrips = 1});
    tg_sweep_record_free(rec);
    tg_tape_reset();
    tg_rnn_free(r);
    tg_set_fusion(was);
    return rc;
}

/* ---- 3. a plain RNN against an LSTM on one 50-step sequence ----------- */

static int page_rnn_vs_lstm(const char *dir)
{
    enum { TMAX = 50 };
    double xs[TMAX * NI], s0[2][NH];
    tg_rng rng;
    tg_rng_seed(&rng, 67); /* the walkthrough's section 6 */
    for (int i = 0; i < TMAX * NI; i++)
        xs[i] = tg_rng_normal(&rng);
    for (int j = 0; j < 2 * NH; j++)
        s0[j / NH][j % NH] = 0.5 * tg_rng_normal(&rng);
    tg_cell *cell[2];
    for (int c = 0; c < 2; c++) {
        tg_rng_seed(&rng, 7);
        cell[c] = tg_cell_new(c ? &tg_lstm_cell : &tg_rnn_tanh_cell, NI, NH,
                              &rng);
    }
    /* both models on one tape; L = sum(h_50 of the RNN) + sum(h_50 of the
     * LSTM), so one sweep gives both their dL/dh_t */
    tg_tensor *h[2][TMAX], *last[2];
    for (int c = 0; c < 2; c++) {
        tg_tensor *s[2] = {tg_set_name(row(NH, s0[0]), "h0"),
                           tg_set_name(row(NH, s0[1]), "c0")}, *next[2];
        for (int t = 0; t < TMAX; t++) {
            static char xname[TMAX][8]; /* names are not copied */
            snprintf(xname[t], sizeof xname[t], "x%d", t + 1);
            tg_tensor *x = tg_set_name(row(NI, xs + NI * t), xname[t]);
            tg_tape_set_step(t + 1);
            tg_cell_step(cell[c], x, s, next);
            for (int q = 0; q < cell[c]->type->nstate; q++)
                s[q] = next[q];
            h[c][t] = s[0];
        }
        tg_tape_set_step(-1);
        last[c] = tg_set_name(tg_sum(s[0]), c ? "sum lstm h50" : "sum rnn h50");
    }
    tg_tensor *L = tg_set_name(tg_add(last[0], last[1]), "L");
    expect_begin("rnn_vs_lstm.html");
    retain_path(L);
    tg_sweep_rec *rec = tg_sweep_record_begin();
    tg_backward(L);
    tg_sweep_record_end(rec);
    tg_html_strip strips[2] = {{"RNN h_t", h[0], TMAX},
                               {"LSTM h_t", h[1], TMAX}};
    expect_steps(L, strips, 2);
    int rc = write_page(dir, "rnn_vs_lstm.html", L, &(tg_html_opts){
        .title = "a plain RNN and an LSTM on one 50-step sequence: "
                 "L = sum(h_50) + sum(h_50)",
        .sweep = rec, .strips = strips, .nstrips = 2});
    tg_sweep_record_free(rec);
    tg_tape_reset();
    tg_cell_free(cell[0]);
    tg_cell_free(cell[1]);
    return rc;
}

/* ---- a large tape: 2 layers of 128, T = 64 ----------------------------- */

static int page_large(const char *path, bool fuse)
{
    enum { T = 64, B = 1, I = 32, H = 128 };
    bool was = tg_set_fusion(fuse);
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, I, H, 2, 0.0, &rng);
    tg_tensor *x = tg_randn(TG_SHAPE(T, B, I), &rng, 0, 1);
    tg_rnn_out out;
    tg_rnn_forward(r, x, NULL, true, NULL, &out);
    tg_tensor *L = tg_set_name(tg_sum(out.h[T - 1]), "L");
    tg_sweep_rec *rec = tg_sweep_record_begin();
    tg_backward(L);
    tg_sweep_record_end(rec);
    tg_html_strip strip = {"h_t (top)", out.h, T};
    char *slash = strrchr(path, '/');
    char dir[1024];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1,
             slash ? path : ".");
    int rc = write_page(dir, slash ? slash + 1 : path, L, &(tg_html_opts){
        .title = fuse ? "2-layer LSTM, hidden 128, T = 64, compiled"
                      : "2-layer LSTM, hidden 128, T = 64, as written",
        .sweep = rec, .strips = &strip, .nstrips = 1});
    printf("%lld entries on the tape\n", (long long)tg_tape_size());
    tg_sweep_record_free(rec);
    tg_tape_reset();
    tg_rnn_free(r);
    tg_set_fusion(was);
    return rc;
}

int main(int argc, char **argv)
{
    /* one thread: the pages are the same on every run */
    tg_set_thread_governor(false);
    tg_set_num_threads(1);
    if (argc >= 3 && !strcmp(argv[1], "--large")) {
        bool written = argc == 4 && !strcmp(argv[3], "--written");
        return page_large(argv[2], !written) ? 1 : 0;
    }
    if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--expect"))) {
        fprintf(stderr, "usage: explore DIR [--expect FILE]\n"
                        "       explore --large FILE [--written]\n");
        return 2;
    }
    const char *dir = argv[1];
    if (argc == 4 && !(expect = fopen(argv[3], "w"))) {
        perror(argv[3]);
        return 1;
    }
    if (expect)
        fputs("[", expect);
    int rc = page_expr(dir) | page_lstm(dir, true) | page_lstm(dir, false) |
             page_rnn_vs_lstm(dir);
    if (expect) {
        fputs("\n]\n", expect);
        rc |= fclose(expect) != 0;
    }
    tg_tape_free_all();
    return rc ? 1 : 0;
}
