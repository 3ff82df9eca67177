/* git.c — GIT for video captioning.
 * ref: transformers models/git/modeling_git.py (GitModel, GitForCausalLM)
 *
 * Sequence = [visual tokens; text tokens]. Visual tokens attend to each
 * other only, so their keys/values in every text layer depend on the clip
 * alone: encode() computes them once per clip into beam 0's cache (the
 * generation loop's first reorder gives them to every beam), and each
 * generated token then costs only its own text path. Text positions
 * start at 0 after the visual tokens (the golden's use_cache=False numbers). */
#include "git.h"

#include "kvcache.h"

struct GitRun {
  VlmModel *model;
  const Git *g;
  VlmOps *ops;
  VlmArena arena;
  int max_beams, max_text, n_visual, cache_rows;
  VlmKvCache cache;           /* max_beams × cache_rows (visual, then text) per layer */
  float *vision_out;          /* [F·T, Dv] tower output, before temporal embedding */
  float *visual;              /* [F·T, D] projected visual tokens */
  float *logits;              /* [max(max_text, max_beams), vocab] */
  VlmDecoder decoder;
};

/* ---------------------------------------------------------------- load */

static gboolean
read_config (Git *g, JsonObject *cfg, const char *file, GError **error)
{
  VlmPostNormConfig *t = &g->text;
  if (!vlm_json_require_int (cfg, "hidden_size", file, &t->hidden_size, error) ||
      !vlm_json_require_int (cfg, "intermediate_size", file, &t->intermediate_size, error) ||
      !vlm_json_require_int (cfg, "num_attention_heads", file, &t->num_heads, error) ||
      !vlm_json_require_int (cfg, "num_hidden_layers", file, &g->num_layers, error) ||
      !vlm_json_require_int (cfg, "vocab_size", file, &g->vocab_size, error) ||
      !vlm_json_require_int (cfg, "max_position_embeddings", file, &g->max_positions, error))
    return FALSE;
  t->eps = (float) vlm_json_double (cfg, "layer_norm_eps", 1e-12);
  const char *act = vlm_json_string (cfg, "hidden_act", "gelu");
  if (!vlm_act_from_name (act, &t->act) || t->hidden_size % t->num_heads) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: hidden_act \"%s\" or hidden_size %d / %d heads not supported",
                 file, act, t->hidden_size, t->num_heads);
    return FALSE;
  }
  g->n_frames = MAX (vlm_json_int (cfg, "num_image_with_embedding", 0), 0);
  return vlm_vit_config_read (&g->vision.cfg, vlm_json_object (cfg, "vision_config"), file, TRUE, error);
}

static void git_free (void *impl);

static void *
git_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info,
          GError **error)
{
  Git *g = g_new0 (Git, 1);
  if (!read_config (g, cfg, file, error) ||
      !vlm_vit_load (&g->vision, &vlm_vit_clip_names, w, "git.image_encoder.vision_model.", error))
    goto fail;
  int D = g->text.hidden_size, Dv = g->vision.cfg.hidden_size;
  int64_t d[] = {D}, dv3[] = {1, 1, Dv}, emb[] = {g->vocab_size, D}, pos[] = {g->max_positions, D};
  if (!vlm_weights_check_count (w, g->n_frames, "num_image_with_embedding", error) ||
      !vlm_weights_check_count (w, g->num_layers, "num_hidden_layers", error))
    goto fail;
  g->temporal_embedding = g_new0 (const float *, MAX (g->n_frames, 1));
  for (int i = 0; i < g->n_frames; i++) {
    /* Hub checkpoints spell it "temperal". */
    const char *spelling = vlm_weights_has (w, "git.img_temporal_embedding.%d", i) ? "temporal" : "temperal";
    if (!(g->temporal_embedding[i] = vlm_weights_f32 (w, error, 3, dv3, "git.img_%s_embedding.%d", spelling, i)))
      goto fail;
  }
  if (!vlm_weights_linear (w, &g->projection, TRUE, D, Dv, error, "git.visual_projection.visual_projection.0") ||
      !(g->projection_ln_w = vlm_weights_f32 (w, error, 1, d, "git.visual_projection.visual_projection.1.weight")) ||
      !(g->projection_ln_b = vlm_weights_f32 (w, error, 1, d, "git.visual_projection.visual_projection.1.bias")) ||
      !(g->word_embeddings = vlm_weights_f32 (w, error, 2, emb, "git.embeddings.word_embeddings.weight")) ||
      !(g->position_embeddings = vlm_weights_f32 (w, error, 2, pos, "git.embeddings.position_embeddings.weight")) ||
      !(g->emb_ln_w = vlm_weights_f32 (w, error, 1, d, "git.embeddings.LayerNorm.weight")) ||
      !(g->emb_ln_b = vlm_weights_f32 (w, error, 1, d, "git.embeddings.LayerNorm.bias")) ||
      !vlm_weights_linear (w, &g->output, TRUE, g->vocab_size, D, error, "output"))
    goto fail;
  if (!(g->layers = vlm_postnorm_layers_load (&g->text, &vlm_postnorm_bert, 0, w, "git.encoder.layer", g->num_layers,
                                              error)))
    goto fail;
  *info = (VlmArchInfo) {
    .frames_per_clip = MAX (g->n_frames, 1),
    .processor_section = "image_processor",
    .image_size = g->vision.cfg.image_size,
    .vocab_size = g->vocab_size,
    .max_positions = g->max_positions,
  };
  return g;
fail:
  git_free (g);
  return NULL;
}

