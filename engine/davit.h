/* davit.h — the DaViT vision backbone (Florence-2's vision tower): four
 * stages, each an overlapping conv patch embedding (LayerNorm before or
 * after it) and blocks of a spatial half (depthwise-conv position
 * encoding, window attention, MLP) and a channel half (the same conv,
 * channel-group attention, MLP):
 *   x = x + dwconv(x);  x = x + proj(attn(LN(x)));
 *   x = x + dwconv(x);  x = x + fc2(act(fc1(LN(x))))
 * Activations are channels-last, [H·W, C]: the token rows every linear
 * and norm reads, and the layout the convolutions take.
 * ref: transformers models/florence2/modeling_florence2.py
 *      (Florence2VisionBackbone, Florence2VisionConvEmbed,
 *      Florence2VisionSpatialBlock, Florence2VisionChannelBlock,
 *      Florence2VisionWindowAttention, Florence2VisionChannelAttention) */
#ifndef VLM_DAVIT_H
#define VLM_DAVIT_H

#include "json.h"
#include "weights.h"

#define VLM_DAVIT_MAX_STAGES 4

typedef struct {
  int n_stages;
  int embed_dim[VLM_DAVIT_MAX_STAGES], depths[VLM_DAVIT_MAX_STAGES];
  int num_heads[VLM_DAVIT_MAX_STAGES], num_groups[VLM_DAVIT_MAX_STAGES];
  int patch_size[VLM_DAVIT_MAX_STAGES], patch_stride[VLM_DAVIT_MAX_STAGES];
  int patch_padding[VLM_DAVIT_MAX_STAGES];
  gboolean patch_prenorm[VLM_DAVIT_MAX_STAGES];
  int in_channels, window_size, mlp_hidden[VLM_DAVIT_MAX_STAGES];   /* int(dim · mlp_ratio) */
  VlmAct act;                /* activation_function */
  gboolean qkv_bias;
} VlmDavitConfig;

/* convs.S: conv + norm (over the conv's input channels with patch_prenorm) */
typedef struct {
  VlmConvW conv;                 /* conv [C_S, C_{S-1}, p, p] */
  const float *norm_w, *norm_b;  /* norm [C_{S-1}] (pre) or [C_S] (post) */
} VlmDavitConvEmbed;

/* blocks.S.N.spatial_block / .channel_block: the two halves share a shape */
typedef struct {
  VlmConvW conv1, conv2;                 /* conv1, conv2 [C, 1, 3, 3] depthwise */
  const float *norm1_w, *norm1_b;        /* norm1 [C] */
  const float *norm2_w, *norm2_b;        /* norm2 [C] */
  VlmLinearW qkv, proj;                  /* window_attn / channel_attn .qkv [3C, C], .proj [C, C] */
  VlmLinearW fc1, fc2;                   /* ffn.fc1 [I, C], ffn.fc2 [C, I] */
} VlmDavitHalf;

typedef struct {
  VlmDavitHalf spatial, channel;
} VlmDavitBlock;

typedef struct {
  VlmDavitConfig cfg;
  VlmDavitConvEmbed convs[VLM_DAVIT_MAX_STAGES];
  VlmDavitBlock *blocks[VLM_DAVIT_MAX_STAGES];   /* [depths[S]] */
} VlmDavit;

/* Reads `vision_config` (of `file`, for messages). BAD_CONFIG naming the
 * key otherwise. */
gboolean vlm_davit_config_read (VlmDavitConfig *cfg, JsonObject *vision_config, const char *file, GError **error);
/* Loads `prefix`convs.S.* and `prefix`blocks.S.N.*. Error naming the tensor. */
gboolean vlm_davit_load (VlmDavit *v, VlmWeights *w, const char *prefix, GError **error);
void vlm_davit_clear (VlmDavit *v);

/* The side of the last stage's grid for `size`² pixels (0: too small). */
int vlm_davit_out_side (const VlmDavit *v, int size);
/* Arena bytes vlm_davit_forward needs for a `size`² frame. */
size_t vlm_davit_arena_size (const VlmDavit *v, int size);
/* One frame pixels [in_channels, size, size] (the processor's CHW) →
 * out [out_side², embed_dim[last]], rows in raster order. Temporaries come
 * from `arena` and are released. */
void vlm_davit_forward (const VlmDavit *v, VlmOps *ops, VlmArena *arena, const float *pixels, int size, float *out);

#endif
