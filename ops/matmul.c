/*
 * ops/matmul.c - matrix products on the tape: tg_matmul (2-D, batched,
 * batched with a shared right operand) and tg_linear (y = x W^T + b).
 *
 * Both are thin layers over the gemm kernel (ops/gemm.c), which reads its
 * operands through any strides: a transposed or sliced input is never
 * copied, and neither is anything in backward, where
 *     out = a @ b:   da += dout @ b^T,   db += a^T @ dout
 * are two more gemms with the strides of b (of a) swapped.
 */
#include "ops/gemm.h"
#include "ops/internal.h"
#include "ops/matmul.h"
#include "tensor/ds.h"

#include <stdlib.h>
#include <string.h>

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

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
static const tg_op matmul_op = {"matmul", matmul_bwd, .replay = matmul_replay};

tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b)
{
    TG_PROPAGATE_NULL(a, b);
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
    return out;
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

/* ---- weight gradients of recurrent matrices, batched over time ---------
 * A recurrent layer applies the same W_hh at every time step to a few rows
 * (the batch), so each step's  dW += dy^T x  is a product whose inner
 * dimension is only the batch size - mostly packing overhead. Instead,
 * linear_bwd keeps those steps' dy (copied: its buffer is reused) and x
 * (still alive in the arena) and, at the end of the sweep, one product
 * over all of them:  dW += [dy_1; dy_2; ...]^T [x_1; x_2; ...]. Same sum,
 * in a fixed order, whatever the thread count. */
#define DEFER_MAX_ROWS 8

typedef struct wpart {
    tg_real *dy;       /* [R, O] copy */
    const tg_real *x;  /* [R, I] through rs, cs */
    int64_t R, rs, cs;
} wpart;

typedef struct wgrad {
    tg_tensor *key;    /* W */
    wpart *value;      /* stb_ds array */
} wgrad;

static wgrad *pending; /* stb_ds hash map W -> parts */

static void flush_weight_grads(void *ctx)
{
    (void)ctx;
    for (int64_t w = 0; w < hmlen(pending); w++) {
        tg_tensor *W = pending[w].key;
        wpart *parts = pending[w].value;
        int64_t O = W->shape[0], I = W->shape[1], rows = 0;
        for (int64_t k = 0; k < arrlen(parts); k++)
            rows += parts[k].R;
        tg_real *DY = tg_scratch(rows * O), *X = tg_scratch(rows * I);
        int64_t r0 = 0;
        for (int64_t k = 0; k < arrlen(parts); k++) {
            const wpart *p = &parts[k];
            memcpy(DY + r0 * O, p->dy, (size_t)(p->R * O) * sizeof(tg_real));
            int64_t shape[2] = {p->R, I}, xs[2] = {p->rs, p->cs}, cs[2] = {I, 1};
            tg_strided_copy(2, shape, X + r0 * I, cs, p->x, xs, false);
            r0 += p->R;
        }
        /* dW += DY^T X: one product with inner dimension rows */
        tg_gemm(O, I, rows, DY, 1, O, X, I, 1, W->grad, I, 1);
        arrfree(parts);
    }
    hmfree(pending);
    pending = NULL;
}

/* Keeps step (dy, x) for flush_weight_grads; false if W does not qualify
 * (a big batch: its own product is efficient already). */
static bool defer_weight_grad(tg_tensor *W, const tg_real *dy,
                              const tg_real *x, int64_t R, int64_t rs,
                              int64_t cs)
{
    if (R > DEFER_MAX_ROWS || W->entry >= 0)
        return false;
    if (hmlen(pending) == 0)
        tg_backward_defer(flush_weight_grads, NULL);
    wpart p = {tg_scratch(R * W->shape[0]), x, R, rs, cs};
    memcpy(p.dy, dy, (size_t)(R * W->shape[0]) * sizeof(tg_real));
    wgrad *slot = hmgetp_null(pending, W);
    if (!slot) {
        hmput(pending, W, NULL);
        slot = hmgetp_null(pending, W);
    }
    arrput(slot->value, p);
    return true;
}

/* iarg: [0] rows R, [1] row stride of X, [2] column stride of X;
 * saved: X when it is a copy of x (else X is x->data) */
static void linear_bwd(tg_entry *e)
{
    tg_tensor *x = e->in[0], *W = e->in[1], *y = e->out;
    tg_tensor *b = e->nin > 2 ? e->in[2] : NULL;
    int64_t R = e->iarg[0], O = W->shape[0], I = W->shape[1];
    const tg_real *dy = y->grad;
    const tg_real *X = e->saved ? e->saved : x->data;
    /* y = x W^T + b:  dx += dy @ W  (dy [R, O], W [O, I]) */
    if (x->grad)
        tg_gemm(R, I, O, dy, O, 1, W->data, W->stride[0], W->stride[1],
                x->grad, I, 1);
    /* y = x W^T + b:  dW += dy^T @ x  (dy^T through swapped strides),
     * now or - for a few rows - together with the other steps at the end */
    if (W->grad && !defer_weight_grad(W, dy, X, R, e->iarg[1], e->iarg[2]))
        tg_gemm(O, I, R, dy, 1, O, X, e->iarg[1], e->iarg[2], W->grad, I, 1);
    /* y = x W^T + b:  db += dy summed over the rows */
    if (b && b->grad)
        colsum_add(b->grad, dy, R, O);
}

/* ---- x W^T for a few rows: W^T packed once per forward ---------------
 * A recurrent layer computes h W_hh^T at every time step with the same
 * W_hh and only a few rows (the batch). Packing W^T for the gemm kernel
 * costs about as much as such a product, so the packed copy is kept (one
 * slot per weight, on the heap) and reused by the next steps, as long as
 * it provably still matches W: the slot remembers the tape entry of the
 * latest linear call with W, and is used again only while that entry is
 * still on the tape, unconsumed by backward, with the same W (same data
 * pointer, shape and strides). A tape reset or rewind drops the entry; an
 * optimizer step comes after a backward, which consumes it. What would go
 * unnoticed is changing W's numbers in place (not through a tensor op)
 * while that entry is on the tape and was not reached by a backward -
 * the gradient of such an entry would be wrong anyway (backward reads W's
 * current numbers). Products that use the slot give the same numbers as
 * packing W^T every time, so hits and misses never change a result. */
#define WT_MIN_ROWS 8
#define WT_MAX_ROWS 32
#define WT_SLOTS 8

typedef struct wt_slot {
    const tg_tensor *W;   /* NULL: free                                  */
    const tg_real *data;  /* W->data, shape and strides when packed      */
    int64_t O, I, rs, cs;
    int64_t entry;        /* tape index of the linear that packed it, -1 */
    tg_real *packed;      /* tg_gemm_pack_b layout of W^T [I, O]         */
    int64_t cap;          /* numbers packed can hold                     */
} wt_slot;

static wt_slot wt_slots[WT_SLOTS];
static int wt_victim; /* next slot to reuse when all are taken */

static void linear_bwd(tg_entry *e);
static tg_tensor *linear_replay(const tg_entry *e, tg_tensor *const *in)
{
    return tg_linear(in[0], in[1], e->nin > 2 ? in[2] : NULL);
}
static const tg_op linear_op = {"linear", linear_bwd, .replay = linear_replay};

static bool wt_fresh(const wt_slot *s, const tg_tensor *W)
{
    if (s->data != W->data || s->O != W->shape[0] || s->I != W->shape[1] ||
        s->rs != W->stride[0] || s->cs != W->stride[1] || s->entry < 0 ||
        s->entry >= tg_tape_size())
        return false;
    const tg_entry *e = tg_tape_entry(s->entry);
    return e->op == &linear_op && e->in[1] == W && !e->consumed;
}

/* W^T packed for tg_gemm_prepacked: the slot's copy if it is still W's,
 * else packed now. *slot_out: the slot, for wt_remember. */
static const tg_real *wt_packed(const tg_tensor *W, wt_slot **slot_out)
{
    wt_slot *s = NULL;
    for (int k = 0; k < WT_SLOTS && !s; k++)
        if (wt_slots[k].W == W)
            s = &wt_slots[k];
    for (int k = 0; k < WT_SLOTS && !s; k++)
        if (!wt_slots[k].W)
            s = &wt_slots[k];
    if (!s) {
        s = &wt_slots[wt_victim];
        wt_victim = (wt_victim + 1) % WT_SLOTS;
    }
    *slot_out = s;
    if (s->W == W && wt_fresh(s, W))
        return s->packed;
    int64_t O = W->shape[0], I = W->shape[1], n = tg_gemm_packed_size(I, O);
    if (n > s->cap) {
        free(s->packed);
        s->packed = tg_xcalloc_aligned((size_t)n * sizeof(tg_real));
        s->cap = n;
    }
    /* W^T [I, O]: element (k, j) = W[j][k], W's strides swapped */
    tg_gemm_pack_b(I, O, W->data, W->stride[1], W->stride[0], s->packed);
    *s = (wt_slot){W, W->data, O, I, W->stride[0], W->stride[1], -1,
                   s->packed, s->cap};
    return s->packed;
}

/* After the product: ties the slot to this call's entry, the latest
 * linear with W (so a backward that reaches only this one still retires
 * the slot). */
static void wt_remember(wt_slot *s, const tg_tensor *y)
{
    if (y->entry >= 0)
        s->entry = y->entry;
}

/* y[o] = b[o] for one row y of O numbers */
static void bias_row(tg_real *y, const tg_tensor *b, int64_t O)
{
    for (int64_t o = 0; o < O; o++)
        y[o] = b->data[o * b->stride[0]];
}

tg_tensor *tg_linear(tg_tensor *x, tg_tensor *W, tg_tensor *b)
{
    TG_PROPAGATE_NULL(x, W);
    if (W->ndim != 2 || x->ndim < 1 ||
        x->shape[x->ndim - 1] != (W->ndim == 2 ? W->shape[1] : -1)) {
        tg_error("linear", "x %s and W %s: expected x [..., in] and W "
                 "[out, in] (PyTorch's layout: W has one row per output; "
                 "x's last size must equal W's second)", SHP(x), SHP(W));
        return NULL;
    }
    int64_t O = W->shape[0], I = W->shape[1];
    if (b && (b->ndim != 1 || b->shape[0] != O)) {
        tg_error("linear", "b %s does not fit W %s: expected b [%lld], one "
                 "number per output", SHP(b), SHP(W), (long long)O);
        return NULL;
    }
    int nd = x->ndim;
    int64_t shape[TG_MAX_DIMS], R = 1;
    for (int d = 0; d < nd - 1; d++) {
        shape[d] = x->shape[d];
        R *= x->shape[d];
    }
    shape[nd - 1] = O;
    tg_tensor *y = tg_new_out(nd, shape);

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
    if (b) { /* start every row of y at b, then accumulate x W^T */
        if (R * O < TG_PAR_MIN) {
            for (int64_t r = 0; r < R; r++)
                bias_row(y->data + r * O, b, O);
        } else {
            TG_OMP_FOR(R * O)
            for (int64_t r = 0; r < R; r++) /* row r of y */
                bias_row(y->data + r * O, b, O);
        }
    }
    /* y = x W^T + b, with W^T read through W's swapped strides (for a
     * few rows and a parameter W, from the packed copy kept above) */
    wt_slot *slot = NULL;
    if (R >= WT_MIN_ROWS && R <= WT_MAX_ROWS && W->entry < 0)
        tg_gemm_prepacked(R, O, I, X, rs, cs, wt_packed(W, &slot), y->data,
                          O, b != NULL);
    else
        tg_gemm(R, O, I, X, rs, cs, W->data, W->stride[1], W->stride[0],
                y->data, O, b != NULL);
    tg_entry *e = tg_record(&linear_op, y, b ? 3 : 2,
                            (tg_tensor *[]){x, W, b});
    if (slot)
        wt_remember(slot, y);
    if (e) {
        e->iarg[0] = R;
        e->iarg[1] = rs;
        e->iarg[2] = cs;
        e->saved = copy;
    }
    return y;
}
