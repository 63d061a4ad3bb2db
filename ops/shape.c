/*
 * ops/shape.c - recorded reshapes, transposes, slices, joins and splits.
 *
 * Every op here except concat and stack is a *view*: its output shares the
 * input's numbers, so the forward pass costs a header. Their backward
 * rules are all the same one, view_bwd, which deserves a word.
 *
 * A view's element at index i sits at memory offset off + i . stride of
 * the input's numbers. The input's gradient, though, is a contiguous
 * buffer in the input's *logical* order (tape.h), whatever the input's
 * strides. So each view op also works out where its elements sit in a
 * contiguous copy of its input - the "gradient view": an offset and
 * strides into x->grad - and backward is one strided add:
 *
 *     dx[goff + i . gstride] += dy[i]      for every index i of the view
 *
 * For a transpose gstride is the permuted contiguous strides, for a slice
 * the contiguous strides times the step, for a reshape the contiguous
 * strides of the new shape, for an expand 0 along stretched axes (where
 * the add becomes a sum, which is exactly the gradient of a broadcast).
 * Views of views compose: each one's gradient view is relative to its own
 * input.
 */
#include "ops/shape.h"
#include "ops/internal.h"

#include <string.h>

/* What the ops keep in their tape entry's iarg (autograd/tape.h): a view
 * its gradient view, at TG_VIEW_OFF and TG_VIEW_STRIDE (ops/internal.h);
 * concat and stack these. */
enum {
    JOIN_DIM,  /* the joined dimension of the output */
    JOIN_STACK /* stack, not concat (for replay) */
};

/* ---- the one backward rule of every view ------------------------------ */

/* iarg[TG_VIEW_OFF] = goff, iarg[TG_VIEW_STRIDE + d] = gstride[d] (see the
 * comment above; ops/internal.h) */
static void view_bwd(tg_entry *e)
{
    /* forward: out = view of x (or a copy laid out like one) */
    tg_tensor *x = e->in[0], *y = e->out;
    if (!x->grad)
        return;
    int64_t ys[TG_MAX_DIMS];
    tg_contiguous_strides(y->ndim, y->shape, ys);
    tg_strided_copy(y->ndim, y->shape, x->grad + e->iarg[TG_VIEW_OFF],
                    &e->iarg[TG_VIEW_STRIDE], y->grad, ys, true);
}

/* Records out as a view of x with the given gradient view. */
static tg_tensor *record_view(const tg_op *op, tg_tensor *x, tg_tensor *out,
                              int64_t goff, const int64_t *gstride)
{
    if (!out)
        return NULL;
    out->flags &= ~TG_IS_VIEW; /* an op output, not a raw view */
    tg_entry *e = tg_record(op, out, 1, &x);
    if (e) {
        e->iarg[TG_VIEW_OFF] = goff;
        memcpy(&e->iarg[TG_VIEW_STRIDE], gstride,
               (size_t)out->ndim * sizeof(int64_t));
    }
    return tg_op_result(out);
}

/* Replaying a view (ops/fuse/fuse.c) on a new input: laid out like the
 * recorded one, the same header shifted to the new numbers; contiguous,
 * the gradient view itself (offset and strides into a contiguous copy of
 * the input are then offset and strides into the input). */
static tg_tensor *view_replay(const tg_entry *e, tg_tensor *const *in)
{
    const tg_tensor *y = e->out, *x = e->in[0];
    tg_tensor *out = tg_tensor_header(y->ndim, y->shape);
    out->version = in[0]->version; /* its numbers: one count of changes */
    bool same = x->ndim == in[0]->ndim;
    for (int d = 0; same && d < x->ndim; d++)
        same = x->shape[d] == in[0]->shape[d] &&
               (x->shape[d] == 1 || x->stride[d] == in[0]->stride[d]);
    if (same) {
        out->data = in[0]->data + (y->data - x->data);
        memcpy(out->stride, y->stride, sizeof out->stride);
    } else if (tg_is_contiguous(in[0])) {
        out->data = in[0]->data + e->iarg[TG_VIEW_OFF];
        memcpy(out->stride, &e->iarg[TG_VIEW_STRIDE],
               (size_t)y->ndim * sizeof(int64_t));
    } else {
        tg_error(e->op->name, "cannot replay this view on an input laid out "
                 "unlike the recorded one");
        return NULL;
    }
    return record_view(e->op, in[0], out, e->iarg[TG_VIEW_OFF],
                       &e->iarg[TG_VIEW_STRIDE]);
}

