/*
 * tests/test_lifetimes.c - lifetime mistakes the C API can see are
 * errors, not crashes or silently wrong numbers: a temporary used after
 * the tg_tape_reset that freed it (tensor/arena.h, "generations"), and
 * the tensors of a flattened parameter block freed in the wrong order
 * (nn/params.h, "Order of freeing").
 *
 * Before generations, each case here read memory the next step had
 * reused: the sum of a tensor kept across a reset was the sum of another
 * tensor, and a matrix product of one whose header had been overwritten
 * by numbers crashed in the gemm's packing. Before blocks knew their
 * tensors, freeing a parameter still in one left the block's list
 * pointing at freed memory, and freeing the list first left the tensors
 * training in a freed block.
 */
#include "harness.h"
#include "nn/charlm.h"
#include "nn/dist.h"
#include "nn/optim.h"
#include "nn/rnn.h"
#include "ops/ops.h"

/* "op: tensor tN [shape] is a temporary of tape generation G, ..." */
static void expect_dead(const char *op, const tg_tensor *t)
{
    char id[32], what[160];
    snprintf(id, sizeof id, "tensor t%u ", (unsigned)t->id);
    snprintf(what, sizeof what, "%s: ", op);
    tgt_expect_error(what, id, "is a temporary of tape generation",
                     "tg_tape_reset has freed it", "tg_rnn_keep_state");
}

/* the same step twice: the first step's tensor, asked after the second
 * made its own at the same places, is refused - it used to read the
 * second's numbers */
START_TEST(kept_across_a_reset_is_refused)
{
    tgt_capture_errors();
    tg_tensor *a = tg_full(TG_SHAPE(4, 4), 1.0);
    ck_assert(tg_check_live("test", 1, (const tg_tensor *[]){a}));
    tg_tape_reset();
    tg_tensor *b = tg_full(TG_SHAPE(4, 4), 2.0);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_null(tg_sum(a));
    expect_dead("sum", a);
    ck_assert_double_eq(tg_item(tg_sum(b)), 32.0);
    /* every entry point that reads or writes a tensor */
    ck_assert(isnan(tg_item(a)));
    expect_dead("item", a);
    ck_assert_ptr_null(tg_add(b, a));
    expect_dead("add", a);
    ck_assert_ptr_null(tg_detach(a));
    expect_dead("detach", a);
    ck_assert_ptr_null(tg_view_reshape(a, TG_SHAPE(16)));
    expect_dead("reshape", a);
    ck_assert_int_eq(tg_copy_(b, a), -1);
    expect_dead("copy_", a);
    tg_fill_(a, 3.0);
    expect_dead("fill_", a);
    ck_assert_ptr_null(tg_requires_grad(a));
    expect_dead("requires_grad", a);
    ck_assert_ptr_null(tg_concat((tg_tensor *[]){b, a}, 2, 0));
    expect_dead("concat", a);
    tg_tensor *parts[2];
    ck_assert_int_eq(tg_chunk(a, 2, 0, parts), -1);
    expect_dead("chunk", a);
    ck_assert_ptr_null(tg_linear(b, b, a));
    expect_dead("linear", a);
    ck_assert_double_eq(tg_item(tg_sum(b)), 32.0); /* b untouched */
}
END_TEST

/* a header the next step overwrote with numbers used to give the gemm a
 * garbage data pointer (SIGSEGV in its packing) */
START_TEST(matmul_of_a_freed_tensor_is_refused)
{
    tgt_capture_errors();
    tg_tensor *W = tg_tensor_new(TG_SHAPE(64, 64));
    tg_fill_(W, 0.5);
    tg_tensor *x = tg_ones(TG_SHAPE(64, 64));
    tg_tape_reset();
    for (int k = 0; k < 8; k++) /* the next step: large numbers everywhere */
        tg_full(TG_SHAPE(64, 64), 1e30);
    ck_assert_ptr_null(tg_matmul(x, W));
    expect_dead("matmul", x);
    tg_tensor_free(W);
}
END_TEST

/* backward of a loss from the last step */
START_TEST(backward_of_an_old_loss_is_refused)
{
    tgt_capture_errors();
    tg_tensor *x = tg_requires_grad(tg_ones(TG_SHAPE(3)));
    tg_tensor *loss = tg_sum(tg_tanh(x));
    tg_tape_reset();
    ck_assert_int_eq(tg_backward(loss), -1);
    expect_dead("backward", loss);
}
END_TEST

