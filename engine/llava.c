/* llava.c — the LLaVA family's video path: frames → tower
 * hidden_states[vision_feature_layer] → multi_modal_projector [→ 2× bilinear
 * pooling per frame + image_newline] → the `<video>` rows of the prompt's
 * embeddings → Llama/Qwen2 decoder.
 * ref: transformers models/video_llava/modeling_video_llava.py
 *      (VideoLlavaModel.get_video_features, forward),
 *      models/llava_onevision/modeling_llava_onevision.py
 *      (LlavaOnevisionModel.get_video_features, apply_pooling, forward),
 *      and processing_*.py of both (prompt and placeholder expansion) */
#include "llava.h"

/* Both are trained on 8-frame clips; neither config says so. */
#define CLIP_FRAMES 8
#define DEFAULT_PROMPT "Describe the video."

static const LlavaFlavour video_llava = {"video_tower", "USER: <video>\n%s ASSISTANT:", FALSE};
static const LlavaFlavour onevision = {
  "vision_tower", "<|im_start|>user\n<video>\n%s<|im_end|>\n<|im_start|>assistant\n", TRUE};

struct LlavaRun {
  VlmModel *model;
  const Llava *lv;
  VlmOps *ops;
  VlmArena arena;
  VlmLlamaRun *lm;
  float *video;      /* [n_video_tokens, D] what replaces the placeholders */
};

/* ---------------------------------------------------------------- load */

static gboolean
read_config (Llava *lv, JsonObject *cfg, const char *file, GError **error)
{
  JsonObject *vision = vlm_json_object (cfg, "vision_config");
  JsonNode *layer = json_object_get_member (cfg, "vision_feature_layer");
  const VlmVitConfig *vc = &lv->tower.cfg;
  gboolean siglip = vision && g_strcmp0 (vlm_json_string (vision, "model_type", ""), "siglip_vision_model") == 0;
  if (!vlm_vit_config_read (&lv->tower.cfg, vision, file, !siglip, error) ||
      !vlm_llama_config_read (&lv->language_model.cfg, vlm_json_object (cfg, "text_config"), file, error))
    return FALSE;
  /* transformers 5 also spells it video_token_id */
  lv->video_token_index = vlm_json_int (cfg, "video_token_index", vlm_json_int (cfg, "video_token_id", -1));
  /* hidden_states has num_layers + 1 entries: -2 is the second-to-last
   * layer's output. Saturated, so that 4294967294 is not read as -2, and
   * counted in 64 bits: num_layers is not yet bounded by the tensors. */
  int fl = layer ? vlm_json_int (cfg, "vision_feature_layer", G_MININT) : -2;
  gint64 index = fl < 0 ? (gint64) vc->num_layers + 1 + fl : fl;
  lv->feature_layers = index < 0 || index > vc->num_layers ? -1 : (int) index;
  if ((layer && !JSON_NODE_HOLDS_VALUE (layer)) || lv->feature_layers < 0) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: vision_feature_layer must be one index into the tower's %d hidden states "
                 "(-%d..%d)", file, vc->num_layers + 1, vc->num_layers + 1, vc->num_layers);
    return FALSE;
  }
  const char *act = vlm_json_string (cfg, "projector_hidden_act", "gelu");
  /* OneVision pools a full grid: "default" (drop the first token) cannot apply;
   * Video-LLaVA keeps every token of a video whatever the strategy. */
  gboolean full = g_strcmp0 (vlm_json_string (cfg, "vision_feature_select_strategy", "default"), "full") == 0;
  if (!vlm_act_from_name (act, &lv->projector.act) || (lv->flavour->pool && !full) || lv->video_token_index < 0) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: video_token_index missing, or vision_feature_select_strategy or "
                 "projector_hidden_act \"%s\" not supported", file, act);
    return FALSE;
  }
  lv->pooled_grid = (vc->grid + 1) / 2;
  lv->n_video_tokens = lv->flavour->pool ? CLIP_FRAMES * lv->pooled_grid * lv->pooled_grid + 1
                                         : CLIP_FRAMES * vc->n_tokens;
  return TRUE;
}

static void llava_free (void *impl);

/* Key layouts: the Hub's (transformers 4: `language_model.model.`, a tower
 * holding its `vision_model.`) and transformers 5's (everything under `model.`
 * but the head); save_pretrained in 5 writes the old names without
 * `vision_model.`. Chosen by probing. */
