/* vit.h — the ViT vision tower part (CLIP and SigLIP flavours), shared by
 * every model that looks at frames one at a time.
 * ref: transformers models/clip/modeling_clip.py (CLIPVisionTransformer),
 *      models/git/modeling_git.py (GitVisionTransformer),
 *      models/siglip/modeling_siglip.py (SiglipVisionTransformer). */
#ifndef VLM_VIT_H
#define VLM_VIT_H

#include "model.h"

typedef struct {
  int hidden_size, intermediate_size, num_heads, num_layers;
  int patch_size, image_size, num_channels;
  float eps;                 /* layer_norm_eps */
  VlmAct act;                /* hidden_act */
  gboolean class_token;      /* CLIP prepends class_embedding; SigLIP does not */
  gboolean pre_norm;         /* CLIP's pre_layrnorm */
  gboolean patch_bias;       /* SigLIP's patch conv has a bias */
  int grid, n_tokens;        /* patches per side; tokens per frame (+1 with CLS) */
} VlmVitConfig;

/* `prefix`.encoder.layers.N.* */
typedef struct {
  VlmLinearW q_proj, k_proj, v_proj, out_proj;   /* self_attn.*_proj   [D, D] */
  VlmLinearW fc1, fc2;                           /* mlp.fc1 [I, D], mlp.fc2 [D, I] */
  const float *layer_norm1_w, *layer_norm1_b;    /* [D] */
  const float *layer_norm2_w, *layer_norm2_b;    /* [D] */
} VlmVitLayer;

typedef struct {
  VlmVitConfig cfg;
  VlmLinearW patch_embedding;        /* embeddings.patch_embedding.weight [D, C, p, p] as [D, C·p·p] */
  const float *class_embedding;      /* embeddings.class_embedding [D] (CLIP) */
  const float *position_embedding;   /* embeddings.position_embedding.weight [T, D] */
  const float *pre_layrnorm_w, *pre_layrnorm_b;       /* [D] (CLIP) */
  const float *post_layernorm_w, *post_layernorm_b;   /* [D] */
  VlmVitLayer *layers;               /* [num_layers] */
} VlmVit;

/* Reads `vision_config`. class_token/pre_norm/patch_bias: CLIP = TRUE, TRUE,
 * FALSE; SigLIP = FALSE, FALSE, TRUE. */
gboolean vlm_vit_config_read (VlmVitConfig *cfg, JsonObject *vision_config, const char *file,
                              gboolean clip_style, GError **error);
/* Loads tensors under `prefix` (e.g. "git.image_encoder.vision_model."). */
gboolean vlm_vit_load (VlmVit *vit, VlmWeights *w, const char *prefix, GError **error);
void vlm_vit_clear (VlmVit *vit);

/* Arena bytes vlm_vit_forward needs for `n_frames` frames. */
size_t vlm_vit_arena_size (const VlmVit *vit, int n_frames);

/* pixels [F, C, S, S] -> out [F · n_tokens, D]: HF hidden_states[n_layers]
 * (the embeddings after pre-norm for 0), followed by post_layernorm on every
 * token if post_norm. Temporaries come from `arena` and are released. */
void vlm_vit_forward (const VlmVit *vit, VlmOps *ops, VlmArena *arena, const float *pixels,
                      int n_frames, int n_layers, gboolean post_norm, float *out);

#endif
