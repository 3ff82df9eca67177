/* languagebind.h — LanguageBindVideo: the temporal CLIP video tower (every
 * layer also attends across the clip's frames) and HF's CLIP text tower,
 * both projected into one space, so a clip can be scored against text labels
 * without a decoder (zero-shot tags).
 * Exposed to the tests, which check each stage against the golden.
 * ref: PKU-YuanGroup/LanguageBind languagebind/video/modeling_video.py
 *      (LanguageBindVideo, CLIPVisionTransformer.forward),
 *      transformers models/clip/modeling_clip.py (CLIPTextTransformer, CLIPModel) */
#ifndef VLM_LANGUAGEBIND_H
#define VLM_LANGUAGEBIND_H

#include "arch.h"
#include "vit.h"

typedef struct {
  VlmVit vision;                     /* vision_model.* (add_time_attn) */
  VlmLinearW visual_projection;      /* visual_projection.weight [P, Dv], no bias */
  VlmVitConfig text;                 /* text_config (encoder layer part) */
  int vocab_size, max_positions;     /* text_config vocab_size, max_position_embeddings */
  int eos_token_id;                  /* text_config; 2 = the legacy pooling rule */
  const float *token_embedding;      /* text_model.embeddings.token_embedding.weight [V, Dt] */
  const float *position_embedding;   /* text_model.embeddings.position_embedding.weight [Pos, Dt] */
  VlmVitLayer *text_layers;          /* text_model.encoder.layers.N.* */
  const float *final_layer_norm_w, *final_layer_norm_b;   /* text_model.final_layer_norm [Dt] */
  VlmLinearW text_projection;        /* text_projection.weight [P, Dt], no bias */
  float logit_scale;                 /* logit_scale [] (its exp scales the cosines) */
} LanguageBind;

typedef struct LanguageBindRun LanguageBindRun;

/* Its stages (VlmArch.stage), after encode: "last_hidden_state", the last
 * layer's output of every frame [F · N, Dv] (before post_layernorm), and
 * "video_embeds" [P]. */

/* Text tower for one unpadded sequence of `n` ids → text_embeds [P] (HF
 * text_projection(pooler_output)). Error BAD_ARGUMENT for an id outside the
 * vocabulary or more ids than max_position_embeddings. */
gboolean languagebind_embed_text (LanguageBindRun *run, const int *ids, int n, float *out,
                                  GError **error);

/* logits_per_video: scores[i] = exp(logit_scale) · cos(video, text[i]) for
 * text [n, P]. */
void languagebind_scores (const LanguageBind *lb, const float *video, const float *text, int n,
                          float *scores);

#endif
