/*
 * autograd/explore.c - the tape as a page to step through (explore.h):
 * recording the reverse sweep, and writing the page.
 *
 * The page is autograd/explorer.html (HTML, CSS and JavaScript to read
 * and edit as such), which the Makefile turns into the C string
 * explorer_page; this file writes the page's first part, the tape as a
 * JSON object, and the rest. Everything the page shows is in that object:
 * the tensors (values, tangents), the entries (op, inputs, outputs, the
 * members of a fused group), the recorded sweep and the time axes.
 */
#include "autograd/explore.h"
#include "autograd/inspect_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ds.h"

#include "explorer_page.h" /* generated: static const char explorer_page[] */

/* ---- what the page shows of some numbers ------------------------------ */

/* All n numbers when n <= TG_HTML_FULL; otherwise a summary and a heat
 * map: the numbers seen as rows x cols (cols = the last dimension), cut
 * into at most TG_HTML_CELLS blocks, each shown as its mean. */
typedef struct vsum {
    int64_t n;        /* -1: none (no gradient reached the tensor) */
    double min, max, mean, norm;
    int rows, cols;   /* the heat map's grid; 0 when v holds all n */
    float *v;
} vsum;

/* p: n numbers in logical order, or NULL to read t's own numbers */
static vsum vsum_of(const tg_tensor *t, const tg_real *p)
{
    vsum s = {.n = t->numel, .min = INFINITY, .max = -INFINITY};
    int64_t n = t->numel;
    int64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1;
    int64_t rows = cols ? n / cols : 0;
    bool full = n <= TG_HTML_FULL;
    if (!full) {
        s.cols = (int)(cols < (rows > 1 ? 16 : TG_HTML_CELLS)
                           ? cols : (rows > 1 ? 16 : TG_HTML_CELLS));
        s.rows = (int)(rows < TG_HTML_CELLS / s.cols ? rows
                                                     : TG_HTML_CELLS / s.cols);
    }
    size_t nv = full ? (size_t)n : (size_t)(s.rows * s.cols);
    s.v = tg_xcalloc(nv ? nv : 1, sizeof *s.v);
    int *count = full ? NULL : tg_xcalloc(nv, sizeof *count);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = p ? (double)p[i] : tg_flat_get(t, i);
        sum += x;
        sq += x * x;
        s.min = fmin(s.min, x);
        s.max = fmax(s.max, x);
        if (full) {
            s.v[i] = (float)x;
            continue;
        }
        int64_t c = (i % cols) * s.cols / cols, r = (i / cols) * s.rows / rows;
        s.v[r * s.cols + c] += (float)x;
        count[r * s.cols + c]++;
    }
    for (size_t c = 0; !full && c < nv; c++)
        s.v[c] = count[c] ? s.v[c] / (float)count[c] : 0;
    free(count);
    s.mean = n ? sum / (double)n : 0;
    s.norm = sqrt(sq);
    if (n == 0)
        s.min = s.max = 0;
    return s;
}

static const vsum vsum_none = {.n = -1};

/* ---- recording the sweep (tg_set_sweep_hook) -------------------------- */

typedef struct rec_entry {
    int64_t index;      /* on the tape */
    int nout, nin;
    vsum *grad;         /* [nout]: dL/d(output) as it arrived */
    vsum *share;        /* [nin]: what the rule added into the input */
    vsum *total;        /* [nin]: the input's gradient after that */
} rec_entry;

struct tg_sweep_rec {
    rec_entry *entries; /* stb_ds array, in sweep order */
    uint32_t gen;       /* the tape generation it belongs to */
    tg_real **before;   /* stb_ds: copies of the inputs' gradients while
                           a rule runs (NULL: the input has none) */
};

