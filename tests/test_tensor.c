/*
 * tests/test_tensor.c - the tensor layer: creation, the RNG and its saved
 * state, views without copies, strided copies, printing, the arena.
 */
#include "harness.h"

START_TEST(creation)
{
    tg_tensor *z = tg_zeros(TG_SHAPE(2, 3));
    tgt_shape_is(z, 2, (int64_t[]){2, 3});
    ck_assert_int_eq(z->numel, 6);
    ck_assert_int_eq(z->stride[0], 3);
    ck_assert_int_eq(z->stride[1], 1);
    tgt_tensor_equals(z, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
    tgt_tensor_equals(tg_ones(TG_SHAPE(2)), (double[]){1, 1}, 2, 0);
    tgt_tensor_equals(tg_full(TG_SHAPE(1, 1, 1, 2), 2.5), (double[]){2.5, 2.5}, 2, 0);
    tgt_tensor_equals(tg_arange(1, 2.5, 0.5), (double[]){1, 1.5, 2}, 3, 1e-7);
    tgt_tensor_equals(tg_arange(3, 0, -1), (double[]){3, 2, 1}, 3, 0);
    ck_assert_int_eq(tg_arange(0, 0, 1)->numel, 0);
    tg_tensor *s = tg_scalar(7);
    ck_assert_int_eq(s->ndim, 0);
    tgt_close(tg_item(s), 7, 0);
    tg_real buf[] = {1, 2, 3, 4};
    tg_tensor *c = tg_from_buffer(TG_SHAPE(2, 2), buf);
    tg_tensor *w = tg_wrap_buffer(TG_SHAPE(2, 2), buf);
    buf[0] = 9;
    tgt_close(c->data[0], 1, 0); /* copied */
    tgt_close(w->data[0], 9, 0); /* wrapped */
    tg_tensor *six = tg_zeros(TG_SHAPE(1, 2, 1, 2, 1, 2));
    ck_assert_int_eq(six->numel, 8);
}
END_TEST

START_TEST(creation_errors)
{
    tgt_capture_errors();
    ck_assert_ptr_null(tg_zeros(7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}));
    tgt_expect_error("7 dimensions");
    ck_assert_ptr_null(tg_zeros(TG_SHAPE(2, -1)));
    tgt_expect_error("negative");
    ck_assert_ptr_null(tg_arange(0, 1, 0));
    tgt_expect_error("arange", "non-zero");
    ck_assert(isnan(tg_item(tg_zeros(TG_SHAPE(2)))));
    tgt_expect_error("item", "[2]", "exactly one");
}
END_TEST

START_TEST(rng_reproducible_and_restorable)
{
    tg_manual_seed(42);
    tg_rng saved = *tg_rng_global();
    tg_tensor *a = tg_randn(TG_SHAPE(100), NULL, 0, 1);
    *tg_rng_global() = saved;
    tg_tensor *b = tg_randn(TG_SHAPE(100), NULL, 0, 1);
    ck_assert_mem_eq(a->data, b->data, 100 * sizeof(tg_real));
    tg_manual_seed(43);
    tg_tensor *c = tg_randn(TG_SHAPE(100), NULL, 0, 1);
    ck_assert(memcmp(a->data, c->data, 100 * sizeof(tg_real)) != 0);
    /* statistics of 200k samples */
    tg_rng r;
    tg_rng_seed(&r, 7);
    tg_tensor *n = tg_randn(TG_SHAPE(200000), &r, 1.0, 2.0);
    tg_tensor *u = tg_rand(TG_SHAPE(200000), &r, -1.0, 3.0);
    double m = 0, v = 0, um = 0, umin = 1e9, umax = -1e9;
    for (int i = 0; i < 200000; i++) {
        double nv = tg_flat_get(n, i), uv = tg_flat_get(u, i);
        m += nv;
        v += (nv - 1.0) * (nv - 1.0);
        um += uv;
        umin = fmin(umin, uv);
        umax = fmax(umax, uv);
    }
    tgt_close(m / 200000, 1.0, 0.02);
    tgt_close(sqrt(v / 200000), 2.0, 0.02);
    tgt_close(um / 200000, 1.0, 0.02);
    ck_assert(umin >= -1.0 && umax < 3.0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt(tg_rng_below(&r, 7), 7);
}
END_TEST

START_TEST(views_share_numbers)
{
    tg_tensor *a = tg_arange(0, 24, 1);
    tg_tensor *m = tg_view_reshape(a, TG_SHAPE(2, 3, 4));
    ck_assert_ptr_eq(m->data, a->data);
    tg_tensor *r = tg_view_reshape(a, TG_SHAPE(-1, 6));
    tgt_shape_is(r, 2, (int64_t[]){4, 6});
    tg_tensor *t = tg_view_transpose(m, 0, 2); /* [4, 3, 2] */
    tgt_shape_is(t, 3, (int64_t[]){4, 3, 2});
    ck_assert(!tg_is_contiguous(t));
    tgt_close(tg_get(t, (int64_t[]){3, 1, 1}), 12 + 4 + 3, 0);
    tg_tensor *s = tg_view_slice(m, -1, 1, 100, 2); /* columns 1, 3 */
    tgt_shape_is(s, 3, (int64_t[]){2, 3, 2});
    tgt_tensor_equals(s, (double[]){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23},
                      12, 0);
    tg_tensor *p = tg_view_permute(m, (int[]){1, 2, 0});
    tgt_close(tg_get(p, (int64_t[]){2, 3, 1}), 12 + 8 + 3, 0);
    tg_tensor *e = tg_view_expand(tg_view_slice(m, 0, 0, 1, 1), TG_SHAPE(3, 3, 4));
    tgt_close(tg_get(e, (int64_t[]){2, 1, 1}), 5, 0);
    tg_set(t, (int64_t[]){0, 0, 1}, -1); /* writes through to a */
    tgt_close(a->data[12], -1, 0);
    /* a contiguous copy of a view */
    tg_tensor *c = tg_clone(t);
    ck_assert(tg_is_contiguous(c));
    tgt_close(c->data[1], -1, 0);
    tgt_close(c->data[2], 4, 0);
}
END_TEST

START_TEST(view_errors)
{
    tgt_capture_errors();
    tg_tensor *m = tg_zeros(TG_SHAPE(2, 3));
    ck_assert_ptr_null(tg_view_reshape(m, TG_SHAPE(4, 2)));
    tgt_expect_error("reshape", "[2, 3]", "[4, 2]");
    ck_assert_ptr_null(tg_view_reshape(tg_view_transpose(m, 0, 1), TG_SHAPE(6)));
    tgt_expect_error("reshape", "non-contiguous");
    ck_assert_ptr_null(tg_view_reshape(m, TG_SHAPE(-1, -1)));
    tgt_expect_error("only one");
    ck_assert_ptr_null(tg_view_transpose(m, 0, 2));
    tgt_expect_error("transpose", "out of range");
    ck_assert_ptr_null(tg_view_permute(m, (int[]){0, 0}));
    tgt_expect_error("permute");
    ck_assert_ptr_null(tg_view_slice(m, 1, 0, 2, 0));
    tgt_expect_error("slice", "[2, 3]", "step 0");
    ck_assert_ptr_null(tg_view_expand(m, TG_SHAPE(2, 4)));
    tgt_expect_error("expand", "[2, 3]", "to [2, 4]");
    ck_assert_ptr_null(tg_view_expand(m, TG_SHAPE(3)));
    tgt_expect_error("expand", "[2, 3]", "to [3]", "fewer dimensions");
    ck_assert_int_eq(tg_copy_(m, tg_zeros(TG_SHAPE(3, 2))), -1);
    tgt_expect_error("copy_", "[2, 3]", "[3, 2]");
}
END_TEST

START_TEST(persistent_and_copy)
{
    tg_tensor *p = tg_tensor_new(TG_SHAPE(3, 2));
    ck_assert(p->flags & TG_PERSISTENT);
    tgt_tensor_equals(p, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
    tg_tensor *src = tg_view_transpose(tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3)), 0, 1);
    ck_assert_int_eq(tg_copy_(p, src), 0);
    tg_tape_reset(); /* src is gone, p stays */
    tgt_tensor_equals(p, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
    tg_tensor_free(p);
}
END_TEST

START_TEST(printing)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tg_tensor *m = tg_set_name(tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3)), "m");
    tg_fprint(f, m);
    tg_fprint(f, tg_arange(0, 100, 1)); /* elided */
    fclose(f);
    ck_assert_msg(strstr(text, "tensor \"m\" [2, 3]"), "%s", text);
    ck_assert_msg(strstr(text, "[[         0,          1,          2],"), "%s", text);
    ck_assert_msg(strstr(text, "...,"), "%s", text);
    ck_assert_msg(strstr(text, "99]"), "%s", text);
    free(text);
}
END_TEST

