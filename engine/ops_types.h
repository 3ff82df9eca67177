/* ops_types.h — the types the ops and their backends share: a prepared
 * Linear, an attention mask and one attention call's geometry. */
#ifndef VLM_OPS_TYPES_H
#define VLM_OPS_TYPES_H

#include "ops_act.h"
#include "tensor.h"
#include "vlm/vlm.h"

/* A Linear layer as HF stores it: weight [n, k] row-major (out × in),
 * optional bias [n]. Prepared once at load (dtype conversion, any layout the
 * backend prefers); read-only afterwards and shareable across threads. */
typedef struct {
  int n, k;
  const float *weight;   /* [n, k] f32; NULL once packed from a converted copy */
  const float *bias;     /* [n] or NULL */
  void *owned_weight;    /* conversion buffers, freed by vlm_linear_clear */
  void *owned_bias;
  void *packed;          /* oneDNN's prepared form (vlm_linear_pack), or NULL */
} VlmLinearW;

/* A Conv2d as HF stores it: square kernel, stride and zero padding the
 * same along both axes, `groups` 1 (dense) or in_channels ==
 * out_channels (depthwise). Read-only, shareable across threads. */
typedef struct {
  int out_channels, in_channels, kernel, stride, padding, groups;
  const float *weight;   /* [out, in / groups, kernel, kernel] f32 */
  const float *bias;     /* [out] or NULL */
} VlmConvW;

/* The output side of `conv` over an input side of `in` pixels. */
static inline int
vlm_conv_out_size (const VlmConvW *conv, int in)
{
  return (in + 2 * conv->padding - conv->kernel) / conv->stride + 1;
}

/* Which keys a query sees: query i (absolute position q_pos0 + i) sees
 * key j iff !causal || j < prefix || j <= q_pos0 + i.
 * ViT: {FALSE}. Llama: {TRUE, 0, past}. GIT: {TRUE, n_visual, q_pos0}. */
typedef struct {
  gboolean causal;
  int prefix;
  int q_pos0;
} VlmMask;

/* One attention call's geometry (see vlm_attention). Internal to the ops. */
typedef struct {
  int lq, lk, n_heads, n_kv_heads, head_dim;
  int ldq, ldk, ldv, ldo;
  float scale;
  gboolean k_t;   /* keys transposed (vlm_attention_kt): ldk is the stride of a dim */
  gboolean bf16;  /* oneDNN: q, k, v and the probabilities in bf16 (scores and out f32) */
  gboolean kv_bf16;   /* k and v given in bf16 (uint16_t), as a bf16 VlmKvCache keeps them */
} VlmAttnShape;

#endif
