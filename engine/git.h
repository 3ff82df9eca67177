/* git.h — GIT (GitForCausalLM): ViT per frame + temporal embedding + visual
 * projection + BERT's post-norm layers (postnorm.h) as a text decoder over
 * [visual; text].
 * Exposed to the tests, which check each stage against the HF goldens.
 * ref: transformers models/git/modeling_git.py */
#ifndef VLM_GIT_H
#define VLM_GIT_H

#include "arch.h"
#include "postnorm.h"
#include "vit.h"

typedef struct {
  VlmPostNormConfig text;                /* hidden_size, intermediate_size, num_attention_heads,
                                          * layer_norm_eps, hidden_act (text) */
  int num_layers, vocab_size, max_positions;
  int n_frames;                          /* num_image_with_embedding; 0 = single image */
  VlmVit vision;                         /* git.image_encoder.vision_model.* */
  const float **temporal_embedding;      /* git.img_temporal_embedding.N [1, 1, Dv] × n_frames */
  VlmLinearW projection;                 /* git.visual_projection.visual_projection.0 [D, Dv] */
  const float *projection_ln_w, *projection_ln_b;  /* ...visual_projection.1 [D] */
  const float *word_embeddings;          /* git.embeddings.word_embeddings.weight [V, D] */
  const float *position_embeddings;      /* git.embeddings.position_embeddings.weight [P, D] */
  const float *emb_ln_w, *emb_ln_b;      /* git.embeddings.LayerNorm [D] */
  VlmPostNormLayer *layers;              /* git.encoder.layer.N.* (BertLayer) [num_layers] */
  VlmLinearW output;                     /* output [V, D] */
} Git;

typedef struct GitRun GitRun;

/* Its stages (VlmArch.stage): "vision_out", "visual_tokens", "prompt_logits". */

#endif
