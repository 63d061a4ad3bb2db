/*
 * fuzz/fuse_diff_gen.h - what the two files of the cell generator share
 * (not for the rest of the fuzzer: fuzz/fuse_diff.h is its interface):
 *   fuzz/fuse_diff_gen.c     values, picking them, the elementwise ops and
 *                            relu's kinks, the output states, a program
 *   fuzz/fuse_diff_shapes.c  weights sliced from parameters, shape ops,
 *                            reductions, products, constants, captured
 *                            state
 * Each emitting function appends instructions to the program and returns
 * the index of the value it made (fuzz/fuse_diff.h: fd_prog).
 */
#ifndef TG_FUZZ_FUSE_DIFF_GEN_H
#define TG_FUZZ_FUSE_DIFF_GEN_H

#include "fuzz/fuse_diff.h"
#include "fuzz/fuse_diff_ops.h"

#include <math.h>
#include <string.h>

#define VMAX 1e3     /* |every value| */
#define SMAX 4.0     /* |every state| */
#define BMAX 5       /* the largest batch a schedule uses */
#define MAXCHUNKS 16 /* (fuzz/fuse_diff_step.c keeps the chunks in o[16]) */
/* numbers in a value at most (a [260, 260] weight has 67600) */
#define NMAX (1 << 17)

typedef struct gen {
    fd_bytes *b;
    fd_prog *p;
    double pk; /* parameters lie in [-pk, pk] */
} gen;

static inline bool bug(int k) { return fd_bugs >> k & 1u; }
static inline const fd_val *V(const gen *g, int k) { return &g->p->v[k]; }
static inline double mag(const fd_val *v)
{
    return fmax(fabs(v->lo), fabs(v->hi));
}
static inline int dsize(int d) { return d == FD_B ? BMAX : d; }
static inline double numel(const fd_val *v)
{
    double n = 1;
    for (int k = 0; k < v->nd; k++)
        n *= dsize(v->d[k]);
    return n;
}

static inline fd_val fd_mkval(int nd, const int *d, double lo, double hi,
                              bool contig)
{
    fd_val v;
    memset(&v, 0, sizeof v);
    v.nd = nd;
    for (int k = 0; k < nd; k++)
        v.d[k] = d[k];
    v.lo = lo;
    v.hi = hi;
    v.contig = contig;
    return v;
}

/* the value a made again with another interval (elementwise results) */
static inline fd_val fd_like(const fd_val *a, double lo, double hi)
{
    return fd_mkval(a->nd, a->d, lo, hi, true);
}

/* ---- fuzz/fuse_diff_gen.c ----------------------------------------------- */
/* appends instruction op (operands a, b, c or -1; integer arguments i or
 * NULL; k) making value out */
int fd_put(gen *g, int op, int a, int b, int c, const int *i, double k,
           fd_val out);
bool fd_same_shape(const fd_val *a, const fd_val *b);
bool fd_bcast(const fd_val *a, const fd_val *b, fd_val *out);
bool fd_has_b(const fd_val *v);

/* a value satisfying ok (NULL: any), or -1. The predicates: v broadcasts
 * with ref (into at most NMAX numbers), has ref's shape, is [.., n] with a
 * size n last, is [B, arg] (any size when arg <= 0), ends with size arg,
 * has at least / at most arg axes, has a size >= arg, can be joined with
 * ref along axis arg */
typedef bool (*fd_pred)(const fd_val *v, const fd_val *ref, int arg);
int fd_choose(gen *g, fd_pred ok, const fd_val *ref, int arg);
bool fd_p_bcast(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_same(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_rows(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_bn(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_last(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_nd(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_ndmax(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_sized(const fd_val *v, const fd_val *ref, int arg);
bool fd_p_catable(const fd_val *v, const fd_val *ref, int arg);
/* a random axis of v with a size >= min, or -1 */
int fd_sized_axis(gen *g, const fd_val *v, int min);

int fd_un(gen *g, int op, int a, double k);   /* one input, its interval */
int fd_bin(gen *g, int op, int a, int b);     /* two, broadcast */
int fd_bounded(gen *g, int a, double m);      /* |a| <= m, or tanh(a) */
int fd_positive(gen *g, int a, double min, double top); /* in [min, top] */

/* ---- fuzz/fuse_diff_shapes.c -------------------------------------------- */
int fd_param_val(gen *g, int which); /* -1 weight_hh, -2 bias_hh, or an extra */
int fd_slice(gen *g, int w, int dim, int start, int end, int step);
int fd_chunk(gen *g, int w, int dim, int chunks, int at);
int fd_make_weight(gen *g, int m, int n, bool linear); /* [m, n] */
int fd_make_vector(gen *g, int m);                     /* [m] */
int fd_linear(gen *g, int x, int m);                   /* x W^T (+ b) */
void fd_gen_shape(gen *g);
void fd_gen_reduce(gen *g);
void fd_gen_product(gen *g);
void fd_gen_const(gen *g);
void fd_gen_captured(gen *g);

#endif
