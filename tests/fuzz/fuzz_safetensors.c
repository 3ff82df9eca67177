/* fuzz_safetensors.c — one .safetensors file: header, offsets, dtypes;
 * every tensor it hands out is read as its type. */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  fuzz_weights ("f.safetensors", data, size);
  return 0;
}