static void
git_free (void *impl)
{
  Git *g = impl;
  if (!g)
    return;
  vlm_vit_clear (&g->vision);
  vlm_postnorm_layers_free (g->layers, g->num_layers);
  vlm_linear_clear (&g->projection);
  vlm_linear_clear (&g->output);
  g_free (g->temporal_embedding);
  g_free (g);
}

/* ---------------------------------------------------------------- text decoder */

/* Runs x [n_seq · rows, D] (sequence s: `rows` new rows at rows
 * [pos, pos + rows) of its cache and beam, pos counting the visual rows)
 * through every text layer, in place:
 *   x = LN(x + dense(attn(x)));  x = LN(x + out(gelu(intermediate(x))))
 * (postnorm.h). Keys are rows [0, pos + rows) of the sequence's cache; the
 * GIT mask lets a row see all visual rows and the text rows up to itself.
 * With `cache_only`, the last layer only stores its keys and values: the
 * visual rows' outputs are never read, only their cache rows (at git-base
 * size that skips 18 of the visual rows' 126 GFLOP per clip), and x is left
 * as the last layer's input. */
static void
text_forward (const Git *g, VlmOps *ops, VlmArena *arena, int n_visual, float *x, const VlmPostNormSeq *seqs,
              int n_seq, int rows, gboolean cache_only)
{
  const VlmMask mask = {TRUE, n_visual, 0};
  for (int li = 0; li < g->num_layers; li++)
    vlm_postnorm_layer_forward (&g->text, &g->layers[li], ops, arena, li, x, seqs, n_seq, rows, &mask,
                                cache_only && li == g->num_layers - 1);
}

/* x[i] = LayerNorm(word_embeddings[ids[i]] + position_embeddings[pos[i]]) */
static void
embed_text (const Git *g, VlmOps *ops, const int *ids, const int *positions, int n, float *x)
{
  int D = g->text.hidden_size;
  for (int i = 0; i < n; i++) {
    const float *we = g->word_embeddings + (size_t) ids[i] * D;
    const float *pe = g->position_embeddings + (size_t) positions[i] * D;
    for (int j = 0; j < D; j++)
      x[(size_t) i * D + j] = we[j] + pe[j];
  }
  vlm_layer_norm (ops, x, n, D, g->emb_ln_w, g->emb_ln_b, g->text.eps, x);
}

/* ids must be in the vocabulary and `end` (text length after them) must fit
 * the cache and the position table. */
static gboolean
check_ids (const GitRun *r, const int *ids, int n, int end, GError **error)
{
  if (end > r->max_text) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "text of %d tokens exceeds the %d positions this run holds (model: %d)", end,
                 r->max_text, r->g->max_positions);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= r->g->vocab_size) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "token id %d outside the vocabulary of %d",
                   ids[i], r->g->vocab_size);
      return FALSE;
    }
  return TRUE;
}

/* A step's row of `beam`: its text position after the visual rows. */
static VlmPostNormSeq
step_seq (void *self, int beam, int pos)
{
  GitRun *r = self;
  return (VlmPostNormSeq) {&r->cache, beam, r->n_visual + pos, NULL};
}

/* Every group's beams, one row each, through the text layers and the
 * output together (a group is one run: one session's step, or a single
 * step()). */
static gboolean
git_step_batch (VlmStepGroup *groups, int n, VlmArena *arena, GError **error)
{
  const GitRun *r0 = groups[0].self;
  const Git *g = r0->g;
  int D = g->text.hidden_size;
  for (int k = 0; k < n; k++) {
    const GitRun *r = groups[k].self;
    g_assert (r->g == g && r->n_visual == r0->n_visual && groups[k].n_beams <= r->max_beams);
    check_ids (r, groups[k].tokens, groups[k].n_beams, groups[k].pos + 1, &groups[k].error);
  }
  int rows = vlm_step_rows (groups, n), *ids, *positions;
  if (rows == 0)
    return TRUE;
  size_t mark = vlm_arena_mark (arena);
  float *x = vlm_arena_new (arena, float, (size_t) rows * D);
  VlmPostNormSeq *seqs;
  vlm_postnorm_step_rows (groups, n, arena, step_seq, &ids, &positions, &seqs);
  float *logits = vlm_step_logits (groups, n, rows, arena, g->vocab_size);
  embed_text (g, r0->ops, ids, positions, rows, x);
  text_forward (g, r0->ops, arena, r0->n_visual, x, seqs, rows, 1, FALSE);
  vlm_linear (r0->ops, &g->output, x, rows, logits, VLM_ACT_NONE, NULL);
  vlm_step_logits_scatter (groups, n, logits, g->vocab_size);
  vlm_arena_rewind (arena, mark);
  (void) error;
  return TRUE;
}

