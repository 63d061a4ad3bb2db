/*
 * tensor/arena.c - bump allocation in chunks that never move, one arena
 * per thread.
 *
 * An arena is three pools, each a list of chunks filled from the front:
 * one for numbers (and everything else ops allocate) and two for tensor
 * headers, used in turn by successive generations. An allocation goes
 * into the pool's current chunk if it fits, else into the next chunk
 * that is large enough (chunks are kept across resets), else into a new
 * chunk. Reset and rewind only move the fill marks back. A thread's
 * chunks are returned to the system when the thread ends (thread_ends,
 * below) or at tg_arena_release.
 *
 * Why headers have pools of their own, two of them: a tensor kept by
 * mistake across tg_tape_reset (tensor/arena.h, "generations") must
 * still read as a tensor of the ended generation when an op looks at it.
 * In one shared pool the next step, repeating the same allocations,
 * soon puts another header - or numbers - at its address. With the
 * header pools taking turns, the headers of the generation that just
 * ended stay untouched for the whole of the next one.
 */
#include "tensor/arena.h"
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ds.h"

#define TG_CHUNK_MIN ((size_t)4 << 20)
#define TG_HEAD_CHUNK_MIN ((size_t)256 << 10) /* ~1300 headers */

typedef struct chunk {
    char *mem;
    size_t size;
    size_t used;
} chunk;

typedef struct pool {
    chunk *chunks;    /* stb_ds array */
    int64_t cur;      /* chunk being filled */
    size_t min_chunk; /* size of a new chunk, at least */
} pool;

/* This thread's arena (tensor/arena.h: one per thread). */
typedef struct arena {
    pool data;
    pool heads[2];
    int side;          /* heads[side] takes this generation's headers */
    uint32_t gen;      /* this generation; 0: none taken yet */
    size_t used_total, peak_used;
    bool exit_registered;
} arena;

static _Thread_local arena A = {
    .data = {.min_chunk = TG_CHUNK_MIN},
    .heads = {{.min_chunk = TG_HEAD_CHUNK_MIN},
              {.min_chunk = TG_HEAD_CHUNK_MIN}},
};

/* ---- the end of a thread ------------------------------------------------
 * A thread that made temporaries holds chunks of memory (and a tape, in
 * autograd/) that only it can reach: when it ends, a key's destructor
 * frees them, the layer above first (its hook, installed when the
 * library loads). The main thread's go with the process. */
static pthread_key_t exit_key;
static bool exit_key_made; /* false: no key to be had, memory kept */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static void (*exit_hook)(void);

static void thread_ends(void *unused)
{
    (void)unused;
    if (exit_hook)
        exit_hook();
    tg_arena_release();
}

static void make_exit_key(void)
{
    exit_key_made = pthread_key_create(&exit_key, thread_ends) == 0;
}

void tg_arena_set_thread_exit_hook_(void (*fn)(void)) { exit_hook = fn; }

void tg_arena_thread_holds_memory_(void)
{
    if (A.exit_registered)
        return;
    pthread_once(&exit_once, make_exit_key);
    if (exit_key_made)
        pthread_setspecific(exit_key, &A); /* any non-NULL */
    A.exit_registered = true;
}

/* The last generation number handed out, to any thread: numbers are
 * unique in the process (until they wrap after 2^32 resets), so that a
 * temporary of another thread never matches this thread's generation. */
static _Atomic uint32_t last_gen;

/* Every program that makes a tensor links this file: the one place for
 * what must happen when the library loads, before any thread exists (the
 * CPU's handling of subnormal numbers, tensor/threads.c). */
__attribute__((constructor)) static void library_loaded(void)
{
    tg_threads_init_();
}

static size_t round_up(size_t n)
{
    return (n + TG_ARENA_ALIGN - 1) & ~(size_t)(TG_ARENA_ALIGN - 1);
}

static uint32_t new_generation(void)
{
    uint32_t g;
    do
        g = atomic_fetch_add_explicit(&last_gen, 1, memory_order_relaxed) + 1;
    while (g == 0); /* 0 marks persistent tensors */
    return g;
}

static inline uint32_t generation(void)
{
    if (__builtin_expect(!A.gen, 0))
        A.gen = new_generation();
    return A.gen;
}

uint32_t tg_arena_generation(void) { return generation(); }

/* ---- lifetimes (arena.h, "generations"; tensor.h, tg_check_live) ------- */

static void report_dead(const char *op, const tg_tensor *t, uint32_t now)
{
    char shape[96] = "(an unreadable shape)";
    if (t->ndim >= 0 && t->ndim <= TG_MAX_DIMS)
        tg_shape_str(t, shape, sizeof shape);
    tg_error(op, "tensor t%u %s is a temporary of tape generation %u, and "
             "this thread's tape is at generation %u: tg_tape_reset has "
             "freed it (its memory may hold other tensors by now), or "
             "another thread made it. Before the reset, copy what must "
             "outlive a step into a persistent tensor (tg_tensor_new and "
             "tg_copy_; tg_rnn_keep_state for an RNN's state), or compute "
             "it again after the reset",
             (unsigned)t->id, shape, (unsigned)t->gen, (unsigned)now);
}