#define VIEW_OP(var, name)                                                 \
    static const tg_op var = {name, view_bwd, .replay = view_replay,       \
                              .jvp = tg_jvp_view, .flags = TG_OP_VIEW}
VIEW_OP(permute_op, "permute");
VIEW_OP(transpose_op, "transpose");
VIEW_OP(slice_op, "slice");
VIEW_OP(select_op, "select");
VIEW_OP(split_op, "split");
VIEW_OP(chunk_op, "chunk");
VIEW_OP(expand_op, "expand");

/* ---- reshape, squeeze, unsqueeze --------------------------------------
 * In a contiguous copy of x, the reshaped tensor's elements sit in the same
 * row-major order: the gradient view has the contiguous strides of the new
 * shape. A non-contiguous x is copied first (the copy is laid out the same
 * way, so the rule is the same). */
static tg_tensor *reshape_as(const tg_op *op, tg_tensor *x, int ndim,
                             const int64_t *shape);
/* a reshape of a strided x is a copy, not a view: replayed as itself */
static tg_tensor *reshape_replay(const tg_entry *e, tg_tensor *const *in)
{
    return reshape_as(e->op, in[0], e->out->ndim, e->out->shape);
}
#define RESHAPE_OP(var, name)                                              \
    static const tg_op var = {name, view_bwd, .replay = reshape_replay,    \
                              .jvp = tg_jvp_view, .flags = TG_OP_VIEW}
RESHAPE_OP(reshape_op, "reshape");
RESHAPE_OP(squeeze_op, "squeeze");
RESHAPE_OP(unsqueeze_op, "unsqueeze");

static tg_tensor *reshape_as(const tg_op *op, tg_tensor *x, int ndim,
                             const int64_t *shape)
{
    TG_OP_INPUTS(op->name, x);
    tg_tensor *src = x;
    if (!tg_is_contiguous(x))
        src = tg_clone(x); /* data copy, not recorded: x stays the input */
    tg_tensor *out = tg_view_reshape(src, ndim, shape);
    if (!out)
        return NULL;
    int64_t gs[TG_MAX_DIMS];
    tg_contiguous_strides(out->ndim, out->shape, gs);
    return record_view(op, x, out, 0, gs);
}

tg_tensor *tg_reshape(tg_tensor *x, int ndim, const int64_t *shape)
{
    return reshape_as(&reshape_op, x, ndim, shape);
}

tg_tensor *tg_unsqueeze(tg_tensor *x, int dim)
{
    TG_OP_INPUTS("unsqueeze", x);
    int d = tg_norm_dim("unsqueeze", dim, x->ndim + 1);
    if (d < 0)
        return NULL;
    if (x->ndim == TG_MAX_DIMS) {
        tg_error("unsqueeze", "%s already has the maximum of %d dimensions",
                 SHP(x), TG_MAX_DIMS);
        return NULL;
    }
    int64_t s[TG_MAX_DIMS];
    for (int k = 0, j = 0; k <= x->ndim; k++)
        s[k] = k == d ? 1 : x->shape[j++];
    return reshape_as(&unsqueeze_op, x, x->ndim + 1, s);
}

tg_tensor *tg_squeeze(tg_tensor *x, int dim)
{
    TG_OP_INPUTS("squeeze", x);
    int d = tg_norm_dim("squeeze", dim, x->ndim);
    if (d < 0)
        return NULL;
    if (x->shape[d] != 1) {
        tg_error("squeeze", "dimension %d of %s has size %lld, not 1", dim,
                 SHP(x), (long long)x->shape[d]);
        return NULL;
    }
    int64_t s[TG_MAX_DIMS];
    for (int k = 0, j = 0; k < x->ndim; k++)
        if (k != d)
            s[j++] = x->shape[k];
    return reshape_as(&squeeze_op, x, x->ndim - 1, s);
}

/* ---- permute, transpose -------------------------------------------- */

tg_tensor *tg_permute(tg_tensor *x, const int *perm)
{
    TG_OP_INPUTS("permute", x);
    tg_tensor *out = tg_view_permute(x, perm);
    if (!out)
        return NULL;
    int64_t cs[TG_MAX_DIMS], gs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, cs);
    for (int d = 0; d < x->ndim; d++)
        gs[d] = cs[perm[d]];
    return record_view(&permute_op, x, out, 0, gs);
}

