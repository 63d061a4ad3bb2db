/*
 * nn/dist_grads.c - summing the gradients of G blocks over N ranks (see
 * nn/dist.h): the tree (the default), the ordered chain and the ring.
 *
 * Rank r of N holds local blocks 0..m-1 (m = G / N): kept[0..m-2], copies
 * of the gradients of its earlier blocks, then the live gradient for the
 * last. Each step's sum is cut into buckets (ranges of the gradient
 * block), started by the grad-ready hook during the last local backward
 * and driven by progress(), which the hook also calls; tg_dist_grads_end
 * waits for what is left. Every addition is element by element, so the
 * bits of an element depend only on the shape of the sum that made it.
 *
 * The tree. The sum over the G blocks is one fixed binary tree: the sum
 * of blocks [a, a + n) is (the sum of the first ceil(n / 2)) + (the sum
 * of the rest), down to single blocks - tree_sum(), the only definition,
 * used by one process for its G blocks and by every rank for its run of
 * m. When N is a power of two dividing G, rank r's run [r m, (r + 1) m)
 * is a subtree, and so is every aligned group of 2, 4, ... ranks' runs;
 * the levels above the runs are then summed across the ranks
 * (Rabenseifner's all-reduce), per bucket:
 *
 *   local:   w = tree_sum of the m local blocks (in place)
 *   halving: for i = 0 .. log2 N - 1, with the partner r ^ 2^i: cut the
 *            part of the bucket held so far in two, keep the lower half
 *            if bit i of r is 0 (else the upper), send the other half of
 *            w, receive the partner's w of the kept half and add it. The
 *            kept part then holds the sum of the aligned group of 2^(i+1)
 *            ranks: (lower group) + (upper group), as in the tree.
 *   scale:   grad = w * scale on the part held after the last halving
 *            (1 / N of the bucket, complete: every rank's blocks)
 *   doubling: for i = log2 N - 1 .. 0, with the same partners: send the
 *            part held, receive the partner's into grad.
 *
 * Each rank sends 2 (N - 1) / N of the bucket, in 2 log2 N messages.
 * (IEEE addition is commutative, a + b == b + a to the bit, so which
 * partner's half comes first does not matter - only the tree's shape.)
 *
 * The chain (bitwise for every N dividing G, not only powers of two):
 *
 *   r == 0:  acc = kept[0] (+ kept[1] ... + grad)     -> send to 1
 *   r  > 0:  acc = ((prefix + kept[0]) + ...) + grad  -> send to r + 1
 *   r == N-1: total = acc * scale, into grad          -> send to r - 1
 *   r < N-1: receive total into grad from r + 1       -> send to r - 1
 *
 * The ring: w = the local tree sum, then MPI_Iallreduce: whatever order
 * the MPI library chooses for N ranks, so not the same bits for other N.
 */
#include "nn/dist_internal.h"

#include "autograd/tape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a bucket's state in a step: SENT is "in flight" for every scheme */
enum { B_WAIT, B_READY, B_SENT, B_DONE };

struct tg_dist_grads {
    tg_params *ps;
    tg_dist_reduce how; /* as used: the tree falls back to the chain */
    int blocks, local, rank, size;
    int levels;         /* the tree: log2(size) */
    tg_real scale;
    int64_t n;          /* numbers in the block */
    tg_real **kept;     /* local - 1 earlier blocks' gradients */
    tg_real **blk;      /* kept[0..local-2], then the live gradient */
    tg_real *acc, *pre; /* the chain: running sum sent on; prefix received
                           (the tree: the partner's halves) */
    int nb;             /* buckets */
    int64_t bucket;     /* numbers per bucket (the last may be shorter) */
    int *left, *left0;  /* tensors still unfinished per bucket */
    int *state;
    int *phase;         /* the tree: the exchange a bucket is in */
    int ring_next;      /* the ring: the next bucket to start */
    int k;              /* current local block, -1 outside begin..end */
#ifdef TG_HAVE_MPI
    MPI_Request *req;   /* 4 per bucket, in the four arrays below */
    MPI_Request *r_pre, *r_fwd, *r_tot, *r_back;
#endif
    double t_first, wait_s, overlap_s, bytes;
    int steps;
    bool failed;
};

const char *tg_dist_reduce_name(tg_dist_reduce how)
{
    return how == TG_DIST_TREE    ? "tree"
           : how == TG_DIST_CHAIN ? "chain"
           : how == TG_DIST_RING  ? "ring"
                                  : "?";
}

