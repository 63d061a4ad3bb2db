/*
 * nn/curvature.h - curvature products for models ending in a loss:
 * Gauss-Newton-vector products and the top eigenvalue of the Gauss-Newton
 * matrix, from one forward-mode and one reverse sweep each.
 *
 * A model maps its parameters theta to outputs z (logits, predictions);
 * the loss L(z) follows. The Gauss-Newton matrix G = J^T H J (J = dz /
 * dtheta, H = d^2 L / dz^2) is the Hessian of L(z(theta)) without the
 * terms of z's own curvature: positive semi-definite for cross-entropy
 * and squared error, which is what makes it usable by conjugate gradient
 * (Martens' Hessian-free optimisation). Its product with v:
 *
 *     J v      one forward-mode sweep (tg_jvp) with v as the parameters'
 *              tangent;
 *     H (J v)  in closed form: softmax's p (Jv) - p (p . Jv) per row for
 *              cross-entropy, 2 (Jv) for squared error (times 1/N for a
 *              mean);
 *     J^T ...  one reverse sweep seeded with it (tg_backward_seed).
 *
 * Vectors over the parameters are flat: the parameters of the list one
 * after the other, in list order (tg_params_numel numbers).
 *
 * The tape: each routine records its passes after whatever the caller
 * has recorded, and rewinds to there before it returns (tg_tape_rewind):
 * the caller's entries and temporaries stay usable. Tangents do not: every
 * direction set with tg_set_tangent is forgotten (tg_clear_tangents).
 */
#ifndef TG_NN_CURVATURE_H
#define TG_NN_CURVATURE_H

#include "nn/params.h"
#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_curv_kind {
    TG_CURV_CROSS_ENTROPY, /* z: logits [..., C], classes in the last axis */
    TG_CURV_MSE            /* z: predictions, any shape                    */
} tg_curv_kind;

typedef struct tg_curv_loss {
    tg_curv_kind kind;
    tg_reduction reduction; /* TG_MEAN (over rows / elements) or TG_SUM */
} tg_curv_loss;

/* Records the model's outputs z from its parameters (called once per
 * product: each product needs a fresh forward pass). NULL on failure. */
typedef tg_tensor *(*tg_model_fn)(void *ud);
/* The scalar loss of the outputs z (recorded). */
typedef tg_tensor *(*tg_loss_fn)(tg_tensor *z, void *ud);

/* gv = G v for the parameters ps (requiring grad) of the model f. Uses
 * the parameters' gradients as scratch (they are zero afterwards) and
 * rewinds the tape (above). 0, or -1 after an error. */
int tg_gauss_newton_product(tg_model_fn f, void *ud, tg_curv_loss loss,
                            tg_params *ps, const tg_real *v, tg_real *gv);

/* The largest eigenvalue of G by power iteration from a random start
 * (seed), at most iters products, stopping when it changes by less than
 * rel_tol relatively. vec: NULL, or tg_params_numel numbers for the
 * eigenvector. NAN after an error. */
double tg_gauss_newton_top_eigenvalue(tg_model_fn f, void *ud,
                                      tg_curv_loss loss, tg_params *ps,
                                      int iters, double rel_tol,
                                      uint64_t seed, tg_real *vec);

/* ---- the Hessian -----------------------------------------------------------
 * hv = H v, H the exact Hessian of loss_of(f(ud)) with respect to the
 * parameters ps: "reverse over forward" - L's tangent along v, grad L . v,
 * recorded by tg_jvp_create_graph, then differentiated by reverse mode.
 * Unlike G, H need not be positive semi-definite. The model is recorded
 * with fusion off (compiled steps have no recorded forward rule). Uses
 * the gradients as scratch (zero afterwards), rewinds the tape. 0 or -1. */
int tg_hessian_vector_product(tg_model_fn f, tg_loss_fn loss_of, void *ud,
                              tg_params *ps, const tg_real *v, tg_real *hv);
/* The eigenvalue of H of largest magnitude (with its sign) by power
 * iteration, as tg_gauss_newton_top_eigenvalue. NAN after an error. */
double tg_hessian_top_eigenvalue(tg_model_fn f, tg_loss_fn loss_of, void *ud,
                                 tg_params *ps, int iters, double rel_tol,
                                 uint64_t seed, tg_real *vec);

