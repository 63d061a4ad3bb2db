/*
 * autograd/anomaly.c - anomaly mode: the first NaN or infinity, traced to
 * the op that made it.
 *
 * The tape engine calls two hooks (autograd/anomaly.h) when the mode is
 * on: one on every op output as it is recorded, one on every input
 * gradient after an entry's backward rule ran. Nothing else of the engine
 * knows about it.
 */
#include "autograd/anomaly.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* When on, every op's output and every gradient a backward rule produces
 * is scanned for NaN and infinity as it is made; the first one found is
 * reported with the op, its tape entry, its inputs' shapes and the time
 * step, so a blow-up is traced to the op that caused it. Off by default
 * (it reads every number twice); TG_ANOMALY=1 in the environment turns it
 * on without recompiling. */
_Atomic int tg_anomaly_state_ = -1; /* -1: not read from the environment
                                        yet */

bool tg_anomaly_mode(void)
{
    int on = atomic_load_explicit(&tg_anomaly_state_, memory_order_relaxed);
    if (on < 0) {
        const char *v = getenv("TG_ANOMALY");
        int from_env = v && *v && strcmp(v, "0") != 0;
        /* (a switch made meanwhile by another thread wins) */
        atomic_compare_exchange_strong_explicit(&tg_anomaly_state_, &on,
                                                from_env,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
        on = atomic_load_explicit(&tg_anomaly_state_, memory_order_relaxed);
    }
    return on;
}

bool tg_set_anomaly_mode(bool on)
{
    bool old = tg_anomaly_mode();
    atomic_store_explicit(&tg_anomaly_state_, on, memory_order_relaxed);
    return old;
}

/* index of the first non-finite number of a contiguous buffer, or -1 */
static int64_t first_nonfinite(const tg_real *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return i;
    return -1;
}

/* "x[2, 3], #4[3, 3]" (and which of them hold non-finite numbers) */
static void describe_inputs(char *buf, size_t cap, tg_tensor *const *in,
                            int nin)
{
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < nin && n < cap; k++) {
        if (!in[k])
            continue;
        char shape[96];
        tg_shape_str(in[k], shape, sizeof shape);
        bool bad = tg_is_contiguous(in[k]) &&
                   first_nonfinite(in[k]->data, in[k]->numel) >= 0;
        if (in[k]->name)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s%s%s", k ? ", " : "",
                                  in[k]->name, shape, bad ? " (non-finite)" : "");
        else if (in[k]->entry >= 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s#%d%s%s", k ? ", " : "",
                                  (int)in[k]->entry, shape,
                                  bad ? " (non-finite)" : "");
        else
            n += (size_t)snprintf(buf + n, cap - n, "%st%u%s%s", k ? ", " : "",
                                  (unsigned)in[k]->id, shape,
                                  bad ? " (non-finite)" : "");
    }
}

/* " (time step 4)" for an entry tagged with a time step; for one tagged
 * TG_STEP_ALL (an op over all time steps at once, time along dim 0) the
 * step whose rows hold element i of t; "" for none */
static const char *step_str(char *buf, size_t cap, int64_t step,
                            const tg_tensor *t, int64_t i)
{
    if (step >= 0)
        snprintf(buf, cap, ", time step %lld", (long long)step);
    else if (step == TG_STEP_ALL && t->ndim >= 1 && t->numel > 0)
        snprintf(buf, cap, ", all time steps at once: the first bad number "
                 "is in time step %lld", (long long)(i / (t->numel / t->shape[0])));
    else
        buf[0] = 0;
    return buf;
}

void tg_anomaly_check_output(const tg_op *op, tg_tensor *out, int nin,
                             tg_tensor *const *in, int64_t entry,
                             int64_t step)
{
    if (!tg_is_contiguous(out) || (out->flags & TG_IS_VIEW))
        return; /* a view: its numbers were checked where they were made */
    int64_t i = first_nonfinite(out->data, out->numel);
    if (i < 0)
        return;
    out->flags |= TG_ANOMALOUS; /* the op returns NULL (tg_op_result) */
    char inputs[512], shape[96], when[128];
    describe_inputs(inputs, sizeof inputs, in, nin);
    double v = out->data[i];
    tg_error("anomaly", "op '%s' (tape entry #%lld%s) made %s at element "
             "%lld of its output %s; inputs: %s", op->name, (long long)entry,
             step_str(when, sizeof when, step, out, i),
             isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf", (long long)i,
             tg_shape_str(out, shape, sizeof shape), inputs);
}

int tg_anomaly_check_grads(int64_t index, const tg_entry *e)
{
    for (int k = 0; k < e->nin; k++) {
        const tg_tensor *x = e->in[k];
        int64_t i = x->grad ? first_nonfinite(x->grad, x->numel) : -1;
        if (i < 0)
            continue;
        char inputs[512], shape[96], when[128];
        describe_inputs(inputs, sizeof inputs, e->in, e->nin);
        bool seed_bad = false;
        for (int j = 0; j < e->nout; j++)
            seed_bad |= e->outs[j]->grad &&
                        first_nonfinite(e->outs[j]->grad,
                                        e->outs[j]->numel) >= 0;
        tg_error("anomaly", "the backward of op '%s' (tape entry #%lld%s) "
                 "made %s at element %lld of the gradient of its input %d "
                 "%s%s; inputs: %s", e->op->name, (long long)index,
                 step_str(when, sizeof when, e->step, x, i),
                 isnan(x->grad[i]) ? "NaN" : "inf",
                 (long long)i, k, tg_shape_str(x, shape, sizeof shape),
                 seed_bad ? " (the gradient it received was already "
                            "non-finite)" : "", inputs);
        return -1;
    }
    return 0;
}

