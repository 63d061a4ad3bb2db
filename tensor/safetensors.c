/*
 * tensor/safetensors.c - safetensors load (validated) and atomic save.
 *
 * The JSON header is parsed with cJSON (Debian libcjson-dev) rather than by
 * hand: a well-tested parser is the safer choice for files from anywhere.
 * Every number in the header is checked to be a non-negative integer below
 * 2^53 (cJSON stores numbers as doubles) before it is used.
 *
 * Names are found through stb_ds string hash maps (name -> index into the
 * tensor array), in the loaded file and in the writer alike: a model with
 * 160k tensors loads in a fraction of a second, where a linear search per
 * name took over a minute. The maps' keys are the tensors' own name
 * strings, which live exactly as long as the maps.
 */
#include "tensor/safetensors.h"
#include "tensor/ds.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor/safetensors.c assumes a little-endian machine"
#endif

/* A header larger than this is refused (the format's own reference
 * implementation uses the same limit). */
#define MAX_HEADER ((uint64_t)100 << 20)

typedef struct meta_kv {
    char *key, *value;
} meta_kv;

/* stb_ds string hash map: a name (not copied) -> its index in an array */
typedef struct name_index {
    char *key;
    int64_t value;
} name_index;

/* name's index in map, or -1. (shgeti on an empty, NULL map would
 * allocate one, into this copy of the pointer: hence the test.) */
static int64_t lookup(name_index *map, const char *name)
{
    if (!map)
        return -1;
    ptrdiff_t i = shgeti(map, (char *)name);
    return i < 0 ? -1 : map[i].value;
}

struct tg_st_file {
    unsigned char *bytes; /* the whole file */
    size_t size;
    tg_st_tensor *tensors; /* stb_ds array */
    meta_kv *meta;         /* stb_ds array */
    name_index *by_name;   /* tensor name -> index in tensors */
    name_index *meta_by_key; /* metadata key -> index in meta (the first) */
};

static size_t dtype_size(tg_dtype d) { return d == TG_F32 ? 4 : 8; }
static const char *dtype_name(tg_dtype d)
{
    return d == TG_F32 ? "F32" : d == TG_F64 ? "F64" : "I64";
}

/* a JSON number that is an integer in [0, 2^53) */
static int json_uint(const cJSON *j, int64_t *out)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v < 9007199254740992.0) || v != (double)(int64_t)v)
        return -1;
    *out = (int64_t)v;
    return 0;
}

typedef struct span {
    int64_t begin, end;
} span;

static int cmp_by_offset(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

void tg_st_free(tg_st_file *f)
{
    if (!f)
        return;
    for (int64_t i = 0; i < arrlen(f->tensors); i++)
        free((char *)f->tensors[i].name);
    for (int64_t i = 0; i < arrlen(f->meta); i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    shfree(f->by_name);
    shfree(f->meta_by_key);
    arrfree(f->tensors);
    arrfree(f->meta);
    free(f->bytes);
    free(f);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tg_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

/* parses one tensor entry; 0 or -1 with err set */
static int parse_entry(const cJSON *item, uint64_t data_size, tg_st_tensor *t,
                       int64_t where[2], const char *file, char *err,
                       size_t cap)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item)) {
        tg_errbuf(err, cap, "%s: tensor '%s': header entry is not an object",
                  file, name);
        return -1;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of)) {
        tg_errbuf(err, cap, "%s: tensor '%s' lacks a string dtype, a shape "
                  "array or a data_offsets array", file, name);
        return -1;
    }
    if (!strcmp(dt->valuestring, "F32"))
        t->dtype = TG_F32;
    else if (!strcmp(dt->valuestring, "F64"))
        t->dtype = TG_F64;
    else if (!strcmp(dt->valuestring, "I64"))
        t->dtype = TG_I64;
    else {
        tg_errbuf(err, cap, "%s: tensor '%s' has dtype %.16s; tapegrad reads "
                  "F32, F64 and I64", file, name, dt->valuestring);
        return -1;
    }
    int nd = cJSON_GetArraySize(sh);
    if (nd > TG_MAX_DIMS) {
        tg_errbuf(err, cap, "%s: tensor '%s' has %d dimensions; at most %d",
                  file, name, nd, TG_MAX_DIMS);
        return -1;
    }
    t->ndim = nd;
    t->numel = 1;
    for (int d = 0; d < nd; d++) {
        int64_t s;
        if (json_uint(cJSON_GetArrayItem(sh, d), &s) < 0) {
            tg_errbuf(err, cap, "%s: tensor '%s': shape entry %d is not a "
                      "non-negative integer", file, name, d);
            return -1;
        }
        t->shape[d] = s;
        if (s && t->numel > INT64_MAX / 8 / s) {
            tg_errbuf(err, cap, "%s: tensor '%s': shape too large", file, name);
            return -1;
        }
        t->numel *= s;
    }
    int64_t b, e;
    if (cJSON_GetArraySize(of) != 2 ||
        json_uint(cJSON_GetArrayItem(of, 0), &b) < 0 ||
        json_uint(cJSON_GetArrayItem(of, 1), &e) < 0 || e < b) {
        tg_errbuf(err, cap, "%s: tensor '%s': data_offsets must be two "
                  "integers [begin, end] with begin <= end", file, name);
        return -1;
    }
    if ((uint64_t)e > data_size) {
        tg_errbuf(err, cap, "%s: tensor '%s': bytes [%lld, %lld) lie beyond "
                  "the data (%llu bytes): the file is truncated or corrupt",
                  file, name, (long long)b, (long long)e,
                  (unsigned long long)data_size);
        return -1;
    }
    if ((uint64_t)(e - b) != (uint64_t)t->numel * dtype_size(t->dtype)) {
        tg_errbuf(err, cap, "%s: tensor '%s': %s shape with %lld elements "
                  "needs %llu bytes but data_offsets give %lld", file, name,
                  dtype_name(t->dtype), (long long)t->numel,
                  (unsigned long long)t->numel * dtype_size(t->dtype),
                  (long long)(e - b));
        return -1;
    }
    where[0] = b;
    where[1] = e;
    return 0;
}

