/*
 * ops/matmul.c - matrix products on the tape: tg_matmul (2-D, batched,
 * batched with a shared right operand) and tg_linear (y = x W^T + b).
 *
 * Both are thin layers over the gemm kernel (ops/kernels/gemm.c), which reads
 * its operands through any strides: a transposed or sliced input is never
 * copied, and neither is anything in backward, where
 *     out = a @ b:   da += dout @ b^T,   db += a^T @ dout
 * are two more gemms with the strides of b (of a) swapped.
 */
#include "ops/elementwise.h"
#include "ops/kernels/gemm.h"
#include "ops/internal.h"
#include "ops/matmul.h"
#include "tensor/ds.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* What linear keeps in its tape entry's iarg (autograd/tape.h): x seen as
 * a matrix X [rows, in] read through two strides (matmul keeps nothing). */
enum {
    LIN_ROWS,    /* the rows R */
    LIN_RSTRIDE, /* the row stride of X */
    LIN_CSTRIDE  /* the column stride of X */
};

/* ==== matmul =========================================================== */

/* a [Bt, M, K] seen as one matrix [Bt * M, K]: its row stride, or -1 when
 * the batch and row axes do not collapse into one (a permuted view). */
static int64_t collapsed_row_stride(const tg_tensor *a)
{
    int64_t Bt = a->shape[0], M = a->shape[1];
    if (Bt == 1)
        return a->stride[1];
    if (M == 1)
        return a->stride[0];
    return a->stride[0] == M * a->stride[1] ? a->stride[1] : -1;
}

/* out = a @ b, 2-D or batched (a [Bt, M, K]; b [Bt, K, N] or shared
 * [K, N]). Gradients are contiguous: batch t of a->grad starts at t*M*K. */
static void matmul_bwd(tg_entry *e)
{
    tg_tensor *a = e->in[0], *b = e->in[1], *y = e->out;
    bool batched = a->ndim == 3, shared = batched && b->ndim == 2;
    int64_t Bt = batched ? a->shape[0] : 1;
    int64_t M = y->shape[y->ndim - 2], N = y->shape[y->ndim - 1];
    int64_t K = a->shape[a->ndim - 1];
    int ra = a->ndim - 2, rb = b->ndim - 2; /* row axis of a, of b */
    int64_t sa = batched ? a->stride[0] : 0;
    int64_t sb = batched && !shared ? b->stride[0] : 0;
    const tg_real *dy = y->grad;
    /* out = a @ b:  da += dy @ b^T  (b^T read through swapped strides) */
    if (a->grad)
        tg_gemm_batched(Bt, M, K, N, dy, M * N, N, 1, b->data, sb,
                        b->stride[rb + 1], b->stride[rb], a->grad, M * K, K,
                        1);
    /* out = a @ b:  db += a^T @ dy */
    if (!b->grad)
        return;
    if (!shared) {
        tg_gemm_batched(Bt, K, N, M, a->data, sa, a->stride[ra + 1],
                        a->stride[ra], dy, M * N, N, 1, b->grad, K * N, N, 1);
        return;
    }
    /* b was shared by the batches: db += sum over t of a_t^T @ dy_t. When
     * a's batches collapse into [Bt*M, K] rows that is ONE product whose
     * inner dimension is Bt*M; otherwise the batches are added one after
     * the other. Either way the order is fixed. */
    int64_t rs = collapsed_row_stride(a);
    if (rs >= 0) {
        tg_gemm(K, N, Bt * M, a->data, a->stride[2], rs, dy, N, 1, b->grad,
                N, 1);
        return;
    }
    for (int64_t t = 0; t < Bt; t++)
        tg_gemm(K, N, M, a->data + t * sa, a->stride[2], a->stride[1],
                dy + t * M * N, N, 1, b->grad, N, 1);
}

