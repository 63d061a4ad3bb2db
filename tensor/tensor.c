/*
 * tensor/tensor.c - making, filling, reading, viewing and printing tensors.
 *
 * Nothing here records on the tape: these are the data-level operations
 * that ops/ builds its differentiable versions on.
 */
#include "tensor/tensor.h"
#include "tensor/arena.h"
#include "tensor/parallel.h"
#include "tensor/rng.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* the precision marker programs of this tg_real link to (tensor.h) */
const char TG_ABI_MARK = 1;

/* Ids: each thread numbers its headers from blocks it takes from one
 * process-wide counter, so that ids are unique in the process and count
 * up in every thread (tg_made_since) with no atomic operation per header. */
#define ID_BLOCK 4096u
static _Atomic uint32_t id_blocks = 1;
static _Thread_local uint32_t next_id, id_end;

uint32_t tg_next_id(void)
{
    if (next_id == id_end) {
        next_id = atomic_fetch_add_explicit(&id_blocks, ID_BLOCK,
                                            memory_order_relaxed);
        id_end = next_id + ID_BLOCK;
    }
    return next_id;
}

static inline uint32_t take_id(void)
{
    uint32_t id = next_id != id_end ? next_id : tg_next_id();
    next_id++;
    return id;
}

int64_t tg_contiguous_strides(int ndim, const int64_t *shape,
                              int64_t *stride)
{
    int64_t n = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = n;
        n *= shape[d];
    }
    return n;
}

static bool check_shape(const char *op, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        tg_error(op, "%d dimensions requested; tapegrad tensors have 0 to %d",
                 ndim, TG_MAX_DIMS);
        return false;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            tg_error(op, "size %lld in dimension %d is negative",
                     (long long)shape[d], d);
            return false;
        }
    return true;
}

static void init_header(tg_tensor *t, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->numel = tg_contiguous_strides(ndim, shape, t->stride);
    t->entry = -1;
    t->id = take_id();
    t->version = &t->version_own;
}

void tg_bump_version(tg_tensor *t)
{
    if (t && t->version)
        ++*t->version;
}

tg_tensor *tg_tensor_header(int ndim, const int64_t *shape)
{
    tg_tensor *t = tg_arena_alloc_header(sizeof *t);
    init_header(t, ndim, shape);
    t->gen = tg_arena_generation();
    return t;
}

static bool live(const char *op, const tg_tensor *t)
{
    return tg_check_live(op, 1, &t);
}

tg_tensor *tg_empty(int ndim, const int64_t *shape)
{
    if (!check_shape("empty", ndim, shape))
        return NULL;
    tg_tensor *t = tg_tensor_header(ndim, shape);
    t->data = tg_arena_alloc((size_t)t->numel * sizeof(tg_real));
    return t;
}

tg_tensor *tg_full(int ndim, const int64_t *shape, double value)
{
    tg_tensor *t = tg_empty(ndim, shape);
    if (t)
        tg_fill_(t, value);
    return t;
}

tg_tensor *tg_zeros(int ndim, const int64_t *shape)
{
    return tg_full(ndim, shape, 0.0);
}

tg_tensor *tg_ones(int ndim, const int64_t *shape)
{
    return tg_full(ndim, shape, 1.0);
}

tg_tensor *tg_scalar(double value) { return tg_full(0, NULL, value); }

tg_tensor *tg_arange(double start, double end, double step)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
        tg_error("arange", "start %g, end %g, step %g: the step must be "
                 "non-zero and all three finite", start, end, step);
        return NULL;
    }
    double count = ceil((end - start) / step);
    int64_t n = count > 0 ? (int64_t)count : 0;
    tg_tensor *t = tg_empty(1, &n);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = (tg_real)(start + (double)i * step);
    return t;
}

tg_tensor *tg_from_buffer(int ndim, const int64_t *shape, const tg_real *buf)
{
    tg_tensor *t = tg_empty(ndim, shape);
    if (t && t->numel)
        memcpy(t->data, buf, (size_t)t->numel * sizeof(tg_real));
    return t;
}

tg_tensor *tg_wrap_buffer(int ndim, const int64_t *shape, tg_real *buf)
{
    if (!check_shape("wrap_buffer", ndim, shape))
        return NULL;
    tg_tensor *t = tg_tensor_header(ndim, shape);
    t->data = buf;
    t->flags |= TG_IS_VIEW;
    return t;
}

