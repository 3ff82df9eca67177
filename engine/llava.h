/* llava.h — the LLaVA family's video path: a ViT tower per frame, the
 * multi_modal_projector (linear–GELU–linear), then a Llama/Qwen2 decoder whose
 * `<video>` placeholder rows are the projected frame tokens.
 *   Video-LLaVA (VideoLlavaForConditionalGeneration): CLIP tower,
 *     hidden_states[vision_feature_layer] with CLS, `USER: … ASSISTANT:`.
 *   LLaVA-OneVision (LlavaOnevisionForConditionalGeneration): SigLIP tower,
 *     each frame's token grid pooled 2× after the projector, one
 *     image_newline per video, ChatML.
 * Exposed to the tests, which check each stage against the HF goldens.
 * ref: transformers models/video_llava/modeling_video_llava.py,
 *      models/llava_onevision/modeling_llava_onevision.py and their processors */
#ifndef VLM_LLAVA_H
#define VLM_LLAVA_H

#include "arch.h"
#include "llama.h"
#include "vit.h"

/* What tells the family's members apart. */
typedef struct {
  const char *tower;        /* state-dict name of the tower: "video_tower", "vision_tower" */
  const char *template;     /* the processor's prompt, printf format of the user prompt */
  gboolean pool;            /* OneVision: apply_pooling + image_newline */
} LlavaFlavour;

/* multi_modal_projector.*: linear_2(act(linear_1(x))) */
typedef struct {
  VlmLinearW linear_1;   /* linear_1 [D, Dv] */
  VlmLinearW linear_2;   /* linear_2 [D, D] */
  VlmAct act;            /* projector_hidden_act */
} LlavaProjector;

typedef struct {
  const LlavaFlavour *flavour;
  VlmVit tower;                   /* video_tower / vision_tower [.vision_model].* */
  int feature_layers;             /* hidden_states index of vision_feature_layer */
  LlavaProjector projector;       /* multi_modal_projector.* */
  const float *image_newline;     /* image_newline [D] (pool only) */
  int pooled_grid;                /* tokens per side after pooling: ceil(grid / 2) */
  VlmLlama language_model;        /* language_model.model.* + language_model.lm_head */
  int video_token_index;          /* the `<video>` placeholder id */
  int n_video_tokens;             /* placeholders per clip */
} Llava;

typedef struct LlavaRun LlavaRun;

/* Its stage (VlmArch.stage): "video_tokens", after encode, what replaces the
 * placeholders [n_video_tokens, D] (Video-LLaVA: HF's projector output). */
/* The prefill with HF's logits_to_keep: the prompt `ids` (placeholders
 * expanded) → logits of the last `logits_to_keep` rows [k, V] (k ≤ the run's
 * beams). NULL + error on a bad id or placeholder count. */
const float *llava_run_forward (LlavaRun *run, const int *ids, int n, int logits_to_keep, GError **error);

#endif
