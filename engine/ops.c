/* ops.c — the public ops API: weight preparation, the VlmOps context, the
 * small kernels both backends share (RMSNorm, RoPE), and dispatch to
 * ops_dnnl.c / ops_blas.c / ops_attention.c. The top of the ops layer. */
#include "ops.h"

#include "cpu.h"
#include "ops_attention.h"
#include "ops_blas.h"
#include "ops_dnnl.h"
#include "ops_gemv.h"
#include "ops_scratch.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

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
    return g_strdup_printf ("linears and output heads: %s-bit weight rows, oneDNN u8·s8 matmuls (tower, prefill), the "
                            "engine's %s int8 GEMV (decode, %s); attention f32, decode attention the engine's %s kernel",
                            vlm_cpu_int8_weight_max () == 127 ? "8" : "7", tier,
                            vlm_cpu_native_bf16 () ? "vpdpbusd" : vlm_cpu_tier () >= VLM_CPU_AVX2 ? "vpmaddubsw" : "scalar",
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
  return g_strdup_printf ("linears: oneDNN f32 matmuls on packed weights (tower, prefill), the engine's %s GEMV "
                          "over the same blocks (decode); attention f32, decode attention the engine's %s kernel",
                          tier, tier);
}

struct VlmOps {
  VlmBackend backend;
  int n_threads;
  VlmOpsDnnl *dnnl;     /* oneDNN engine, stream, primitive cache; NULL for BLAS */
  VlmOpsBlas *blas;     /* the reference backend's state; NULL for oneDNN */
  VlmAttention *attn;   /* attention's scratch and dtype */
  VlmScratch hidden;    /* vlm_mlp's hidden activation (f32, or bf16 in its first half) */
  gboolean kv_bf16;     /* the model's weights are bf16: so are its KV caches */
};

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
  if (!ops->dnnl)
    ops->blas = vlm_blas_new ();
  ops->attn = vlm_attention_new ();
  return ops;
}

void
vlm_ops_free (VlmOps *ops)
{
  if (!ops)
    return;
  vlm_dnnl_free (ops->dnnl);
  vlm_blas_free (ops->blas);
  vlm_attention_free (ops->attn);
  vlm_scratch_clear (&ops->hidden);
  g_free (ops);
}

void
vlm_ops_set_attention_dtype (VlmOps *ops, VlmDType dtype)
{
  vlm_attention_set_bf16 (ops->attn, ops->dnnl && dtype == VLM_DTYPE_BF16 && vlm_cpu_native_bf16 ());
  ops->kv_bf16 = dtype == VLM_DTYPE_BF16;
}

