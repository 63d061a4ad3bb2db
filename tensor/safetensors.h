/*
 * tensor/safetensors.h - reading and writing named tensors in the
 * safetensors format (https://github.com/huggingface/safetensors), the
 * format PyTorch users write with safetensors.torch.save_file.
 *
 * A file is: 8 bytes little-endian N; N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
 *    ..., "__metadata__": {"key": "string value", ...}}
 * then the raw little-endian, row-major bytes of every tensor, each at
 * [b, e) counted from the end of the JSON.
 *
 * Loading validates everything before any caller sees a tensor: the
 * header length against the file size, the JSON, every dtype (F32, F64,
 * I64), shapes against byte sizes, offsets in range and not overlapping,
 * metadata values being strings. A bad file gives NULL and a one-line
 * message in err; it never crashes or reads out of bounds.
 *
 * Saving writes a temporary file in the same directory, flushes it to
 * disk and renames it over the target: an existing file is replaced
 * whole or not at all.
 *
 * Names are looked up through a hash map (tg_st_find, tg_st_meta, and a
 * name added twice to a writer): a file of 160k tensors loads in well
 * under a second.
 *
 * NULL, as with ops: every function accepts NULL for any pointer argument
 * and then does nothing harmful. Pointers returned are NULL, counts 0,
 * functions returning int give -1 with a message in err (when err is
 * given). A writer given a NULL tensor, name or value adds nothing, but
 * remembers it: the next tg_st_save fails with a message naming it, so a
 * tensor that failed to compute is never silently missing from a file.
 * None of this calls tg_error: like an op given NULL, these functions take
 * a NULL to be the consequence of an earlier error already reported (by
 * an op through tg_error, or by a load through err). A wrong argument
 * to a writer (a dtype, a dimension count or a size out of range) is
 * misuse, reported through tg_error as ops report theirs; if the handler
 * returns, the writer refuses to save as for a NULL.
 *
 *     char err[256];
 *     tg_st_file *f = tg_st_load("model.safetensors", err, sizeof err);
 *     if (!f) { fprintf(stderr, "%s\n", err); return 1; }
 *     const tg_st_tensor *w = tg_st_find(f, "rnn.weight_ih_l0");
 *     if (!w || tg_st_copy_to(w, my_param, err, sizeof err) < 0) ...
 *     tg_st_free(f);
 *
 *     tg_st_writer *out = tg_st_writer_new();
 *     tg_st_add(out, "decoder.weight", W);  // copied now (F32; F64 in double)
 *     tg_st_set_meta(out, "step", "1200");
 *     if (tg_st_save(out, "ckpt.safetensors", err, sizeof err) < 0) ...
 *     tg_st_writer_free(out);
 */
#ifndef TG_SAFETENSORS_H
#define TG_SAFETENSORS_H

#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_dtype { TG_F32, TG_F64, TG_I64 } tg_dtype;

/* One tensor of a loaded file. Pointers stay valid until tg_st_free. */
typedef struct tg_st_tensor {
    const char *name;
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    const void *data; /* numel elements of dtype; may be unaligned: read
                         with tg_st_copy_to / tg_st_read_i64 */
} tg_st_tensor;

typedef struct tg_st_file tg_st_file;

/* Loads and validates path. NULL (and a message in err) on any problem. */
tg_st_file *tg_st_load(const char *path, char *err, size_t errcap);
/* The same from bytes in memory (copied). name is used in messages. */
tg_st_file *tg_st_parse(const void *bytes, size_t n, const char *name,
                        char *err, size_t errcap);
void tg_st_free(tg_st_file *f);

int tg_st_count(const tg_st_file *f);
const tg_st_tensor *tg_st_at(const tg_st_file *f, int i);
const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name);
/* The metadata value for key, or NULL (the first, if a file repeats it). */
const char *tg_st_meta(const tg_st_file *f, const char *key);
int tg_st_meta_count(const tg_st_file *f);
/* The i-th metadata pair; NULL and NULL when i is out of range. */
void tg_st_meta_at(const tg_st_file *f, int i, const char **key,
                   const char **value);

/* Copies a float tensor (F32 or F64) into dst, converting to tg_real.
 * dst's shape must equal the stored one. 0, or -1 with a message naming
 * the tensor and both shapes. */
int tg_st_copy_to(const tg_st_tensor *t, tg_tensor *dst, char *err,
                  size_t errcap);
/* A new persistent tensor holding t's numbers (F32/F64), or NULL for an
 * I64 tensor. */
tg_tensor *tg_st_new_tensor(const tg_st_tensor *t);
/* Copies an I64 tensor's numel values into out. 0, or -1 if not I64 (or
 * t or out is NULL). */
int tg_st_read_i64(const tg_st_tensor *t, int64_t *out);
/* Number i (row-major) of a float tensor (F32 or F64), as a double; the
 * stored bytes may be unaligned. */
double tg_st_value(const tg_st_tensor *t, int64_t i);
/* The index of t's first NaN or infinite number - or negative one, with
 * nonneg - or -1 if there is none (checks before loading a file). */
int64_t tg_st_first_bad(const tg_st_tensor *t, bool nonneg);
/* "[2, 3]": t's stored shape, for messages; returns buf. */
const char *tg_st_shape_str(const tg_st_tensor *t, char *buf, size_t cap);

/* ---- writing ---------------------------------------------------------- */
typedef struct tg_st_writer tg_st_writer;

tg_st_writer *tg_st_writer_new(void);
void tg_st_writer_free(tg_st_writer *w);
/* Adds a copy of t's numbers (any strides) in the library's precision:
 * F32, or F64 in the double build (libtapegrad_f64), so that nothing is
 * rounded. A name added twice replaces the first. */
void tg_st_add(tg_st_writer *w, const char *name, const tg_tensor *t);
/* The same, stored as dtype (TG_F32 or TG_F64) whatever the build. */
void tg_st_add_as(tg_st_writer *w, const char *name, const tg_tensor *t,
                  tg_dtype dtype);
/* Adds raw values with an explicit dtype (F32: float, F64: double,
 * I64: int64_t), copied now. */
void tg_st_add_raw(tg_st_writer *w, const char *name, tg_dtype dtype,
                   int ndim, const int64_t *shape, const void *data);
void tg_st_set_meta(tg_st_writer *w, const char *key, const char *value);
/* Writes atomically (temporary file + fsync + rename). 0, or -1 with a
 * message; on failure an existing file at path is untouched. Also -1,
 * writing nothing, if the writer was given a NULL (see above). */
int tg_st_save(const tg_st_writer *w, const char *path, char *err,
               size_t errcap);

#ifdef __cplusplus
}
#endif

#endif