bool tg_dist_tree_fits(int ranks)
{
    return ranks >= 1 && (ranks & (ranks - 1)) == 0;
}

static int64_t lo_of(const tg_dist_grads *g, int b) { return b * g->bucket; }
static int64_t hi_of(const tg_dist_grads *g, int b)
{
    int64_t h = (b + 1) * g->bucket;
    return h < g->n ? h : g->n;
}

/* The sum of n blocks x[0..n-1] over numbers lo..hi-1 along the tree:
 * (the first ceil(n / 2)) + (the rest), each summed the same way; left
 * in x[0], the other blocks overwritten. The one definition of the tree
 * (see the top of this file). */
static void tree_sum(tg_real *const *x, int n, int64_t lo, int64_t hi)
{
    if (n < 2)
        return;
    int h = (n + 1) / 2;
    tree_sum(x, h, lo, hi);
    tree_sum(x + h, n - h, lo, hi);
    tg_real *a = x[0];
    const tg_real *b = x[h];
    for (int64_t i = lo; i < hi; i++)
        a[i] = a[i] + b[i];
}

/* the chain: the sum of bucket b once this rank's part is final and the
 * prefix (on ranks after 0) has arrived */
static void add_local(tg_dist_grads *g, int b)
{
    int64_t lo = lo_of(g, b), hi = hi_of(g, b);
    tg_real *grad = g->ps->block_grad;
    tg_real *acc = g->acc;
    for (int j = 0; j < g->local; j++) {
        const tg_real *x = g->blk[j];
        if (j == 0 && g->rank == 0)
            memcpy(acc + lo, x + lo, (size_t)(hi - lo) * sizeof *acc);
        else {
            const tg_real *y = j == 0 ? g->pre : acc;
            for (int64_t i = lo; i < hi; i++)
                acc[i] = y[i] + x[i];
        }
    }
    if (g->rank == g->size - 1) /* the total: scaled, into every rank's grad */
        for (int64_t i = lo; i < hi; i++)
            grad[i] = acc[i] * g->scale;
}

static void scale_into(tg_dist_grads *g, const tg_real *w, int64_t lo,
                       int64_t hi)
{
    tg_real *grad = g->ps->block_grad;
    for (int64_t i = lo; i < hi; i++)
        grad[i] = w[i] * g->scale;
}

#ifdef TG_HAVE_MPI
static int send_range(tg_dist_grads *g, const tg_real *buf, int64_t lo,
                      int64_t hi, int to, int tag, MPI_Request *req)
{
    g->bytes += (double)(hi - lo) * (double)sizeof(tg_real);
    return tg_dist_mpi_check(MPI_Isend(buf + lo, (int)(hi - lo), TG_MPI_REAL,
                                       to, tag, MPI_COMM_WORLD, req),
                             "MPI_Isend");
}

static int recv_range(tg_real *buf, int64_t lo, int64_t hi, int from, int tag,
                      MPI_Request *req)
{
    return tg_dist_mpi_check(MPI_Irecv(buf + lo, (int)(hi - lo), TG_MPI_REAL,
                                       from, tag, MPI_COMM_WORLD, req),
                             "MPI_Irecv");
}

static int send_bucket(tg_dist_grads *g, const tg_real *buf, int b, int to,
                       MPI_Request *req)
{
    return send_range(g, buf, lo_of(g, b), hi_of(g, b), to, b, req);
}

static int recv_bucket(tg_dist_grads *g, tg_real *buf, int b, int from,
                       MPI_Request *req)
{
    return recv_range(buf, lo_of(g, b), hi_of(g, b), from, b, req);
}

static bool done(MPI_Request *r, bool wait, tg_dist_grads *g)
{
    int flag = 0;
    if (*r == MPI_REQUEST_NULL)
        return true;
    int rc = wait ? MPI_Wait(r, MPI_STATUS_IGNORE)
                  : MPI_Test(r, &flag, MPI_STATUS_IGNORE);
    if (tg_dist_mpi_check(rc, wait ? "MPI_Wait" : "MPI_Test") < 0) {
        g->failed = true;
        return true;
    }
    return wait || flag;
}

/* ---- the tree across the ranks ------------------------------------------ */

