/* ops.c — the public ops API: weight preparation, the VlmOps context, the
 * kernels both backends share (RMSNorm, the attention mask and the
 * attention pipeline), and dispatch to ops_dnnl.c / ops_blas.c. */
#include "ops_backend.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

/* ------------------------------------------------------------ activations */

static const struct {
  const char *name;
  VlmAct act;
} act_names[] = {
  { "gelu", VLM_ACT_GELU_ERF },
  { "gelu_python", VLM_ACT_GELU_ERF },
  { "gelu_pytorch_tanh", VLM_ACT_GELU_TANH },
  { "gelu_new", VLM_ACT_GELU_TANH },
  { "quick_gelu", VLM_ACT_QUICK_GELU },
  { "silu", VLM_ACT_SILU },
  { "swish", VLM_ACT_SILU },
  { "relu", VLM_ACT_RELU },
};

gboolean
vlm_act_from_name (const char *name, VlmAct *act)
{
  for (size_t i = 0; i < G_N_ELEMENTS (act_names); i++)
    if (g_strcmp0 (name, act_names[i].name) == 0) {
      *act = act_names[i].act;
      return TRUE;
    }
  return FALSE;
}

/* ------------------------------------------------------------ weights */

/* f32 data that is float-aligned is used in place (the mmap); anything
 * else is converted once into an owned buffer. */
static const float *
as_f32 (const VlmTensor *t, void **owned)
{
  if (t->dtype == VLM_DTYPE_F32 && (uintptr_t) t->data % sizeof (float) == 0)
    return t->data;
  float *buf = g_aligned_alloc (vlm_tensor_numel (t), sizeof (float), 64);
  vlm_tensor_to_f32 (t, buf);
  *owned = buf;
  return buf;
}

static gboolean
is_float_dtype (VlmDType dtype)
{
  return dtype == VLM_DTYPE_F32 || dtype == VLM_DTYPE_BF16 || dtype == VLM_DTYPE_F16;
}

gboolean
vlm_linear_init (VlmLinearW *lin, const char *name, const VlmTensor *weight,
                 const VlmTensor *bias, GError **error)
{
  char got[64];
  memset (lin, 0, sizeof *lin);
  if (weight->ndim != 2 || weight->shape[0] < 1 || weight->shape[1] < 1) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE,
                 "%s: weight has shape %s, expected 2-D [out_features, in_features]", name,
                 vlm_shape_str (weight->shape, weight->ndim, got, sizeof got));
    return FALSE;
  }
  int64_t n = weight->shape[0];
  if (bias && (bias->ndim != 1 || bias->shape[0] != n)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE,
                 "%s: bias has shape %s, expected [%" G_GINT64_FORMAT "]", name,
                 vlm_shape_str (bias->shape, bias->ndim, got, sizeof got), n);
    return FALSE;
  }
  for (const VlmTensor *t = weight; t; t = t == weight ? bias : NULL)
    if (!is_float_dtype (t->dtype)) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE,
                   "%s: %s has dtype %s, expected F32, BF16 or F16", name,
                   t == weight ? "weight" : "bias", vlm_dtype_name (t->dtype));
      return FALSE;
    }
  lin->n = (int) n;
  lin->k = (int) weight->shape[1];
  lin->weight = as_f32 (weight, &lin->owned_weight);
  lin->bias = bias ? as_f32 (bias, &lin->owned_bias) : NULL;
  return TRUE;
}

void
vlm_linear_clear (VlmLinearW *lin)
{
  g_aligned_free (lin->owned_weight);
  g_aligned_free (lin->owned_bias);
  vlm_dnnl_packed_free (lin->packed);
  memset (lin, 0, sizeof *lin);
}

VlmDType
vlm_precision_dtype (VlmBackend backend, VlmPrecision precision)
{
  if (backend != VLM_BACKEND_ONEDNN || precision == VLM_PRECISION_F32)
    return VLM_DTYPE_F32;
  if (precision == VLM_PRECISION_BF16)
    return VLM_DTYPE_BF16;
  if (precision == VLM_PRECISION_INT8)
    return VLM_DTYPE_I8;
  return vlm_dnnl_has_native_bf16 () ? VLM_DTYPE_BF16 : VLM_DTYPE_F32;
}

