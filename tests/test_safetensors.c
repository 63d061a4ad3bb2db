/*
 * tests/test_safetensors.c - safetensors: round trips, a PyTorch-written
 * fixture, and every kind of corrupt or truncated file (each must give an
 * error message, never a crash or an out-of-bounds read - run under
 * `make asan` to be sure of the latter).
 */
#include "harness.h"
#include "tensor/safetensors.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char err[512];

/* bytes of a file with one F32 tensor "a" [2,3], one I64 "ids" [4] and
 * metadata, built through the writer */
static void write_sample(const char *path)
{
    tg_st_writer *w = tg_st_writer_new();
    tg_tensor *a = tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3));
    tg_st_add(w, "a", tg_view_transpose(a, 0, 1)); /* strided: stored [3,2] */
    tg_st_add_raw(w, "ids", TG_I64, 1, (int64_t[]){4}, (int64_t[]){7, -1, 0, 1LL << 40});
    tg_st_add_raw(w, "d", TG_F64, 0, NULL, (double[]){0.1});
    tg_st_set_meta(w, "kind", "test");
    tg_st_set_meta(w, "step", "12");
    tg_st_set_meta(w, "step", "13"); /* replaces */
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    ck_assert_int_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

START_TEST(round_trip)
{
    char path[] = "/tmp/tg_st_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_sample(path);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_int_eq(tg_st_count(f), 3);
    const tg_st_tensor *a = tg_st_find(f, "a");
    ck_assert_int_eq(a->dtype, TG_F32);
    ck_assert_int_eq(a->ndim, 2);
    ck_assert_int_eq(a->shape[0], 3);
    tg_tensor *x = tg_st_new_tensor(a);
    tgt_tensor_equals(x, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
    int64_t ids[4];
    ck_assert_int_eq(tg_st_read_i64(tg_st_find(f, "ids"), ids), 0);
    ck_assert_int_eq(ids[3], 1LL << 40);
    ck_assert_int_eq(ids[1], -1);
    tg_tensor *d = tg_tensor_new(0, NULL);
    ck_assert_int_eq(tg_st_copy_to(tg_st_find(f, "d"), d, err, sizeof err), 0);
    tgt_close(d->data[0], 0.1, 1e-7);
    ck_assert_str_eq(tg_st_meta(f, "step"), "13");
    ck_assert_str_eq(tg_st_meta(f, "kind"), "test");
    ck_assert_ptr_null(tg_st_meta(f, "nope"));
    ck_assert_int_eq(tg_st_meta_count(f), 2);
    /* a shape mismatch is a message naming both shapes */
    tg_tensor *wrong = tg_tensor_new(TG_SHAPE(2, 3));
    ck_assert_int_eq(tg_st_copy_to(a, wrong, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "[3, 2]") && strstr(err, "[2, 3]"), "%s", err);
    ck_assert_int_eq(tg_st_copy_to(tg_st_find(f, "ids"), wrong, err, sizeof err), -1);
    tg_tensor_free(x);
    tg_tensor_free(d);
    tg_tensor_free(wrong);
    tg_st_free(f);
    unlink(path);
}
END_TEST

/* a file written by PyTorch's side (the shared fixture generator) */
START_TEST(reads_pytorch_fixture)
{
    tg_st_file *f = tg_st_load("tests/fixtures/seq_lstm_I3_H4_L1_T5_B2.safetensors",
                               err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_str_eq(tg_st_meta(f, "kind"), "seq");
    ck_assert_str_eq(tg_st_meta(f, "cell"), "lstm");
    const tg_st_tensor *w = tg_st_find(f, "rnn.weight_ih_l0");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->shape[0], 16);
    ck_assert_int_eq(w->shape[1], 3);
    tg_st_free(f);
}
END_TEST

START_TEST(every_truncation_fails_cleanly)
{
    char path[] = "/tmp/tg_st_XXXXXX";
    close(mkstemp(path));
    write_sample(path);
    size_t n;
    unsigned char *b = slurp(path, &n);
    for (size_t k = 0; k < n; k++) {
        tg_st_file *f = tg_st_parse(b, k, "cut", err, sizeof err);
        ck_assert_msg(!f, "a file cut to %zu of %zu bytes was accepted", k, n);
        ck_assert(strlen(err) > 0);
    }
    tg_st_file *f = tg_st_parse(b, n, "whole", err, sizeof err);
    ck_assert_msg(f, "%s", err);
    tg_st_free(f);
    free(b);
    unlink(path);
}
END_TEST

/* hand-made headers, each wrong in one way */
static void expect_bad(const char *json, size_t data_bytes, const char *frag)
{
    size_t jl = strlen(json), n = 8 + jl + data_bytes;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(b + 8, json, jl);
    tg_st_file *f = tg_st_parse(b, n, "bad", err, sizeof err);
    ck_assert_msg(!f, "accepted: %s", json);
    ck_assert_msg(strstr(err, frag), "error \"%s\" lacks \"%s\"", err, frag);
    free(b);
}

START_TEST(corrupt_headers)
{
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8,
               "not a JSON object");
    expect_bad("[1,2]", 0, "not a JSON object");
    expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
               "F16");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "needs 12 bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "beyond the data");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
               "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               "shape entry 0");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
               "shape entry 0");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
               "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,4]}}", 4, "7 dimensions");
    expect_bad("{\"__metadata__\":{\"k\":3}}", 0, "not a string");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               "twice");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,4]}}", 4, "too large");
    /* header length field larger than the file */
    unsigned char b[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    ck_assert_ptr_null(tg_st_parse(b, sizeof b, "huge", err, sizeof err));
    ck_assert_msg(strstr(err, "header length"), "%s", err);
    /* not a file at all */
    ck_assert_ptr_null(tg_st_load("/nonexistent/x.safetensors", err, sizeof err));
    ck_assert_msg(strstr(err, "cannot open"), "%s", err);
    ck_assert_ptr_null(tg_st_load("/tmp", err, sizeof err));
    ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
}
END_TEST

