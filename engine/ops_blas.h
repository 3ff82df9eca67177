/* ops_blas.h — the reference backend (ops_blas.c): OpenBLAS sgemm and
 * plain loops. Its only state is the staging buffer of its linears.
 * Internal to the ops. */
#ifndef VLM_OPS_BLAS_H
#define VLM_OPS_BLAS_H

#include "ops_types.h"

typedef struct VlmOpsBlas VlmOpsBlas;

VlmOpsBlas *vlm_blas_new (void);
void vlm_blas_free (VlmOpsBlas *b);
void vlm_blas_linear (VlmOpsBlas *b, const VlmLinearW *lin, const float *x, int m, float *y,
                      VlmAct act, const float *residual);
void vlm_blas_conv2d (VlmOpsBlas *b, const VlmConvW *conv, const float *x, int h, int w, float *y,
                      const float *residual);
void vlm_blas_layer_norm (const float *x, int m, int n, const float *gamma, const float *beta,
                          float eps, float *y);
void vlm_blas_softmax (float *x, int m, int n);
/* scores[h, i, j] = scale · q_h[i] · k_{h/g}[j], for heads h0 <= h < h1 */
void vlm_blas_attn_scores (const VlmAttnShape *s, int h0, int h1, const float *q, const float *k,
                           float *scores);
/* out_h[i] = Σ_j probs[h, i, j] · v_{h/g}[j], for heads h0 <= h < h1 */
void vlm_blas_attn_context (const VlmAttnShape *s, int h0, int h1, const float *probs, const float *v,
                            float *out);

#endif
