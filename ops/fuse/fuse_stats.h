/*
 * ops/fuse/fuse_stats.h - counters of what compiled steps did (not a public
 * header; ops/fuse.h is the API): which vector machine codes ran forward,
 * backward and in forward mode, how many steps were traced, and which
 * guards failed. The differential fuzzer (fuzz/fuse_diff.c) and its
 * seeded form in the test suite (tests/fuse_fuzz.c) read them to prove
 * that every code and every guard was reached.
 *
 * Always compiled, and cheap: a group counts its instructions once per
 * run (not per tile), outside any parallel region, so a count costs a few
 * additions per group and step against the group's whole pass over its
 * numbers. Like the tape, the counts belong to the thread that runs the
 * steps: each thread reads and resets its own.
 *
 *     tg_fuse_stats_reset();
 *     ... forward and backward through compiled steps ...
 *     tg_fuse_stats s;
 *     tg_fuse_stats_get(&s);
 *     if (!s.code[TG_FUSE_BWD][TG_VM_DSIGMOID]) ...   // never reached
 */
#ifndef TG_OPS_FUSE_STATS_H
#define TG_OPS_FUSE_STATS_H

#include "ops/internal.h"

#include <stdbool.h>
#include <stdint.h>

/* where a group ran: its forward (tg_prog_run), its backward rule (which
 * applies each member's derivative codes), its forward-mode rule (tg_jvp:
 * the same derivative codes on tangents) */
enum { TG_FUSE_FWD, TG_FUSE_BWD, TG_FUSE_JVP, TG_FUSE_NPHASES };

/* what made a compiled step unusable for the call at hand, so that it was
 * traced again (or run as written):
 *   LAYOUT   an input laid out unlike the traced one (tg_prog_fits)
 *   USER     the cell's declared user block changed since the trace
 *   CAPTURED a tensor read from outside the step's inputs was replaced
 *   VERSION  ... or its numbers were changed in place (tg_version)
 * Each is counted where it is checked. */
enum {
    TG_GUARD_LAYOUT,
    TG_GUARD_USER,
    TG_GUARD_CAPTURED,
    TG_GUARD_VERSION,
    TG_GUARD_NKINDS
};

typedef struct tg_fuse_stats {
    /* per phase and code: forward, the members' codes; backward and
     * forward mode, the codes of each member's derivative rules - counted
     * once per group run (a rule whose gradient is zero in a tile is
     * skipped there, but counted) */
    uint64_t code[TG_FUSE_NPHASES][TG_VM_NCODES];
    uint64_t groups[TG_FUSE_NPHASES]; /* group runs                    */
    uint64_t traces;                  /* tg_prog_trace calls           */
    uint64_t guard[TG_GUARD_NKINDS];  /* guard failures, by kind       */
} tg_fuse_stats;

void tg_fuse_stats_get(tg_fuse_stats *out);
void tg_fuse_stats_reset(void);
/* "add", "dsigmoid", ...; "layout", "user", ... */
const char *tg_vm_code_name(int code);
const char *tg_fuse_guard_name(int kind);

/* ---- counting (ops/fuse*.c) ------------------------------------------ */
struct group;
void tg_fuse_count_group(const struct group *g, int phase);
void tg_fuse_count_trace(void);
/* counts a failure of guard `kind` and returns false, so that a check
 * reads `return tg_fuse_guard_failed(TG_GUARD_LAYOUT);` */
bool tg_fuse_guard_failed(int kind);

#endif
