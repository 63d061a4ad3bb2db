/*
 * autograd/anomaly.h - the hooks the tape engine calls in anomaly mode
 * (not a public header: the switch itself, tg_set_anomaly_mode, is
 * declared in autograd/tape.h).
 */
#ifndef TG_AUTOGRAD_ANOMALY_H
#define TG_AUTOGRAD_ANOMALY_H

#include "autograd/tape.h"

#include <stdatomic.h>

/* -1 unread, 0 off, 1 on. Process-wide and read-mostly (README,
 * "Threads"): atomic, so that threads reading TG_ANOMALY the first time
 * together, or a switch while others run, are no data race. */
extern _Atomic int tg_anomaly_state_;

/* true when anomaly mode is on (cheap: one load once the environment has
 * been read) */
static inline bool tg_anomaly_mode_on(void)
{
    return atomic_load_explicit(&tg_anomaly_state_, memory_order_relaxed) == 0
               ? false
               : tg_anomaly_mode();
}

/* Reports (tg_error) the first non-finite number of out, made by op as
 * tape entry `entry` at time step `step`. */
void tg_anomaly_check_output(const tg_op *op, tg_tensor *out, int nin,
                             tg_tensor *const *in, int64_t entry,
                             int64_t step);
/* After entry e's backward rule: 0, or -1 after reporting the first
 * non-finite number in the gradient of one of its inputs. */
int tg_anomaly_check_grads(int64_t index, const tg_entry *e);

#endif
