/*
 * tests/test_nn.c - modules, cells and the sequence layer (float build):
 * PyTorch names and initialisation ranges, shape errors, truncated BPTT
 * with carried state, dropout between layers, checkpoints of parameters.
 * Numbers against PyTorch are checked by torch_parity (make test), the
 * gradients by grad_models.c.
 */
#include "harness.h"
#include "nn/charlm.h"
#include "nn/dist.h"
#include "nn/optim.h"

#include <unistd.h>

START_TEST(pytorch_names_and_init)
{
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_charlm *m = tg_charlm_new(&tg_lstm_cell, 11, 5, 6, 2, 0.0, &rng);
    const char *names[] = {"embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                           "rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.weight_ih_l1",
                           "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1",
                           "decoder.weight", "decoder.bias"};
    ck_assert_int_eq(tg_params_count(&m->params), 11);
    for (int i = 0; i < 11; i++)
        ck_assert_str_eq(tg_params_at(&m->params, i)->name, names[i]);
    tgt_shape_is(tg_params_get(&m->params, "rnn.weight_ih_l0"), 2, (int64_t[]){24, 5});
    tgt_shape_is(tg_params_get(&m->params, "rnn.weight_ih_l1"), 2, (int64_t[]){24, 6});
    /* U(-1/sqrt(H), 1/sqrt(H)) for the cell, U(-1/sqrt(in), ..) for Linear */
    tg_tensor *w = tg_params_get(&m->params, "rnn.weight_hh_l1");
    double k = 1 / sqrt(6.0), lo = 1, hi = -1;
    for (int64_t i = 0; i < w->numel; i++) {
        lo = fmin(lo, w->data[i]);
        hi = fmax(hi, w->data[i]);
    }
    ck_assert(lo >= -k && hi <= k && hi - lo > k); /* spread over the range */
    ck_assert_int_eq(tg_params_numel(&m->params),
                     55 + (24 * 5 + 24 * 6 + 48) + (24 * 6 * 2 + 48) + 66 + 11);
    tg_charlm_free(m);
}
END_TEST

START_TEST(shape_errors)
{
    tgt_capture_errors();
    tg_rnn *r = tg_rnn_new(&tg_gru_cell, 3, 4, 2, 0.0, NULL);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, tg_zeros(TG_SHAPE(5, 2, 4)), NULL, false, NULL, &out), -1);
    tgt_expect_error("gru", "[5, 2, 4]", "[T, B, 3]");
    tg_tensor *h0 = tg_zeros(TG_SHAPE(1, 2, 4));
    ck_assert_int_eq(tg_rnn_forward(r, tg_zeros(TG_SHAPE(5, 2, 3)), &h0, false, NULL, &out), -1);
    tgt_expect_error("gru", "[1, 2, 4]", "[2, 2, 4]");
    ck_assert_ptr_null(tg_rnn_new(&tg_lstm_cell, 3, 4, 0, 0.0, NULL));
    tgt_expect_error("rnn_new", "0 layers");
    ck_assert_ptr_null(tg_cell_new(&tg_lstm_cell, 0, 4, NULL));
    tgt_expect_error("cell_new", "positive");
    static const tg_cell_type broken = {
        "broken", .nstate = 1, .gates = 1, .step = NULL};
    ck_assert_ptr_null(tg_cell_new(&broken, 3, 4, NULL));
    tgt_expect_error("cell_new", "broken");
    tg_rnn_free(r);
}
END_TEST

/* A NULL or incomplete cell type is refused with a message saying what
 * it lacks, by tg_cell_type_register (which used to dereference it) as by
 * tg_cell_new, and nothing is registered. */
static void some_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                      tg_tensor **next)
{
    (void)c, (void)s;
    next[0] = tg_tanh(xp);
}

