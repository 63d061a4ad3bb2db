/*
 * tensor/tensor.h - n-dimensional tensors: storage, shape, strides, views.
 *
 * This is the bottom layer of tapegrad: it describes blocks of numbers.
 * It computes no gradient and records nothing; the fields that the layers
 * above need (grad, tangent, the tape entry that made a tensor) are
 * carried here but filled in by autograd/. Everything above it
 * (autograd/, ops/, nn/) is built on the struct below.
 *
 * A tensor is a header (shape, strides, flags) pointing at numbers that
 * live somewhere else. Element (i0, i1, ...) sits at
 *
 *     data[i0 * stride[0] + i1 * stride[1] + ...]
 *
 * A freshly made tensor is contiguous and row-major (the last index moves
 * fastest). A *view* (reshape, permute, slice) is a new header over the
 * same numbers with other strides: nothing is copied.
 *
 * Two lifetimes, no reference counts:
 *   - temporary tensors (tg_zeros, tg_randn, every op's output, every view)
 *     live in the arena (tensor/arena.h). They, their gradients and every
 *     pointer into them stay valid until tg_tape_reset() (or a rewind to an
 *     earlier mark); then they are all gone at once. Each carries the
 *     generation of the arena it was made in, and an op given one of an
 *     ended generation refuses it (tg_check_live, below).
 *   - persistent tensors (tg_tensor_new) live on the heap until the caller
 *     passes them to tg_tensor_free(). Model parameters are persistent; so
 *     is anything that must survive a tape reset (a carried hidden state).
 *
 * The scalar type is tg_real: float, or double when the library is built
 * with -DTG_DOUBLE (the tests build such a copy for gradient checks).
 *
 * Threads. Each thread has its own arena, tape, modes (grad, step tag,
 * tracing), random generator (tensor/rng.h), error handler and thread
 * governor, so independent models train in parallel threads. Temporaries
 * belong to the thread that made them; persistent tensors may be shared
 * between threads as long as no thread changes them (parameters read by
 * several models), and a module or parameter list is used by one thread
 * at a time. Process-wide, read-mostly switches (kernel level, fusion,
 * anomaly mode, flushing of subnormals for new threads) are set before
 * threads start. README, "Threads", has the whole rule.
 *
 * Example:
 *
 *     tg_tensor *a = tg_arange(0, 6, 1);              // [0 1 2 3 4 5]
 *     tg_tensor *m = tg_view_reshape(a, TG_SHAPE(2, 3));
 *     tg_tensor *t = tg_view_permute(m, (int[]){1, 0}); // 3x2, no copy
 *     tg_print(t);
 */
#ifndef TG_TENSOR_H
#define TG_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The headers compile as C11 and as C++11 (declarations in extern "C"):
 * a function that never returns is marked with C11's _Noreturn or C++'s
 * [[noreturn]]. */
#ifdef __cplusplus
#define TG_NORETURN [[noreturn]]
#else
#define TG_NORETURN _Noreturn
#endif

#ifdef TG_DOUBLE
typedef double tg_real;
#define TG_REAL_NAME "double"
#else
typedef float tg_real;
#define TG_REAL_NAME "float"
#endif

/* A program must link the library built for its tg_real: libtapegrad for
 * float, libtapegrad_f64 for -DTG_DOUBLE. Every file that includes this
 * header keeps the address of a marker that only the library of the same
 * precision defines, so that a mismatched pair fails to link - with
 * "undefined reference to `tg_abi_f32_link_libtapegrad'" for a float
 * program given the double library - instead of running on numbers of the
 * wrong width. */
#ifdef TG_DOUBLE
#define TG_ABI_MARK tg_abi_f64_link_libtapegrad_f64
#else
#define TG_ABI_MARK tg_abi_f32_link_libtapegrad
#endif
extern const char TG_ABI_MARK;
#if defined(__GNUC__) || defined(__clang__)
static const char *const tg_abi_check_ __attribute__((used)) = &TG_ABI_MARK;
#endif

/* Most dimensions a tensor may have. */
#define TG_MAX_DIMS 6

