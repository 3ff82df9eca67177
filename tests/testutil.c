/* testutil.c — fixture paths, golden tensors, parity figures. */
#include "testutil.h"

#include <math.h>

static const char *
project_root (void)
{
  const char *root = g_getenv ("VLM_PROJECT_ROOT");
  return root && *root ? root : ".";
}

char *
vt_project_path (const char *rel)
{
  g_autofree char *p = g_build_filename (project_root (), rel, NULL);
  return g_canonicalize_filename (p, NULL);
}

char *
vt_shared_path (const char *rel)
{
  g_autofree char *p = g_build_filename (project_root (), "..", "shared", rel, NULL);
  return g_canonicalize_filename (p, NULL);
}

VlmSafetensors *
vt_open_golden (const char *rel)
{
  g_autofree char *path = vt_shared_path (rel);
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (path, &error);
  if (!st)
    g_error ("cannot open golden %s: %s", path, error->message);
  return st;
}

static const VlmTensor *
must_find (const VlmSafetensors *st, const char *name)
{
  const VlmTensor *t = vlm_safetensors_find (st, name);
  if (!t)
    g_error ("%s: golden tensor '%s' missing", vlm_safetensors_path (st), name);
  return t;
}

float *
vt_tensor_f32 (const VlmSafetensors *st, const char *name, int64_t *n)
{
  const VlmTensor *t = must_find (st, name);
  int64_t numel = vlm_tensor_numel (t);
  float *out = g_new (float, numel);
  for (int64_t i = 0; i < numel; i++)
    switch (t->dtype) {
      case VLM_DTYPE_I64: out[i] = (float) ((const int64_t *) t->data)[i]; break;
      case VLM_DTYPE_U8: out[i] = ((const uint8_t *) t->data)[i]; break;
      default: vlm_tensor_to_f32 (t, out); i = numel; break;
    }
  if (n)
    *n = numel;
  return out;
}

int *
vt_tensor_int (const VlmSafetensors *st, const char *name, int64_t *n)
{
  const VlmTensor *t = must_find (st, name);
  int64_t numel = vlm_tensor_numel (t);
  g_assert_true (t->dtype == VLM_DTYPE_I64 || t->dtype == VLM_DTYPE_I32);
  int *out = g_new (int, numel);
  for (int64_t i = 0; i < numel; i++)
    out[i] = t->dtype == VLM_DTYPE_I64 ? (int) ((const int64_t *) t->data)[i] : ((const int32_t *) t->data)[i];
  if (n)
    *n = numel;
  return out;
}

double
vt_max_rel_range_diff (const float *a, const float *b, int64_t n)
{
  float lo = INFINITY, hi = -INFINITY;
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    lo = fminf (lo, b[i]);
    hi = fmaxf (hi, b[i]);
    double d = fabs ((double) a[i] - b[i]);
    if (!(d <= worst))   /* NaN counts as the worst */
      worst = isnan (d) ? INFINITY : d;
  }
  double range = hi > lo ? hi - lo : 1.0;
  return worst / range;
}

void
vt_assert_close (const char *what, const float *a, const float *b, int64_t n, double tol)
{
  double d = vt_max_rel_range_diff (a, b, n);
  g_test_message ("%s: max |diff| / range = %.3g over %lld values (tolerance %.1g)", what, d,
                  (long long) n, tol);
  g_assert_cmpfloat (d, <=, tol);
}

const VtBackend vt_backends[3] = {
  {VLM_BACKEND_ONEDNN, VLM_PRECISION_F32, "onednn", 1e-4},
  {VLM_BACKEND_BLAS, VLM_PRECISION_F32, "blas", 1e-4},
  {VLM_BACKEND_ONEDNN, VLM_PRECISION_BF16, "onednn-bf16", 2e-2},
};

VlmModel *
vt_load_model (const char *dir, const VtBackend *be)
{
  VlmModelParams p = vlm_model_default_params ();
  p.backend = be->backend;
  p.precision = be->precision;
  GError *error = NULL;
  VlmModel *m = vlm_model_load (dir, &p, &error);
  g_assert_no_error (error);
  return m;
}

VlmFrame *
vt_golden_frames (const VlmSafetensors *gold, int *n)
{
  const VlmTensor *t = must_find (gold, "frames_u8");
  int F = (int) t->shape[0], H = (int) t->shape[1], W = (int) t->shape[2];
  VlmFrame *frames = g_new0 (VlmFrame, F);
  for (int f = 0; f < F; f++)
    frames[f] = (VlmFrame) {.format = VLM_PIXEL_RGB, .width = W, .height = H,
                            .planes = {(const uint8_t *) t->data + (size_t) f * H * W * 3},
                            .strides = {W * 3}};
  *n = F;
  return frames;
}