tg_st_file *tg_st_parse(const void *bytes, size_t n, const char *name,
                        char *err, size_t cap)
{
    const char *file = name ? name : "safetensors";
    if (!bytes && n) {
        tg_errbuf(err, cap, "%s: no bytes given (NULL)", file);
        return NULL;
    }
    if (n < 8) {
        tg_errbuf(err, cap, "%s: %zu bytes is too short for a safetensors file",
                  file, n);
        return NULL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | ((const unsigned char *)bytes)[i];
    if (hlen > MAX_HEADER || hlen > n - 8) {
        tg_errbuf(err, cap, "%s: header length %llu does not fit the file (%zu "
                  "bytes): not a safetensors file, or truncated", file,
                  (unsigned long long)hlen, n);
        return NULL;
    }
    tg_st_file *f = tg_xcalloc(1, sizeof *f);
    f->bytes = tg_xmalloc(n + 1);
    memcpy(f->bytes, bytes, n);
    f->size = n;
    uint64_t data_size = n - 8 - hlen;
    const unsigned char *data = f->bytes + 8 + hlen;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)f->bytes + 8,
                                            (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        tg_errbuf(err, cap, "%s: the header is not a JSON object%s", file,
                  root ? "" : " (invalid JSON)");
        goto fail;
    }
    /* after the object only padding spaces may follow */
    for (const char *p = end; p && p < (const char *)f->bytes + 8 + hlen; p++)
        if (*p != ' ' && *p != '\0' && *p != '\n' && *p != '\t' && *p != '\r') {
            tg_errbuf(err, cap, "%s: unexpected bytes after the JSON header",
                      file);
            goto fail;
        }
    span *spans = NULL; /* stb_ds array */
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (!strcmp(item->string, "__metadata__")) {
            if (!cJSON_IsObject(item)) {
                tg_errbuf(err, cap, "%s: __metadata__ is not an object", file);
                goto fail_spans;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, item)
            {
                if (!cJSON_IsString(kv)) {
                    tg_errbuf(err, cap, "%s: metadata '%s' is not a string",
                              file, kv->string);
                    goto fail_spans;
                }
                meta_kv m = {xstrdup(kv->string), xstrdup(kv->valuestring)};
                arrput(f->meta, m);
                if (lookup(f->meta_by_key, m.key) < 0) /* the first wins */
                    shput(f->meta_by_key, m.key, arrlen(f->meta) - 1);
            }
            continue;
        }
        if (lookup(f->by_name, item->string) >= 0) {
            tg_errbuf(err, cap, "%s: tensor '%s' appears twice", file,
                      item->string);
            goto fail_spans;
        }
        tg_st_tensor t;
        memset(&t, 0, sizeof t);
        int64_t where[2];
        if (parse_entry(item, data_size, &t, where, file, err, cap) < 0)
            goto fail_spans;
        t.name = xstrdup(item->string);
        t.data = data + where[0];
        arrput(f->tensors, t);
        shput(f->by_name, (char *)t.name, arrlen(f->tensors) - 1);
        span sp = {where[0], where[1]};
        arrput(spans, sp);
    }
    /* no two tensors may share bytes. (A file without tensors has no
     * spans array: qsort must not see its NULL, or GCC, told qsort's
     * argument is never NULL, drops the test inside arrlen and crashes.) */
    if (arrlen(spans) > 1)
        qsort(spans, (size_t)arrlen(spans), sizeof *spans, cmp_by_offset);
    for (int64_t i = 1; i < arrlen(spans); i++)
        if (spans[i].begin < spans[i - 1].end) {
            tg_errbuf(err, cap, "%s: two tensors overlap at byte %lld", file,
                      (long long)spans[i].begin);
            goto fail_spans;
        }
    arrfree(spans);
    cJSON_Delete(root);
    return f;