/* The part [*a, *b) of bucket [lo, hi) that this rank holds after
 * `level` halvings: each halves the part held, bit i of the rank choosing
 * the upper half at halving i. Partners at halving i (ranks differing in
 * bit i only) hold the same part before it. */
static void part(int rank, int level, int64_t lo, int64_t hi, int64_t *a,
                 int64_t *b)
{
    for (int i = 0; i < level; i++) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rank >> i & 1)
            lo = mid;
        else
            hi = mid;
    }
    *a = lo;
    *b = hi;
}

/* Posts exchange p of bucket b: halving p (p < levels), then doubling
 * 2 levels - 1 - p. Sends in r_fwd[b], receives in r_pre[b]. */
static void tree_post(tg_dist_grads *g, int b, int p)
{
    int L = g->levels, r = g->rank;
    int i = p < L ? p : 2 * L - 1 - p, partner = r ^ (1 << i);
    int64_t a, z, mid;
    part(r, i, lo_of(g, b), hi_of(g, b), &a, &z);
    mid = a + (z - a) / 2;
    bool upper = r >> i & 1;
    int64_t keep_lo = upper ? mid : a, keep_hi = upper ? z : mid;
    int64_t give_lo = upper ? a : mid, give_hi = upper ? mid : z;
    int rc;
    if (p < L) /* my w of the partner's half; its w of mine into pre */
        rc = send_range(g, g->blk[0], give_lo, give_hi, partner, b,
                        &g->r_fwd[b]) |
             recv_range(g->pre, keep_lo, keep_hi, partner, b, &g->r_pre[b]);
    else /* my finished part; the partner's into grad */
        rc = send_range(g, g->ps->block_grad, keep_lo, keep_hi, partner, b,
                        &g->r_fwd[b]) |
             recv_range(g->ps->block_grad, give_lo, give_hi, partner, b,
                        &g->r_pre[b]);
    if (rc)
        g->failed = true;
}

/* After halving p: the kept half gets the partner's; after the last, the
 * part held is complete and is scaled into grad. */
static void tree_halved(tg_dist_grads *g, int b, int p)
{
    int64_t a, z;
    part(g->rank, p + 1, lo_of(g, b), hi_of(g, b), &a, &z);
    tg_real *w = g->blk[0];
    const tg_real *y = g->pre;
    for (int64_t i = a; i < z; i++)
        w[i] = w[i] + y[i];
    if (p == g->levels - 1)
        scale_into(g, w, a, z);
}

/* Moves bucket b of the tree as far as it can go without waiting. (Each
 * exchange waits for both its messages before the next is posted, so no
 * buffer is written while a send of it is in flight.) */
static void tree_progress(tg_dist_grads *g, int b)
{
    if (g->state[b] == B_READY) {
        tree_sum(g->blk, g->local, lo_of(g, b), hi_of(g, b));
        if (g->levels == 0) {
            scale_into(g, g->blk[0], lo_of(g, b), hi_of(g, b));
            g->state[b] = B_DONE;
            return;
        }
        g->phase[b] = 0;
        tree_post(g, b, 0);
        g->state[b] = B_SENT;
    }
    while (g->state[b] == B_SENT && !g->failed &&
           done(&g->r_fwd[b], false, g) && done(&g->r_pre[b], false, g)) {
        int p = g->phase[b];
        if (p < g->levels)
            tree_halved(g, b, p);
        if (++g->phase[b] == 2 * g->levels)
            g->state[b] = B_DONE;
        else
            tree_post(g, b, g->phase[b]);
    }
}

/* ---- the ring: MPI_Iallreduce ------------------------------------------- *
 * A collective must be started in the same order on every rank; buckets
 * are started from the last down (backward finishes the last parameters
 * first), each once all after it have started. */
static void ring_progress(tg_dist_grads *g)
{
    while (g->ring_next >= 0 && g->state[g->ring_next] == B_READY) {
        int b = g->ring_next--;
        int64_t lo = lo_of(g, b), hi = hi_of(g, b);
        tree_sum(g->blk, g->local, lo, hi);
        tg_real *grad = g->ps->block_grad, *w = g->blk[0];
        g->bytes += 2.0 * (double)(hi - lo) * (double)sizeof(tg_real) *
                    (g->size - 1) / g->size; /* what a ring would send */
        if (tg_dist_mpi_check(MPI_Iallreduce(w == grad ? MPI_IN_PLACE : w + lo,
                                             grad + lo, (int)(hi - lo),
                                             TG_MPI_REAL, MPI_SUM,
                                             MPI_COMM_WORLD, &g->r_tot[b]),
                              "MPI_Iallreduce") < 0)
            g->failed = true;
        g->state[b] = B_SENT;
    }
    for (int b = 0; b < g->nb; b++)
        if (g->state[b] == B_SENT && done(&g->r_tot[b], false, g)) {
            scale_into(g, g->ps->block_grad, lo_of(g, b), hi_of(g, b));
            g->state[b] = B_DONE;
        }
}
#endif