START_TEST(incomplete_cell_types_are_refused)
{
    tgt_capture_errors();
    char before[512], after[512];
    tg_cell_type_names(before, sizeof before);
    static const tg_cell_type no_name = {
        .name = NULL, .nstate = 1, .gates = 1, .step = some_step};
    static const tg_cell_type empty_name = {
        "", .nstate = 1, .gates = 1, .step = some_step};
    static const tg_cell_type no_step = {"no_step", .nstate = 1, .gates = 1};
    static const tg_cell_type no_state = {
        "no_state", .nstate = 0, .gates = 1, .step = some_step};
    static const tg_cell_type big_state = {
        "big_state", .nstate = TG_CELL_MAX_STATE + 1, .gates = 1, .step =
        some_step};
    static const tg_cell_type neg_gates = {
        "neg_gates", .nstate = 1, .gates = -1, .step = some_step};
    const struct {
        const tg_cell_type *type;
        const char *what[2];
    } cases[] = {
        {NULL, {"the cell type is NULL", "NULL"}},
        {&no_name, {"no (NULL) name", ".name"}},
        {&empty_name, {"an empty name", ".name"}},
        {&no_step, {"'no_step'", "no step function"}},
        {&no_state, {"'no_state'", "nstate = 0"}},
        {&big_state, {"'big_state'", "1 to 4"}},
        {&neg_gates, {"'neg_gates'", "gates = -1"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(tg_cell_type_register(cases[i].type), -1);
        tgt_expect_error("cell_type_register", cases[i].what[0],
                         cases[i].what[1]);
        ck_assert_ptr_null(tg_cell_new(cases[i].type, 3, 4, NULL));
        tgt_expect_error("cell_new", cases[i].what[0], cases[i].what[1]);
    }
    ck_assert_ptr_null(tg_rnn_new(NULL, 3, 4, 1, 0.0, NULL));
    tgt_expect_error("cell_new", "the cell type is NULL");
    ck_assert_str_eq(tg_cell_type_names(after, sizeof after), before);
}
END_TEST

/* A cell type whose init allocates (a buffer at c->user, set by hand)
 * frees it in fini: tg_cell_free calls fini once per cell - for every
 * layer of a sequence layer, and for a cell whose init failed after
 * allocating - and nothing leaks (the sanitizer build checks that). */
static int fini_calls;

static int table_init(tg_cell *c, struct tg_rng *rng)
{
    (void)rng;
    double *t = malloc((size_t)c->hidden_size * sizeof *t);
    for (int k = 0; k < c->hidden_size; k++)
        t[k] = 0.5;
    c->user = t;
    return c->hidden_size == 13 ? -1 : 0; /* 13: a failing init */
}

static void table_fini(tg_cell *c)
{
    ck_assert_ptr_nonnull(c->user);
    ck_assert_ptr_nonnull(c->weight_hh); /* the parameters are still there */
    free(c->user);
    c->user = NULL;
    fini_calls++;
}

static void table_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                       tg_tensor **next)
{
    const double *t = c->user;
    tg_tensor *g[2];
    tg_chunk(tg_add(xp, tg_linear(s[0], c->weight_hh, c->bias_hh)), 2, 1, g);
    next[0] = tg_mul_scalar(tg_add(tg_tanh(g[0]), tg_sigmoid(g[1])), t[0]);
}

START_TEST(cell_fini_frees_what_init_allocated)
{
    static const tg_cell_type table = {"table", .nstate = 1, .gates = 2,
                                       .init = table_init, .step = table_step,
                                       .fini = table_fini};
    fini_calls = 0;
    tg_rnn *r = tg_rnn_new(&table, 3, 4, 3, 0.0, NULL);
    ck_assert_ptr_nonnull(r);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, tg_ones(TG_SHAPE(5, 2, 3)), NULL, true,
                                    NULL, &out), 0);
    ck_assert_int_eq(tg_backward(tg_sum(out.y)), 0);
    tg_tape_reset();
    ck_assert_int_eq(fini_calls, 0);
    tg_rnn_free(r);
    ck_assert_int_eq(fini_calls, 3);
    tg_cell *c = tg_cell_new(&table, 3, 4, NULL);
    tg_cell_free(c);
    ck_assert_int_eq(fini_calls, 4);
    /* an init that fails has its cell freed, through fini */
    ck_assert_ptr_null(tg_cell_new(&table, 3, 13, NULL));
    ck_assert_int_eq(fini_calls, 5);
}
END_TEST

/* A second parameter under a name the list has already (a cell's extra
 * 'weight_hh', or any name twice) is refused with a message naming the
 * cell type and the parameter: accepted, it made a checkpoint with one
 * tensor fewer than the model (the second overwrote the first). */
static int shadow_init(tg_cell *c, tg_rng *rng)
{
    /* ignores the result: the error still fails tg_cell_new */
    tg_cell_param_new(c, "weight_hh", TG_SHAPE(c->hidden_size), rng);
    return 0;
}

static int twice_init(tg_cell *c, tg_rng *rng)
{
    if (!tg_cell_param_new(c, "w", TG_SHAPE(c->hidden_size), rng))
        return -1;
    return tg_cell_param_new(c, "w", TG_SHAPE(2), rng) ? 0 : -1;
}