tg_tensor *tg_rand(int ndim, const int64_t *shape, struct tg_rng *rng,
                   double lo, double hi)
{
    tg_tensor *t = tg_empty(ndim, shape);
    if (t)
        tg_fill_uniform_(t, rng, lo, hi);
    return t;
}

tg_tensor *tg_randn(int ndim, const int64_t *shape, struct tg_rng *rng,
                    double mean, double std)
{
    tg_tensor *t = tg_empty(ndim, shape);
    if (t)
        tg_fill_normal_(t, rng, mean, std);
    return t;
}

tg_tensor *tg_clone(const tg_tensor *t)
{
    if (!live("clone", t))
        return NULL;
    tg_tensor *c = tg_empty(t->ndim, t->shape);
    tg_to_buffer(t, c->data);
    return c;
}

tg_tensor *tg_tensor_new(int ndim, const int64_t *shape)
{
    if (!check_shape("tensor_new", ndim, shape))
        return NULL;
    tg_tensor *t = tg_xmalloc(sizeof *t);
    init_header(t, ndim, shape);
    t->data = tg_xcalloc_aligned((size_t)t->numel * sizeof(tg_real));
    t->flags = TG_PERSISTENT;
    return t;
}

/* process-wide: installed when the library loads (autograd/forward.c) */
static tg_tangent_free_hook tangent_free_hook;

void tg_set_tangent_free_hook(tg_tangent_free_hook fn)
{
    tangent_free_hook = fn;
}

void tg_tensor_free(tg_tensor *t)
{
    if (!t)
        return;
    TG_ASSERT(t->flags & TG_PERSISTENT);
    if (t->flags & TG_IN_BLOCK) {
        /* its numbers are a list's, which still holds it (nn/params.h) */
        char shape[96];
        tg_error("tensor_free", "tensor %s%s%st%u %s lives in a flattened "
                 "parameter block (tg_params_flatten) and the list that "
                 "holds the block still points at it: free that list first "
                 "(tg_params_free gives the tensors it does not own their "
                 "own memory back), then the tensor. Nothing was freed",
                 t->name ? "'" : "", t->name ? t->name : "",
                 t->name ? "' " : "", (unsigned)t->id,
                 tg_shape_str(t, shape, sizeof shape));
        return;
    }
    if (t->tangent && tangent_free_hook)
        tangent_free_hook(t); /* off autograd's list of leaves */
    free(t->tangent);
    free(t->packed);
    free(t->data);
    free(t->grad);
    free(t);
}

/* ---- element access -------------------------------------------------- */

static int64_t flat_offset(const tg_tensor *t, int64_t i)
{
    /* row-major index i -> memory offset, innermost dimension first */
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (i % n) * t->stride[d];
        i /= n;
    }
    return off;
}

double tg_flat_get(const tg_tensor *t, int64_t i)
{
    return t->data[flat_offset(t, i)];
}

static int64_t idx_offset(const tg_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        TG_ASSERT(idx[d] >= 0 && idx[d] < t->shape[d]);
        off += idx[d] * t->stride[d];
    }
    return off;
}

double tg_get(const tg_tensor *t, const int64_t *idx)
{
    return t->data[idx_offset(t, idx)];
}

void tg_set(tg_tensor *t, const int64_t *idx, double value)
{
    t->data[idx_offset(t, idx)] = (tg_real)value;
}

double tg_item(const tg_tensor *t)
{
    if (!live("item", t))
        return NAN;
    if (t->numel != 1) {
        char s[96];
        tg_error("item", "tensor of shape %s has %lld elements; item() needs "
                 "exactly one", tg_shape_str(t, s, sizeof s),
                 (long long)t->numel);
        return NAN;
    }
    return t->data[0];
}

bool tg_is_contiguous(const tg_tensor *t)
{
    int64_t n = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != n)
            return false;
        n *= t->shape[d];
    }
    return true;
}

