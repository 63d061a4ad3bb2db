/*
 * ops/shape.h - reshaping, transposing, slicing, joining and splitting,
 * recorded on the tape.
 *
 * reshape (of a contiguous tensor), transpose, permute, slice, chunk and
 * split return *views*: new headers over the same numbers, no copy (their
 * backward adds the view's gradient into the right places of the input's
 * gradient). concat and stack copy, as they must. tg_contiguous copies
 * only if its input is not already contiguous.
 *
 * An LSTM splits its 4H pre-activations into four gates with tg_chunk:
 *
 *     tg_tensor *g[4];
 *     tg_chunk(pre, 4, -1, g);      // i, f, g, o: views of pre
 */
#ifndef TG_OPS_SHAPE_H
#define TG_OPS_SHAPE_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One size may be -1 (inferred). A view when x is contiguous, else a
 * copy. */
tg_tensor *tg_reshape(tg_tensor *x, int ndim, const int64_t *shape);
/* x with a size-1 axis inserted at dim / removed from dim. */
tg_tensor *tg_unsqueeze(tg_tensor *x, int dim);
tg_tensor *tg_squeeze(tg_tensor *x, int dim);
tg_tensor *tg_transpose(tg_tensor *x, int d0, int d1);
tg_tensor *tg_permute(tg_tensor *x, const int *perm);
/* Elements start, start + step, ... < end along dim, with Python's (and
 * PyTorch's) rules: negative start/end count from the end, both are then
 * clamped to [0, size], an empty range is no error. step >= 1. */
tg_tensor *tg_slice(tg_tensor *x, int dim, int64_t start, int64_t end,
                    int64_t step);
/* x[..., index, ...]: the slice at index along dim, with dim removed
 * (a view; negative index counts from the end). */
tg_tensor *tg_select(tg_tensor *x, int dim, int64_t index);
/* x seen at a larger shape (size-1 axes stretched; new leading axes);
 * backward sums over the stretched axes. */
tg_tensor *tg_expand(tg_tensor *x, int ndim, const int64_t *shape);
/* A contiguous version of x (x itself when it already is). */
tg_tensor *tg_contiguous(tg_tensor *x);
/* Joins n tensors along an existing axis (sizes may differ there only). */
tg_tensor *tg_concat(tg_tensor *const *xs, int n, int dim);
/* Joins n tensors of equal shape along a new axis dim. */
tg_tensor *tg_stack(tg_tensor *const *xs, int n, int dim);
/* Splits x along dim into `chunks` equal views written to out[0..];
 * the size along dim must divide evenly. Returns chunks, or -1 with every
 * out[0..chunks-1] set to NULL - after reporting an error, or quietly
 * when x is NULL (an earlier op failed), as an op returns NULL - so the
 * ops that use the outputs propagate the failure. */
int tg_chunk(tg_tensor *x, int chunks, int dim, tg_tensor **out);
/* Splits x along dim into n views of sizes[0..n-1] (summing to the size
 * along dim). Returns n, or -1 with out[0..n-1] NULL, as tg_chunk. */
int tg_split(tg_tensor *x, const int64_t *sizes, int n, int dim,
             tg_tensor **out);

#ifdef __cplusplus
}
#endif

#endif
