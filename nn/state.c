/*
 * nn/state.c - tg_state_print: the settings listed in nn/state.h, read
 * through their own getters (nothing is kept here).
 */
#include "nn/state.h"
#include "nn/dist.h"
#include "ops/ops.h"

#include <stdlib.h>

/* " (NAME=value in the environment)", or "" where NAME is not set: the
 * value shown may still differ from it when a call changed the setting */
static const char *env_note(const char *name, char *buf, size_t cap)
{
    const char *v = getenv(name);
    if (!v)
        return "";
    snprintf(buf, cap, "  (%s=%s in the environment)", name, v);
    return buf;
}

static const char *on_off(bool on) { return on ? "on" : "off"; }

void tg_state_print(FILE *f)
{
    char e[128];
    fprintf(f, "process (%s precision):\n",
            sizeof(tg_real) == 8 ? "double" : "single");
    fprintf(f, "  kernel level   %s%s\n", tg_kernels_level(),
            env_note("TG_KERNELS", e, sizeof e));
    fprintf(f, "  fusion         %s%s\n", on_off(tg_fusion_enabled()),
            env_note("TG_FUSE", e, sizeof e));
    fprintf(f, "  anomaly mode   %s%s\n", on_off(tg_anomaly_mode()),
            env_note("TG_ANOMALY", e, sizeof e));
    if (tg_dist_has_mpi())
        fprintf(f, "  MPI            rank %d of %d\n", tg_dist_rank(),
                tg_dist_size());
    else
        fprintf(f, "  MPI            not in this build\n");
    tg_arena_stats a = tg_arena_get_stats();
    fprintf(f, "this thread:\n");
    fprintf(f, "  tape           %lld entries, generation %u, arena %zu of "
            "%zu bytes in use\n", (long long)tg_tape_size(),
            (unsigned)tg_arena_generation(), a.used, a.reserved);
    fprintf(f, "  recording      %s\n", on_off(tg_is_grad_enabled()));
    fprintf(f, "  inference      %s\n", on_off(tg_inference_mode()));
    fprintf(f, "  step tag       %lld\n", (long long)tg_tape_step());
    fprintf(f, "  errors         %lu so far\n", tg_error_count());
    fprintf(f, "  threads        %d asked, %d in use%s\n",
            tg_get_num_threads(), tg_threads_in_use(),
            env_note("OMP_NUM_THREADS", e, sizeof e));
    fprintf(f, "  governor       %s%s\n", on_off(tg_thread_governor()),
            env_note("TG_GOVERNOR", e, sizeof e));
    fprintf(f, "  subnormals     %s%s\n",
            tg_flush_denormals() ? "flushed to zero" : "kept (IEEE)",
            env_note("TG_FLUSH_DENORMALS", e, sizeof e));
}