bool tg_same_shape(const tg_tensor *a, const tg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

char *tg_dims_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, d ? ", %lld" : "%lld",
                              (long long)shape[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

char *tg_shape_str(const tg_tensor *t, char *buf, size_t cap)
{
    return tg_dims_str(t ? t->ndim : 0, t ? t->shape : NULL, buf, cap);
}

tg_tensor *tg_set_name(tg_tensor *t, const char *name)
{
    if (t)
        t->name = name;
    return t;
}

/* ---- strided copy: the one kernel behind copies and view gradients ---- */

/* Recursive over dimensions only (depth <= TG_MAX_DIMS), never over
 * elements. */
static void copy_rec(int d, int ndim, const int64_t *shape, tg_real *dst,
                     const int64_t *ds, const tg_real *src,
                     const int64_t *ss, bool acc)
{
    int64_t n = shape[d];
    if (d == ndim - 1) {
        int64_t a = ds[d], b = ss[d];
        if (acc)
            for (int64_t i = 0; i < n; i++)
                dst[i * a] += src[i * b];
        else if (a == 1 && b == 1)
            memcpy(dst, src, (size_t)n * sizeof *dst);
        else
            for (int64_t i = 0; i < n; i++)
                dst[i * a] = src[i * b];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        copy_rec(d + 1, ndim, shape, dst + i * ds[d], ds, src + i * ss[d], ss,
                 acc);
}

void tg_strided_copy(int ndim, const int64_t *shape, tg_real *dst,
                     const int64_t *dstride, const tg_real *src,
                     const int64_t *sstride, bool accumulate)
{
    if (ndim == 0) {
        if (accumulate)
            dst[0] += src[0];
        else
            dst[0] = src[0];
        return;
    }
    int64_t total = 1;
    for (int d = 0; d < ndim; d++)
        total *= shape[d];
    if (total == 0)
        return;
    if (ndim == 1) {
        copy_rec(0, 1, shape, dst, dstride, src, sstride, accumulate);
        return;
    }
    int64_t n0 = shape[0];
    if (dstride[0] == 0 || total < TG_PAR_MIN) {
        /* small, or a reduction into dst (unbroadcasting): one thread,
         * fixed order, no OpenMP region at all */
        copy_rec(0, ndim, shape, dst, dstride, src, sstride, accumulate);
        return;
    }
    /* each i writes the dst slab dst + i*dstride[0] alone */
    TG_OMP_FOR(total)
    for (int64_t i = 0; i < n0; i++)
        copy_rec(1, ndim, shape, dst + i * dstride[0], dstride,
                 src + i * sstride[0], sstride, accumulate);
}

void tg_to_buffer(const tg_tensor *t, tg_real *out)
{
    int64_t cs[TG_MAX_DIMS];
    tg_contiguous_strides(t->ndim, t->shape, cs);
    tg_strided_copy(t->ndim, t->shape, out, cs, t->data, t->stride, false);
}

int tg_copy_(tg_tensor *dst, const tg_tensor *src)
{
    if (!tg_check_live("copy_", 2, (const tg_tensor *[]){dst, src}))
        return -1;
    if (!tg_same_shape(dst, src)) {
        char a[96], b[96];
        tg_error("copy_", "destination %s and source %s differ in shape",
                 tg_shape_str(dst, a, sizeof a), tg_shape_str(src, b, sizeof b));
        return -1;
    }
    tg_strided_copy(dst->ndim, dst->shape, dst->data, dst->stride, src->data,
                    src->stride, false);
    tg_bump_version(dst);
    return 0;
}

/* ---- fills ------------------------------------------------------------ */

void tg_fill_(tg_tensor *t, double value)
{
    if (!live("fill_", t))
        return;
    tg_bump_version(t);
    tg_real v = (tg_real)value;
    if (tg_is_contiguous(t)) {
        for (int64_t i = 0; i < t->numel; i++)
            t->data[i] = v;
        return;
    }
    for (int64_t i = 0; i < t->numel; i++)
        t->data[flat_offset(t, i)] = v;
}

/* Random fills run in row-major order on one thread, so the numbers are
 * the same whatever the thread count or the strides. */
void tg_fill_uniform_(tg_tensor *t, struct tg_rng *rng, double lo, double hi)
{
    if (!live("fill_uniform_", t))
        return;
    tg_bump_version(t);
    for (int64_t i = 0; i < t->numel; i++)
        t->data[flat_offset(t, i)] =
            (tg_real)(lo + (hi - lo) * tg_rng_uniform(rng));
}

void tg_fill_normal_(tg_tensor *t, struct tg_rng *rng, double mean,
                     double std)
{
    if (!live("fill_normal_", t))
        return;
    tg_bump_version(t);
    for (int64_t i = 0; i < t->numel; i++)
        t->data[flat_offset(t, i)] =
            (tg_real)(mean + std * tg_rng_normal(rng));
}

/* ---- views ------------------------------------------------------------ */

int tg_norm_dim(const char *op, int dim, int ndim)
{
    int d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim) {
        tg_error(op, "dimension %d is out of range for a tensor with %d "
                 "dimensions (valid: %d to %d)", dim, ndim, -ndim, ndim - 1);
        return -1;
    }
    return d;
}

/* A new header over t's numbers: a temporary of this generation, whatever
 * t is (t is checked by the caller, which names the op) */
static tg_tensor *view_of(const tg_tensor *t)
{
    tg_tensor *v = tg_arena_alloc_header(sizeof *v);
    *v = *t;
    v->gen = tg_arena_generation();
    v->grad = NULL;
    v->tangent = NULL;
    v->flags = TG_IS_VIEW;
    v->entry = -1;
    v->name = NULL;
    v->prepared = NULL;
    v->packed = NULL;
    v->id = take_id();
    return v;
}

tg_tensor *tg_view_reshape(const tg_tensor *t, int ndim, const int64_t *shape)
{
    if (!live("reshape", t))
        return NULL;
    char a[96];
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        tg_error("reshape", "%d dimensions requested; at most %d", ndim,
                 TG_MAX_DIMS);
        return NULL;
    }
    int64_t s[TG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1) {
            if (infer >= 0) {
                tg_error("reshape", "only one size may be -1");
                return NULL;
            }
            infer = d;
        } else if (s[d] < 0) {
            tg_error("reshape", "size %lld in dimension %d is negative",
                     (long long)s[d], d);
            return NULL;
        } else {
            known *= s[d];
        }
    }
    if (infer >= 0)
        s[infer] = known ? t->numel / known : 0;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= s[d];
    if (n != t->numel || (infer >= 0 && known && t->numel % known)) {
        char b[96] = "[";
        for (int d = 0; d < ndim; d++)
            snprintf(b + strlen(b), sizeof b - strlen(b), d ? ", %lld" : "%lld",
                     (long long)shape[d]);
        strncat(b, "]", sizeof b - strlen(b) - 1);
        tg_error("reshape", "cannot reshape %s (%lld elements) to %s",
                 tg_shape_str(t, a, sizeof a), (long long)t->numel, b);
        return NULL;
    }
    if (!tg_is_contiguous(t)) {
        tg_error("reshape", "view of a non-contiguous tensor %s: use "
                 "tg_reshape (which copies) or tg_contiguous first",
                 tg_shape_str(t, a, sizeof a));
        return NULL;
    }
    tg_tensor *v = view_of(t);
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        v->shape[d] = s[d];
    tg_contiguous_strides(ndim, s, v->stride);
    return v;
}