static tg_tensor *matmul_replay(const tg_entry *e, tg_tensor *const *in)
{
    (void)e;
    return tg_matmul(in[0], in[1]);
}
/* d(A B) = dA B + A dB */
static void matmul_jvp(tg_entry *e)
{
    tg_tensor *A = e->in[0], *B = e->in[1], *r = NULL;
    if (A->tangent)
        r = tg_matmul(tg_tangent_of(A), B);
    if (B->tangent) {
        tg_tensor *t = tg_matmul(A, tg_tangent_of(B));
        r = r ? tg_add(r, t) : t;
    }
    tg_set_out_tangent(e->out, r);
}
static const tg_op matmul_op = {"matmul", matmul_bwd, .replay = matmul_replay,
                                .jvp = matmul_jvp};

tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b)
{
    TG_OP_INPUTS("matmul", a, b);
    if (a->ndim < 2 || a->ndim > 3 || b->ndim < 2 || b->ndim > a->ndim) {
        tg_error("matmul", "a %s and b %s: expected a [M, K] @ b [K, N], "
                 "a [Bt, M, K] @ b [Bt, K, N] or a [Bt, M, K] @ b [K, N]%s",
                 SHP(a), SHP(b),
                 a->ndim < 2 || b->ndim < 2
                     ? " (make a vector a 1-row matrix with tg_unsqueeze)"
                     : "");
        return NULL;
    }
    bool batched = a->ndim == 3, shared = batched && b->ndim == 2;
    int ra = a->ndim - 2, rb = b->ndim - 2; /* row axis of a, of b */
    int64_t Bt = batched ? a->shape[0] : 1;
    int64_t M = a->shape[ra], K = a->shape[ra + 1], N = b->shape[rb + 1];
    if (b->shape[rb] != K) {
        tg_error("matmul", "a %s and b %s: inner sizes differ: a has %lld "
                 "columns, b has %lld rows (a's last size must equal b's "
                 "second-to-last; did you mean to transpose one?)",
                 SHP(a), SHP(b), (long long)K, (long long)b->shape[rb]);
        return NULL;
    }
    if (batched && !shared && b->shape[0] != Bt) {
        tg_error("matmul", "a %s and b %s: batch sizes differ (%lld vs "
                 "%lld)", SHP(a), SHP(b), (long long)Bt,
                 (long long)b->shape[0]);
        return NULL;
    }
    tg_tensor *out = batched ? tg_new_out(TG_SHAPE(Bt, M, N))
                             : tg_new_out(TG_SHAPE(M, N));
    int64_t sa = batched ? a->stride[0] : 0;
    int64_t sb = batched && !shared ? b->stride[0] : 0;
    int64_t rs = shared ? collapsed_row_stride(a) : -1;
    if (rs >= 0) /* [Bt, M, K] @ [K, N] is [Bt*M, K] @ [K, N] */
        tg_gemm(Bt * M, N, K, a->data, rs, a->stride[2], b->data, b->stride[0],
                b->stride[1], out->data, N, 0);
    else
        tg_gemm_batched(Bt, M, N, K, a->data, sa, a->stride[ra],
                        a->stride[ra + 1], b->data, sb, b->stride[rb],
                        b->stride[rb + 1], out->data, M * N, N, 0);
    tg_record(&matmul_op, out, 2, (tg_tensor *[]){a, b});
    return tg_op_result(out);
}

/* ==== linear ===========================================================
 * y = x W^T + b with x [..., in] seen as a matrix [rows, in]. The tape
 * entry keeps that matrix's strides (iarg) and, when x's leading axes do
 * not collapse into one (a permuted view), the contiguous copy that was
 * made of x (saved). */

/* The row stride of x seen as [rows, in]; false if no single stride
 * works. */
static bool rows_stride(const tg_tensor *x, int64_t *rs)
{
    bool found = false;
    int64_t span = 1;
    *rs = 0; /* one row: any stride will do */
    for (int d = x->ndim - 2; d >= 0; d--) {
        if (x->shape[d] == 1)
            continue;
        if (!found) {
            *rs = x->stride[d];
            span = x->shape[d];
            found = true;
        } else if (x->stride[d] == *rs * span) {
            span *= x->shape[d];
        } else {
            return false;
        }
    }
    return true;
}