START_TEST(save_is_atomic)
{
    char dir[] = "/tmp/tg_st_dir_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_sample(path);
    size_t n0;
    unsigned char *before = slurp(path, &n0);
    /* a failing save (target is a directory) leaves the old file alone */
    char sub[160];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    tg_st_writer *w = tg_st_writer_new();
    tg_st_add(w, "x", tg_ones(TG_SHAPE(3)));
    ck_assert_int_eq(tg_st_save(w, sub, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unchanged"), "%s", err);
    ck_assert_int_eq(tg_st_save(w, "/nonexistent-dir/m.safetensors", err, sizeof err), -1);
    /* overwriting for real replaces the whole file */
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    size_t n1;
    unsigned char *after = slurp(path, &n1);
    ck_assert(n1 != n0 || memcmp(before, after, n0));
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_int_eq(tg_st_count(f), 1);
    tg_st_free(f);
    /* no temporary files left behind */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    FILE *p = popen(cmd, "r");
    int count = -1;
    ck_assert_int_eq(fscanf(p, "%d", &count), 1);
    pclose(p);
    ck_assert_int_eq(count, 0);
    free(before);
    free(after);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* issue 9: every function given NULL returns NULL, -1 or 0 (with a message
 * where it takes err), as ops do, and never calls tg_error */
START_TEST(null_arguments)
{
    tgt_capture_errors();
    err[0] = 0;
    ck_assert_ptr_null(tg_st_load(NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "NULL"), "%s", err);
    err[0] = 0;
    ck_assert_ptr_null(tg_st_parse(NULL, 100, "x", err, sizeof err));
    ck_assert_msg(strstr(err, "NULL"), "%s", err);
    ck_assert_ptr_null(tg_st_parse(NULL, 0, NULL, NULL, 0));
    tg_st_free(NULL);
    ck_assert_int_eq(tg_st_count(NULL), 0);
    ck_assert_ptr_null(tg_st_at(NULL, 0));
    ck_assert_ptr_null(tg_st_find(NULL, "a"));
    ck_assert_ptr_null(tg_st_meta(NULL, "k"));
    ck_assert_int_eq(tg_st_meta_count(NULL), 0);
    const char *k = "x", *v = "y";
    tg_st_meta_at(NULL, 0, &k, &v);
    ck_assert_ptr_null(k);
    ck_assert_ptr_null(v);
    tg_st_meta_at(NULL, 0, NULL, NULL);
    tg_tensor *dst = tg_tensor_new(TG_SHAPE(2));
    err[0] = 0;
    ck_assert_int_eq(tg_st_copy_to(NULL, dst, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "NULL"), "%s", err);
    ck_assert_ptr_null(tg_st_new_tensor(NULL));
    int64_t out[4];
    ck_assert_int_eq(tg_st_read_i64(NULL, out), -1);

    /* with a real file: NULL names, indices out of range, NULL outputs */
    char path[] = "/tmp/tg_st_XXXXXX";
    close(mkstemp(path));
    write_sample(path);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_ptr_null(tg_st_find(f, NULL));
    ck_assert_ptr_null(tg_st_meta(f, NULL));
    ck_assert_ptr_null(tg_st_at(f, 3));
    ck_assert_ptr_null(tg_st_at(f, -1));
    k = v = "x";
    tg_st_meta_at(f, 2, &k, &v);
    ck_assert_ptr_null(k);
    ck_assert_ptr_null(v);
    tg_st_meta_at(f, 0, &k, NULL);
    ck_assert_str_eq(k, "kind");
    ck_assert_int_eq(tg_st_copy_to(tg_st_find(f, "a"), NULL, err, sizeof err), -1);
    ck_assert_int_eq(tg_st_copy_to(tg_st_find(f, "a"), NULL, NULL, 0), -1);
    ck_assert_int_eq(tg_st_read_i64(tg_st_find(f, "ids"), NULL), -1);
    tg_st_free(f);
    unlink(path);

    /* the writer: a NULL adds nothing, and save then refuses, naming it */
    tg_st_writer_free(NULL);
    tg_st_add(NULL, "a", dst);
    tg_st_add_raw(NULL, "a", TG_F32, 1, (int64_t[]){1}, (float[]){1});
    tg_st_set_meta(NULL, "k", "v");
    ck_assert_int_eq(tg_st_save(NULL, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "NULL"), "%s", err);
    tg_st_writer *w = tg_st_writer_new();
    tg_st_add(w, "fine", dst);
    ck_assert_int_eq(tg_st_save(w, NULL, err, sizeof err), -1);
    tg_st_add(w, "lost", NULL); /* e.g. an op that failed */
    tg_st_add(w, NULL, dst);
    tg_st_set_meta(w, "k", NULL);
    tg_st_add_raw(w, "r", TG_F32, 1, NULL, (float[]){1});
    tg_st_add_raw(w, "r", TG_F32, 1, (int64_t[]){1}, NULL);
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "'lost'") && strstr(err, "NULL"), "%s", err);
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing written */
    tg_st_writer_free(w);
    /* a wrong argument is misuse: tg_error, as ops report theirs, and the
     * writer then refuses to save */
    w = tg_st_writer_new();
    tg_st_add_raw(w, "neg", TG_F32, 1, (int64_t[]){-2}, (float[]){1, 2});
    tgt_expect_error("st_add_raw", "'neg'", "-2");
    tg_st_add_raw(w, "deep", TG_F32, TG_MAX_DIMS + 1, (int64_t[8]){1}, (float[]){1});
    tgt_expect_error("st_add_raw", "'deep'", "dimensions");
    tg_st_add_raw(w, "kind", (tg_dtype)7, 0, NULL, (float[]){1});
    tgt_expect_error("st_add_raw", "'kind'", "dtype 7");
    tg_st_add_as(w, "ints", dst, TG_I64);
    tgt_expect_error("st_add_as", "'ints'", "TG_F32");
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "'neg'"), "%s", err);
    tg_st_writer_free(w);
    /* an empty tensor needs no data pointer */
    w = tg_st_writer_new();
    tg_st_add_raw(w, "empty", TG_F32, 1, (int64_t[]){0}, NULL);
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    unlink(path);
    tg_tensor_free(dst);
    ck_assert_int_eq(tgt_errors, 0); /* the NULLs were quiet */
}
END_TEST