fail_spans:
    arrfree(spans);
fail:
    cJSON_Delete(root);
    tg_st_free(f);
    return NULL;
}

tg_st_file *tg_st_load(const char *path, char *err, size_t cap)
{
    if (!path) {
        tg_errbuf(err, cap, "no path given (NULL)");
        return NULL;
    }
    FILE *in = fopen(path, "rb");
    if (!in) {
        tg_errbuf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(in), &st) < 0 || !S_ISREG(st.st_mode)) {
        tg_errbuf(err, cap, "%s: not a regular file", path);
        fclose(in);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = tg_xmalloc(n ? n : 1);
    size_t got = fread(buf, 1, n, in);
    fclose(in);
    if (got != n) {
        tg_errbuf(err, cap, "%s: read %zu of %zu bytes", path, got, n);
        free(buf);
        return NULL;
    }
    tg_st_file *f = tg_st_parse(buf, n, path, err, cap);
    free(buf);
    return f;
}

int tg_st_count(const tg_st_file *f)
{
    return f ? (int)arrlen(f->tensors) : 0;
}

const tg_st_tensor *tg_st_at(const tg_st_file *f, int i)
{
    return f && i >= 0 && i < arrlen(f->tensors) ? &f->tensors[i] : NULL;
}

const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    int64_t i = lookup(f->by_name, name);
    return i < 0 ? NULL : &f->tensors[i];
}

const char *tg_st_meta(const tg_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    int64_t i = lookup(f->meta_by_key, key);
    return i < 0 ? NULL : f->meta[i].value;
}

int tg_st_meta_count(const tg_st_file *f)
{
    return f ? (int)arrlen(f->meta) : 0;
}

void tg_st_meta_at(const tg_st_file *f, int i, const char **key,
                   const char **value)
{
    bool ok = f && i >= 0 && i < arrlen(f->meta);
    if (key)
        *key = ok ? f->meta[i].key : NULL;
    if (value)
        *value = ok ? f->meta[i].value : NULL;
}

const char *tg_st_shape_str(const tg_st_tensor *t, char *buf, size_t cap)
{
    return tg_dims_str(t ? t->ndim : 0, t ? t->shape : NULL, buf, cap);
}

double tg_st_value(const tg_st_tensor *t, int64_t i)
{
    const unsigned char *p = t->data;
    if (t->dtype == TG_F32) {
        float x;
        memcpy(&x, p + 4 * i, 4);
        return (double)x;
    }
    double v;
    memcpy(&v, p + 8 * i, 8);
    return v;
}

int64_t tg_st_first_bad(const tg_st_tensor *t, bool nonneg)
{
    for (int64_t i = 0; t && t->dtype != TG_I64 && i < t->numel; i++) {
        double x = tg_st_value(t, i);
        if (!isfinite(x) || (nonneg && x < 0))
            return i;
    }
    return -1;
}

int tg_st_copy_to(const tg_st_tensor *t, tg_tensor *dst, char *err, size_t cap)
{
    char a[96], b[96];
    if (!t || !dst) {
        tg_errbuf(err, cap, "no %s given (NULL): a tensor tg_st_find did not "
                  "find, or a destination that failed to be made",
                  t ? "destination" : "tensor");
        return -1;
    }
    if (t->dtype == TG_I64) {
        tg_errbuf(err, cap, "tensor '%s' holds integers (I64), not floats",
                  t->name);
        return -1;
    }
    bool same = dst->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++)
        same = dst->shape[d] == t->shape[d];
    if (!same) {
        tg_st_shape_str(t, a, sizeof a);
        tg_errbuf(err, cap, "tensor '%s' has shape %s in the file but %s is "
                  "expected", t->name, a, tg_shape_str(dst, b, sizeof b));
        return -1;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        double v = tg_st_value(t, i);
        /* row-major element i of dst, whatever its strides */
        int64_t off = 0, r = i;
        for (int d = dst->ndim - 1; d >= 0; d--) {
            off += (r % dst->shape[d]) * dst->stride[d];
            r /= dst->shape[d];
        }
        dst->data[off] = (tg_real)v;
    }
    tg_bump_version(dst); /* changed in place: see tg_version */
    return 0;
}

