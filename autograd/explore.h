/*
 * autograd/explore.h - the tape as a page to step through.
 *
 * tg_tape_html writes one self-contained HTML file (inline CSS, JavaScript
 * and SVG; no network, no other file: it opens from disk) that draws the
 * graph of the recorded tape and replays the computation: the forward
 * sweep entry by entry, then the reverse sweep, showing at each step the
 * entry's op, its inputs and outputs (all the numbers of a small tensor; a
 * summary and a heat map of a large one) and, going back, the gradient
 * that arrives at the entry and the share it adds into each input. Where
 * tg_jvp ran, each entry's tangent is shown beside its value. For a
 * sequence model the page can draw a time axis: ||dL/dh_t|| for each step
 * t as a strip of cells that fill in as the reverse sweep reaches them,
 * so a vanishing gradient is seen fading towards t = 1. The arrow keys
 * step (PageUp/PageDown by time step), Home and End jump, and the address
 * page.html#step=N opens step N.
 *
 * The numbers come from the run, not from a replay: values and tangents
 * are read from the tensors when the page is written, and the reverse
 * sweep is recorded while it runs (backward frees an intermediate
 * gradient as soon as it has used it, so nothing could find it later).
 *
 *     tg_sweep_rec *rec = tg_sweep_record_begin(); // this thread's sweeps
 *     tg_backward(loss);
 *     tg_sweep_record_end(rec);
 *     FILE *f = fopen("tape.html", "w");
 *     tg_tape_html(f, loss, &(tg_html_opts){.title = "my model",
 *                                           .sweep = rec});
 *     fclose(f);
 *     tg_sweep_record_free(rec);
 *     tg_tape_reset();              // after the page: it reads the tensors
 *
 * Large tapes stay small pages: a tensor of more than TG_HTML_FULL numbers
 * is written as its mean, min, max, norm and a heat map of at most
 * TG_HTML_CELLS cell means, and the page draws only the part of the graph
 * in view. examples/explore.c writes the pages of docs/explorer/.
 */
#ifndef TG_EXPLORE_H
#define TG_EXPLORE_H

#include "autograd/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tensors with at most this many numbers are written in full */
#define TG_HTML_FULL 16
/* the most cells of a large tensor's heat map */
#define TG_HTML_CELLS 64

/* A recording of reverse sweeps: for every entry backward runs, the
 * gradient that arrived at each output, and the share the entry added
 * into each input with the input's gradient after it. Begin it before
 * tg_backward (it records every sweep of the calling thread until
 * tg_sweep_record_end; it uses the sweep hook, tg_set_sweep_hook, which
 * tg_sweep_record_end turns off again); free it with
 * tg_sweep_record_free. It belongs to the tape
 * it was recorded on: tg_tape_html refuses it after a tg_tape_reset. */
typedef struct tg_sweep_rec tg_sweep_rec;
tg_sweep_rec *tg_sweep_record_begin(void);
void tg_sweep_record_end(tg_sweep_rec *r);
void tg_sweep_record_free(tg_sweep_rec *r);

/* A time axis: the tensors t[0..n-1] are a state at time steps 1..n
 * (h_t). The page shows ||dL/dh_t|| as recorded when the sweep reached
 * h_t's entry. */
typedef struct tg_html_strip {
    const char *name; /* "LSTM h_t" */
    tg_tensor *const *t;
    int n;
} tg_html_strip;

typedef struct tg_html_opts {
    const char *title;            /* NULL: "tape" */
    const tg_sweep_rec *sweep;    /* NULL: the forward sweep only */
    const tg_html_strip *strips;  /* time axes, nstrips of them */
    int nstrips;
} tg_html_opts;

/* Writes the page for the graph that leads to root (NULL: the whole
 * tape); opts may be NULL. Call it before the tape is reset and before
 * parameters change (an optimizer step): it reads their numbers. 0, or -1
 * after an error (a recording of another tape; a write that failed). */
int tg_tape_html(FILE *f, const tg_tensor *root, const tg_html_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
