/*
 * examples/common/cli.c - flag values and a clock for the examples.
 */
#include "examples/common/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