/* truncated BPTT done wrong: the final state carried into the next batch
 * as it is, instead of through tg_rnn_keep_state */
START_TEST(carried_rnn_state_is_refused)
{
    tgt_capture_errors();
    tg_manual_seed(1);
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 4, 1, 0.0, NULL);
    tg_tensor *x = tg_randn(TG_SHAPE(5, 2, 3), NULL, 0, 1);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    tg_tensor *carried[2] = {out.state[0], out.state[1]};
    tg_tape_reset();
    x = tg_randn(TG_SHAPE(5, 2, 3), NULL, 0, 1);
    ck_assert_int_eq(tg_rnn_forward(r, x, carried, true, NULL, &out), -1);
    expect_dead("lstm", carried[0]);
    /* kept as the header says: fine */
    tg_tensor *keep[2] = {NULL, NULL};
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    tg_rnn_keep_state(r, &out, keep);
    tg_tape_reset();
    x = tg_randn(TG_SHAPE(5, 2, 3), NULL, 0, 1);
    ck_assert_int_eq(tg_rnn_forward(r, x, keep, true, NULL, &out), 0);
    ck_assert_int_eq(tgt_errors, 0);
    tg_tensor_free(keep[0]);
    tg_tensor_free(keep[1]);
    tg_rnn_free(r);
}
END_TEST

/* what stays valid: persistent tensors, views and detached copies made
 * in this step, temporaries of a rewind's own step */
START_TEST(live_tensors_pass)
{
    tgt_capture_errors();
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(2, 2)));
    tg_fill_(W, 1.0);
    for (int step = 0; step < 3; step++) {
        tg_tensor *x = tg_ones(TG_SHAPE(2, 2));
        tg_tensor *v = tg_view_transpose(W, 0, 1);
        tg_tensor *d = tg_detach(W);
        tg_tape_mark m = tg_tape_mark_get();
        tg_tensor *y = tg_add(tg_matmul(x, v), d);
        tg_tape_rewind(m);
        y = tg_matmul(x, W);
        ck_assert_int_eq(tg_backward(tg_sum(y)), 0);
        tg_tape_reset();
        /* a view or a detached header of a parameter is a temporary */
        ck_assert_ptr_null(tg_sum(d));
        expect_dead("sum", d);
    }
    ck_assert_int_eq(tgt_errors, 0);
    tgt_close(W->grad[0], 6.0, 0);
    tg_tensor_free(W);
}
END_TEST

/* a mark from before a reset cannot be rewound to */
START_TEST(rewind_to_a_mark_of_another_step)
{
    tgt_capture_errors();
    tg_tape_mark m = tg_tape_mark_get();
    tg_ones(TG_SHAPE(8));
    tg_tape_reset();
    tg_tensor *x = tg_ones(TG_SHAPE(8));
    tg_tape_rewind(m);
    tgt_expect_error("tape_rewind: ", "taken in tape generation",
                     "Take marks and rewind to them within one step");
    ck_assert_double_eq(tg_item(tg_sum(x)), 8.0); /* nothing rewound */
}
END_TEST

/* a direction set on a temporary made after a mark goes with the
 * rewind; one on a parameter stays (under make asan, a direction kept on
 * the list of leaves after its tensor went is a leak, or a write to the
 * freed header at the next reset) */
START_TEST(rewind_forgets_directions_of_its_temporaries)
{
    tgt_capture_errors();
    tg_tensor *W = tg_requires_grad(tg_tensor_new(TG_SHAPE(3)));
    tg_fill_(W, 2.0);
    tg_tensor *dir = tg_tensor_new(TG_SHAPE(3));
    tg_fill_(dir, 1.0);
    ck_assert_int_eq(tg_set_tangent(W, dir), 0);
    for (int step = 0; step < 3; step++) {
        tg_tape_mark m = tg_tape_mark_get();
        tg_tensor *t = tg_requires_grad(tg_ones(TG_SHAPE(3)));
        ck_assert_int_eq(tg_set_tangent(t, dir), 0);
        ck_assert_ptr_nonnull(t->tangent);
        tg_tape_rewind(m);
        tg_tensor *u = tg_ones(TG_SHAPE(3)); /* where t was, most likely */
        ck_assert_ptr_null(u->tangent);
        tg_tensor *y = tg_mul(W, W);
        ck_assert_int_eq(tg_jvp(), 0);
        ck_assert_ptr_nonnull(y->tangent);
        for (int i = 0; i < 3; i++)
            tgt_close(y->tangent[i], 4.0, 0); /* 2 W . dir */
        tg_tape_reset(); /* W's direction goes here (tg_clear_tangents) */
        ck_assert_int_eq(tg_set_tangent(W, dir), 0);
    }
    ck_assert_int_eq(tgt_errors, 0);
    tg_tensor_free(dir);
    tg_tensor_free(W);
}
END_TEST