gboolean
vlm_linear_pack (VlmLinearW *lin, const VlmTensor *weight, VlmDType dtype, int rows, GError **error)
{
  g_return_val_if_fail (!lin->packed && (dtype == VLM_DTYPE_F32 || dtype == VLM_DTYPE_BF16 || dtype == VLM_DTYPE_I8),
                        FALSE);
  if (!(lin->packed = vlm_dnnl_pack (lin, weight, dtype, rows, error)))
    return FALSE;
  if (lin->owned_weight && !vlm_dnnl_packed_reads_f32 (lin->packed)) {
    g_aligned_free (lin->owned_weight);
    lin->owned_weight = NULL;
    lin->weight = NULL;
  }
  return TRUE;
}

/* ------------------------------------------------------------ context */

char *
vlm_ops_describe (VlmBackend backend, VlmDType dtype)
{
  const char *tier = vlm_cpu_tier_name (MIN (vlm_cpu_tier (), VLM_CPU_AVX512));
  if (backend != VLM_BACKEND_ONEDNN)
    return g_strdup ("OpenBLAS sgemm and plain loops, f32");
  gboolean native = vlm_cpu_native_bf16 ();
  if (dtype == VLM_DTYPE_I8)
    return g_strdup_printf ("linears: oneDNN u8·s8 matmuls (%s-bit weights); output heads as auto; attention f32, "
                            "decode attention the engine's %s kernel", vlm_cpu_int8_weight_max () == 127 ? "8" : "7",
                            tier);
  if (dtype == VLM_DTYPE_BF16 && native)
    return g_strdup_printf ("linears: oneDNN bf16 matmuls (tower, prefill), the engine's avx512-bf16 GEMV (decode); "
                            "attention bf16 (tower, prefill), decode attention the engine's %s kernel", tier);
  if (dtype == VLM_DTYPE_BF16)
    return g_strdup_printf ("linears: bf16 rows widened to f32 for oneDNN f32 matmuls (tower, prefill), the engine's %s "
                            "GEMV over bf16 rows (decode); attention f32, decode attention the engine's %s kernel",
                            tier, tier);
  if (vlm_cpu_tier () <= VLM_CPU_AVX2)
    return g_strdup_printf ("linears: oneDNN f32 matmuls over HF's rows (tower, prefill), the engine's %s GEMV "
                            "(decode); attention f32, decode attention the engine's %s kernel", tier, tier);
  return g_strdup_printf ("linears: oneDNN f32 matmuls on packed weights; attention f32, decode attention the "
                          "engine's %s kernel", tier);
}

const VlmKernels *
vlm_kernels (void)
{
  VlmCpuTier t = vlm_cpu_tier ();
  return t >= VLM_CPU_AVX512 ? &vlm_kernels_avx512 : t == VLM_CPU_AVX2 ? &vlm_kernels_avx2 : &vlm_kernels_generic;
}

float *
vlm_scratch_get (VlmScratch *s, size_t n)
{
  if (n > s->cap) {
    /* by half again at least: decode asks for one more key per token */
    s->cap = MAX (n, s->cap + s->cap / 2);
    g_aligned_free (s->data);
    s->data = g_aligned_alloc (s->cap, sizeof (float), 64);
  }
  return s->data;
}

void
vlm_scratch_clear (VlmScratch *s)
{
  g_aligned_free (s->data);
  s->data = NULL;
  s->cap = 0;
}

VlmOps *
vlm_ops_new (VlmBackend backend, int n_threads, GError **error)
{
  VlmOps *ops = g_new0 (VlmOps, 1);
  ops->backend = backend;
  ops->n_threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  if (backend == VLM_BACKEND_ONEDNN && !(ops->dnnl = vlm_dnnl_new (error))) {
    g_free (ops);
    return NULL;
  }
  return ops;
}

