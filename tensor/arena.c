/*
 * tensor/arena.c - bump allocation in chunks that never move, one arena
 * per thread.
 *
 * The arena is a list of chunks, each filled from the front. An
 * allocation goes into the current chunk if it fits, else into the next
 * chunk that is large enough (chunks are kept across resets), else into a
 * new chunk of at least TG_CHUNK_MIN bytes. Reset and rewind only move the
 * fill marks back. A thread's chunks are returned to the system when the
 * thread ends (thread_ends, below) or at tg_arena_release.
 */
#include "tensor/arena.h"
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ds.h"

#define TG_CHUNK_MIN ((size_t)4 << 20)

typedef struct chunk {
    char *mem;
    size_t size;
    size_t used;
} chunk;

/* this thread's arena */
static _Thread_local chunk *chunks; /* stb_ds array */
static _Thread_local int64_t cur;   /* chunk being filled */
static _Thread_local size_t used_total, peak_used;
static _Thread_local bool exit_registered;

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
    if (exit_registered)
        return;
    pthread_once(&exit_once, make_exit_key);
    if (exit_key_made)
        pthread_setspecific(exit_key, &exit_registered); /* any non-NULL */
    exit_registered = true;
}

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

void *tg_arena_alloc(size_t n)
{
    n = round_up(n ? n : 1);
    int64_t nc = arrlen(chunks);
    /* the current chunk, then any later (emptied) one that fits */
    for (int64_t i = nc ? cur : 0; i < nc; i++) {
        chunk *c = &chunks[i];
        if (i > cur)
            c->used = 0;
        if (c->size - c->used >= n) {
            void *p = c->mem + c->used;
            c->used += n;
            cur = i;
            used_total += n;
            if (used_total > peak_used)
                peak_used = used_total;
            return p;
        }
    }
    chunk c;
    c.size = n > TG_CHUNK_MIN ? n : TG_CHUNK_MIN;
    c.mem = aligned_alloc(TG_ARENA_ALIGN, c.size);
    if (!c.mem) {
        fprintf(stderr, "tapegrad: out of memory: the arena needs %zu more "
                "bytes (%zu in use)\n", c.size, used_total);
        abort();
    }
    c.used = n;
    tg_arena_thread_holds_memory_();
    arrput(chunks, c);
    cur = arrlen(chunks) - 1;
    used_total += n;
    if (used_total > peak_used)
        peak_used = used_total;
    return c.mem;
}

void *tg_arena_calloc(size_t n)
{
    void *p = tg_arena_alloc(n);
    memset(p, 0, n);
    return p;
}

tg_arena_mark tg_arena_get_mark(void)
{
    tg_arena_mark m = {cur, arrlen(chunks) ? chunks[cur].used : 0};
    return m;
}

void tg_arena_rewind(tg_arena_mark m)
{
    int64_t nc = arrlen(chunks);
    if (nc == 0)
        return;
    TG_ASSERT(m.chunk >= 0 && m.chunk < nc && m.chunk <= cur);
    for (int64_t i = m.chunk + 1; i < nc; i++)
        chunks[i].used = 0;
    chunks[m.chunk].used = m.used;
    cur = m.chunk;
    used_total = 0;
    for (int64_t i = 0; i <= cur; i++)
        used_total += chunks[i].used;
}

void tg_arena_reset(void)
{
    tg_arena_mark m = {0, 0};
    tg_arena_rewind(m);
}

void tg_arena_release(void)
{
    for (int64_t i = 0; i < arrlen(chunks); i++)
        free(chunks[i].mem);
    arrfree(chunks);
    chunks = NULL;
    cur = 0;
    used_total = 0;
}

tg_arena_stats tg_arena_get_stats(void)
{
    tg_arena_stats s = {0, used_total, peak_used, arrlen(chunks)};
    for (int64_t i = 0; i < arrlen(chunks); i++)
        s.reserved += chunks[i].size;
    return s;
}
