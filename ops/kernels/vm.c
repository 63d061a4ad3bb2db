/*
 * ops/kernels/vm.c - one instruction of the vector machine (ops/fuse/fuse_vm.c
 * runs the programs): d (+)= code(a, b, c; k) over a block of numbers.
 *
 * A kernel file (ops/kernels/kernel_table.h): compiled once per kernel level,
 * so that these loops, with the vectorizable exp, tanh and sigmoid of
 * ops/kernels/vmath.h, become AVX-512 or AVX2 code where the CPU has it. They
 * contain no fused multiply-adds (-std=c11 keeps GCC from contracting a * b +
 * c) and no reordered sums, so every level gives the same bits. Not here:
 * registers, tiles, groups (ops/fuse/fuse_vm.c).
 */
#include "ops/internal.h"
#include "ops/kernels/kernel_table.h"
#include "ops/kernels/vmath.h"

#include <math.h>

/* d[i] = expr, or d[i] += expr with acc, for i < n */
#define VM_LOOP(expr)                                                      \
    do {                                                                   \
        if (acc)                                                           \
            for (int i = 0; i < n; i++)                                    \
                d[i] += (expr);                                            \
        else                                                               \
            for (int i = 0; i < n; i++)                                    \
                d[i] = (expr);                                             \
    } while (0)

/* d (+)= code(a, b, c; k) over n numbers: one case per line of
 * ops/kernels/vm_codes.h, whose values are the expressions of the ops' own
 * kernels, so a fused forward gives the unfused numbers bit for bit. */
void TG_KFN(tg_k_vm)(int code, int n, tg_real *restrict d, const tg_real *a,
                     const tg_real *b, const tg_real *c, tg_real k, bool acc)
{
#define A a[i]
#define B b[i]
#define C c[i]
#define K k
#define VM_CASE(NAME, name, cost, value, recorded)                         \
    case TG_VM_##NAME:                                                     \
        VM_LOOP(value);                                                    \
        break;
    switch ((enum tg_vm_code)code) {
        TG_VM_CODES(VM_CASE)
    case TG_VM_NCODES:
        break;
    }
#undef VM_CASE
#undef A
#undef B
#undef C
#undef K
    TG_ASSERT(code >= 0 && code < TG_VM_NCODES);
}
