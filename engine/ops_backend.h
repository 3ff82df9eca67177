/* ops_backend.h — what ops.c (the public API, shared kernels, dispatch)
 * needs from the two backends: ops_blas.c (OpenBLAS + plain loops, the
 * reference) and ops_dnnl.c (oneDNN primitives). Internal to the ops. */
#ifndef VLM_OPS_BACKEND_H
#define VLM_OPS_BACKEND_H

#include "cpu.h"
#include "ops.h"
#include "ops_kernels.h"

/* A float buffer that grows (by half at least) when a request exceeds it and
 * never shrinks, so a steady state allocates nothing. */
typedef struct {
  float *data;
  size_t cap;   /* floats */
} VlmScratch;

/* At least n floats, 64-byte aligned; contents undefined after growth. */
float *vlm_scratch_get (VlmScratch *s, size_t n);
void vlm_scratch_clear (VlmScratch *s);

typedef struct VlmOpsDnnl VlmOpsDnnl;

struct VlmOps {
  VlmBackend backend;
  int n_threads;
  VlmOpsDnnl *dnnl;     /* oneDNN engine, stream, primitive cache; NULL for BLAS */
  VlmScratch scores;    /* attention scores [n_heads, lq, lk] */
  VlmScratch staging;   /* BLAS linear: x·Wᵀ before bias/act/residual */
  VlmScratch hidden;    /* vlm_mlp's hidden activation (f32, or bf16 in its first half) */
  gboolean attn_bf16;   /* oneDNN full-length attention in bf16 (vlm_ops_set_attention_dtype) */
  VlmScratch attn_in;   /* its bf16 q block, k, v and probabilities (halves of floats) */
};

/* One attention call's geometry (see vlm_attention). */
typedef struct {
  int lq, lk, n_heads, n_kv_heads, head_dim;
  int ldq, ldk, ldv, ldo;
  float scale;
  gboolean k_t;   /* keys transposed (vlm_attention_kt): ldk is the stride of a dim */
  gboolean bf16;  /* oneDNN: q, k, v and the probabilities in bf16 (scores and out f32) */
} VlmAttnShape;

/* ---- reference backend (ops_blas.c) */
void vlm_blas_linear (VlmOps *ops, const VlmLinearW *lin, const float *x, int m, float *y,
                      VlmAct act, const float *residual);
void vlm_blas_layer_norm (const float *x, int m, int n, const float *gamma, const float *beta,
                          float eps, float *y);
void vlm_blas_act (VlmAct act, float *x, size_t n);
void vlm_blas_softmax (float *x, int m, int n);
/* scores[h, i, j] = scale · q_h[i] · k_{h/g}[j], for heads h0 <= h < h1 */
void vlm_blas_attn_scores (const VlmAttnShape *s, int h0, int h1, const float *q, const float *k,
                           float *scores);
/* out_h[i] = Σ_j probs[h, i, j] · v_{h/g}[j], for heads h0 <= h < h1 */
void vlm_blas_attn_context (const VlmAttnShape *s, int h0, int h1, const float *probs, const float *v,
                            float *out);

/* ---- oneDNN backend (ops_dnnl.c); same contracts as the BLAS ones */
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

/* ---- decode's linears (ops_gemv.c) */
/* Whether the tier runs the blocked bf16 GEMV (vlm_cpu_native_bf16). */
gboolean vlm_gemv_bf16_supported (void);
/* One output of vlm_gemv: y[m, n] = act(x · Wᵀ + bias) + residual. W is
 * bf16 {k, n} blocked as oneDNN's BA16a64b2a ([⌈n/64⌉][kpad/2][64][2], zero
 * padded) when the input is given in bf16 (VlmGemvIn.xb), else HF's rows
 * [n][ldw], f32 or bf16. bias and residual may be NULL; residual may alias y. */
typedef struct {
  const void *w;
  size_t ldw;
  gboolean bf16;
  int n;
  const float *bias;
  VlmAct act;
  const float *residual;
  float *y;
} VlmGemvOut;
/* The m <= VLM_GEMV_MAX_ROWS rows of input: bf16 xb [m, kpad] (zero past
 * k; kpad a multiple of 32) for blocked weights, else f32 x [m, k]. */
typedef struct {
  int m, k, kpad;
  const uint16_t *xb;
  const float *x;
} VlmGemvIn;
#define VLM_GEMV_MAX_OUTS 4
/* Every output, their blocks shared out over OpenMP's current thread count
 * in one parallel region. */
void vlm_gemv (const VlmGemvOut *outs, int n_outs, const VlmGemvIn *in);

#endif
