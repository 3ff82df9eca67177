/* ops_blas.c — the reference backend: OpenBLAS sgemm for the products, plain
 * loops written the way PyTorch defines each op for everything else. It is
 * the path the oneDNN backend is cross-checked against, so it favours
 * obviousness over speed. */
#include "ops_blas.h"
#include "ops_scratch.h"

#include <cblas.h>
#include <math.h>

struct VlmOpsBlas {
  VlmScratch staging;   /* a linear's x·Wᵀ before bias/act/residual */
};

VlmOpsBlas *
vlm_blas_new (void)
{
  return g_new0 (VlmOpsBlas, 1);
}

void
vlm_blas_free (VlmOpsBlas *b)
{
  if (!b)
    return;
  vlm_scratch_clear (&b->staging);
  g_free (b);
}

/* ------------------------------------------------------------ linear */

/* sgemm writes x·Wᵀ; the epilogue then adds the bias, applies the
 * activation and adds the residual, in that order (as HF's modules do).
 * With a residual the product goes to staging first, because the residual
 * may be y itself and must be read before y is overwritten. */
void
vlm_blas_linear (VlmOpsBlas *b, const VlmLinearW *lin, const float *x, int m, float *y,
                 VlmAct act, const float *residual)
{
  int n = lin->n, k = lin->k;
  g_assert (lin->weight);   /* packed for oneDNN from a converted copy: not here */
  float *acc = residual ? vlm_scratch_get (&b->staging, (size_t) m * n) : y;

  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, lin->weight, k,
               0.0f, acc, n);
  for (int i = 0; i < m; i++) {
    float *row = acc + (size_t) i * n;
    if (lin->bias)
      for (int j = 0; j < n; j++) row[j] += lin->bias[j];
    vlm_act_ref (act, row, n);
    if (residual)
      for (int j = 0; j < n; j++) y[(size_t) i * n + j] = row[j] + residual[(size_t) i * n + j];
  }
}

/* ------------------------------------------------------------ norms, softmax */

/* Two passes (mean, then the biased variance of the centred values) with
 * double sums, so the reference is at least as exact as torch's Welford. */
void
vlm_blas_layer_norm (const float *x, int m, int n, const float *gamma, const float *beta,
                     float eps, float *y)
{
  for (int i = 0; i < m; i++) {
    const float *xr = x + (size_t) i * n;
    float *yr = y + (size_t) i * n;
    double sum = 0.0, sq = 0.0;
    for (int j = 0; j < n; j++) sum += xr[j];
    float mean = (float) (sum / n);
    for (int j = 0; j < n; j++) sq += (double) (xr[j] - mean) * (xr[j] - mean);
    float rstd = (float) (1.0 / sqrt (sq / n + eps));
    for (int j = 0; j < n; j++)
      yr[j] = (xr[j] - mean) * rstd * gamma[j] + (beta ? beta[j] : 0.0f);
  }
}

/* Max-subtracted, as torch.softmax; rows fully of -inf cannot occur (every
 * query sees at least key 0). */
void
vlm_blas_softmax (float *x, int m, int n)
{
  for (int i = 0; i < m; i++) {
    float *r = x + (size_t) i * n;
    float max = r[0], sum = 0.0f;
    for (int j = 1; j < n; j++) max = r[j] > max ? r[j] : max;
    for (int j = 0; j < n; j++) sum += (r[j] = expf (r[j] - max));
    for (int j = 0; j < n; j++) r[j] /= sum;
  }
}

/* ------------------------------------------------------------ attention */

/* One sgemm per head of [h0, h1); head h reads kv head h / (n_heads / n_kv_heads). */
void
vlm_blas_attn_scores (const VlmAttnShape *s, int h0, int h1, const float *q, const float *k, float *scores)
{
  int group = s->n_heads / s->n_kv_heads;
  size_t head_stride = s->k_t ? (size_t) s->head_dim * s->ldk : (size_t) s->head_dim;
  for (int h = h0; h < h1; h++)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, s->k_t ? CblasNoTrans : CblasTrans, s->lq, s->lk,
                 s->head_dim, s->scale, q + (size_t) h * s->head_dim, s->ldq,
                 k + (h / group) * head_stride, s->ldk, 0.0f, scores + (size_t) h * s->lq * s->lk, s->lk);
}

void
vlm_blas_attn_context (const VlmAttnShape *s, int h0, int h1, const float *probs, const float *v, float *out)
{
  int group = s->n_heads / s->n_kv_heads;
  for (int h = h0; h < h1; h++)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, s->lq, s->head_dim, s->lk, 1.0f,
                 probs + (size_t) h * s->lq * s->lk, s->lk,
                 v + (size_t) (h / group) * s->head_dim, s->ldv, 0.0f,
                 out + (size_t) h * s->head_dim, s->ldo);
}