tg_tensor *tg_transpose(tg_tensor *x, int d0, int d1)
{
    TG_OP_INPUTS("transpose", x);
    int a = tg_norm_dim("transpose", d0, x->ndim);
    int b = a < 0 ? -1 : tg_norm_dim("transpose", d1, x->ndim);
    if (b < 0)
        return NULL;
    int perm[TG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    tg_tensor *out = tg_permute(x, perm);
    if (out && out->entry >= 0)
        tg_tape_entry(out->entry)->op = &transpose_op;
    return out;
}

/* ---- slice, chunk, split ---------------------------------------------- */

tg_tensor *tg_slice(tg_tensor *x, int dim, int64_t start, int64_t end,
                    int64_t step)
{
    TG_OP_INPUTS("slice", x);
    tg_tensor *out = tg_view_slice(x, dim, start, end, step);
    if (!out)
        return NULL;
    /* the same bounds tg_view_slice used (it has validated dim) */
    int d = dim < 0 ? dim + x->ndim : dim;
    tg_slice_bounds(x->shape[d], &start, &end);
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, cs);
    int64_t goff = start * cs[d];
    cs[d] *= step;
    return record_view(&slice_op, x, out, goff, cs);
}

tg_tensor *tg_select(tg_tensor *x, int dim, int64_t index)
{
    TG_OP_INPUTS("select", x);
    int d = tg_norm_dim("select", dim, x->ndim);
    if (d < 0)
        return NULL;
    int64_t n = x->shape[d];
    if (index < -n || index >= n) {
        tg_error("select", "index %lld is out of range for dimension %d of %s",
                 (long long)index, d, SHP(x));
        return NULL;
    }
    if (index < 0)
        index += n;
    /* the size-1 slice, then that axis dropped from shape and strides */
    tg_tensor *out = tg_view_slice(x, d, index, index + 1, 1);
    int64_t cs[TG_MAX_DIMS], gs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, cs);
    for (int k = d; k < x->ndim - 1; k++) {
        out->shape[k] = out->shape[k + 1];
        out->stride[k] = out->stride[k + 1];
    }
    out->ndim--;
    for (int k = 0, j = 0; k < x->ndim; k++)
        if (k != d)
            gs[j++] = cs[k];
    return record_view(&select_op, x, out, index * cs[d], gs);
}

/* On any failure every out[k] is NULL, so that code using the outputs
 * (an LSTM's gates) propagates the failure like any op given NULL. */
static int split_failed(tg_tensor **out, int n)
{
    for (int k = 0; out && k < n; k++)
        out[k] = NULL;
    return -1;
}

int tg_split(tg_tensor *x, const int64_t *sizes, int n, int dim,
             tg_tensor **out)
{
    split_failed(out, n); /* also what a NULL x (an earlier error) leaves */
    if (!out || (n > 0 && !sizes)) {
        tg_error("split", "the %s array is NULL", out ? "sizes" : "output");
        return -1;
    }
    if (!tg_check_live("split", 1, (const tg_tensor *[]){x}))
        return -1;
    int d = tg_norm_dim("split", dim, x->ndim);
    if (d < 0)
        return -1;
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 0) {
            tg_error("split", "size %d is negative (%lld)", k,
                     (long long)sizes[k]);
            return -1;
        }
        total += sizes[k];
    }
    if (n < 1 || total != x->shape[d]) {
        tg_error("split", "%d sizes summing to %lld cannot split dimension %d "
                 "of %s (size %lld)", n, (long long)total, d, SHP(x),
                 (long long)x->shape[d]);
        return -1;
    }
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        out[k] = tg_slice(x, d, at, at + sizes[k], 1);
        if (!out[k]) /* (anomaly mode: x holds a NaN) */
            return split_failed(out, n);
        if (out[k]->entry >= 0)
            tg_tape_entry(out[k]->entry)->op = &split_op;
        at += sizes[k];
    }
    return n;
}

