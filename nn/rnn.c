/*
 * nn/rnn.c - a cell unrolled over time and stacked in layers.
 */
#include "nn/rnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_rnn *tg_rnn_new(const tg_cell_type *type, int input_size, int hidden_size,
                   int num_layers, double dropout, struct tg_rng *rng)
{
    if (num_layers < 1 || !(dropout >= 0 && dropout < 1)) {
        tg_error("rnn_new", "%d layers and dropout %g: need at least one layer "
                 "and 0 <= dropout < 1", num_layers, dropout);
        return NULL;
    }
    tg_rnn *r = tg_xcalloc(1, sizeof *r);
    r->type = type;
    r->input_size = input_size;
    r->hidden_size = hidden_size;
    r->num_layers = num_layers;
    r->dropout = dropout;
    r->layers = tg_xcalloc((size_t)num_layers, sizeof *r->layers);
    for (int l = 0; l < num_layers; l++) {
        tg_cell *c = tg_cell_new(type, l ? hidden_size : input_size,
                                 hidden_size, rng);
        if (!c) {
            tg_rnn_free(r);
            return NULL;
        }
        r->layers[l] = c;
        /* PyTorch's names: weight_ih of layer 0 is weight_ih_l0 */
        for (int i = 0; i < tg_params_count(&c->params); i++) {
            tg_param *p = tg_params_at(&c->params, i);
            char name[256];
            snprintf(name, sizeof name, "%s_l%d", p->name, l);
            tg_params_add_ref(&r->params, name, p->tensor);
        }
    }
    return r;
}

void tg_rnn_free(tg_rnn *r)
{
    if (!r)
        return;
    /* the layer's list first: flattened, it holds the cells' tensors in
     * its block, and a cell's list would refuse to free them (and leak
     * them) while it does (nn/params.h) */
    tg_params_free(&r->params);
    for (int l = 0; l < r->num_layers; l++)
        tg_cell_free(r->layers[l]);
    free(r->layers);
    free(r);
}

/* The cell's step as a tg_step_fn: in = {xp_t, state...}, out = next,
 * each output checked to be [B, H]: a step that returns another shape
 * (a mean over the batch, [1, H], would broadcast silently later) fails
 * here, on both paths, before anything is compiled from it. */
typedef struct step_ctx {
    tg_cell *c;
    int layer;
    int64_t t, B;
} step_ctx;

static void cell_step(void *ctx, tg_tensor *const *in, tg_tensor **out)
{
    const step_ctx *s = ctx;
    tg_cell *c = s->c;
    c->type->step(c, in[0], in + 1, out);
    int64_t H = c->hidden_size;
    for (int k = 0; k < c->type->nstate; k++) {
        const tg_tensor *o = out[k];
        if (!o || (o->ndim == 2 && o->shape[0] == s->B && o->shape[1] == H))
            continue;
        char sh[96];
        tg_error(c->type->name, "the step of cell type '%s' made next[%d] of "
                 "shape %s at layer %d, time step %lld; expected [%lld, %lld] "
                 "(batch, hidden)", c->type->name, k,
                 tg_shape_str(o, sh, sizeof sh), s->layer, (long long)s->t,
                 (long long)s->B, (long long)H);
        for (int j = 0; j < c->type->nstate; j++)
            out[j] = NULL;
        return;
    }
}

/* The program of c that fits in[] (moved to the front of c->prog), or
 * NULL */
static tg_prog *cached(tg_cell *c, int nin, tg_tensor *const *in)
{
    for (int k = 0; k < TG_CELL_PROGS; k++) {
        tg_prog *p = c->prog[k];
        if (!p || !tg_prog_fits(p, nin, in))
            continue;
        memmove(c->prog + 1, c->prog, (size_t)k * sizeof *c->prog);
        c->prog[0] = p;
        return p;
    }
    return NULL;
}

/* One step of layer cell c: through its compiled program when fusion is
 * on - the cached one for this batch size, if its guards hold
 * (ops/fuse.h), else traced now - or as written. *begun: the program
 * whose per-sequence part has run. */