void
vlm_ops_free (VlmOps *ops)
{
  if (!ops)
    return;
  vlm_dnnl_free (ops->dnnl);
  vlm_scratch_clear (&ops->scores);
  vlm_scratch_clear (&ops->staging);
  vlm_scratch_clear (&ops->attn_in);
  vlm_scratch_clear (&ops->hidden);
  g_free (ops);
}

void
vlm_ops_set_attention_dtype (VlmOps *ops, VlmDType dtype)
{
  ops->attn_bf16 = ops->dnnl && dtype == VLM_DTYPE_BF16 && vlm_cpu_native_bf16 ();
}

gboolean
vlm_ops_take_error (VlmOps *ops, GError **error)
{
  return !ops->dnnl || vlm_dnnl_take_error (ops->dnnl, error);
}

VlmBackend
vlm_ops_backend (const VlmOps *ops)
{
  return ops->backend;
}

void
vlm_ops_bind_thread (VlmOps *ops)
{
  omp_set_num_threads (ops->n_threads);
  /* With oneDNN, BLAS only runs the small decode attention: a one-thread
   * pool keeps OpenBLAS's spinning workers from fighting OpenMP's for the
   * same cores (measured: 1×32×32 matmuls taking 20 ms instead of 20 µs). */
  openblas_set_num_threads (ops->dnnl ? 1 : ops->n_threads);
}

int
vlm_ops_n_primitives (const VlmOps *ops)
{
  return ops->dnnl ? vlm_dnnl_n_primitives (ops->dnnl) : 0;
}

/* ------------------------------------------------------------ dispatch */

void
vlm_linear (VlmOps *ops, const VlmLinearW *lin, const float *x, int m, float *y, VlmAct act,
            const float *residual)
{
  g_assert (x != y);
  if (ops->dnnl)
    vlm_dnnl_linear (ops->dnnl, lin, x, m, y, act, residual);
  else
    vlm_blas_linear (ops, lin, x, m, y, act, residual);
}

void
vlm_linear_multi (VlmOps *ops, const VlmLinearW *const *lins, const VlmAct *acts, int n, const float *x,
                  int m, float *const *ys)
{
  VlmAct none[VLM_GEMV_MAX_OUTS] = { VLM_ACT_NONE };
  g_assert (acts || n <= VLM_GEMV_MAX_OUTS);
  acts = acts ? acts : none;
  for (int i = 0; i < n; i++)
    g_assert (lins[i]->k == lins[0]->k && ys[i] != x);
  if (ops->dnnl)
    vlm_dnnl_linear_multi (ops->dnnl, lins, acts, n, x, m, ys);
  else
    for (int i = 0; i < n; i++)
      vlm_blas_linear (ops, lins[i], x, m, ys[i], acts[i], NULL);
}

void
vlm_mlp (VlmOps *ops, const VlmLinearW *fc1, VlmAct act, const VlmLinearW *fc2, const float *x, int m,
         float *y, const float *residual)
{
  g_assert (fc2->k == fc1->n);
  float *hidden = vlm_scratch_get (&ops->hidden, (size_t) m * fc1->n);
  if (ops->dnnl) {
    vlm_dnnl_mlp (ops->dnnl, fc1, act, fc2, x, m, hidden, y, residual);
    return;
  }
  vlm_blas_linear (ops, fc1, x, m, hidden, act, NULL);
  vlm_blas_linear (ops, fc2, hidden, m, y, VLM_ACT_NONE, residual);
}

void
vlm_layer_norm (VlmOps *ops, const float *x, int m, int n, const float *gamma,
                const float *beta, float eps, float *y)
{
  /* Decode's few rows on this thread: a oneDNN layer norm of one row wakes
   * every OpenMP worker, which then spins (libgomp's default, ~300k pause
   * instructions) into the next op; beside another process that holds a
   * core, the spinning workers took the cores decode needed (GIT under the
   * AVX2 cap, one core taken: 64 ms a token with oneDNN's, see cpu.c). */
  if (ops->dnnl && m > VLM_GEMV_MAX_ROWS)
    vlm_dnnl_layer_norm (ops->dnnl, x, m, n, gamma, beta, eps, y);
  else
    vlm_blas_layer_norm (x, m, n, gamma, beta, eps, y);
}

