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

const float *
vlm_weights_f32_squeezed (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  const VlmTensor *t = vlm_safetensors_find (w->st, name);
  int lead = t && t->ndim > ndim && t->ndim <= VLM_MAX_DIMS ? t->ndim - ndim : 0;
  int64_t full[VLM_MAX_DIMS];
  for (int i = 0; i < lead; i++)
    if (t->shape[i] != 1)
      lead = 0;   /* not squeezable: the check below names the shape */
  for (int i = 0; i < lead; i++)
    full[i] = 1;
  memcpy (full + lead, shape, ndim * sizeof (int64_t));
  return vlm_weights_f32 (w, error, ndim + lead, full, "%s", name);
}

/* [n, k] = columns [col0, col0 + n) of t [k, N], transposed, in t's dtype
 * (64-byte aligned: g_aligned_free). */
static void *
transposed_columns (const VlmTensor *t, int64_t col0, int n, int k)
{
  size_t es = vlm_dtype_size (t->dtype), N = t->shape[1];
  guint8 *dst = g_aligned_alloc ((size_t) n * k, es, 64);
  const guint8 *src = t->data;
  for (int r = 0; r < n; r++)
    for (int c = 0; c < k; c++)
      memcpy (dst + ((size_t) r * k + c) * es, src + ((size_t) c * N + col0 + r) * es, es);
  return dst;
}

gboolean
vlm_weights_linear_part (VlmWeights *w, VlmLinearW *lin, gboolean conv1d, gboolean has_bias, int part, int n_parts,
                         int n, int k, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  int64_t N = (int64_t) n_parts * n, ws[] = {conv1d ? k : N, conv1d ? N : k}, bs[] = {N};
  g_autofree char *wname = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bname = g_strconcat (prefix, ".bias", NULL);
  const VlmTensor *wt = vlm_safetensors_get (w->st, wname, 2, ws, error);
  const VlmTensor *bt = NULL;
  if (!wt || (has_bias && !(bt = vlm_safetensors_get (w->st, bname, 1, bs, error))))
    return FALSE;
  /* the part as a tensor [n, k] (+ bias [n]) of its own */
  VlmTensor wv = *wt, bv = bt ? *bt : (VlmTensor) {0};
  size_t es = vlm_dtype_size (wt->dtype);
  wv.shape[0] = n;
  wv.shape[1] = k;
  void *copy = conv1d ? transposed_columns (wt, (int64_t) part * n, n, k) : NULL;
  wv.data = copy ? copy : (const guint8 *) wt->data + (size_t) part * n * k * es;
  if (bt) {
    bv.data = (const guint8 *) bt->data + (size_t) part * n * vlm_dtype_size (bt->dtype);
    bv.shape[0] = n;
  }
  if (!vlm_linear_init (lin, wname, &wv, bt ? &bv : NULL, error)) {
    g_aligned_free (copy);
    return FALSE;
  }
  /* An f32 copy is the linear's weight itself: the linear owns it (packing
   * frees it where nothing reads f32 rows any more). Another dtype's is
   * read by packing, and may stay in use as rows: the weights keep it. */
  if (copy && !lin->owned_weight)
    lin->owned_weight = copy;
  else if (copy)
    g_ptr_array_add (w->owned_aligned, copy);
  /* output heads too: in int8 they are a quarter of f32's bytes, and most
   * of a small decoder's step (Qwen2-0.5B's is 136 of its 494 M) */
  VlmDType dtype = w->dtype;
  if (w->pack && !vlm_linear_pack (lin, &wv, dtype, w->rows > 0 ? w->rows : VLM_PACK_ROWS, error)) {
    g_prefix_error (error, "%s: ", wname);
    return FALSE;
  }
  return TRUE;
}

gboolean
vlm_weights_linear (VlmWeights *w, VlmLinearW *lin, gboolean has_bias, int n, int k, GError **error,
                    const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return vlm_weights_linear_part (w, lin, FALSE, has_bias, 0, 1, n, k, error, "%s", prefix);
}

void
vlm_weights_fused_part (const char *const *names, int n, int j, int *part, int *n_parts)
{
  *part = *n_parts = 0;
  for (int i = 0; i < n; i++)
    if (strcmp (names[i], names[j]) == 0) {
      *part += i < j;
      (*n_parts)++;
    }
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
  w->owned_aligned = g_ptr_array_new_with_free_func (g_aligned_free);
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
  if (w->owned_aligned)
    g_ptr_array_free (w->owned_aligned, TRUE);
  memset (w, 0, sizeof *w);
}
