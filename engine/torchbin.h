/* torchbin.h — PyTorch checkpoints (`pytorch_model.bin`, torch.save's zip
 * format) read without executing anything.
 *
 * The zip must hold its entries stored (torch.save never compresses), the
 * pickle may use only the opcodes and globals a plain state dict needs
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
 * _rebuild_parameter, the torch.*Storage types), and every tensor must be a
 * dense row-major view of its storage. Storages are mapped from the zip,
 * never copied. Internal to the engine: vlm_safetensors_open calls it. */
#ifndef VLM_TORCHBIN_H
#define VLM_TORCHBIN_H

#include "safetensors.h"

/* Adds the state dict of `file` to `st`. Errors: NOT_FOUND / IO for the
 * file, BAD_HEADER naming `file` for a truncated or malformed zip or pickle,
 * a refused global (named, e.g. "os.system") or opcode, or a tensor outside
 * its storage. */
gboolean vlm_torchbin_load (VlmSafetensors *st, const char *file, GError **error);

#endif