static void run_step(tg_cell *c, tg_tensor *const *in, int ns,
                     tg_tensor **next, tg_prog **begun, int layer, int64_t t)
{
    step_ctx ctx = {c, layer, t, in[1]->shape[0]};
    if (!tg_fusion_enabled()) {
        cell_step(&ctx, in, next);
        return;
    }
    /* the user block: none, declared, or set by hand (size unknown) */
    tg_prog_env env = {c->user, c->user ? c->type->user_size : 0};
    tg_prog *p = cached(c, 1 + ns, in);
    const char *failed = p ? tg_prog_check(p, 1 + ns, in, &env) : NULL;
    if (!p || failed) { /* trace: this step runs as written, watched */
        char why[1024] = "";
        if (failed) { /* this program is stale: it goes */
            snprintf(why, sizeof why, "%straced again at layer %d, time "
                     "step %lld: %s", tg_prog_ok(p) ? tg_prog_why(p) : "",
                     layer, (long long)t, failed);
            tg_prog_free(p);
            memmove(c->prog, c->prog + 1,
                    (TG_CELL_PROGS - 1) * sizeof *c->prog);
            c->prog[TG_CELL_PROGS - 1] = NULL;
        }
        tg_prog_free(c->prog[TG_CELL_PROGS - 1]); /* the least recent */
        memmove(c->prog + 1, c->prog, (TG_CELL_PROGS - 1) * sizeof *c->prog);
        /* the slice of the layer's own input projection is given away:
         * nothing reads it after the step (not so for gates == 0, where
         * it is the caller's x) */
        p = c->prog[0] = tg_prog_trace(cell_step, &ctx, 1 + ns, in, ns, next,
                                       c->type->gates > 0 ? 1u : 0u, &env);
        if (why[0])
            tg_prog_note(p, "%s", why);
        *begun = NULL;
        if (!tg_prog_ok(p))
            return; /* next[] computed as written, or NULL: failed */
    }
    if (!tg_prog_ok(p)) { /* cannot be compiled: as written */
        cell_step(&ctx, in, next);
        return;
    }
    if (*begun != p) { /* once per sequence: tagged with no time step */
        tg_tape_set_step(-1);
        int rc = tg_prog_begin(p);
        tg_tape_set_step(t);
        if (rc < 0)
            return;
        *begun = p;
    }
    tg_prog_run(p, in, next);
}

/* After layer l's step t: true if it failed - an error was reported
 * while it ran (a misspelt parameter name, a shape mismatch, a NaN in
 * anomaly mode: all reported where they happened), or it left an output
 * unwritten, which is reported here. Either way the tape's time-step tag
 * is cleared, so that later, unrelated ops are not tagged with it. */
static bool step_failed(const tg_cell *c, tg_tensor *const *next, int ns,
                        unsigned long errors_before, int l, int64_t t)
{
    int missing = -1;
    for (int k = ns - 1; k >= 0; k--)
        if (!next[k])
            missing = k;
    bool reported = tg_error_count() != errors_before;
    if (missing < 0 && !reported)
        return false;
    tg_tape_set_step(-1);
    if (!reported)
        tg_error(c->type->name, "the step of cell type '%s' left its output "
                 "next[%d] unset (layer %d, time step %lld): a step must "
                 "write next[0..%d]", c->type->name, missing, l, (long long)t,
                 ns - 1);
    return true;
}

static bool has_shape(const tg_tensor *t, int64_t a, int64_t b, int64_t c)
{
    return t->ndim == 3 && t->shape[0] == a && t->shape[1] == b &&
           t->shape[2] == c;
}

