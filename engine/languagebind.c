/* languagebind.c — LanguageBindVideo: a clip and text labels into one
 * embedding space; the clip's tag scores are their scaled cosines.
 * ref: PKU-YuanGroup/LanguageBind languagebind/video/modeling_video.py,
 *      transformers models/clip/modeling_clip.py (CLIPTextTransformer, CLIPModel)
 *
 * The vision tower is the ViT tower part with its temporal layers; the text
 * tower is CLIP's encoder layers with a causal mask. Label embeddings are
 * computed when the labels are set and kept in the run, so a clip costs the
 * vision tower and a few dot products. */
#include "languagebind.h"

#include <math.h>

struct LanguageBindRun {
  VlmModel *model;
  const LanguageBind *lb;
  VlmOps *ops;
  VlmArena arena;
  float *last_hidden_state;   /* [F·N, Dv] */
  float *video_embeds;        /* [P] */
  float *label_embeds;        /* [n_labels, P]; reallocated when the labels change */
  int n_labels;
};

/* ---------------------------------------------------------------- load */

static gboolean
read_config (LanguageBind *lb, JsonObject *cfg, const char *file, GError **error)
{
  JsonObject *tc = vlm_json_object (cfg, "text_config");
  if (!vlm_vit_config_read (&lb->vision.cfg, vlm_json_object (cfg, "vision_config"), file, TRUE, error))
    return FALSE;
  if (!lb->vision.cfg.num_frames || !tc) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: LanguageBindVideo needs \"text_config\" and vision_config \"add_time_attn\": true", file);
    return FALSE;
  }
  lb->eos_token_id = vlm_json_int (tc, "eos_token_id", 2);
  return vlm_vit_encoder_config_read (&lb->text, tc, file, "quick_gelu", 1e-5f, error) &&
         vlm_json_require_int (tc, "vocab_size", file, &lb->vocab_size, error) &&
         vlm_json_require_int (tc, "max_position_embeddings", file, &lb->max_positions, error);
}

static void lb_free (void *impl);

static void *
lb_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info,
         GError **error)
{
  LanguageBind *lb = g_new0 (LanguageBind, 1);
  int P = 0;
  if (!read_config (lb, cfg, file, error) ||
      !vlm_json_require_int (cfg, "projection_dim", file, &P, error) ||
      !vlm_vit_load (&lb->vision, &vlm_vit_clip_names, w, "vision_model.", error))
    goto fail;
  int Dv = lb->vision.cfg.hidden_size, Dt = lb->text.hidden_size;
  int64_t dt[] = {Dt}, tok[] = {lb->vocab_size, Dt}, pos[] = {lb->max_positions, Dt};
  const float *logit_scale;
  if (!vlm_weights_linear (w, &lb->visual_projection, FALSE, P, Dv, error, "visual_projection") ||
      !(lb->token_embedding = vlm_weights_f32 (w, error, 2, tok, "text_model.embeddings.token_embedding.weight")) ||
      !(lb->position_embedding = vlm_weights_f32 (w, error, 2, pos, "text_model.embeddings.position_embedding.weight")) ||
      !(lb->text_layers = vlm_vit_layers_load (&lb->text, &vlm_vit_clip_names, w, "text_model.", error)) ||
      !(lb->final_layer_norm_w = vlm_weights_f32 (w, error, 1, dt, "text_model.final_layer_norm.weight")) ||
      !(lb->final_layer_norm_b = vlm_weights_f32 (w, error, 1, dt, "text_model.final_layer_norm.bias")) ||
      !vlm_weights_linear (w, &lb->text_projection, FALSE, P, Dt, error, "text_projection") ||
      !(logit_scale = vlm_weights_f32 (w, error, 0, NULL, "logit_scale")))
    goto fail;
  lb->logit_scale = *logit_scale;
  *info = (VlmArchInfo) {
    .frames_per_clip = lb->vision.cfg.num_frames,
    .processor_section = "image_processor",
    .image_size = lb->vision.cfg.image_size,
    .vocab_size = lb->vocab_size,
    .max_positions = lb->max_positions,
  };
  return lb;
fail:
  lb_free (lb);
  return NULL;
}