int tg_chunk(tg_tensor *x, int chunks, int dim, tg_tensor **out)
{
    split_failed(out, chunks);
    if (!out) {
        tg_error("chunk", "the output array is NULL");
        return -1;
    }
    if (!tg_check_live("chunk", 1, (const tg_tensor *[]){x}))
        return -1;
    int d = tg_norm_dim("chunk", dim, x->ndim);
    if (d < 0)
        return -1;
    if (chunks < 1 || x->shape[d] % chunks) {
        tg_error("chunk", "dimension %d of %s (size %lld) does not split into "
                 "%d equal chunks", d, SHP(x), (long long)x->shape[d], chunks);
        return -1;
    }
    int64_t sizes[64];
    if (chunks > 64) {
        tg_error("chunk", "at most 64 chunks (asked for %d); use tg_split",
                 chunks);
        return -1;
    }
    for (int k = 0; k < chunks; k++)
        sizes[k] = x->shape[d] / chunks;
    int rc = tg_split(x, sizes, chunks, d, out);
    for (int k = 0; rc > 0 && k < chunks; k++)
        if (out[k]->entry >= 0)
            tg_tape_entry(out[k]->entry)->op = &chunk_op;
    return rc;
}

/* ---- expand ------------------------------------------------------------ */

tg_tensor *tg_expand(tg_tensor *x, int ndim, const int64_t *shape)
{
    TG_OP_INPUTS("expand", x);
    tg_tensor *out = tg_view_expand(x, ndim, shape);
    if (!out)
        return NULL;
    /* stride 0 where stretched: backward sums over those axes */
    int64_t cs[TG_MAX_DIMS], gs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, cs);
    for (int d = ndim - 1, s = x->ndim - 1; d >= 0; d--, s--)
        gs[d] = (s >= 0 && x->shape[s] == out->shape[d]) ? cs[s] : 0;
    return record_view(&expand_op, x, out, 0, gs);
}

/* ---- contiguous ------------------------------------------------------- */

static tg_tensor *contiguous_replay(const tg_entry *e, tg_tensor *const *in)
{
    (void)e;
    return tg_contiguous(in[0]);
}
static const tg_op contiguous_op = {"contiguous", view_bwd,
                                    .replay = contiguous_replay,
                                    .jvp = tg_jvp_view, .flags = TG_OP_VIEW};

tg_tensor *tg_contiguous(tg_tensor *x)
{
    TG_OP_INPUTS("contiguous", x);
    if (tg_is_contiguous(x))
        return x;
    tg_tensor *out = tg_clone(x);
    int64_t gs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, gs);
    return record_view(&contiguous_op, x, out, 0, gs);
}

/* ---- alias: a tensor of its own (ops/internal.h, tg_alias_op) ---------
 * x again, recorded with the identity gradient view: backward adds dy
 * into dx. A contiguous x is copied, so that the result has numbers of
 * its own as a freshly computed tensor would; a strided one (a view of a
 * parameter) gets a new header over the same numbers, its layout kept.
 * Only replayed: compiled steps insert it (ops/fuse/fuse_plan.c). */
static tg_tensor *alias_replay(const tg_entry *e, tg_tensor *const *in)
{
    tg_tensor *x = in[0];
    int64_t gs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, gs);
    if (tg_is_contiguous(x))
        return record_view(e->op, x, tg_clone(x), 0, gs);
    tg_tensor *out = tg_tensor_header(x->ndim, x->shape);
    out->data = x->data;
    memcpy(out->stride, x->stride, sizeof out->stride);
    out->version = x->version; /* its numbers: one count of changes */
    return record_view(e->op, x, out, 0, gs);
}
const tg_op tg_alias_op = {"alias", view_bwd, .replay = alias_replay,
                           .jvp = tg_jvp_view, .reads = TG_READS_NONE};

/* ---- concat, stack ----------------------------------------------------
 * Input k fills the slab [at_k, at_k + len_k) of the output along dim (for
 * stack: index k of the new axis, len 1). Backward adds the same slab of
 * dy into each input's gradient. saved is the array of slab starts. */

static void join_bwd(tg_entry *e)
{
    /* forward: out[..., at_k : at_k + len_k, ...] = x_k */
    tg_tensor *y = e->out;
    int d = (int)e->iarg[JOIN_DIM];
    const int64_t *at = e->saved;
    int64_t ys[TG_MAX_DIMS], shape[TG_MAX_DIMS], xs[TG_MAX_DIMS];
    tg_contiguous_strides(y->ndim, y->shape, ys);
    for (int k = 0; k < e->nin; k++) {
        tg_tensor *x = e->in[k];
        if (!x->grad)
            continue;
        memcpy(shape, y->shape, sizeof shape);
        shape[d] = at[k + 1] - at[k];
        tg_contiguous_strides(y->ndim, shape, xs);
        tg_strided_copy(y->ndim, shape, x->grad, xs, y->grad + at[k] * ys[d],
                        ys, true);
    }
}

