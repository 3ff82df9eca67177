/* git.h — GIT (GitForCausalLM): ViT per frame + temporal embedding + visual
 * projection + BERT-style post-norm text decoder over [visual; text].
 * Exposed to the tests, which check each stage against the HF goldens.
 * ref: transformers models/git/modeling_git.py */
#ifndef VLM_GIT_H
#define VLM_GIT_H

#include "arch.h"
#include "vit.h"

/* git.encoder.layer.N.* */
typedef struct {
  VlmLinearW query, key, value;          /* attention.self.{query,key,value} [D, D] */
  VlmLinearW attn_out;                   /* attention.output.dense [D, D] */
  const float *attn_ln_w, *attn_ln_b;    /* attention.output.LayerNorm [D] */
  VlmLinearW intermediate;               /* intermediate.dense [I, D] */
  VlmLinearW out;                        /* output.dense [D, I] */
  const float *out_ln_w, *out_ln_b;      /* output.LayerNorm [D] */
} GitLayer;

typedef struct {
  int hidden_size, intermediate_size, num_heads, num_layers, vocab_size, max_positions;
  float eps;                             /* layer_norm_eps (text) */
  VlmAct act;                            /* hidden_act (text) */
  int n_frames;                          /* num_image_with_embedding; 0 = single image */
  VlmVit vision;                         /* git.image_encoder.vision_model.* */
  const float **temporal_embedding;      /* git.img_temporal_embedding.N [1, 1, Dv] × n_frames */
  VlmLinearW projection;                 /* git.visual_projection.visual_projection.0 [D, Dv] */
  const float *projection_ln_w, *projection_ln_b;  /* ...visual_projection.1 [D] */
  const float *word_embeddings;          /* git.embeddings.word_embeddings.weight [V, D] */
  const float *position_embeddings;      /* git.embeddings.position_embeddings.weight [P, D] */
  const float *emb_ln_w, *emb_ln_b;      /* git.embeddings.LayerNorm [D] */
  GitLayer *layers;                      /* [num_layers] */
  VlmLinearW output;                     /* output [V, D] */
} Git;

typedef struct GitRun GitRun;

/* Stage access for tests: after encode, the vision tower output of every
 * frame before the temporal embedding [F·T, Dv], and the projected visual
 * tokens [F·T, D]; after prefill, the logits of every prompt row [n, V]. */
const float *git_run_vision_out (const GitRun *run);
const float *git_run_visual_tokens (const GitRun *run);
const float *git_run_prompt_logits (const GitRun *run);

#endif
