/*
 * tests/grad_safetensors.c - safetensors in the double build (this file is
 * a grad_*.c so that the Makefile links it with libtapegrad_f64; it checks
 * no gradient). tg_st_add writes the library's own precision: F64 here, so
 * a double tensor saved and loaded back is the same bit for bit.
 */
#include "harness.h"
#include "tensor/safetensors.h"

#include <unistd.h>

static char err[512];

START_TEST(add_writes_f64)
{
    ck_assert_uint_eq(sizeof(tg_real), sizeof(double));
    char path[] = "/tmp/tg_st64_XXXXXX";
    close(mkstemp(path));
    /* numbers a float cannot hold, strided */
    tg_tensor *x = tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3));
    for (int64_t i = 0; i < 6; i++)
        x->data[i] = 0.1 + (double)i / 3 + 1e-12;
    tg_tensor *xt = tg_view_transpose(x, 0, 1);
    tg_st_writer *w = tg_st_writer_new();
    tg_st_add(w, "x", xt);
    tg_st_add_as(w, "x32", x, TG_F32);
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);

    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    const tg_st_tensor *t = tg_st_find(f, "x");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, TG_F64);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 3);
    tg_tensor *y = tg_st_new_tensor(t);
    for (int64_t i = 0; i < 6; i++)
        ck_assert_msg(tg_flat_get(y, i) == tg_flat_get(xt, i),
                      "element %lld: %.17g read back as %.17g", (long long)i,
                      tg_flat_get(xt, i), tg_flat_get(y, i));
    /* asked for F32, it is F32, rounded */
    const tg_st_tensor *t32 = tg_st_find(f, "x32");
    ck_assert_int_eq(t32->dtype, TG_F32);
    tg_tensor *z = tg_st_new_tensor(t32);
    ck_assert(z->data[1] == (double)(float)x->data[1]);
    ck_assert(z->data[1] != x->data[1]);
    tg_tensor_free(y);
    tg_tensor_free(z);
    tg_st_free(f);
    unlink(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors (double build)");
    TCase *tc = tcase_create("f64");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, add_writes_f64);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
