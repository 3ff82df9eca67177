/* ops_dnnl.h — the oneDNN backend (ops_dnnl.c): primitives cached by
 * geometry, its scratch and first error kept in its own context. The same
 * contracts as the BLAS backend (ops_blas.h). Internal to the ops. */
#ifndef VLM_OPS_DNNL_H
#define VLM_OPS_DNNL_H

#include "ops_types.h"

typedef struct VlmOpsDnnl VlmOpsDnnl;

VlmOpsDnnl *vlm_dnnl_new (GError **error);
void vlm_dnnl_free (VlmOpsDnnl *d);
int vlm_dnnl_n_primitives (const VlmOpsDnnl *d);
/* The weight of `lin` (from `weight`, see vlm_linear_pack) prepared for
 * the tier: oneDNN's blocked layout for `rows` rows of input, or HF's rows
 * (f32, or bf16 where the CPU has no bf16 instructions). */
void *vlm_dnnl_pack (const VlmLinearW *lin, const VlmTensor *weight, VlmDType dtype, int rows,
                     GError **error);
/* Whether a packed linear still multiplies by lin->weight (f32 rows on
 * AVX2 and below), which must then be kept. */
gboolean vlm_dnnl_packed_reads_f32 (const void *packed);
void vlm_dnnl_packed_free (void *packed);
/* The first failure since the last call, if any (see vlm_ops_take_error). */
gboolean vlm_dnnl_take_error (VlmOpsDnnl *d, GError **error);
gboolean vlm_dnnl_has_native_bf16 (void);
void vlm_dnnl_linear (VlmOpsDnnl *d, const VlmLinearW *lin, const float *x, int m, float *y,
                      VlmAct act, const float *residual);
void vlm_dnnl_linear_multi (VlmOpsDnnl *d, const VlmLinearW *const *lins, const VlmAct *acts, int n,
                            const float *x, int m, float *const *ys);
/* fc2(act(fc1(x))) + residual through `hidden` [m, fc1->n] floats, which
 * holds it in bf16 between two bf16 matmuls */
void vlm_dnnl_mlp (VlmOpsDnnl *d, const VlmLinearW *fc1, VlmAct act, const VlmLinearW *fc2, const float *x,
                   int m, float *hidden, float *y, const float *residual);
void vlm_dnnl_conv2d (VlmOpsDnnl *d, const VlmConvW *conv, const float *x, int h, int w, float *y,
                      const float *residual);
void vlm_dnnl_layer_norm (VlmOpsDnnl *d, const float *x, int m, int n, const float *gamma,
                          const float *beta, float eps, float *y);
void vlm_dnnl_act (VlmOpsDnnl *d, VlmAct act, float *x, size_t n);
/* softmax of each of x's m rows of n into y, f32 or bf16 (y may alias an f32 x) */
void vlm_dnnl_softmax (VlmOpsDnnl *d, const float *x, int m, int n, void *y, gboolean y_bf16);
/* x [m rows of k, stride ld] → dense bf16 out [m, k], rounding to nearest even */
void vlm_dnnl_to_bf16 (VlmOpsDnnl *d, const float *x, int m, int k, int ld, uint16_t *out);
/* q, k, probs and v are f32, or bf16 where s->bf16 */
void vlm_dnnl_attn_scores (VlmOpsDnnl *d, const VlmAttnShape *s, const void *q, const void *k,
                           float *scores);
void vlm_dnnl_attn_context (VlmOpsDnnl *d, const VlmAttnShape *s, const void *probs,
                            const void *v, float *out);

#endif
