/*
 * nn/params.h - named parameter lists: what a module owns, what an
 * optimizer updates, what a checkpoint stores.
 *
 * Names follow PyTorch's state_dict ("rnn.weight_ih_l0",
 * "decoder.bias"), so a list saved as safetensors loads in PyTorch with
 * `model.load_state_dict(safetensors.torch.load_file(path))`, and the
 * other way round.
 *
 * Who owns what. A list either owns its tensors (tg_params_new: the
 * module that created them frees them with the list) or borrows them
 * (tg_params_add_from, tg_params_add_ref: a model gathering its layers'
 * parameters under a prefix; the owner frees them). The list owns its
 * names (t->name of a tensor it made points at its copy) and, once
 * flattened, the block that holds the numbers and gradients of every
 * tensor in it - borrowed ones too. Parameters are persistent tensors
 * that require grad; their gradients live on the heap (or in the block)
 * and accumulate until tg_params_zero_grad. An optimizer borrows a list
 * (nn/optim.h): free it before the list.
 *
 * Order of freeing: a flattened list before the lists that own its
 * tensors (a model's list before its modules', as tg_charlm_free does).
 * tg_params_free gives every borrowed tensor of its block numbers and a
 * gradient of its own again (same values: the tensor goes on working,
 * and its owner frees it as usual); tg_tensor_free of a tensor still in
 * a block is an error (nothing freed), and so is tg_params_free of a list
 * owning a tensor that sits in another list's block.
 *
 *     tg_params ps = {0};
 *     tg_tensor *W = tg_params_new(&ps, "weight", TG_SHAPE(4, 3));
 *     ...
 *     tg_params_free(&ps);    // frees W too
 */
#ifndef TG_NN_PARAMS_H
#define TG_NN_PARAMS_H

#include "tensor/safetensors.h"
#include "tensor/tensor.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_param {
    char *name;        /* owned copy */
    tg_tensor *tensor;
    bool owned;        /* freed with the list */
} tg_param;

typedef struct tg_params {
    tg_param *items; /* stb_ds array: use tg_params_count / tg_params_at */
    /* after tg_params_flatten: every parameter's numbers, then every
     * gradient, each in one block of block_n numbers (owned here) */
    tg_real *block_data, *block_grad;
    int64_t block_n;
} tg_params;

/* Names are unique in a list (a checkpoint stores one tensor per name):
 * adding a name the list has already is an error naming it, and adds
 * nothing. */

/* A new zero-filled persistent parameter (requires grad) owned by ps.
 * NULL after an error (a name taken, a bad shape). */
tg_tensor *tg_params_new(tg_params *ps, const char *name, int ndim,
                         const int64_t *shape);
/* Adds every parameter of src to ps under prefix ("rnn." + "weight_ih_l0"),
 * borrowed: src still owns them. 0, or -1 after an error (then none is
 * added). */
int tg_params_add_from(tg_params *ps, const char *prefix,
                       const tg_params *src);
/* Adds t under name, borrowed (its owner frees it). 0 or -1. */
int tg_params_add_ref(tg_params *ps, const char *name, tg_tensor *t);
/* Frees the names, the tensors owned here and the block; borrowed tensors
 * of the block get their own memory back first (above, "Order of
 * freeing"). Leaves an empty list. If a tensor owned here sits in
 * another list's block, an error, and nothing is freed. */
void tg_params_free(tg_params *ps);

int tg_params_count(const tg_params *ps);
tg_param *tg_params_at(const tg_params *ps, int i);
/* The tensor named name, or NULL. */
tg_tensor *tg_params_get(const tg_params *ps, const char *name);
int64_t tg_params_numel(const tg_params *ps);
void tg_params_zero_grad(tg_params *ps);

/* Adds every parameter to a safetensors writer under prefix + name. */
void tg_params_save(const tg_params *ps, tg_st_writer *w, const char *prefix);
/* Copies every parameter from f (names prefix + name). Strict: a missing
 * tensor, a shape mismatch (the message gives the file's shape and the
 * model's) or a NaN or infinite number is an error naming the file's
 * tensor, and then nothing is changed (everything is checked before
 * anything is copied). 0 or -1. */
int tg_params_load(tg_params *ps, const tg_st_file *f, const char *prefix,
                   char *err, size_t errcap);

/* Moves the numbers and gradients of every parameter of the list into
 * two contiguous blocks that the list owns (as llm.c keeps its model):
 * block_data and block_grad, block_n numbers each, every tensor starting
 * on a 64-byte boundary, the gaps zero. The tensors keep their values and
 * stay usable as before (views, optimizers, checkpoints), and zeroing,
 * clipping and summing gradients over processes become single loops or
 * single messages. Borrowed tensors move too (TG_IN_BLOCK marks them:
 * tg_tensor_free refuses them until this list is freed); a tensor listed
 * twice, or already in a block, is placed once. Call it once the list is
 * complete; free the list before every module that owns its tensors.
 * 0, or -1 after an error. */
int tg_params_flatten(tg_params *ps);
/* true when ps is flattened and every one of its tensors lives in its own
 * block: then a loop over block_data / block_grad visits every parameter
 * (and the zero gaps between them). */
bool tg_params_in_block(const tg_params *ps);

#ifdef __cplusplus
}
#endif

#endif
