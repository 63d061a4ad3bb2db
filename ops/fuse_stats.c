/*
 * ops/fuse_stats.c - the counters of ops/fuse_stats.h and the names of
 * the vector machine's codes and of the guards.
 */
#include "ops/fuse_stats.h"
#include "ops/fuse_internal.h"
#include "tensor/ds.h"

#include <string.h>

static _Thread_local tg_fuse_stats stats; /* per thread, like the tape */

void tg_fuse_stats_get(tg_fuse_stats *out) { *out = stats; }
void tg_fuse_stats_reset(void) { memset(&stats, 0, sizeof stats); }

void tg_fuse_count_group(const struct group *g, int phase)
{
    stats.groups[phase]++;
    for (int64_t i = 0; i < arrlen(g->ins); i++) {
        const vm_ins *in = &g->ins[i];
        if (phase == TG_FUSE_FWD) {
            stats.code[phase][in->code]++;
            continue;
        }
        for (int a = 0; a < in->rule->nin; a++)
            stats.code[phase][in->rule->d[a].code]++;
    }
}

void tg_fuse_count_trace(void) { stats.traces++; }

bool tg_fuse_guard_failed(int kind)
{
    stats.guard[kind]++;
    return false;
}

/* indexed by code: a code appended to ops/internal.h without a name here
 * makes the array one short (the assertion below fails to compile); one
 * inserted without a name is shown as "?" */
static const char *const code_names[] = {
    [TG_VM_COPY] = "copy",         [TG_VM_ADD] = "add",
    [TG_VM_SUB] = "sub",           [TG_VM_MUL] = "mul",
    [TG_VM_DIV] = "div",           [TG_VM_POW] = "pow",
    [TG_VM_NEG] = "neg",           [TG_VM_ADDK] = "addk",
    [TG_VM_MULK] = "mulk",         [TG_VM_POWK] = "powk",
    [TG_VM_EXP] = "exp",           [TG_VM_LOG] = "log",
    [TG_VM_TANH] = "tanh",         [TG_VM_SIGMOID] = "sigmoid",
    [TG_VM_RELU] = "relu",         [TG_VM_SQRT] = "sqrt",
    [TG_VM_STEP] = "step",         [TG_VM_DTANH] = "dtanh",
    [TG_VM_DSIGMOID] = "dsigmoid", [TG_VM_DRELU] = "drelu",
    [TG_VM_DSQRT] = "dsqrt",       [TG_VM_DSTEP] = "dstep",
    [TG_VM_DDIVB] = "ddivb",       [TG_VM_DPOWA] = "dpowa",
    [TG_VM_DPOWB] = "dpowb",       [TG_VM_DPOWK] = "dpowk",
};
_Static_assert(sizeof code_names / sizeof *code_names == TG_VM_NCODES,
               "every vector machine code needs a name");

static const char *const guard_names[] = {
    [TG_GUARD_LAYOUT] = "layout", [TG_GUARD_USER] = "user",
    [TG_GUARD_CAPTURED] = "captured", [TG_GUARD_VERSION] = "version",
};
_Static_assert(sizeof guard_names / sizeof *guard_names == TG_GUARD_NKINDS,
               "every guard needs a name");

const char *tg_vm_code_name(int code)
{
    return code >= 0 && code < TG_VM_NCODES && code_names[code]
               ? code_names[code]
               : "?";
}

const char *tg_fuse_guard_name(int kind)
{
    return kind >= 0 && kind < TG_GUARD_NKINDS ? guard_names[kind] : "?";
}
