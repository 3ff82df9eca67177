/* smolvlm.c — SmolVLM / SmolVLM2: frames → SigLIP tower (post_layernorm on
 * every token) → connector (pixel shuffle by scale_factor, then
 * modality_projection.proj) → the `<image>` rows of the prompt's embeddings →
 * Llama decoder.
 * ref: transformers models/smolvlm/modeling_smolvlm.py
 *      (SmolVLMConnector.pixel_shuffle, SmolVLMModel.get_image_features,
 *      inputs_merger, forward), processing_smolvlm.py (process_video and the
 *      chat template: the video prompt) */
#include "smolvlm.h"

/* SmolVLM2 samples videos at 1 fps up to 64 frames; 8 one-second frames
 * keep a CPU clip near 8 · image_seq_len tokens. */
#define CLIP_FRAMES 8
#define CLIP_FPS 1.0
#define DEFAULT_PROMPT "Describe the video."

struct SmolVLMRun {
  const SmolVLM *sv;
  VlmOps *ops;
  VlmArena arena;
  VlmLlamaRun *text_model;
  int max_frames;
  int n_frames;                  /* frames the last encode saw */
  float *image_hidden_states;    /* [n_frames · image_seq_len, D] connector output */
};

/* ---------------------------------------------------------------- load */

static gboolean
read_config (SmolVLM *sv, JsonObject *cfg, const char *file, GError **error)
{
  const VlmVitConfig *vc = &sv->vision_model.cfg;
  if (!vlm_vit_config_read (&sv->vision_model.cfg, vlm_json_object (cfg, "vision_config"), file, FALSE, error) ||
      !vlm_llama_config_read (&sv->text_model.cfg, vlm_json_object (cfg, "text_config"), file, error))
    return FALSE;
  sv->scale_factor = vlm_json_int (cfg, "scale_factor", 2);   /* SmolVLMConfig's default */
  sv->image_token_id = vlm_json_int (cfg, "image_token_id", -1);
  if (sv->scale_factor < 1 || vc->grid % sv->scale_factor || sv->image_token_id < 0) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: image_token_id missing, or scale_factor %d does not divide the %d×%d patch grid", file,
                 sv->scale_factor, vc->grid, vc->grid);
    return FALSE;
  }
  int side = vc->grid / sv->scale_factor;
  sv->image_seq_len = side * side;
  return TRUE;
}

static void smolvlm_free (void *impl);

/* Hub checkpoints (transformers ≥ 4.50) and transformers 5 share one layout:
 * everything under `model.` but the head. */
static void *
smolvlm_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info,
              GError **error)
{
  SmolVLM *sv = g_new0 (SmolVLM, 1);
  if (!read_config (sv, cfg, file, error))
    goto fail;
  int D = sv->text_model.cfg.hidden_size, s = sv->scale_factor;
  int Ds = sv->vision_model.cfg.hidden_size * s * s;
  if (!vlm_vit_load (&sv->vision_model, &vlm_vit_clip_names, w, "model.vision_model.", error) ||
      !vlm_weights_linear (w, &sv->proj, FALSE, D, Ds, error, "model.connector.modality_projection.proj") ||
      !vlm_llama_load (&sv->text_model, w, &vlm_llama_names, "model.text_model.", "lm_head", error))
    goto fail;
  *info = (VlmArchInfo) {
    .frames_per_clip = CLIP_FRAMES,
    .processor_section = "video_processor",
    .image_size = sv->vision_model.cfg.image_size,
    .vocab_size = sv->text_model.cfg.vocab_size,
    .max_positions = sv->text_model.cfg.max_positions,
  };
  return sv;
fail:
  smolvlm_free (sv);
  return NULL;
}

static void
smolvlm_free (void *impl)
{
  SmolVLM *sv = impl;
  if (!sv)
    return;
  vlm_vit_clear (&sv->vision_model);
  vlm_linear_clear (&sv->proj);
  vlm_llama_clear (&sv->text_model);
  g_free (sv);
}

/* ---------------------------------------------------------------- run */

static void smolvlm_run_free (void *run);

