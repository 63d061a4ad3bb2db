/*
 * fuzz/corpus.c - charlm's corpus reader (examples/charlm/data.c) on
 * arbitrary bytes: the file read and decoded as strict UTF-8 with
 * universal newlines into compact ids (cl_corpus_read), and the same
 * bytes read as a
 * checkpoint's vocabulary (cl_vocab_parse). Text is accepted or refused
 * with a message; nothing is read out of bounds; what comes out is valid
 * characters, and ids within the vocabulary.
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
    cli_fail("%s", ""); /* a refusal below must say why */
    if (cl_vocab_parse(s, &v) == 0) {
        for (int64_t i = 1; i < v.n; i++)
            if (v.chars[i] <= v.chars[i - 1])
                abort();
        cl_vocab_free(&v);
    } else if (!cli_error()[0])
        abort();
    free(s);
    const char *path = fuzz_write_file("corpus", data, size);
    if (!path)
        return 0;
    cl_vocab voc = {0};
    cl_ids ids;
    cli_fail("%s", "");
    if (cl_corpus_read(path, 1, false, &voc, &ids) < 0) {
        if (!cli_error()[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    for (int64_t i = 0; i < voc.n; i++) {
        uint32_t c = voc.chars[i];
        if (c == 0 || c == '\r' || c >= 0x110000 || (c >= 0xD800 && c < 0xE000) ||
            (i > 0 && c <= voc.chars[i - 1]))
            abort(); /* only characters of valid text come out, sorted */
    }
    for (int64_t i = 0; i < ids.n; i++)
        if (cl_ids_get(&ids, i) >= (uint32_t)voc.n)
            abort();
    cl_ids_free(&ids);
    cl_vocab_free(&voc);
    return 0;
}
