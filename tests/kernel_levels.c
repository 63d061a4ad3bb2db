/*
 * tests/kernel_levels.c - for the test loop of `make run-tests`: prints
 * the kernel levels this build has and this CPU runs, best first, one a
 * line; with --active, the level in use (TG_KERNELS taken into account),
 * so that the loop can check that a forced level is the one that ran.
 */
#include "ops/kernels.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--active") == 0) {
        printf("%s\n", tg_kernels_level());
        return 0;
    }
    for (const char *const *l = tg_kernels_levels(); *l; l++)
        if (tg_kernels_supported(*l))
            printf("%s\n", *l);
    return 0;
}