static void *
smolvlm_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error)
{
  const SmolVLM *sv = model->impl;
  SmolVLMRun *r = g_new0 (SmolVLMRun, 1);
  size_t F = model->info.frames_per_clip, D = sv->text_model.cfg.hidden_size;
  size_t T = F * sv->vision_model.cfg.n_tokens, Dv = sv->vision_model.cfg.hidden_size;
  r->sv = sv;
  r->ops = ops;
  r->max_frames = model->info.frames_per_clip;
  size_t floats = F * sv->image_seq_len * D   /* image_hidden_states */
                  + 2 * T * Dv;               /* encode: tower output, shuffled */
  size_t bytes = floats * sizeof (float) + vlm_vit_arena_size (&sv->vision_model, F) + 8 * 64;
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    smolvlm_run_free (r);
    return NULL;
  }
  r->image_hidden_states = vlm_arena_new (&r->arena, float, F * sv->image_seq_len * D);
  if (!(r->text_model = vlm_llama_run_new (&sv->text_model, ops, max_beams, max_tokens, error))) {
    smolvlm_run_free (r);
    return NULL;
  }
  return r;
}

static void
smolvlm_run_free (void *run)
{
  SmolVLMRun *r = run;
  if (!r)
    return;
  vlm_llama_run_free (r->text_model);
  vlm_arena_clear (&r->arena);
  g_free (r);
}

/* SmolVLMConnector.pixel_shuffle for one frame: its W×W grid of C-channel
 * tokens → (W/s)² tokens of s²·C channels, each the s×s block it covers
 * read row by row:
 *   out[i·W/s + j][(dy·s + dx)·C + c] = x[(i·s + dy)·W + j·s + dx][c] */
static void
pixel_shuffle (const float *x, int W, int s, int C, float *out)
{
  for (int i = 0; i < W / s; i++)
    for (int j = 0; j < W / s; j++)
      for (int dy = 0; dy < s; dy++)
        for (int dx = 0; dx < s; dx++, out += C)
          memcpy (out, x + ((size_t) (i * s + dy) * W + j * s + dx) * C, C * sizeof (float));
}

/* get_image_features: every frame is a whole image, so the patch mask is
 * full and the tower's position ids are 0..grid²-1; last_hidden_state is
 * post_layernorm'd; then the connector. Takes 1 to frames_per_clip frames. */
static gboolean
smolvlm_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  SmolVLMRun *r = run;
  const SmolVLM *sv = r->sv;
  const VlmVitConfig *vc = &sv->vision_model.cfg;
  if (n_frames < 1 || n_frames > r->max_frames) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "%d frames (this model takes 1 to %d)", n_frames,
                 r->max_frames);
    return FALSE;
  }
  int T = vc->n_tokens, Dv = vc->hidden_size, s = sv->scale_factor;
  size_t mark = vlm_arena_mark (&r->arena);
  float *features = vlm_arena_new (&r->arena, float, (size_t) n_frames * T * Dv);
  float *shuffled = vlm_arena_new (&r->arena, float, (size_t) n_frames * T * Dv);
  vlm_vit_forward (&sv->vision_model, r->ops, &r->arena, pixels, n_frames, vc->num_layers, TRUE, features);
  for (int f = 0; f < n_frames; f++)
    pixel_shuffle (features + (size_t) f * T * Dv, vc->grid, s, Dv, shuffled + (size_t) f * T * Dv);
  vlm_linear (r->ops, &sv->proj, shuffled, n_frames * sv->image_seq_len, r->image_hidden_states, VLM_ACT_NONE, NULL);
  vlm_arena_rewind (&r->arena, mark);
  r->n_frames = n_frames;
  return TRUE;
}

/* inputs_merger: the image tokens in the placeholder rows; then the decoder. */
const float *
smolvlm_run_forward (SmolVLMRun *r, const int *ids, int n, int logits_to_keep, GError **error)
{
  return vlm_llama_prefill_merged (r->text_model, ids, n, r->sv->image_token_id, r->image_hidden_states,
                                   r->n_frames * r->sv->image_seq_len, logits_to_keep, error);
}

static const float *
smolvlm_prefill (void *run, const int *ids, int n, int *pos, GError **error)
{
  const float *logits = smolvlm_run_forward (run, ids, n, 1, error);
  *pos = n;
  return logits;
}

static const VlmDecoder *
smolvlm_decoder (void *run)
{
  return vlm_llama_decoder (((SmolVLMRun *) run)->text_model);
}

/* ---------------------------------------------------------------- prompt */