/* db[o] += sum over r of dy[r][o] (dy [R, O] contiguous), r in order, for
 * the columns of block blk (COLSUM_BLOCK of them) */
#define COLSUM_BLOCK 64
static void colsum_block(tg_real *db, const tg_real *dy, int64_t R,
                         int64_t O, int64_t blk)
{
    int64_t o0 = blk * COLSUM_BLOCK, n = min64(COLSUM_BLOCK, O - o0);
    tg_real s[COLSUM_BLOCK] = {0};
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < n; o++)
            s[o] += dy[r * O + o0 + o];
    for (int64_t o = 0; o < n; o++)
        db[o0 + o] += s[o];
}

/* The bias gradient: blocks of columns shared among threads, each block's
 * sums written by one thread. (Small ones skip OpenMP altogether: even an
 * `omp parallel if (0)` costs about as much as a small linear layer.) */
static void colsum_add(tg_real *db, const tg_real *dy, int64_t R, int64_t O)
{
    int64_t nblk = cdiv(O, COLSUM_BLOCK);
    if (R * O < TG_PAR_MIN) {
        for (int64_t blk = 0; blk < nblk; blk++)
            colsum_block(db, dy, R, O, blk);
        return;
    }
    TG_OMP_FOR(R * O)
    for (int64_t blk = 0; blk < nblk; blk++) /* columns of block blk */
        colsum_block(db, dy, R, O, blk);
}

/* ---- prepared weights ------------------------------------------------
 * A recurrent layer multiplies by the same W at every time step, a few
 * rows (the batch) at a time. Three things are then worth doing once per
 * sequence rather than once per step, and tg_prepare_weight does them:
 *   - packing W^T for the gemm kernel (as costly as a small product);
 *   - packing W for backward's dx += dy W (made on first use);
 *   - the weight gradient: each step's dW += dy^T x has an inner
 *     dimension of only the batch size, mostly packing overhead. Up to
 *     DEFER_MAX_ROWS rows, each linear with a prepared W keeps its
 *     (dy, x) instead, and the prepare op's backward - which the reverse
 *     sweep reaches after every step that used W - makes ONE product of
 *     all of them: dW += [dy_1; dy_2; ...]^T [x_1; x_2; ...]. Same sum,
 *     a fixed order (set by the shapes alone, never by the threads).
 * The prepared tensor P is an ordinary op output with W's shape and
 * numbers; any op may use it, and its gradient flows back into W. Being
 * recorded, the packed copies cannot go stale: they belong to one
 * sequence and die with the tape (tg_tape_reset). */
#define DEFER_MAX_ROWS 64
/* ... as long as the terms kept take less than this (their rows of dy and
 * x; the product copies them once more): past it, the terms so far are
 * summed in one product and deferring starts again */
#define DEFER_MAX_BYTES (16 << 20)
/* below this many rows the gemm's dot path (which reads W as it is) beats
 * the packed kernel even with W^T packed already (measured; so sampling
 * one stream never packs) */
#define PREPACK_MIN_ROWS 8

typedef struct wpart {
    const tg_real *dy;    /* [R, O] */
    const tg_real *x;     /* [R, I] through rs, cs */
    int64_t R, rs, cs;
    struct wpart *next;
} wpart;

typedef struct tg_prepared tg_prepared;
struct tg_prepared {
    tg_tensor *src;       /* W */
    const tg_real *data;  /* W's numbers and layout when packed */
    int64_t O, I, rs, cs;
    tg_real *wt;          /* W^T [I, O], tg_gemm_pack_b layout, packed on
                             first use by a product of PREPACK_MIN_ROWS
                             rows or more */
    tg_real *w;           /* W [O, I], packed on first use by backward */
    wpart *parts;         /* deferred weight-gradient terms (arena) */
    int64_t rows;
};

