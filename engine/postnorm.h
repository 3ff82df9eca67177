/* postnorm.h — the transformer layer of BERT, BART and GPT-2, for every
 * model whose text side is one: GIT's text decoder (BertLayer, causal over
 * its text, every row seeing the visual prefix), BLIP's text decoder and
 * GPT-2 (ViT-GPT2), which add cross-attention to an encoder's output, and
 * BART's encoder and decoder (Florence-2). Post-norm (BERT, BART):
 *   x = LN(x + out(attn(x)))                self-attention, through a KV cache
 *   x = LN(x + out(attn(x, memory)))        cross-attention (optional)
 *   x = LN(x + fc2(act(fc1(x))))
 * or, with pre_norm (GPT-2), the same blocks and norms in pre-norm order:
 *   x = x + out(attn(LN(x)));  x = x + out(attn(LN(x), memory));  x = x + fc2(act(fc1(LN(x))))
 * Tensor names come from a name map (VlmPostNormNames), one per family.
 *
 * Encoder–decoders: cross-attention reads a VlmPostNormCross, the keys and
 * values of the encoder's output projected ONCE per clip (or per encoder
 * run) by vlm_postnorm_cross_set for every layer; all beams share it, so the
 * generation loop's reorders never touch it (only the self-attention cache
 * follows the beams).
 * ref: transformers models/bert/modeling_bert.py (BertLayer),
 *      models/blip/modeling_blip_text.py (BlipTextLayer),
 *      models/bart/modeling_bart.py (BartEncoderLayer, BartDecoderLayer),
 *      models/gpt2/modeling_gpt2.py (GPT2Block, Conv1D) */
#ifndef VLM_POSTNORM_H
#define VLM_POSTNORM_H

#include "generate.h"
#include "kvcache.h"
#include "weights.h"

typedef struct {
  int hidden_size, intermediate_size, num_heads;
  float eps;                 /* layer_norm_eps */
  VlmAct act;                /* hidden_act */
  gboolean pre_norm;         /* GPT-2's order (see above); FALSE: BERT's and BART's */
} VlmPostNormConfig;

/* One attention block: q/k/v/out projections with bias, and its
 * LayerNorm (of the residual sum; pre_norm: of the block's input). */
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
  const float *out_ln_w, *out_ln_b;   /* [D] the MLP block's norm */
} VlmPostNormLayer;

/* HF keys under `PREFIX.N.`: an attention block is five names (q, k, v,
 * out, norm; the norm's .weight/.bias and the linears' .weight/.bias are
 * added); cross NULL: no cross-attention. Projections that share a name
 * are equal parts of one fused tensor, in q, k, v order (GPT-2's c_attn
 * holds q, k, v; its crossattention.c_attn k, v; BLIP's vision qkv).
 * conv1d: the linears are GPT-2 Conv1D, stored [in, out]. */
typedef struct {
  const char *attn[5];
  const char *cross[5];
  const char *fc1, *fc2, *out_norm;
  gboolean conv1d;
} VlmPostNormNames;

/* BertLayer: attention.self.query, ..., intermediate.dense, output.dense. */
extern const VlmPostNormNames vlm_postnorm_bert;
/* BlipTextLayer: BertLayer + crossattention.self.query, ... */
extern const VlmPostNormNames vlm_postnorm_blip;
/* GPT2Block with add_cross_attention: ln_1, attn.c_attn (q, k, v), attn.c_proj,
 * ln_cross_attn, crossattention.q_attn / .c_attn (k, v) / .c_proj, ln_2,
 * mlp.c_fc, mlp.c_proj (pre_norm). */
extern const VlmPostNormNames vlm_postnorm_gpt2;
/* BartDecoderLayer: self_attn.{q,k,v,out}_proj, self_attn_layer_norm,
 * encoder_attn.* and encoder_attn_layer_norm, fc1, fc2, final_layer_norm;
 * BartEncoderLayer: the same without encoder_attn. */
