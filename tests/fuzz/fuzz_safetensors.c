/* fuzz_safetensors.c — one .safetensors file: header, offsets, dtypes;
 * every tensor it hands out is read whole as its type. */
#include "fuzz.h"
#include "safetensors.h"

static float scratch[1 << 16];

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (fuzz_write ("f.safetensors", data, size), &error);
  if (!st) {
    g_error_free (error);
    return 0;
  }
  for (int i = 0; i < vlm_safetensors_count (st); i++) {
    const VlmTensor *t = vlm_safetensors_find (st, vlm_safetensors_name (st, i));
    int64_t n = vlm_tensor_numel (t);
    if ((t->dtype == VLM_DTYPE_F32 || t->dtype == VLM_DTYPE_BF16 || t->dtype == VLM_DTYPE_F16) &&
        n <= (int64_t) G_N_ELEMENTS (scratch))
      vlm_tensor_to_f32 (t, scratch);
  }
  vlm_safetensors_free (st);
  return 0;
}