/* TG_SHAPE(2, 3) expands to the two arguments `2, (int64_t[]){2, 3}`
 * that every function taking (int ndim, const int64_t *shape) expects:
 *     tg_zeros(TG_SHAPE(4, 8)) */
#define TG_SHAPE(...)                                                      \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),             \
        (const int64_t[]) { __VA_ARGS__ }

/* tensor flags */
enum {
    TG_REQUIRES_GRAD = 1u << 0, /* backward computes a gradient for it  */
    TG_PERSISTENT = 1u << 1,    /* heap-owned: survives tg_tape_reset    */
    TG_RETAIN_GRAD = 1u << 2,   /* keep .grad of an intermediate tensor  */
    TG_IS_VIEW = 1u << 3,       /* data belongs to another tensor        */
    TG_ANOMALOUS = 1u << 4,     /* anomaly mode found NaN/inf in it: the
                                   op that made it returned NULL         */
    TG_IN_BLOCK = 1u << 5,      /* a persistent tensor whose data and grad
                                   live in a parameter block (nn/params.h,
                                   tg_params_flatten): tg_tensor_free
                                   refuses it until the list holding the
                                   block is freed                      */
};

typedef struct tg_tensor {
    tg_real *data;  /* element (0, ..., 0); see strides                    */
    tg_real *grad;  /* NULL, or a contiguous row-major buffer of numel
                       numbers: dL/d(this) in logical order, whatever the
                       strides of data are                               */
    int64_t shape[TG_MAX_DIMS];
    int64_t stride[TG_MAX_DIMS]; /* in elements, not bytes              */
    int64_t numel;
    int ndim;       /* 0 for a scalar                                      */
    unsigned flags; /* TG_REQUIRES_GRAD | ...                              */
    int32_t entry;  /* index of the tape entry that made it; -1 for leaves */
    uint32_t id;    /* serial number: printing, and identity (a header
                       at the same address later is another tensor)     */
    const char *name; /* optional; set with tg_set_name (not copied)       */
    const struct tg_prepared *prepared; /* packed copies of a weight made
                       by tg_prepare_weight (ops/matmul.h), or NULL       */
    void *packed;   /* a persistent tensor used as a weight without
                       gradients: its W^T kept packed between calls by
                       ops/matmul.c (malloc'ed, freed with the tensor),
                       or NULL                                            */
    tg_real *tangent; /* forward mode (autograd/tape.h, tg_jvp): the
                       directional derivative of these numbers, contiguous
                       in logical order like grad; NULL: zero            */
    struct tg_tensor *tangent_rec; /* with tg_jvp_create_graph: the same
                       tangent as a recorded tensor, so that it can itself
                       be differentiated (its numbers are tangent)       */
    uint32_t *version; /* how often its numbers were changed in place:
                       points at version_own, or for a view at its base's
                       counter (read with tg_version)                    */
    uint32_t version_own;
    uint32_t gen;   /* a temporary's generation (tensor/arena.h): the
                       tape reset it dies at; 0 for persistent tensors  */
} tg_tensor;

/* ---- in-place changes -------------------------------------------------
 * Every tensor counts the changes made to its numbers in place; a view
 * shares the count of the tensor it views. An op records the counts of
 * the inputs (and output) its backward will read, and backward refuses to
 * run if one changed since - say an optimizer step or a tg_fill_ on a
 * weight between forward and backward, which would give wrong gradients.
 * tg_fill_*, tg_copy_, the optimizers and tg_params_load count their
 * changes themselves; code that writes t->data by hand calls
 * tg_bump_version(t) to be checked the same way. */
static inline uint32_t tg_version(const tg_tensor *t)
{
    return t && t->version ? *t->version : 0;
}
void tg_bump_version(tg_tensor *t);
/* The id the next tensor header made by this thread will get. A tensor t
 * of this thread was made after the call that returned `since` iff
 * tg_made_since(t, since) (ids are unique in the process, count up in
 * each thread and wrap after 2^32 headers; the test holds across one
 * wrap). */
