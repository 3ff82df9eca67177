/* probe.c — the engine's GEMV without a model (probe.h). */
#include "probe.h"

#include "ops.h"
#include "ops_dnnl.h"

struct VlmGemvProbe {
  VlmOps *ops;
  VlmLinearW *lins;
  float **src;    /* [n_copies] the f32 weights the linears read in place, or NULL */
  int n_copies;
  float *x, *y;
  double bytes;   /* one copy's */
};

static VlmDType
precision_dtype (VlmPrecision precision)
{
  return vlm_precision_dtype (VLM_BACKEND_ONEDNN, precision);
}

gboolean
vlm_precision_is_f32 (VlmPrecision precision)
{
  return precision_dtype (precision) == VLM_DTYPE_F32;
}

/* Values in [-1, 1): what they are does not change the time. */
static void
fill (float *v, size_t n, guint32 seed)
{
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = (float) (seed >> 8) / (float) (1 << 23) - 1.0f;
  }
}

VlmGemvProbe *
vlm_gemv_probe_new (VlmPrecision precision, int rows, int cols, int n_copies, int n_threads, GError **error)
{
  VlmOps *ops = vlm_ops_new (VLM_BACKEND_ONEDNN, n_threads, error);
  if (!ops)
    return NULL;
  VlmDType dt = precision_dtype (precision);
  size_t n = (size_t) rows * cols;
  VlmGemvProbe *p = g_new0 (VlmGemvProbe, 1);
  p->ops = ops;
  p->lins = g_new0 (VlmLinearW, n_copies);
  /* one f32 source per copy, kept: where the tier multiplies by HF's f32
   * rows (AVX2), the linear reads its source in place */
  p->src = g_new0 (float *, n_copies);
  /* random once, then copies (filling is slower than timing); from a
   * template: where the tier packs, copy 0's source is freed below */
  g_autofree float *tmpl = g_new (float, n);
  fill (tmpl, n, 1);
  for (int i = 0; i < n_copies; i++) {
    p->src[i] = g_memdup2 (tmpl, n * 4);
    VlmTensor wt = {p->src[i], VLM_DTYPE_F32, 2, {rows, cols}};
    p->n_copies = i + 1;
    if (!vlm_linear_init (&p->lins[i], "gemv", &wt, NULL, error) ||
        !vlm_linear_pack (&p->lins[i], &wt, dt, 1, error)) {
      vlm_gemv_probe_free (p);
      return NULL;
    }
    if (!vlm_dnnl_packed_reads_f32 (p->lins[i].packed))
      g_clear_pointer (&p->src[i], g_free);
  }
  p->x = g_new (float, cols);
  p->y = g_new (float, rows);
  fill (p->x, cols, 2);
  p->bytes = (double) n * (dt == VLM_DTYPE_F32 ? 4 : dt == VLM_DTYPE_I8 ? 1 : 2);
  vlm_ops_bind_thread (ops);
  return p;
}

void
vlm_gemv_probe_bind (VlmGemvProbe *p)
{
  vlm_ops_bind_thread (p->ops);
}

void
vlm_gemv_probe_run (VlmGemvProbe *p, int i)
{
  vlm_linear (p->ops, &p->lins[i % p->n_copies], p->x, 1, p->y, VLM_ACT_NONE, NULL);
}

double
vlm_gemv_probe_bytes (const VlmGemvProbe *p)
{
  return p->bytes;
}

void
vlm_gemv_probe_free (VlmGemvProbe *p)
{
  if (!p)
    return;
  for (int i = 0; i < p->n_copies; i++) {
    vlm_linear_clear (&p->lins[i]);
    g_free (p->src[i]);
  }
  g_free (p->src);
  vlm_ops_free (p->ops);
  g_free (p->lins);
  g_free (p->x);
  g_free (p->y);
  g_free (p);
}
