/* llava.h — Video-LLaVA (VideoLlavaForConditionalGeneration): CLIP tower per
 * frame, multi_modal_projector (linear–GELU–linear), Llama decoder whose
 * `<video>` placeholder rows are the projected frame tokens.
 * Exposed to the tests, which check each stage against the HF goldens.
 * ref: transformers models/video_llava/modeling_video_llava.py,
 *      models/video_llava/processing_video_llava.py */
#ifndef VLM_LLAVA_H
#define VLM_LLAVA_H

#include "llama.h"
#include "vit.h"

/* multi_modal_projector.*: linear_2(act(linear_1(x))) */
typedef struct {
  VlmLinearW linear_1;   /* linear_1 [D, Dv] */
  VlmLinearW linear_2;   /* linear_2 [D, D] */
  VlmAct act;            /* projector_hidden_act */
} LlavaProjector;

typedef struct {
  VlmVit video_tower;             /* video_tower[.vision_model].* (a CLIPVisionModel) */
  int feature_layers;             /* hidden_states index of vision_feature_layer */
  LlavaProjector projector;       /* multi_modal_projector.* */
  VlmLlama language_model;        /* language_model.model.* + language_model.lm_head */
  int video_token_index;          /* the `<video>` placeholder id */
  int n_video_tokens;             /* frames · tokens per frame (CLS kept for video) */
} Llava;

typedef struct LlavaRun LlavaRun;

/* Stage access for tests: after encode, the projected video tokens
 * [F·T, D] (HF's multi_modal_projector output). */
const float *llava_run_projector_out (const LlavaRun *run);
/* The prefill with HF's logits_to_keep: the prompt `ids` (placeholders
 * expanded) → logits of the last `logits_to_keep` rows [k, V] (k ≤ the run's
 * beams). NULL + error on a bad id or placeholder count. */
const float *llava_run_forward (LlavaRun *run, const int *ids, int n, int logits_to_keep, GError **error);

#endif