/* the prepared copies of W, if W is a prepared tensor still laid out as
 * when it was packed (a view of it is not) */
static tg_prepared *prepared_of(const tg_tensor *W)
{
    tg_prepared *p = (tg_prepared *)W->prepared;
    if (!p || W->ndim != 2 || p->data != W->data || p->O != W->shape[0] ||
        p->I != W->shape[1] || p->rs != W->stride[0] || p->cs != W->stride[1])
        return NULL;
    return p;
}

/* dW += the deferred terms, in one product; none are left */
static void flush_parts(tg_tensor *W, tg_prepared *p)
{
    int64_t O = p->O, I = p->I;
    if (!p->parts)
        return;
    tg_arena_mark m = tg_arena_get_mark();
    tg_real *DY = tg_scratch(p->rows * O), *X = tg_scratch(p->rows * I);
    int64_t r0 = 0;
    for (const wpart *w = p->parts; w; w = w->next) {
        /* (strided copies: by all threads when large) */
        int64_t dshape[2] = {w->R, O}, ds[2] = {O, 1};
        tg_strided_copy(2, dshape, DY + r0 * O, ds, w->dy, ds, false);
        int64_t shape[2] = {w->R, I}, xs[2] = {w->rs, w->cs}, cs[2] = {I, 1};
        tg_strided_copy(2, shape, X + r0 * I, cs, w->x, xs, false);
        r0 += w->R;
    }
    /* dW += DY^T X: one product whose inner dimension is every row of
     * every step (DY^T read through swapped strides) */
    tg_gemm(O, I, p->rows, DY, 1, O, X, I, 1, W->grad, I, 1);
    tg_arena_rewind(m);
    p->parts = NULL;
    p->rows = 0;
}

/* P = W (shared numbers): dW += dP, and the deferred terms in one product */
static void prepare_bwd(tg_entry *e)
{
    tg_tensor *W = e->in[0], *P = e->out;
    tg_prepared *p = e->saved;
    if (!W->grad)
        return;
    int64_t n = W->numel;
    if (P->grad)
        for (int64_t i = 0; i < n; i++)
            W->grad[i] += P->grad[i];
    flush_parts(W, p);
}

static tg_tensor *prepare_replay(const tg_entry *e, tg_tensor *const *in)
{
    (void)e;
    return tg_prepare_weight(in[0]);
}

/* forward mode: P is W (packed copies aside) */
static void prepare_jvp(tg_entry *e)
{
    tg_set_out_tangent(e->out, tg_tangent_of(e->in[0]));
}

/* reads none of W's numbers: its rules pass dP and W's tangent on, and
 * the packed copies are read by the linear ops through P, which counts
 * W's changes (below) - so a change to W is refused naming the op that
 * reads it, as without the prepared weight */
const tg_op tg_prepare_op = {"prepare", prepare_bwd, .replay = prepare_replay,
                             .jvp = prepare_jvp, .reads = TG_READS_NONE};

tg_tensor *tg_prepare_weight(tg_tensor *W)
{
    TG_OP_INPUTS("prepare_weight", W);
    if (W->ndim != 2) {
        tg_error("prepare_weight", "W %s: expected a matrix [out, in]",
                 SHP(W));
        return NULL;
    }
    int64_t O = W->shape[0], I = W->shape[1];
    tg_prepared *p = tg_arena_alloc(sizeof *p);
    *p = (tg_prepared){W, W->data, O, I, W->stride[0], W->stride[1], NULL,
                       NULL, NULL, 0};
    tg_tensor *P = tg_tensor_header(2, W->shape);
    P->data = W->data;
    P->stride[0] = W->stride[0];
    P->stride[1] = W->stride[1];
    P->version = W->version; /* W's numbers: a change to W is P's too */
    if (W->name) { /* messages name it after W ("weight_hh'") */
        size_t n = strlen(W->name) + 2;
        char *name = tg_arena_alloc(n);
        snprintf(name, n, "%s'", W->name);
        P->name = name;
    }
    P->prepared = p;
    tg_entry *e = tg_record(&tg_prepare_op, P, 1, &W);
    if (e)
        e->saved = p;
    return tg_op_result(P);
}

