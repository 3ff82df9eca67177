/* torchbin.h — PyTorch checkpoints (`pytorch_model.bin`, torch.save's zip
 * format) read without executing anything.
 *
 * The zip must hold its entries stored (torch.save never compresses), the
 * pickle may use only the opcodes and globals a plain state dict needs
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
 * _rebuild_parameter, the torch.*Storage types), and every tensor must be a
 * dense row-major view of its storage. Storages are mapped from the zip,
 * never copied. Internal to the engine: vlm_safetensors_open calls it, and
 * it knows nothing of its caller's container. */
#ifndef VLM_TORCHBIN_H
#define VLM_TORCHBIN_H

#include "tensor.h"
#include "vlm/vlm.h"

/* Takes one tensor of the state dict, named as saved; FALSE + error to stop. */
typedef gboolean (*VlmTorchbinAddFunc) (void *user_data, const char *name, const VlmTensor *tensor,
                                        GError **error);

/* Maps `file` and hands each tensor of its state dict to `add`, in the
 * pickle's order; the tensors point into the map returned, which the
 * caller keeps while they are read (g_mapped_file_unref). NULL on a
 * failure of `add` or: NOT_FOUND / IO for the file, BAD_HEADER naming
 * `file` for a truncated or malformed zip or pickle, a refused global
 * (named, e.g. "os.system") or opcode, or a tensor outside its storage. */
GMappedFile *vlm_torchbin_load (const char *file, VlmTorchbinAddFunc add, void *user_data, GError **error);

#endif
