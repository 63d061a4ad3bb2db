/*
 * ops/vm.c - one instruction of the vector machine (ops/fuse_vm.c runs
 * the programs): d (+)= code(a, b, c; k) over a block of numbers.
 *
 * A kernel file (ops/kernel_table.h): compiled once per kernel level, so
 * that these loops, with the vectorizable exp, tanh and sigmoid of
 * ops/vmath.h, become AVX-512 or AVX2 code where the CPU has it. They
 * contain no fused multiply-adds (-std=c11 keeps GCC from contracting
 * a * b + c) and no reordered sums, so every level gives the same bits.
 * Not here: registers, tiles, groups (ops/fuse_vm.c).
 */
#include "ops/internal.h"
#include "ops/kernel_table.h"
#include "ops/vmath.h"

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

/* d (+)= code(a, b, c; k) over n numbers. The expressions are those of the
 * ops' own kernels (ops/elementwise.c, ops/unary.c), so a fused forward
 * gives the unfused numbers bit for bit. */
void TG_KFN(tg_k_vm)(int code, int n, tg_real *restrict d, const tg_real *a,
                     const tg_real *b, const tg_real *c, tg_real k, bool acc)
{
    const tg_real one = 1;
    switch (code) {
    case TG_VM_COPY: VM_LOOP(a[i]); break;
    case TG_VM_ADD: VM_LOOP(a[i] + b[i]); break;
    case TG_VM_SUB: VM_LOOP(a[i] - b[i]); break;
    case TG_VM_MUL: VM_LOOP(a[i] * b[i]); break;
    case TG_VM_DIV: VM_LOOP(a[i] / b[i]); break;
    case TG_VM_POW: VM_LOOP(rpow(a[i], b[i])); break;
    case TG_VM_NEG: VM_LOOP(-a[i]); break;
    case TG_VM_ADDK: VM_LOOP(a[i] + k); break;
    case TG_VM_MULK: VM_LOOP(a[i] * k); break;
    case TG_VM_POWK: VM_LOOP(rpow(a[i], k)); break;
    case TG_VM_EXP: VM_LOOP(rexp(a[i])); break;
    case TG_VM_LOG: VM_LOOP(rlog(a[i])); break;
    case TG_VM_TANH: VM_LOOP(tg_vtanh(a[i])); break;
    case TG_VM_SIGMOID: VM_LOOP(tg_vsigmoid(a[i])); break;
    case TG_VM_RELU: VM_LOOP((a[i] > 0 || a[i] != a[i]) ? a[i] : 0); break;
    case TG_VM_SQRT: VM_LOOP(rsqrt(a[i])); break;
    case TG_VM_STEP:
        VM_LOOP(a[i] > 0 ? one : (a[i] != a[i] ? a[i] : 0));
        break;
    case TG_VM_DTANH: VM_LOOP(a[i] * (one - b[i] * b[i])); break;
    case TG_VM_DSIGMOID: VM_LOOP(a[i] * b[i] * (one - b[i])); break;
    case TG_VM_DRELU: VM_LOOP(b[i] > 0 ? a[i] : 0); break;
    case TG_VM_DSQRT: VM_LOOP(a[i] * (tg_real)0.5 / b[i]); break;
    case TG_VM_DSTEP:
        VM_LOOP(a[i] * tg_vsigmoid(b[i]) * (one - tg_vsigmoid(b[i])));
        break;
    case TG_VM_DDIVB: VM_LOOP(-a[i] * b[i] / c[i]); break;
    case TG_VM_DPOWA:
        VM_LOOP(c[i] == 0 ? 0 : a[i] * c[i] * rpow(b[i], c[i] - 1));
        break;
    case TG_VM_DPOWB: VM_LOOP(c[i] == 0 ? 0 : a[i] * b[i] * rlog(c[i])); break;
    case TG_VM_DPOWK: VM_LOOP(k == 0 ? 0 : a[i] * k * rpow(b[i], k - 1)); break;
    default: TG_ASSERT(!"unknown vector machine code");
    }
}

