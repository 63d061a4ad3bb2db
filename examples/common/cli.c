/*
 * examples/common/cli.c - the examples' flag parser (see cli.h): the loop
 * over the arguments, the values by kind in either wording, and checked
 * numbers, lists and a clock for the programs' own set functions.
 */
#include "examples/common/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ------------------------------------------------------------- */
static char err_buf[2048];

int cli_fail(const char *fmt, ...)
{
    char buf[sizeof err_buf]; /* the arguments may include cli_error() */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(err_buf, buf, sizeof buf);
    return -1;
}

const char *cli_error(void) { return err_buf; }

/* ---- values ------------------------------------------------------------- */

void cli_shortest(char *buf, size_t cap, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "%s",
                 isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* "[0, 1)", ">= 1", "> 0" */
static void range_text(const cli_flag *f, char *buf, size_t cap)
{
    bool lo_open = f->flags & CLI_LO_OPEN, hi_open = f->flags & CLI_HI_OPEN;
    char lo[32], hi[32];
    cli_shortest(lo, sizeof lo, f->lo);
    cli_shortest(hi, sizeof hi, f->hi);
    if (f->lo <= -CLI_BIG)
        snprintf(buf, cap, "a finite number");
    else if (f->hi >= CLI_BIG)
        snprintf(buf, cap, "%s %s", lo_open ? ">" : ">=", lo);
    else
        snprintf(buf, cap, "in %c%s, %s%c", lo_open ? '(' : '[', lo, hi,
                 hi_open ? ')' : ']');
}

static void store_int(const cli_flag *f, void *p, long long i)
{
    if (f->kind == CLI_INT)
        *(int *)p = (int)i;
    else if (f->kind == CLI_LONG)
        *(long *)p = (long)i;
    else
        *(int64_t *)p = (int64_t)i;
}

/* the examples' wording: "--T wants an integer in [2, 100000], got 'x'"
 * (text NULL: the value is missing) */
static int value_wants(const cli_flag *f, void *p, const char *text,
                       const char *context)
{
    const char *shown = text ? text : "";
    char *end;
    errno = 0;
    switch (f->kind) {
    case CLI_INT:
    case CLI_LONG:
    case CLI_I64: {
        long long i = text ? strtoll(text, &end, 10) : 0;
        if (!text || errno || *end || i < (long long)f->lo ||
            i > (long long)f->hi)
            return cli_fail("%s wants an integer in [%lld, %lld], got '%s'",
                            context, (long long)f->lo, (long long)f->hi,
                            shown);
        store_int(f, p, i);
        return 0;
    }
    case CLI_REAL: {
        double x = text ? strtod(text, &end) : 0;
        if (!text || *end || !(x >= f->lo) || !isfinite(x) ||
            (f->hi > f->lo && x > f->hi))
            return cli_fail("%s wants a number >= %g, got '%s'", context,
                            f->lo, shown);
        *(double *)p = x;
        return 0;
    }
    case CLI_STR:
        if (!text)
            return cli_fail("%s wants a value", context);
        *(const char **)p = text;
        return 0;
    default:
        return -1;
    }
}

/* charlm's wording: "--hidden: 'x' is not a whole number", "--hidden
 * must be in [1, 8192] (got 0)" */
static int value_must(const cli_flag *f, void *p, const char *text,
                      const char *context)
{
    char *end, range[96];
    double v;
    errno = 0;
    switch (f->kind) {
    case CLI_INT:
    case CLI_LONG:
    case CLI_I64: {
        long long i = strtoll(text, &end, 10);
        if (!*text || end == text || *end || text[0] == ' ')
            return cli_fail("%s: '%s' is not a whole number", context, text);
        v = (double)i;
        if (errno == ERANGE || v < f->lo || v > f->hi) {
            range_text(f, range, sizeof range);
            return cli_fail("%s must be %s (got %s)", context, range, text);
        }
        store_int(f, p, i);
        return 0;
    }
    case CLI_REAL:
        v = strtod(text, &end);
        if (!*text || end == text || *end || text[0] == ' ')
            return cli_fail("%s: '%s' is not a number", context, text);
        if (!isfinite(v))
            return cli_fail("%s: '%s' is not a finite number", context, text);
        if (v < f->lo || v > f->hi ||
            ((f->flags & CLI_LO_OPEN) && v == f->lo) ||
            ((f->flags & CLI_HI_OPEN) && v == f->hi)) {
            range_text(f, range, sizeof range);
            return cli_fail("%s must be %s (got %s)", context, range, text);
        }
        *(double *)p = v;
        return 0;
    case CLI_STR:
        if (!*text)
            return cli_fail("%s: the value is empty", context);
        *(const char **)p = text;
        return 0;
    default:
        return -1;
    }
}

int cli_value(const cli_spec *spec, const cli_flag *f, void *cfg,
              const char *text, const char *context)
{
    void *p = (char *)cfg + f->off;
    if (f->kind == CLI_SWITCH) {
        *(bool *)p = true;
        return 0;
    }
    if (f->kind == CLI_SET)
        return spec->set[f->off](cfg, text);
    return spec->words == CLI_MUST ? value_must(f, p, text, context)
                                   : value_wants(f, p, text, context);
}

void cli_format(const cli_flag *f, const void *cfg, char *buf, size_t cap)
{
    const void *p = (const char *)cfg + f->off;
    switch (f->kind) {
    case CLI_INT:
        snprintf(buf, cap, "%d", *(const int *)p);
        break;
    case CLI_LONG:
        snprintf(buf, cap, "%ld", *(const long *)p);
        break;
    case CLI_I64:
        snprintf(buf, cap, "%lld", (long long)*(const int64_t *)p);
        break;
    case CLI_REAL: /* reads back as the same double */
        cli_shortest(buf, cap, *(const double *)p);
        break;
    case CLI_STR: {
        const char *s = *(const char *const *)p;
        snprintf(buf, cap, "%s", s ? s : "");
        break;
    }
    case CLI_SWITCH:
        snprintf(buf, cap, "%s", *(const bool *)p ? "yes" : "no");
        break;
    case CLI_SET:
        snprintf(buf, cap, "%s", "");
        break;
    }
}

/* ---- the loop --------------------------------------------------------- */

static int unknown(const cli_spec *spec, const char *arg, const char *name,
                   size_t len)
{
    if (spec->usage_line)
        return cli_fail("%s", spec->usage_line);
    if (spec->words == CLI_WANTS)
        return cli_fail("unknown option '%s' (see --help)", arg);
    return cli_fail("unknown option '--%.*s' (see %s --help)", (int)len,
                    name, spec->prog);
}

/* CLI_MANY: the arguments up to the next --flag, one set call each */
static int take_many(cli_set_fn set, void *cfg, int argc, char **argv,
                     int *i)
{
    int taken = 0;
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2)) {
        int rc = set(cfg, argv[*i + 1]);
        if (rc < 0)
            return -1;
        if (rc > 0)
            break;
        ++*i;
        taken++;
    }
    return taken ? 0 : set(cfg, NULL);
}

