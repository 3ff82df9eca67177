/* generate.h — the one generation loop every model uses: greedy, beam search
 * and sampling with HF transformers' semantics, over any decoder that can
 * run one token per beam with a KV cache.
 *
 * The model does its own prefill (it alone knows how images enter the
 * sequence) and hands over the logits of the last prompt position. */
#ifndef VLM_GENERATE_H
#define VLM_GENERATE_H

#include <json-glib/json-glib.h>

#include "vlm/vlm.h"

#include "tensor.h"

/* One run's share of a decode step batched across sessions (VlmDecoder
 * step_batch): its beams' tokens at its own position, its logits. */
typedef struct {
  void *self;            /* a run of the decoder's model */
  const int *tokens;     /* [n_beams] */
  int n_beams, pos;
  float *logits;         /* [n_beams, vocab_size] */
  GError *error;         /* out: this group's own failure (an id outside the
                          * vocabulary, a full cache); the others still run */
} VlmStepGroup;

/* A decoder as the generation loop sees it. Cache rows are per beam. */
typedef struct {
  void *self;
  int vocab_size;
  /* Runs token tokens[b] for each beam b < n_beams at position `pos` (the
   * number of tokens already in each beam's cache: all beams always hold the
   * same number) and writes beam b's next-token logits to
   * logits[b * vocab_size]. */
  gboolean (*step) (void *self, const int *tokens, int n_beams, int pos, float *logits,
                    GError **error);
  /* After selection: beam b's cache (positions < len) becomes a copy of old
   * beam src[b]'s. Called with all src[b] = 0 before the first step of beam
   * search, so beam 0's prefilled cache reaches every beam. */
  void (*reorder) (void *self, const int *src, int n_beams, int len);
  /* Optional (the batcher's continuous batching): step() of several runs
   * of this decoder's model at once, each group as step() would run it,
   * the rows of every group going through each linear together; the
   * computation runs on the first group's ops, its temporaries from
   * `arena` (step_bytes(rows) free for the groups' rows in all). A group
   * that cannot run gets its own error; FALSE only when the batch failed. */
  gboolean (*step_batch) (VlmStepGroup *groups, int n_groups, VlmArena *arena, GError **error);
  size_t (*step_bytes) (const void *self, int rows);
} VlmDecoder;

/* For step_batch implementations: the rows of the groups without an error
 * (after their checks), and the buffer their logits [rows, V] go to: the
 * one group's own logits when there is one, else a block of `arena` that
 * vlm_step_logits_scatter copies out to each group's (`rows`: vlm_step_rows). */
int vlm_step_rows (const VlmStepGroup *groups, int n);
float *vlm_step_logits (VlmStepGroup *groups, int n, int rows, VlmArena *arena, int vocab_size);
void vlm_step_logits_scatter (VlmStepGroup *groups, int n, const float *logits, int vocab_size);
/* A decoder's step() as its step_batch over one group (the run's own
 * arena): the error of the group or of the batch. */
gboolean vlm_step_one (gboolean (*step_batch) (VlmStepGroup *groups, int n_groups, VlmArena *arena, GError **error),
                       void *self, VlmArena *arena, const int *tokens, int n_beams, int pos, float *logits,
                       GError **error);

/* Working memory for vlm_generate, sized once for a vocabulary, a beam
 * count and a token budget; grows (an allocation) only if a later call
 * asks for more beams or tokens than any call before. */
typedef struct VlmGenState VlmGenState;
VlmGenState *vlm_gen_state_new (int vocab_size, int max_beams, int max_new_tokens);
void vlm_gen_state_free (VlmGenState *state);
/* Bytes of working memory the state holds now (for logs and tests). */
gsize vlm_gen_state_get_bytes (const VlmGenState *state);

typedef struct {
  const int *prompt;        /* the prompt ids (for repetition penalty) */
  int n_prompt;
  int prompt_pos;           /* cache length after prefill = position of the first new token */
  const float *first_logits;/* [vocab] logits of the last prompt position */
  const int *eos_ids;       /* stop tokens (generation_config eos_token_id, may be a list) */
  int n_eos;
  int pad_id;
  const volatile gint *cancel; /* non-zero: stop with VLM_ERROR_CANCELLED */
  /* A stopping criterion beside EOS and max length (HF StopStringCriteria;
   * may be NULL): TRUE when the generated ids[0..n) complete a stop
   * sequence with ids[n - 1]. Asked for each chosen token (greedy and
   * sampling) and for each beam-search continuation. */
  gboolean (*stops) (void *stop_data, const int *ids, int n);
  void *stop_data;
} VlmGenInput;

/* Generates up to params->max_new_tokens tokens. On success writes the new
 * ids (without the prompt; including a final EOS, or the token that
 * completed a stop sequence, as HF returns them) to out_ids (capacity
 * params->max_new_tokens) and their count to *n_out.
 * on_token (may be NULL) sees each token as it is chosen, greedy/sampling
 * only. Returns FALSE with `error` set if the decoder fails or on cancel. */
gboolean vlm_generate (VlmGenState *state, const VlmDecoder *dec, const VlmGenInput *in,
                       const VlmGenParams *params, VlmTokenFunc on_token, void *user_data,
                       int *out_ids, int *n_out, GError **error);

/* VlmGenParams.early_stopping is TRUE, FALSE or this: HF's "never". */
#define VLM_EARLY_STOPPING_NEVER 2

/* HF defaults (max_new_tokens 20, num_beams 1, length_penalty 1.0,
 * early_stopping FALSE, do_sample FALSE, temperature 1, top_k 50, top_p 1,
 * repetition_penalty 1, seed 0, no stop strings, no_repeat_ngram_size 0,
 * forced_bos_token_id and forced_eos_token_id -1: off). */
void vlm_gen_params_init (VlmGenParams *params);

/* Applies the keys of a generation_config.json object (same names as
 * vlm_gen_params_parse; other keys are ignored here). stop_strings is HF's
 * JSON form: a string or a list of strings, not '|'-separated text. */
void vlm_gen_params_apply_json (VlmGenParams *params, JsonObject *config);

#endif
