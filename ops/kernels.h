/*
 * ops/kernels.h - which machine code runs the hot loops: the kernel level,
 * chosen at run time.
 *
 * The library is compiled for the plain instruction set of its target
 * (x86-64 with SSE2 on a PC), so one build runs on any CPU of that family.
 * The loops that dominate a training step - the gemm kernel
 * (ops/kernels/gemm.c) and the elementwise instructions of compiled steps and
 * unary ops (ops/kernels/vm.c) - are compiled once per level, and the best
 * level this CPU supports is picked when the library starts:
 *
 *   "avx512"   x86-64-v4: AVX-512 F/VL/BW/DQ/CD, 16 floats a vector, FMA
 *   "avx2"     x86-64-v3: AVX2 and FMA, 8 floats a vector
 *   "generic"  the build's baseline (SSE2 on x86-64, 4 floats a vector,
 *              no FMA); the only level of a build for another CPU family
 *
 * The environment variable TG_KERNELS (avx512, avx2, generic or auto) forces
 * a level when the library starts. A level this CPU cannot run, or a
 * name the build does not know, is not an error there (nobody could catch
 * it): a warning goes to stderr and the best supported level at or below
 * the one asked for is used. tg_kernels_set does the same from a program,
 * but refuses instead, with tg_error.
 *
 * What changes between levels: speed, and the rounding of matrix products
 * only. The gemm kernel adds a product's terms in vectors as wide as the
 * level's, with a fused multiply-add at avx512 and avx2 and a separate
 * multiply and add at generic, so products (and what is computed from
 * them) differ in the last bits from level to level; the elementwise
 * functions give the same bits at every level. At any one level results
 * are the same bit for bit for any number of threads.
 *
 *     if (tg_kernels_set("avx2") == 0)      // as TG_KERNELS=avx2
 *         printf("now %s\n", tg_kernels_level());
 */
#ifndef TG_OPS_KERNELS_H
#define TG_OPS_KERNELS_H

#include <stdbool.h>

/* The level in use: "avx512", "avx2" or "generic" (a static string). */
const char *tg_kernels_level(void);

/* Whether level is compiled into this build and this CPU can run it;
 * "auto" always is. */
bool tg_kernels_supported(const char *level);

/* The levels compiled into this build, best first, NULL-terminated (the
 * CPU may not support the first ones: see tg_kernels_supported). */
const char *const *tg_kernels_levels(void);

/* Switches to level ("auto" or NULL: the best this CPU supports). Returns
 * 0, or -1 through tg_error (nothing changed) when level is unknown or
 * unsupported, or when the tape holds entries: weights packed for one
 * level's gemm cannot be read by another's, so switch between steps,
 * after tg_tape_reset. The level is process-wide (README, "Threads"):
 * not while another thread runs tapegrad code. */
int tg_kernels_set(const char *level);

#endif
