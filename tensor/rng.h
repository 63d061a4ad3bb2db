/*
 * tensor/rng.h - a seeded random number generator whose state can be
 * saved and restored, so that a run can be reproduced exactly.
 *
 * The generator is xoshiro256** (Blackman & Vigna), seeded through
 * splitmix64. Its whole state is the four words in tg_rng: copying the
 * struct saves it, copying it back restores it. Normal samples use the
 * Box-Muller transform without caching the second value, so the state is
 * nothing more than those four words.
 *
 * Functions taking `tg_rng *rng` accept NULL for the global generator,
 * seeded with tg_manual_seed().
 *
 *     tg_manual_seed(42);
 *     tg_rng saved = *tg_rng_global();
 *     double a = tg_rng_normal(NULL);
 *     *tg_rng_global() = saved;
 *     double b = tg_rng_normal(NULL);   // b == a
 */
#ifndef TG_RNG_H
#define TG_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_rng {
    uint64_t s[4];
} tg_rng;

void tg_rng_seed(tg_rng *rng, uint64_t seed);
uint64_t tg_rng_next(tg_rng *rng);
/* Uniform in [0, 1), 53 random bits. */
double tg_rng_uniform(tg_rng *rng);
/* Standard normal. */
double tg_rng_normal(tg_rng *rng);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t tg_rng_below(tg_rng *rng, uint64_t n);

/* The generator used when NULL is passed (seed 0 until tg_manual_seed):
 * the calling thread's. Each thread has its own, seeded 0 when it
 * starts; tg_manual_seed seeds the caller's only. */
tg_rng *tg_rng_global(void);
void tg_manual_seed(uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif
