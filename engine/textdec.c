/* textdec.c — the cross-attending text decoder and its run (textdec.h). */
#include "textdec.h"

/* ---------------------------------------------------------------- weights */

gboolean
vlm_text_decoder_check (VlmTextDecoder *d, const char *act, const char *file, const char *section, GError **error)
{
  const VlmPostNormConfig *c = &d->cfg;
  if (!vlm_act_from_name (act, &d->cfg.act)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: %s activation \"%s\" is not supported", file, section,
                 act);
    return FALSE;
  }
  if (c->hidden_size < 1 || c->num_heads < 1 || c->hidden_size % c->num_heads || c->intermediate_size < 1 ||
      d->n_layers < 1 || d->vocab_size < 1 || d->max_positions < 1) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: %s sizes are inconsistent (hidden %d / %d heads, intermediate %d, %d layers, vocabulary %d, "
                 "%d positions)", file, section, c->hidden_size, c->num_heads, c->intermediate_size, d->n_layers,
                 d->vocab_size, d->max_positions);
    return FALSE;
  }
  return TRUE;
}

gboolean
vlm_text_decoder_load_head (VlmTextDecoder *d, VlmWeights *w, const char *head, const char *tied, GError **error)
{
  const char *name = vlm_weights_has (w, "%s.weight", head) ? head : tied;
  w->rows = 1;
  gboolean ok = vlm_weights_linear (w, &d->lm_head, FALSE, d->vocab_size, d->cfg.hidden_size, error, "%s", name);
  w->rows = 0;
  return ok;
}

void
vlm_text_decoder_clear (VlmTextDecoder *d)
{
  vlm_postnorm_layers_free (d->layers, d->n_layers);
  d->layers = NULL;
  vlm_linear_clear (&d->transform);
  vlm_linear_clear (&d->lm_head);
}

/* ---------------------------------------------------------------- run */

size_t
vlm_text_run_bytes (const VlmTextDecoder *d, int max_beams, int max_tokens, int max_memory, gboolean kv_bf16)
{
  const VlmPostNormConfig *c = &d->cfg;
  int D = c->hidden_size, rows = MAX (max_tokens, max_beams), hd = D / c->num_heads;
  size_t floats = (size_t) rows * d->vocab_size   /* logits */
                  + (size_t) rows * 2 * D;        /* x and the head's h */
  return floats * sizeof (float) + 16 * 64 + (size_t) rows * (2 * sizeof (int) + sizeof (VlmPostNormSeq)) + vlm_kv_cache_bytes (d->n_layers, max_beams, max_tokens, c->num_heads, hd, kv_bf16) +
         vlm_postnorm_cross_bytes (c, d->n_layers, max_memory, kv_bf16) +
         MAX (vlm_postnorm_layer_bytes (c, rows), (size_t) max_memory * 2 * D * sizeof (float) + 2 * 64);
}

static gboolean text_step (void *self, const int *tokens, int n_beams, int pos, float *logits, GError **error);
static void text_reorder (void *self, const int *src, int n_beams, int len);
static gboolean text_step_batch (VlmStepGroup *groups, int n, VlmArena *arena, GError **error);
static size_t text_step_bytes (const void *self, int rows);

void
vlm_text_run_init (VlmTextRun *r, const VlmTextDecoder *d, VlmOps *ops, VlmArena *arena, int max_beams, int max_tokens,
                   int max_memory)
{
  const VlmPostNormConfig *c = &d->cfg;
  *r = (VlmTextRun) {d, ops, arena, max_beams, MIN (max_tokens, d->max_positions)};
  vlm_kv_cache_init (&r->cache, arena, d->n_layers, max_beams, r->max_tokens, c->num_heads,
                     c->hidden_size / c->num_heads, vlm_ops_kv_bf16 (ops));
  vlm_postnorm_cross_init (&r->cross, arena, c, d->n_layers, max_memory, vlm_ops_kv_bf16 (ops));
  r->logits = vlm_arena_new (arena, float, (size_t) MAX (r->max_tokens, max_beams) * d->vocab_size);
  r->decoder = (VlmDecoder) {r, d->vocab_size, text_step, text_reorder, text_step_batch, text_step_bytes};
}

void
vlm_text_run_set_memory (VlmTextRun *r, const float *memory, int n_memory)
{
  vlm_postnorm_cross_set (&r->cross, &r->d->cfg, r->d->layers, r->d->n_layers, r->ops, r->arena, memory, n_memory);
}

/* ids must be in the vocabulary and `end` (tokens after them) must fit the
 * cache and the position table. */
static gboolean
check_ids (const VlmTextRun *r, const int *ids, int n, int end, GError **error)
{
  if (end > r->max_tokens) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "text of %d tokens exceeds the %d positions this run holds (model: %d)", end, r->max_tokens,
                 r->d->max_positions);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= r->d->vocab_size) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "token id %d outside the vocabulary of %d", ids[i],
                   r->d->vocab_size);
      return FALSE;
    }
  return TRUE;
}

/* x [n, D]: row i = ids[i] at position pos[i]. */
static void
embed (const VlmTextDecoder *d, VlmOps *ops, const int *ids, const int *pos, int n, float *x)
{
  int D = d->cfg.hidden_size;
  for (int i = 0; i < n; i++) {
    float *xi = x + (size_t) i * D;
    const float *pe = d->position_embeddings + (size_t) (pos[i] + d->pos_offset) * D;
    vlm_tensor_rows_to_f32 (d->word_embeddings, ids[i], 1, xi);
    for (int j = 0; j < D; j++)
      xi[j] = xi[j] * d->embed_scale + pe[j];
  }
  if (d->emb_ln_w)
    vlm_layer_norm (ops, x, n, D, d->emb_ln_w, d->emb_ln_b, d->cfg.eps, x);
}

/* Sequences of `rows` new rows each at their cache rows [pos, pos + rows),
 * causal, through every layer, then the head: logits [n_seq · rows, V]. */
static void
forward (const VlmTextDecoder *d, VlmOps *ops, VlmArena *arena, float *x, const VlmPostNormSeq *seqs, int n_seq,
         int rows, float *logits)
{
  int D = d->cfg.hidden_size, M = n_seq * rows;
  const VlmMask mask = {TRUE, 0, 0};
  for (int li = 0; li < d->n_layers; li++)
    vlm_postnorm_layer_forward (&d->cfg, &d->layers[li], ops, arena, li, x, seqs, n_seq, rows, &mask, FALSE);
  if (d->final_ln_w)
    vlm_layer_norm (ops, x, M, D, d->final_ln_w, d->final_ln_b, d->cfg.eps, x);
  size_t mark = vlm_arena_mark (arena);
  const float *h = x;
  if (d->has_transform) {
    float *t = vlm_arena_new (arena, float, (size_t) M * D);
    vlm_linear (ops, &d->transform, x, M, t, d->cfg.act, NULL);
    vlm_layer_norm (ops, t, M, D, d->transform_ln_w, d->transform_ln_b, d->cfg.eps, t);
    h = t;
  }
  vlm_linear (ops, &d->lm_head, h, M, logits, VLM_ACT_NONE, NULL);
  for (int i = 0; d->head_bias && i < M; i++)
    for (int v = 0; v < d->vocab_size; v++)
      logits[(size_t) i * d->vocab_size + v] += d->head_bias[v];
  vlm_arena_rewind (arena, mark);
}

const float *
vlm_text_run_prefill (VlmTextRun *r, const int *ids, int n, GError **error)
{
  if (n < 1 || !check_ids (r, ids, n, n, error))
    return NULL;
  size_t mark = vlm_arena_mark (r->arena);
  float *x = vlm_arena_new (r->arena, float, (size_t) n * r->d->cfg.hidden_size);
  int *pos = vlm_arena_new (r->arena, int, n);
  for (int i = 0; i < n; i++)
    pos[i] = i;
  embed (r->d, r->ops, ids, pos, n, x);
  vlm_kv_cache_reset (&r->cache);   /* beam 0 only, until the generation loop's first reorder */
  const VlmPostNormSeq seq = {&r->cache, 0, 0, &r->cross};
  forward (r->d, r->ops, r->arena, x, &seq, 1, n, r->logits);
  vlm_arena_rewind (r->arena, mark);
  return r->logits;
}

/* A step's row of `beam`: the run's cache and memory. */
static VlmPostNormSeq
step_seq (void *self, int beam, int pos)
{
  VlmTextRun *r = self;
  return (VlmPostNormSeq) {&r->cache, beam, pos, &r->cross};
}

/* Every group's beams, one row each, through the layers and the head
 * together (a group is one run: one session's step, or a single step()). */
static gboolean
text_step_batch (VlmStepGroup *groups, int n, VlmArena *arena, GError **error)
{
  const VlmTextRun *r0 = groups[0].self;
  const VlmTextDecoder *d = r0->d;
  for (int g = 0; g < n; g++) {
    const VlmTextRun *r = groups[g].self;
    g_assert (r->d == d && groups[g].n_beams <= r->max_beams);
    check_ids (r, groups[g].tokens, groups[g].n_beams, groups[g].pos + 1, &groups[g].error);
  }
  int rows = vlm_step_rows (groups, n), *ids, *pos;
  if (rows == 0)
    return TRUE;
  size_t mark = vlm_arena_mark (arena);
  float *x = vlm_arena_new (arena, float, (size_t) rows * d->cfg.hidden_size);
  VlmPostNormSeq *seqs;
  vlm_postnorm_step_rows (groups, n, arena, step_seq, &ids, &pos, &seqs);
  float *logits = vlm_step_logits (groups, n, rows, arena, d->vocab_size);
  embed (d, r0->ops, ids, pos, rows, x);
  forward (d, r0->ops, arena, x, seqs, rows, 1, logits);
  vlm_step_logits_scatter (groups, n, logits, d->vocab_size);
  vlm_arena_rewind (arena, mark);
  (void) error;
  return TRUE;
}

static size_t
text_step_bytes (const void *self, int rows)
{
  const VlmTextDecoder *d = ((const VlmTextRun *) self)->d;
  return (size_t) rows * ((d->vocab_size + 2 * d->cfg.hidden_size) * sizeof (float) + 2 * sizeof (int) +
                          sizeof (VlmPostNormSeq)) + vlm_postnorm_layer_bytes (&d->cfg, rows) + 16 * 64;
}

static gboolean
text_step (void *self, const int *tokens, int n_beams, int pos, float *logits, GError **error)
{
  VlmTextRun *r = self;
  return vlm_step_one (text_step_batch, r, r->arena, tokens, n_beams, pos, logits, error);
}

/* The self-attention cache follows the beams; the memory is every beam's. */
static void
text_reorder (void *self, const int *src, int n_beams, int len)
{
  VlmTextRun *r = self;
  vlm_kv_cache_reorder (&r->cache, src, n_beams, len);
}