/* ---- Hessian-free optimisation ---------------------------------------------
 * Martens (ICML 2010) and Martens and Sutskever (ICML 2011). Each step:
 *  1. the loss L0 and gradient g on the closure's batch;
 *  2. conjugate gradient on A d = -g, A = G + lambda I (+ structural
 *     damping, below), warm-started from 0.95 times the last step's final
 *     iterate, stopped at max_cg iterations or when the quadratic model
 *     phi(d) = g.d + d.A d / 2 improved by less than k * 5e-4 relatively
 *     over the last k = max(10, i / 10) iterations (Martens' rule);
 *  3. CG backtracking: of the iterates kept at i = 1, 2, 3, 4, 6, 8, 11, ...
 *     (x 1.3) and the last, the one with the lowest loss, walking back from
 *     the last while the loss falls;
 *  4. lambda Levenberg-Marquardt style from rho = actual / predicted
 *     decrease (rho > 3/4: lambda x 2/3; rho < 1/4: x 3/2);
 *  5. a backtracking line search (alpha x 0.8, at most 8 times) for
 *     L(theta + alpha d) <= L0 + 0.01 alpha g.d; failing that, no step.
 * Structural damping (mu > 0) adds mu lambda J_h^T J_h to A: the model's
 * hidden states h (closure.hidden) are kept from moving much in one step,
 * the penalty (mu lambda / 2) |J_h d|^2 (divided by h's rows for a mean
 * loss). That is what let Martens and Sutskever train plain tanh RNNs on
 * long-range tasks: a small change of the recurrent weights can move the
 * states a lot, which G alone does not see. */

/* What a step evaluates: the model's outputs z on the current batch
 * (recorded; called several times per step, so it must give the same z
 * for the same parameters until the caller changes the batch), the loss
 * of z, and optionally the hidden states recorded by the last outputs()
 * call (for structural damping; NULL otherwise: with mu > 0, a hidden()
 * that returns NULL is an error that says so). The same closure steps
 * every optimizer (tg_optim_step_closure in nn/optim.h).
 * curv_ud, if not NULL, is what HF's curvature products call outputs and
 * hidden with instead of ud: a curvature minibatch (Martens 2010 takes a
 * fraction of the gradient's batch for the products, which dominate a
 * step's cost). The gradient and every loss evaluation use ud. */
typedef struct tg_closure {
    tg_model_fn outputs;
    tg_loss_fn loss;
    tg_tensor *(*hidden)(void *ud);
    void *ud;
    void *curv_ud;
} tg_closure;

/* curv must describe closure.loss: G is built from it alone. Each step
 * checks it against the loss's gradient dL/dz and refuses (an error) what
 * cannot be: cross-entropy's curvature (the default) for a loss whose
 * dL/dz does not sum to zero over the classes, a squared error's for one
 * that does and is no squared error, or a squared error summed where
 * curv says averaged (or the other way round). */
typedef struct tg_hf_config {
    tg_curv_loss curv; /* the loss's kind and reduction, for G       */
    double lambda0;    /* initial damping (default 1)                */
    int max_cg;        /* CG iterations per step (default 100)       */
    double mu;         /* structural damping weight (default 0: none;
                          Martens and Sutskever used 1/30)           */
    bool no_backtrack; /* take CG's last iterate, no line search      */
} tg_hf_config;

typedef struct tg_hf {
    tg_params *ps;
    tg_hf_config cfg;
    int64_t n;
    double lambda;     /* the damping now                             */
    tg_real *prev;     /* the last step's final CG iterate (warm start) */
    /* of the last step: the loss before it, rho, CG iterations run and
     * the iterate taken, the line search's alpha (0: no step) */
    double loss, rho, alpha;
    int cg_iters, cg_taken;
    /* counts over all steps: gradient evaluations (forward + backward),
     * curvature products (forward, tangent sweep, backward), loss
     * evaluations (forward only) */
    int64_t steps, gradients, products, losses;
} tg_hf;

tg_hf *tg_hf_new(tg_params *ps, const tg_hf_config *cfg);
void tg_hf_free(tg_hf *h);
/* One step. Rewinds the tape (above). The loss before the step, or NAN
 * after an error (the parameters are then as before the step): the error that
 * stopped it is the one reported - a failing op, loss or backward in the
 * closure's evaluations, or a loss that is NaN or infinite. */
double tg_hf_step(tg_hf *h, const tg_closure *c);
/* The matrix CG works with, times v: out = (G + mu lambda S + lambda I) v
 * at the current parameters and lambda (for tests and for reading). */
int tg_hf_product(tg_hf *h, const tg_closure *c, const tg_real *v,
                  tg_real *out);

#ifdef __cplusplus
}
#endif

#endif