START_TEST(duplicate_parameter_names_are_refused)
{
    tgt_capture_errors();
    static const tg_cell_type shadow = {
        "shadow", .nstate = 1, .gates = 1, .init = shadow_init, .step =
        some_step};
    ck_assert_ptr_null(tg_cell_new(&shadow, 3, 4, NULL));
    tgt_expect_error("cell_param_new", "'shadow'", "'weight_hh'", "standard");
    ck_assert_ptr_null(tg_rnn_new(&shadow, 3, 4, 2, 0.0, NULL));
    tgt_expect_error("cell_param_new", "'shadow'", "'weight_hh'");
    static const tg_cell_type twice = {
        "twice", .nstate = 1, .gates = 0, .init = twice_init, .step =
        some_step};
    ck_assert_ptr_null(tg_cell_new(&twice, 4, 4, NULL));
    tgt_expect_error("cell_param_new", "'twice'", "'w'");

    /* the lists themselves: every way in */
    tg_params ps = {0}, src = {0};
    ck_assert_ptr_nonnull(tg_params_new(&ps, "a.w", TG_SHAPE(2)));
    ck_assert_ptr_null(tg_params_new(&ps, "a.w", TG_SHAPE(3)));
    tgt_expect_error("params_new", "'a.w'", "unique");
    tg_tensor *t = tg_tensor_new(TG_SHAPE(2));
    ck_assert_int_eq(tg_params_add_ref(&ps, "a.w", t), -1);
    tgt_expect_error("params_add_ref", "'a.w'");
    tg_params_new(&src, "b", TG_SHAPE(1));
    tg_params_new(&src, "w", TG_SHAPE(1));
    ck_assert_int_eq(tg_params_add_from(&ps, "a.", &src), -1);
    tgt_expect_error("params_add_from", "'a.w'", "prefix");
    ck_assert_int_eq(tg_params_count(&ps), 1); /* not even a.b */
    ck_assert_int_eq(tg_params_add_from(&ps, "c.", &src), 0);
    ck_assert_int_eq(tg_params_add_ref(&ps, "t", t), 0);
    ck_assert_int_eq(tg_params_count(&ps), 4);
    ck_assert_int_eq(tgt_errors, 0);

    /* a checkpoint holds every parameter of the list */
    char path[] = "/tmp/tg_dup_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    tg_st_writer *w = tg_st_writer_new();
    tg_params_save(&ps, w, "");
    ck_assert_int_eq(tg_st_save(w, path, NULL, 0), 0);
    tg_st_writer_free(w);
    tg_st_file *f = tg_st_load(path, NULL, 0);
    ck_assert_int_eq(tg_st_count(f), tg_params_count(&ps));
    tg_st_free(f);
    unlink(path);
    tg_params_free(&ps);
    tg_params_free(&src);
    tg_tensor_free(t);
}
END_TEST

/* Truncated BPTT: state carried across batches in persistent tensors, so
 * each backward stays within its batch (no "already used" error), and the
 * carried numbers equal one long run's. */
START_TEST(truncated_bptt_carries_state)
{
    tg_rng rng;
    tg_rng_seed(&rng, 2);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 2, 3, 2, 0.0, &rng);
    tg_tensor *x = tg_tensor_new(TG_SHAPE(8, 1, 2));
    tg_fill_uniform_(x, &rng, -1, 1);
    /* one run over all 8 steps */
    tg_rnn_out full;
    tg_rnn_forward(r, x, NULL, false, NULL, &full);
    tg_real want[6];
    tg_to_buffer(full.state[0], want);
    tg_tape_reset();
    /* four batches of 2 steps with the state carried */
    tg_tensor *keep[2] = {NULL, NULL};
    for (int b = 0; b < 4; b++) {
        tg_tensor *xb = tg_slice(x, 0, 2 * b, 2 * b + 2, 1);
        tg_rnn_out out;
        ck_assert_int_eq(tg_rnn_forward(r, tg_contiguous(xb), b ? keep : NULL, true, NULL, &out), 0);
        ck_assert_int_eq(tg_backward(tg_sum(out.y)), 0);
        tg_rnn_keep_state(r, &out, keep);
        tg_tape_reset();
    }
    tgt_tensor_equals(keep[0], (double[]){want[0], want[1], want[2], want[3], want[4], want[5]},
                      6, 1e-6);
    ck_assert(!(keep[0]->flags & TG_REQUIRES_GRAD));
    tg_tensor_free(keep[0]);
    tg_tensor_free(keep[1]);
    tg_tensor_free(x);
    tg_rnn_free(r);
}
END_TEST

