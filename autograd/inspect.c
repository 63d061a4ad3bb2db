/*
 * autograd/inspect.c - seeing the tape: a one-line-per-entry listing and
 * a Graphviz picture of the graph. For learning and for debugging; nothing
 * here changes the tape. (The interactive page: autograd/explore.c.)
 */
#include "autograd/tape.h"
#include "autograd/inspect_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ds.h"

/* "W[2, 3]", "#4[2, 3]" (output of entry 4) or "t17[2, 3]" (unnamed leaf) */
/* which output of its entry t is (#12.1: the second output of #12) */
static int output_index(const tg_tensor *t)
{
    const tg_entry *e = tg_tape_entry(t->entry);
    for (int k = 0; k < e->nout; k++)
        if (e->outs[k] == t)
            return k;
    return 0;
}

static void tensor_ref(char *buf, size_t cap, const tg_tensor *t)
{
    char shape[96];
    tg_shape_str(t, shape, sizeof shape);
    if (t->name)
        snprintf(buf, cap, "%s%s", t->name, shape);
    else if (t->entry >= 0 && tg_tape_entry(t->entry)->nout > 1)
        snprintf(buf, cap, "#%d.%d%s", (int)t->entry, output_index(t), shape);
    else if (t->entry >= 0)
        snprintf(buf, cap, "#%d%s", (int)t->entry, shape);
    else
        snprintf(buf, cap, "t%u%s", (unsigned)t->id, shape);
}

void tg_tape_print(FILE *f)
{
    int64_t n = tg_tape_size();
    fprintf(f, "tape: %lld entr%s\n", (long long)n, n == 1 ? "y" : "ies");
    for (int64_t i = 0; i < n; i++) {
        const tg_entry *e = tg_tape_entry(i);
        char line[1024], ref[160], label[512];
        int len = snprintf(line, sizeof line, "#%-4lld %-11s (", (long long)i,
                           tg_entry_label(e, label, sizeof label));
        for (int k = 0; k < e->nin && len < (int)sizeof line; k++) {
            tensor_ref(ref, sizeof ref, e->in[k]);
            len += snprintf(line + len, sizeof line - (size_t)len, "%s%s",
                            k ? ", " : "", ref);
        }
        for (int k = 0; k < e->nout && len < (int)sizeof line; k++) {
            char out[96];
            const tg_tensor *o = e->outs[k];
            tg_shape_str(o, out, sizeof out);
            len += snprintf(line + len, sizeof line - (size_t)len,
                            "%s%s%s%s", k ? ", " : ") -> ", out,
                            o->name ? " " : "", o->name ? o->name : "");
        }
        if (e->step >= 0)
            fprintf(f, "%s  [t=%lld]\n", line, (long long)e->step);
        else if (e->step == TG_STEP_ALL)
            fprintf(f, "%s  [t=all]\n", line);
        else
            fprintf(f, "%s\n", line);
    }
}

/* mean, min, max of the numbers (all of them when there are at most 4) */
static void summary(char *buf, size_t cap, const char *what, const tg_tensor *t,
                    const tg_real *contig)
{
    int64_t n = t->numel;
    if (n == 0) {
        snprintf(buf, cap, "%s: empty", what);
        return;
    }
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    size_t len = (size_t)snprintf(buf, cap, "%s:", what);
    for (int64_t i = 0; i < n; i++) {
        double v = contig ? (double)contig[i] : tg_flat_get(t, i);
        sum += v;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        if (n <= 4 && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, " %.4g", v);
    }
    if (n > 4 && len < cap)
        snprintf(buf + len, cap - len, " mean %.4g [%.4g, %.4g]", sum / (double)n,
                 lo, hi);
}

/* a set of tensors, keyed by address (stb_ds hash map) */
typedef struct {
    uintptr_t key;
    int value;
} tensor_set;
#define KEY(t) ((uintptr_t)(const void *)(t))

static void dot_tensor(FILE *f, const tg_tensor *t, tensor_set **seen)
{
    if (hmgeti(*seen, KEY(t)) >= 0)
        return;
    hmput(*seen, KEY(t), 1);
    char ref[160], val[160], grad[160] = "";
    tensor_ref(ref, sizeof ref, t);
    summary(val, sizeof val, "value", t, NULL);
    if (t->grad)
        summary(grad, sizeof grad, "grad", t, t->grad);
    const char *style = t->entry >= 0 ? ""
                        : (t->flags & TG_PERSISTENT) ? ", style=filled, "
                                                       "fillcolor=\"#ffe8b0\""
                                                     : ", style=filled, "
                                                       "fillcolor=\"#e8f0ff\"";
    fprintf(f, "  \"t%u\" [shape=ellipse, label=\"%s\\n%s%s%s\"%s];\n",
            (unsigned)t->id, ref, val, grad[0] ? "\\n" : "", grad, style);
}

bool *tg_inspect_path_(const tg_tensor *root)
{
    int64_t n = tg_tape_size();
    bool *on = tg_xcalloc((size_t)(n ? n : 1), sizeof *on);
    tensor_set *reached = NULL;
    if (root)
        hmput(reached, KEY(root), 1);
    for (int64_t i = root ? root->entry : n - 1; i >= 0; i--) {
        const tg_entry *e = tg_tape_entry(i);
        bool hit = !root;
        for (int k = 0; k < e->nout; k++)
            hit |= hmgeti(reached, KEY(e->outs[k])) >= 0;
        if (!hit)
            continue;
        on[i] = true;
        for (int k = 0; k < e->nin; k++)
            hmput(reached, KEY(e->in[k]), 1);
    }
    hmfree(reached);
    return on;
}

void tg_tape_dot(FILE *f, const tg_tensor *root)
{
    int64_t n = tg_tape_size();
    /* Tensors are named by their serial number (t->id), so the same
     * program writes the same file every run. */
    bool *on = tg_inspect_path_(root); /* which entries lead to root */
    tensor_set *seen = NULL;
    fprintf(f, "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\", "
            "fontsize=10];\n");
    char label[512];
    for (int64_t i = n - 1; i >= 0; i--) {
        const tg_entry *e = tg_tape_entry(i);
        if (!on[i])
            continue;
        fprintf(f, "  \"e%lld\" [shape=box, style=filled, fillcolor=\"#dddddd\", "
                "label=\"#%lld %s\"];\n", (long long)i, (long long)i,
                tg_entry_label(e, label, sizeof label));
        for (int k = 0; k < e->nout; k++) {
            dot_tensor(f, e->outs[k], &seen);
            fprintf(f, "  \"e%lld\" -> \"t%u\";\n", (long long)i,
                    (unsigned)e->outs[k]->id);
        }
        for (int k = 0; k < e->nin; k++) {
            dot_tensor(f, e->in[k], &seen);
            fprintf(f, "  \"t%u\" -> \"e%lld\";\n", (unsigned)e->in[k]->id,
                    (long long)i);
        }
    }
    fprintf(f, "}\n");
    free(on);
    hmfree(seen);
}
