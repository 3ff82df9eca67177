/* llava.c — Video-LLaVA: frames → CLIP hidden_states[vision_feature_layer]
 * (every token, CLS included) → multi_modal_projector → the `<video>` rows
 * of the prompt's embeddings → Llama decoder.
 * ref: transformers models/video_llava/modeling_video_llava.py
 *      (VideoLlavaModel.get_video_features, VideoLlavaModel.forward),
 *      models/video_llava/processing_video_llava.py (placeholder expansion) */
#include "llava.h"

/* The -hf checkpoints are trained on 8 frames per clip; the config does not
 * say it (its video_seq_length is 8 · tokens per frame of the real tower). */
#define VIDEO_LLAVA_FRAMES 8
#define DEFAULT_PROMPT "Describe the video."

struct LlavaRun {
  VlmModel *model;
  const Llava *lv;
  VlmOps *ops;
  VlmArena arena;
  VlmLlamaRun *lm;
  int max_tokens;
  float *video;      /* [n_video_tokens, D] projected frame tokens */
  float *embeds;     /* [max_tokens, D] the prompt's inputs_embeds */
};

/* ---------------------------------------------------------------- load */

/* Checkpoint key layouts: the Hub's (transformers 4, CLIPVisionModel with
 * its vision_model), transformers 5's save_pretrained, and its in-memory
 * names. The first whose probe tensor exists is used. */
static const char *const tower_prefixes[] = {
  "video_tower.vision_model.", "video_tower.", "model.video_tower.vision_model.", "model.video_tower.",
};
static const char *const projector_prefixes[] = {"multi_modal_projector.", "model.multi_modal_projector."};
static const struct {
  const char *model, *lm_head;
} language_prefixes[] = {
  {"language_model.model.", "language_model.lm_head"},
  {"model.language_model.", "lm_head"},
};

static const char *
probe (VlmWeights *w, const char *const *prefixes, int n, const char *suffix)
{
  for (int i = 0; i < n; i++)
    if (vlm_weights_has (w, "%s%s", prefixes[i], suffix))
      return prefixes[i];
  return NULL;
}

static gboolean
read_config (Llava *lv, JsonObject *cfg, const char *file, GError **error)
{
  JsonNode *layer = json_object_get_member (cfg, "vision_feature_layer");
  const VlmVitConfig *vc = &lv->video_tower.cfg;
  if (!vlm_vit_config_read (&lv->video_tower.cfg, vlm_json_object (cfg, "vision_config"), file, TRUE, error) ||
      !vlm_llama_config_read (&lv->language_model.cfg, vlm_json_object (cfg, "text_config"), file, error) ||
      !vlm_json_require_int (cfg, "video_token_index", file, &lv->video_token_index, error))
    return FALSE;
  /* hidden_states has num_layers + 1 entries: -2 is the second-to-last layer's output */
  int fl = layer && JSON_NODE_HOLDS_VALUE (layer) ? (int) json_node_get_int (layer) : -2;
  lv->feature_layers = fl < 0 ? vc->num_layers + 1 + fl : fl;
  const char *act = vlm_json_string (cfg, "projector_hidden_act", "gelu");
  if ((layer && !JSON_NODE_HOLDS_VALUE (layer)) || lv->feature_layers < 0 || lv->feature_layers > vc->num_layers ||
      !vlm_act_from_name (act, &lv->projector.act)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: vision_feature_layer (one layer of %d) or projector_hidden_act \"%s\" not supported", file,
                 vc->num_layers, act);
    return FALSE;
  }
  lv->n_video_tokens = VIDEO_LLAVA_FRAMES * vc->n_tokens;
  return TRUE;
}

static void llava_free (void *impl);

