/*
 * fuzz/fuse_diff_cov.c - what the differential fuzzer reached: the vector
 * machine codes run forward, backward and in forward mode and the guards
 * that failed (counted by the library, ops/fuse/fuse_stats.h), the scenarios
 * of fuzz/fuse_diff.h, and why steps were not compiled.
 */
#include "fuzz/fuse_diff.h"
#include "ops/fuse/fuse_stats.h"

#include <stdio.h>
#include <string.h>

static bool bug(int k) { return fd_bugs >> k & 1u; }

typedef struct sc_info {
    const char *name, *text;
    int bug; /* required only when this bug's switch is on (k + 1; 0:
                always; -1: never) */
} sc_info;
#define SC_INFO(name, bug, text) {#name, text, bug},
static const sc_info sc_infos[] = {FD_SCENARIOS(SC_INFO)};
#undef SC_INFO

static struct {
    long runs, compiled_runs;
    long sc[SC_N];
    struct {
        char why[96];
        long n;
    } refused[16];
    int nrefused;
} cov;

void fd_cov_refused(const char *why)
{
    for (int i = 0; i < cov.nrefused; i++)
        if (!strncmp(cov.refused[i].why, why, sizeof cov.refused[i].why - 1)) {
            cov.refused[i].n++;
            return;
        }
    if (cov.nrefused == 16)
        return;
    snprintf(cov.refused[cov.nrefused].why, sizeof cov.refused[0].why, "%s",
             why);
    cov.refused[cov.nrefused++].n = 1;
}

void fd_cov_add(int scenario) { cov.sc[scenario]++; }

void fd_cov_input(bool compiled)
{
    cov.runs++;
    cov.compiled_runs += compiled;
}

/* codes of the forward rules, and of the derivative rules (ops/unary.c,
 * ops/elementwise.c) */
static bool fwd_code(int c) { return c >= TG_VM_ADD && c <= TG_VM_STEP; }
static bool drv_code(int c)
{
    return c == TG_VM_COPY || c == TG_VM_NEG || c == TG_VM_MUL ||
           c == TG_VM_DIV || c == TG_VM_MULK || c >= TG_VM_DTANH;
}

void fd_cov_print(FILE *f)
{
    tg_fuse_stats st;
    tg_fuse_stats_get(&st);
    fprintf(f, "fuse_diff coverage: %ld inputs, %ld with a compiled step; "
            "known-bug switches:", cov.runs, cov.compiled_runs);
    for (int k = 0; k < FD_NBUGS; k++)
        if (bug(k))
            fprintf(f, " %c", 'a' + k);
    fprintf(f, "%s\n", fd_bugs ? "" : " none");
    fprintf(f, "  vector machine codes run (group runs: forward %llu, "
            "backward %llu, jvp %llu):\n", (unsigned long long)st.groups[0],
            (unsigned long long)st.groups[1], (unsigned long long)st.groups[2]);
    fprintf(f, "    %-9s %10s %10s %10s\n", "code", "forward", "backward",
            "jvp");
    for (int c = 0; c < TG_VM_NCODES; c++)
        fprintf(f, "    %-9s %10llu %10llu %10llu\n", tg_vm_code_name(c),
                (unsigned long long)st.code[TG_FUSE_FWD][c],
                (unsigned long long)st.code[TG_FUSE_BWD][c],
                (unsigned long long)st.code[TG_FUSE_JVP][c]);
    fprintf(f, "  traces %llu; guard failures:", (unsigned long long)st.traces);
    for (int k = 0; k < TG_GUARD_NKINDS; k++)
        fprintf(f, " %s %llu", tg_fuse_guard_name(k),
                (unsigned long long)st.guard[k]);
    fprintf(f, "\n  scenarios:\n");
    for (int s = 0; s < SC_N; s++)
        fprintf(f, "    %8ld  %s%s\n", cov.sc[s], sc_infos[s].text,
                sc_infos[s].bug > 0 && !bug(sc_infos[s].bug - 1)
                    ? " (switch off)"
                    : sc_infos[s].bug < 0 ? " (may not happen)" : "");
    fprintf(f, "  steps not compiled, why:\n");
    for (int i = 0; i < cov.nrefused; i++)
        fprintf(f, "    %8ld  %s\n", cov.refused[i].n, cov.refused[i].why);
}

static int missing(FILE *f, const char *what, const char *name)
{
    fprintf(f, "not reached: %s%s\n", what, name);
    return 1;
}

int fd_cov_check(FILE *f)
{
    tg_fuse_stats st;
    tg_fuse_stats_get(&st);
    int n = 0;
    for (int c = 0; c < TG_VM_NCODES; c++) {
        const char *name = tg_vm_code_name(c);
        if (fwd_code(c) && !st.code[TG_FUSE_FWD][c])
            n += missing(f, "forward, code ", name);
        if (drv_code(c) && !st.code[TG_FUSE_BWD][c])
            n += missing(f, "backward, code ", name);
        if (drv_code(c) && !st.code[TG_FUSE_JVP][c])
            n += missing(f, "tg_jvp, code ", name);
    }
    for (int k = 0; k < TG_GUARD_NKINDS; k++) {
        /* a sequence layer's run reaches the layout and user-block guards;
         * a captured tensor replaced at its own address, or changed in
         * place during a sequence, cannot be made from outside a forward:
         * tests/grad_fuse_guards.c reaches those two through tg_prog_* */
        bool want = k == TG_GUARD_LAYOUT;
#ifdef FUSE_DIFF_USER_SIZE
        want |= k == TG_GUARD_USER && bug(FD_BUG_B);
#endif
        if (want && !st.guard[k])
            n += missing(f, "guard ", tg_fuse_guard_name(k));
    }
    for (int s = 0; s < SC_N; s++) {
        int b = sc_infos[s].bug; /* -1: seen or not, no requirement */
        if (b >= 0 && (!b || bug(b - 1)) && !cov.sc[s])
            n += missing(f, "", sc_infos[s].text);
    }
    return n ? -1 : 0;
}