static size_t
git_step_bytes (const void *self, int rows)
{
  const Git *g = ((const GitRun *) self)->g;
  return (size_t) rows * ((g->vocab_size + g->text.hidden_size) * sizeof (float) + 2 * sizeof (int) +
                          sizeof (VlmPostNormSeq)) + vlm_postnorm_layer_bytes (&g->text, rows) + 16 * 64;
}

static gboolean
git_step (void *self, const int *tokens, int n_beams, int pos, float *logits, GError **error)
{
  GitRun *r = self;
  return vlm_step_one (git_step_batch, r, &r->arena, tokens, n_beams, pos, logits, error);
}

/* `len` counts text rows: the cache's rows are the visual ones, then those. */
static void
git_reorder (void *self, const int *src, int n_beams, int len)
{
  GitRun *r = self;
  vlm_kv_cache_reorder (&r->cache, src, n_beams, r->n_visual + len);
}

/* ---------------------------------------------------------------- run */

static void git_run_free (void *run);

static void *
git_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error)
{
  const Git *g = model->impl;
  const VlmVitConfig *vc = &g->vision.cfg;
  GitRun *r = g_new0 (GitRun, 1);
  int F = model->info.frames_per_clip, D = g->text.hidden_size;
  r->model = model;
  r->g = g;
  r->ops = ops;
  r->max_beams = max_beams;
  r->max_text = MIN (max_tokens, g->max_positions);
  r->n_visual = F * vc->n_tokens;
  r->cache_rows = r->n_visual + r->max_text;
  size_t V = r->n_visual, rows = MAX (V, (size_t) MAX (r->max_text, max_beams));
  size_t floats = V * vc->hidden_size                                         /* vision_out */
                  + (size_t) MAX (r->max_text, max_beams) * g->vocab_size       /* logits */
                  + V * D                                                       /* visual */
                  + V * MAX (vc->hidden_size, D);                               /* encode temporaries */
  size_t bytes = floats * sizeof (float) + vlm_vit_arena_size (&g->vision, F) + 64 * 64 +
                 (size_t) max_beams * (sizeof (VlmPostNormSeq) + 2 * sizeof (int)) +   /* a step's sequences */
                 vlm_postnorm_layer_bytes (&g->text, (int) rows) +              /* one text layer */
                 vlm_kv_cache_bytes (g->num_layers, max_beams, r->cache_rows, g->text.num_heads, D / g->text.num_heads,
                                    vlm_ops_kv_bf16 (ops));
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    git_run_free (r);
    return NULL;
  }
  vlm_kv_cache_init (&r->cache, &r->arena, g->num_layers, max_beams, r->cache_rows, g->text.num_heads,
                     D / g->text.num_heads, vlm_ops_kv_bf16 (ops));
  r->vision_out = vlm_arena_new (&r->arena, float, V * vc->hidden_size);
  r->visual = vlm_arena_new (&r->arena, float, V * D);
  r->logits = vlm_arena_new (&r->arena, float, (size_t) MAX (r->max_text, max_beams) * g->vocab_size);
  r->decoder = (VlmDecoder) {r, g->vocab_size, git_step, git_reorder, git_step_batch, git_step_bytes};
  return r;
}

static void
git_run_free (void *run)
{
  GitRun *r = run;
  if (!r)
    return;
  vlm_arena_clear (&r->arena);
  g_free (r);
}

/* After the tower (vision_out): + temporal embedding → projection + LN →
 * the visual rows of every text layer's cache, in beam 0. */
static void
encode_visual (GitRun *r)
{
  const Git *g = r->g;
  int Dv = g->vision.cfg.hidden_size, D = g->text.hidden_size, T = g->vision.cfg.n_tokens, V = r->n_visual;
  size_t mark = vlm_arena_mark (&r->arena);
  float *feat = vlm_arena_new (&r->arena, float, (size_t) V * Dv);
  memcpy (feat, r->vision_out, (size_t) V * Dv * sizeof (float));
  for (int f = 0; f < g->n_frames; f++)
    for (int t = 0; t < T; t++)
      for (int j = 0; j < Dv; j++)
        feat[((size_t) f * T + t) * Dv + j] += g->temporal_embedding[f][j];
  vlm_linear (r->ops, &g->projection, feat, V, r->visual, VLM_ACT_NONE, NULL);
  vlm_layer_norm (r->ops, r->visual, V, D, g->projection_ln_w, g->projection_ln_b, g->vision.cfg.eps, r->visual);
  float *x = feat;   /* Dv ≥ D is not guaranteed: */
  if (Dv < D)
    x = vlm_arena_new (&r->arena, float, (size_t) V * D);
  memcpy (x, r->visual, (size_t) V * D * sizeof (float));
  const VlmPostNormSeq seq = {&r->cache, 0, 0, NULL};
  text_forward (g, r->ops, &r->arena, V, x, &seq, 1, V, TRUE);
  vlm_arena_rewind (&r->arena, mark);
}

/* Vision per frame, then encode_visual. */
static gboolean
git_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  GitRun *r = run;
  const Git *g = r->g;
  g_assert (n_frames == r->model->info.frames_per_clip);
  vlm_vit_forward (&g->vision, r->ops, &r->arena, pixels, n_frames, g->vision.cfg.num_layers, TRUE,
                   r->vision_out);
  encode_visual (r);
  return TRUE;
}

/* The batcher's: every clip's frames through the tower in one call. */
static gboolean
git_encode_batch (void *const *runs, const float *const *pixels, int n, VlmArena *arena, GError **error)
{
  const GitRun *r0 = runs[0];
  const Git *g = r0->g;
  size_t mark = vlm_arena_mark (arena);
  float **outs = vlm_arena_new (arena, float *, n);
  for (int i = 0; i < n; i++)
    outs[i] = ((GitRun *) runs[i])->vision_out;
  vlm_vit_forward_clips (&g->vision, r0->ops, arena, pixels, n, r0->model->info.frames_per_clip,
                         g->vision.cfg.num_layers, TRUE, outs);
  vlm_arena_rewind (arena, mark);
  for (int i = 0; i < n; i++)
    encode_visual (runs[i]);
  return TRUE;
}

static size_t
git_encode_batch_bytes (VlmModel *model, int n)
{
  const Git *g = model->impl;
  return vlm_vit_clips_bytes (&g->vision, model->info.frames_per_clip, n) + (size_t) n * sizeof (float *) + 64;
}

/* [CLS] + tokens(prompt), without [SEP]: GIT continues the text. */
static int *
git_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error)
{
  return vlm_tokenizer_encode_after (model->tokenizer, model->bos_id, prompt, n, error);
}

static const float *
git_prefill (void *run, const int *ids, int n, int *pos, GError **error)
{
  GitRun *r = run;
  int D = r->g->text.hidden_size;
  if (n < 1 || !check_ids (r, ids, n, n, error))
    return NULL;
  size_t mark = vlm_arena_mark (&r->arena);
  float *x = vlm_arena_new (&r->arena, float, (size_t) n * D);
  int *positions = vlm_arena_new (&r->arena, int, n);
  for (int i = 0; i < n; i++)
    positions[i] = i;
  embed_text (r->g, r->ops, ids, positions, n, x);
  vlm_kv_cache_reset (&r->cache);   /* beam 0 only, until the generation loop's first reorder */
  const VlmPostNormSeq seq = {&r->cache, 0, r->n_visual, NULL};
  text_forward (r->g, r->ops, &r->arena, r->n_visual, x, &seq, 1, n, FALSE);
  vlm_linear (r->ops, &r->g->output, x, n, r->logits, VLM_ACT_NONE, NULL);
  vlm_arena_rewind (&r->arena, mark);
  *pos = n;
  return r->logits + (size_t) (n - 1) * r->g->vocab_size;
}

static const VlmDecoder *
git_decoder (void *run)
{
  return &((GitRun *) run)->decoder;
}

/* vision_out: the tower's output of every frame before the temporal
 * embedding [F·T, Dv]; visual_tokens: projected [F·T, D]; after prefill,
 * prompt_logits: every prompt row's [n, V]. */
static const float *
git_stage (void *run, const char *name)
{
  const GitRun *r = run;
  const VlmStage stages[] = {{"vision_out", r->vision_out}, {"visual_tokens", r->visual},
                             {"prompt_logits", r->logits}};
  return vlm_stage_find (stages, G_N_ELEMENTS (stages), name);
}

const VlmArch vlm_arch_git = {
  .name = "GitForCausalLM",
  .load = git_load,
  .free = git_free,
  .run_new = git_run_new,
  .run_free = git_run_free,
  .encode = git_encode,
  .encode_batch = git_encode_batch,
  .encode_batch_bytes = git_encode_batch_bytes,
  .prompt_ids = git_prompt_ids,
  .prefill = git_prefill,
  .decoder = git_decoder,
  .stage = git_stage,
};
