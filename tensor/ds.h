/*
 * tensor/ds.h - stb_ds (dynamic arrays arrput/arrlen, hash maps
 * hmput/hmget) as tapegrad includes it. Include this, not stb_ds.h.
 *
 * stb_ds's hash-map macros use `typeof`, which GCC spells __typeof__ in
 * strict ISO C (-std=c11); the one definition below makes them work there.
 * Its allocations go through tg_xrealloc (tensor/error.c holds the
 * implementation), so running out of memory is reported, not ignored.
 */
#ifndef TG_DS_H
#define TG_DS_H

#if !defined(__cplusplus) && !defined(typeof)
#define typeof __typeof__
#endif
#include <stb/stb_ds.h>

#endif