static void *
llava_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info,
            GError **error)
{
  const LlavaFlavour *flavour = variant;
  Llava *lv = g_new0 (Llava, 1);
  g_autofree char *tower = NULL;
  lv->flavour = flavour;
  if (!read_config (lv, cfg, file, error))
    goto fail;
  int D = lv->language_model.cfg.hidden_size, Dv = lv->tower.cfg.hidden_size;
  int64_t d[] = {D};
  gboolean bias = vlm_json_bool (cfg, "multimodal_projector_bias", TRUE);
  const char *root = vlm_weights_has (w, "model.multi_modal_projector.linear_1.weight") ? "model." : "";
  const char *vm = vlm_weights_has (w, "%s%s.vision_model.embeddings.patch_embedding.weight", root, flavour->tower)
                       ? "vision_model." : "";
  tower = g_strdup_printf ("%s%s.%s", root, flavour->tower, vm);
  const char *lm = *root ? "model.language_model." : "language_model.model.";
  const char *lm_head = *root ? "lm_head" : "language_model.lm_head";
  if (!vlm_vit_load (&lv->tower, &vlm_vit_clip_names, w, tower, error) ||
      !vlm_weights_linear (w, &lv->projector.linear_1, bias, D, Dv, error, "%smulti_modal_projector.linear_1", root) ||
      !vlm_weights_linear (w, &lv->projector.linear_2, bias, D, D, error, "%smulti_modal_projector.linear_2", root) ||
      (flavour->pool && !(lv->image_newline = vlm_weights_f32 (w, error, 1, d, "%simage_newline", root))) ||
      !vlm_llama_load (&lv->language_model, w, &vlm_llama_names, lm, lm_head, error))
    goto fail;
  *info = (VlmArchInfo) {
    .frames_per_clip = CLIP_FRAMES,
    .processor_section = "video_processor",
    .image_size = lv->tower.cfg.image_size,
    .vocab_size = lv->language_model.cfg.vocab_size,
    .max_positions = lv->language_model.cfg.max_positions,
  };
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
  vlm_vit_clear (&lv->tower);
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
  size_t T = (size_t) CLIP_FRAMES * lv->tower.cfg.n_tokens, V = lv->n_video_tokens;
  size_t D = lv->language_model.cfg.hidden_size, Dv = lv->tower.cfg.hidden_size;
  r->model = model;
  r->lv = lv;
  r->ops = ops;
  size_t floats = V * D                               /* video */
                  + T * Dv + T * D;                   /* encode: tower output, projector output */
  size_t bytes = floats * sizeof (float) + vlm_vit_arena_size (&lv->tower, CLIP_FRAMES) + 8 * 64;
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    llava_run_free (r);
    return NULL;
  }
  r->video = vlm_arena_new (&r->arena, float, V * D);
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

/* PyTorch's source index for align_corners=False: (dst + 0.5) · scale - 0.5,
 * clamped at 0, in f32; its two neighbours and the second one's weight. */
static void
bilinear_source (int dst, float scale, int in, int *i0, int *i1, float *w1)
{
  float src = MAX (scale * ((float) dst + 0.5f) - 0.5f, 0.0f);
  *i0 = MIN ((int) src, in - 1);
  *i1 = MIN (*i0 + 1, in - 1);
  *w1 = MIN (src - (float) *i0, 1.0f);
}

/* apply_pooling for one frame: its token grid [g, g, D] →
 * interpolate(size = p × p, mode="bilinear", align_corners=False) → [p, p, D]. */
static void
pool_frame (const float *src, int g, int p, int D, float *dst)
{
  float scale = (float) g / (float) p;
  for (int y = 0; y < p; y++) {
    int y0, y1, x0, x1;
    float wy1, wx1;
    bilinear_source (y, scale, g, &y0, &y1, &wy1);
    for (int x = 0; x < p; x++, dst += D) {
      bilinear_source (x, scale, g, &x0, &x1, &wx1);
      const float *s00 = src + ((size_t) y0 * g + x0) * D, *s01 = src + ((size_t) y0 * g + x1) * D;
      const float *s10 = src + ((size_t) y1 * g + x0) * D, *s11 = src + ((size_t) y1 * g + x1) * D;
      for (int c = 0; c < D; c++)
        dst[c] = (s00[c] * (1 - wx1) + s01[c] * wx1) * (1 - wy1) + (s10[c] * (1 - wx1) + s11[c] * wx1) * wy1;
    }
  }
}

/* The tower's features [F · T, Dv] → the projector; OneVision then pools
 * each frame's grid and forward() appends image_newline. Into r->video. */
static void
project (LlavaRun *r, const float *features, int n_frames)
{
  const Llava *lv = r->lv;
  const LlavaProjector *p = &lv->projector;
  const VlmVitConfig *vc = &lv->tower.cfg;
  int T = n_frames * vc->n_tokens, D = p->linear_2.n, pg = lv->pooled_grid;
  size_t mark = vlm_arena_mark (&r->arena);
  float *projected = lv->flavour->pool ? vlm_arena_new (&r->arena, float, (size_t) T * D) : r->video;
  vlm_mlp (r->ops, &p->linear_1, p->act, &p->linear_2, features, T, projected, NULL);
  if (lv->flavour->pool) {
    for (int f = 0; f < n_frames; f++)
      pool_frame (projected + (size_t) f * vc->n_tokens * D, vc->grid, pg, D, r->video + (size_t) f * pg * pg * D);
    memcpy (r->video + (size_t) n_frames * pg * pg * D, lv->image_newline, D * sizeof (float));
  }
  vlm_arena_rewind (&r->arena, mark);
}

