/*
 * autograd/inspect_internal.h - internal to the library: the walk shared
 * by the ways of seeing the tape (autograd/inspect.c, the DOT export;
 * autograd/explore.c, the page).
 */
#ifndef TG_INSPECT_INTERNAL_H
#define TG_INSPECT_INTERNAL_H

#include "autograd/tape.h"

/* Which entries lead to root (NULL: every entry): an array of
 * tg_tape_size() flags (free it), found by walking back from root's entry
 * and marking the inputs of every entry one of whose outputs is marked. */
bool *tg_inspect_path_(const tg_tensor *root);

#endif
