/* test_llava.c — the LLaVA family (Video-LLaVA, LLaVA-OneVision) against
 * transformers' goldens: prompt ids and pixel values from the raw inputs,
 * then the video tokens and logits stage by stage and generation through
 * the public API, on both backends. */
#include <math.h>

#include "llava.h"
#include "testutil.h"

typedef struct {
  const char *dir;            /* under ../shared/fixtures */
  const char *user_prompt;    /* golden.json's prompt is the template around it */
  const char *projector_out;  /* golden of the video tokens, if the fixture has one */
} Fixture;

static const Fixture fixtures[] = {
  {"video-llava-tiny", "What is happening in the video?", "projector_out"},
  {"llava-onevision-qwen2-tiny", "Describe the video.", NULL},
};

typedef struct {
  const Fixture *fx;
  const VtBackend *be;
} Case;

static char *
fixture_path (const Fixture *fx, const char *file)
{
  g_autofree char *rel = g_strdup_printf ("fixtures/%s/%s", fx->dir, file);
  return vt_shared_path (rel);
}

static VlmModel *
load_tiny (const Fixture *fx, const VtBackend *be)
{
  g_autofree char *dir = fixture_path (fx, "");
  return vt_load_model (dir, be);
}

static VlmSafetensors *
open_golden (const Fixture *fx)
{
  g_autofree char *rel = g_strdup_printf ("fixtures/%s/golden.safetensors", fx->dir);
  return vt_open_golden (rel);
}

/* A string member of golden.json (g_free). */
static char *
golden_string (const Fixture *fx, const char *key)
{
  g_autofree char *path = fixture_path (fx, "golden.json");
  JsonParser *parser = NULL;
  GError *error = NULL;
  JsonObject *o = vlm_json_load (path, &parser, &error);
  g_assert_no_error (error);
  char *s = g_strdup (vlm_json_string (o, key, NULL));
  g_assert_nonnull (s);
  g_object_unref (parser);
  return s;
}

/* The user prompt and golden.json's full template both give input_ids:
 * template, special tokens, tokenizer and the <video> expansion. */
