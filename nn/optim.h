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

typedef struct tg_optim tg_optim;
typedef struct tg_optim_io tg_optim_io;

/* ---- kinds of optimizer ------------------------------------------------
 * Each kind is a descriptor, as an op is (tg_op) and a cell (tg_cell_type):
 * its name, the state it keeps, its update and the save/load of whatever
 * state is its own. The rest - parameters added to the list, flattened
 * blocks, the step count, buffers per parameter in files, the checks of a
 * loaded file - is done once for every kind, in nn/optim.c and
 * nn/optim_io.c. A kind lives in one file (nn/optim_sgd.c, optim_adam.c,
 * optim_hf.c); a new one is one more file, its constructor here, and one
 * line in the list of kinds (tg_optim_types, nn/optim_io.c), which names
 * the kind of a file's state in messages. A program may define a kind of
 * its own and make it with tg_optim_new (tests/test_optim.c has one). */

/* A kind of state, as files record it ("<prefix>optimizer"): a kind may
 * keep one of two (SGD: a momentum buffer, or none). */
typedef struct tg_optim_state {
    const char *id;    /* the metadata's value: "sgd_momentum" */
    const char *words; /* in messages: "SGD with momentum" */
    int buffers;       /* per parameter: 0, 1 (m) or 2 (m and v) */
    /* the state a file saved before the metadata existed is judged by its
     * tensors (tg_optim_load): what this kind's is judged to be (NULL: no
     * such file was ever saved) */
    const char *legacy;
} tg_optim_state;

typedef struct tg_optim_type {
    const char *name;             /* in messages: "sgd", "adam", "hf" */
    tg_optim_state states[2];     /* states[state_of(o)] */
    int (*state_of)(const tg_optim *o); /* NULL: states[0] always */
    bool nonneg_v; /* v is a mean of squares: a file's negative is bad */
    /* One update of n numbers, element by element: p from the gradient g,
     * with m and v its buffers (NULL where not kept); first: m holds
     * nothing yet (a parameter's first step). NULL: the kind evaluates the
     * model itself, and is stepped only with a closure. */
    void (*update)(const tg_optim *o, int64_t n, tg_real *p,
                   const tg_real *g, tg_real *m, tg_real *v, bool first);
    /* Whether update keeps p, m and v at zero where they and g are zero
     * (NULL: it does), so that it may run over a flattened block's gaps. */
    bool (*gap_safe)(const tg_optim *o);
    /* Optional: a closure step of its own (tg_optim_step_closure). */
    double (*step_closure)(tg_optim *o, const tg_closure *c);
    /* Optional: the state it keeps besides the buffers per parameter, in
     * a file (through io: the kind's file needs no file reading). load
     * checks all, then changes o; -1 and a message changing nothing. */
    void (*save)(const tg_optim *o, const tg_optim_io *io);
    int (*load)(tg_optim *o, const tg_optim_io *io, int64_t step,
                char *err, size_t errcap);
    void (*fini)(tg_optim *o); /* frees o->state (NULL: free(o->state)) */
} tg_optim_type;

/* What a kind's save and load write and read its own state with (made
 * by tg_optim_save and tg_optim_load). Names are the prefix + name; a
 * buffer's, prefix + the parameter's name + suffix, of its shape. */
struct tg_optim_io {
    const char *prefix;
    const void *file; /* the tg_st_writer or tg_st_file */
    /* save: buf NULL is saved as zeros */
    void (*save_buffer)(const tg_optim_io *io, const tg_param *p,
                        const char *suffix, const tg_real *buf);
    void (*save_f64)(const tg_optim_io *io, const char *name,
                     const double *v);
    /* load: 0, or -1 and a message (missing, not of p's shape, a NaN) */
    int (*check_buffer)(const tg_optim_io *io, const tg_param *p,
                        const char *suffix, char *err, size_t errcap);
    /* copies a checked buffer into n numbers at into */
    void (*load_buffer)(const tg_optim_io *io, const tg_param *p,
                        const char *suffix, tg_real *into);
    /* 1 and *v: one float number; 0: missing; -1: something else */
    int (*read_f64)(const tg_optim_io *io, const char *name, double *v);
};

extern const tg_optim_type tg_sgd_type, tg_adam_type, tg_adamw_type,
    tg_hf_type;
/* every kind, NULL-terminated: the one list to add a new kind to */
extern const tg_optim_type *const tg_optim_types[];

struct tg_optim {
    const tg_optim_type *type;
    tg_params *params; /* borrowed: must outlive the optimizer (a step
                          on a list freed since is an error; freeing the
                          optimizer after it is safe) */
    double lr, weight_decay;
    int64_t step;      /* steps taken */
    /* per parameter, same order as params (heap, numel each; NULL until
     * needed): the buffers its state keeps (SGD's momentum in m, Adam's
     * first moment in m, second in v) */
    tg_real **m, **v;
    int n;
    /* for a flattened parameter list (tg_params_flatten): the buffers as
     * blocks laid out like it, m[i] and v[i] pointing into them, so that a
     * step is one loop over the whole model (NULL until then), of block_n
     * numbers each */
    tg_real *m_block, *v_block;
    int64_t block_n;
    /* the kind's own state: its other hyperparameters (SGD's momentum,
     * Adam's betas), and for Hessian-free its tg_hf (damping, warm start,
     * counts), also named hf */
    union {
        void *state;
        tg_hf *hf;
    };
};

/* An optimizer of a kind: lr and weight_decay checked (>= 0), state (the
 * kind's own, taken over: freed with the optimizer, also when NULL is
 * returned). Constructors of the kinds call it. */
tg_optim *tg_optim_new(const char *op, const tg_optim_type *type,
                       tg_params *ps, double lr, double weight_decay,
                       void *state);

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
 * error. What it records goes before it returns: the tape is rewound to
 * where the caller left it (nn/curvature.h, "The tape"). */
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