/* ---- linear -------------------------------------------------------------
 * saved: X when it is a copy of x (else X is x->data). The rules of
 * y = x W^T + b, shared with linear_into (whose inputs start at 1). */
static void linear_grads(tg_entry *e, int first)
{
    tg_tensor *x = e->in[first], *W = e->in[first + 1], *y = e->out;
    tg_tensor *b = e->nin > first + 2 ? e->in[first + 2] : NULL;
    int64_t R = e->iarg[LIN_ROWS], O = W->shape[0], I = W->shape[1];
    const tg_real *dy = y->grad;
    const tg_real *X = e->saved ? e->saved : x->data;
    tg_prepared *p = prepared_of(W);
    /* y = x W^T + b:  db += dy summed over the rows */
    if (b && b->grad)
        colsum_add(b->grad, dy, R, O);
    /* y = x W^T + b:  dx += dy @ W  (dy [R, O], W [O, I]) */
    if (x->grad && p) {
        if (!p->w) {
            p->w = tg_arena_alloc((size_t)tg_gemm_packed_size(O, I) *
                                  sizeof(tg_real));
            tg_gemm_pack_b(O, I, W->data, W->stride[0], W->stride[1], p->w);
        }
        tg_gemm_prepacked(R, I, O, dy, O, 1, p->w, x->grad, I, 1);
    } else if (x->grad) {
        tg_gemm(R, I, O, dy, O, 1, W->data, W->stride[0], W->stride[1],
                x->grad, I, 1);
    }
    /* y = x W^T + b:  dW += dy^T @ x  (dy^T through swapped strides), now
     * or - a few rows, prepared W - in the prepare op's one product */
    if (!W->grad)
        return;
    if (p && R <= DEFER_MAX_ROWS) {
        wpart *w = tg_arena_alloc(sizeof *w);
        *w = (wpart){dy, X, R, e->iarg[LIN_RSTRIDE], e->iarg[LIN_CSTRIDE],
                     p->parts};
        if (y->flags & TG_RETAIN_GRAD) { /* the caller keeps dy: copy it */
            tg_real *c = tg_scratch(R * O);
            memcpy(c, dy, (size_t)(R * O) * sizeof(tg_real));
            w->dy = c;
        } else {
            y->grad = NULL; /* the sweep would reuse the buffer: keep it */
        }
        p->parts = w;
        p->rows += R;
        /* the kept terms and their copies stay under DEFER_MAX_BYTES */
        if ((double)p->rows * (double)(O + I) * sizeof(tg_real) >=
            DEFER_MAX_BYTES)
            flush_parts(W, p);
        return;
    }
    tg_gemm(O, I, R, dy, 1, O, X, e->iarg[LIN_RSTRIDE], e->iarg[LIN_CSTRIDE],
            W->grad, I, 1);
}

static void linear_bwd(tg_entry *e) { linear_grads(e, 0); }

static tg_tensor *linear_replay(const tg_entry *e, tg_tensor *const *in)
{
    return tg_linear(in[0], in[1], e->nin > 2 ? in[2] : NULL);
}

static tg_tensor *linear_replay_into(const tg_entry *e, tg_tensor *const *in,
                                     tg_tensor *acc)
{
    return tg_linear_into(acc, in[0], in[1], e->nin > 2 ? in[2] : NULL);
}

