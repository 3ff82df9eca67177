/* smolvlm.h — SmolVLM / SmolVLM2 (SmolVLMForConditionalGeneration): a
 * SigLIP tower per frame, the pixel-shuffle connector, then a Llama decoder
 * whose `<image>` placeholder rows are the connector's tokens.
 * Exposed to the tests, which check the model against the HF goldens.
 * ref: transformers models/smolvlm/modeling_smolvlm.py, processing_smolvlm.py */
#ifndef VLM_SMOLVLM_H
#define VLM_SMOLVLM_H

#include "arch.h"
#include "llama.h"
#include "vit.h"

typedef struct {
  VlmVit vision_model;      /* model.vision_model.* (SigLIP, post_layernorm applied) */
  int scale_factor;         /* pixel shuffle: s × s neighbouring tokens become one */
  VlmLinearW proj;          /* model.connector.modality_projection.proj [D, Dv·s²] */
  VlmLlama text_model;      /* model.text_model.* + lm_head */
  int image_token_id;       /* the `<image>` placeholder id */
  int image_seq_len;        /* placeholders per frame: (grid / s)² */
} SmolVLM;

typedef struct SmolVLMRun SmolVLMRun;

/* The processor's text for one video of `n_frames` frames taken at
 * `timestamps` (seconds) from a clip of `duration` seconds, each frame
 * expanded to `image_seq_len` `<image>` tokens: user text `prompt` inside the
 * chat template, or, if `prompt` holds `<video>`, `prompt` itself with that
 * expanded. g_free. */
char *smolvlm_video_prompt (const char *prompt, int n_frames, const double *timestamps, double duration,
                            int image_seq_len);

/* The prefill with HF's logits_to_keep, after encode: the prompt `ids`
 * (placeholders expanded) → logits of the last `logits_to_keep` rows [k, V]
 * (k ≤ the run's beams). NULL + BAD_ARGUMENT unless the placeholders number
 * image_seq_len per encoded frame, or on a bad id or length. */
const float *smolvlm_run_forward (SmolVLMRun *run, const int *ids, int n, int logits_to_keep, GError **error);

#endif
