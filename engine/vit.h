/* vit.h — the ViT vision tower part (CLIP and SigLIP flavours), shared by
 * every model that looks at frames, and its encoder layers, which CLIP's text
 * tower shares. With `add_time_attn` (LanguageBind) each layer also attends
 * across the frames of a clip: the temporal vision tower.
 * ref: transformers models/clip/modeling_clip.py (CLIPVisionTransformer,
 *      CLIPEncoderLayer), models/git/modeling_git.py (GitVisionTransformer),
 *      models/siglip/modeling_siglip.py (SiglipVisionTransformer),
 *      PKU-YuanGroup/LanguageBind languagebind/video/modeling_video.py
 *      (CLIPEncoderLayer with add_time_attn). */
#ifndef VLM_VIT_H
#define VLM_VIT_H

#include "json.h"
#include "weights.h"

typedef struct {
  int hidden_size, intermediate_size, num_heads, num_layers;
  int patch_size, image_size, num_channels;
  float eps;                 /* layer_norm_eps */
  VlmAct act;                /* hidden_act */
  gboolean class_token;      /* CLIP prepends class_embedding; SigLIP does not */
  gboolean pre_norm;         /* CLIP's pre_layrnorm */
  gboolean patch_bias;       /* SigLIP's patch conv has a bias */
  int grid, n_tokens;        /* patches per side; tokens per frame (+1 with CLS) */
  int num_frames;            /* add_time_attn: frames per clip attended across; 0 = none */
} VlmVitConfig;

/* A CLIPAttention: q/k/v/out projections with bias, scale head_dim^-0.5. */
typedef struct {
  VlmLinearW q_proj, k_proj, v_proj, out_proj;   /* *_proj [D, D] */
} VlmVitAttn;

/* `prefix`encoder.layers.N.* */
typedef struct {
  VlmVitAttn self_attn;                          /* self_attn.* */
  VlmLinearW fc1, fc2;                           /* mlp.fc1 [I, D], mlp.fc2 [D, I] */
  const float *layer_norm1_w, *layer_norm1_b;    /* [D] */
  const float *layer_norm2_w, *layer_norm2_b;    /* [D] */
  /* add_time_attn only (NULL / zero otherwise): */
  const float *temporal_embedding;               /* temporal_embedding [1, num_frames, D] */
  VlmVitAttn temporal_attn;                      /* temporal_attn.* */
  const float *temporal_layer_norm1_w, *temporal_layer_norm1_b;   /* temporal_layer_norm1 [D] */
} VlmVitLayer;

typedef struct {
  VlmVitConfig cfg;
  VlmLinearW patch_embedding;        /* embeddings.patch_embedding.weight [D, C, p, p] as [D, C·p·p] */
  const float *class_embedding;      /* embeddings.class_embedding [D] (CLIP) */
  const float *position_embedding;   /* embeddings.position_embedding.weight [T, D] (or [1, T, D]) */
  const float *pre_layrnorm_w, *pre_layrnorm_b;       /* [D] (CLIP) */
  const float *post_layernorm_w, *post_layernorm_b;   /* [D] */
  VlmVitLayer *layers;               /* [num_layers] */
} VlmVit;

/* The HF keys of a tower under its prefix (embeddings, norms, layers) and
 * of each layer's parts under `layers`.N.; a layer's attention is
 * `self_attn` (or `temporal_attn`) + one of proj (projections sharing a
 * name are parts of one fused tensor: vlm_weights_fused_part). Embedding
 * names are whole keys; [1, T, D] parameters load as [T, D]. */
typedef struct {
  const char *class_embedding, *patch_embedding, *position_embedding, *pre_layrnorm, *post_layernorm;
  const char *layers;
  const char *proj[4];                            /* q, k, v, out */
  const char *self_attn, *layer_norm1, *fc1, *fc2, *layer_norm2;
  const char *temporal_embedding, *temporal_attn, *temporal_layer_norm1;
} VlmVitNames;