/* ---- flattened parameter blocks ---------------------------------------- */

/* a module's list owns W and b; a model's list borrows and flattens them */
typedef struct two_lists {
    tg_params own, all;
    tg_tensor *W, *b;
} two_lists;

static void make_two_lists(two_lists *l)
{
    memset(l, 0, sizeof *l);
    l->W = tg_params_new(&l->own, "weight", TG_SHAPE(3, 2));
    l->b = tg_params_new(&l->own, "bias", TG_SHAPE(3));
    tg_fill_(l->W, 0.5);
    tg_fill_(l->b, -1.0);
    ck_assert_int_eq(tg_params_add_from(&l->all, "layer.", &l->own), 0);
    ck_assert_int_eq(tg_params_flatten(&l->all), 0);
    ck_assert(l->W->flags & TG_IN_BLOCK);
}

START_TEST(freeing_a_parameter_in_a_block_is_refused)
{
    tgt_capture_errors();
    two_lists l;
    make_two_lists(&l);
    tg_tensor_free(l.W);
    tgt_expect_error("tensor_free: tensor 'weight' t", " [3, 2] lives in a "
                     "flattened parameter block", "free that list first",
                     "Nothing was freed");
    tg_params_free(&l.own); /* the module before the model: refused too */
    tgt_expect_error("params_free: parameter 'weight' lives in the flattened "
                     "block of another list", "Nothing was freed");
    ck_assert_int_eq(tg_params_count(&l.own), 2);
    tg_params_zero_grad(&l.all); /* both lists whole: the block's loop */
    tgt_close(tg_params_get(&l.all, "layer.weight")->data[5], 0.5, 0);
    /* the right order */
    tg_params_free(&l.all);
    ck_assert(!(l.W->flags & TG_IN_BLOCK));
    tgt_close(l.W->data[5], 0.5, 0);
    tgt_close(l.b->data[2], -1.0, 0);
    tg_params_free(&l.own);
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

/* the model's list freed first: its modules train on, on memory of their
 * own, exactly as a model that was never flattened */
static void train_modules(tg_charlm *m, tg_real *out, size_t n)
{
    tg_params ps = {0};
    tg_params_add_from(&ps, "embedding.", &m->embedding->params);
    tg_params_add_from(&ps, "rnn.", &m->rnn->params);
    tg_params_add_from(&ps, "decoder.", &m->decoder->params);
    tg_optim *opt = tg_adam_new(&ps, 0.01, 0.9, 0.999, 1e-8, 0);
    int64_t tok[12], tgt[12];
    for (int i = 0; i < 12; i++) {
        tok[i] = (i * 5 + 2) % 9;
        tgt[i] = (i * 7 + 1) % 9;
    }
    for (int s = 0; s < 3; s++) {
        tg_optim_zero_grad(opt);
        tg_rnn_out o;
        tg_tensor *loss = tg_cross_entropy(
            tg_charlm_forward(m, tok, 4, 3, NULL, true, NULL, &o), tgt, TG_MEAN);
        ck_assert_int_eq(tg_backward(loss), 0);
        tg_optim_step(opt);
        tg_tape_reset();
    }
    memcpy(out, m->decoder->weight->data, n * sizeof(tg_real));
    tg_optim_free(opt);
    tg_params_free(&ps);
}

START_TEST(freeing_the_list_first_leaves_its_tensors_whole)
{
    tgt_capture_errors();
    tg_manual_seed(4);
    tg_charlm *a = tg_charlm_new(&tg_gru_cell, 9, 4, 5, 1, 0.0, NULL);
    tg_manual_seed(4);
    tg_charlm *b = tg_charlm_new(&tg_gru_cell, 9, 4, 5, 1, 0.0, NULL);
    ck_assert_int_eq(tg_params_flatten(&b->params), 0);
    size_t bytes = (size_t)b->params.block_n * sizeof(tg_real);
    tg_params_free(&b->params);
    /* what takes the freed block's place next must not reach b */
    for (int k = 0; k < 4; k++) {
        tg_real *junk = malloc(bytes);
        for (size_t i = 0; i < bytes / sizeof(tg_real); i++)
            junk[i] = (tg_real)1e30;
        free(junk);
    }
    tg_real wa[9 * 5], wb[9 * 5];
    train_modules(a, wa, 9 * 5);
    train_modules(b, wb, 9 * 5);
    ck_assert(!memcmp(wa, wb, sizeof wa));
    ck_assert_int_eq(tgt_errors, 0);
    tg_charlm_free(a);
    tg_charlm_free(b); /* its list is empty now: the modules go as usual */
}
END_TEST

/* a sequence layer whose list was flattened: tg_rnn_free frees that
 * list before the cells' (the other way round, each cell's list refused
 * to free tensors in the block, said so, and leaked them) */
START_TEST(flattened_rnn_is_freed_whole)
{
    tgt_capture_errors();
    tg_rnn *r = tg_rnn_new(&tg_lstm_cell, 3, 4, 2, 0.0, NULL);
    ck_assert_int_eq(tg_params_flatten(&r->params), 0);
    tg_tensor *x = tgt_leaf(TG_SHAPE(2, 3, 3), 1, -1, 1);
    tg_rnn_out out;
    ck_assert_int_eq(tg_rnn_forward(r, x, NULL, true, NULL, &out), 0);
    ck_assert_int_eq(tg_backward(tg_sum(out.y)), 0);
    tg_tape_reset();
    tg_rnn_free(r);
    ck_assert_msg(tgt_errors == 0, "%s", tg_last_error());
}
END_TEST

/* an optimizer whose list was freed under it: an error, then freed
 * without touching the list */
START_TEST(optimizer_of_a_freed_list)
{
    tgt_capture_errors();
    two_lists l;
    make_two_lists(&l);
    tg_optim *opt = tg_adam_new(&l.all, 0.1, 0.9, 0.999, 1e-8, 0);
    tg_fill_(tg_params_get(&l.all, "layer.bias"), 1.0);
    l.b->grad[0] = 1;
    tg_optim_step(opt); /* one loop over the block: its moments are one too */
    ck_assert_ptr_nonnull(opt->m_block);
    tg_params_free(&l.all);
    tg_real before = l.b->data[0];
    tg_optim_step(opt);
    tgt_expect_error("optim_step: the parameter list has 0 parameters, "
                     "fewer than the 2", "Free the optimizer first");
    ck_assert(l.b->data[0] == before);
    tg_optim_free(opt);
    tg_params_free(&l.own);
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

/* the same for data-parallel gradient sums (one rank: no MPI needed) */
START_TEST(dist_sums_of_a_freed_list)
{
    tgt_capture_errors();
    two_lists l;
    make_two_lists(&l);
    tg_dist_grads *g = tg_dist_grads_new(&l.all, 1, 1.0, 0);
    ck_assert_ptr_nonnull(g);
    tg_params_free(&l.all);
    tg_dist_grads_begin(g, 0);
    tgt_expect_error("dist_grads_begin: the parameter list's flattened block "
                     "(32 numbers) is gone", "Free them (tg_dist_grads_free) "
                     "first");
    ck_assert_int_eq(tg_dist_grads_end(g), -1);
    tgt_expect_error("dist_grads_end: the parameter list's flattened block");
    tg_dist_grads_free(g);
    tg_params_free(&l.own);
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lifetimes");
    TCase *tc = tcase_create("generations");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, kept_across_a_reset_is_refused);
    tcase_add_test(tc, matmul_of_a_freed_tensor_is_refused);
    tcase_add_test(tc, backward_of_an_old_loss_is_refused);
    tcase_add_test(tc, carried_rnn_state_is_refused);
    tcase_add_test(tc, live_tensors_pass);
    tcase_add_test(tc, rewind_to_a_mark_of_another_step);
    tcase_add_test(tc, rewind_forgets_directions_of_its_temporaries);
    suite_add_tcase(s, tc);
    TCase *bl = tcase_create("blocks");
    tcase_add_checked_fixture(bl, NULL, tgt_teardown);
    tcase_add_test(bl, freeing_a_parameter_in_a_block_is_refused);
    tcase_add_test(bl, freeing_the_list_first_leaves_its_tensors_whole);
    tcase_add_test(bl, flattened_rnn_is_freed_whole);
    tcase_add_test(bl, optimizer_of_a_freed_list);
    tcase_add_test(bl, dist_sums_of_a_freed_list);
    suite_add_tcase(s, bl);
    return s;
}

TG_TEST_MAIN(suite)