void
vlm_act (VlmOps *ops, VlmAct act, float *x, size_t n)
{
  if (act == VLM_ACT_NONE || n == 0)
    return;
  if (ops->dnnl)
    vlm_dnnl_act (ops->dnnl, act, x, n);
  else
    vlm_blas_act (act, x, n);
}

void
vlm_softmax (VlmOps *ops, float *x, int m, int n)
{
  if (ops->dnnl)
    vlm_dnnl_softmax (ops->dnnl, x, m, n, x, FALSE);
  else
    vlm_blas_softmax (x, m, n);
}

/* ------------------------------------------------------------ RMSNorm */

/* Both backends (oneDNN has no RMSNorm). As LlamaRMSNorm:
 * variance = x.pow(2).mean(-1); x = x * rsqrt(variance + eps); weight * x
 * with the sum of squares accumulated in f32. */
void
vlm_rms_norm (VlmOps *ops, const float *x, int m, int n, const float *weight, float eps,
              float *y)
{
  for (int i = 0; i < m; i++) {
    const float *xr = x + (size_t) i * n;
    float *yr = y + (size_t) i * n;
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += xr[j] * xr[j];
    float r = 1.0f / sqrtf (ss / n + eps);
    for (int j = 0; j < n; j++) yr[j] = weight[j] * (xr[j] * r);
  }
}

/* ------------------------------------------------------------ attention */

/* Sets the scores of keys a query must not see to -inf (see VlmMask): for
 * query row i, keys from max(prefix, q_pos0 + i + 1) on. softmax turns
 * them into exact zeros, as HF's finfo.min additive mask does. */
static void
apply_mask (float *scores, int n_heads, int lq, int lk, const VlmMask *mask)
{
  if (!mask || !mask->causal)
    return;
  for (int h = 0; h < n_heads; h++)
    for (int i = 0; i < lq; i++) {
      float *row = scores + ((size_t) h * lq + i) * lk;
      for (int j = MAX (mask->prefix, mask->q_pos0 + i + 1); j < lk; j++) row[j] = -INFINITY;
    }
}

#define ATTN_BLOCK_BYTES (4u << 20)

/* Query row r of kv head g is (i = r / group, head g · group + r % group).
 * Work items are (kv head, block of rows), the blocks sized so that there
 * are items for every thread where the rows allow it; each item does its
 * rows from scores to context, so there is no barrier between stages. */
static void
decode_attention_kt (VlmOps *ops, const VlmAttnShape *s, const float *q, const float *kt, const float *v,
                     const VlmMask *mask, float *scores, float *out)
{
  int group = s->n_heads / s->n_kv_heads, hd = s->head_dim, nq = group * s->lq;
  int nt = vlm_cpu_threads_now (ops->n_threads);   /* the cores others leave */
  int per_head = (nt + s->n_kv_heads - 1) / s->n_kv_heads;
  int R = CLAMP ((nq + per_head - 1) / per_head, 1, VLM_DECODE_MAX_ROWS);
  int n_blocks = (nq + R - 1) / R;
  const VlmKernels *kernels = vlm_kernels ();
#pragma omp parallel for num_threads (nt) schedule (dynamic, 1)
  for (int item = 0; item < s->n_kv_heads * n_blocks; item++) {
    int g = item / n_blocks, r0 = (item % n_blocks) * R, n = MIN (R, nq - r0);
    const float *qr[VLM_DECODE_MAX_ROWS];
    float *sr[VLM_DECODE_MAX_ROWS], *or[VLM_DECODE_MAX_ROWS];
    int lim[VLM_DECODE_MAX_ROWS];
    for (int t = 0; t < n; t++) {
      int i = (r0 + t) / group, h = g * group + (r0 + t) % group;
      qr[t] = q + (size_t) i * s->ldq + (size_t) h * hd;
      sr[t] = scores + ((size_t) h * s->lq + i) * s->lk;
      or[t] = out + (size_t) i * s->ldo + (size_t) h * hd;
      lim[t] = mask && mask->causal ? MIN (s->lk, MAX (mask->prefix, mask->q_pos0 + i + 1)) : s->lk;
    }
    kernels->attend_rows (qr, n, lim, kt + (size_t) g * hd * s->ldk, s->ldk, v + (size_t) g * hd, s->ldv, hd,
                 s->scale, sr, or);
  }
}