START_TEST(dropout_between_layers_only_when_training)
{
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_rnn *r = tg_rnn_new(&tg_gru_cell, 4, 8, 3, 0.5, &rng);
    tg_tensor *x = tg_rand(TG_SHAPE(5, 2, 4), &rng, -1, 1);
    tg_rnn_out a, b, c;
    tg_rng d1, d2;
    tg_rng_seed(&d1, 9);
    tg_rng_seed(&d2, 9);
    tg_rnn_forward(r, x, NULL, false, &d1, &a);
    tg_rnn_forward(r, x, NULL, true, &d1, &b);
    tg_rnn_forward(r, x, NULL, true, &d2, &c);
    /* eval draws nothing: b used the same stream as c */
    ck_assert_mem_eq(b.y->data, c.y->data, 80 * sizeof(tg_real));
    ck_assert(memcmp(a.y->data, b.y->data, 80 * sizeof(tg_real)) != 0);
    tg_rnn_free(r);
}
END_TEST

START_TEST(forget_bias_and_cell_step)
{
    tg_cell *c = tg_cell_new(&tg_lstm_cell, 3, 4, NULL);
    tg_cell_set_forget_bias(c, 1.0);
    tgt_close(c->bias_ih->data[4], 1.0, 0);
    tgt_close(c->bias_hh->data[7], 0.0, 0);
    ck_assert(fabs((double)c->bias_ih->data[0] - 1.0) > 1e-6); /* other gates untouched */
    tg_tensor *next[2];
    tg_cell_step(c, tg_ones(TG_SHAPE(2, 3)), (tg_tensor *[]){tg_zeros(TG_SHAPE(2, 4)),
                                                             tg_zeros(TG_SHAPE(2, 4))}, next);
    tgt_shape_is(next[0], 2, (int64_t[]){2, 4});
    tgt_shape_is(next[1], 2, (int64_t[]){2, 4});
    ck_assert_ptr_eq(tg_cell_type_find("rnn"), &tg_rnn_tanh_cell);
    ck_assert_ptr_eq(tg_cell_type_find("gru"), &tg_gru_cell);
    ck_assert_ptr_null(tg_cell_type_find("transformer"));
    char buf[128];
    ck_assert_str_eq(tg_cell_type_names(buf, sizeof buf), "lstm, gru, rnn_tanh, rnn_relu");
    tg_cell_free(c);
}
END_TEST

/* parameters saved as safetensors load into a fresh model bit for bit;
 * a mismatching model refuses them and keeps its own */
START_TEST(parameters_round_trip)
{
    char path[] = "/tmp/tg_nn_XXXXXX";
    close(mkstemp(path));
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    tg_charlm *a = tg_charlm_new(&tg_gru_cell, 9, 4, 5, 2, 0.0, &rng);
    tg_st_writer *w = tg_st_writer_new();
    tg_params_save(&a->params, w, NULL);
    char err[256];
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    tg_charlm *b = tg_charlm_new(&tg_gru_cell, 9, 4, 5, 2, 0.0, &rng);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_int_eq(tg_params_load(&b->params, f, "", err, sizeof err), 0);
    for (int i = 0; i < tg_params_count(&a->params); i++) {
        tg_tensor *x = tg_params_at(&a->params, i)->tensor;
        tg_tensor *y = tg_params_at(&b->params, i)->tensor;
        ck_assert_mem_eq(x->data, y->data, (size_t)x->numel * sizeof(tg_real));
    }
    tg_charlm *c = tg_charlm_new(&tg_gru_cell, 9, 4, 6, 2, 0.0, &rng); /* H differs */
    tg_real before = tg_params_at(&c->params, 0)->tensor->data[0];
    ck_assert_int_eq(tg_params_load(&c->params, f, "", err, sizeof err), -1);
    /* the message names the file's tensor, its shape and the model's */
    ck_assert_msg(strstr(err, "'rnn.weight_ih_l0'") && strstr(err, "[15, 4]") &&
                  strstr(err, "[18, 4]"), "%s", err);
    tgt_close(tg_params_at(&c->params, 0)->tensor->data[0], before, 0); /* untouched */
    tg_charlm *d = tg_charlm_new(&tg_lstm_cell, 9, 4, 5, 2, 0.0, &rng); /* cell differs */
    ck_assert_int_eq(tg_params_load(&d->params, f, "", err, sizeof err), -1);
    tg_st_free(f);
    tg_charlm_free(a);
    tg_charlm_free(b);
    tg_charlm_free(c);
    tg_charlm_free(d);
    unlink(path);
}
END_TEST

