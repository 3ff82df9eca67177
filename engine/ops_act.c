/* ops_act.c — activation names and reference definitions (ops_act.h). */
#include "ops_act.h"

#include <math.h>

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
vlm_act_ref (VlmAct act, float *x, size_t n)
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