int cli_parse(const cli_spec *spec, int argc, char **argv, void *cfg,
              bool *given)
{
    bool must = spec->words == CLI_MUST;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        if (must && !strcmp(a, "--version"))
            return 2;
        if (strncmp(a, "--", 2) || !a[2]) {
            if (must && !spec->usage_line)
                return cli_fail("unexpected argument '%s' (options start with "
                                "--; see %s --help)", a, spec->prog);
            return unknown(spec, a, a, strlen(a));
        }
        /* --flag=value: charlm's; the others take every argument whole */
        const char *name = a + 2, *eq = must ? strchr(name, '=') : NULL;
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int k = -1;
        for (int j = 0; j < spec->nflags; j++)
            if (strlen(spec->flags[j].name) == len &&
                !strncmp(spec->flags[j].name, name, len))
                k = j;
        if (k < 0)
            return unknown(spec, a, name, len);
        const cli_flag *f = &spec->flags[k];
        char ctx[64];
        snprintf(ctx, sizeof ctx, "--%s", f->name);
        const char *val = NULL;
        if (!f->metavar) { /* a switch, or a set function without value */
            if (eq)
                return cli_fail("--%s takes no value", f->name);
        } else if (eq) {
            val = eq + 1;
        } else if (f->flags & CLI_MANY) {
            if (take_many(spec->set[f->off], cfg, argc, argv, &i) < 0)
                return -1;
            if (given)
                given[k] = true;
            continue;
        } else if (i + 1 < argc) {
            val = argv[++i];
            if (must && !strncmp(val, "--", 2) && !(f->flags & CLI_DASHES))
                return cli_fail("--%s needs a value (%s), not the option '%s'",
                                f->name, f->metavar, val);
        } else if (must) {
            return cli_fail("--%s needs a value (%s)", f->name, f->metavar);
        }
        if (cli_value(spec, f, cfg, val, ctx) < 0)
            return -1;
        if (given)
            given[k] = true;
    }
    return 0;
}