gboolean
vlm_ops_kv_bf16 (const VlmOps *ops)
{
  return ops->kv_bf16;
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

int
vlm_ops_independent_rows (VlmDType dtype)
{
  return dtype == VLM_DTYPE_I8 ? VLM_GEMV_MAX_ROWS : 0;
}

/* ------------------------------------------------------------ dispatch */

/* oneDNN's primitives run on the cores others leave, as the engine's own
 * decode kernels do (cpu.c): beside a process that holds one of two cores,
 * a two-thread matmul waits at each barrier for the thread that shares that
 * core (GIT's caption capped to AVX2 on a Zen 5 VM, one core taken: 2.6×
 * quiet with two threads, 1.9× with one). Called before each oneDNN op; the
 * GEMV and the decode attention sample the load themselves. */
static inline void
dnnl_threads (const VlmOps *ops)
{
  omp_set_num_threads (vlm_cpu_threads_now (ops->n_threads));
}

void
vlm_linear (VlmOps *ops, const VlmLinearW *lin, const float *x, int m, float *y, VlmAct act,
            const float *residual)
{
  g_assert (x != y);
  if (ops->dnnl) {
    dnnl_threads (ops);
    vlm_dnnl_linear (ops->dnnl, lin, x, m, y, act, residual);
  } else
    vlm_blas_linear (ops->blas, lin, x, m, y, act, residual);
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
  if (ops->dnnl) {
    dnnl_threads (ops);
    vlm_dnnl_linear_multi (ops->dnnl, lins, acts, n, x, m, ys);
  } else
    for (int i = 0; i < n; i++)
      vlm_blas_linear (ops->blas, lins[i], x, m, ys[i], acts[i], NULL);
}

void
vlm_mlp (VlmOps *ops, const VlmLinearW *fc1, VlmAct act, const VlmLinearW *fc2, const float *x, int m,
         float *y, const float *residual)
{
  g_assert (fc2->k == fc1->n);
  float *hidden = vlm_scratch_get (&ops->hidden, (size_t) m * fc1->n);
  if (ops->dnnl) {
    dnnl_threads (ops);
    vlm_dnnl_mlp (ops->dnnl, fc1, act, fc2, x, m, hidden, y, residual);
    return;
  }
  vlm_blas_linear (ops->blas, fc1, x, m, hidden, act, NULL);
  vlm_blas_linear (ops->blas, fc2, hidden, m, y, VLM_ACT_NONE, residual);
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
  if (ops->dnnl && m > VLM_GEMV_MAX_ROWS) {
    dnnl_threads (ops);
    vlm_dnnl_layer_norm (ops->dnnl, x, m, n, gamma, beta, eps, y);
  } else
    vlm_blas_layer_norm (x, m, n, gamma, beta, eps, y);
}

void
vlm_act (VlmOps *ops, VlmAct act, float *x, size_t n)
{
  if (act == VLM_ACT_NONE || n == 0)
    return;
  if (ops->dnnl) {
    dnnl_threads (ops);
    vlm_dnnl_act (ops->dnnl, act, x, n);
  } else
    vlm_act_ref (act, x, n);
}

void
vlm_softmax (VlmOps *ops, float *x, int m, int n)
{
  if (ops->dnnl) {
    dnnl_threads (ops);
    vlm_dnnl_softmax (ops->dnnl, x, m, n, x, FALSE);
  } else
    vlm_blas_softmax (x, m, n);
}

void
vlm_conv2d (VlmOps *ops, const VlmConvW *conv, const float *x, int h, int w, float *y, const float *residual)
{
  g_assert (x != y && residual != y && (conv->groups == 1 ||
            (conv->groups == conv->in_channels && conv->groups == conv->out_channels)));
  if (ops->dnnl) {
    dnnl_threads (ops);
    vlm_dnnl_conv2d (ops->dnnl, conv, x, h, w, y, residual);
  } else
    vlm_blas_conv2d (ops->blas, conv, x, h, w, y, residual);
}

/* Tiles keep both sides' cache lines in use (a row-by-row loop wrote one
 * float per line of dst: DaViT's channel attention transposes [N, 3C]
 * blocks of 14 M floats at 768²). */
void
vlm_transpose (VlmOps *ops, const float *src, int rows, int cols, float *dst)
{
  enum { T = 32 };
  int tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
#pragma omp parallel for num_threads (ops->n_threads) schedule (static)
  for (int t = 0; t < tr * tc; t++) {
    int i0 = t / tc * T, j0 = t % tc * T;
    for (int i = i0; i < MIN (i0 + T, rows); i++)
      for (int j = j0; j < MIN (j0 + T, cols); j++) dst[(size_t) j * rows + i] = src[(size_t) i * cols + j];
  }
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

void
vlm_attention (VlmOps *ops, const float *q, int ldq, const float *k, int ldk, const float *v,
               int ldv, int lq, int lk, int n_heads, int n_kv_heads, int head_dim, float scale,
               const VlmMask *mask, float *out, int ldo)
{
  VlmAttnShape s = { lq, lk, n_heads, n_kv_heads, head_dim, ldq, ldk, ldv, ldo, scale, FALSE };
  vlm_attention_run (ops->attn, ops->dnnl, ops->n_threads, &s, q, k, v, mask, out);
}

void
vlm_attention_kt (VlmOps *ops, const float *q, int ldq, const float *kt, int ldkt, const float *v,
                  int ldv, int lq, int lk, int n_heads, int n_kv_heads, int head_dim, float scale,
                  const VlmMask *mask, float *out, int ldo)
{
  g_assert (ldkt >= lk);
  VlmAttnShape s = { lq, lk, n_heads, n_kv_heads, head_dim, ldq, ldkt, ldv, ldo, scale, TRUE };
  vlm_attention_run (ops->attn, ops->dnnl, ops->n_threads, &s, q, kt, v, mask, out);
}

void
vlm_attention_kt_bf16 (VlmOps *ops, const float *q, int ldq, const uint16_t *kt, int ldkt, const uint16_t *v,
                       int ldv, int lq, int lk, int n_heads, int n_kv_heads, int head_dim, float scale,
                       const VlmMask *mask, float *out, int ldo)
{
  g_assert (ldkt >= lk);
  VlmAttnShape s = { lq, lk, n_heads, n_kv_heads, head_dim, ldq, ldkt, ldv, ldo, scale, TRUE, FALSE, TRUE };
  vlm_attention_run (ops->attn, ops->dnnl, ops->n_threads, &s, q, kt, v, mask, out);
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