/* d(x W^T + b) = dx W^T + x dW^T + db */
static void linear_jvp(tg_entry *e)
{
    tg_tensor *x = e->in[0], *W = e->in[1], *b = e->nin > 2 ? e->in[2] : NULL;
    tg_tensor *r = NULL;
    if (x->tangent)
        r = tg_linear(tg_tangent_of(x), W, NULL);
    if (W->tangent) {
        tg_tensor *t = tg_linear(x, tg_tangent_of(W), NULL);
        r = r ? tg_add(r, t) : t;
    }
    if (b && b->tangent)
        r = tg_add(r ? r : tg_zeros(e->out->ndim, e->out->shape),
                   tg_tangent_of(b));
    tg_set_out_tangent(e->out, r);
}
static const tg_op linear_op = {"linear", linear_bwd, .replay = linear_replay,
                                .jvp = linear_jvp,
                                .replay_into = linear_replay_into,
                                .flags = TG_OP_WEIGHT1,
                                .reads = TG_READS_IN(0) | TG_READS_IN(1)};

/* y[o] = b[o] for one row y of O numbers (b strided: a contiguous b is
 * added by the product's kernel) */
static void bias_row(tg_real *y, const tg_tensor *b, int64_t O)
{
    for (int64_t o = 0; o < O; o++)
        y[o] = b->data[o * b->stride[0]];
}

/* y[o] += b[o] */
static void bias_row_add(tg_real *y, const tg_tensor *b, int64_t O)
{
    for (int64_t o = 0; o < O; o++)
        y[o] += b->data[o * b->stride[0]];
}

/* ---- weights kept packed between calls, without gradients -------------
 * Evaluation and sampling multiply by the same weights call after call,
 * a few rows at a time: sampling makes one token per call, so even a
 * prepared W (above) is packed again for every token - and packing W^T
 * costs about as much as a product of 32 rows. So in inference mode
 * (autograd/tape.h: the caller promises that W changes only through the
 * library or with tg_bump_version) a persistent weight (a parameter:
 * heap-owned, its header and numbers stay) keeps its packed W^T on itself
 * (tg_tensor.packed), made on first use by a product of PREPACK_MIN_ROWS
 * rows or more, checked at every use against W's numbers, layout and
 * version, packed again when they changed, and freed with W. It is a mode
 * the caller turns on, not every no-grad call: code that writes a weight's
 * numbers by hand (a gradient check's differences, an initialisation)
 * without tg_bump_version would read the old copy. Outside it a sequence
 * packs once (tg_prepare_weight), as in training.
 * Threads: several may evaluate one model at once; the first to need the
 * copy makes it under a lock and publishes it whole, and a copy is only
 * replaced when W changed - which no thread may do while another reads W. */
typedef struct kept_wt {
    const tg_real *data;
    int64_t O, I, rs, cs;
    uint32_t version;
    int64_t n;    /* numbers of wt */
    tg_real wt[]; /* W^T [I, O], tg_gemm_pack_b layout */
} kept_wt;

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static bool kept_fits(const kept_wt *k, const tg_tensor *W)
{
    return k && k->data == W->data && k->O == W->shape[0] &&
           k->I == W->shape[1] && k->rs == W->stride[0] &&
           k->cs == W->stride[1] && k->version == tg_version(W);
}

/* W^T packed, kept on W; NULL when W cannot keep one */
static const tg_real *kept_pack(tg_tensor *W)
{
    if (!(W->flags & TG_PERSISTENT) || W->ndim != 2)
        return NULL;
    kept_wt *k = __atomic_load_n((kept_wt **)&W->packed, __ATOMIC_ACQUIRE);
    if (kept_fits(k, W))
        return k->wt;
    pthread_mutex_lock(&kept_lock);
    k = W->packed;
    if (!kept_fits(k, W)) {
        int64_t O = W->shape[0], I = W->shape[1];
        int64_t n = tg_gemm_packed_size(I, O);
        kept_wt *nk = tg_xmalloc(sizeof *nk + (size_t)n * sizeof(tg_real));
        *nk = (kept_wt){W->data, O, I, W->stride[0], W->stride[1],
                        tg_version(W), n};
        /* W^T [I, O]: element (k, j) = W[j][k], W's strides swapped */
        tg_gemm_pack_b(I, O, W->data, W->stride[1], W->stride[0], nk->wt);
        __atomic_store_n((kept_wt **)&W->packed, nk, __ATOMIC_RELEASE);
        free(k);
        k = nk;
    }
    pthread_mutex_unlock(&kept_lock);
    return k->wt;
}

