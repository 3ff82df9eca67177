/* safetensors.h — zero-copy, validating reader for HF weight files.
 *
 * Opens `model.safetensors`, a sharded `model.safetensors.index.json`, or a
 * single file path. Files are mmapped read-only; tensors point into the map,
 * except those whose data are not aligned to their element size, which
 * point to an aligned copy: every tensor's data may be read as its type.
 * The header is validated before any tensor is exposed: JSON well-formed,
 * known dtype, offsets in range and ordered, shape × dtype size = byte size,
 * no two tensors overlapping. Failures are VLM_ERROR_BAD_HEADER / NOT_FOUND /
 * IO (also for a path that is not a regular file), or BAD_CONFIG for an
 * index that is not a JSON object, naming the file and the tensor. */
#ifndef VLM_SAFETENSORS_H
#define VLM_SAFETENSORS_H

#include "tensor.h"
#include "vlm/vlm.h"

typedef struct VlmSafetensors VlmSafetensors;

/* `path`: a directory (model.safetensors.index.json is preferred, then
 * model.safetensors, then pytorch_model.bin) or a .safetensors /
 * .index.json / .bin file. A .bin (PyTorch's zip + pickle) is read by
 * torchbin.c, which exposes its tensors here in the same way. */
VlmSafetensors *vlm_safetensors_open (const char *path, GError **error);
void vlm_safetensors_free (VlmSafetensors *st);

/* NULL when absent. The view lives as long as `st`. */
const VlmTensor *vlm_safetensors_find (const VlmSafetensors *st, const char *name);

/* Looks up `name` and checks its shape (ndim entries; -1 = any size in that
 * dimension). Error NOT_FOUND or BAD_SHAPE naming the tensor, got/expected. */
const VlmTensor *vlm_safetensors_get (const VlmSafetensors *st, const char *name, int ndim,
                                      const int64_t *shape, GError **error);

/* Number of tensors, and the i-th name (sorted order), for iteration. */
int vlm_safetensors_count (const VlmSafetensors *st);
const char *vlm_safetensors_name (const VlmSafetensors *st, int i);
/* The path of the file (or index) that was opened, for messages. */
const char *vlm_safetensors_path (const VlmSafetensors *st);

#endif