/* softmax(q kᵀ · scale + mask) v over all heads, through a scores buffer
 * [n_heads, lq, lk] owned by `ops` (grown on the first larger shape). */
static void
attention (VlmOps *ops, const VlmAttnShape *s, const float *q, const float *k, const float *v,
           const VlmMask *mask, float *out)
{
  g_assert (s->n_kv_heads > 0 && s->n_heads % s->n_kv_heads == 0);
  int lq = s->lq, lk = s->lk, n_heads = s->n_heads;
  /* oneDNN's full-length queries go in blocks of `rows` (below) */
  int rows = lq;
  if (ops->dnnl && lq > VLM_DECODE_MAX_ROWS)
    rows = MIN (lq, MAX (16, (int) (ATTN_BLOCK_BYTES / ((size_t) n_heads * lk * sizeof (float))) / 16 * 16));
  float *scores = vlm_scratch_get (&ops->scores, (size_t) n_heads * rows * lk);

  /* Decode-sized queries do not go to oneDNN: their key length grows by
   * one each token, so oneDNN would JIT new primitives every step
   * (measured: ~1 s of the first caption), and the work is memory-bound.
   * Transposed keys with head_dim % 16 == 0 take the kernel above; others
   * spread the heads over the cores, one single-threaded sgemm each (under
   * oneDNN, OpenBLAS runs one thread: see vlm_ops_bind_thread). */
  if (ops->dnnl && lq <= VLM_DECODE_MAX_ROWS && s->k_t && s->head_dim % 16 == 0) {
    decode_attention_kt (ops, s, q, k, v, mask, scores, out);
    return;
  }
  if (ops->dnnl && lq <= VLM_DECODE_MAX_ROWS) {
#pragma omp parallel for num_threads (ops->n_threads) schedule (static)
    for (int h = 0; h < n_heads; h++) {
      float *sh = scores + (size_t) h * lq * lk;
      vlm_blas_attn_scores (s, h, h + 1, q, k, scores);
      apply_mask (sh, 1, lq, lk, mask);
      vlm_blas_softmax (sh, lq, lk);
      vlm_blas_attn_context (s, h, h + 1, scores, v, out);
    }
    return;
  }
  if (!ops->dnnl) {
    vlm_blas_attn_scores (s, 0, n_heads, q, k, scores);
    apply_mask (scores, n_heads, lq, lk, mask);
    vlm_blas_softmax (scores, n_heads * lq, lk);
    vlm_blas_attn_context (s, 0, n_heads, scores, v, out);
    return;
  }
  /* oneDNN: blocks of query rows whose scores (all heads) fit in about
   * ATTN_BLOCK_BYTES, so that scores, mask, softmax and context pass over
   * data in cache; one block of all the scores streamed them through DRAM
   * four times (GIT's 1182 visual rows: 67 MB a layer, the attention at
   * 190 GFLOP/s). In bf16, q, k and v are converted once (k and v for all
   * blocks) and the softmax writes bf16 probabilities: both matmuls then
   * run at 1.4–1.9 times their f32 speed (GIT's and ViT's shapes). */
  VlmAttnShape b = *s;
  const void *kx = k, *vx = v;
  uint16_t *q16 = NULL;
  void *probs = scores;   /* the softmax's output, in place unless bf16 */
  if (ops->attn_bf16) {
    int kvw = s->n_kv_heads * s->head_dim, qw = n_heads * s->head_dim;
    /* each part rounded up to 32 halves (64 bytes) */
    size_t nk = ((size_t) lk * kvw + 31) & ~(size_t) 31, nq = ((size_t) rows * qw + 31) & ~(size_t) 31;
    uint16_t *k16 = (uint16_t *) vlm_scratch_get (&ops->attn_in, (2 * nk + nq + (size_t) n_heads * rows * lk + 1) / 2);
    uint16_t *v16 = k16 + nk;
    q16 = v16 + nk;
    probs = q16 + nq;
    if (s->k_t)   /* [kv_heads·head_dim rows][lk], dense */
      vlm_dnnl_to_bf16 (ops->dnnl, k, kvw, lk, s->ldk, k16);
    else
      vlm_dnnl_to_bf16 (ops->dnnl, k, lk, kvw, s->ldk, k16);
    vlm_dnnl_to_bf16 (ops->dnnl, v, lk, kvw, s->ldv, v16);
    kx = k16;
    vx = v16;
    b.bf16 = TRUE;
    b.ldk = s->k_t ? lk : kvw;
    b.ldv = kvw;
    b.ldq = qw;
  }
  for (int i0 = 0; i0 < lq; i0 += rows) {
    b.lq = MIN (rows, lq - i0);
    VlmMask bm = mask ? *mask : (VlmMask) { FALSE, 0, 0 };
    bm.q_pos0 += i0;
    const void *qx = q + (size_t) i0 * s->ldq;
    if (b.bf16) {
      vlm_dnnl_to_bf16 (ops->dnnl, qx, b.lq, b.ldq, s->ldq, q16);
      qx = q16;
    }
    vlm_dnnl_attn_scores (ops->dnnl, &b, qx, kx, scores);
    apply_mask (scores, n_heads, b.lq, lk, &bm);
    vlm_dnnl_softmax (ops->dnnl, scores, n_heads * b.lq, lk, probs, b.bf16);
    vlm_dnnl_attn_context (ops->dnnl, &b, probs, vx, out + (size_t) i0 * s->ldo);
  }
}