static void
lb_free (void *impl)
{
  LanguageBind *lb = impl;
  if (!lb)
    return;
  vlm_vit_clear (&lb->vision);
  vlm_vit_layers_free (&lb->text, lb->text_layers);
  vlm_linear_clear (&lb->visual_projection);
  vlm_linear_clear (&lb->text_projection);
  g_free (lb);
}

/* ---------------------------------------------------------------- run */

static void lb_run_free (void *run);

static void *
lb_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error)
{
  const LanguageBind *lb = model->impl;
  const VlmVitConfig *vc = &lb->vision.cfg, *tc = &lb->text;
  LanguageBindRun *r = g_new0 (LanguageBindRun, 1);
  int F = model->info.frames_per_clip;
  size_t rows = (size_t) F * vc->n_tokens, P = lb->visual_projection.n, L = lb->max_positions;
  r->model = model;
  r->lb = lb;
  r->ops = ops;
  size_t floats = rows * vc->hidden_size + P                      /* last_hidden_state, video_embeds */
                  + (size_t) F * vc->hidden_size + vc->hidden_size  /* encode: CLS rows, pooled */
                  + L * 5 * (size_t) tc->hidden_size + tc->hidden_size;  /* text */
  size_t bytes = floats * sizeof (float) + vlm_vit_arena_size (&lb->vision, F) + 16 * 64;
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    lb_run_free (r);
    return NULL;
  }
  r->last_hidden_state = vlm_arena_new (&r->arena, float, rows * vc->hidden_size);
  r->video_embeds = vlm_arena_new (&r->arena, float, P);
  return r;
}

static void
lb_run_free (void *run)
{
  LanguageBindRun *r = run;
  if (!r)
    return;
  vlm_arena_clear (&r->arena);
  g_free (r->label_embeds);
  g_free (r);
}

/* ref: LanguageBind CLIPVisionTransformer.forward + get_video_features:
 *   pooled = post_layernorm(x[:, 0]).view(B, T, D).mean(1);  visual_projection(pooled) */
static gboolean
lb_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  LanguageBindRun *r = run;
  const VlmVit *vit = &r->lb->vision;
  int D = vit->cfg.hidden_size, N = vit->cfg.n_tokens;
  g_assert (n_frames == r->model->info.frames_per_clip);
  vlm_vit_forward (vit, r->ops, &r->arena, pixels, n_frames, vit->cfg.num_layers, FALSE, r->last_hidden_state);
  size_t mark = vlm_arena_mark (&r->arena);
  float *cls = vlm_arena_new (&r->arena, float, (size_t) n_frames * D);
  float *pooled = vlm_arena_new (&r->arena, float, D);
  for (int f = 0; f < n_frames; f++)
    memcpy (cls + (size_t) f * D, r->last_hidden_state + (size_t) f * N * D, D * sizeof (float));
  vlm_layer_norm (r->ops, cls, n_frames, D, vit->post_layernorm_w, vit->post_layernorm_b, vit->cfg.eps, cls);
  for (int j = 0; j < D; j++) {
    float sum = 0;
    for (int f = 0; f < n_frames; f++)
      sum += cls[(size_t) f * D + j];
    pooled[j] = sum / n_frames;
  }
  vlm_linear (r->ops, &r->lb->visual_projection, pooled, 1, r->video_embeds, VLM_ACT_NONE, NULL);
  vlm_arena_rewind (&r->arena, mark);
  return TRUE;
}

/* CLIPTextTransformer's pooled token: with the legacy eos_token_id 2 the
 * position of the largest id (the end token in CLIP's vocabulary), else the
 * first eos_token_id (0 if none, as argmax of all-false). */
static int
pool_index (const LanguageBind *lb, const int *ids, int n)
{
  int best = 0;
  for (int i = 0; i < n; i++) {
    if (lb->eos_token_id != 2 && ids[i] == lb->eos_token_id)
      return i;
    if (lb->eos_token_id == 2 && ids[i] > ids[best])
      best = i;
  }
  return lb->eos_token_id == 2 ? best : 0;
}

/* ref: CLIPTextTransformer.forward + CLIPModel.get_text_features. Padding
 * only ever follows the text and the mask is causal, so an unpadded sequence
 * gives HF's padded results. */