static void on_sweep(const tg_entry *e, int64_t index, bool after, void *ud)
{
    tg_sweep_rec *r = ud;
    if (!after) {
        rec_entry re = {.index = index, .nout = e->nout, .nin = e->nin};
        re.grad = tg_xcalloc((size_t)e->nout, sizeof *re.grad);
        for (int k = 0; k < e->nout; k++) {
            const tg_tensor *y = e->outs[k];
            re.grad[k] = y->grad ? vsum_of(y, y->grad) : vsum_none;
        }
        arrput(r->entries, re);
        arrsetlen(r->before, e->nin);
        for (int k = 0; k < e->nin; k++) {
            const tg_tensor *x = e->in[k];
            r->before[k] = NULL;
            if (!x->grad)
                continue;
            size_t bytes = (size_t)(x->numel ? x->numel : 1) * sizeof(tg_real);
            r->before[k] = tg_xmalloc(bytes);
            memcpy(r->before[k], x->grad, bytes);
        }
        return;
    }
    rec_entry *re = &arrlast(r->entries);
    re->share = tg_xcalloc((size_t)(e->nin ? e->nin : 1), sizeof *re->share);
    re->total = tg_xcalloc((size_t)(e->nin ? e->nin : 1), sizeof *re->total);
    for (int k = 0; k < e->nin; k++) {
        const tg_tensor *x = e->in[k];
        tg_real *d = r->before[k];
        re->share[k] = re->total[k] = vsum_none;
        if (!d)
            continue;
        for (int64_t i = 0; i < x->numel; i++) /* share = after - before */
            d[i] = x->grad[i] - d[i];
        re->share[k] = vsum_of(x, d);
        re->total[k] = vsum_of(x, x->grad);
        free(d);
    }
}

tg_sweep_rec *tg_sweep_record_begin(void)
{
    tg_sweep_rec *r = tg_xcalloc(1, sizeof *r);
    r->gen = tg_arena_generation();
    tg_set_sweep_hook(on_sweep, r);
    return r;
}

void tg_sweep_record_end(tg_sweep_rec *r)
{
    (void)r;
    tg_set_sweep_hook(NULL, NULL);
}

void tg_sweep_record_free(tg_sweep_rec *r)
{
    if (!r)
        return;
    for (int64_t j = 0; j < arrlen(r->entries); j++) {
        rec_entry *re = &r->entries[j];
        for (int k = 0; k < re->nout; k++)
            free(re->grad[k].v);
        for (int k = 0; re->share && k < re->nin; k++) {
            free(re->share[k].v);
            free(re->total[k].v);
        }
        free(re->grad);
        free(re->share);
        free(re->total);
    }
    arrfree(r->entries);
    arrfree(r->before);
    free(r);
}

/* ---- JSON ------------------------------------------------------------- */

/* a JSON string; '<' and '>' escaped too, so that no name can end the
 * page's <script> element */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* a number with prec significant digits; JSON has no NaN or infinity:
 * those are strings the page turns back into numbers */