void
vlm_attention (VlmOps *ops, const float *q, int ldq, const float *k, int ldk, const float *v,
               int ldv, int lq, int lk, int n_heads, int n_kv_heads, int head_dim, float scale,
               const VlmMask *mask, float *out, int ldo)
{
  VlmAttnShape s = { lq, lk, n_heads, n_kv_heads, head_dim, ldq, ldk, ldv, ldo, scale, FALSE };
  attention (ops, &s, q, k, v, mask, out);
}

void
vlm_attention_kt (VlmOps *ops, const float *q, int ldq, const float *kt, int ldkt, const float *v,
                  int ldv, int lq, int lk, int n_heads, int n_kv_heads, int head_dim, float scale,
                  const VlmMask *mask, float *out, int ldo)
{
  g_assert (ldkt >= lk);
  VlmAttnShape s = { lq, lk, n_heads, n_kv_heads, head_dim, ldq, ldkt, ldv, ldo, scale, TRUE };
  attention (ops, &s, q, kt, v, mask, out);
}

/* ------------------------------------------------------------ rotary embedding */

/* x·cos + rotate_half(x)·sin with rotate_half(x) = [-x2, x1]: both backends
 * (a few flops per value, not worth a primitive). */
void
vlm_rope (VlmOps *ops, float *x, int ld, int rows, int n_heads, int head_dim, const float *cos,
          const float *sin)
{
  int half = head_dim / 2;
  for (int i = 0; i < rows; i++) {
    const float *c = cos + (size_t) i * half, *s = sin + (size_t) i * half;
    for (int h = 0; h < n_heads; h++) {
      float *x1 = x + (size_t) i * ld + (size_t) h * head_dim, *x2 = x1 + half;
      for (int j = 0; j < half; j++) {
        float a = x1[j], b = x2[j];
        x1[j] = a * c[j] - b * s[j];
        x2[j] = b * c[j] + a * s[j];
      }
    }
  }
}
