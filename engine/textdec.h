/* textdec.h — a text decoder with learned positions whose layers
 * (postnorm.h) cross-attend to an encoder's output: BLIP's BERT text
 * decoder and GPT-2 (ViT-GPT2); BART's decoder (Florence-2) is the same
 * shape with embed_scale, pos_offset and a head bias. Below the
 * encoder–decoder architectures: they fill VlmTextDecoder from their
 * checkpoint names and use VlmTextRun as their generation state.
 *   x = [LN_emb] (word_embeddings[id] · embed_scale + position_embeddings[pos + pos_offset])
 *   x = layer_N (... layer_0 (x, memory))
 *   logits = lm_head ([transform] ([final LN] (x))) + head_bias
 * ref: transformers models/blip/modeling_blip_text.py (BlipTextEmbeddings,
 *      BlipTextLMPredictionHead), models/gpt2/modeling_gpt2.py (GPT2Model,
 *      GPT2LMHeadModel), models/bart/modeling_bart.py (BartDecoder) */
#ifndef VLM_TEXTDEC_H
#define VLM_TEXTDEC_H

#include "generate.h"
#include "postnorm.h"

typedef struct {
  VlmPostNormConfig cfg;
  int n_layers, vocab_size, max_positions;
  int pos_offset;                          /* BART's learned positions start at 2; else 0 */
  float embed_scale;                       /* BART's scale_embedding (sqrt D); else 1 */
  const VlmTensor *word_embeddings;        /* [V, D] as stored (rows read at lookup) */
  const float *position_embeddings;        /* [max_positions + pos_offset, D] */
  const float *emb_ln_w, *emb_ln_b;        /* [D] LN of the embedding sum (BERT); NULL: none (GPT-2) */
  VlmPostNormLayer *layers;                /* [n_layers] */
  const float *final_ln_w, *final_ln_b;    /* [D] GPT-2's ln_f; NULL: none */
  gboolean has_transform;                  /* BERT's prediction head transform: */
  VlmLinearW transform;                    /*   LN(act(dense(x))) [D, D] */
  const float *transform_ln_w, *transform_ln_b;
  VlmLinearW lm_head;                      /* [V, D] */
  const float *head_bias;                  /* [V] added to the logits (BERT's predictions.bias); NULL: none */
} VlmTextDecoder;

/* Sets cfg.act from HF's name `act` and checks the sizes read into d
 * (hidden_size a multiple of the heads, positive counts): BAD_CONFIG
 * naming `file` and `section` otherwise. */
gboolean vlm_text_decoder_check (VlmTextDecoder *d, const char *act, const char *file, const char *section,
                                 GError **error);
/* lm_head from `head`.weight if the checkpoint has it, else tied to
 * `tied`.weight (the word embeddings); laid out for the few rows a head
 * sees. Error naming the tensor. */
gboolean vlm_text_decoder_load_head (VlmTextDecoder *d, VlmWeights *w, const char *head, const char *tied,
                                     GError **error);
/* Frees what the loaders made (layers, linears); d may be zeroed. */
void vlm_text_decoder_clear (VlmTextDecoder *d);

/* A decoder's generation state, carved from its owner's arena: the
 * self-attention KV cache per beam, the cross-attention memory (one for all
 * beams), the logits, and the VlmDecoder the generation loop drives. */
typedef struct {
  const VlmTextDecoder *d;
  VlmOps *ops;
  VlmArena *arena;          /* the owner's: temporaries are released after each call */
  int max_beams, max_tokens;
  VlmKvCache cache;         /* max_beams × max_tokens rows per layer */
  VlmPostNormCross cross;
  float *logits;            /* [max (max_tokens, max_beams), V] */
  VlmDecoder decoder;
} VlmTextRun;

/* Arena bytes vlm_text_run_init takes and its calls use at most. */
size_t vlm_text_run_bytes (const VlmTextDecoder *d, int max_beams, int max_tokens, int max_memory, gboolean kv_bf16);
void vlm_text_run_init (VlmTextRun *r, const VlmTextDecoder *d, VlmOps *ops, VlmArena *arena, int max_beams,
                        int max_tokens, int max_memory);
/* Projects memory [n_memory, memory_dim] into every layer's
 * cross-attention keys and values: once per clip (or encoder run). */
void vlm_text_run_set_memory (VlmTextRun *r, const float *memory, int n_memory);
/* Runs decoder input ids [n] at positions 0.. through beam 0's cache after
 * set_memory; returns every row's logits [n, V] (owned by r). NULL +
 * BAD_ARGUMENT for an id outside the vocabulary or more tokens than the
 * run or the position table holds. */
const float *vlm_text_run_prefill (VlmTextRun *r, const int *ids, int n, GError **error);

#endif
