/* llama.h — the Llama decoder part (and its Qwen2 variant), shared by every
 * model whose text side is a LlamaModel/Qwen2Model: embeddings, pre-norm
 * blocks with RoPE and grouped-query attention, SiLU-gated MLP, final RMSNorm,
 * lm_head; a KV cache per beam behind the shared generation loop.
 * ref: transformers models/llama/modeling_llama.py, models/qwen2/modeling_qwen2.py
 *
 * Prefill takes input *embeddings*, so a multimodal model can overwrite the
 * rows of its placeholder tokens with vision features before the decoder. */
#ifndef VLM_LLAMA_H
#define VLM_LLAMA_H

#include "generate.h"
#include "json.h"
#include "weights.h"

typedef struct {
  int hidden_size, intermediate_size, num_layers, vocab_size;
  int max_positions;         /* max_position_embeddings: the context it was trained for */
  int num_heads, num_kv_heads, head_dim;  /* num_key_value_heads ≤ num_attention_heads */
  float eps;                 /* rms_norm_eps */
  float rope_theta;          /* rope_theta or rope_parameters.rope_theta */
  /* HF's inv_freq is a buffer that follows Module.to(dtype): from_pretrained
   * keeps it f32 (our default); a model cast to bf16 and back, as the
   * fixtures' goldens were made, has it rounded to bf16. */
  gboolean rope_bf16;
  VlmAct act;                /* hidden_act (silu) */
  gboolean qkv_bias, o_bias; /* Qwen2: q/k/v only; Llama: attention_bias on all four */
  gboolean mlp_bias;
} VlmLlamaConfig;

/* `prefix`layers.N.* */
typedef struct {
  VlmLinearW q_proj;          /* self_attn.q_proj [H·hd, D] */
  VlmLinearW k_proj, v_proj;  /* self_attn.{k,v}_proj [KV·hd, D] */
  VlmLinearW o_proj;          /* self_attn.o_proj [D, H·hd] */
  VlmLinearW gate_proj, up_proj;  /* mlp.{gate,up}_proj [I, D] */
  VlmLinearW down_proj;       /* mlp.down_proj [D, I] */
  const float *input_layernorm;           /* input_layernorm.weight [D] */
  const float *post_attention_layernorm;  /* post_attention_layernorm.weight [D] */
} VlmLlamaLayer;

typedef struct {
  VlmLlamaConfig cfg;
  const VlmTensor *embed_tokens;  /* embed_tokens.weight [V, D] as stored (f32/bf16/f16) */
  VlmLlamaLayer *layers;      /* [num_layers] */
  const float *norm;          /* norm.weight [D] */
  VlmLinearW lm_head;         /* lm_head.weight [V, D], or embed_tokens when absent (tied) */
} VlmLlama;

/* The HF keys of a decoder under its prefix: embed_tokens, layers, norm,
 * and each layer's parts under `layers`.N. */
typedef struct {
  const char *embed_tokens, *layers, *norm;
  const char *q_proj, *k_proj, *v_proj, *o_proj, *gate_proj, *up_proj, *down_proj;
  const char *input_layernorm, *post_attention_layernorm;
} VlmLlamaNames;

/* LlamaModel's (and Qwen2Model's): embed_tokens, layers.N.self_attn.q_proj, ... */
extern const VlmLlamaNames vlm_llama_names;

/* Reads `text_config` (a LlamaConfig or Qwen2Config). BAD_CONFIG naming
 * `file` and the key on missing or unsupported values (e.g. rope scaling). */
gboolean vlm_llama_config_read (VlmLlamaConfig *cfg, JsonObject *text_config, const char *file,
                                GError **error);
/* Loads the tensors `names` gives under `prefix` (e.g.
 * "language_model.model.") and `lm_head` ("language_model.lm_head"; tied to
 * embed_tokens when that tensor is absent). Error naming the tensor. */
gboolean vlm_llama_load (VlmLlama *lm, VlmWeights *w, const VlmLlamaNames *names, const char *prefix,
                         const char *lm_head, GError **error);
void vlm_llama_clear (VlmLlama *lm);

/* ---------------------------------------------------------------- run */

/* Per-session state: KV cache for `max_beams` beams × `max_seq` positions,
 * RoPE tables, activations for a prefill of max_seq rows. Not thread-safe. */
typedef struct VlmLlamaRun VlmLlamaRun;

VlmLlamaRun *vlm_llama_run_new (const VlmLlama *lm, VlmOps *ops, int max_beams, int max_seq,
                                GError **error);
void vlm_llama_run_free (VlmLlamaRun *run);

/* x[i] = embed_tokens[ids[i]], x [n, D]. BAD_ARGUMENT for an id outside the
 * vocabulary. */
gboolean vlm_llama_embed (const VlmLlama *lm, const int *ids, int n, float *x, GError **error);

/* Runs the prompt rows x [n, D] (clobbered) at positions 0..n-1 into beam
 * 0's cache, as HF's forward(inputs_embeds=x, logits_to_keep=k). Returns the
 * logits of the last `logits_to_keep` rows [k, V] (k ≤ max_beams; owned by the
 * run, valid until the next call), or NULL + BAD_ARGUMENT if n > max_seq. */
const float *vlm_llama_prefill (VlmLlamaRun *run, float *x, int n, int logits_to_keep,
                                GError **error);

/* The decoder-only VLMs' prefill: inputs_embeds = embed_tokens(ids) with
 * the row of each `placeholder` id replaced, in order, by the next of
 * `features` [n_features, D] (HF's masked_scatter of the visual tokens),
 * then vlm_llama_prefill with logits_to_keep. BAD_ARGUMENT for n outside
 * 1..max_seq, a placeholder count other than n_features, or an id outside
 * the vocabulary. */
const float *vlm_llama_prefill_merged (VlmLlamaRun *run, const int *ids, int n, int placeholder,
                                       const float *features, int n_features, int logits_to_keep,
                                       GError **error);

/* The run as a decoder for vlm_generate, continuing after the prefill. */
const VlmDecoder *vlm_llama_decoder (VlmLlamaRun *run);

#endif
