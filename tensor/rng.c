/*
 * tensor/rng.c - xoshiro256** with splitmix64 seeding
 * (https://prng.di.unimi.it/), and the samplers built on it.
 */
#include "tensor/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tg_rng_seed(tg_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* one per thread: threads draw from their own streams, each the same
 * as a program running alone on that thread would draw */
static _Thread_local tg_rng global_rng;
static _Thread_local int global_seeded;

tg_rng *tg_rng_global(void)
{
    if (!global_seeded) {
        tg_rng_seed(&global_rng, 0);
        global_seeded = 1;
    }
    return &global_rng;
}

void tg_manual_seed(uint64_t seed)
{
    tg_rng_seed(&global_rng, seed);
    global_seeded = 1;
}

uint64_t tg_rng_next(tg_rng *rng)
{
    if (!rng)
        rng = tg_rng_global();
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tg_rng_uniform(tg_rng *rng)
{
    return (double)(tg_rng_next(rng) >> 11) * 0x1.0p-53;
}

double tg_rng_normal(tg_rng *rng)
{
    /* Box-Muller; 1 - u keeps the log argument in (0, 1] */
    double u1 = 1.0 - tg_rng_uniform(rng);
    double u2 = tg_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t tg_rng_below(tg_rng *rng, uint64_t n)
{
    /* rejection: drop the top partial copy of [0, n) */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = tg_rng_next(rng);
    while (x >= limit);
    return x % n;
}
