/*
 * ops/fuse/fuse_stats.c - the counters of ops/fuse/fuse_stats.h and the names
 * of the vector machine's codes and of the guards.
 */
#include "ops/fuse/fuse_stats.h"
#include "ops/fuse/fuse_internal.h"
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

/* indexed by code, from ops/kernels/vm_codes.h */
#define NAME_OF(NAME, name, cost, value, recorded) [TG_VM_##NAME] = name,
static const char *const code_names[TG_VM_NCODES] = {TG_VM_CODES(NAME_OF)};
#undef NAME_OF

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
