/*
 * tests/fuse_fuzz.c - the differential fuzzer of compiled steps
 * (fuzz/fuse_diff.c) in the test suite: inputs made from fixed seeds, run
 * through the same check as under libFuzzer (cell, schedule, unfused
 * against compiled, in double), then the coverage: every vector machine
 * code forward, backward and in tg_jvp, the guards, the scenarios. Fails
 * on a difference (the check aborts, naming the seed) or when something
 * was not reached.
 *
 *     build/tests/fuse_fuzz                     # the seeds of make test
 *     build/tests/fuse_fuzz --seed 1234         # one, to reproduce
 *     build/tests/fuse_fuzz --verbose ...       # each seed named first
 *     FUSE_DIFF_BUGS=c build/tests/fuse_fuzz    # with a known bug's scenario
 *     build/tests/fuse_fuzz FILE...             # replay libFuzzer inputs
 *     build/tests/fuse_fuzz --write-seeds DIR   # the inputs, as fuzzer seeds
 */
#include "fuzz/fuse_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* the input of seed s: 16 to 1023 random bytes */
static size_t input_of(uint64_t s, uint8_t *buf)
{
    uint64_t st = s;
    size_t n = 16 + splitmix(&st) % 1008;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)splitmix(&st);
    return n;
}

static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuse_fuzz: cannot open %s\n", path);
        return -1;
    }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fd_input_label = path;
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    long first = 1, count = 1500;
    bool verbose = false;
    const char *seeds_dir = NULL;
    int nfiles = 0;
    if (fd_bugs_from_env() < 0)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            first = atol(argv[++i]);
            count = 1;
        } else if (!strcmp(argv[i], "--inputs") && i + 1 < argc) {
            count = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--first") && i + 1 < argc) {
            first = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc) {
            seeds_dir = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: fuse_fuzz [--inputs N] [--first S] "
                    "[--seed S] [--verbose] [--write-seeds DIR] [FILE...]\n");
            return 2;
        } else {
            if (replay(argv[i]) < 0)
                return 1;
            nfiles++;
        }
    }
    if (nfiles) {
        printf("fuse_fuzz: replayed %d input%s, no difference\n", nfiles,
               nfiles == 1 ? "" : "s");
        return 0;
    }
    static uint8_t buf[1024];
    char label[96];
    clock_t t0 = clock();
    for (long s = first; s < first + count; s++) {
        size_t n = input_of((uint64_t)s, buf);
        if (seeds_dir) {
            char path[512];
            snprintf(path, sizeof path, "%s/seed-%ld", seeds_dir, s);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
                fprintf(stderr, "fuse_fuzz: cannot write %s\n", path);
                return 1;
            }
            continue;
        }
        snprintf(label, sizeof label,
                 "seed %ld: build/tests/fuse_fuzz --seed %ld", s, s);
        fd_input_label = label;
        if (verbose) /* the seed of a crash or a hang */
            fprintf(stderr, "seed %ld\n", s);
        LLVMFuzzerTestOneInput(buf, n);
    }
    if (seeds_dir)
        return 0;
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("fuse_fuzz: %ld inputs (seeds %ld..%ld) in %.1f s, no difference\n",
           count, first, first + count - 1, secs);
    fd_cov_print(stdout);
    if (count > 1 && fd_cov_check(stdout) < 0) {
        printf("fuse_fuzz: FAILED: the seeds no longer reach everything\n");
        return 1;
    }
    return 0;
}
