/*
 * tests/grad_shape.c - gradient checks (double precision) for the shape
 * ops: every view's gradient view, views of views, and the joins.
 */
#include "harness.h"
#include "ops/ops.h"

/* Each function multiplies its result by a fixed non-uniform weight (via
 * the gradcheck's own random R), so a gradient landing in the wrong place
 * is caught. */

static tg_tensor *f_reshape(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_reshape(in[0], TG_SHAPE(4, -1));
}
static tg_tensor *f_reshape_strided(tg_tensor *const *in, void *ud)
{
    (void)ud; /* a transposed (non-contiguous) input must be copied */
    return tg_reshape(tg_transpose(in[0], 0, 2), TG_SHAPE(-1));
}
static tg_tensor *f_squeeze(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_unsqueeze(tg_squeeze(tg_slice(in[0], 1, 1, 2, 1), 1), -1);
}
static tg_tensor *f_transpose(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_transpose(in[0], 0, -1);
}
static tg_tensor *f_permute(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_permute(in[0], (int[]){2, 0, 1});
}
static tg_tensor *f_slice(tg_tensor *const *in, void *ud)
{
    (void)ud; /* step 2, negative start, a slice of a transposed view */
    tg_tensor *a = tg_slice(in[0], 2, -3, 4, 2);
    return tg_slice(tg_transpose(a, 0, 1), 0, 1, 3, 1);
}
static tg_tensor *f_chunk(tg_tensor *const *in, void *ud)
{
    (void)ud; /* four gates: combine them so each chunk's gradient differs */
    tg_tensor *g[4];
    ck_assert_int_eq(tg_chunk(in[0], 4, -1, g), 4);
    return tg_add(tg_mul(g[0], g[1]), tg_mul(g[2], tg_mul(g[3], g[3])));
}
static tg_tensor *f_split(tg_tensor *const *in, void *ud)
{
    (void)ud;
    tg_tensor *p[3];
    ck_assert_int_eq(tg_split(in[0], (int64_t[]){1, 3, 0}, 3, 0, p), 3);
    return tg_concat((tg_tensor *[]){p[1], p[0], p[2]}, 3, 0);
}
static tg_tensor *f_select(tg_tensor *const *in, void *ud)
{
    (void)ud; /* row 2 of a transposed view, and the last row of a slice of it */
    tg_tensor *t = tg_transpose(in[0], 0, 2); /* [4, 3, 2] */
    return tg_stack((tg_tensor *[]){tg_select(t, 0, 2), tg_select(tg_slice(t, 0, 1, 4, 2), 0, -1)},
                    2, 0);
}
static tg_tensor *f_expand(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_expand(in[0], TG_SHAPE(2, 3, 5));
}
static tg_tensor *f_contiguous(tg_tensor *const *in, void *ud)
{
    (void)ud;
    return tg_contiguous(tg_transpose(in[0], 1, 2));
}
static tg_tensor *f_concat(tg_tensor *const *in, void *ud)
{
    (void)ud; /* in[0] used twice, once transposed */
    return tg_concat((tg_tensor *[]){in[0], in[1], tg_transpose(in[0], 0, 1)},
                     3, 1);
}
static tg_tensor *f_stack(tg_tensor *const *in, void *ud)
{
    int dim = *(int *)ud;
    return tg_stack((tg_tensor *[]){in[0], in[1], in[0]}, 3, dim);
}

START_TEST(grad_views)
{
    tg_tensor *x = tgt_leaf(TG_SHAPE(2, 3, 4), 1, -1, 1);
    tgt_gradcheck("reshape", f_reshape, NULL, 1, x);
    tgt_gradcheck("reshape of strided", f_reshape_strided, NULL, 1, x);
    tgt_gradcheck("squeeze/unsqueeze", f_squeeze, NULL, 1, x);
    tgt_gradcheck("transpose", f_transpose, NULL, 1, x);
    tgt_gradcheck("permute", f_permute, NULL, 1, x);
    tgt_gradcheck("slice of views", f_slice, NULL, 1, x);
    tgt_gradcheck("chunk into 4", f_chunk, NULL, 1, x);
    tgt_gradcheck("select", f_select, NULL, 1, x);
    tgt_gradcheck("contiguous", f_contiguous, NULL, 1, x);
    tg_tensor *y = tgt_leaf(TG_SHAPE(4, 2, 3), 2, -1, 1);
    tgt_gradcheck("split and concat", f_split, NULL, 1, y);
    tg_tensor *b = tgt_leaf(TG_SHAPE(3, 1), 3, -1, 1);
    tgt_gradcheck("expand", f_expand, NULL, 1, b);
}
END_TEST

START_TEST(grad_joins)
{
    tg_tensor *a = tgt_leaf(TG_SHAPE(3, 3), 4, -1, 1);
    tg_tensor *b = tgt_leaf(TG_SHAPE(3, 2), 5, -1, 1);
    tgt_gradcheck("concat", f_concat, NULL, 2, a, b);
    tg_tensor *c = tgt_leaf(TG_SHAPE(3, 3), 6, -1, 1);
    for (int dim = -3; dim <= 2; dim++) {
        char label[32];
        snprintf(label, sizeof label, "stack dim %d", dim);
        tgt_gradcheck(label, f_stack, &dim, 2, a, c);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_shape");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, grad_views);
    tcase_add_test(tc, grad_joins);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
