/* model.h — how an architecture plugs into the engine.
 *
 * A model is assembled from config.json: an architecture entry (VlmArch)
 * loads its parts (tower, projector, decoder) from the checkpoint and
 * provides per-session run state that encodes a clip, prefills a prompt and
 * then serves the shared generation loop as a VlmDecoder. model.c owns
 * everything architecture-independent: files, tokenizer, image processor,
 * generation defaults, sessions. */
#ifndef VLM_MODEL_H
#define VLM_MODEL_H

#include <json-glib/json-glib.h>

#include "generate.h"
#include "image.h"
#include "json.h"
#include "ops.h"
#include "safetensors.h"
#include "tokenizer.h"

/* ---------------------------------------------------------------- weights */

/* The checkpoint plus the f32 copies made of bf16/f16 tensors, and how
 * linears are prepared for the model's backend and precision. */
typedef struct {
  VlmSafetensors *st;
  GPtrArray *owned;   /* conversion buffers */
  gboolean pack;      /* oneDNN: linears are packed (vlm_linear_pack) ... */
  VlmDType dtype;     /* ... in this dtype (F32 or BF16) ... */
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
/* Linear `PREFIX.weight` [n, k] (+ `PREFIX.bias` [n] if has_bias). */
gboolean vlm_weights_linear (VlmWeights *w, VlmLinearW *lin, gboolean has_bias, int n, int k,
                             GError **error, const char *fmt, ...) G_GNUC_PRINTF (7, 8);
/* Whether `n` things of `what` (layers, frame embeddings), each with at
 * least one tensor of its own, can be in the checkpoint: a count from
 * config.json is bounded by it before arrays of that length are made.
 * BAD_CONFIG naming `what` otherwise. */
gboolean vlm_weights_check_count (VlmWeights *w, int n, const char *what, GError **error);
/* TRUE if the tensor named by `fmt` exists. */
gboolean vlm_weights_has (VlmWeights *w, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* ---------------------------------------------------------------- architectures */

typedef struct VlmModel VlmModel;

typedef struct {
  const char *name;      /* config.json "architectures"[0] */
  /* Reads config + weights into an arch-private model; sets
   * model->frames_per_clip, model->processor_section and model->image_size. */
  void *(*load) (VlmModel *model, JsonObject *config, GError **error);
  void (*free) (void *impl);
  /* Per-session run state able to caption a clip with up to `max_beams`
   * beams and `max_tokens` text tokens (prompt + generated). */
  void *(*run_new) (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error);
  void (*run_free) (void *run);
  /* Encodes `n_frames` preprocessed frames [n, 3, H, W] (n == frames_per_clip). */
  gboolean (*encode) (void *run, const float *pixels, int n_frames, GError **error);
  /* Builds the prompt ids for user text `prompt` ("" = plain captioning)
   * into a new array (g_free), count in *n. */
  int *(*prompt_ids) (VlmModel *model, const char *prompt, int *n, GError **error);
  /* Runs the prompt through beam 0 after encode; returns the last position's
   * logits (owned by run) and the cache length in *pos. */
  const float *(*prefill) (void *run, const int *ids, int n, int *pos, GError **error);
  /* The run as a decoder for vlm_generate. */
  const VlmDecoder *(*decoder) (void *run);
  /* Tag models (those without a decoder): embeds `n` text labels into the
   * run, where they stay until the next call. */
  gboolean (*set_labels) (void *run, const char *const *labels, int n, GError **error);
  /* After encode: the clip's score against each label set last [n]. */
  void (*tag) (void *run, float *scores);
} VlmArch;

struct VlmModel {
  gint ref_count;
  char *dir, *name, *architecture;
  VlmModelParams params;
  const VlmArch *arch;
  void *impl;
  VlmWeights weights;
  VlmTokenizer *tokenizer;
  VlmImageProcessor processor;
  const char *processor_section;   /* "image_processor" / "video_processor" */
  VlmGenParams gen_defaults;
  int eos_ids[8], n_eos, bos_id, pad_id;
  int frames_per_clip;
  int image_size;                  /* the vision tower reads image_size² frames */
  int vocab_size;
  int max_positions;               /* text positions the decoder can hold (prompt + new) */
};

/* The architectures, in model.c's table. */
extern const VlmArch vlm_arch_git;
extern const VlmArch vlm_arch_video_llava;
extern const VlmArch vlm_arch_llava_onevision;
extern const VlmArch vlm_arch_languagebind_video;
extern const VlmArch vlm_arch_smolvlm;

#endif