/* Checks shapes; the output shape into shape[], R rows. */
static bool linear_shapes(const char *op, const tg_tensor *x,
                          const tg_tensor *W, const tg_tensor *b,
                          int64_t *shape, int64_t *R)
{
    if (b && !tg_check_live(op, 1, &b)) /* (optional: not in TG_OP_INPUTS) */
        return false;
    if (W->ndim != 2 || x->ndim < 1 ||
        x->shape[x->ndim - 1] != (W->ndim == 2 ? W->shape[1] : -1)) {
        tg_error(op, "x %s and W %s: expected x [..., in] and W "
                 "[out, in] (PyTorch's layout: W has one row per output; "
                 "x's last size must equal W's second)", SHP(x), SHP(W));
        return false;
    }
    int64_t O = W->shape[0];
    if (b && (b->ndim != 1 || b->shape[0] != O)) {
        tg_error(op, "b %s does not fit W %s: expected b [%lld], one "
                 "number per output", SHP(b), SHP(W), (long long)O);
        return false;
    }
    *R = 1;
    for (int d = 0; d < x->ndim - 1; d++) {
        shape[d] = x->shape[d];
        *R *= x->shape[d];
    }
    shape[x->ndim - 1] = O;
    return true;
}

/* y (+)= [b] + x W^T over y's R rows of O (row-major), recording op.
 * Returns the entry (or NULL). */
static tg_entry *linear_kernel(const tg_op *op, tg_tensor *y, bool add,
                               tg_tensor *x, tg_tensor *W, tg_tensor *b,
                               int64_t R, int nin, tg_tensor *const *in)
{
    int64_t O = W->shape[0], I = W->shape[1];
    int nd = x->ndim;
    /* x as a matrix [R, I]: a view when possible, else a copy */
    const tg_real *X = x->data;
    tg_real *copy = NULL;
    int64_t rs, cs = x->stride[nd - 1];
    if (!rows_stride(x, &rs)) {
        copy = tg_scratch(R * I);
        tg_to_buffer(x, copy);
        X = copy;
        rs = I;
        cs = 1;
    }
    /* every row of y starts at (or gains) b: in the product's kernel when
     * b is contiguous (no pass of its own over y), else first */
    const tg_real *bias = b && b->stride[0] == 1 ? b->data : NULL;
    if (b && !bias) {
        if (R * O < TG_PAR_MIN) {
            for (int64_t r = 0; r < R; r++)
                add ? bias_row_add(y->data + r * O, b, O)
                    : bias_row(y->data + r * O, b, O);
        } else {
            TG_OMP_FOR(R * O)
            for (int64_t r = 0; r < R; r++) /* row r of y */
                add ? bias_row_add(y->data + r * O, b, O)
                    : bias_row(y->data + r * O, b, O);
        }
    }
    int acc = add || (b && !bias);
    /* y (+)= x W^T, with W^T read through W's swapped strides, or packed
     * once per sequence for a prepared W */
    tg_prepared *p = prepared_of(W);
    const tg_real *kept = NULL;
    if (R >= PREPACK_MIN_ROWS && tg_inference_mode() &&
        !tg_is_grad_enabled())
        kept = kept_pack(p ? p->src : W);
    if (kept) {
        tg_gemm_prepacked_bias(R, O, I, X, rs, cs, kept, bias, y->data, O,
                               acc);
    } else if (p && R >= PREPACK_MIN_ROWS) {
        if (!p->wt) {
            p->wt = tg_arena_alloc((size_t)tg_gemm_packed_size(I, O) *
                                   sizeof(tg_real));
            /* W^T [I, O]: element (k, j) = W[j][k], W's strides swapped */
            tg_gemm_pack_b(I, O, W->data, W->stride[1], W->stride[0], p->wt);
        }
        tg_gemm_prepacked_bias(R, O, I, X, rs, cs, p->wt, bias, y->data, O,
                               acc);
    } else
        tg_gemm_bias(R, O, I, X, rs, cs, W->data, W->stride[1], W->stride[0],
                     bias, y->data, O, acc);
    tg_entry *e = tg_record(op, y, nin, in);
    if (e) {
        e->iarg[LIN_ROWS] = R;
        e->iarg[LIN_RSTRIDE] = rs;
        e->iarg[LIN_CSTRIDE] = cs;
        e->saved = copy;
    }
    return e;
}

