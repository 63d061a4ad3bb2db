/*
 * nn/cells.c - the cell interface and the built-in cells.
 *
 * Read the step functions below next to the equations in PyTorch's
 * documentation of nn.RNN, nn.LSTM and nn.GRU: they are the same lines.
 * Nothing here differentiates anything; the tape does.
 */
#include "nn/cell.h"
#include "tensor/ds.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---- the built-in cells ------------------------------------------------ */

/* h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) */
static void rnn_tanh_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    next[0] = tg_tanh(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
}

/* h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh) */
static void rnn_relu_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                          tg_tensor **next)
{
    next[0] = tg_relu(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)));
}

/* i, f, g, o = chunks of (x W_ih^T + b_ih + h W_hh^T + b_hh)
 * c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
 * h' = sigmoid(o) * tanh(c')
 * (Each op gets its own statement where two would share one: C leaves the
 * order of a call's arguments open, and the tape should read the same
 * with every compiler.) */
static void lstm_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    tg_tensor *h = s[0], *cell = s[1], *g[4];
    tg_chunk(tg_add(xp, tg_linear(h, c->weight_hh, c->bias_hh)), 4, 1, g);
    tg_tensor *in = tg_sigmoid(g[0]), *forget = tg_sigmoid(g[1]);
    tg_tensor *cand = tg_tanh(g[2]), *out = tg_sigmoid(g[3]);
    tg_tensor *kept = tg_mul(forget, cell), *added = tg_mul(in, cand);
    next[1] = tg_add(kept, added);
    next[0] = tg_mul(out, tg_tanh(next[1]));
}

/* r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z)   where x_* = x W_i*^T + b_i*
 * n = tanh(x_n + r * h_n)                          and   h_* = h W_h*^T + b_h*
 * h' = (1 - z) * n + z * h  =  n + z * (h - n) */
static void gru_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                     tg_tensor **next)
{
    tg_tensor *h = s[0], *x[3], *hh[3];
    tg_chunk(xp, 3, 1, x);
    tg_chunk(tg_linear(h, c->weight_hh, c->bias_hh), 3, 1, hh);
    tg_tensor *r = tg_sigmoid(tg_add(x[0], hh[0]));
    tg_tensor *z = tg_sigmoid(tg_add(x[1], hh[1]));
    tg_tensor *n = tg_tanh(tg_add(x[2], tg_mul(r, hh[2])));
    next[0] = tg_add(n, tg_mul(z, tg_sub(h, n)));
}

const tg_cell_type tg_rnn_tanh_cell = {
    "rnn_tanh", .nstate = 1, .gates = 1, .step = rnn_tanh_step};
const tg_cell_type tg_rnn_relu_cell = {
    "rnn_relu", .nstate = 1, .gates = 1, .step = rnn_relu_step};
const tg_cell_type tg_lstm_cell = {
    "lstm", .nstate = 2, .gates = 4, .step = lstm_step};
const tg_cell_type tg_gru_cell = {
    "gru", .nstate = 1, .gates = 3, .step = gru_step};

/* ---- making cells -------------------------------------------------------- */

static bool is_standard_name(const char *name)
{
    return !strcmp(name, "weight_ih") || !strcmp(name, "weight_hh") ||
           !strcmp(name, "bias_ih") || !strcmp(name, "bias_hh");
}

tg_tensor *tg_cell_param_new(tg_cell *c, const char *name, int ndim,
                             const int64_t *shape, struct tg_rng *rng)
{
    if (!c || !name) {
        tg_error("cell_param_new", "the %s is NULL", c ? "name" : "cell");
        return NULL;
    }
    if (tg_params_get(&c->params, name)) {
        bool std = c->type->gates > 0 && is_standard_name(name);
        tg_error("cell_param_new", "cell type '%s' already has a parameter "
                 "called '%s'%s: each parameter needs a name of its own (a "
                 "checkpoint stores one tensor per name); give the new one "
                 "another name", c->type->name, name,
                 std ? " (one of the standard parameters weight_ih, "
                       "weight_hh, bias_ih, bias_hh that gates > 0 makes)"
                     : "");
        return NULL;
    }
    tg_tensor *t = tg_params_new(&c->params, name, ndim, shape);
    double k = 1.0 / sqrt((double)c->hidden_size);
    if (t)
        tg_fill_uniform_(t, rng, -k, k);
    return t;
}

/* 0, or -1 after reporting (as op) what makes type unusable: a cell
 * type needs a name, a step function, 1..TG_CELL_MAX_STATE state tensors
 * and gates >= 0 */
static int check_type(const char *op, const tg_cell_type *type)
{
    if (!type) {
        tg_error(op, "the cell type is NULL");
        return -1;
    }
    const char *name = type->name;
    if (!name || !*name) {
        tg_error(op, "a cell type has %s name: give it one (.name), it "
                 "names the cell in messages and on the command line",
                 name ? "an empty" : "no (NULL)");
        return -1;
    }
    if (!type->step) {
        tg_error(op, "cell type '%s' has no step function (.step is NULL)",
                 name);
        return -1;
    }
    if (type->nstate < 1 || type->nstate > TG_CELL_MAX_STATE) {
        tg_error(op, "cell type '%s' has nstate = %d state tensors; it must "
                 "be 1 to %d (TG_CELL_MAX_STATE), state[0] being h", name,
                 type->nstate, TG_CELL_MAX_STATE);
        return -1;
    }
    if (type->gates < 0) {
        tg_error(op, "cell type '%s' has gates = %d; it must be >= 0 (0: "
                 "the cell makes all its parameters in init)", name,
                 type->gates);
        return -1;
    }
    return 0;
}