static void *
llava_load (VlmModel *model, JsonObject *cfg, GError **error)
{
  g_autofree char *file = g_build_filename (model->dir, "config.json", NULL);
  Llava *lv = g_new0 (Llava, 1);
  VlmWeights *w = &model->weights;
  if (!read_config (lv, cfg, file, error))
    goto fail;
  int D = lv->language_model.cfg.hidden_size, Dv = lv->video_tower.cfg.hidden_size;
  gboolean bias = vlm_json_bool (cfg, "multimodal_projector_bias", TRUE);
  const char *tower = probe (w, tower_prefixes, G_N_ELEMENTS (tower_prefixes), "embeddings.patch_embedding.weight");
  const char *proj = probe (w, projector_prefixes, G_N_ELEMENTS (projector_prefixes), "linear_1.weight");
  int lm = -1;
  for (guint i = 0; i < G_N_ELEMENTS (language_prefixes) && lm < 0; i++)
    if (vlm_weights_has (w, "%sembed_tokens.weight", language_prefixes[i].model))
      lm = (int) i;
  if (!tower || !proj || lm < 0) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND,
                 "%s: no %s tensor (tried video_tower[.vision_model].embeddings.patch_embedding.weight, "
                 "multi_modal_projector.linear_1.weight, language_model.model.embed_tokens.weight, with and "
                 "without a model. prefix)", vlm_safetensors_path (w->st),
                 !tower ? "video tower" : !proj ? "projector" : "language model");
    goto fail;
  }
  if (!vlm_vit_load (&lv->video_tower, w, tower, error) ||
      !vlm_weights_linear (w, &lv->projector.linear_1, bias, D, Dv, error, "%slinear_1", proj) ||
      !vlm_weights_linear (w, &lv->projector.linear_2, bias, D, D, error, "%slinear_2", proj) ||
      !vlm_llama_load (&lv->language_model, w, language_prefixes[lm].model, language_prefixes[lm].lm_head, error))
    goto fail;
  model->frames_per_clip = VIDEO_LLAVA_FRAMES;
  model->processor_section = "video_processor";
  model->vocab_size = lv->language_model.cfg.vocab_size;
  return lv;
fail:
  llava_free (lv);
  return NULL;
}

static void
llava_free (void *impl)
{
  Llava *lv = impl;
  if (!lv)
    return;
  vlm_vit_clear (&lv->video_tower);
  vlm_linear_clear (&lv->projector.linear_1);
  vlm_linear_clear (&lv->projector.linear_2);
  vlm_llama_clear (&lv->language_model);
  g_free (lv);
}

/* ---------------------------------------------------------------- run */

static void llava_run_free (void *run);

static void *
llava_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error)
{
  const Llava *lv = model->impl;
  LlavaRun *r = g_new0 (LlavaRun, 1);
  size_t V = lv->n_video_tokens, D = lv->language_model.cfg.hidden_size, Dv = lv->video_tower.cfg.hidden_size;
  r->model = model;
  r->lv = lv;
  r->ops = ops;
  r->max_tokens = max_tokens;
  size_t floats = V * D + (size_t) max_tokens * D       /* video, embeds */
                  + V * Dv + V * D;                     /* tower output, projector hidden */
  size_t bytes = floats * sizeof (float) + vlm_vit_arena_size (&lv->video_tower, VIDEO_LLAVA_FRAMES) + 8 * 64;
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    llava_run_free (r);
    return NULL;
  }
  r->video = vlm_arena_new (&r->arena, float, V * D);
  r->embeds = vlm_arena_new (&r->arena, float, (size_t) max_tokens * D);
  if (!(r->lm = vlm_llama_run_new (&lv->language_model, ops, max_beams, max_tokens, error))) {
    llava_run_free (r);
    return NULL;
  }
  return r;
}

static void
llava_run_free (void *run)
{
  LlavaRun *r = run;
  if (!r)
    return;
  vlm_llama_run_free (r->lm);
  vlm_arena_clear (&r->arena);
  g_free (r);
}

/* get_video_features: hidden_states[vision_feature_layer] of every frame
 * (no post-norm; CLS kept for video), then the projector. */
