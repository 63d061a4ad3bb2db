/*
 * fuzz/charlm_glue.h - for the targets that link charlm's sources (the
 * .c files of examples/charlm; main.c with its main renamed cl_tool_main).
 *
 * cl_strdup: charlm's own (main.c, compiled here as cl_tool_strdup) keeps
 * every string read from a checkpoint until the process exits, growing its
 * list by one element per string. Right for a tool that loads one
 * checkpoint; in a fuzzer that loads millions, memory grows without end
 * and each realloc copies the whole list (quadratic time), and libFuzzer
 * runs a full leak scan after every input whose mallocs and frees differ.
 * So here the strings live until the end of one input: fuzz_strings_free.
 */
#ifndef TG_FUZZ_CHARLM_GLUE_H
#define TG_FUZZ_CHARLM_GLUE_H

#include "examples/charlm/charlm.h"

#include <stdlib.h>
#include <string.h>

static char **fuzz_strs;
static size_t fuzz_nstrs, fuzz_capstrs;

const char *cl_strdup(const char *s)
{
    if (fuzz_nstrs == fuzz_capstrs) {
        fuzz_capstrs = fuzz_capstrs ? 2 * fuzz_capstrs : 64;
        fuzz_strs = tg_xrealloc(fuzz_strs, fuzz_capstrs * sizeof *fuzz_strs);
    }
    size_t n = strlen(s) + 1;
    return fuzz_strs[fuzz_nstrs++] = memcpy(tg_xmalloc(n), s, n);
}

/* after every input: the strings its loads kept */
static inline void fuzz_strings_free(void)
{
    for (size_t i = 0; i < fuzz_nstrs; i++)
        free(fuzz_strs[i]);
    free(fuzz_strs);
    fuzz_strs = NULL;
    fuzz_nstrs = fuzz_capstrs = 0;
}

#endif
