/*
 * nn/optim_internal.h - what nn/optim.c (the step), nn/optim_io.c (the
 * state in files) and the kinds' files share (not a public header).
 */
#ifndef TG_NN_OPTIM_INTERNAL_H
#define TG_NN_OPTIM_INTERNAL_H

#include "nn/optim.h"

#include <stdbool.h>
#include <stdint.h>

/* The kind of state o keeps, and so which buffers (SGD's momentum
 * buffer lives in m). */
static inline const tg_optim_state *tg_optim_state_(const tg_optim *o)
{
    return &o->type->states[o->type->state_of ? o->type->state_of(o) : 0];
}
static inline bool tg_optim_has_m_(const tg_optim *o)
{
    return tg_optim_state_(o)->buffers >= 1;
}
static inline bool tg_optim_has_v_(const tg_optim *o)
{
    return tg_optim_state_(o)->buffers >= 2;
}

/* a zeroed state buffer of numel numbers, on the heap */
static inline tg_real *tg_optim_new_buffer_(int64_t numel)
{
    return (tg_real *)tg_xcalloc((size_t)(numel ? numel : 1), sizeof(tg_real));
}

/* Parameters added to the list after the optimizer was made get empty
 * state slots (the list only ever grows). 0, or -1 after an error from op
 * when the list has fewer parameters than the optimizer: it was freed. */
int tg_optim_sync_count_(const char *op, tg_optim *o);
/* parameter i's buffers are gone: its next step starts afresh */
void tg_optim_drop_state_(tg_optim *o, int i);

#endif