/* Here, beside the generation it compares with: every op calls it. */
bool tg_check_live(const char *op, int n, const tg_tensor *const *ts)
{
    for (int k = 0; k < n; k++) {
        const tg_tensor *t = ts[k];
        if (!t)
            return false;
        /* 0: persistent. (A.gen is 0 until this thread's first
         * temporary: then any temporary is another thread's.) */
        if (t->gen != A.gen && t->gen != 0) {
            report_dead(op, t, generation());
            return false;
        }
    }
    return true;
}

static void count(size_t n)
{
    A.used_total += n;
    if (A.used_total > A.peak_used)
        A.peak_used = A.used_total;
}

/* n bytes (rounded) from a new chunk at the end of p's */
static void *new_chunk(pool *p, size_t n)
{
    chunk c;
    c.size = n > p->min_chunk ? n : p->min_chunk;
    c.mem = aligned_alloc(TG_ARENA_ALIGN, c.size);
    if (!c.mem) {
        fprintf(stderr, "tapegrad: out of memory: the arena needs %zu more "
                "bytes (%zu in use)\n", c.size, A.used_total);
        abort();
    }
    c.used = n;
    tg_arena_thread_holds_memory_();
    arrput(p->chunks, c);
    p->cur = arrlen(p->chunks) - 1;
    count(n);
    return c.mem;
}

/* (inlined into both callers: an op allocates a few times) */
static inline __attribute__((always_inline)) void *pool_alloc(pool *p,
                                                              size_t n)
{
    n = round_up(n ? n : 1);
    int64_t nc = arrlen(p->chunks);
    /* the current chunk, then any later (emptied) one that fits */
    for (int64_t i = nc ? p->cur : 0; i < nc; i++) {
        chunk *c = &p->chunks[i];
        if (i > p->cur)
            c->used = 0;
        if (c->size - c->used >= n) {
            void *at = c->mem + c->used;
            c->used += n;
            p->cur = i;
            count(n);
            return at;
        }
    }
    return new_chunk(p, n);
}

void *tg_arena_alloc(size_t n) { return pool_alloc(&A.data, n); }

void *tg_arena_alloc_header(size_t n)
{
    return pool_alloc(&A.heads[A.side], n);
}

void *tg_arena_calloc(size_t n)
{
    void *p = tg_arena_alloc(n);
    memset(p, 0, n);
    return p;
}

static size_t pool_fill(const pool *p)
{
    return arrlen(p->chunks) ? p->chunks[p->cur].used : 0;
}

tg_arena_mark tg_arena_get_mark(void)
{
    const pool *h = &A.heads[A.side];
    tg_arena_mark m = {A.data.cur, pool_fill(&A.data), h->cur, pool_fill(h),
                       A.used_total, generation()};
    return m;
}

static void pool_rewind(pool *p, int64_t to, size_t used)
{
    int64_t nc = arrlen(p->chunks);
    if (nc == 0)
        return;
    TG_ASSERT(to >= 0 && to < nc && to <= p->cur);
    for (int64_t i = to + 1; i <= p->cur; i++)
        p->chunks[i].used = 0; /* (later ones: emptied when reached) */
    p->chunks[to].used = used;
    p->cur = to;
}

void tg_arena_rewind(tg_arena_mark m)
{
    TG_ASSERT(m.gen == A.gen); /* (tg_tape_rewind says so) */
    pool_rewind(&A.data, m.chunk, m.used);
    pool_rewind(&A.heads[A.side], m.head_chunk, m.head_used);
    A.used_total = m.used_total;
}

void tg_arena_reset(void)
{
    pool_rewind(&A.data, 0, 0);
    A.side ^= 1; /* the ended generation's headers stay as they are */
    pool_rewind(&A.heads[A.side], 0, 0);
    A.used_total = 0;
    A.gen = new_generation();
}

static void pool_release(pool *p)
{
    for (int64_t i = 0; i < arrlen(p->chunks); i++)
        free(p->chunks[i].mem);
    arrfree(p->chunks);
    p->chunks = NULL;
    p->cur = 0;
}

void tg_arena_release(void)
{
    pool_release(&A.data);
    pool_release(&A.heads[0]);
    pool_release(&A.heads[1]);
    A.used_total = 0;
    A.gen = 0; /* a new one at the next allocation */
}

tg_arena_stats tg_arena_get_stats(void)
{
    tg_arena_stats s = {0, A.used_total, A.peak_used, 0};
    const pool *ps[] = {&A.data, &A.heads[0], &A.heads[1]};
    for (int k = 0; k < 3; k++) {
        s.chunks += arrlen(ps[k]->chunks);
        for (int64_t i = 0; i < arrlen(ps[k]->chunks); i++)
            s.reserved += ps[k]->chunks[i].size;
    }
    return s;
}