int tg_rnn_forward(tg_rnn *r, tg_tensor *x, tg_tensor *const *state0,
                   bool training, struct tg_rng *rng, tg_rnn_out *out)
{
    memset(out, 0, sizeof *out);
    const char *name = r->type->name;
    if (!tg_check_live(name, 1, (const tg_tensor *[]){x}))
        return -1;
    char s[96];
    if (x->ndim != 3 || x->shape[2] != r->input_size) {
        tg_error(name, "input has shape %s; expected [T, B, %d] (time, batch, "
                 "features)", tg_shape_str(x, s, sizeof s), r->input_size);
        return -1;
    }
    int64_t T = x->shape[0], B = x->shape[1], H = r->hidden_size;
    int L = r->num_layers, ns = r->type->nstate;
    for (int k = 0; state0 && k < ns; k++) {
        /* a state carried from the last step without tg_rnn_keep_state */
        const tg_tensor *s0 = state0[k];
        if (s0 && !tg_check_live(name, 1, &s0))
            return -1;
        if (!state0[k] || !has_shape(state0[k], L, B, H)) {
            tg_error(name, "initial state %d has shape %s; expected [%d, %lld, "
                     "%lld] (layers, batch, hidden)", k,
                     state0[k] ? tg_shape_str(state0[k], s, sizeof s) : "NULL",
                     L, (long long)B, (long long)H);
            return -1;
        }
    }
    tg_tensor **hs = tg_arena_alloc((size_t)(T ? T : 1) * sizeof *hs);
    tg_tensor *finals[TG_CELL_MAX_STATE][64];
    if (L > 64) {
        tg_error(name, "%d layers; at most 64", L);
        return -1;
    }
    tg_tensor *inp = x;
    for (int l = 0; l < L; l++) {
        tg_cell *c = r->layers[l];
        if (l > 0 && training && r->dropout > 0)
            inp = tg_dropout(inp, r->dropout, true, rng);
        /* the input projection of all T steps in one matmul */
        tg_tensor *xp = inp;
        if (r->type->gates > 0) {
            tg_tape_set_step(TG_STEP_ALL);
            xp = tg_linear(inp, c->weight_ih, c->bias_ih); /* [T, B, G*H] */
            tg_tape_set_step(-1);
            if (!xp)
                return -1;
        }
        tg_tensor *st[TG_CELL_MAX_STATE], *next[TG_CELL_MAX_STATE];
        for (int k = 0; k < ns; k++) {
            st[k] = state0 ? tg_select(state0[k], 0, l)
                           : tg_zeros(TG_SHAPE(B, H));
            if (!st[k]) /* anomaly mode: a NaN in the initial state */
                return -1;
        }
        tg_prog *begun = NULL;
        for (int64_t t = 0; t < T; t++) {
            tg_threads_checkpoint(); /* fewer threads on a busy machine */
            tg_tape_set_step(t);
            memset(next, 0, sizeof next);
            tg_tensor *in[1 + TG_CELL_MAX_STATE] = {tg_select(xp, 0, t)};
            if (!in[0]) { /* anomaly mode: a NaN in x_t (gates == 0) */
                tg_tape_set_step(-1);
                return -1;
            }
            memcpy(in + 1, st, (size_t)ns * sizeof *st);
            unsigned long errors = tg_error_count();
            run_step(c, in, ns, next, &begun, l, t);
            if (step_failed(c, next, ns, errors, l, t))
                return -1;
            memcpy(st, next, (size_t)ns * sizeof *st);
            hs[t] = st[0];
        }
        tg_tape_set_step(-1);
        for (int k = 0; k < ns; k++)
            finals[k][l] = st[k];
        if (T == 0) {
            inp = tg_zeros(TG_SHAPE(0, B, H));
            continue;
        }
        inp = tg_stack(hs, (int)T, 0); /* [T, B, H] */
    }
    out->y = inp;
    for (int k = 0; k < ns; k++)
        out->state[k] = tg_stack(finals[k], L, 0);
    out->h = hs;
    out->T = T;
    return out->y ? 0 : -1;
}

void tg_rnn_keep_state(const tg_rnn *r, const tg_rnn_out *out, tg_tensor **keep)
{
    for (int k = 0; k < r->type->nstate; k++) {
        const tg_tensor *s = out->state[k];
        if (keep[k] && !tg_same_shape(keep[k], s)) {
            tg_tensor_free(keep[k]);
            keep[k] = NULL;
        }
        if (!keep[k])
            keep[k] = tg_tensor_new(s->ndim, s->shape);
        tg_copy_(keep[k], s);
    }
}