/* a NaN or infinite weight in the file is refused, naming the tensor, and
 * the model keeps its numbers (it used to load, and training then blamed
 * the learning rate) */
START_TEST(parameters_refuse_nan)
{
    char path[] = "/tmp/tg_nn_XXXXXX";
    close(mkstemp(path));
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    tg_charlm *a = tg_charlm_new(&tg_gru_cell, 9, 4, 5, 1, 0.0, &rng);
    tg_charlm *b = tg_charlm_new(&tg_gru_cell, 9, 4, 5, 1, 0.0, &rng);
    char err[256];
    for (int k = 0; k < 2; k++) {
        tg_tensor *W = tg_params_get(&a->params, "rnn.weight_hh_l0");
        W->data[7] = k ? (tg_real)-INFINITY : (tg_real)NAN;
        tg_st_writer *w = tg_st_writer_new();
        tg_params_save(&a->params, w, NULL);
        ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
        tg_st_writer_free(w);
        tg_st_file *f = tg_st_load(path, err, sizeof err);
        ck_assert_msg(f, "%s", err);
        tg_real before = tg_params_at(&b->params, 0)->tensor->data[0];
        ck_assert_int_eq(tg_params_load(&b->params, f, "", err, sizeof err), -1);
        ck_assert_msg(strstr(err, "'rnn.weight_hh_l0'") && strstr(err, "element 7") &&
                      strstr(err, "NaN or infinite"), "%s", err);
        tgt_close(tg_params_at(&b->params, 0)->tensor->data[0], before, 0);
        tg_st_free(f);
    }
    tg_charlm_free(a);
    tg_charlm_free(b);
    unlink(path);
}
END_TEST

/* a state dict of torch.nn.LSTM(3, 4) saved with safetensors.torch
 * (the shared fixture holds exactly its tensors under "rnn.") */
START_TEST(loads_pytorch_lstm_state_dict)
{
    char err[256];
    tg_st_file *f = tg_st_load("tests/fixtures/seq_lstm_I3_H4_L1_T5_B2.safetensors",
                               err, sizeof err);
    ck_assert_msg(f, "%s", err);
    tg_rnn *lstm = tg_rnn_new(&tg_lstm_cell, 3, 4, 1, 0.0, NULL);
    ck_assert_msg(tg_params_load(&lstm->params, f, "rnn.", err, sizeof err) == 0, "%s", err);
    const tg_st_tensor *w = tg_st_find(f, "rnn.weight_hh_l0");
    float first;
    memcpy(&first, w->data, 4);
    tgt_close(lstm->layers[0]->weight_hh->data[0], first, 0);
    tg_st_free(f);
    tg_rnn_free(lstm);
}
END_TEST

/* parameters moved into one block train exactly as before */
static double train_steps(tg_charlm *m, int steps, tg_real *out_param,
                          bool sgd)
{
    tg_optim *opt = sgd ? tg_sgd_new(&m->params, 0.1, 0.9, 0, 1e-3, true)
                        : tg_adam_new(&m->params, 0.01, 0.9, 0.999, 1e-8, 1e-3);
    int64_t tok[24], tgt[24];
    for (int i = 0; i < 24; i++) {
        tok[i] = (i * 7 + 3) % 11;
        tgt[i] = (i * 5 + 1) % 11;
    }
    double loss = 0;
    for (int s = 0; s < steps; s++) {
        tg_optim_zero_grad(opt);
        tg_rnn_out out;
        tg_tensor *logits = tg_charlm_forward(m, tok, 6, 4, NULL, true, NULL, &out);
        tg_tensor *l = tg_cross_entropy(logits, tgt, TG_MEAN);
        loss = l->data[0];
        ck_assert_int_eq(tg_backward(l), 0);
        tg_clip_grad_norm(&m->params, 1.0);
        tg_optim_step(opt);
        tg_tape_reset();
    }
    tg_tensor *w = tg_params_get(&m->params, "rnn.weight_hh_l1");
    memcpy(out_param, w->data, (size_t)w->numel * sizeof(tg_real));
    tg_optim_free(opt);
    return loss;
}

