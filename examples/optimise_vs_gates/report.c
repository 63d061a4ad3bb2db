/*
 * examples/optimise_vs_gates/report.c - the lines read back: key=value
 * words, the files of lines, and the report's gathering of runs into
 * cells (task, row, length) and of curvature points into (row, rate,
 * step). report_tables.c writes the page from them.
 *
 * A job written twice (a resumed shard that had begun it) counts once:
 * the first of its lines is kept.
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* where " key=" (or "key=" at the start) is in line; NULL */
static const char *kv_find(const char *line, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = line; (p = strstr(p, key)); p += n)
        if ((p == line || p[-1] == ' ') && p[n] == '=')
            return p + n + 1;
    return NULL;
}

double kv_num(const char *line, const char *key)
{
    const char *v = kv_find(line, key);
    char *end;
    double x = v ? strtod(v, &end) : (double)NAN;
    return v && end != v ? x : (double)NAN;
}

bool kv_str(const char *line, const char *key, char *buf, size_t cap)
{
    const char *v = kv_find(line, key);
    if (!v || !cap)
        return false;
    size_t n = strcspn(v, " \n");
    n = n < cap - 1 ? n : cap - 1;
    memcpy(buf, v, n);
    buf[n] = 0;
    return true;
}

int ovg_read_lines(const char *const *files, int n, bool strict,
                   char ***lines)
{
    for (int f = 0; f < n; f++) {
        FILE *in = fopen(files[f], "r");
        if (!in && strict) {
            fprintf(stderr, PROG ": cannot read %s\n", files[f]);
            return -1;
        }
        char buf[1024];
        while (in && fgets(buf, sizeof buf, in))
            if (strchr(buf, '\n')) /* a line cut short is no result */
                arrput(*lines, strdup(buf));
        if (in)
            fclose(in);
    }
    return 0;
}

void ovg_free_lines(char **lines)
{
    for (ptrdiff_t i = 0; i < arrlen(lines); i++)
        free(lines[i]);
    arrfree(lines);
}

/* the index of T in the sorted lengths of task k, inserted if new */
static int length_index(report *rp, int k, int T)
{
    int *L = rp->lengths[k], *n = &rp->nlengths[k];
    for (int i = 0; i < *n; i++)
        if (L[i] == T)
            return i;
    if (*n == MAX_LENGTHS)
        return -1;
    int i = (*n)++;
    for (; i > 0 && L[i - 1] > T; i--)
        L[i] = L[i - 1];
    L[i] = T;
    return i;
}

static int task_index(const char *line)
{
    char t[16];
    if (!kv_str(line, "task", t, sizeof t))
        return -1;
    return !strcmp(t, "adding") ? 0 : !strcmp(t, "copy") ? 1 : -1;
}

static int row_of(const char *line)
{
    char name[32];
    return kv_str(line, "row", name, sizeof name) ? ovg_row_index(name) : -1;
}

/* a "run" line into its cell; lengths first pass only when sizing */
static void add_run(report *rp, const char *line)
{
    int k = task_index(line), r = row_of(line);
    double T = kv_num(line, "T"), seed = kv_num(line, "seed");
    if (k < 0 || r < 0 || !(T >= 2) || !(seed >= 1 && seed <= MAX_SEEDS))
        return;
    int l = length_index(rp, k, (int)T);
    if (l < 0)
        return;
    cell *c = &rp->cells[k][r][l];
    unsigned long long bit = 1ull << ((int)seed - 1);
    if (c->seen & bit)
        return;
    c->seen |= bit;
    c->runs++;
    c->set = (int)kv_num(line, "set");
    c->setting = (ovg_setting){kv_num(line, "lr"), kv_num(line, "clip")};
    if (kv_num(line, "solved") == 1) {
        c->work[c->solved] = kv_num(line, "work");
        c->steps[c->solved] = kv_num(line, "steps");
        c->wall[c->solved++] = kv_num(line, "wall");
    }
}

/* a "curv" line into its point (row, rate, step) */
static void add_curv(report *rp, const char *line)
{
    int r = row_of(line);
    double lr = kv_num(line, "lr"), step = kv_num(line, "step");
    double seed = kv_num(line, "seed");
    if (r < 0 || !(step >= 0) || !(seed >= 1 && seed <= MAX_SEEDS))
        return;
    ptrdiff_t i = 0;
    for (; i < arrlen(rp->curv); i++)
        if (rp->curv[i].row == r && rp->curv[i].lr == lr &&
            rp->curv[i].step == (long)step)
            break;
    if (i == arrlen(rp->curv)) {
        curvpoint p = {.row = r, .lr = lr, .step = (long)step};
        arrput(rp->curv, p);
    }
    curvpoint *p = &rp->curv[i];
    unsigned long long bit = 1ull << ((int)seed - 1);
    if (p->seen & bit || p->n == CURV_MAX)
        return;
    p->seen |= bit;
    p->eigH[p->n] = kv_num(line, "eigH");
    p->eigP[p->n] = kv_num(line, "eigP");
    p->loss[p->n++] = kv_num(line, "loss");
}

static int by_point(const void *a, const void *b)
{
    const curvpoint *x = a, *y = b;
    if (x->row != y->row)
        return x->row - y->row;
    if (x->lr != y->lr)
        return x->lr < y->lr ? -1 : 1;
    return (x->step > y->step) - (x->step < y->step);
}

int ovg_report(const opts *o)
{
    report *rp = calloc(1, sizeof *rp);
    if (ovg_read_lines(o->report, o->nreport, true, &rp->lines) < 0) {
        free(rp);
        return 1;
    }
    for (ptrdiff_t i = 0; i < arrlen(rp->lines); i++) {
        const char *l = rp->lines[i];
        if (!strncmp(l, "run ", 4))
            add_run(rp, l);
        else if (!strncmp(l, "curv ", 5))
            add_curv(rp, l);
        else if (!strncmp(l, "config ", 7))
            rp->config = l;
        else if (!strncmp(l, "calib ", 6) || !strncmp(l, "fbe ", 4))
            arrput(rp->calib, l);
        else if (!strncmp(l, "elapsed ", 8))
            arrput(rp->elapsed, l);
    }
    if (arrlen(rp->curv))
        qsort(rp->curv, (size_t)arrlen(rp->curv), sizeof *rp->curv, by_point);
    int rc = ovg_write_page(o, rp);
    arrfree(rp->curv);
    arrfree(rp->calib);
    arrfree(rp->elapsed);
    ovg_free_lines(rp->lines);
    free(rp);
    return rc;
}