static gboolean
llava_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  LlavaRun *r = run;
  const Llava *lv = r->lv;
  const LlavaProjector *p = &lv->projector;
  int V = lv->n_video_tokens;
  g_assert (n_frames == VIDEO_LLAVA_FRAMES);
  size_t mark = vlm_arena_mark (&r->arena);
  float *features = vlm_arena_new (&r->arena, float, (size_t) V * lv->video_tower.cfg.hidden_size);
  float *hidden = vlm_arena_new (&r->arena, float, (size_t) V * p->linear_1.n);
  vlm_vit_forward (&lv->video_tower, r->ops, &r->arena, pixels, n_frames, lv->feature_layers, FALSE, features);
  vlm_linear (r->ops, &p->linear_1, features, V, hidden, p->act, NULL);
  vlm_linear (r->ops, &p->linear_2, hidden, V, r->video, VLM_ACT_NONE, NULL);
  vlm_arena_rewind (&r->arena, mark);
  return TRUE;
}

/* The processor's text: `USER: <video>\n{prompt} ASSISTANT:` with BOS (a
 * prompt holding `<video>` is taken as the whole template), then the one
 * `<video>` id expanded to a placeholder per video token. */
static int *
llava_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error)
{
  const Llava *lv = model->impl;
  g_autofree char *text = strstr (prompt, "<video>")
                              ? g_strdup (prompt)
                              : g_strdup_printf ("USER: <video>\n%s ASSISTANT:", *prompt ? prompt : DEFAULT_PROMPT);
  int n_text = 0, n_video = 0;
  g_autofree int *ids = vlm_tokenizer_encode (model->tokenizer, text, TRUE, &n_text, error);
  if (!ids)
    return NULL;
  for (int i = 0; i < n_text; i++)
    n_video += ids[i] == lv->video_token_index;
  if (n_video != 1) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "the prompt holds %d <video> placeholders (id %d), expected 1",
                 n_video, lv->video_token_index);
    return NULL;
  }
  int *out = g_new (int, n_text - 1 + lv->n_video_tokens), k = 0;
  for (int i = 0; i < n_text; i++)
    for (int j = 0; j < (ids[i] == lv->video_token_index ? lv->n_video_tokens : 1); j++)
      out[k++] = ids[i];
  *n = k;
  return out;
}

/* inputs_embeds = embed_tokens(ids) with the placeholder rows replaced, in
 * order, by the projected video tokens; then the decoder. */
const float *
llava_run_forward (LlavaRun *r, const int *ids, int n, int logits_to_keep, GError **error)
{
  const Llava *lv = r->lv;
  int D = lv->language_model.cfg.hidden_size, n_video = 0;
  if (n < 1 || n > r->max_tokens) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "a prompt of %d tokens (this session holds 1 to %d)", n,
                 r->max_tokens);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    n_video += ids[i] == lv->video_token_index;
  if (n_video != lv->n_video_tokens) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "%d video placeholders in the prompt, the clip has %d tokens",
                 n_video, lv->n_video_tokens);
    return NULL;
  }
  if (!vlm_llama_embed (&lv->language_model, ids, n, r->embeds, error))
    return NULL;
  for (int i = 0, v = 0; i < n; i++)
    if (ids[i] == lv->video_token_index)
      memcpy (r->embeds + (size_t) i * D, r->video + (size_t) v++ * D, D * sizeof (float));
  return vlm_llama_prefill (r->lm, r->embeds, n, logits_to_keep, error);
}

static const float *
llava_prefill (void *run, const int *ids, int n, int *pos, GError **error)
{
  const float *logits = llava_run_forward (run, ids, n, 1, error);
  *pos = n;
  return logits;
}

static const VlmDecoder *
llava_decoder (void *run)
{
  return vlm_llama_decoder (((LlavaRun *) run)->lm);
}

const float *llava_run_projector_out (const LlavaRun *run) { return run->video; }

const VlmArch vlm_arch_video_llava = {
  .name = "VideoLlavaForConditionalGeneration",
  .load = llava_load,
  .free = llava_free,
  .run_new = llava_run_new,
  .run_free = llava_run_free,
  .encode = llava_encode,
  .prompt_ids = llava_prompt_ids,
  .prefill = llava_prefill,
  .decoder = llava_decoder,
};