START_TEST(flattened_parameters_train_the_same)
{
    tgt_capture_errors();
    tg_manual_seed(3);
    tg_charlm *a = tg_charlm_new(&tg_lstm_cell, 11, 5, 6, 2, 0.0, NULL);
    tg_manual_seed(3);
    tg_charlm *b = tg_charlm_new(&tg_lstm_cell, 11, 5, 6, 2, 0.0, NULL);
    ck_assert_int_eq(tg_params_flatten(&b->params), 0);
    ck_assert_int_eq(tg_params_flatten(&b->params), -1); /* twice: error */
    tgt_expect_error("params_flatten", "already");
    /* every tensor in the block, 64-byte aligned, values kept */
    for (int i = 0; i < tg_params_count(&b->params); i++) {
        tg_tensor *t = tg_params_at(&b->params, i)->tensor;
        tg_tensor *u = tg_params_at(&a->params, i)->tensor;
        ck_assert(t->data >= b->params.block_data &&
                  t->data + t->numel <= b->params.block_data + b->params.block_n);
        ck_assert_int_eq((int)(((uintptr_t)t->data) % 64), 0);
        ck_assert_int_eq(t->grad - b->params.block_grad,
                         t->data - b->params.block_data);
        ck_assert(!memcmp(t->data, u->data, (size_t)t->numel * sizeof(tg_real)));
    }
    ck_assert_int_ge(b->params.block_n, tg_params_numel(&b->params));
    /* the optimizers and clipping run one loop over the block: the same
     * numbers as their loops per tensor */
    tg_real wa[6 * 4 * 6], wb[6 * 4 * 6];
    for (int sgd = 0; sgd < 2; sgd++) {
        double la = train_steps(a, 3, wa, sgd), lb = train_steps(b, 3, wb, sgd);
        ck_assert(la == lb);
        ck_assert(!memcmp(wa, wb, sizeof wa));
    }
    /* zero_grad is one memset over the block */
    tg_params_zero_grad(&b->params);
    for (int64_t i = 0; i < b->params.block_n; i++)
        ck_assert(b->params.block_grad[i] == 0);
    tg_charlm_free(a);
    tg_charlm_free(b);
}
END_TEST

/* the launchers' variables: size and rank, whichever launcher set them
 * (srun with pmix sets only Slurm's); a batch script's SLURM_NTASKS alone
 * is not a launch */
START_TEST(launcher_from_environment)
{
    static const char *const vars[] = {
        "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE",
        "PMI_RANK", "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK",
        "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_NTASKS"};
    enum { NV = sizeof vars / sizeof *vars };
    char *saved[NV];
    for (int i = 0; i < NV; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    int rank = -1;
    ck_assert_int_eq(tg_dist_launched(&rank), 0);
    ck_assert_int_eq(rank, 0);
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_PROCID", "0", 1);
    ck_assert_int_eq(tg_dist_launched(&rank), 0);
    setenv("SLURM_STEP_NUM_TASKS", "4", 1);
    setenv("SLURM_PROCID", "3", 1);
    ck_assert_int_eq(tg_dist_launched(&rank), 4);
    ck_assert_int_eq(rank, 3);
    setenv("PMI_SIZE", "2", 1);
    setenv("PMI_RANK", "1", 1);
    ck_assert_int_eq(tg_dist_launched(&rank), 2);
    ck_assert_int_eq(rank, 1);
    setenv("OMPI_COMM_WORLD_SIZE", "x", 1); /* not a count: next one */
    ck_assert_int_eq(tg_dist_launched(&rank), 2);
    for (int i = 0; i < NV; i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("nn");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, pytorch_names_and_init);
    tcase_add_test(tc, shape_errors);
    tcase_add_test(tc, incomplete_cell_types_are_refused);
    tcase_add_test(tc, cell_fini_frees_what_init_allocated);
    tcase_add_test(tc, duplicate_parameter_names_are_refused);
    tcase_add_test(tc, truncated_bptt_carries_state);
    tcase_add_test(tc, dropout_between_layers_only_when_training);
    tcase_add_test(tc, forget_bias_and_cell_step);
    tcase_add_test(tc, parameters_round_trip);
    tcase_add_test(tc, parameters_refuse_nan);
    tcase_add_test(tc, loads_pytorch_lstm_state_dict);
    tcase_add_test(tc, flattened_parameters_train_the_same);
    tcase_add_test(tc, launcher_from_environment);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
