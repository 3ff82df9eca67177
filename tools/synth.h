/* synth.h — synthetic checkpoints for benchmarks and tests: tensors under
 * their HF names filled with seeded random values, written as a
 * model.safetensors any loader reads. For models whose speed is real and
 * whose outputs do not matter. One writer, shared by tools/vlm-bench and
 * tests/test_element.c; it uses GLib only, not the engine. */
#ifndef VLM_SYNTH_H
#define VLM_SYNTH_H

#include <glib.h>
#include <stdint.h>

typedef enum {
  SYNTH_WEIGHT,     /* HF initializer_range 0.02, as a uniform of that std */
  SYNTH_NORM_GAIN,  /* LayerNorm weight ≈ 1 */
} SynthInit;

typedef struct {
  const char *name;
  int ndim;
  int64_t shape[4];
  SynthInit init;
  int64_t pinned;      /* element set to pinned_value, or -1 */
  float pinned_value;
} SynthTensor;

typedef struct {
  GArray *specs;       /* SynthTensor */
  GStringChunk *names;
  gboolean bf16;       /* every tensor stored as BF16 (round to nearest even), else F32 */
} SynthCheckpoint;


/* A GIT checkpoint's shape: what config.json says, nothing more. */
typedef struct {
  const char *name;
  int vision_hidden, vision_intermediate, vision_layers, vision_heads, image_size, patch_size;
  int hidden, intermediate, layers, heads, vocab, max_positions, frames;
} SynthGit;

/* A Florence2ForConditionalGeneration checkpoint's shape (config.json's
 * values): DaViT stages, BART sides. */
typedef struct {
  const char *name;
  int n_stages, embed_dim[4], depths[4], heads[4], groups[4], patch[4], stride[4], padding[4];
  int window, image_size, max_image_positions;
  int d_model, ffn, encoder_layers, decoder_layers, text_heads, vocab, max_positions, image_token_id;
} SynthFlorence2;

/* An empty checkpoint (bf16: every tensor stored as BF16, else F32), and
 * its release. */
void synth_init (SynthCheckpoint *c, gboolean bf16);
void synth_clear (SynthCheckpoint *c);
/* Uniform in [-1, 1) from a fixed seed: the same values on every machine. */
float synth_uniform (void);
/* printf-style name kept as long as c. */
const char *synth_name (SynthCheckpoint *c, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
/* Adds a tensor of ndim (≤ 4) dimensions d0..; the pointer is valid until the next add. */
SynthTensor *synth_tensor (SynthCheckpoint *c, const char *name, SynthInit init, int ndim, int64_t d0, int64_t d1,
                           int64_t d2, int64_t d3);
/* PREFIX.weight [n, k] and PREFIX.bias [n]. */
void synth_linear (SynthCheckpoint *c, const char *prefix, int n, int k);
/* PREFIX.weight [d] (≈ 1) and PREFIX.bias [d]. */
void synth_layer_norm (SynthCheckpoint *c, const char *prefix, int d);
/* Every tensor GitForCausalLM's state dict holds, under the Hub's names;
 * pin_id ≥ 0: that token's output bias is -100 (never generated). */
void synth_git_tensors (SynthCheckpoint *c, const SynthGit *p, int pin_id);
/* Every tensor Florence2ForConditionalGeneration's state dict holds
 * (transformers 5 names: model.vision_tower, model.multi_modal_projector,
 * model.language_model) and an untied lm_head: with random weights the
 * tied head predicts the decoder's input token (</s>) again and again. */
void synth_florence2_tensors (SynthCheckpoint *c, const SynthFlorence2 *p);
/* A byte-level BPE tokenizer.json (GPT-2's byte symbols, no merges) of
 * `vocab` ids: the `n_special` special tokens at their ids, byte b at
 * first_byte + b, "w<id>" at every other id. g_free. */
char *synth_bytelevel_tokenizer (int vocab, const int *special_ids, const char *const *special_tokens, int n_special,
                                 int first_byte);
int64_t synth_numel (const SynthTensor *t);
/* Streams every tensor to `path` (4 MB of buffer whatever the size).
 * G_FILE_ERROR naming `path` otherwise. */
gboolean synth_write (const char *path, const SynthCheckpoint *c, GError **error);

/* BERT's special ids, which synth_wordpiece_json keeps. */
enum { SYNTH_PAD_ID = 0, SYNTH_UNK_ID = 100, SYNTH_CLS_ID = 101, SYNTH_SEP_ID = 102, SYNTH_MASK_ID = 103 };

/* A BERT-style WordPiece tokenizer.json (BertNormalizer, lower case; [CLS]
 * text [SEP] template) over ids 0 .. vocab_size - 1: BERT's special ids
 * above, [unusedN] at 1..99 if unused_slots (else ordinary tokens there
 * too), then the printable ASCII characters but upper case and their "##"
 * continuations, then made-up words of two-letter syllables (a bijective
 * base-100 numeral, so all are distinct), one in eight a "##" piece. Any
 * text of those characters tokenizes. g_free. */
char *synth_wordpiece_json (int vocab_size, gboolean unused_slots);

#endif