static void json_num(FILE *f, double x, int prec)
{
    if (isnan(x))
        fputs("\"NaN\"", f);
    else if (isinf(x))
        fputs(x > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
    else
        fprintf(f, "%.*g", prec, x);
}

/* Full numbers with 9 digits (a float read back is the same float);
 * otherwise the summary with 7, and the heat map's cells, which are only
 * drawn, as whole hundredths of the largest magnitude (-100..100). */
static void json_vsum(FILE *f, const vsum *s)
{
    if (s->n < 0) {
        fputs("null", f);
        return;
    }
    bool full = s->rows == 0;
    fprintf(f, "{\"n\":%lld", (long long)s->n);
    if (!full) {
        const char *key[4] = {"min", "max", "mean", "norm"};
        double val[4] = {s->min, s->max, s->mean, s->norm};
        for (int k = 0; k < 4; k++) {
            fprintf(f, ",\"%s\":", key[k]);
            json_num(f, val[k], 7);
        }
        fprintf(f, ",\"rows\":%d,\"cols\":%d", s->rows, s->cols);
    }
    fputs(full ? ",\"v\":[" : ",\"heat\":[", f);
    int64_t nv = full ? s->n : (int64_t)s->rows * s->cols;
    double scale = fmax(fabs(s->min), fabs(s->max));
    for (int64_t i = 0; i < nv; i++) {
        if (i)
            fputc(',', f);
        if (full)
            json_num(f, (double)s->v[i], 9);
        else if (scale > 0 && isfinite(scale)) /* a colour: hundredths */
            fprintf(f, "%d", (int)lrint(100 * (double)s->v[i] / scale));
        else
            fputs("0", f);
    }
    fputs("]}", f);
}

static void json_vsum_of(FILE *f, const tg_tensor *t, const tg_real *p)
{
    vsum s = vsum_of(t, p);
    json_vsum(f, &s);
    free(s.v);
}

/* ---- the page --------------------------------------------------------- */

typedef struct {
    uintptr_t key;  /* tensor address */
    int value;      /* its place in the page's tensor table */
} tensor_index;
#define KEY(t) ((uintptr_t)(const void *)(t))

static void add_tensor(tensor_index **map, const tg_tensor ***list,
                       const tg_tensor *t)
{
    if (hmgeti(*map, KEY(t)) >= 0)
        return;
    hmput(*map, KEY(t), (int)arrlen(*list));
    arrput(*list, t);
}

static int tensor_of(tensor_index *map, const tg_tensor *t)
{
    ptrdiff_t i = t ? hmgeti(map, KEY(t)) : -1;
    return i < 0 ? -1 : map[i].value;
}

static void write_tensor(FILE *f, const tg_tensor *t)
{
    char ref[64];
    if (t->name)
        snprintf(ref, sizeof ref, "%s", t->name);
    else if (t->entry >= 0)
        snprintf(ref, sizeof ref, "#%d", (int)t->entry);
    else
        snprintf(ref, sizeof ref, "t%u", (unsigned)t->id);
    const tg_entry *e = tg_tape_entry(t->entry);
    int out_k = 0;
    for (int k = 0; e && k < e->nout; k++)
        if (e->outs[k] == t)
            out_k = k;
    if (e && e->nout > 1 && !t->name)
        snprintf(ref, sizeof ref, "#%d.%d", (int)t->entry, out_k);
    fputs("{\"ref\":", f);
    json_str(f, ref);
    fputs(",\"shape\":[", f);
    for (int d = 0; d < t->ndim; d++)
        fprintf(f, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    const char *kind = e ? "out"
                       : !(t->flags & TG_REQUIRES_GRAD) ? "const"
                       : (t->flags & TG_PERSISTENT)     ? "param"
                                                        : "leaf";
    fprintf(f, "],\"kind\":\"%s\",\"entry\":%d,\"value\":", kind,
            e ? (int)t->entry : -1);
    json_vsum_of(f, t, NULL);
    fputs(",\"tangent\":", f);
    if (t->tangent)
        json_vsum_of(f, t, t->tangent);
    else
        fputs("null", f);
    fputs("}", f);
}

static void write_entry(FILE *f, int64_t i, tensor_index *map)
{
    const tg_entry *e = tg_tape_entry(i);
    char label[512];
    fprintf(f, "{\"i\":%lld,\"op\":", (long long)i);
    json_str(f, e->op->name);
    const char *lab = tg_entry_label(e, label, sizeof label);
    if (strcmp(lab, e->op->name)) { /* (when it says more than the name) */
        fputs(",\"label\":", f);
        json_str(f, lab);
    }
    if (e->op->member) {
        fputs(",\"members\":[", f);
        const char *m;
        for (int k = 0; (m = e->op->member(e, k)); k++) {
            if (k)
                fputc(',', f);
            json_str(f, m);
        }
        fputc(']', f);
    }
    fprintf(f, ",\"step\":%lld,\"in\":[", (long long)e->step);
    for (int k = 0; k < e->nin; k++)
        fprintf(f, "%s%d", k ? "," : "", tensor_of(map, e->in[k]));
    fputs("],\"out\":[", f);
    for (int k = 0; k < e->nout; k++)
        fprintf(f, "%s%d", k ? "," : "", tensor_of(map, e->outs[k]));
    fputs("]}", f);
}

static bool same(const vsum *a, const vsum *b)
{
    size_t nv = a->rows ? (size_t)(a->rows * a->cols) : (size_t)a->n;
    return a->n >= 0 && a->n == b->n && a->rows == b->rows &&
           a->min == b->min && a->max == b->max && a->norm == b->norm &&
           !memcmp(a->v, b->v, nv * sizeof *a->v);
}

static void write_sweep_entry(FILE *f, const rec_entry *re)
{
    fprintf(f, "{\"i\":%lld,\"grad\":[", (long long)re->index);
    for (int k = 0; k < re->nout; k++) {
        if (k)
            fputc(',', f);
        json_vsum(f, &re->grad[k]);
    }
    /* a total equal to the share (the first share into a gradient) is
     * written as the string "share" */
    for (int q = 0; q < 2; q++) {
        const vsum *v = q ? re->total : re->share;
        fputs(q ? "],\"total\":[" : "],\"share\":[", f);
        for (int k = 0; k < re->nin; k++) {
            if (k)
                fputc(',', f);
            if (q && same(&re->share[k], &re->total[k]))
                fputs("\"share\"", f);
            else
                json_vsum(f, &v[k]);
        }
    }
    fputs("]}", f);
}

/* A time axis: for each t, the tensor, and the norm of its gradient as
 * recorded when the sweep ran the entry that made it (at: the place of
 * that entry in the page's sweep) */
static void write_strip(FILE *f, const tg_html_strip *s, tensor_index *map,
                        const rec_entry *sweep, const int64_t *kept)
{
    fputs("{\"name\":", f);
    json_str(f, s->name ? s->name : "h_t");
    fputs(",\"cells\":[", f);
    for (int t = 0; t < s->n; t++) {
        const tg_tensor *h = s->t[t];
        int ti = tensor_of(map, h);
        int64_t at = -1;
        const vsum *g = NULL;
        for (int64_t j = 0; h && h->entry >= 0 && j < arrlen(kept); j++) {
            const rec_entry *re = &sweep[kept[j]];
            if (re->index != h->entry)
                continue;
            const tg_entry *e = tg_tape_entry(re->index);
            for (int k = 0; k < re->nout; k++)
                if (e->outs[k] == h && re->grad[k].n >= 0) {
                    g = &re->grad[k];
                    at = j;
                }
        }
        fprintf(f, "%s{\"t\":%d,\"tensor\":%d,\"at\":%lld,\"norm\":",
                t ? "," : "", t + 1, ti, (long long)at);
        if (g)
            json_num(f, g->norm, 7);
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs("]}", f);
}

int tg_tape_html(FILE *f, const tg_tensor *root, const tg_html_opts *opts)
{
    static const tg_html_opts none = {0};
    if (!opts)
        opts = &none;
    const tg_sweep_rec *rec = opts->sweep;
    if (rec && rec->gen != tg_arena_generation()) {
        tg_error("tape_html", "the sweep was recorded on a tape that "
                 "tg_tape_reset has since cleared (generation %u, now %u): "
                 "write the page before the reset", (unsigned)rec->gen,
                 (unsigned)tg_arena_generation());
        return -1;
    }
    const char *mark = "/*TAPE*/";
    const char *cut = strstr(explorer_page, mark);
    TG_ASSERT(cut); /* autograd/explorer.html holds the mark */
    int64_t n = tg_tape_size();
    bool *on = tg_inspect_path_(root);
    tensor_index *map = NULL;
    const tg_tensor **list = NULL;
    for (int64_t i = 0; i < n; i++) {
        const tg_entry *e = tg_tape_entry(i);
        for (int k = 0; on[i] && k < e->nin; k++)
            add_tensor(&map, &list, e->in[k]);
        for (int k = 0; on[i] && k < e->nout; k++)
            add_tensor(&map, &list, e->outs[k]);
    }
    /* the sweep's entries that lead to root */
    int64_t *kept = NULL;
    for (int64_t j = 0; rec && j < arrlen(rec->entries); j++)
        if (rec->entries[j].index < n && on[rec->entries[j].index])
            arrput(kept, j);

    fwrite(explorer_page, 1, (size_t)(cut - explorer_page), f);
    fputs("{\"title\":", f);
    json_str(f, opts->title ? opts->title : "tape");
    fprintf(f, ",\"real\":\"%s\",\"full\":%d,\"tensors\":[\n", TG_REAL_NAME,
            TG_HTML_FULL);
    for (int64_t t = 0; t < arrlen(list); t++) {
        write_tensor(f, list[t]);
        fputs(t + 1 < arrlen(list) ? ",\n" : "\n", f);
    }
    fputs("],\"entries\":[\n", f);
    bool first = true;
    for (int64_t i = 0; i < n; i++) {
        if (!on[i])
            continue;
        fputs(first ? "" : ",\n", f);
        write_entry(f, i, map);
        first = false;
    }
    fputs("\n],\"sweep\":[\n", f);
    for (int64_t j = 0; j < arrlen(kept); j++) {
        write_sweep_entry(f, &rec->entries[kept[j]]);
        fputs(j + 1 < arrlen(kept) ? ",\n" : "\n", f);
    }
    fputs("],\"strips\":[", f);
    for (int s = 0; s < opts->nstrips; s++) {
        if (s)
            fputc(',', f);
        write_strip(f, &opts->strips[s], map, rec ? rec->entries : NULL, kept);
    }
    fputs("]}", f);
    fputs(cut + strlen(mark), f);
    arrfree(kept);
    arrfree(list);
    hmfree(map);
    free(on);
    if (fflush(f) != 0 || ferror(f)) {
        tg_error("tape_html", "writing the page failed");
        return -1;
    }
    return 0;
}