tg_tensor *tg_st_new_tensor(const tg_st_tensor *t)
{
    if (!t || t->dtype == TG_I64)
        return NULL;
    tg_tensor *x = tg_tensor_new(t->ndim, t->shape);
    tg_st_copy_to(t, x, NULL, 0);
    return x;
}

int tg_st_read_i64(const tg_st_tensor *t, int64_t *out)
{
    if (!t || !out || t->dtype != TG_I64)
        return -1;
    memcpy(out, t->data, (size_t)t->numel * 8);
    return 0;
}

/* ---- writing ---------------------------------------------------------- */

typedef struct wtensor {
    char *name;
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    unsigned char *bytes;
    size_t nbytes;
} wtensor;

struct tg_st_writer {
    wtensor *tensors;        /* stb_ds array */
    meta_kv *meta;           /* stb_ds array */
    name_index *by_name;     /* tensor name -> index in tensors */
    name_index *meta_by_key; /* metadata key -> index in meta */
    char problem[200];       /* the first NULL given, reported by save */
};

tg_st_writer *tg_st_writer_new(void) { return tg_xcalloc(1, sizeof(tg_st_writer)); }

void tg_st_writer_free(tg_st_writer *w)
{
    if (!w)
        return;
    for (int64_t i = 0; i < arrlen(w->tensors); i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].bytes);
    }
    for (int64_t i = 0; i < arrlen(w->meta); i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    shfree(w->by_name);
    shfree(w->meta_by_key);
    arrfree(w->tensors);
    arrfree(w->meta);
    free(w);
}

/* A NULL given to the writer (most often a tensor that failed to compute)
 * is remembered, so that tg_st_save refuses to write a file without it. */
static bool refuse_null(tg_st_writer *w, const char *what, const char *name,
                        bool missing)
{
    if (!missing)
        return false;
    if (w && !w->problem[0])
        snprintf(w->problem, sizeof w->problem, "%s '%.100s' was given as "
                 "NULL (an earlier error?)", what, name ? name : "(NULL)");
    return true;
}

/* A wrong argument (a misuse, as for ops) goes through tg_error and, if
 * the handler returns, is remembered like a NULL: the file is not saved. */
static bool misuse(tg_st_writer *w, bool bad, const char *op, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static bool misuse(tg_st_writer *w, bool bad, const char *op, const char *fmt,
                   ...)
{
    if (!bad)
        return false;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!w->problem[0])
        snprintf(w->problem, sizeof w->problem, "%s", msg);
    tg_error(op, "%s", msg);
    return true;
}

void tg_st_add_raw(tg_st_writer *w, const char *name, tg_dtype dtype, int ndim,
                   const int64_t *shape, const void *data)
{
    if (refuse_null(w, "tensor", name, !w || !name || (ndim > 0 && !shape)))
        return;
    if (misuse(w, dtype != TG_F32 && dtype != TG_F64 && dtype != TG_I64,
               "st_add_raw", "tensor '%.100s': dtype %d is none of TG_F32, "
               "TG_F64, TG_I64", name, (int)dtype) ||
        misuse(w, ndim < 0 || ndim > TG_MAX_DIMS, "st_add_raw", "tensor "
               "'%.100s': %d dimensions (0 to %d)", name, ndim, TG_MAX_DIMS))
        return;
    wtensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = ndim;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (misuse(w, shape[d] < 0 || (shape[d] && numel > INT64_MAX / 8 /
                                       shape[d]), "st_add_raw", "tensor "
                   "'%.100s': size %lld of dimension %d is negative or too "
                   "large", name, (long long)shape[d], d))
            return;
        t.shape[d] = shape[d];
        numel *= shape[d];
    }
    t.nbytes = (size_t)numel * dtype_size(dtype);
    if (refuse_null(w, "the data of tensor", name, t.nbytes && !data))
        return;
    t.bytes = tg_xmalloc(t.nbytes ? t.nbytes : 1);
    if (t.nbytes)
        memcpy(t.bytes, data, t.nbytes);
    int64_t i = lookup(w->by_name, name);
    if (i >= 0) { /* replaces; the old name stays, it is the map's key */
        t.name = w->tensors[i].name;
        free(w->tensors[i].bytes);
        w->tensors[i] = t;
        return;
    }
    t.name = xstrdup(name);
    arrput(w->tensors, t);
    shput(w->by_name, t.name, arrlen(w->tensors) - 1);
}