tg_tensor *tg_view_permute(const tg_tensor *t, const int *perm)
{
    if (!live("permute", t))
        return NULL;
    bool seen[TG_MAX_DIMS] = {false};
    for (int d = 0; d < t->ndim; d++) {
        int p = perm[d];
        if (p < 0 || p >= t->ndim || seen[p]) {
            tg_error("permute", "the permutation is not one of 0..%d "
                     "(entry %d is %d)", t->ndim - 1, d, p);
            return NULL;
        }
        seen[p] = true;
    }
    tg_tensor *v = view_of(t);
    for (int d = 0; d < t->ndim; d++) {
        v->shape[d] = t->shape[perm[d]];
        v->stride[d] = t->stride[perm[d]];
    }
    return v;
}

tg_tensor *tg_view_transpose(const tg_tensor *t, int d0, int d1)
{
    if (!t)
        return NULL;
    int a = tg_norm_dim("transpose", d0, t->ndim);
    int b = a < 0 ? -1 : tg_norm_dim("transpose", d1, t->ndim);
    if (b < 0)
        return NULL;
    int perm[TG_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++)
        perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return tg_view_permute(t, perm);
}

void tg_slice_bounds(int64_t n, int64_t *start, int64_t *end)
{
    int64_t s = *start, e = *end;
    s = s < 0 ? (s < -n ? 0 : s + n) : (s > n ? n : s);
    e = e < 0 ? (e < -n ? 0 : e + n) : (e > n ? n : e);
    *start = s;
    *end = e < s ? s : e;
}

