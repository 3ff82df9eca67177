/* fuzz_torchbin.c — pytorch_model.bin: the zip directory, zip64 records,
 * the pickle machine and the storages it names. */
#include "fuzz.h"
#include "safetensors.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (fuzz_write ("pytorch_model.bin", data, size), &error);
  if (!st) {
    g_error_free (error);
    return 0;
  }
  /* every tensor's bytes, read as its type */
  for (int i = 0; i < vlm_safetensors_count (st); i++) {
    const VlmTensor *t = vlm_safetensors_find (st, vlm_safetensors_name (st, i));
    int64_t n = vlm_tensor_numel (t);
    volatile double sum = 0;
    for (int64_t k = 0; k < n && k < 4096; k++)
      sum += t->dtype == VLM_DTYPE_F32 ? ((const float *) t->data)[k]
             : t->dtype == VLM_DTYPE_I64 ? (double) ((const int64_t *) t->data)[k]
             : vlm_dtype_size (t->dtype) == 2 ? ((const uint16_t *) t->data)[k]
             : ((const uint8_t *) t->data)[k];
  }
  vlm_safetensors_free (st);
  return 0;
}