gboolean
languagebind_embed_text (LanguageBindRun *r, const int *ids, int n, float *out, GError **error)
{
  const LanguageBind *lb = r->lb;
  int D = lb->text.hidden_size;
  if (n < 1 || n > lb->max_positions) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "text of %d tokens; the text tower holds 1 to %d",
                 n, lb->max_positions);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= lb->vocab_size) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "token id %d outside the vocabulary of %d",
                   ids[i], lb->vocab_size);
      return FALSE;
    }
  size_t mark = vlm_arena_mark (&r->arena);
  float *x = vlm_arena_new (&r->arena, float, (size_t) n * D);
  float *pooled = vlm_arena_new (&r->arena, float, D);
  for (int i = 0; i < n; i++) {   /* token_embedding(ids) + position_embedding(arange(n)) */
    const float *te = lb->token_embedding + (size_t) ids[i] * D, *pe = lb->position_embedding + (size_t) i * D;
    for (int j = 0; j < D; j++)
      x[(size_t) i * D + j] = te[j] + pe[j];
  }
  for (int li = 0; li < lb->text.num_layers; li++)
    vlm_vit_layer_forward (&lb->text, &lb->text_layers[li], r->ops, &r->arena, x, 1, n, TRUE);
  /* final_layer_norm is per row: only the pooled row is needed. */
  vlm_layer_norm (r->ops, x + (size_t) pool_index (lb, ids, n) * D, 1, D, lb->final_layer_norm_w,
                  lb->final_layer_norm_b, lb->text.eps, pooled);
  vlm_linear (r->ops, &lb->text_projection, pooled, 1, out, VLM_ACT_NONE, NULL);
  vlm_arena_rewind (&r->arena, mark);
  return TRUE;
}

static double
norm (const float *x, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += (double) x[i] * x[i];
  return MAX (sqrt (s), 1e-12);   /* F.normalize's eps */
}

void
languagebind_scores (const LanguageBind *lb, const float *video, const float *text, int n, float *scores)
{
  int P = lb->visual_projection.n;
  double scale = exp (lb->logit_scale) / norm (video, P);
  for (int i = 0; i < n; i++) {
    const float *t = text + (size_t) i * P;
    double dot = 0;
    for (int j = 0; j < P; j++)
      dot += (double) video[j] * t[j];
    scores[i] = (float) (scale * dot / norm (t, P));
  }
}

/* Each label as the CLIP processor tokenizes it (start and end tokens,
 * truncated to the position table keeping the end token), through the text
 * tower. */
static gboolean
lb_set_labels (void *run, const char *const *labels, int n, GError **error)
{
  LanguageBindRun *r = run;
  VlmModel *m = r->model;
  int P = r->lb->text_projection.n;
  r->n_labels = 0;
  if (!m->tokenizer) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s has no tokenizer.json: labels cannot be tokenized",
                 m->dir);
    return FALSE;
  }
  r->label_embeds = g_renew (float, r->label_embeds, (size_t) n * P);
  for (int i = 0; i < n; i++) {
    int k = 0;
    g_autofree int *ids = vlm_tokenizer_encode (m->tokenizer, labels[i], TRUE, &k, error);
    if (!ids)
      return FALSE;
    if (k > r->lb->max_positions) {
      ids[r->lb->max_positions - 1] = ids[k - 1];
      k = r->lb->max_positions;
    }
    if (!languagebind_embed_text (r, ids, k, r->label_embeds + (size_t) i * P, error))
      return FALSE;
  }
  r->n_labels = n;
  return TRUE;
}

static void
lb_tag (void *run, float *scores)
{
  LanguageBindRun *r = run;
  languagebind_scores (r->lb, r->video_embeds, r->label_embeds, r->n_labels, scores);
}

/* After encode: last_hidden_state [F · N, Dv] (before post_layernorm) and
 * video_embeds [P]. */
static const float *
lb_stage (void *run, const char *name)
{
  const LanguageBindRun *r = run;
  const VlmStage stages[] = {{"last_hidden_state", r->last_hidden_state}, {"video_embeds", r->video_embeds}};
  return vlm_stage_find (stages, G_N_ELEMENTS (stages), name);
}

const VlmArch vlm_arch_languagebind_video = {
  .name = "LanguageBindVideo",
  .load = lb_load,
  .free = lb_free,
  .run_new = lb_run_new,
  .run_free = lb_run_free,
  .encode = lb_encode,
  .set_labels = lb_set_labels,
  .tag = lb_tag,
  .stage = lb_stage,
};