/* CLIPVisionTransformer's (SigLIP's, GIT's and LanguageBind's towers and
 * CLIP's text tower use the same). */
extern const VlmVitNames vlm_vit_clip_names;
/* BlipVisionModel's: CLIP's layout with one fused qkv and `projection`. */
extern const VlmVitNames vlm_vit_blip_names;
/* ViTModel's (VisionEncoderDecoder's encoder): cls_token,
 * patch_embeddings.projection, encoder.layer.N.attention.attention.query,
 * layernorm_before/after, final `layernorm`. */
extern const VlmVitNames vlm_vit_hf_names;

/* Reads `vision_config`. class_token/pre_norm/patch_bias: CLIP = TRUE, TRUE,
 * FALSE; SigLIP = FALSE, FALSE, TRUE. `add_time_attn` requires `num_frames`. */
gboolean vlm_vit_config_read (VlmVitConfig *cfg, JsonObject *vision_config, const char *file,
                              gboolean clip_style, GError **error);
/* Loads the tensors `names` gives under `prefix` (e.g.
 * "git.image_encoder.vision_model."). Error naming the tensor. */
gboolean vlm_vit_load (VlmVit *vit, const VlmVitNames *names, VlmWeights *w, const char *prefix, GError **error);
void vlm_vit_clear (VlmVit *vit);

/* Arena bytes vlm_vit_forward needs for `n_frames` frames. */
size_t vlm_vit_arena_size (const VlmVit *vit, int n_frames);

/* pixels [F, C, S, S] -> out [F · n_tokens, D]: HF hidden_states[n_layers]
 * (the embeddings after pre-norm for 0), followed by post_layernorm on every
 * token if post_norm. With num_frames, F is a whole number of clips and
 * frame t of clip b is frame b·num_frames + t. Temporaries come from `arena`
 * and are released. */
void vlm_vit_forward (const VlmVit *vit, VlmOps *ops, VlmArena *arena, const float *pixels,
                      int n_frames, int n_layers, gboolean post_norm, float *out);

/* The batcher's tower call (VlmArch encode_batch): the F frames of each of
 * n clips (clip i at pixels[i], [F, C, S, S]) through vlm_vit_forward at
 * once, clip i's output [F · n_tokens, D] to outs[i]. Temporaries from
 * `arena` (vlm_vit_clips_bytes free), released. */
void vlm_vit_forward_clips (const VlmVit *vit, VlmOps *ops, VlmArena *arena, const float *const *pixels, int n,
                            int F, int n_layers, gboolean post_norm, float *const *outs);
size_t vlm_vit_clips_bytes (const VlmVit *vit, int F, int n);

/* ---- the encoder layers alone, for CLIP's text tower (CLIPTextTransformer) */

/* The layer part of a config (hidden_size, intermediate_size,
 * num_attention_heads, num_hidden_layers, layer_norm_eps, hidden_act) from
 * `o` (e.g. text_config); the rest of *cfg is zeroed. */
gboolean vlm_vit_encoder_config_read (VlmVitConfig *cfg, JsonObject *o, const char *file,
                                      const char *default_act, float default_eps, GError **error);
/* Loads `prefix` + names->layers.N.* for cfg->num_layers layers (g_free the
 * array with vlm_vit_layers_free). NULL + error naming the tensor. */
VlmVitLayer *vlm_vit_layers_load (const VlmVitConfig *cfg, const VlmVitNames *names, VlmWeights *w, const char *prefix,
                                  GError **error);
void vlm_vit_layers_free (const VlmVitConfig *cfg, VlmVitLayer *layers);
/* One layer in place on x [n_seq · len, D]: sequences of `len` rows attend
 * within themselves, causally if `causal`. */
void vlm_vit_layer_forward (const VlmVitConfig *cfg, const VlmVitLayer *layer, VlmOps *ops,
                            VlmArena *arena, float *x, int n_seq, int len, gboolean causal);

#endif
