/* arch.h — how an architecture plugs into the engine.
 *
 * A model is assembled from config.json: an architecture entry (VlmArch, one
 * row of registry.c's table) loads its parts (tower, projector, decoder)
 * from the checkpoint and provides per-session run state that encodes a
 * clip, prefills a prompt and then serves the shared generation loop as a
 * VlmDecoder. Everything architecture-independent is above it: model.c
 * (files, tokenizer, image processor, generation defaults) and session.c
 * (the caption pipeline).
 *
 * Encoder–decoders (BLIP, ViT-GPT2, Florence-2) plug into the same hooks:
 * encode() runs the image encoder; where the decoder's cross-attention
 * memory depends on the clip alone (BLIP, ViT-GPT2) it also projects that
 * memory's keys and values once (vlm_postnorm_cross_set, postnorm.h), else
 * (Florence-2: a text encoder over [image tokens; prompt]) prefill() runs
 * the encoder and does. prompt_ids() makes the ids prefill() takes; for a
 * decoder that starts from the model's decoder_start_id (or continues a
 * text prompt after bos, BLIP) those are the decoder's input ids.
 * prefill() runs the decoder prompt through beam 0's self-attention cache
 * and returns its last logits, as for decoder-only models; step() and
 * reorder() serve the one generation loop, reorder() moving the
 * self-attention cache only (every beam shares the one memory). When the
 * ids prompt_ids() made are not the decoder's (an encoder prompt),
 * decoder_prompt() names the ids HF's logits processors see as input_ids
 * (repetition penalty, no-repeat n-grams, forced BOS). */
#ifndef VLM_ARCH_H
#define VLM_ARCH_H

#include <json-glib/json-glib.h>
#include <string.h>

#include "generate.h"
#include "image.h"
#include "json.h"
#include "tokenizer.h"
#include "weights.h"

/* ---------------------------------------------------------------- architectures */

typedef struct VlmModel VlmModel;

/* What a loaded architecture tells the model about itself. */
typedef struct {
  int frames_per_clip;             /* frames encode() takes */
  const char *processor_section;   /* "image_processor" / "video_processor" */
  int image_size;                  /* the vision tower reads image_size² frames */
  int vocab_size;
  int max_positions;               /* text positions the decoder can hold (prompt + new) */
  int eos_id;                      /* >= 0 (with has_eos): the stop token HF's generate() of this
                                    * architecture passes instead of the config's (BLIP: sep_token_id) */
  gboolean has_eos;
} VlmArchInfo;

typedef struct {
  const char *name;      /* config.json "architectures"[0] */
  const void *variant;   /* what tells apart the members of one family (a row each); given to load */
  /* Reads `config` (from `file`, for messages) + weights into an
   * arch-private model and fills *info. NULL + error naming the file,
   * key or tensor otherwise. */
  void *(*load) (const void *variant, VlmWeights *w, JsonObject *config, const char *file, VlmArchInfo *info,
                 GError **error);
  void (*free) (void *impl);
  /* Per-session run state able to caption a clip with up to `max_beams`
   * beams and `max_tokens` text tokens (prompt + generated). */
  void *(*run_new) (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error);
  void (*run_free) (void *run);
  /* Encodes `n_frames` preprocessed frames [n, 3, H, W] (n == frames_per_clip). */
  gboolean (*encode) (void *run, const float *pixels, int n_frames, GError **error);
  /* Optional (the batcher): encode() of n > 1 clips of runs of this model
   * at once, run r's frames at pixels[r], the tower's work in one call;
   * temporaries from `arena` (encode_batch_bytes (model, n) free). */
  gboolean (*encode_batch) (void *const *runs, const float *const *pixels, int n, VlmArena *arena,
                            GError **error);
  size_t (*encode_batch_bytes) (VlmModel *model, int n);
  /* Builds the prompt ids for user text `prompt` ("" = plain captioning)
   * into a new array (g_free), count in *n. */
  int *(*prompt_ids) (VlmModel *model, const char *prompt, int *n, GError **error);
  /* Runs the prompt through beam 0 after encode; returns the last position's
   * logits (owned by run) and the cache length in *pos. */
  const float *(*prefill) (void *run, const int *ids, int n, int *pos, GError **error);
  /* The run as a decoder for vlm_generate. */
  const VlmDecoder *(*decoder) (void *run);
  /* Optional (encoder–decoders whose prompt feeds the encoder): after
   * prefill, the decoder's input ids [*n] (owned by run); NULL hook: the
   * ids given to prefill. */
  const int *(*decoder_prompt) (void *run, int *n);
  /* Tag models (those without a decoder): embeds `n` text labels into the
   * run, where they stay until the next call. */
  gboolean (*set_labels) (void *run, const char *const *labels, int n, GError **error);
  /* After encode: the clip's score against each label set last [n]. */
  void (*tag) (void *run, float *scores);
  /* The stage hook: the run's intermediate tensor called `name` (as of the
   * last encode or prefill), for tests comparing stages with HF's goldens;
   * NULL for a name the architecture does not have. */
  const float *(*stage) (void *run, const char *name);
} VlmArch;

/* One named stage of a run (VlmArch.stage). */
typedef struct {
  const char *name;
  const float *data;
} VlmStage;

/* The data of the stage called `name` among n, or NULL. */
static inline const float *
vlm_stage_find (const VlmStage *stages, int n, const char *name)
{
  for (int i = 0; i < n; i++)
    if (strcmp (stages[i].name, name) == 0)
      return stages[i].data;
  return NULL;
}

struct VlmModel {
  gint ref_count;
  char *dir, *name, *architecture;
  VlmModelParams params;
  const VlmArch *arch;
  void *impl;
  VlmWeights weights;
  VlmTokenizer *tokenizer;
  VlmImageProcessor processor;
  VlmGenParams gen_defaults;
  int eos_ids[8], n_eos, bos_id, pad_id;
  int decoder_start_id;            /* decoder_start_token_id (encoder–decoders), -1 if none */
  /* the architecture's, frames_per_clip capped by the processor's video_max_frames */
  VlmArchInfo info;
};

/* The architecture config.json names ("architectures"[0]), from the table in
 * registry.c. UNSUPPORTED_ARCHITECTURE naming `file` and the supported ones,
 * or BAD_CONFIG without such a list. */
const VlmArch *vlm_arch_find (JsonObject *config, const char *file, GError **error);

#endif