tg_tensor *tg_linear(tg_tensor *x, tg_tensor *W, tg_tensor *b)
{
    TG_OP_INPUTS("linear", x, W);
    int64_t shape[TG_MAX_DIMS], R;
    if (!linear_shapes("linear", x, W, b, shape, &R))
        return NULL;
    tg_tensor *y = tg_new_out(x->ndim, shape);
    linear_kernel(&linear_op, y, false, x, W, b, R, b ? 3 : 2,
                  (tg_tensor *[]){x, W, b});
    return tg_op_result(y);
}

/* ---- linear_into: acc + x W^T + b, in acc's numbers --------------------
 * Used by compiled steps (ops/fuse/fuse.c) for add(acc, linear(x, W, b)) when
 * the caller gave acc's numbers away (a layer's slice of its input
 * projection, which nothing reads again): no new buffer per step. */
static void linear_into_bwd(tg_entry *e)
{
    tg_tensor *acc = e->in[0], *y = e->out;
    /* y = acc + x W^T + b:  dacc += dy */
    if (acc->grad)
        for (int64_t i = 0; i < y->numel; i++)
            acc->grad[i] += y->grad[i];
    linear_grads(e, 1);
}

static tg_tensor *linear_into_replay(const tg_entry *e, tg_tensor *const *in)
{
    return tg_linear_into(in[0], in[1], in[2], e->nin > 3 ? in[3] : NULL);
}

/* forward mode: d(acc + x W^T + b) = dacc + dx W^T + x dW^T + db */
static void linear_into_jvp(tg_entry *e)
{
    tg_tensor *acc = e->in[0], *x = e->in[1], *W = e->in[2];
    tg_tensor *b = e->nin > 3 ? e->in[3] : NULL;
    tg_tensor *r = tg_tangent_of(acc);
    if (x->tangent)
        r = tg_add(r, tg_linear(tg_tangent_of(x), W, NULL));
    if (W->tangent)
        r = tg_add(r, tg_linear(x, tg_tangent_of(W), NULL));
    if (b && b->tangent)
        r = tg_add(r, tg_tangent_of(b));
    tg_set_out_tangent(e->out, r);
}

static const tg_op linear_into_op = {"linear_into", linear_into_bwd,
                                     .replay = linear_into_replay,
                                     .jvp = linear_into_jvp,
                                     .reads = TG_READS_IN(1) | TG_READS_IN(2)};

tg_tensor *tg_linear_into(tg_tensor *acc, tg_tensor *x, tg_tensor *W,
                          tg_tensor *b)
{
    TG_OP_INPUTS("linear_into", acc, x, W);
    int64_t shape[TG_MAX_DIMS], R;
    if (!linear_shapes("linear_into", x, W, b, shape, &R))
        return NULL;
    tg_tensor probe = *acc;
    probe.ndim = x->ndim;
    memcpy(probe.shape, shape, sizeof(int64_t) * (size_t)x->ndim);
    if (!tg_same_shape(acc, &probe) || !tg_is_contiguous(acc))
        return tg_add(acc, tg_linear(x, W, b));
    tg_tensor *y = tg_tensor_header(acc->ndim, acc->shape);
    y->data = acc->data;
    linear_kernel(&linear_into_op, y, true, x, W, b, R, b ? 4 : 3,
                  (tg_tensor *[]){acc, x, W, b});
    return tg_op_result(y);
}
