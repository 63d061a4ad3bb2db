/*
 * fuzz/corpus.c - charlm's corpus reader (examples/charlm/data.c) on
 * arbitrary bytes: the file read and decoded as strict UTF-8 with
 * universal newlines (cl_text_read), and the same bytes read as a
 * checkpoint's vocabulary (cl_vocab_parse). Text is accepted or refused
 * with a message; nothing is read out of bounds; what comes out is valid
 * characters. (cl_vocab_build is left out: it clears a table of all
 * 1.1M code points per call, which made this target 10x slower.)
 */
#include "fuzz/fuzz.h"
#include "fuzz/charlm_glue.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_capture_errors();
    /* the same bytes as a checkpoint's vocabulary (up to a NUL): sorted,
     * unique characters, or a message */
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    cl_vocab v;
    cl_fail("%s", ""); /* a refusal below must say why */
    if (cl_vocab_parse(s, &v) == 0) {
        for (int64_t i = 1; i < v.n; i++)
            if (v.chars[i] <= v.chars[i - 1])
                abort();
        cl_vocab_free(&v);
    } else if (!cl_error()[0])
        abort();
    free(s);
    const char *path = fuzz_write_file("corpus", data, size);
    if (!path)
        return 0;
    cl_text t;
    cl_fail("%s", "");
    if (cl_text_read(path, 1, &t) < 0) {
        if (!cl_error()[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    for (int64_t i = 0; i < t.n; i++) {
        uint32_t c = t.cp[i];
        if (c == 0 || c == '\r' || c >= 0x110000 || (c >= 0xD800 && c < 0xE000))
            abort(); /* only characters of valid text come out */
    }
    cl_text_free(&t);
    return 0;
}
