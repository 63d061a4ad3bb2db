/*
 * examples/common/cli.h - what the examples' command lines share: checked
 * numbers and lists from flag values (a bad value prints
 * "PROG: FLAG wants ..., got '...'" and exits with status 2), and a clock.
 */
#ifndef EXAMPLES_COMMON_CLI_H
#define EXAMPLES_COMMON_CLI_H

/* An integer in [lo, hi]. */
long cli_int(const char *prog, const char *flag, const char *v, long lo,
             long hi);
/* A finite number >= lo. */
double cli_real(const char *prog, const char *flag, const char *v, double lo);
/* Up to max integers in [2, 100000] separated by commas. */
void cli_lengths(const char *prog, const char *flag, const char *v,
                 int *lengths, int *n, int max);
/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