/* the chain: moves every bucket as far as it can go; with wait, to the
 * end */
static void chain_progress(tg_dist_grads *g, bool wait)
{
    (void)wait; /* without MPI there is nothing to wait for */
    for (int b = 0; b < g->nb; b++) {
        if (g->state[b] == B_READY) {
#ifdef TG_HAVE_MPI
            if (g->rank > 0 && !done(&g->r_pre[b], wait, g))
                continue;
#endif
            add_local(g, b);
#ifdef TG_HAVE_MPI
            if (g->rank < g->size - 1) {
                if (send_bucket(g, g->acc, b, g->rank + 1, &g->r_fwd[b]) < 0 ||
                    recv_bucket(g, g->ps->block_grad, b, g->rank + 1,
                                &g->r_tot[b]) < 0)
                    g->failed = true;
                g->state[b] = B_SENT;
            } else {
                if (g->rank > 0 &&
                    send_bucket(g, g->ps->block_grad, b, g->rank - 1,
                                &g->r_back[b]) < 0)
                    g->failed = true;
                g->state[b] = B_DONE;
            }
#else
            g->state[b] = B_DONE;
#endif
        }
#ifdef TG_HAVE_MPI
        if (g->state[b] == B_SENT && done(&g->r_tot[b], wait, g)) {
            if (g->rank > 0 &&
                send_bucket(g, g->ps->block_grad, b, g->rank - 1,
                            &g->r_back[b]) < 0)
                g->failed = true;
            g->state[b] = B_DONE;
        }
#endif
    }
}

/* Moves every bucket as far as it can go without waiting. */
static void progress(tg_dist_grads *g)
{
#ifdef TG_HAVE_MPI
    if (g->how == TG_DIST_RING) {
        ring_progress(g);
        return;
    }
#endif
    if (g->how == TG_DIST_CHAIN) {
        chain_progress(g, false);
        return;
    }
    for (int b = 0; b < g->nb; b++)
#ifdef TG_HAVE_MPI
        tree_progress(g, b);
#else
        if (g->state[b] == B_READY) {
            tree_sum(g->blk, g->local, lo_of(g, b), hi_of(g, b));
            scale_into(g, g->blk[0], lo_of(g, b), hi_of(g, b));
            g->state[b] = B_DONE;
        }
#endif
}

/* Every bucket to the end: the chain waits bucket by bucket as before;
 * the tree and the ring wait for any message and move on whatever it
 * let go further, so that the buckets stay pipelined. */
static void finish(tg_dist_grads *g)
{
    if (g->how == TG_DIST_CHAIN) {
        chain_progress(g, true);
        return;
    }
    for (;;) {
        progress(g);
        bool all = true;
        for (int b = 0; b < g->nb && all; b++)
            all = g->state[b] == B_DONE;
        if (all || g->failed)
            return;
#ifdef TG_HAVE_MPI
        int idx;
        if (tg_dist_mpi_check(MPI_Waitany(4 * g->nb, g->req, &idx,
                                          MPI_STATUS_IGNORE),
                              "MPI_Waitany") < 0 || idx == MPI_UNDEFINED)
            g->failed = true; /* (undefined: nothing in flight - a bug) */
#else
        g->failed = true; /* unreachable: one rank finishes in progress() */
#endif
    }
}

static void mark_ready(tg_dist_grads *g, int b)
{
    if (g->state[b] != B_WAIT)
        return;
    g->state[b] = B_READY;
    if (g->t_first == 0)
        g->t_first = tg_dist_now();
}