tg_cell *tg_cell_new(const tg_cell_type *type, int input_size, int hidden_size,
                     struct tg_rng *rng)
{
    if (check_type("cell_new", type) < 0)
        return NULL;
    if (input_size < 1 || hidden_size < 1) {
        tg_error("cell_new", "%s: input size %d and hidden size %d must be "
                 "positive", type->name, input_size, hidden_size);
        return NULL;
    }
    tg_cell *c = tg_xcalloc(1, sizeof *c);
    c->type = type;
    c->input_size = input_size;
    c->hidden_size = hidden_size;
    if (type->user_size)
        c->user = tg_xcalloc(1, type->user_size);
    int64_t G = type->gates, H = hidden_size, I = input_size;
    if (G > 0) {
        /* the order of PyTorch's named_parameters(), and its init order */
        c->weight_ih = tg_cell_param_new(c, "weight_ih", TG_SHAPE(G * H, I), rng);
        c->weight_hh = tg_cell_param_new(c, "weight_hh", TG_SHAPE(G * H, H), rng);
        c->bias_ih = tg_cell_param_new(c, "bias_ih", TG_SHAPE(G * H), rng);
        c->bias_hh = tg_cell_param_new(c, "bias_hh", TG_SHAPE(G * H), rng);
    }
    /* an init that reported an error (a parameter refused) has failed,
     * whatever it returns */
    unsigned long errors = tg_error_count();
    if (type->init && (type->init(c, rng) < 0 || tg_error_count() != errors)) {
        tg_cell_free(c);
        return NULL;
    }
    return c;
}

void tg_cell_free(tg_cell *c)
{
    if (!c)
        return;
    /* first: what the type allocated may point into the user block or
     * read the parameters */
    if (c->type->fini)
        c->type->fini(c);
    tg_params_free(&c->params);
    for (int k = 0; k < TG_CELL_PROGS; k++)
        tg_prog_free(c->prog[k]);
    if (c->type->user_size)
        free(c->user);
    free(c);
}

tg_tensor *tg_cell_param(const tg_cell *c, const char *name)
{
    if (!c || !name) {
        tg_error("cell_param", "%s is NULL", c ? "the name" : "the cell");
        return NULL;
    }
    tg_tensor *t = tg_params_get(&c->params, name);
    if (!t) {
        char known[512];
        size_t n = 0;
        known[0] = 0;
        for (int i = 0; i < tg_params_count(&c->params) && n < sizeof known;
             i++)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s",
                                  i ? ", " : "",
                                  tg_params_at(&c->params, i)->name);
        tg_error("cell_param", "cell type '%s' has no parameter '%s' (it has: "
                 "%s)", c->type->name, name, n ? known : "none");
    }
    return t;
}

void tg_cell_step(tg_cell *c, tg_tensor *x, tg_tensor *const *state,
                  tg_tensor **next)
{
    for (int k = 0; k < c->type->nstate; k++)
        next[k] = NULL; /* what a step that fails leaves: never garbage */
    tg_tensor *xp = c->type->gates > 0 ? tg_linear(x, c->weight_ih, c->bias_ih)
                                       : x;
    c->type->step(c, xp, state, next);
}

void tg_cell_set_forget_bias(tg_cell *c, double value)
{
    if (!c->bias_ih || c->type->gates < 2)
        return;
    int64_t H = c->hidden_size;
    for (int64_t i = H; i < 2 * H; i++) {
        c->bias_ih->data[i] = (tg_real)value;
        c->bias_hh->data[i] = 0;
    }
}

/* ---- the registry of cell types, by name ------------------------------ */

/* Process-wide: any thread may register or look up a type, under the
 * lock (registering is rare, looking up happens when a model is made). */
static const tg_cell_type **registry; /* stb_ds array of user types */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static const tg_cell_type *const builtins[] = {
    &tg_lstm_cell, &tg_gru_cell, &tg_rnn_tanh_cell, &tg_rnn_relu_cell};

/* (the caller holds the lock) */
static const tg_cell_type *find_locked(const char *name)
{
    if (!strcmp(name, "rnn"))
        return &tg_rnn_tanh_cell;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (!strcmp(builtins[i]->name, name))
            return builtins[i];
    for (int64_t i = 0; i < arrlen(registry); i++)
        if (!strcmp(registry[i]->name, name))
            return registry[i];
    return NULL;
}

const tg_cell_type *tg_cell_type_find(const char *name)
{
    if (!name)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    const tg_cell_type *t = find_locked(name);
    pthread_mutex_unlock(&registry_lock);
    return t;
}

int tg_cell_type_register(const tg_cell_type *type)
{
    if (check_type("cell_type_register", type) < 0)
        return -1;
    pthread_mutex_lock(&registry_lock);
    const tg_cell_type *old = find_locked(type->name);
    if (!old)
        arrput(registry, type);
    pthread_mutex_unlock(&registry_lock);
    if (old && old != type) {
        tg_error("cell_type_register", "a different cell type is already "
                 "called '%s'", type->name);
        return -1;
    }
    return 0;
}

const char *tg_cell_type_names(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "",
                              builtins[i]->name);
    pthread_mutex_lock(&registry_lock);
    for (int64_t i = 0; i < arrlen(registry) && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, ", %s", registry[i]->name);
    pthread_mutex_unlock(&registry_lock);
    return buf;
}
