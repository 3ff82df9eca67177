/* postnorm.h — the post-norm transformer layer of BERT and BART, for
 * every model whose text side is one: GIT's text decoder (BertLayer,
 * causal over its text, every row seeing the visual prefix), and next
 * BLIP's text decoder and BART's encoder and decoder, which add
 * cross-attention to an encoder's output:
 *   x = LN(x + out(attn(x)))                self-attention, through a KV cache
 *   x = LN(x + out(attn(x, memory)))        cross-attention (optional)
 *   x = LN(x + fc2(act(fc1(x))))
 * Tensor names come from a name map (VlmPostNormNames), one per family.
 * ref: transformers models/bert/modeling_bert.py (BertLayer),
 *      models/bart/modeling_bart.py (BartEncoderLayer, BartDecoderLayer) */
#ifndef VLM_POSTNORM_H
#define VLM_POSTNORM_H

#include "kvcache.h"
#include "weights.h"

typedef struct {
  int hidden_size, intermediate_size, num_heads;
  float eps;                 /* layer_norm_eps */
  VlmAct act;                /* hidden_act */
} VlmPostNormConfig;

/* One attention block: q/k/v/out projections with bias, then LayerNorm of
 * the residual sum. */
typedef struct {
  VlmLinearW query, key, value;   /* [D, D] (key, value: [D, Dm] for cross-attention) */
  VlmLinearW out;                 /* [D, D] */
  const float *ln_w, *ln_b;       /* [D] */
} VlmPostNormAttn;

typedef struct {
  VlmPostNormAttn self_attn;
  gboolean has_cross;
  VlmPostNormAttn cross_attn;     /* has_cross only */
  VlmLinearW fc1;                 /* [I, D] */
  VlmLinearW fc2;                 /* [D, I] */
  const float *out_ln_w, *out_ln_b;   /* [D] */
} VlmPostNormLayer;

/* HF keys under `PREFIX.N.`: an attention block is five names (q, k, v,
 * out, norm; the norm's .weight/.bias and the linears' .weight/.bias are
 * added); cross NULL: no cross-attention. */
typedef struct {
  const char *attn[5];
  const char *cross[5];
  const char *fc1, *fc2, *out_norm;
} VlmPostNormNames;

/* BertLayer: attention.self.query, ..., intermediate.dense, output.dense. */
extern const VlmPostNormNames vlm_postnorm_bert;

/* Loads `prefix`.N.* for N < n_layers by `names` (memory_dim: the width
 * cross-attention reads; ignored without it). NULL + error naming the
 * tensor; free with vlm_postnorm_layers_free. */
VlmPostNormLayer *vlm_postnorm_layers_load (const VlmPostNormConfig *c, const VlmPostNormNames *names,
                                            int memory_dim, VlmWeights *w, const char *prefix, int n_layers,
                                            GError **error);
void vlm_postnorm_layers_free (VlmPostNormLayer *layers, int n_layers);

/* What cross-attention reads: memory [n_memory, memory_dim], shared by
 * every sequence. */
typedef struct {
  const float *memory;
  int n_memory;
} VlmPostNormCross;

/* Layer `li` in place on x [n_seq · rows, D]: sequence s's `rows` new rows
 * at cache rows [pos, pos + rows) of beam s; they attend to rows
 * [0, pos + rows) under `mask`, then to `cross` (NULL: none) if the layer
 * has it. With `kv_only` the layer only stores its keys and values and x
 * is left as it was. Temporaries come from `arena` and are released. */
void vlm_postnorm_layer_forward (const VlmPostNormConfig *c, const VlmPostNormLayer *l, VlmOps *ops,
                                 VlmArena *arena, VlmKvCache *cache, int li, float *x, int n_seq, int rows,
                                 int pos, const VlmMask *mask, const VlmPostNormCross *cross, gboolean kv_only);

#endif
