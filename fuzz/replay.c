/*
 * fuzz/replay.c - a main() that runs a fuzz target's LLVMFuzzerTestOneInput
 * on each file named, without libFuzzer: `make test` (and `make asan`)
 * build the library's targets with it and replay fuzz/regressions/, so
 * every past finding stays tested with gcc alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0, got;
        do {
            if (n == cap) {
                cap = cap ? 2 * cap : 4096;
                uint8_t *b = realloc(buf, cap);
                if (!b)
                    abort();
                buf = b;
            }
            got = fread(buf + n, 1, cap - n, f);
            n += got;
        } while (got);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    printf("replayed %d input%s\n", argc - 1, argc == 2 ? "" : "s");
    return 0;
}
