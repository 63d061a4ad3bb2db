/*
 * fuzz/fuse_diff_ops.h - the instructions of a fuzzed cell's program, in
 * one table: fuzz/fuse_diff_gen.c generates them, runs them in the step
 * and prints them as C from it. X(name, C): the statement that computes
 * value $V, where $A $B $C are the operands ($C of a linear may be NULL),
 * $0..$3 the integer arguments, $K the real one, $S the value's shape
 * (TG_SHAPE(B, 4): B is the batch, -1 where tg_reshape infers it) and $P
 * the parameter.
 */
#ifndef TG_FUZZ_FUSE_DIFF_OPS_H
#define TG_FUZZ_FUSE_DIFF_OPS_H

#define FD_OPS(X)                                                           \
    X(PARAM, "$V = $P;")                                                    \
    X(FULL, "$V = tg_full($S, $K);")                                        \
    X(ARANGE, "$V = tg_arange(0, $0, 1);")                                  \
    X(USCALE, "$V = tg_mul_scalar($A, ((fd_user *)c->user)->scale);")       \
    X(UMASK, "$V = tg_mul($A, ((fd_user *)c->user)->mask);")                \
    X(TANH, "$V = tg_tanh($A);")                                            \
    X(SIGMOID, "$V = tg_sigmoid($A);")                                      \
    X(RELU, "$V = tg_relu($A);")                                            \
    X(NEG, "$V = tg_neg($A);")                                              \
    X(STEP, "$V = tg_step_ste($A);")                                        \
    X(EXP, "$V = tg_exp($A);")                                              \
    X(LOG, "$V = tg_log($A);")                                              \
    X(SQRT, "$V = tg_sqrt($A);")                                            \
    X(SOFTPLUS, "$V = tg_softplus($A);")                                    \
    X(ADDK, "$V = tg_add_scalar($A, $K);")                                  \
    X(MULK, "$V = tg_mul_scalar($A, $K);")                                  \
    X(POWK, "$V = tg_pow_scalar($A, $K);")                                  \
    X(ADD, "$V = tg_add($A, $B);")                                          \
    X(SUB, "$V = tg_sub($A, $B);")                                          \
    X(MUL, "$V = tg_mul($A, $B);")                                          \
    X(DIV, "$V = tg_div($A, $B);")                                          \
    X(POW, "$V = tg_pow($A, $B);")                                          \
    X(TRANSPOSE, "$V = tg_transpose($A, $0, $1);")                          \
    X(SLICE, "$V = tg_slice($A, $0, $1, $2, $3);")                          \
    X(CHUNK, "tg_chunk($A, $1, $0, o); $V = o[$2];")                        \
    X(SPLIT, "tg_split($A, (int64_t[]){$1, $3}, 2, $0, o); $V = o[$2];")    \
    X(SELECT, "$V = tg_select($A, $0, $1);")                                \
    X(UNSQUEEZE, "$V = tg_unsqueeze($A, $0);")                              \
    X(SQUEEZE, "$V = tg_squeeze($A, $0);")                                  \
    X(RESHAPE, "$V = tg_reshape($A, $S);")                                  \
    X(EXPAND, "$V = tg_expand($A, $S);")                                    \
    X(PERMUTE, "$V = tg_permute($A, (int[]){$0, $1, $2});")                 \
    X(CONTIG, "$V = tg_contiguous($A);")                                    \
    X(CONCAT, "$V = tg_concat((tg_tensor *[]){$A, $B}, 2, $0);")            \
    X(STACK, "$V = tg_stack((tg_tensor *[]){$A, $B, $C}, $1, $0);")         \
    X(CAT0CHUNK, "tg_chunk(tg_concat((tg_tensor *[]){$A, $B}, 2, 0), 2, 0, "\
                 "o); $V = o[$0];")                                         \
    X(SUMDIM, "$V = tg_sum_dim($A, $0, $1);")                               \
    X(MEANDIM, "$V = tg_mean_dim($A, $0, $1);")                             \
    X(MAXDIM, "$V = tg_max_dim($A, $0, $1);")                               \
    X(SUM, "$V = tg_sum($A);")                                              \
    X(MEAN, "$V = tg_mean($A);")                                            \
    X(LINEAR, "$V = tg_linear($A, $B, $C);")                                \
    X(MATMUL, "$V = tg_matmul($A, $B);")                                   \
    X(DROPOUT, "$V = tg_dropout($A, 0.25, true, NULL);")

#define FD_OP_ENUM(name, c) OP_##name,
enum { FD_OPS(FD_OP_ENUM) OP_N };
#undef FD_OP_ENUM

#endif