uint32_t tg_next_id(void);
static inline bool tg_made_since(const tg_tensor *t, uint32_t since)
{
    return (uint32_t)(t->id - since) < (uint32_t)(tg_next_id() - since);
}

/* ---- errors ----------------------------------------------------------
 * Every misuse (a shape mismatch, a bad argument) goes through tg_error.
 * By default it prints "tapegrad: OP: MESSAGE" to stderr and aborts. A
 * program that wants to carry on (a REPL, the tests) installs a handler;
 * if the handler returns, the failing function returns NULL (or -1), and
 * every op given a NULL input quietly returns NULL too, so one check at the
 * end of a computation is enough. The handler, the last message and the
 * count are the calling thread's: a new thread starts with the default
 * handler and installs its own if it wants to carry on. */
typedef void (*tg_error_handler)(const char *op, const char *msg, void *ud);
/* Installs fn (NULL: the default, abort) for the calling thread. Returns
 * the previous handler. */
tg_error_handler tg_set_error_handler(tg_error_handler fn, void *ud);
/* Reports an error from op (printf-style). Returns only if a handler is
 * installed. */
void tg_error(const char *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The last message reported ("op: message"), "" if none. Valid until the
 * next error. tg_clear_error() empties it. */
const char *tg_last_error(void);
/* For functions that report into a caller's buffer instead (a file's
 * reader, a state loader: an err argument): printf into err[cap], nothing
 * when err is NULL or cap is 0. */
void tg_errbuf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tg_clear_error(void);
/* Count of errors reported in this thread since it started. */
unsigned long tg_error_count(void);

/* ---- lifetimes --------------------------------------------------------
 * The check every op makes of its inputs first (ops/internal.h,
 * TG_OP_INPUTS), and backward, views, copies, fills and tg_item of theirs:
 * true when each of the n tensors is persistent or a temporary of this
 * thread's current generation (tensor/arena.h). false quietly when one is
 * NULL (an earlier error was reported), and false after an error from op
 * naming the tensor (id, shape, its generation and the current one) when
 * one is a temporary that tg_tape_reset has freed - or another thread's.
 * What is caught and what is not: tensor/arena.h, "generations". */
bool tg_check_live(const char *op, int n, const tg_tensor *const *ts);

/* A never-compiled-out check for tapegrad's own invariants: prints
 * file:line and aborts. Not for user errors (those use tg_error). */
#define TG_ASSERT(cond)                                                     \
    do {                                                                   \
        if (!(cond))                                                       \
            tg_assert_fail(__FILE__, __LINE__, #cond);                     \
    } while (0)
TG_NORETURN void tg_assert_fail(const char *file, int line, const char *what);

/* Checked allocation: abort with a message when memory runs out. */
void *tg_xmalloc(size_t n);
void *tg_xcalloc(size_t count, size_t size);
void *tg_xrealloc(void *p, size_t n);
/* n zeroed bytes aligned to 64 (a cache line, an AVX-512 register), for
 * the numbers of persistent tensors and their gradients; free() them. */
void *tg_xcalloc_aligned(size_t n);

/* ---- making tensors ------------------------------------------------
 * The tg_zeros family returns temporaries (arena, see above). ndim may be
 * 0..TG_MAX_DIMS, sizes >= 0. They never fail on a valid shape; a bad
 * shape reports an error and returns NULL. */
tg_tensor *tg_empty(int ndim, const int64_t *shape); /* uninitialised */
tg_tensor *tg_zeros(int ndim, const int64_t *shape);
tg_tensor *tg_ones(int ndim, const int64_t *shape);
tg_tensor *tg_full(int ndim, const int64_t *shape, double value);
tg_tensor *tg_scalar(double value); /* 0-d */
/* 1-d: start, start+step, ... while < end (> end for negative step). */
tg_tensor *tg_arange(double start, double end, double step);
/* A copy of the caller's count numbers in row-major order. */
tg_tensor *tg_from_buffer(int ndim, const int64_t *shape,
                          const tg_real *buf);
/* A header over the caller's buffer, no copy: the buffer must outlive the
 * tensor and stay contiguous row-major. */
tg_tensor *tg_wrap_buffer(int ndim, const int64_t *shape, tg_real *buf);
struct tg_rng;
/* uniform in [lo, hi) and normal(mean, std) from rng (NULL: the global
 * generator, see tensor/rng.h). */
tg_tensor *tg_rand(int ndim, const int64_t *shape, struct tg_rng *rng,
                   double lo, double hi);
tg_tensor *tg_randn(int ndim, const int64_t *shape, struct tg_rng *rng,
                    double mean, double std);
/* A contiguous copy of t's numbers (not recorded on the tape). */
tg_tensor *tg_clone(const tg_tensor *t);

/* Persistent tensors: zero-filled, on the heap, freed by tg_tensor_free.
 * Its .grad (when requires_grad is set) is also on the heap, and so is a
 * forward-mode direction given to it (tg_set_tangent): freed with it. A
 * tensor moved into a flattened parameter block (TG_IN_BLOCK) is refused
 * with an error until the list that holds the block is freed. */
tg_tensor *tg_tensor_new(int ndim, const int64_t *shape);
void tg_tensor_free(tg_tensor *t); /* NULL is fine */

/* For autograd/ only: tg_tensor_free calls this hook with a tensor that
 * holds a tangent, before freeing it, so that the forward-mode code,
 * which keeps a list of the leaves it gave a tangent, drops it from the
 * list (and frees the tangent) instead of touching freed memory at the
 * next tg_clear_tangents. This layer knows nothing else of tangents:
 * autograd/forward.c installs the hook when the library loads (NULL:
 * none), before any thread starts. */
typedef void (*tg_tangent_free_hook)(tg_tensor *t);
void tg_set_tangent_free_hook(tg_tangent_free_hook fn);

/* In-place fills (any tensor, contiguous or not). */
void tg_fill_(tg_tensor *t, double value);
void tg_fill_uniform_(tg_tensor *t, struct tg_rng *rng, double lo,
                      double hi);
void tg_fill_normal_(tg_tensor *t, struct tg_rng *rng, double mean,
                     double std);
/* dst = src element by element; the shapes must be equal. Returns 0, or -1
 * after reporting a mismatch. */
int tg_copy_(tg_tensor *dst, const tg_tensor *src);
/* Copies t's numbers, row-major, into out (numel elements). */
void tg_to_buffer(const tg_tensor *t, tg_real *out);

/* ---- reading -------------------------------------------------------- */
bool tg_is_contiguous(const tg_tensor *t);
bool tg_same_shape(const tg_tensor *a, const tg_tensor *b);
/* Element at idx[0..ndim-1]; tg_item for one-element tensors. */
double tg_get(const tg_tensor *t, const int64_t *idx);
void tg_set(tg_tensor *t, const int64_t *idx, double value);
double tg_item(const tg_tensor *t);
/* Element i of the row-major order (follows strides). */
double tg_flat_get(const tg_tensor *t, int64_t i);
/* Writes "[2, 3]" into buf and returns buf (tg_dims_str: for any list of
 * sizes, a file's tensor's as well). */
char *tg_shape_str(const tg_tensor *t, char *buf, size_t cap);
char *tg_dims_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* Names are for printing; the string is not copied. Returns t. */
tg_tensor *tg_set_name(tg_tensor *t, const char *name);

/* Prints shape and numbers, PyTorch-style, eliding the middle of large
 * tensors. */
void tg_print(const tg_tensor *t);
void tg_fprint(FILE *f, const tg_tensor *t);

/* ---- views (no copy, not recorded on the tape) ---------------------
 * ops/shape.h has the recorded versions that autograd differentiates;
 * these are the raw header surgery they are built on. Each returns a
 * temporary header sharing t's numbers, or NULL after reporting an error.
 * tg_view_reshape fails unless t is contiguous (ops/shape.h copies). One
 * size of -1 is inferred. */
tg_tensor *tg_view_reshape(const tg_tensor *t, int ndim,
                           const int64_t *shape);
/* perm is a permutation of 0..ndim-1: result dim i is t's dim perm[i]. */
tg_tensor *tg_view_permute(const tg_tensor *t, const int *perm);
tg_tensor *tg_view_transpose(const tg_tensor *t, int d0, int d1);
/* Elements start, start+step, ... < end along dim, as Python slices them:
 * negative dim, start and end count from the end, start and end are then
 * clamped to [0, size], and a range that selects nothing gives an empty
 * view (x[10:20] of 3 rows is empty; x[-10:2] is rows 0 and 1). step >= 1. */
tg_tensor *tg_view_slice(const tg_tensor *t, int dim, int64_t start,
                         int64_t end, int64_t step);
/* Those rules: start and end of a slice of a dimension of size n, made
 * 0 <= start <= end <= n. */
void tg_slice_bounds(int64_t n, int64_t *start, int64_t *end);
/* Same numbers, stride 0 along new or size-1 dims: t seen at shape (-1
 * keeps the size of one of t's dimensions, as in PyTorch). */
tg_tensor *tg_view_expand(const tg_tensor *t, int ndim,
                          const int64_t *shape);

/* Low-level kernel shared by copies and view gradients: for every index
 * of shape, dst[index . dstride] (+)= src[index . sstride]. */
void tg_strided_copy(int ndim, const int64_t *shape, tg_real *dst,
                     const int64_t *dstride, const tg_real *src,
                     const int64_t *sstride, bool accumulate);

/* Internal: a header for a tensor whose numbers are allocated by the
 * caller (used by ops to make outputs). */
tg_tensor *tg_tensor_header(int ndim, const int64_t *shape);
/* Row-major strides of shape into stride; returns numel. */
int64_t tg_contiguous_strides(int ndim, const int64_t *shape,
                              int64_t *stride);
/* Normalises a possibly negative dim for a tensor of ndim dims; -1 and a
 * reported error from op if out of range. */
int tg_norm_dim(const char *op, int dim, int ndim);

/* Threads used by parallel kernels (OpenMP); 1 without OpenMP
 * (tensor/threads.c). tg_get_num_threads is the number asked for; the
 * governor below may use fewer for a while. Like OpenMP's own setting,
 * the count and the governor are the calling thread's: two threads
 * training two models each set theirs (and together should not ask for
 * more than the cores). */
void tg_set_num_threads(int n);
int tg_get_num_threads(void);
/* The thread governor. On a shared machine, a parallel region must wait
 * for its slowest thread; when another busy process takes a core, that
 * thread waits for a CPU, and two threads become many times slower than
 * one. tg_threads_checkpoint, called between pieces of work (the sequence
 * layer calls it at every time step), reads how long this thread waited
 * for a CPU (Linux: /proc/thread-self/schedstat) every 20 ms (10 ms at
 * the start and in a probe); if that is over 5% of the time while several
 * threads are used, it goes down to one, and tries the number asked for
 * again after 1 s, then 2 s, 4 s, up to 8 s while the machine stays busy. Results do not depend
 * on the thread count, so this changes only the speed. On by default;
 * tg_set_thread_governor(false) or TG_GOVERNOR=0 turns it off. Returns
 * the previous state. tg_threads_in_use: the count used now. */
bool tg_set_thread_governor(bool on);
bool tg_thread_governor(void);
/* Subnormal floats (below 1.2e-38) are flushed to zero by the CPU (x86:
 * FTZ and DAZ), in every thread: vanishing gradients would otherwise make
 * x86 arithmetic up to a hundred times slower. On by default (as if
 * tg_set_flush_denormals(true) ran when the library loaded); off with
 * TG_FLUSH_DENORMALS=0 or tg_set_flush_denormals(false), for IEEE
 * gradual underflow. The CPU's setting is per thread: a thread inherits
 * its creator's, and tg_set_flush_denormals changes the calling thread
 * and its OpenMP workers. Returns the previous state. */
bool tg_set_flush_denormals(bool on);
bool tg_flush_denormals(void);
/* internal: run once when the library loads (tensor/arena.c) */
void tg_threads_init_(void);
void tg_threads_checkpoint(void);
int tg_threads_in_use(void);

#ifdef __cplusplus
}
#endif

#endif
