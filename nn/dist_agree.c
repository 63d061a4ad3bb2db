/*
 * nn/dist_agree.c - ranks agree before they work (see nn/dist.h): every
 * rank's digest goes to rank 0, which compares them with its own and
 * sends every rank the verdict. Two exchanges of fixed size (a gather and
 * a broadcast), whatever the digests hold, so that ranks which disagree
 * on everything else still meet here safely. What a program puts in a
 * digest is the program's business (examples/charlm/ranks.c: the build,
 * the flags, the data, the checkpoint).
 */
#include "nn/dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits */
static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void tg_dist_digest_add(tg_dist_digest *d, const char *name, const char *fmt,
                        ...)
{
    TG_ASSERT(d->n >= 0 && d->n < TG_DIST_FIELDS); /* raise TG_DIST_FIELDS */
    TG_ASSERT(strlen(name) < TG_DIST_NAME);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *v = tg_xmalloc((size_t)(len > 0 ? len : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(v, (size_t)(len > 0 ? len : 0) + 1, fmt, ap);
    va_end(ap);
    char *out = d->field[d->n].value;
    if (len < TG_DIST_VALUE)
        memcpy(out, v, (size_t)(len > 0 ? len : 0) + 1);
    else /* its start, and a hash of the whole: "... #0123456789abcdef" */
        snprintf(out, TG_DIST_VALUE, "%.*s... #%016llx", TG_DIST_VALUE - 24, v,
                 (unsigned long long)fnv(v, (size_t)len));
    free(v);
    snprintf(d->field[d->n].name, TG_DIST_NAME, "%s", name);
    d->n++;
}

void tg_dist_digest_fail(tg_dist_digest *d, const char *msg)
{
    snprintf(d->error, sizeof d->error, "%s", msg && *msg ? msg : "failed");
}

/* Rank 0's comparison of the n digests in d (which it may edit); the
 * verdict as tg_dist_agree returns it. */
static int judge(tg_dist_digest *d, int n, char *why, size_t cap)
{
    int failed = 0, first = -1;
    bool same = true;
    for (int r = 0; r < n; r++) { /* another process's bytes: ends made sure */
        d[r].error[TG_DIST_WHY - 1] = 0;
        if (d[r].n < 0 || d[r].n > TG_DIST_FIELDS)
            d[r].n = -1;
        for (int i = 0; i < d[r].n; i++) {
            d[r].field[i].name[TG_DIST_NAME - 1] = 0;
            d[r].field[i].value[TG_DIST_VALUE - 1] = 0;
        }
        if (!d[r].error[0])
            continue;
        if (first < 0)
            first = r;
        else
            same = same && !strcmp(d[r].error, d[first].error);
        failed++;
    }
    if (failed == n && same) {
        snprintf(why, cap, "%s", d[first].error);
        return -1;
    }
    if (failed) {
        char more[80] = "";
        if (failed > 1)
            snprintf(more, sizeof more, " (and %d more rank%s failed)",
                     failed - 1, failed > 2 ? "s" : "");
        snprintf(why, cap, "rank %d of %d: %.*s%s", first, n, TG_DIST_WHY - 128,
                 d[first].error, more);
        return -1;
    }
    for (int r = 1; r < n; r++) {
        if (d[r].n != d[0].n) {
            snprintf(why, cap, "rank %d of %d describes itself in %d fields, "
                     "rank 0 in %d: do all ranks run the same program?", r, n,
                     d[r].n, d[0].n);
            return -2;
        }
        for (int i = 0; i < d[0].n; i++) {
            const char *a = d[r].field[i].name, *b = d[0].field[i].name;
            if (strcmp(a, b)) {
                snprintf(why, cap, "rank %d of %d describes '%s' where rank 0 "
                         "describes '%s': do all ranks run the same program?",
                         r, n, a, b);
                return -2;
            }
            a = d[r].field[i].value;
            b = d[0].field[i].value;
            if (strcmp(a, b)) {
                snprintf(why, cap, "ranks differ in %s: %s on rank %d of %d, %s "
                         "on rank 0", d[0].field[i].name, a, r, n, b);
                return -2;
            }
        }
    }
    return 0;
}

int tg_dist_agree(const tg_dist_digest *d, char *why, size_t cap)
{
    int n = tg_dist_size(), me = tg_dist_rank();
    struct {
        int code;
        char why[TG_DIST_WHY];
    } v = {0, ""};
    tg_dist_digest *all = me == 0 ? tg_xmalloc((size_t)n * sizeof *all) : NULL;
    if (tg_dist_gather(d, sizeof *d, all, 0) < 0)
        tg_dist_abort(1, "cannot gather the ranks' descriptions of their work");
    if (me == 0)
        v.code = judge(all, n, v.why, sizeof v.why);
    free(all);
    if (tg_dist_broadcast(&v, sizeof v, 0) < 0)
        tg_dist_abort(1, "cannot send the ranks the outcome of their comparison");
    if (cap)
        snprintf(why, cap, "%s", v.why);
    return v.code;
}