extern const VlmPostNormNames vlm_postnorm_bart_encoder;
extern const VlmPostNormNames vlm_postnorm_bart_decoder;

/* Loads `prefix`.N.* for N < n_layers by `names` (memory_dim: the width
 * cross-attention reads; ignored without it). NULL + error naming the
 * tensor; free with vlm_postnorm_layers_free. */
VlmPostNormLayer *vlm_postnorm_layers_load (const VlmPostNormConfig *c, const VlmPostNormNames *names,
                                            int memory_dim, VlmWeights *w, const char *prefix, int n_layers,
                                            GError **error);
void vlm_postnorm_layers_free (VlmPostNormLayer *layers, int n_layers);

/* What cross-attention reads: every layer's keys and values of a memory of
 * n_memory rows (one "beam" of a VlmKvCache whose rows are memory rows). */
typedef struct {
  VlmKvCache kv;
  int n_memory;   /* rows set by the last vlm_postnorm_cross_set */
} VlmPostNormCross;

/* Arena bytes vlm_postnorm_cross_init takes for memories of up to
 * max_memory rows. */
size_t vlm_postnorm_cross_bytes (const VlmPostNormConfig *c, int n_layers, int max_memory, gboolean bf16);
void vlm_postnorm_cross_init (VlmPostNormCross *cross, VlmArena *arena, const VlmPostNormConfig *c, int n_layers,
                              int max_memory, gboolean bf16);
/* Projects memory [n_memory ≤ max_memory, memory_dim] through every
 * layer's cross-attention key and value (layers without cross-attention
 * are skipped). Temporaries come from `arena` and are released. */
void vlm_postnorm_cross_set (VlmPostNormCross *cross, const VlmPostNormConfig *c, const VlmPostNormLayer *layers,
                             int n_layers, VlmOps *ops, VlmArena *arena, const float *memory, int n_memory);

/* One sequence of a forward pass through decoder layers: the cache and
 * beam its keys and values go to, the rows that beam holds before this
 * pass (its new rows go at [pos, pos + rows)), and the memory its
 * cross-attention reads (NULL: none). The beams of one run are sequences
 * of one cache; a step batched across sessions holds sequences of several
 * caches and memories, each at its own position. */
typedef struct {
  VlmKvCache *cache;
  int beam, pos;
  const VlmPostNormCross *cross;
} VlmPostNormSeq;

/* For the step_batch of a decoder over these layers: one row per beam of
 * each group without an error, from `arena`: ids[i] its token,
 * positions[i] its group's pos, seqs[i] = seq_of (group's run, beam, pos).
 * Returns the row count. */
int vlm_postnorm_step_rows (const VlmStepGroup *groups, int n, VlmArena *arena,
                            VlmPostNormSeq (*seq_of) (void *self, int beam, int pos), int **ids, int **positions,
                            VlmPostNormSeq **seqs);

/* Layer `li` in place on x [n_seq · rows, D]: sequence s's `rows` new rows
 * at rows [pos, pos + rows) of its cache; they attend to rows
 * [0, pos + rows) under `mask` (its q_pos0 is each sequence's pos), then
 * to the sequence's cross memory if the layer has cross-attention. seqs
 * NULL (an encoder): each sequence's rows attend to each other only, under
 * `mask`. With `kv_only` the layer only stores its keys and values and x is
 * left as it was. Temporaries come from `arena` and are released. */
void vlm_postnorm_layer_forward (const VlmPostNormConfig *c, const VlmPostNormLayer *l, VlmOps *ops,
                                 VlmArena *arena, int li, float *x, const VlmPostNormSeq *seqs, int n_seq,
                                 int rows, const VlmMask *mask, gboolean kv_only);

/* Arena bytes one vlm_postnorm_layer_forward over m rows takes. */
size_t vlm_postnorm_layer_bytes (const VlmPostNormConfig *c, int m);

#endif
