/* weights.c — tensors by HF name, f32 copies, linears packed for the
 * backend (weights.h). */
#include "weights.h"

#include <stdarg.h>

static const VlmTensor *
weights_vtensor (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, va_list ap)
{
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  const VlmTensor *t = vlm_safetensors_get (w->st, name, ndim, shape, error);
  if (t && t->dtype != VLM_DTYPE_F32 && t->dtype != VLM_DTYPE_BF16 && t->dtype != VLM_DTYPE_F16) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE, "%s: tensor '%s' has dtype %s, expected a float type",
                 vlm_safetensors_path (w->st), name, vlm_dtype_name (t->dtype));
    return NULL;
  }
  return t;
}

const VlmTensor *
vlm_weights_tensor (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  const VlmTensor *t = weights_vtensor (w, error, ndim, shape, fmt, ap);
  va_end (ap);
  return t;
}

const float *
vlm_weights_f32 (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  const VlmTensor *t = weights_vtensor (w, error, ndim, shape, fmt, ap);
  va_end (ap);
  if (!t || t->dtype == VLM_DTYPE_F32)
    return t ? t->data : NULL;
  float *f = g_new (float, vlm_tensor_numel (t));
  vlm_tensor_to_f32 (t, f);
  g_ptr_array_add (w->owned, f);
  return f;
}

gboolean
vlm_weights_linear (VlmWeights *w, VlmLinearW *lin, gboolean has_bias, int n, int k, GError **error,
                    const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  int64_t ws[] = {n, k}, bs[] = {n};
  g_autofree char *wname = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bname = g_strconcat (prefix, ".bias", NULL);
  const VlmTensor *wt = vlm_safetensors_get (w->st, wname, 2, ws, error);
  const VlmTensor *bt = NULL;
  if (!wt || (has_bias && !(bt = vlm_safetensors_get (w->st, bname, 1, bs, error))) ||
      !vlm_linear_init (lin, wname, wt, bt, error))
    return FALSE;
  /* output heads too: in int8 they are a quarter of f32's bytes, and most
   * of a small decoder's step (Qwen2-0.5B's is 136 of its 494 M) */
  if (w->pack && !vlm_linear_pack (lin, wt, w->dtype, w->rows > 0 ? w->rows : VLM_PACK_ROWS, error)) {
    g_prefix_error (error, "%s: ", wname);
    return FALSE;
  }
  return TRUE;
}

gboolean
vlm_weights_check_count (VlmWeights *w, int n, const char *what, GError **error)
{
  int held = vlm_safetensors_count (w->st);
  if (n <= held)
    return TRUE;
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "config.json: %s is %d, but the checkpoint %s holds only %d tensors",
               what, n, vlm_safetensors_path (w->st), held);
  return FALSE;
}

gboolean
vlm_weights_has (VlmWeights *w, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return vlm_safetensors_find (w->st, name) != NULL;
}

gboolean
vlm_weights_open (VlmWeights *w, const char *dir, VlmBackend backend, VlmPrecision precision, GError **error)
{
  memset (w, 0, sizeof *w);
  if (!(w->st = vlm_safetensors_open (dir, error)))
    return FALSE;
  w->owned = g_ptr_array_new_with_free_func (g_free);
  w->pack = backend == VLM_BACKEND_ONEDNN;
  w->dtype = vlm_precision_dtype (backend, precision);
  return TRUE;
}

void
vlm_weights_clear (VlmWeights *w)
{
  vlm_safetensors_free (w->st);
  if (w->owned)
    g_ptr_array_free (w->owned, TRUE);
  memset (w, 0, sizeof *w);
}
