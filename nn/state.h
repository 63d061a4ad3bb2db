/*
 * nn/state.h - every setting of the library in one place: what it is,
 * whose it is (the process's, or each thread's), how it is changed, the
 * environment variable read the first time it is needed, and its
 * default. The settings themselves live beside the code they steer (the
 * file in the last column); this header is their index, and
 * tg_state_print shows them as they are now.
 *
 * Process-wide: read-mostly, set before threads start (README, "Threads")
 *
 *   setting        changed by              environment       default
 *   kernel level   tg_kernels_set          TG_KERNELS=LEVEL  the best the
 *                                                            CPU runs
 *   fusion         tg_set_fusion           TG_FUSE=0         on
 *   anomaly mode   tg_set_anomaly_mode     TG_ANOMALY=1      off
 *   cell types     tg_cell_type_register   -                 the built-in
 *   MPI            tg_dist_init            (the launcher's)  not started
 *
 * Each thread's own (a new thread starts from the default; subnormals:
 * from its creator's setting)
 *
 *   setting        changed by              environment       default
 *   tape, arena    tg_tape_reset, _rewind  -                 empty
 *   recording      tg_set_grad_enabled     -                 on
 *   inference      tg_set_inference_mode   -                 off
 *   step tag       tg_tape_set_step        -                 -1 (none)
 *   tangents       tg_set_tangent          -                 none
 *   random numbers tg_manual_seed          -                 seed 0
 *   errors         tg_set_error_handler    -                 print, abort
 *   threads        tg_set_num_threads      OMP_NUM_THREADS   OpenMP's
 *   governor       tg_set_thread_governor  TG_GOVERNOR=0     on
 *   subnormals     tg_set_flush_denormals  TG_FLUSH_DENORMALS=0  flushed
 *
 * Where they live: ops/kernels/kernels.c, ops/fuse/fuse.c, autograd/anomaly.c,
 * nn/cells.c (the registry, behind a lock), nn/dist.c (MPI: the main
 * thread's), autograd/tape.c (tape, recording, step tag), tensor/arena.c,
 * autograd/forward.c, tensor/rng.c, tensor/error.c, tensor/threads.c.
 *
 * (Also per thread, internal: tensor ids, the compiled steps' counters of
 * ops/fuse/fuse_stats.h. Objects carry their own state: a model, its
 * parameter list, its optimizer and its compiled programs belong to the
 * thread that uses them.)
 *
 * What changes numbers: the kernel level (only through rounding: README,
 * "What gives the same bits"), anomaly mode (stops at the first NaN), the
 * random seed and the subnormal flush. What never does: fusion, the
 * thread count and the governor.
 */
#ifndef TG_NN_STATE_H
#define TG_NN_STATE_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One line per setting above, with its value now for the calling thread
 * and where the value came from (default, environment, or set by a call),
 * e.g. "fusion        on     (default)". For a bug report, or the first
 * lines of a run's log. */
void tg_state_print(FILE *f);

#ifdef __cplusplus
}
#endif

#endif
