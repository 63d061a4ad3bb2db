/*
 * examples/optimise_vs_gates/report.h - what report.c gathers from the
 * lines and report_tables.c writes out.
 */
#ifndef EXAMPLES_OPTIMISE_VS_GATES_REPORT_H
#define EXAMPLES_OPTIMISE_VS_GATES_REPORT_H

#include "ovg.h"

#define CURV_MAX 16

/* the reported runs of one task, row and length */
typedef struct cell {
    unsigned long long seen; /* seeds, a bit each */
    int runs, solved, set;
    ovg_setting setting;
    /* of the solved runs: sequence-gradients, wall seconds, steps */
    double work[MAX_SEEDS], wall[MAX_SEEDS], steps[MAX_SEEDS];
} cell;

/* the curvature of one row and rate at one step, over seeds */
typedef struct curvpoint {
    int row;
    double lr;
    long step;
    unsigned long long seen;
    int n;
    double eigH[CURV_MAX], eigP[CURV_MAX], loss[CURV_MAX];
} curvpoint;

typedef struct report {
    char **lines;       /* every line read (stb_ds) */
    const char *config; /* the last config line, or NULL */
    const char **calib; /* the calibration lines (stb_ds) */
    const char **elapsed; /* the script's "elapsed" lines (stb_ds) */
    int lengths[NTASKS][MAX_LENGTHS], nlengths[NTASKS];
    cell cells[NTASKS][NROWS][MAX_LENGTHS];
    curvpoint *curv;    /* stb_ds, sorted by row, rate, step */
} report;

/* the page (to o->doc or stdout) and the plots' data in o->datadir;
 * 0, or 1 after a message (a file that cannot be written) */
int ovg_write_page(const opts *o, const report *rp);
/* a number of the config line, NAN without one */
double cfg_num(const report *rp, const char *key);
/* report_results.c: its results' sections into f, and the data files */
int ovg_page_results(FILE *f, const opts *o, const report *rp);

#endif