/* get_video_features: hidden_states[vision_feature_layer] of every frame (no
 * post-norm, every token), then project. */
static gboolean
llava_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  LlavaRun *r = run;
  const VlmVitConfig *vc = &r->lv->tower.cfg;
  g_assert (n_frames == CLIP_FRAMES);
  size_t mark = vlm_arena_mark (&r->arena);
  float *features = vlm_arena_new (&r->arena, float, (size_t) n_frames * vc->n_tokens * vc->hidden_size);
  vlm_vit_forward (&r->lv->tower, r->ops, &r->arena, pixels, n_frames, r->lv->feature_layers, FALSE, features);
  project (r, features, n_frames);
  vlm_arena_rewind (&r->arena, mark);
  return TRUE;
}

/* The batcher's: every clip's frames through the tower in one call. */
static gboolean
llava_encode_batch (void *const *runs, const float *const *pixels, int n, VlmArena *arena, GError **error)
{
  const LlavaRun *r0 = runs[0];
  const VlmVitConfig *vc = &r0->lv->tower.cfg;
  size_t mark = vlm_arena_mark (arena);
  float **features = vlm_arena_new (arena, float *, n);
  for (int i = 0; i < n; i++)
    features[i] = vlm_arena_new (arena, float, (size_t) CLIP_FRAMES * vc->n_tokens * vc->hidden_size);
  vlm_vit_forward_clips (&r0->lv->tower, r0->ops, arena, pixels, n, CLIP_FRAMES, r0->lv->feature_layers, FALSE,
                         features);
  for (int i = 0; i < n; i++)
    project (runs[i], features[i], CLIP_FRAMES);
  vlm_arena_rewind (arena, mark);
  return TRUE;
}

static size_t
llava_encode_batch_bytes (VlmModel *model, int n)
{
  const Llava *lv = model->impl;
  const VlmVitConfig *vc = &lv->tower.cfg;
  return vlm_vit_clips_bytes (&lv->tower, CLIP_FRAMES, n) +
         (size_t) n * ((size_t) CLIP_FRAMES * vc->n_tokens * vc->hidden_size * sizeof (float) + 64 + sizeof (float *)) +
         64;
}

/* The processor's text (a prompt holding `<video>` is taken as the whole
 * template), tokenized as the processor does, then the one `<video>` id
 * expanded to a placeholder per video token. */
static int *
llava_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error)
{
  const Llava *lv = model->impl;
  g_autofree char *text = strstr (prompt, "<video>")
                              ? g_strdup (prompt)
                              : g_strdup_printf (lv->flavour->template, *prompt ? prompt : DEFAULT_PROMPT);
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

/* inputs_embeds with the video tokens in the placeholder rows; then the decoder. */
const float *
llava_run_forward (LlavaRun *r, const int *ids, int n, int logits_to_keep, GError **error)
{
  return vlm_llama_prefill_merged (r->lm, ids, n, r->lv->video_token_index, r->video, r->lv->n_video_tokens,
                                   logits_to_keep, error);
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

/* video_tokens: after encode, what replaces the placeholders [n_video_tokens, D]. */
static const float *
llava_stage (void *run, const char *name)
{
  const VlmStage stages[] = {{"video_tokens", ((const LlavaRun *) run)->video}};
  return vlm_stage_find (stages, G_N_ELEMENTS (stages), name);
}

/* One family, two rows of the registry: the flavour tells them apart. */
#define LLAVA_ARCH(arch_name, flavour)                                                      \
  {                                                                                         \
    .name = arch_name, .variant = flavour, .load = llava_load, .free = llava_free,          \
    .run_new = llava_run_new, .run_free = llava_run_free, .encode = llava_encode,           \
    .prompt_ids = llava_prompt_ids, .prefill = llava_prefill, .decoder = llava_decoder,     \
    .stage = llava_stage, .encode_batch = llava_encode_batch,                               \
    .encode_batch_bytes = llava_encode_batch_bytes,                                         \
  }

const VlmArch vlm_arch_video_llava = LLAVA_ARCH ("VideoLlavaForConditionalGeneration", &video_llava);
const VlmArch vlm_arch_llava_onevision = LLAVA_ARCH ("LlavaOnevisionForConditionalGeneration", &onevision);