void cli_parse_or_exit(const cli_spec *spec, int argc, char **argv,
                       void *cfg)
{
    int rc = cli_parse(spec, argc - 1, argv + 1, cfg, NULL);
    if (rc > 0) {
        fputs(spec->help, stdout);
        exit(0);
    }
    if (rc < 0) {
        if (spec->usage_line && !strcmp(cli_error(), spec->usage_line))
            fprintf(stderr, "%s\n", cli_error());
        else
            fprintf(stderr, "%s: %s\n", spec->prog, cli_error());
        exit(2);
    }
}

/* ---- help ------------------------------------------------------------- */

void cli_help_line(FILE *f, const char *flag, const char *text)
{
    enum { COL = 21, WIDTH = 79 };
    int col = fprintf(f, "  %-*s", COL - 3, flag);
    if (col > COL - 1) {
        fprintf(f, "\n%*s", COL - 1, "");
        col = COL - 1;
    }
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        int len = (int)strcspn(p, " ");
        if (col + 1 + len > WIDTH && col > COL - 1) {
            fprintf(f, "\n%*s", COL - 1, "");
            col = COL - 1;
        }
        col += fprintf(f, " %.*s", len, p);
        p += len;
    }
    fputc('\n', f);
}

/* ---- checked values for set functions ---------------------------------- */

long cli_int(const char *prog, const char *flag, const char *v, long lo,
             long hi)
{
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || n < lo || n > hi) {
        fprintf(stderr, "%s: %s wants an integer in [%ld, %ld], got '%s'\n",
                prog, flag, lo, hi, v ? v : "");
        exit(2);
    }
    return n;
}

double cli_real(const char *prog, const char *flag, const char *v, double lo)
{
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || !(x >= lo) || !isfinite(x)) {
        fprintf(stderr, "%s: %s wants a number >= %g, got '%s'\n", prog, flag,
                lo, v ? v : "");
        exit(2);
    }
    return x;
}

void cli_lengths(const char *prog, const char *flag, const char *v,
                 int *lengths, int *n, int max)
{
    *n = 0;
    const char *p = v ? v : "";
    for (;;) {
        char *end;
        errno = 0;
        long k = strtol(p, &end, 10);
        if (end == p || errno || k < 2 || k > 100000 || *n == max ||
            (*end && *end != ',')) {
            fprintf(stderr, "%s: %s wants up to %d integers >= 2 separated "
                    "by commas, got '%s'\n", prog, flag, max, v ? v : "");
            exit(2);
        }
        lengths[(*n)++] = (int)k;
        if (!*end)
            break;
        p = end + 1;
    }
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