static void
test_input_ids (gconstpointer data)
{
  const Fixture *fx = data;
  VlmModel *m = load_tiny (fx, &vt_backends[1]);
  VlmSafetensors *gold = open_golden (fx);
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (gold, "input_ids", &n_want);
  g_autofree char *full = golden_string (fx, "prompt");
  const char *prompts[] = {fx->user_prompt, full};
  for (guint i = 0; i < G_N_ELEMENTS (prompts); i++) {
    GError *error = NULL;
    int n = 0;
    g_autofree int *ids = m->arch->prompt_ids (m, prompts[i], &n, &error);
    g_assert_no_error (error);
    g_assert_cmpmem (ids, n * sizeof (int), want, n_want * sizeof (int));
  }
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* frames_u8 → pixel_values_videos through the "video_processor" section,
 * to one u8 level (1/255 before normalisation). */
static void
test_pixel_values (gconstpointer data)
{
  const Fixture *fx = data;
  VlmModel *m = load_tiny (fx, &vt_backends[1]);
  VlmSafetensors *gold = open_golden (fx);
  const VlmImageProcessor *p = &m->processor;
  int n_frames;
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &n_frames);
  int64_t n_px;
  g_autofree float *want = vt_tensor_f32 (gold, "pixel_values_videos", &n_px);
  size_t plane = (size_t) p->out_h * p->out_w;
  g_assert_cmpint (n_frames, ==, m->info.frames_per_clip);
  g_assert_cmpint (n_px, ==, (int64_t) n_frames * 3 * plane);
  g_autofree float *px = g_new (float, n_px);
  g_autofree void *scratch = g_malloc (vlm_image_scratch_size (p, frames[0].width, frames[0].height));
  double worst = 0;
  for (int f = 0; f < n_frames; f++) {
    GError *error = NULL;
    g_assert_true (vlm_image_preprocess (p, &frames[f], px + f * 3 * plane, scratch, &error));
    g_assert_no_error (error);
    for (size_t i = 0; i < 3 * plane; i++) {
      size_t at = f * 3 * plane + i;
      /* back to u8 levels: one level of 255 is 1 / (255 · std) here */
      worst = MAX (worst, fabs (px[at] - want[at]) * p->std[i / plane] * 255.0);
    }
  }
  g_test_message ("pixel_values_videos: max diff %.4f u8 levels", worst);
  g_assert_cmpfloat (worst, <=, 1.0 + 1e-3);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* Golden pixel_values_videos → video tokens; golden input_ids → the last
 * four rows' logits. */
static void
test_stages (gconstpointer data)
{
  const Case *c = data;
  VlmModel *m = load_tiny (c->fx, c->be);
  VlmSafetensors *gold = open_golden (c->fx);
  GError *error = NULL;
  VlmOps *ops = vt_ops_new (c->be);
  int64_t n_px, n_proj, n_logits, n_ids;
  g_autofree int *ids = vt_tensor_int (gold, "input_ids", &n_ids);
  LlavaRun *run = m->arch->run_new (m, ops, 4, (int) n_ids, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (ops);

  g_autofree float *pixels = vt_tensor_f32 (gold, "pixel_values_videos", &n_px);
  g_assert_true (m->arch->encode (run, pixels, m->info.frames_per_clip, &error));
  g_assert_no_error (error);
  if (c->fx->projector_out) {
    g_autofree float *proj = vt_tensor_f32 (gold, c->fx->projector_out, &n_proj);
    vt_assert_close (c->fx->projector_out, m->arch->stage (run, "video_tokens"), proj, n_proj, c->be->tol);
  }

  g_autofree float *logits = vt_tensor_f32 (gold, "logits_last4", &n_logits);
  const float *ours = llava_run_forward (run, ids, (int) n_ids, 4, &error);
  g_assert_no_error (error);
  g_test_message ("logits_last4 with f32 RoPE inv_freq (the default): max |diff| / range = %.3g",
                  vt_max_rel_range_diff (ours, logits, n_logits));
  m->arch->run_free (run);

  /* The goldens were computed by a model cast to bf16 and back, which
   * rounds RoPE's inv_freq buffer too: rebuild the run's tables that way to
   * compare like with like. */
  Llava *lv = m->impl;
  lv->language_model.cfg.rope_bf16 = TRUE;
  run = m->arch->run_new (m, ops, 4, (int) n_ids, &error);
  g_assert_no_error (error);
  g_assert_true (m->arch->encode (run, pixels, m->info.frames_per_clip, &error));
  ours = llava_run_forward (run, ids, (int) n_ids, 4, &error);
  g_assert_no_error (error);
  vt_assert_close ("logits_last4", ours, logits, n_logits, c->be->tol);

  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* Captions the golden clip with the user prompt; the ids must be greedy_ids. */
static void
check_greedy (const Fixture *fx, VlmSession *s, VlmModel *m, VlmSafetensors *gold, const char *backend)
{
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (gold, "greedy_ids", &n_want);
  g_autofree char *want_text = golden_string (fx, "greedy_text");
  int n_frames;
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &n_frames);
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.max_new_tokens = (int) n_want;
  VlmCaption cap;
  GError *error = NULL;
  g_assert_true (vlm_session_caption (s, frames, n_frames, fx->user_prompt, &gp, NULL, NULL, &cap, &error));
  g_assert_no_error (error);
  g_test_message ("greedy (%s): \"%s\", %d tokens, %.1f ms", backend, cap.text, cap.n_tokens, cap.total_ms);
  g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), want, n_want * sizeof (int));
  g_assert_cmpstr (cap.text, ==, want_text);
  vlm_caption_clear (&cap);
}

