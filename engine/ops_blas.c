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

/* ------------------------------------------------------------ convolution */

/* Depthwise: each channel convolved with its own kernel, the sum in the
 * order torch's reference loops take it (rows, then columns). */
static void
conv_depthwise (const VlmConvW *c, const float *x, int h, int w, float *y)
{
  int C = c->out_channels, K = c->kernel, ho = vlm_conv_out_size (c, h), wo = vlm_conv_out_size (c, w);
  for (int oy = 0; oy < ho; oy++)
    for (int ox = 0; ox < wo; ox++)
      for (int ch = 0; ch < C; ch++) {
        float acc = c->bias ? c->bias[ch] : 0.0f;
        for (int ky = 0; ky < K; ky++) {
          int iy = oy * c->stride - c->padding + ky;
          for (int kx = 0; iy >= 0 && iy < h && kx < K; kx++) {
            int ix = ox * c->stride - c->padding + kx;
            if (ix >= 0 && ix < w)
              acc += c->weight[((size_t) ch * K + ky) * K + kx] * x[((size_t) iy * w + ix) * C + ch];
          }
        }
        y[((size_t) oy * wo + ox) * C + ch] = acc;
      }
}

/* Dense: one output row at a time, its patches laid out as HF's weight
 * rows are (in, ky, kx; zeros for the padding), times the weightᵀ. */
static void
conv_dense (VlmOpsBlas *b, const VlmConvW *c, const float *x, int h, int w, float *y)
{
  int nin = c->in_channels, nout = c->out_channels, K = c->kernel;
  int ho = vlm_conv_out_size (c, h), wo = vlm_conv_out_size (c, w), kk = nin * K * K;
  float *patches = vlm_scratch_get (&b->staging, (size_t) wo * kk);
  for (int oy = 0; oy < ho; oy++) {
    for (int ox = 0; ox < wo; ox++)
      for (int i = 0; i < nin; i++)
        for (int ky = 0; ky < K; ky++)
          for (int kx = 0; kx < K; kx++) {
            int iy = oy * c->stride - c->padding + ky, ix = ox * c->stride - c->padding + kx;
            gboolean inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
            patches[(size_t) ox * kk + ((size_t) i * K + ky) * K + kx] = inside ? x[((size_t) iy * w + ix) * nin + i] : 0.0f;
          }
    float *row = y + (size_t) oy * wo * nout;
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, wo, nout, kk, 1.0f, patches, kk, c->weight, kk, 0.0f, row,
                 nout);
    for (int ox = 0; c->bias && ox < wo; ox++)
      for (int o = 0; o < nout; o++) row[(size_t) ox * nout + o] += c->bias[o];
  }
}

void
vlm_blas_conv2d (VlmOpsBlas *b, const VlmConvW *c, const float *x, int h, int w, float *y, const float *residual)
{
  if (c->groups == 1)
    conv_dense (b, c, x, h, w, y);
  else
    conv_depthwise (c, x, h, w, y);
  size_t n = (size_t) vlm_conv_out_size (c, h) * vlm_conv_out_size (c, w) * c->out_channels;
  for (size_t i = 0; residual && i < n; i++) y[i] += residual[i];
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