static void on_ready(tg_tensor *leaf, void *ud)
{
    tg_dist_grads *g = ud;
    const tg_real *base = g->ps->block_data;
    if (!leaf->data || leaf->data < base || leaf->data >= base + g->n)
        return; /* not one of the parameters */
    int64_t off = leaf->data - base;
    int b0 = (int)(off / g->bucket);
    int b1 = (int)((off + (leaf->numel ? leaf->numel : 1) - 1) / g->bucket);
    for (int b = b0; b <= b1 && b < g->nb; b++)
        if (--g->left[b] == 0)
            mark_ready(g, b);
    progress(g);
}

tg_dist_grads *tg_dist_grads_new(tg_params *ps, int blocks, double scale,
                                 size_t bucket_bytes)
{
    return tg_dist_grads_new_reduce(ps, blocks, scale, bucket_bytes,
                                    TG_DIST_TREE);
}

tg_dist_grads *tg_dist_grads_new_reduce(tg_params *ps, int blocks,
                                        double scale, size_t bucket_bytes,
                                        tg_dist_reduce how)
{
    int N = tg_dist_size();
    if (!ps || blocks < 1 || blocks % N) {
        tg_error("dist_grads", "%d blocks cannot be spread evenly over %d "
                 "ranks: the number of ranks must divide the number of "
                 "blocks", blocks, N);
        return NULL;
    }
    if (how != TG_DIST_TREE && how != TG_DIST_CHAIN && how != TG_DIST_RING) {
        tg_error("dist_grads", "unknown way of summing %d: TG_DIST_TREE, "
                 "TG_DIST_CHAIN or TG_DIST_RING", (int)how);
        return NULL;
    }
    if (!ps->block_data && tg_params_flatten(ps) < 0)
        return NULL;
    tg_dist_grads *g = tg_xcalloc(1, sizeof *g);
    g->ps = ps;
    /* the tree's halves must fall between ranks; the ring of one rank is
     * the tree (nothing to exchange) */
    g->how = how == TG_DIST_TREE && !tg_dist_tree_fits(N) ? TG_DIST_CHAIN
             : how == TG_DIST_RING && N == 1              ? TG_DIST_TREE
                                                          : how;
    g->blocks = blocks;
    g->size = N;
    g->rank = tg_dist_rank();
    g->local = blocks / N;
    while ((1 << g->levels) < N)
        g->levels++;
    g->scale = (tg_real)scale;
    g->n = ps->block_n;
    g->k = -1;
    size_t bytes = (size_t)(g->n ? g->n : 1) * sizeof(tg_real);
    g->kept = tg_xcalloc((size_t)g->local, sizeof *g->kept);
    g->blk = tg_xcalloc((size_t)g->local, sizeof *g->blk);
    for (int j = 0; j < g->local - 1; j++)
        g->kept[j] = tg_xcalloc_aligned(bytes);
    g->acc = tg_xcalloc_aligned(bytes);
    g->pre = tg_xcalloc_aligned(bytes);
    g->bucket = (int64_t)((bucket_bytes ? bucket_bytes : 4u << 20) /
                          sizeof(tg_real));
    if (g->bucket < 1024)
        g->bucket = 1024;
    if (g->bucket > (1 << 30))
        g->bucket = 1 << 30;
    g->nb = g->n ? (int)((g->n + g->bucket - 1) / g->bucket) : 0;
    int nb = g->nb ? g->nb : 1;
    g->left = tg_xcalloc((size_t)nb, sizeof *g->left);
    g->left0 = tg_xcalloc((size_t)nb, sizeof *g->left0);
    g->state = tg_xcalloc((size_t)nb, sizeof *g->state);
    g->phase = tg_xcalloc((size_t)nb, sizeof *g->phase);
    /* how many tensors overlap each bucket (each tensor counted once) */
    for (int i = 0; i < tg_params_count(ps); i++) {
        tg_tensor *t = tg_params_at(ps, i)->tensor;
        int64_t off = t->data - ps->block_data;
        if (off < 0 || off >= g->n)
            continue;
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = tg_params_at(ps, j)->tensor == t;
        if (dup)
            continue;
        int b0 = (int)(off / g->bucket);
        int b1 = (int)((off + (t->numel ? t->numel : 1) - 1) / g->bucket);
        for (int b = b0; b <= b1 && b < g->nb; b++)
            g->left0[b]++;
    }
#ifdef TG_HAVE_MPI
    g->req = tg_xmalloc(4 * (size_t)nb * sizeof *g->req);
    for (int b = 0; b < 4 * nb; b++)
        g->req[b] = MPI_REQUEST_NULL;
    g->r_pre = g->req;
    g->r_fwd = g->req + nb;
    g->r_tot = g->req + 2 * nb;
    g->r_back = g->req + 3 * nb;
#endif
    return g;
}

