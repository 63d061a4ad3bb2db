/*
 * tensor/error.c - error reporting (tg_error and its handler), the
 * never-compiled-out assertion, checked allocation, and the one
 * definition of stb_ds (its allocations go through tg_xrealloc, so running
 * out of memory is reported instead of dereferencing NULL; the functions
 * that advance its global seed, under a lock).
 */
#include "tensor/tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STB_DS_IMPLEMENTATION
#define TG_DS_IMPLEMENTATION
#define STBDS_REALLOC(ctx, p, n) ((void)(ctx), tg_xrealloc((p), (n)))
#define STBDS_FREE(ctx, p) ((void)(ctx), free(p))
#include "tensor/ds.h"

#include <pthread.h>

/* stb_ds's seed of new hash tables, a global it advances (tensor/ds.h):
 * what touches it runs under this lock */
static pthread_mutex_t stbds_seed_lock = PTHREAD_MUTEX_INITIALIZER;

void *tg_stbds_hmput_key_locked(void *a, size_t elemsize, void *key,
                                size_t keysize, int mode)
{
    pthread_mutex_lock(&stbds_seed_lock);
    void *r = tg_stbds_hmput_key(a, elemsize, key, keysize, mode);
    pthread_mutex_unlock(&stbds_seed_lock);
    return r;
}

void *tg_stbds_shmode_func_locked(size_t elemsize, int mode)
{
    pthread_mutex_lock(&stbds_seed_lock);
    void *r = tg_stbds_shmode_func(elemsize, mode);
    pthread_mutex_unlock(&stbds_seed_lock);
    return r;
}

/* Per thread (README, "Threads"): a thread's errors go to the handler it
 * installed, and its last message and count are its own - nn/ compares
 * counts around a call to learn whether that call failed. */
static _Thread_local tg_error_handler handler;
static _Thread_local void *handler_ud;
static _Thread_local char last_msg[1024];
static _Thread_local unsigned long n_errors;

tg_error_handler tg_set_error_handler(tg_error_handler fn, void *ud)
{
    tg_error_handler old = handler;
    handler = fn;
    handler_ud = ud;
    return old;
}

void tg_error(const char *op, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(last_msg, sizeof last_msg, "%s: %s", op, msg);
    n_errors++;
    if (handler) {
        handler(op, msg, handler_ud);
        return;
    }
    fprintf(stderr, "tapegrad: %s\n", last_msg);
    fflush(stderr);
    abort();
}

const char *tg_last_error(void) { return last_msg; }
void tg_clear_error(void) { last_msg[0] = 0; }
unsigned long tg_error_count(void) { return n_errors; }

void tg_assert_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "tapegrad: %s:%d: internal check failed: %s\n"
            "(this is a bug in tapegrad; please report it with the "
            "program that triggers it)\n", file, line, what);
    fflush(stderr);
    abort();
}

static _Noreturn void out_of_memory(size_t n)
{
    fprintf(stderr, "tapegrad: out of memory allocating %zu bytes\n", n);
    abort();
}

void *tg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *tg_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *tg_xcalloc_aligned(size_t n)
{
    size_t size = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, size ? size : 64);
    if (!p)
        out_of_memory(n);
    memset(p, 0, size ? size : 64);
    return p;
}

void *tg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

void tg_errbuf(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}