static tg_tensor *join_replay(const tg_entry *e, tg_tensor *const *in);
static const tg_op concat_op = {"concat", join_bwd, .replay = join_replay,
                                .jvp = tg_jvp_linear_op,
                                .reads = TG_READS_NONE};
static const tg_op stack_op = {"stack", join_bwd, .replay = join_replay,
                               .jvp = tg_jvp_linear_op,
                               .reads = TG_READS_NONE};

static tg_tensor *join(const tg_op *desc, tg_tensor *const *xs, int n, int dim,
                       bool stack)
{
    const char *op = desc->name;
    if (n < 1 || !xs) {
        tg_error(op, "needs at least one tensor (got %d)", n);
        return NULL;
    }
    if (!tg_check_live(op, n, (const tg_tensor *const *)xs))
        return NULL;
    const tg_tensor *x0 = xs[0];
    int ndim = x0->ndim + (stack ? 1 : 0);
    if (ndim > TG_MAX_DIMS) {
        tg_error(op, "the result would have %d dimensions; at most %d", ndim,
                 TG_MAX_DIMS);
        return NULL;
    }
    int d = tg_norm_dim(op, dim, stack ? ndim : (x0->ndim ? x0->ndim : 0));
    if (d < 0)
        return NULL;
    /* output shape; every input must match x0 except along dim (concat) */
    int64_t shape[TG_MAX_DIMS];
    int64_t *at = tg_arena_alloc((size_t)(n + 1) * sizeof *at);
    at[0] = 0;
    for (int k = 0; k < n; k++) {
        const tg_tensor *x = xs[k];
        bool ok = x->ndim == x0->ndim;
        for (int j = 0; ok && j < x0->ndim; j++)
            if (x->shape[j] != x0->shape[j] && (stack || j != d))
                ok = false;
        if (!ok) {
            tg_error(op, "tensor %d has shape %s but tensor 0 has %s; they "
                     "must be equal%s", k, SHP(x), SHP(x0),
                     stack ? "" : " except along the joined dimension");
            return NULL;
        }
        at[k + 1] = at[k] + (stack ? 1 : x->shape[d]);
    }
    for (int j = 0, s = 0; j < ndim; j++) {
        if (stack && j == d) {
            shape[j] = n; /* the new axis */
        } else {
            shape[j] = j == d ? at[n] : x0->shape[s];
            s++;
        }
    }
    tg_tensor *out = tg_new_out(ndim, shape);
    /* copy input k into its slab: a view of out at x's shape (with the
     * size-1 axis of stack) */
    for (int k = 0; k < n; k++) {
        const tg_tensor *x = xs[k];
        int64_t sub[TG_MAX_DIMS], xst[TG_MAX_DIMS];
        for (int j = 0, s = 0; j < ndim; j++) {
            if (stack && j == d) {
                sub[j] = 1;
                xst[j] = 0;
            } else {
                sub[j] = x->shape[s];
                xst[j] = x->stride[s];
                s++;
            }
        }
        tg_strided_copy(ndim, sub, out->data + at[k] * out->stride[d],
                        out->stride, x->data, xst, false);
    }
    tg_entry *e = tg_record(desc, out, n, xs);
    if (e) {
        e->iarg[JOIN_DIM] = d;
        e->iarg[JOIN_STACK] = stack;
        e->saved = at;
    }
    return tg_op_result(out);
}

tg_tensor *tg_concat(tg_tensor *const *xs, int n, int dim)
{
    return join(&concat_op, xs, n, dim, false);
}

tg_tensor *tg_stack(tg_tensor *const *xs, int n, int dim)
{
    return join(&stack_op, xs, n, dim, true);
}

static tg_tensor *join_replay(const tg_entry *e, tg_tensor *const *in)
{
    return join(e->op, in, e->nin, (int)e->iarg[JOIN_DIM],
                e->iarg[JOIN_STACK] != 0);
}