void tg_st_add_as(tg_st_writer *w, const char *name, const tg_tensor *t,
                  tg_dtype dtype)
{
    if (refuse_null(w, "tensor", name, !w || !name || !t) ||
        misuse(w, dtype != TG_F32 && dtype != TG_F64, "st_add_as", "tensor "
               "'%.100s': dtype %d; tensors of numbers are stored as TG_F32 "
               "or TG_F64", name, (int)dtype))
        return;
    size_t n = (size_t)(t->numel ? t->numel : 1);
    if (dtype == TG_F32) {
        float *tmp = tg_xmalloc(n * sizeof *tmp);
        for (int64_t i = 0; i < t->numel; i++)
            tmp[i] = (float)tg_flat_get(t, i);
        tg_st_add_raw(w, name, TG_F32, t->ndim, t->shape, tmp);
        free(tmp);
    } else {
        double *tmp = tg_xmalloc(n * sizeof *tmp);
        for (int64_t i = 0; i < t->numel; i++)
            tmp[i] = tg_flat_get(t, i);
        tg_st_add_raw(w, name, TG_F64, t->ndim, t->shape, tmp);
        free(tmp);
    }
}

void tg_st_add(tg_st_writer *w, const char *name, const tg_tensor *t)
{
    tg_st_add_as(w, name, t, sizeof(tg_real) == sizeof(float) ? TG_F32 : TG_F64);
}

void tg_st_set_meta(tg_st_writer *w, const char *key, const char *value)
{
    if (refuse_null(w, "metadata", key, !w || !key || !value))
        return;
    int64_t i = lookup(w->meta_by_key, key);
    if (i >= 0) {
        free(w->meta[i].value);
        w->meta[i].value = xstrdup(value);
        return;
    }
    meta_kv m = {xstrdup(key), xstrdup(value)};
    arrput(w->meta, m);
    shput(w->meta_by_key, m.key, arrlen(w->meta) - 1);
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int tg_st_save(const tg_st_writer *w, const char *path, char *err, size_t cap)
{
    if (!w || !path) {
        tg_errbuf(err, cap, "%s: not written: no %s given (NULL)",
                  path ? path : "safetensors", w ? "path" : "writer");
        return -1;
    }
    if (w->problem[0]) {
        tg_errbuf(err, cap, "%s: not written: %s (the previous file, if any, "
                  "is unchanged)", path, w->problem);
        return -1;
    }
    /* the header, tensors in the order added */
    cJSON *root = cJSON_CreateObject();
    uint64_t off = 0;
    for (int64_t i = 0; i < arrlen(w->tensors); i++) {
        const wtensor *t = &w->tensors[i];
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(o, "dtype", dtype_name(t->dtype));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + t->nbytes)));
        off += t->nbytes;
    }
    if (arrlen(w->meta)) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int64_t i = 0; i < arrlen(w->meta); i++)
            cJSON_AddStringToObject(m, w->meta[i].key, w->meta[i].value);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) {
        tg_errbuf(err, cap, "%s: out of memory building the header", path);
        return -1;
    }
    size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;
    unsigned char head[8];
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    /* a temporary in the same directory, then rename over path */
    size_t plen = strlen(path);
    char *tmp = tg_xmalloc(plen + 16);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tg_errbuf(err, cap, "%s: cannot create a temporary file: %s", path,
                  strerror(errno));
        free(tmp);
        free(json);
        return -1;
    }
    /* mkstemp makes the file 0600; give it the usual permissions */
    mode_t mask = umask(0);
    umask(mask);
    int rc = fchmod(fd, 0666 & ~mask);
    if (!rc)
        rc = write_all(fd, head, 8);
    if (!rc)
        rc = write_all(fd, json, jlen);
    if (!rc && padded > jlen)
        rc = write_all(fd, "        ", padded - jlen);
    for (int64_t i = 0; !rc && i < arrlen(w->tensors); i++)
        rc = write_all(fd, w->tensors[i].bytes, w->tensors[i].nbytes);
    if (!rc)
        rc = fsync(fd);
    int saved_errno = errno;
    if (close(fd) < 0 && !rc) {
        rc = -1;
        saved_errno = errno;
    }
    if (!rc && rename(tmp, path) < 0) {
        rc = -1;
        saved_errno = errno;
    }
    if (rc) {
        tg_errbuf(err, cap, "%s: could not write: %s (the previous file, if "
                  "any, is unchanged)", path, strerror(saved_errno));
        unlink(tmp);
    }
    free(tmp);
    free(json);
    return rc ? -1 : 0;
}