/* many tensors: names are hashed (160k tensors parsed in 61 s with a
 * linear search per name, 0.3 s now - measured, not timed here: a unit
 * test on a shared machine is no stopwatch); every name is found, a
 * repeat is caught however late it comes */
START_TEST(many_tensors)
{
    enum { N = 60000 };
    size_t cap = (size_t)N * 100 + 256, jl = 0;
    char *json = malloc(cap);
    jl += (size_t)snprintf(json + jl, cap - jl, "{\"__metadata__\":{\"k\":\"1\"}");
    for (int i = 0; i < N; i++)
        jl += (size_t)snprintf(json + jl, cap - jl, ",\"layer%d.weight\":{\"dtype\":"
                               "\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                               i, 4 * i, 4 * i + 4);
    jl += (size_t)snprintf(json + jl, cap - jl, "}");
    size_t n = 8 + jl + 4 * (size_t)N;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(b + 8, json, jl);
    for (int i = 0; i < N; i++)
        memcpy(b + 8 + jl + 4 * i, &(float){(float)i}, 4);
    tg_st_file *f = tg_st_parse(b, n, "many", err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_int_eq(tg_st_count(f), N);
    for (int i = 0; i < N; i += 997) {
        char name[32];
        snprintf(name, sizeof name, "layer%d.weight", i);
        const tg_st_tensor *t = tg_st_find(f, name);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_eq(t, tg_st_at(f, i));
        float v;
        memcpy(&v, t->data, 4);
        ck_assert(v == (float)i);
    }
    ck_assert_ptr_null(tg_st_find(f, "layer60000.weight"));
    ck_assert_str_eq(tg_st_meta(f, "k"), "1");
    tg_st_free(f);
    /* a repeat of the first name, at the very end, is still found */
    const char *dup = ",\"layer0.weight\":{\"dtype\":\"F32\",\"shape\":[0],"
                      "\"data_offsets\":[0,0]}}";
    memcpy(json + jl - 1, dup, strlen(dup) + 1);
    size_t jl2 = jl - 1 + strlen(dup);
    unsigned char *b2 = calloc(1, 8 + jl2 + 4 * (size_t)N);
    for (int i = 0; i < 8; i++)
        b2[i] = (unsigned char)((uint64_t)jl2 >> (8 * i));
    memcpy(b2 + 8, json, jl2);
    ck_assert_ptr_null(tg_st_parse(b2, 8 + jl2 + 4 * (size_t)N, "dup", err, sizeof err));
    ck_assert_msg(strstr(err, "'layer0.weight' appears twice"), "%s", err);
    free(b2);
    free(b);
    free(json);

    /* the writer hashes too: 60k names, each once, then one again: a
     * repeated name replaces */
    tg_st_writer *w = tg_st_writer_new();
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d", i);
        tg_st_add_raw(w, name, TG_F32, 0, NULL, (float[]){(float)i});
        tg_st_set_meta(w, name, "x");
    }
    tg_st_add_raw(w, "w7", TG_F64, 0, NULL, &(double){-7});
    tg_st_set_meta(w, "w7", "y");
    char path[] = "/tmp/tg_st_XXXXXX";
    close(mkstemp(path));
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_int_eq(tg_st_count(f), N);
    ck_assert_int_eq(tg_st_meta_count(f), N);
    const tg_st_tensor *t7 = tg_st_find(f, "w7");
    ck_assert_int_eq(t7->dtype, TG_F64);
    ck_assert_ptr_eq(t7, tg_st_at(f, 7)); /* replaced in place */
    ck_assert_str_eq(tg_st_meta(f, "w7"), "y");
    tg_st_free(f);
    unlink(path);
}
END_TEST

/* a key repeated in __metadata__: the first one is the value (as before).
 * Also the first file here without any tensor: it crashed (qsort given
 * the NULL spans array, then arrlen of it optimized into a read). */
START_TEST(repeated_metadata_key)
{
    const char *json = "{\"__metadata__\":{\"k\":\"first\",\"k\":\"second\"}}";
    size_t jl = strlen(json);
    unsigned char b[128] = {0};
    b[0] = (unsigned char)jl;
    memcpy(b + 8, json, jl);
    tg_st_file *f = tg_st_parse(b, 8 + jl, "meta", err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_str_eq(tg_st_meta(f, "k"), "first");
    ck_assert_int_eq(tg_st_meta_count(f), 2);
    ck_assert_int_eq(tg_st_count(f), 0);
    tg_st_free(f);
    f = tg_st_parse("\2\0\0\0\0\0\0\0{}", 10, "empty", err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_int_eq(tg_st_count(f), 0);
    tg_st_free(f);
}
END_TEST

/* tg_st_add_as: F64 from the float build keeps the float's value */
START_TEST(add_as_f64)
{
    char path[] = "/tmp/tg_st_XXXXXX";
    close(mkstemp(path));
    tg_st_writer *w = tg_st_writer_new();
    tg_tensor *x = tg_view_reshape(tg_arange(0, 6, 1), TG_SHAPE(2, 3));
    tg_st_add_as(w, "x64", tg_view_transpose(x, 0, 1), TG_F64);
    tg_st_add(w, "x32", x);
    ck_assert_int_eq(tg_st_save(w, path, err, sizeof err), 0);
    tg_st_writer_free(w);
    tg_st_file *f = tg_st_load(path, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    ck_assert_int_eq(tg_st_find(f, "x64")->dtype, TG_F64);
    ck_assert_int_eq(tg_st_find(f, "x32")->dtype, TG_F32); /* float build */
    tg_tensor *y = tg_st_new_tensor(tg_st_find(f, "x64"));
    tgt_tensor_equals(y, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
    tg_tensor_free(y);
    tg_st_free(f);
    unlink(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("io");
    /* a guard against hangs, not a stopwatch: the 60k-tensor parse takes
     * about 3 s under the sanitizers on a busy machine (Check's default
     * limit is 4 s) */
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, reads_pytorch_fixture);
    tcase_add_test(tc, every_truncation_fails_cleanly);
    tcase_add_test(tc, corrupt_headers);
    tcase_add_test(tc, save_is_atomic);
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, many_tensors);
    tcase_add_test(tc, repeated_metadata_key);
    tcase_add_test(tc, add_as_f64);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
