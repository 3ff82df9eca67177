/* weights.h — a model's weights as its parts load them: the checkpoint
 * (safetensors.h), tensors looked up by printf-style HF names and
 * shape-checked, f32 copies of bf16/f16 tensors owned here, and linears
 * prepared (packed) for the model's backend and precision. Below every
 * part: it knows no architecture. */
#ifndef VLM_WEIGHTS_H
#define VLM_WEIGHTS_H

#include "ops.h"
#include "safetensors.h"

/* The checkpoint plus the f32 copies made of bf16/f16 tensors, and how
 * linears are prepared for the model's backend and precision. */
typedef struct {
  VlmSafetensors *st;
  GPtrArray *owned;   /* conversion buffers */
  GPtrArray *owned_aligned;   /* transposed Conv1D weights (g_aligned_free) */
  gboolean pack;      /* oneDNN: linears are packed (vlm_linear_pack) ... */
  VlmDType dtype;     /* ... in this dtype (F32, BF16 or I8; output heads too) ... */
  int rows;           /* ... for about this many input rows (0: VLM_PACK_ROWS) */
} VlmWeights;

/* Input rows a linear's layout is chosen for unless a loader knows better:
 * towers and prefill run hundreds of rows, and the layout oneDNN picks for
 * 256 is within 2 % of the one it picks for 1182 (git-base's 6 frames),
 * and as fast as any for decode's single row. Output heads, which only
 * ever see a few rows, set rows to 1. */
#define VLM_PACK_ROWS 256

/* Tensor named by printf-style `fmt`, shape-checked (-1 = any), as f32
 * (zero-copy when stored as f32). NULL + error naming it otherwise. */
const float *vlm_weights_f32 (VlmWeights *w, GError **error, int ndim, const int64_t *shape,
                              const char *fmt, ...) G_GNUC_PRINTF (5, 6);
/* The same as stored (F32, BF16 or F16), without conversion. */
const VlmTensor *vlm_weights_tensor (VlmWeights *w, GError **error, int ndim, const int64_t *shape,
                                     const char *fmt, ...) G_GNUC_PRINTF (5, 6);
/* The same, also accepting the shape with leading dimensions of 1 (HF
 * keeps nn.Parameter embeddings as [1, T, D] where nn.Embedding has [T, D]). */
const float *vlm_weights_f32_squeezed (VlmWeights *w, GError **error, int ndim, const int64_t *shape,
                                       const char *fmt, ...) G_GNUC_PRINTF (5, 6);
/* Linear `PREFIX.weight` [n, k] (+ `PREFIX.bias` [n] if has_bias). */
gboolean vlm_weights_linear (VlmWeights *w, VlmLinearW *lin, gboolean has_bias, int n, int k,
                             GError **error, const char *fmt, ...) G_GNUC_PRINTF (7, 8);
/* Part `part` of `n_parts` equal parts (by output feature) of a fused
 * linear `PREFIX.weight` (+ `PREFIX.bias` [n_parts · n]): HF's nn.Linear
 * [n_parts · n, k] gives a row range (no copy); with conv1d, GPT-2's Conv1D
 * [k, n_parts · n] (stored in × out) gives a column range, transposed into
 * a copy the weights own. Error naming the tensor otherwise. */
gboolean vlm_weights_linear_part (VlmWeights *w, VlmLinearW *lin, gboolean conv1d, gboolean has_bias, int part,
                                  int n_parts, int n, int k, GError **error, const char *fmt, ...)
    G_GNUC_PRINTF (10, 11);
/* Name maps spell a fused projection by giving its parts one name: the
 * j-th of `n` names is part *part of *n_parts equal parts of the tensor it
 * names (parts in name order), for vlm_weights_linear_part. */
void vlm_weights_fused_part (const char *const *names, int n, int j, int *part, int *n_parts);
/* Whether `n` things of `what` (layers, frame embeddings), each with at
 * least one tensor of its own, can be in the checkpoint: a count from
 * config.json is bounded by it before arrays of that length are made.
 * BAD_CONFIG naming `what` otherwise. */
gboolean vlm_weights_check_count (VlmWeights *w, int n, const char *what, GError **error);
/* TRUE if the tensor named by `fmt` exists. */
gboolean vlm_weights_has (VlmWeights *w, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Opens the checkpoint in `dir` (vlm_safetensors_open) for linears of
 * `backend` in `precision`. FALSE + its error otherwise; *w is then
 * cleared. */
gboolean vlm_weights_open (VlmWeights *w, const char *dir, VlmBackend backend, VlmPrecision precision,
                           GError **error);
/* Frees the copies and closes the checkpoint; *w may be zeroed. */
void vlm_weights_clear (VlmWeights *w);

#endif
