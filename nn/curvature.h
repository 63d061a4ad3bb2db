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
 */
#ifndef TG_NN_CURVATURE_H
#define TG_NN_CURVATURE_H

#include "nn/params.h"
#include "ops/ops.h"

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
 * resets the tape. 0, or -1 after an error. */
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
 * the gradients as scratch (zero afterwards), resets the tape. 0 or -1. */
int tg_hessian_vector_product(tg_model_fn f, tg_loss_fn loss_of, void *ud,
                              tg_params *ps, const tg_real *v, tg_real *hv);
/* The eigenvalue of H of largest magnitude (with its sign) by power
 * iteration, as tg_gauss_newton_top_eigenvalue. NAN after an error. */
double tg_hessian_top_eigenvalue(tg_model_fn f, tg_loss_fn loss_of, void *ud,
                                 tg_params *ps, int iters, double rel_tol,
                                 uint64_t seed, tg_real *vec);

/* ---- Hessian-free optimisation (Martens 2010) ----------------------------
 * Each step solves (G + lambda I) d = -grad by conjugate gradient (at
 * most max_cg products G v, warm-started from 0.95 times the last step),
 * tries theta + d, and adapts lambda Levenberg-Marquardt style from the
 * ratio rho of the loss's actual to predicted decrease (rho > 3/4: lambda
 * times 2/3; rho < 1/4: times 3/2; a step that raises the loss is not
 * taken). Not yet: structural damping (Martens and Sutskever 2011) and
 * CG backtracking. */

typedef struct tg_hf {
    tg_params *ps;
    tg_model_fn model;
    tg_loss_fn loss_of;
    void *ud;
    tg_curv_loss curv;
    double lambda;       /* the damping, adapted every step */
    int max_cg;
    int64_t n, steps;
    tg_real *prev;       /* the last step taken (warm start) */
    double loss, rho;    /* of the last step: loss before it, and rho */
    int cg_iters;        /* of the last step */
} tg_hf;

tg_hf *tg_hf_new(tg_params *ps, tg_model_fn model, tg_loss_fn loss_of,
                 void *ud, tg_curv_loss curv, double lambda0, int max_cg);
void tg_hf_free(tg_hf *h);
/* One step: the loss and gradient at the current parameters, CG, the
 * trial, the damping. Resets the tape. 0, or -1 after an error. */
int tg_hf_step(tg_hf *h);

#endif
