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

/* stb_ds's functions are renamed into tapegrad's prefix, in the library's
 * implementation (tensor/error.c) and in every call of its macros here, so
 * that a program with its own STB_DS_IMPLEMENTATION links with tapegrad's
 * libraries (static or shared) without two definitions of stbds_arrgrowf.
 * This header is internal to the library (it is not installed). */
#define stbds_arrgrowf tg_stbds_arrgrowf
#define stbds_arrfreef tg_stbds_arrfreef
#define stbds_hmfree_func tg_stbds_hmfree_func
#define stbds_hmget_key tg_stbds_hmget_key
#define stbds_hmget_key_ts tg_stbds_hmget_key_ts
#define stbds_hmput_default tg_stbds_hmput_default
#define stbds_hmdel_key tg_stbds_hmdel_key
/* stb_ds keeps one global, the seed of the next new hash table, which
 * every function that makes a table reads and advances: the library's
 * calls of those two go through tensor/error.c's wrappers, which hold a
 * lock (threads build tables at once: two backward sweeps, two compiled
 * steps). */
#ifdef TG_DS_IMPLEMENTATION
#define stbds_hmput_key tg_stbds_hmput_key
#define stbds_shmode_func tg_stbds_shmode_func
#else
#define stbds_hmput_key tg_stbds_hmput_key_locked
#define stbds_shmode_func tg_stbds_shmode_func_locked
#endif
#define stbds_hash_string tg_stbds_hash_string
#define stbds_hash_bytes tg_stbds_hash_bytes
#define stbds_rand_seed tg_stbds_rand_seed
#define stbds_stralloc tg_stbds_stralloc
#define stbds_strreset tg_stbds_strreset
#define stbds_unit_tests tg_stbds_unit_tests

#if !defined(__cplusplus) && !defined(typeof)
#define typeof __typeof__
#endif
#include <stb/stb_ds.h>

#include <stddef.h>
void *tg_stbds_hmput_key_locked(void *a, size_t elemsize, void *key,
                                size_t keysize, int mode);
void *tg_stbds_shmode_func_locked(size_t elemsize, int mode);

#endif