/* Raw frames → caption through the public API. */
static void
test_greedy (gconstpointer data)
{
  const Case *c = data;
  VlmModel *m = load_tiny (c->fx, c->be);
  VlmSafetensors *gold = open_golden (c->fx);
  GError *error = NULL;
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  check_greedy (c->fx, s, m, gold, c->be->name);
  vlm_session_free (s);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* A beam search in between leaves the session's cache fit for the next
 * clip: greedy before and after gives the golden ids. */
static void
test_beam_then_greedy (gconstpointer data)
{
  const Fixture *fx = data;
  VlmModel *m = load_tiny (fx, &vt_backends[0]);
  VlmSafetensors *gold = open_golden (fx);
  int n_frames;
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &n_frames);
  GError *error = NULL;
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  check_greedy (fx, s, m, gold, "onednn");
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.num_beams = 3;
  gp.max_new_tokens = 6;
  VlmCaption cap;
  g_assert_true (vlm_session_caption (s, frames, n_frames, "", &gp, NULL, NULL, &cap, &error));
  g_assert_no_error (error);
  g_test_message ("beam-3: \"%s\", %d tokens", cap.text, cap.n_tokens);
  g_assert_cmpint (cap.n_tokens, >=, 1);
  vlm_caption_clear (&cap);
  check_greedy (fx, s, m, gold, "onednn");
  vlm_session_free (s);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* vision_feature_layer past int's range, past the tower, or not a number:
 * refused by name (4294967294 was read as -2 and loaded silently). */
static void
test_bad_feature_layer (void)
{
  static const char *const values[] = { "4294967294", "-4294967298", "2147483647", "-2147483648",
                                        "4", "-5", "\"-2\"", "1e30" };
  g_autofree char *src = vt_shared_path ("fixtures/video-llava-tiny");
  g_autofree char *cfg_path = g_build_filename (src, "config.json", NULL);
  g_autofree char *config = NULL;
  g_assert_true (g_file_get_contents (cfg_path, &config, NULL, NULL));
  char **parts = g_strsplit (config, "\"vision_feature_layer\": -2", 2);
  g_assert_cmpuint (g_strv_length (parts), ==, 2);
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("vlm-llava-XXXXXX", &error);
  g_assert_no_error (error);
  const char *linked[] = { "model.safetensors", "processor_config.json", "tokenizer.json",
                           "tokenizer_config.json", "generation_config.json" };
  for (guint i = 0; i < G_N_ELEMENTS (linked); i++) {
    g_autofree char *target = g_build_filename (src, linked[i], NULL);
    g_autofree char *link = g_build_filename (dir, linked[i], NULL);
    g_assert_cmpint (symlink (target, link), ==, 0);
  }
  g_autofree char *out = g_build_filename (dir, "config.json", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++) {
    g_autofree char *with = g_strdup_printf ("\"vision_feature_layer\": %s", values[i]);
    g_autofree char *text = g_strjoin (with, parts[0], parts[1], NULL);
    g_assert_true (g_file_set_contents (out, text, -1, NULL));
    VlmModel *m = vlm_model_load (dir, NULL, &error);
    g_assert_null (m);
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG);
    g_test_message ("%s: %s", values[i], error->message);
    g_assert_nonnull (strstr (error->message, "vision_feature_layer"));
    g_clear_error (&error);
  }
  /* the value it had loads */
  g_autofree char *text = g_strjoin ("\"vision_feature_layer\": -2", parts[0], parts[1], NULL);
  g_assert_true (g_file_set_contents (out, text, -1, NULL));
  VlmModel *m = vlm_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  vlm_model_unref (m);
  g_strfreev (parts);
  vt_remove_folder (dir);
  g_free (dir);
}

/* Placeholder counts that do not fit the clip are errors, not crashes. */
static void
test_bad_placeholders (void)
{
  const Fixture *fx = &fixtures[0];
  VlmModel *m = load_tiny (fx, &vt_backends[1]);
  GError *error = NULL;
  int n = 0;
  g_assert_null (m->arch->prompt_ids (m, "USER: <video><video>\nHi ASSISTANT:", &n, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_clear_error (&error);

  VlmOps *ops = vlm_ops_new (VLM_BACKEND_BLAS, 0, &error);
  LlavaRun *run = m->arch->run_new (m, ops, 1, 16, &error);
  g_assert_no_error (error);
  const int ids[] = {1, 2223, 725};   /* "USER" without the video */
  g_assert_null (llava_run_forward (run, ids, G_N_ELEMENTS (ids), 1, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_clear_error (&error);
  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_model_unref (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  static Case cases[G_N_ELEMENTS (fixtures)][G_N_ELEMENTS (vt_backends)], int8[G_N_ELEMENTS (fixtures)];
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    const char *dir = fixtures[f].dir;
    g_autofree char *a = g_strdup_printf ("/llava/%s/input-ids", dir);
    g_autofree char *b = g_strdup_printf ("/llava/%s/pixel-values", dir);
    g_autofree char *c = g_strdup_printf ("/llava/%s/beam-then-greedy", dir);
    g_test_add_data_func (a, &fixtures[f], test_input_ids);
    g_test_add_data_func (b, &fixtures[f], test_pixel_values);
    g_test_add_data_func (c, &fixtures[f], test_beam_then_greedy);
    for (guint i = 0; i < G_N_ELEMENTS (vt_backends); i++) {
      cases[f][i] = (Case) {&fixtures[f], &vt_backends[i]};
      g_autofree char *d = g_strdup_printf ("/llava/%s/%s/stages", dir, vt_backends[i].name);
      g_autofree char *e = g_strdup_printf ("/llava/%s/%s/greedy-ids", dir, vt_backends[i].name);
      g_test_add_data_func (d, &cases[f][i], test_stages);
      g_test_add_data_func (e, &cases[f][i], test_greedy);
    }
    int8[f] = (Case) {&fixtures[f], &vt_int8};
    g_autofree char *g = g_strdup_printf ("/llava/%s/%s/stages", dir, vt_int8.name);
    g_test_add_data_func (g, &int8[f], test_stages);
  }
  g_test_add_func ("/llava/bad-placeholders", test_bad_placeholders);
  g_test_add_func ("/llava/bad-feature-layer", test_bad_feature_layer);
  return g_test_run ();
}
