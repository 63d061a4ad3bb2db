/*
 * tests/grad_layers.c - gradient checks (double precision) for embedding
 * (repeated ids must accumulate; ids of several shapes; a strided weight)
 * and dropout in training mode (a local generator reseeded on every call,
 * so the analytic and every numeric pass see the same mask).
 */
#include "harness.h"
#include "ops/ops.h"

/* ---- embedding ---------------------------------------------------------- */

typedef struct emb_case {
    const int64_t *ids;
    int ndim;
    int64_t shape[3];
    int transpose; /* weight given as tg_transpose of [E, V] */
} emb_case;

static tg_tensor *f_embedding(tg_tensor *const *in, void *ud)
{
    const emb_case *c = ud;
    tg_tensor *w = c->transpose ? tg_transpose(in[0], 0, 1) : in[0];
    tg_tensor *y = tg_embedding(w, c->ids, c->ndim, c->shape);
    /* a nonlinearity afterwards, so dy differs per use of a row */
    return tg_mul(y, y);
}

START_TEST(grad_embedding_repeated_ids)
{
    /* V = 6, E = 4; id 2 three times, id 5 twice, id 0 and 3 unused */
    static const int64_t ids[10] = {2, 5, 2, 1, 4, 2, 5, 1, 4, 2};
    emb_case c = {ids, 2, {2, 5}, 0};
    tg_tensor *w = tgt_leaf(TG_SHAPE(6, 4), 1, -1, 1);
    tgt_gradcheck("embedding [2,5] ids", f_embedding, &c, 1, w);
    /* 1-D ids, 3-D ids and a 0-d id */
    emb_case c1 = {ids, 1, {7}, 0};
    tgt_gradcheck("embedding [7] ids", f_embedding, &c1, 1, w);
    emb_case c3 = {ids, 3, {2, 1, 5}, 0};
    tgt_gradcheck("embedding [2,1,5] ids", f_embedding, &c3, 1, w);
    emb_case c0 = {ids + 3, 0, {0}, 0};
    tgt_gradcheck("embedding 0-d id", f_embedding, &c0, 1, w);
}
END_TEST

START_TEST(grad_embedding_wide_and_strided)
{
    /* E = 37 spans three column blocks of the backward; and a weight
     * that is a transposed (strided) view */
    static const int64_t ids[8] = {0, 3, 3, 1, 0, 2, 3, 3};
    emb_case c = {ids, 1, {8}, 0};
    tgt_gradcheck("embedding E=37", f_embedding, &c, 1,
                  tgt_leaf(TG_SHAPE(4, 37), 2, -1, 1));
    emb_case ct = {ids, 2, {4, 2}, 1};
    tgt_gradcheck("embedding of a transposed weight", f_embedding, &ct, 1,
                  tgt_leaf(TG_SHAPE(5, 4), 3, -1, 1));
}
END_TEST

/* ---- dropout ------------------------------------------------------------ */

typedef struct drop_case {
    double p;
    int transpose;
} drop_case;

static tg_tensor *f_dropout(tg_tensor *const *in, void *ud)
{
    const drop_case *c = ud;
    tg_rng r;
    tg_rng_seed(&r, 99); /* the same mask on every call */
    tg_tensor *x = c->transpose ? tg_transpose(in[0], 0, 1) : in[0];
    tg_tensor *y = tg_dropout(x, c->p, true, &r);
    ck_assert_ptr_ne(y, x);
    return tg_mul(y, x); /* x used twice: through the mask and directly */
}

START_TEST(grad_dropout_training)
{
    double ps[] = {0.1, 0.5, 0.8};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++)
        for (int transpose = 0; transpose < 2; transpose++) {
            drop_case c = {ps[k], transpose};
            char label[64];
            snprintf(label, sizeof label, "dropout p=%g%s", ps[k],
                     transpose ? " (transposed input)" : "");
            tgt_gradcheck(label, f_dropout, &c, 1,
                          tgt_leaf(TG_SHAPE(6, 7), 10 + k, -2, 2));
            tg_tape_reset();
        }
}
END_TEST

/* !training: dropout is the identity and its gradient passes through */
static tg_tensor *f_dropout_eval(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_mul_scalar(tg_dropout(in[0], 0.5, false, NULL), 3);
}
START_TEST(grad_dropout_eval)
{
    tgt_gradcheck("dropout eval", f_dropout_eval, NULL, 1,
                  tgt_leaf(TG_SHAPE(3, 3), 4, -1, 1));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_layers");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, grad_embedding_repeated_ids);
    tcase_add_test(tc, grad_embedding_wide_and_strided);
    tcase_add_test(tc, grad_dropout_training);
    tcase_add_test(tc, grad_dropout_eval);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