tg_tensor *tg_view_slice(const tg_tensor *t, int dim, int64_t start,
                         int64_t end, int64_t step)
{
    if (!live("slice", t))
        return NULL;
    int d = tg_norm_dim("slice", dim, t->ndim);
    if (d < 0)
        return NULL;
    int64_t n = t->shape[d];
    if (step < 1) {
        char a[96];
        tg_error("slice", "step %lld along dimension %d of %s must be "
                 "positive", (long long)step, d, tg_shape_str(t, a, sizeof a));
        return NULL;
    }
    tg_slice_bounds(n, &start, &end);
    tg_tensor *v = view_of(t);
    v->shape[d] = (end - start + step - 1) / step;
    v->stride[d] = t->stride[d] * step;
    v->data = t->data + start * t->stride[d];
    v->numel = 1;
    for (int k = 0; k < v->ndim; k++)
        v->numel *= v->shape[k];
    return v;
}

tg_tensor *tg_view_expand(const tg_tensor *t, int ndim, const int64_t *shape)
{
    if (!live("expand", t))
        return NULL;
    char a[96], b[160];
    const char *why = "only size-1 dimensions can grow";
    if (ndim < t->ndim || ndim > TG_MAX_DIMS) {
        why = ndim > TG_MAX_DIMS ? "too many dimensions"
                                 : "it has fewer dimensions";
        goto bad;
    }
    tg_tensor *v = view_of(t);
    v->ndim = ndim;
    v->numel = 1;
    for (int d = ndim - 1, s = t->ndim - 1; d >= 0; d--, s--) {
        int64_t src = s >= 0 ? t->shape[s] : 1;
        /* -1 keeps an existing dimension's size, as in PyTorch */
        int64_t to = shape[d] == -1 && s >= 0 ? src : shape[d];
        if (to < 0) {
            why = "sizes must be >= 0 (-1 only for an existing dimension)";
            goto bad;
        }
        if (src == to) {
            v->stride[d] = s >= 0 ? t->stride[s] : 0;
        } else if (src == 1) {
            v->stride[d] = 0;
        } else {
            goto bad;
        }
        v->shape[d] = to;
        v->numel *= to;
    }
    return v;
bad:;
    size_t k = (size_t)snprintf(b, sizeof b, "[");
    for (int d = 0; d < ndim && d < TG_MAX_DIMS + 2 && k < sizeof b; d++)
        k += (size_t)snprintf(b + k, sizeof b - k, d ? ", %lld" : "%lld",
                              (long long)shape[d]);
    if (k < sizeof b)
        snprintf(b + k, sizeof b - k, "]");
    tg_error("expand", "cannot expand %s to %s: %s",
             tg_shape_str(t, a, sizeof a), b, why);
    return NULL;
}

/* ---- printing -------------------------------------------------------- */

static void print_rec(FILE *f, const tg_tensor *t, int d, int64_t off,
                      int indent)
{
    const int64_t edge = 3;
    int64_t n = t->shape[d];
    bool elide = n > 2 * edge + 1;
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        if (elide && i == edge) {
            fprintf(f, d == t->ndim - 1 ? "..., " : "...,\n%*s", indent + 1,
                    "");
            i = n - edge - 1;
            continue;
        }
        if (d == t->ndim - 1)
            fprintf(f, "%10.4g", (double)t->data[off + i * t->stride[d]]);
        else
            print_rec(f, t, d + 1, off + i * t->stride[d], indent + 1);
        if (i < n - 1)
            fprintf(f, d == t->ndim - 1 ? ", " : ",\n%*s", indent + 1, "");
    }
    fputc(']', f);
}

void tg_fprint(FILE *f, const tg_tensor *t)
{
    char s[96];
    if (!t) {
        fprintf(f, "tensor(NULL)\n");
        return;
    }
    fprintf(f, "tensor%s%s%s %s\n", t->name ? " \"" : "",
            t->name ? t->name : "", t->name ? "\"" : "",
            tg_shape_str(t, s, sizeof s));
    if (t->ndim == 0)
        fprintf(f, "%g", (double)t->data[0]);
    else
        print_rec(f, t, 0, 0, 0);
    fputc('\n', f);
}

void tg_print(const tg_tensor *t) { tg_fprint(stdout, t); }

