/* test_llava.c — Video-LLaVA against transformers' goldens
 * (fixtures/video-llava-tiny): prompt ids and pixel values from the raw
 * inputs, then projector and logits stage by stage and generation through
 * the public API, on both backends. */
#include <math.h>

#include "llava.h"
#include "testutil.h"

#define FIXTURE "fixtures/video-llava-tiny"
/* golden.json's prompt is the processor's full template around this. */
#define USER_PROMPT "What is happening in the video?"

typedef struct {
  VlmBackend backend;
  const char *name;
} Backend;

static const Backend backends[] = {{VLM_BACKEND_ONEDNN, "onednn"}, {VLM_BACKEND_BLAS, "blas"}};

static VlmModel *
load_tiny (VlmBackend backend)
{
  g_autofree char *dir = vt_shared_path (FIXTURE);
  VlmModelParams p = vlm_model_default_params ();
  p.backend = backend;
  GError *error = NULL;
  VlmModel *m = vlm_model_load (dir, &p, &error);
  g_assert_no_error (error);
  return m;
}

/* A string member of golden.json (g_free). */
static char *
golden_string (const char *key)
{
  g_autofree char *path = vt_shared_path (FIXTURE "/golden.json");
  JsonParser *parser = NULL;
  GError *error = NULL;
  JsonObject *o = vlm_json_load (path, &parser, &error);
  g_assert_no_error (error);
  char *s = g_strdup (vlm_json_string (o, key, NULL));
  g_assert_nonnull (s);
  g_object_unref (parser);
  return s;
}

/* frames_u8 (F, H, W, 3) as VlmFrames over the golden's memory. */
static VlmFrame *
golden_frames (VlmSafetensors *gold, int *n)
{
  const VlmTensor *t = vlm_safetensors_find (gold, "frames_u8");
  g_assert_nonnull (t);
  int F = (int) t->shape[0], H = (int) t->shape[1], W = (int) t->shape[2];
  VlmFrame *frames = g_new0 (VlmFrame, F);
  for (int f = 0; f < F; f++)
    frames[f] = (VlmFrame) {.format = VLM_PIXEL_RGB, .width = W, .height = H,
                            .planes = {(const uint8_t *) t->data + (size_t) f * H * W * 3},
                            .strides = {W * 3}};
  *n = F;
  return frames;
}

/* The user prompt and golden.json's full template both give input_ids:
 * template, BOS, tokenizer and the <video> expansion to F·T placeholders. */
static void
test_input_ids (void)
{
  VlmModel *m = load_tiny (VLM_BACKEND_BLAS);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (gold, "input_ids", &n_want);
  g_autofree char *full = golden_string ("prompt");
  const char *prompts[] = {USER_PROMPT, full};
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
test_pixel_values (void)
{
  VlmModel *m = load_tiny (VLM_BACKEND_BLAS);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  const VlmImageProcessor *p = &m->processor;
  int n_frames;
  g_autofree VlmFrame *frames = golden_frames (gold, &n_frames);
  int64_t n_px;
  g_autofree float *want = vt_tensor_f32 (gold, "pixel_values_videos", &n_px);
  size_t plane = (size_t) p->out_h * p->out_w;
  g_assert_cmpint (n_frames, ==, m->frames_per_clip);
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

/* Golden pixel_values_videos → projector_out; golden input_ids → the last
 * four rows' logits. */
static void
test_stages (gconstpointer data)
{
  const Backend *be = data;
  VlmModel *m = load_tiny (be->backend);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  GError *error = NULL;
  VlmOps *ops = vlm_ops_new (be->backend, 0, &error);
  g_assert_no_error (error);
  int64_t n_px, n_proj, n_logits, n_ids;
  g_autofree int *ids = vt_tensor_int (gold, "input_ids", &n_ids);
  LlavaRun *run = m->arch->run_new (m, ops, 4, (int) n_ids, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (ops);

  g_autofree float *pixels = vt_tensor_f32 (gold, "pixel_values_videos", &n_px);
  g_assert_true (m->arch->encode (run, pixels, m->frames_per_clip, &error));
  g_assert_no_error (error);
  g_autofree float *proj = vt_tensor_f32 (gold, "projector_out", &n_proj);
  vt_assert_close ("projector_out", llava_run_projector_out (run), proj, n_proj, 1e-4);

  g_autofree float *logits = vt_tensor_f32 (gold, "logits_last4", &n_logits);
  const float *ours = llava_run_forward (run, ids, (int) n_ids, 4, &error);
  g_assert_no_error (error);
  vt_assert_close ("logits_last4", ours, logits, n_logits, 1e-4);

  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* Captions the golden clip with USER_PROMPT; the ids must be greedy_ids. */
static void
check_greedy (VlmSession *s, VlmModel *m, VlmSafetensors *gold, const char *backend)
{
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (gold, "greedy_ids", &n_want);
  g_autofree char *want_text = golden_string ("greedy_text");
  int n_frames;
  g_autofree VlmFrame *frames = golden_frames (gold, &n_frames);
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.max_new_tokens = (int) n_want;
  VlmCaption cap;
  GError *error = NULL;
  g_assert_true (vlm_session_caption (s, frames, n_frames, USER_PROMPT, &gp, NULL, NULL, &cap, &error));
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
  const Backend *be = data;
  VlmModel *m = load_tiny (be->backend);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  GError *error = NULL;
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  check_greedy (s, m, gold, be->name);
  vlm_session_free (s);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* A beam search in between leaves the session's cache fit for the next
 * clip: greedy before and after gives the golden ids. */
static void
test_beam_then_greedy (void)
{
  VlmModel *m = load_tiny (VLM_BACKEND_ONEDNN);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  int n_frames;
  g_autofree VlmFrame *frames = golden_frames (gold, &n_frames);
  GError *error = NULL;
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  check_greedy (s, m, gold, "onednn");
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.num_beams = 3;
  gp.max_new_tokens = 6;
  VlmCaption cap;
  g_assert_true (vlm_session_caption (s, frames, n_frames, "", &gp, NULL, NULL, &cap, &error));
  g_assert_no_error (error);
  g_test_message ("beam-3: \"%s\", %d tokens", cap.text, cap.n_tokens);
  g_assert_cmpint (cap.n_tokens, >=, 1);
  vlm_caption_clear (&cap);
  check_greedy (s, m, gold, "onednn");
  vlm_session_free (s);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/llava/input-ids", test_input_ids);
  g_test_add_func ("/llava/pixel-values", test_pixel_values);
  for (guint i = 0; i < G_N_ELEMENTS (backends); i++) {
    g_autofree char *a = g_strdup_printf ("/llava/%s/stages", backends[i].name);
    g_autofree char *b = g_strdup_printf ("/llava/%s/greedy-ids", backends[i].name);
    g_test_add_data_func (a, &backends[i], test_stages);
    g_test_add_data_func (b, &backends[i], test_greedy);
  }
  g_test_add_func ("/llava/beam-then-greedy", test_beam_then_greedy);
  return g_test_run ();
}