void tg_dist_grads_free(tg_dist_grads *g)
{
    if (!g)
        return;
    if (g->k >= 0)
        tg_set_grad_ready_hook(NULL, NULL);
    for (int j = 0; j < g->local - 1; j++)
        free(g->kept[j]);
    free(g->kept);
    free(g->blk);
    free(g->acc);
    free(g->pre);
    free(g->left);
    free(g->left0);
    free(g->state);
    free(g->phase);
#ifdef TG_HAVE_MPI
    free(g->req);
#endif
    free(g);
}

int tg_dist_grads_local(const tg_dist_grads *g) { return g ? g->local : 0; }

tg_dist_reduce tg_dist_grads_reduce(const tg_dist_grads *g)
{
    return g ? g->how : TG_DIST_TREE;
}

/* false after an error: the list's block, which the sums read and write,
 * is not the one they were made for (the list was freed) */
static bool block_alive(const char *op, const tg_dist_grads *g)
{
    if (g->ps->block_grad && g->ps->block_n == g->n)
        return true;
    tg_error(op, "the parameter list's flattened block (%lld numbers) is "
             "gone: the list was freed (tg_params_free) while these "
             "gradient sums used it. Free them (tg_dist_grads_free) first",
             (long long)g->n);
    return false;
}

void tg_dist_grads_begin(tg_dist_grads *g, int k)
{
    if (!g)
        return;
    TG_ASSERT(k >= 0 && k < g->local);
    if (!block_alive("dist_grads_begin", g)) {
        g->failed = true;
        g->k = k; /* (end says it again) */
        return;
    }
    g->k = k;
    tg_params_zero_grad(g->ps);
    if (k < g->local - 1)
        return;
    /* the last block: buckets go out as backward finishes them */
    for (int j = 0; j < g->local; j++)
        g->blk[j] = j < g->local - 1 ? g->kept[j] : g->ps->block_grad;
    memcpy(g->left, g->left0, (size_t)(g->nb ? g->nb : 1) * sizeof *g->left);
    for (int b = 0; b < g->nb; b++)
        g->state[b] = B_WAIT;
    g->ring_next = g->nb - 1;
    g->t_first = 0;
#ifdef TG_HAVE_MPI
    for (int b = 0; b < g->nb && g->rank > 0 && g->how == TG_DIST_CHAIN; b++)
        if (recv_bucket(g, g->pre, b, g->rank - 1, &g->r_pre[b]) < 0)
            g->failed = true;
#endif
    tg_set_grad_ready_hook(on_ready, g);
}

int tg_dist_grads_end(tg_dist_grads *g)
{
    if (!g || g->k < 0) {
        tg_error("dist_grads", "end without begin");
        return -1;
    }
    if (!block_alive("dist_grads_end", g)) {
        g->k = -1;
        return -1;
    }
    int k = g->k;
    g->k = -1;
    if (k < g->local - 1) { /* keep it for the sum */
        memcpy(g->kept[k], g->ps->block_grad, (size_t)g->n * sizeof(tg_real));
        return 0;
    }
    tg_set_grad_ready_hook(NULL, NULL);
    double t_end = tg_dist_now();
    if (g->t_first > 0)
        g->overlap_s += t_end - g->t_first;
    /* parameters backward did not reach: their (zero) gradients are final */
    for (int b = 0; b < g->nb; b++)
        mark_ready(g, b);
    finish(g);
#ifdef TG_HAVE_MPI
    for (int b = 0; b < 4 * g->nb; b++) /* our sends may still be in flight */
        done(&g->req[b], true, g);
#endif
    g->wait_s += tg_dist_now() - t_end;
    g->steps++;
    if (g->failed) {
        tg_error("dist_grads", "summing the gradients over %d ranks failed",
                 g->size);
        return -1;
    }
    return 0;
}

tg_dist_stats tg_dist_grads_stats(tg_dist_grads *g)
{
    tg_dist_stats s = {0};
    if (!g)
        return s;
    s.wait_s = g->wait_s;
    s.overlap_s = g->overlap_s;
    s.bytes_sent = g->bytes;
    s.steps = g->steps;
    g->wait_s = g->overlap_s = g->bytes = 0;
    g->steps = 0;
    return s;
}
