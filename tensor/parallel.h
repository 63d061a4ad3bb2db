/*
 * tensor/parallel.h - how kernels use OpenMP (internal to the library).
 *
 * Rules every kernel follows, so that results are the same bit for bit
 * whatever OMP_NUM_THREADS is:
 *   - only outer loops are parallel, and each iteration writes outputs that
 *     no other iteration writes (the comment above each loop says which);
 *   - each output is computed in the same order whichever thread runs it;
 *   - reductions over many elements are split into blocks of a fixed size
 *     (TG_REDUCE_BLOCK), each summed in order, then the block sums summed in
 *     order: the partition depends on the size, never on the thread count;
 *   - a loop runs in parallel only above a size threshold, because starting
 *     threads costs a few microseconds. Hot small loops (the elementwise
 *     driver, strided copies) test the size themselves and skip OpenMP
 *     entirely below it: even `omp parallel if (0)` costs ~0.3 us, as much
 *     as a small op.
 * Without OpenMP (make OPENMP=0) the pragmas vanish and all of this still
 * holds.
 */
#ifndef TG_PARALLEL_H
#define TG_PARALLEL_H

#define TG_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
/* `TG_OMP_FOR(work)` before a for loop: parallel when work (an estimate
 * of the loop's total element operations) is at least TG_PAR_MIN. */
#define TG_OMP_FOR(work)                                                   \
    TG_PRAGMA(omp parallel for schedule(static) if ((work) >= TG_PAR_MIN))
#else
#define TG_OMP_FOR(work)
#endif

/* Below this many element operations a loop runs on one thread. */
#define TG_PAR_MIN 32768
/* Fixed block size of parallel reductions. */
#define TG_REDUCE_BLOCK 4096

#endif
