/*
 * tensor/arena.h - the memory every temporary tensor lives in.
 *
 * A training step makes thousands of short-lived tensors: activations,
 * gradients, views. Instead of freeing each one, they are carved out of
 * large chunks and all released at once by tg_tape_reset() (which calls
 * tg_arena_reset). Chunks never move, so a pointer into them stays valid
 * until the reset; they are kept for the next step, so a training loop
 * that repeats the same computation reaches a steady state after its first
 * step and allocates nothing more from the system.
 *
 * A mark remembers how far the arena is filled; rewinding to it releases
 * everything allocated since (tg_tape_mark / tg_tape_rewind pair it with
 * the tape). Every thread has an arena of its own, used by the tensor
 * constructors it calls, and freed when the thread ends; the functions
 * below act on the caller's (its stats too). OpenMP's workers never
 * touch one: ops allocate before their parallel loops, never inside them
 * (a worker would allocate from its own, empty arena, which no reset
 * ever clears).
 */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every allocation is aligned to this many bytes (a cache line, and
 * the width of an AVX-512 register). */
#define TG_ARENA_ALIGN 64

typedef struct tg_arena_mark {
    int64_t chunk;      /* index of the chunk being filled */
    size_t used;        /* bytes used in it */
    int64_t head_chunk; /* the same for tensor headers */
    size_t head_used;
    size_t used_total;  /* bytes handed out in all, then */
    uint32_t gen;       /* the generation it was taken in */
} tg_arena_mark;

typedef struct tg_arena_stats {
    size_t reserved;  /* bytes obtained from the system, in all chunks   */
    size_t used;      /* bytes handed out since the last reset           */
    size_t peak_used; /* largest `used` seen since the program started   */
    int64_t chunks;
} tg_arena_stats;

/* n bytes, aligned to TG_ARENA_ALIGN, uninitialised; never NULL. */
void *tg_arena_alloc(size_t n);
/* The same, for a tensor header (tensor/tensor.c): headers have pools of
 * their own, taken in turn by successive generations (below). */
void *tg_arena_alloc_header(size_t n);
/* n bytes of zeros. */
void *tg_arena_calloc(size_t n);
tg_arena_mark tg_arena_get_mark(void);
/* m must be of the current generation (tg_tape_rewind checks it). */
void tg_arena_rewind(tg_arena_mark m);
/* Releases every temporary (keeps the chunks for reuse) and starts a new
 * generation. */
void tg_arena_reset(void);

/* ---- generations ---------------------------------------------------
 * Every reset ends a generation and starts the next: the temporaries made
 * in between are its own, and each carries its number (tg_tensor.gen;
 * persistent tensors have 0). Numbers are unique in the process, so a
 * temporary of another thread never has this thread's. An op given a
 * temporary of another generation refuses it (tg_check_live, tensor.h)
 * instead of reading memory that now holds other tensors. Headers are
 * allocated from two pools that generations use in turn: the headers of
 * the generation that just ended are left untouched for the whole of the
 * next, so that a tensor kept across one reset still reads as what it
 * was - its generation, id and shape - when an op looks at it. Kept
 * across two resets, its header may have been reused by a tensor of the
 * current generation, and is then taken for that one. */
/* This thread's current generation (never 0). */
uint32_t tg_arena_generation(void);
/* Returns the chunks to the system too (at program end, for leak
 * checkers). */
void tg_arena_release(void);
tg_arena_stats tg_arena_get_stats(void);

/* For autograd/ only (tensor/arena.c, "the end of a thread"): fn frees
 * the calling thread's tape; it runs when a thread that holds arena
 * memory ends, before its arena is freed. Installed when the library
 * loads. tg_arena_thread_holds_memory_ marks the calling thread as one
 * (done by the arena itself at its first chunk; by autograd/ for memory
 * of its own). */
void tg_arena_set_thread_exit_hook_(void (*fn)(void));
void tg_arena_thread_holds_memory_(void);

#ifdef __cplusplus
}
#endif

#endif