/* num2words for the frame count (English, below one hundred). */
static char *
number_words (int n)
{
  static const char *const ones[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                     "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                     "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char *const tens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
                                     "eighty", "ninety"};
  g_assert (n >= 0 && n < 100);
  if (n < 20)
    return g_strdup (ones[n]);
  return n % 10 ? g_strdup_printf ("%s-%s", tens[n / 10], ones[n % 10]) : g_strdup (tens[n / 10]);
}

/* process_video's expansion of `<video>`: DEFAULT_VIDEO_INTRO (count in
 * words, duration as str(timedelta) of whole seconds), per frame
 * FRAME_TIMESTAMP_MESSAGE ("MM:SS") + _prompt_single_image, then
 * DEFAULT_MEDIA_OUTTRO. */
static void
append_video (GString *s, int n_frames, const double *timestamps, double duration, int image_seq_len)
{
  g_autofree char *count = number_words (n_frames);
  int secs = (int) duration;
  g_string_append_printf (s, "You are provided the following series of %s frames from a %d:%02d:%02d [H:MM:SS] video.\n",
                          count, secs / 3600, secs / 60 % 60, secs % 60);
  for (int f = 0; f < n_frames; f++) {
    int t = (int) timestamps[f];
    g_string_append_printf (s, "\nFrame from %02d:%02d:<fake_token_around_image><global-img>", t / 60, t % 60);
    for (int i = 0; i < image_seq_len; i++)
      g_string_append (s, "<image>");
    g_string_append (s, "<fake_token_around_image>");
  }
  g_string_append (s, "\n\n");
}

/* The chat template for one user turn [video, text] with the generation
 * prompt: "<|im_start|>User: <video>{text}<end_of_utterance>\nAssistant:". */
char *
smolvlm_video_prompt (const char *prompt, int n_frames, const double *timestamps, double duration,
                      int image_seq_len)
{
  const char *video = strstr (prompt, "<video>");
  GString *s = g_string_new (video ? NULL : "<|im_start|>User: ");
  if (video)
    g_string_append_len (s, prompt, video - prompt);
  append_video (s, n_frames, timestamps, duration, image_seq_len);
  if (video)
    g_string_append (s, video + strlen ("<video>"));
  else
    g_string_append_printf (s, "%s<end_of_utterance>\nAssistant:", *prompt ? prompt : DEFAULT_PROMPT);
  return g_string_free (s, FALSE);
}

/* The clip's timing does not reach the architecture: frames are taken as
 * SmolVLM2 samples them, 1 / fps apart from 0 (fps from the processor's
 * video_sampling, else CLIP_FPS), frames_per_clip of them (CLIP_FRAMES, or
 * fewer when video_sampling.max_frames says so). */
static int *
smolvlm_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error)
{
  const SmolVLM *sv = model->impl;
  const int frames = model->info.frames_per_clip;
  const double fps = model->processor.video_fps > 0 ? model->processor.video_fps : CLIP_FPS;
  double timestamps[CLIP_FRAMES];
  g_assert (frames <= CLIP_FRAMES);   /* load sets at most CLIP_FRAMES */
  for (int f = 0; f < frames; f++)
    timestamps[f] = f / fps;
  g_autofree char *text = smolvlm_video_prompt (prompt, frames, timestamps, frames / fps, sv->image_seq_len);
  int *ids = vlm_tokenizer_encode (model->tokenizer, text, TRUE, n, error);
  int n_image = 0;
  for (int i = 0; ids && i < *n; i++)
    n_image += ids[i] == sv->image_token_id;
  if (ids && n_image != frames * sv->image_seq_len) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "the prompt holds %d <image> tokens (id %d), expected %d: one <video> and the model's tokenizer",
                 n_image, sv->image_token_id, frames * sv->image_seq_len);
    g_clear_pointer (&ids, g_free);
  }
  return ids;
}

const VlmArch vlm_arch_smolvlm = {
  .name = "SmolVLMForConditionalGeneration",
  .load = smolvlm_load,
  .free = smolvlm_free,
  .run_new = smolvlm_run_new,
  .run_free = smolvlm_run_free,
  .encode = smolvlm_encode,
  .prompt_ids = smolvlm_prompt_ids,
  .prefill = smolvlm_prefill,
  .decoder = smolvlm_decoder,
};
