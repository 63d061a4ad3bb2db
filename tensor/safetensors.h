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
 *     char err[256];
 *     tg_st_file *f = tg_st_load("model.safetensors", err, sizeof err);
 *     if (!f) { fprintf(stderr, "%s\n", err); return 1; }
 *     const tg_st_tensor *w = tg_st_find(f, "rnn.weight_ih_l0");
 *     if (!w || tg_st_copy_to(w, my_param, err, sizeof err) < 0) ...
 *     tg_st_free(f);
 *
 *     tg_st_writer *out = tg_st_writer_new();
 *     tg_st_add(out, "decoder.weight", W);          // copied now, as F32
 *     tg_st_set_meta(out, "step", "1200");
 *     if (tg_st_save(out, "ckpt.safetensors", err, sizeof err) < 0) ...
 *     tg_st_writer_free(out);
 */
#ifndef TG_SAFETENSORS_H
#define TG_SAFETENSORS_H

#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

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
/* The metadata value for key, or NULL. */
const char *tg_st_meta(const tg_st_file *f, const char *key);
int tg_st_meta_count(const tg_st_file *f);
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
/* Copies an I64 tensor's numel values into out. 0, or -1 if not I64. */
int tg_st_read_i64(const tg_st_tensor *t, int64_t *out);

/* ---- writing ---------------------------------------------------------- */
typedef struct tg_st_writer tg_st_writer;

tg_st_writer *tg_st_writer_new(void);
void tg_st_writer_free(tg_st_writer *w);
/* Adds a copy of t's numbers (any strides) as F32. A name added twice
 * replaces the first. */
void tg_st_add(tg_st_writer *w, const char *name, const tg_tensor *t);
/* Adds raw values with an explicit dtype (F32: float, F64: double,
 * I64: int64_t), copied now. */
void tg_st_add_raw(tg_st_writer *w, const char *name, tg_dtype dtype,
                   int ndim, const int64_t *shape, const void *data);
void tg_st_set_meta(tg_st_writer *w, const char *key, const char *value);
/* Writes atomically (temporary file + fsync + rename). 0, or -1 with a
 * message; on failure an existing file at path is untouched. */
int tg_st_save(const tg_st_writer *w, const char *path, char *err,
               size_t errcap);

#endif
