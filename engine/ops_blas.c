/* ops_blas.c — the reference backend: OpenBLAS sgemm for the products, plain
 * loops written the way PyTorch defines each op for everything else. It is
 * the path the oneDNN backend is cross-checked against, so it favours
 * obviousness over speed. */
#include "ops_backend.h"

#include <cblas.h>
#include <math.h>

/* ------------------------------------------------------------ activations */

/* torch.nn.functional.gelu(x, approximate="none") */
static inline float
gelu_erf (float x)
{
  return 0.5f * x * (1.0f + erff (x * (float) M_SQRT1_2));
}

/* torch.nn.functional.gelu(x, approximate="tanh"):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))) */
static inline float
gelu_tanh (float x)
{
  const float k = (float) (M_2_SQRTPI * M_SQRT1_2);  /* sqrt(2/pi) */
  return 0.5f * x * (1.0f + tanhf (k * (x + 0.044715f * x * x * x)));
}

/* x · sigmoid(alpha x): SiLU with alpha 1, quick_gelu with 1.702 */
static inline float
swish (float x, float alpha)
{
  return x / (1.0f + expf (-alpha * x));
}

void
vlm_blas_act (VlmAct act, float *x, size_t n)
{
  switch (act) {
    case VLM_ACT_NONE: break;
    case VLM_ACT_GELU_ERF: for (size_t i = 0; i < n; i++) x[i] = gelu_erf (x[i]); break;
    case VLM_ACT_GELU_TANH: for (size_t i = 0; i < n; i++) x[i] = gelu_tanh (x[i]); break;
    case VLM_ACT_QUICK_GELU: for (size_t i = 0; i < n; i++) x[i] = swish (x[i], 1.702f); break;
    case VLM_ACT_SILU: for (size_t i = 0; i < n; i++) x[i] = swish (x[i], 1.0f); break;
    case VLM_ACT_RELU: for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
  }
}

/* ------------------------------------------------------------ linear */

/* sgemm writes x·Wᵀ; the epilogue then adds the bias, applies the
 * activation and adds the residual, in that order (as HF's modules do).
 * With a residual the product goes to staging first, because the residual
 * may be y itself and must be read before y is overwritten. */
void
vlm_blas_linear (VlmOps *ops, const VlmLinearW *lin, const float *x, int m, float *y,
                 VlmAct act, const float *residual)
{
  int n = lin->n, k = lin->k;
  g_assert (lin->weight);   /* packed for oneDNN from a converted copy: not here */
  float *acc = residual ? vlm_scratch_get (&ops->staging, (size_t) m * n) : y;

  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, lin->weight, k,
               0.0f, acc, n);
  for (int i = 0; i < m; i++) {
    float *row = acc + (size_t) i * n;
    if (lin->bias)
      for (int j = 0; j < n; j++) row[j] += lin->bias[j];
    vlm_blas_act (act, row, n);
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