START_TEST(arena_reuses_chunks)
{
    tg_arena_stats s0 = tg_arena_get_stats();
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 50; k++)
            tg_zeros(TG_SHAPE(1000, 100)); /* 400 KB each */
        tg_tape_reset();
    }
    tg_arena_stats s1 = tg_arena_get_stats();
    ck_assert_int_ge(s1.peak_used, 50 * 400000);
    ck_assert_int_le(s1.reserved, s0.reserved + 50 * 400000 + (8u << 20));
    void *a = tg_arena_alloc(3), *b = tg_arena_alloc(5);
    ck_assert_int_eq((uintptr_t)a % TG_ARENA_ALIGN, 0);
    ck_assert_int_eq((uintptr_t)b % TG_ARENA_ALIGN, 0);
}
END_TEST

/* slices follow Python's (and PyTorch's) rules, bounds clamped */
START_TEST(slices_clamp_like_python)
{
    tgt_capture_errors();
    tg_tensor *x = tg_arange(0, 3, 1); /* [0 1 2] */
    tg_tensor *v = tg_view_slice(x, 0, 10, 20, 1);   /* x[10:20] */
    ck_assert_int_eq(v->shape[0], 0);
    v = tg_view_slice(x, 0, -10, 2, 1);              /* x[-10:2] */
    ck_assert_int_eq(v->shape[0], 2);
    ck_assert(v->data[0] == 0 && v->data[1] == 1);
    v = tg_view_slice(x, 0, 2, 1, 1);                /* x[2:1] */
    ck_assert_int_eq(v->shape[0], 0);
    v = tg_view_slice(x, 0, -2, 100, 1);             /* x[-2:100] */
    ck_assert_int_eq(v->shape[0], 2);
    ck_assert(v->data[0] == 1);
    v = tg_view_slice(x, 0, 0, -10, 1);              /* x[:-10] */
    ck_assert_int_eq(v->shape[0], 0);
    v = tg_view_expand(tg_zeros(TG_SHAPE(2, 1)), TG_SHAPE(3, -1, 4));
    ck_assert(v->shape[0] == 3 && v->shape[1] == 2 && v->shape[2] == 4);
    ck_assert_int_eq(tgt_errors, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, slices_clamp_like_python);
    tcase_add_test(tc, creation);
    tcase_add_test(tc, creation_errors);
    tcase_add_test(tc, rng_reproducible_and_restorable);
    tcase_add_test(tc, views_share_numbers);
    tcase_add_test(tc, view_errors);
    tcase_add_test(tc, persistent_and_copy);
    tcase_add_test(tc, printing);
    tcase_add_test(tc, arena_reuses_chunks);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
