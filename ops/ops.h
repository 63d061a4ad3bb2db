/*
 * ops/ops.h - every differentiable op of tapegrad in one include, with the
 * tensor and tape layers below them.
 *
 * Each family lives in one ops/ file with its forward kernels, backward
 * rules and recording functions side by side:
 *   elementwise.h  add sub mul div pow (broadcasting), neg, scalar forms
 *   unary.h        exp log tanh sigmoid relu sqrt softplus, step_ste (a hard step
 *                  with the straight-through gradient)
 *   matmul.h       matmul (2-D, batched 3-D), linear, prepare_weight (a
 *                  weight packed once for many products), the gemm kernel
 *   reduce.h       sum mean (all / one axis), max over an axis
 *   shape.h        reshape transpose permute slice select expand
 *                  contiguous concat stack chunk split squeeze unsqueeze
 *   loss.h         softmax log_softmax cross_entropy mse
 *   layers.h       embedding dropout
 *   kernels.h      which machine code runs the kernels (AVX-512, AVX2,
 *                  generic), chosen at run time
 *   fuse.h         compiled cell steps: a step traced once, then run as
 *                  fused groups (the forward-mode rules are ops/jvp.c)
 *
 * A complete program (installed: cc prog.c $(pkg-config --cflags --libs
 * tapegrad); in the tree: -I. build/libtapegrad.a -fopenmp -lm, and
 * -lcjson for a program that saves or loads files):
 *
 *     #include "ops/ops.h"
 *     int main(void) {
 *         tg_tensor *x = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
 *         tg_fill_(x, 0.5);
 *         tg_tensor *y = tg_sum(tg_mul(tg_sigmoid(x), x));
 *         tg_backward(y);
 *         tg_print(x);            // values
 *         printf("%g\n", x->grad[0]);  // dy/dx_0
 *         tg_tape_reset();
 *         tg_tensor_free(x);
 *     }
 */
#ifndef TG_OPS_H
#define TG_OPS_H

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "ops/elementwise.h"
#include "ops/fuse.h"
#include "ops/kernels.h"
#include "ops/layers.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/unary.h"
#include "tensor/arena.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"

#endif
