/*
 * nn/optim.h - optimizers with PyTorch's exact update rules, and gradient
 * clipping.
 *
 * An optimizer updates every parameter of a tg_params list from its
 * ->grad. The rules are those of torch.optim (1.13), so the same
 * hyperparameters give the same numbers:
 *
 *   SGD   g = grad + wd * p
 *         buf = g (first step) | momentum * buf + (1 - dampening) * g
 *         g = nesterov ? g + momentum * buf : buf   (when momentum != 0)
 *         p -= lr * g
 *   Adam  g = grad + wd * p                        (L2, coupled)
 *         m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
 *         p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   AdamW p *= 1 - lr * wd, then Adam with wd = 0  (decoupled decay)
 *   HF    Hessian-free (nn/curvature.h): conjugate gradient on Gauss-
 *         Newton products; it evaluates the model itself, so it is
 *         stepped with a closure (tg_optim_step_closure), as PyTorch's
 *         LBFGS is - which steps the others too.
 *
 * Its state (step count, momentum buffers, moments) can be saved into a
 * safetensors writer and loaded back, so a resumed run continues exactly.
 *
 *     tg_optim *opt = tg_adam_new(&model_params, 1e-3, 0.9, 0.999, 1e-8, 0);
 *     for (...) {
 *         tg_optim_zero_grad(opt);
 *         tg_backward(loss);
 *         double norm = tg_clip_grad_norm(&model_params, 5.0);
 *         tg_optim_step(opt);
 *         tg_tape_reset();
 *     }
 *     tg_optim_free(opt);
 */
#ifndef TG_NN_OPTIM_H
#define TG_NN_OPTIM_H

#include "nn/curvature.h"
#include "nn/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_optim_kind {
    TG_OPTIM_SGD,
    TG_OPTIM_ADAM,
    TG_OPTIM_ADAMW,
    TG_OPTIM_HF
} tg_optim_kind;

typedef struct tg_optim {
    tg_optim_kind kind;
    tg_params *params; /* borrowed: must outlive the optimizer (a step
                          on a list freed since is an error; freeing the
                          optimizer after it is safe) */
    double lr, weight_decay;
    double momentum, dampening; /* SGD */
    bool nesterov;              /* SGD */
    double beta1, beta2, eps;   /* Adam, AdamW */
    int64_t step;               /* steps taken */
    /* per parameter, same order as params (heap, numel each; NULL until
     * needed): SGD momentum buffer in m; Adam first moment m, second v */
    tg_real **m, **v;
    int n;
    /* for a flattened parameter list (tg_params_flatten): the buffers as
     * blocks laid out like it, m[i] and v[i] pointing into them, so that a
     * step is one loop over the whole model (NULL until then), of block_n
     * numbers each */
    tg_real *m_block, *v_block;
    int64_t block_n;
    tg_hf *hf; /* HF: its state (damping, warm start, counts) */
} tg_optim;

tg_optim *tg_sgd_new(tg_params *ps, double lr, double momentum,
                     double dampening, double weight_decay, bool nesterov);
tg_optim *tg_adam_new(tg_params *ps, double lr, double beta1, double beta2,
                      double eps, double weight_decay);
tg_optim *tg_adamw_new(tg_params *ps, double lr, double beta1, double beta2,
                       double eps, double weight_decay);
/* Hessian-free; cfg NULL: the defaults of tg_hf_config. */
tg_optim *tg_hf_optim_new(tg_params *ps, const tg_hf_config *cfg);
void tg_optim_free(tg_optim *o);

/* One update of every parameter with a gradient (parameters whose ->grad
 * is NULL are skipped). HF cannot: an error says to use a closure. */
void tg_optim_step(tg_optim *o);
/* One update that evaluates the model itself: for SGD/Adam/AdamW, zero
 * the gradients, record c's outputs and loss, backward, step; for HF, a
 * Hessian-free step. Returns the loss before the step, NAN after an
 * error. Resets the tape. */
double tg_optim_step_closure(tg_optim *o, const tg_closure *c);
void tg_optim_zero_grad(tg_optim *o);

/* Saves the state as tensors "<prefix><param name>.m" / ".v" plus
 * metadata-free scalars "<prefix>step" (I64) (HF: ".m" is the warm start,
 * and "<prefix>lambda" (F64) the damping), and its kind as the metadata
 * "<prefix>optimizer": sgd, sgd_momentum (SGD with momentum != 0, which
 * alone keeps buffers), adam, adamw or hessian_free. Loads it back
 * (strict: the kind must be the optimizer's - rates and other
 * hyperparameters may differ - the parameter list must match, every
 * number must be finite, second moments not negative, the step count in
 * [0, TG_OPTIM_MAX_STEP]; a bad file changes nothing). A file saved
 * before the kind was recorded is judged by its tensors (lambda, ".v",
 * ".m", none): it still loads into the kind that saved it, Adam's and
 * AdamW's into either. 0 or -1 with a message naming the file's tensor or
 * both kinds. */
#define TG_OPTIM_MAX_STEP ((int64_t)1 << 53)
void tg_optim_save(const tg_optim *o, tg_st_writer *w, const char *prefix);
int tg_optim_load(tg_optim *o, const tg_st_file *f, const char *prefix,
                  char *err, size_t errcap);

/* Scales all gradients so that their global L2 norm is at most max_norm,
 * as torch.nn.utils.clip_grad_norm_ (factor max_norm / (norm + 1e-6));
 * returns the norm before clipping. */
double tg_clip_grad_norm(tg_params *ps, double max_norm);
/* Clamps every gradient element to [-clip, clip]. */
void tg_clip_grad_value(tg_params *ps, double clip);

#ifdef __cplusplus
}
#endif

#endif
