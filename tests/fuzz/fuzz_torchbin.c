/* fuzz_torchbin.c — pytorch_model.bin: the zip directory, zip64 records,
 * the pickle machine and the storages it names; every tensor read as its
 * type. */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  fuzz_weights ("pytorch_model.bin", data, size);
  return 0;
}
