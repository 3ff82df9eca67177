/* test_smolvlm.c — SmolVLM against transformers' model-level golden
 * (fixtures/smolvlm-tiny: no tokenizer or processor): the golden
 * pixel_values and input_ids through the architecture, logits of every row
 * and greedy ids through the shared generation loop, on both backends; the
 * SmolVLM2 video prompt as HF's processor writes it. */
#include <math.h>
#include <unistd.h>

#include "smolvlm.h"
#include "testutil.h"

#define FIXTURE "fixtures/smolvlm-tiny"

static VlmModel *
load_tiny (const VtBackend *be)
{
  g_autofree char *dir = vt_shared_path (FIXTURE);
  return vt_load_model (dir, be);
}

/* The model, the golden, and a run with the golden image encoded, able to
 * keep `beams` rows of logits and hold the prompt plus `new_tokens`. */
typedef struct {
  VlmModel *m;
  VlmSafetensors *gold;
  VlmOps *ops;
  SmolVLMRun *run;
  int *ids;
  int64_t n_ids;
} Setup;

static void
setup (Setup *t, const VtBackend *be, int beams, int new_tokens)
{
  GError *error = NULL;
  int64_t n_px;
  t->m = load_tiny (be);
  t->gold = vt_open_golden (FIXTURE "/golden.safetensors");
  t->ids = vt_tensor_int (t->gold, "input_ids", &t->n_ids);
  t->ops = vt_ops_new (be);
  t->run = t->m->arch->run_new (t->m, t->ops, beams, (int) t->n_ids + new_tokens, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (t->ops);
  /* pixel_values (batch 1, 1 image, 3, S, S): one frame */
  g_autofree float *pixels = vt_tensor_f32 (t->gold, "pixel_values", &n_px);
  g_assert_true (t->m->arch->encode (t->run, pixels, 1, &error));
  g_assert_no_error (error);
}

static void
teardown (Setup *t)
{
  t->m->arch->run_free (t->run);
  vlm_ops_free (t->ops);
  g_free (t->ids);
  vlm_safetensors_free (t->gold);
  vlm_model_unref (t->m);
}

/* Every row's logits (HF forward with logits_to_keep=0). */
static void
test_logits (gconstpointer data)
{
  const VtBackend *be = data;
  Setup t;
  int64_t n_logits;
  GError *error = NULL;
  setup (&t, be, 16, 0);
  g_assert_cmpint (t.n_ids, <=, 16);
  g_autofree float *want = vt_tensor_f32 (t.gold, "logits", &n_logits);
  const float *ours = smolvlm_run_forward (t.run, t.ids, (int) t.n_ids, (int) t.n_ids, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n_logits, ==, t.n_ids * t.m->info.vocab_size);
  vt_assert_close ("logits", ours, want, n_logits, be->tol);
  teardown (&t);
}

/* Prefill, then greedy decoding through vlm_generate: greedy_ids exactly. */
static void
test_greedy (gconstpointer data)
{
  const VtBackend *be = data;
  Setup t;
  int64_t n_want;
  GError *error = NULL;
  setup (&t, be, 1, 32);
  g_autofree int *want = vt_tensor_int (t.gold, "greedy_ids", &n_want);
  VlmModel *m = t.m;
  int pos = 0;
  const float *logits = m->arch->prefill (t.run, t.ids, (int) t.n_ids, &pos, &error);
  g_assert_no_error (error);
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.max_new_tokens = (int) n_want;
  volatile gint cancel = 0;
  VlmGenInput in = {t.ids, (int) t.n_ids, pos, logits, m->eos_ids, m->n_eos, m->pad_id, &cancel};
  VlmGenState *gen = vlm_gen_state_new (m->info.vocab_size, 1, gp.max_new_tokens);
  g_autofree int *out = g_new (int, gp.max_new_tokens);
  int n_out = 0;
  g_assert_true (vlm_generate (gen, m->arch->decoder (t.run), &in, &gp, NULL, NULL, out, &n_out, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (out, n_out * sizeof (int), want, n_want * sizeof (int));
  vlm_gen_state_free (gen);
  teardown (&t);
}

/* Placeholders that do not match the encoded frames, and frame counts the
 * run cannot hold, are errors. */
static void
test_bad_inputs (void)
{
  Setup t;
  GError *error = NULL;
  setup (&t, &vt_backends[1], 1, 0);
  const int no_image[] = {1, 5, 7};
  g_assert_null (smolvlm_run_forward (t.run, no_image, G_N_ELEMENTS (no_image), 1, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_clear_error (&error);
  g_autofree float *pixels = g_new0 (float, (size_t) (t.m->info.frames_per_clip + 1) * 3 * 32 * 32);
  g_assert_false (t.m->arch->encode (t.run, pixels, t.m->info.frames_per_clip + 1, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_clear_error (&error);
  teardown (&t);
}

/* A model-level folder loads, but a session (captioning) names what is missing. */
static void
test_no_tokenizer (void)
{
  VlmModel *m = load_tiny (&vt_backends[1]);
  GError *error = NULL;
  g_assert_null (vlm_session_new (m, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "tokenizer.json"));
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  vlm_model_unref (m);
}

/* What HF writes for messages [{"role": "user", "content": [{"type":
 * "video"}, {"type": "text", "text": "Describe."}]}] with
 * add_generation_prompt: the chat template, then process_video with
 * image_seq_len 2 for two frames at 0 s and 61.5 s of a 62.9 s video. */
static void
test_video_prompt (void)
{
  const double timestamps[] = {0.0, 61.5};
  const char *frame = "<fake_token_around_image><global-img><image><image><fake_token_around_image>";
  g_autofree char *video = g_strdup_printf (
      "You are provided the following series of two frames from a 0:01:02 [H:MM:SS] video.\n"
      "\nFrame from 00:00:%s\nFrame from 01:01:%s\n\n", frame, frame);
  g_autofree char *want = g_strdup_printf ("<|im_start|>User: %sDescribe.<end_of_utterance>\nAssistant:", video);
  g_autofree char *got = smolvlm_video_prompt ("Describe.", 2, timestamps, 62.9, 2);
  g_assert_cmpstr (got, ==, want);

  /* A prompt holding <video> is the whole text, <video> expanded in place. */
  g_autofree char *want_raw = g_strdup_printf ("<|im_start|>User: %sWhat happens?<end_of_utterance>\nAssistant:", video);
  g_autofree char *raw =
      smolvlm_video_prompt ("<|im_start|>User: <video>What happens?<end_of_utterance>\nAssistant:", 2, timestamps,
                            62.9, 2);
  g_assert_cmpstr (raw, ==, want_raw);

  /* num2words for the count: "sixty-four" as SmolVLM2's 64-frame default. */
  double ts[64] = {0};
  g_autofree char *many = smolvlm_video_prompt ("", 64, ts, 64.0, 1);
  g_assert_nonnull (strstr (many, "series of sixty-four frames from a 0:01:04 [H:MM:SS] video.\n"));
  g_assert_nonnull (strstr (many, "<end_of_utterance>\nAssistant:"));
}

/* ---------------------------------------------------------------- SmolVLM2 folder */

/* Pillow's bicubic kernel (a = -0.5). */
static double
ref_bicubic (double x)
{
  x = fabs (x);
  if (x < 1.0)
    return (1.5 * x - 2.5) * x * x + 1.0;
  if (x < 2.0)
    return ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0;
  return 0.0;
}

/* One line of an antialiased bicubic resize in doubles, as Pillow defines
 * it: n samples `in_step` apart → m samples `out_step` apart, rounded. */
static void
ref_resample_line (const guint8 *in, int n, int in_step, guint8 *out, int m, int out_step)
{
  const double scale = (double) n / m, widen = MAX (scale, 1.0);
  for (int o = 0; o < m; o++) {
    const double center = (o + 0.5) * scale;
    const int lo = MAX ((int) (center - 2.0 * widen + 0.5), 0);
    const int hi = MIN ((int) (center + 2.0 * widen + 0.5), n);
    double sum = 0.0, acc = 0.0;
    for (int i = lo; i < hi; i++) {
      const double w = ref_bicubic ((i - center + 0.5) / widen);
      sum += w;
      acc += w * in[(gsize) i * in_step];
    }
    out[(gsize) o * out_step] = (guint8) CLAMP (lround (acc / sum), 0, 255);
  }
}

/* Packed RGB w × h → ow × oh: rows first, each pass rounded to u8. g_free. */
static guint8 *
ref_resize (const guint8 *src, int w, int h, int ow, int oh)
{
  g_autofree guint8 *mid = g_new (guint8, (gsize) ow * h * 3);
  guint8 *dst = g_new (guint8, (gsize) ow * oh * 3);
  for (int y = 0; y < h; y++)
    for (int c = 0; c < 3; c++)
      ref_resample_line (src + (gsize) y * w * 3 + c, w, 3, mid + (gsize) y * ow * 3 + c, ow, 3);
  for (int x = 0; x < ow; x++)
    for (int c = 0; c < 3; c++)
      ref_resample_line (mid + x * 3 + c, h, ow * 3, dst + x * 3 + c, oh, ow * 3);
  return dst;
}

/* max |engine − reference| over the frame, in u8 levels, for a reference
 * through an intermediate of iw × ih (0: a single resize) and mean = std
 * = 0.5. */
static double
levels_off (const float *px, const guint8 *rgb, int w, int h, int iw, int ih)
{
  const int S = VT_SMOLVLM2_MAX_IMAGE;
  g_autofree guint8 *first = iw ? ref_resize (rgb, w, h, iw, ih) : NULL;
  g_autofree guint8 *want = iw ? ref_resize (first, iw, ih, S, S) : ref_resize (rgb, w, h, S, S);
  double worst = 0.0;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < S * S; i++) {
      const double v = ((double) want[i * 3 + c] / 255.0 - 0.5) / 0.5;
      worst = MAX (worst, fabs (px[c * S * S + i] - v) * 255.0 / 2.0);
    }
  return worst;
}

/* A w × h packed-RGB frame of pseudo-random pixels: fine detail, so
 * resizing through a different intermediate shows. g_free. */
static guint8 *
noise_rgb (int w, int h, guint32 seed)
{
  guint8 *rgb = g_new (guint8, (gsize) w * h * 3);
  for (int i = 0; i < w * h * 3; i++) {
    seed = seed * 1664525u + 1013904223u;
    rgb[i] = (guint8) (seed >> 24);
  }
  return rgb;
}

/* SmolVLM2's video processor from a Hub-shaped folder: `size` (not
 * video_sampling.video_size) is the first resize, LANCZOS runs as BICUBIC,
 * max_frames caps the frames per clip. On odd-aspect frames the pixels
 * match a plain double-precision reference that resizes the longest edge to
 * `size` (the other edge int(size / aspect), made even: 60×29 → 40×20,
 * 29×60 → 20×40), rounds to u8, then resizes to max_image_size²; a
 * reference with one resize, or an odd intermediate, is far off. */
static void
test_video_processor (void)
{
  g_autofree char *dir = vt_smolvlm2_folder ();
  VlmModel *m = vt_load_model (dir, &vt_backends[1]);
  const VlmImageProcessor *p = &m->processor;
  g_assert_cmpint (p->pre_longest_edge, ==, VT_SMOLVLM2_SIZE);
  g_assert_cmpint (p->out_h, ==, VT_SMOLVLM2_MAX_IMAGE);
  g_assert_cmpint (p->out_w, ==, VT_SMOLVLM2_MAX_IMAGE);
  g_assert_cmpint (p->resample, ==, VLM_RESAMPLE_BICUBIC);
  g_assert_cmpfloat (p->video_fps, ==, VT_SMOLVLM2_FPS);
  g_assert_cmpint (m->info.frames_per_clip, ==, VT_SMOLVLM2_MAX_FRAMES);

  static const struct { int w, h; } sizes[] = { {60, 29}, {29, 60} };
  for (guint k = 0; k < G_N_ELEMENTS (sizes); k++) {
    const int w = sizes[k].w, h = sizes[k].h, L = VT_SMOLVLM2_SIZE;
    /* get_resize_output_image_size, written out */
    const double aspect = (double) w / h;
    int iw = w >= h ? L : (int) (L * aspect), ih = w >= h ? (int) (L / aspect) : L;
    const int odd_w = iw, odd_h = ih;
    iw += iw % 2;
    ih += ih % 2;
    g_assert_cmpint (MIN (iw, ih), ==, 20);
    g_assert_cmpint (odd_w * odd_h, ==, 40 * 19);   /* the odd edge was made even */

    g_autofree guint8 *rgb = noise_rgb (w, h, 7 + k);
    VlmFrame frame = { .format = VLM_PIXEL_RGB, .width = w, .height = h, .planes = { rgb },
                       .strides = { w * 3 } };
    g_autofree float *px = g_new (float, 3 * p->out_h * p->out_w);
    g_autofree void *scratch = g_malloc (vlm_image_scratch_size (p, w, h));
    GError *error = NULL;
    g_assert_true (vlm_image_preprocess (p, &frame, px, scratch, &error));
    g_assert_no_error (error);
    const double ok = levels_off (px, rgb, w, h, iw, ih);
    const double one_pass = levels_off (px, rgb, w, h, 0, 0);
    const double odd = levels_off (px, rgb, w, h, odd_w, odd_h);
    g_test_message ("%dx%d -> %dx%d -> %dx%d: %.2f levels off the reference (one resize: %.1f, "
                    "via %dx%d: %.1f)", w, h, iw, ih, VT_SMOLVLM2_MAX_IMAGE, VT_SMOLVLM2_MAX_IMAGE, ok,
                    one_pass, odd_w, odd_h, odd);
    g_assert_cmpfloat (ok, <=, 1.0 + 1e-3);
    g_assert_cmpfloat (one_pass, >, 8.0);
    g_assert_cmpfloat (odd, >, 8.0);
  }
  vlm_model_unref (m);
  vt_remove_folder (dir);
}

/* The folder captions through the public API: the prompt holds the
 * processor's frame count (max_frames 4) and times (fps 2), each frame's
 * image_seq_len <image> tokens between its markers. */
static void
test_smolvlm2_session (void)
{
  g_autofree char *dir = vt_smolvlm2_folder ();
  VlmModel *m = vt_load_model (dir, &vt_backends[0]);
  GError *error = NULL;
  int n = 0, n_image = 0;
  g_autofree int *ids = m->arch->prompt_ids (m, "Describe.", &n, &error);
  g_assert_no_error (error);
  for (int i = 0; i < n; i++)
    n_image += ids[i] == 399;
  g_assert_cmpint (n_image, ==, VT_SMOLVLM2_MAX_FRAMES * 4);
  g_autofree char *text = vlm_tokenizer_decode (m->tokenizer, ids, n, FALSE);
  g_assert_true (g_str_has_prefix (text, "<|im_start|>User: You are provided the following series of "
                                         "four frames from a 0:00:02 [H:MM:SS] video.\n"));
  g_assert_nonnull (strstr (text, "\nFrame from 00:01:<fake_token_around_image><global-img><image>"));
  g_assert_true (g_str_has_suffix (text, "Describe.<end_of_utterance>\nAssistant:"));

  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  VlmFrame frames[VT_SMOLVLM2_MAX_FRAMES];
  guint8 *rgb[VT_SMOLVLM2_MAX_FRAMES];
  for (int f = 0; f < VT_SMOLVLM2_MAX_FRAMES; f++) {
    rgb[f] = noise_rgb (60, 29, 100 + f);
    frames[f] = (VlmFrame) { .format = VLM_PIXEL_RGB, .width = 60, .height = 29, .planes = { rgb[f] },
                             .strides = { 60 * 3 } };
  }
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.max_new_tokens = 6;
  VlmCaption cap;
  g_assert_true (vlm_session_caption (s, frames, VT_SMOLVLM2_MAX_FRAMES, "Describe.", &gp, NULL, NULL, &cap, &error));
  g_assert_no_error (error);
  g_test_message ("caption \"%s\", %d tokens", cap.text, cap.n_tokens);
  g_assert_cmpint (cap.n_tokens, >, 0);
  vlm_caption_clear (&cap);
  for (int f = 0; f < VT_SMOLVLM2_MAX_FRAMES; f++)
    g_free (rgb[f]);
  vlm_session_free (s);
  vlm_model_unref (m);
  vt_remove_folder (dir);
}

/* HF's patch grid is image_size // patch_size: SmolVLM2-2.2B's 384 / 14
 * is 27 (729 patches), and the last rows and columns are never read. The
 * tiny fixture with image_size 36 (patch 8: still a 4 × 4 grid) gives the
 * golden logits from the golden 32² pixels padded with anything to 36². */
static void
test_grid_rounds_down (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser,
      "{\"model_type\": \"smolvlm_vision\", \"hidden_size\": 1152, \"intermediate_size\": 4304,"
      " \"num_attention_heads\": 16, \"num_hidden_layers\": 27, \"image_size\": 384,"
      " \"patch_size\": 14}", -1, NULL));
  VlmVitConfig vc;
  GError *error = NULL;
  g_assert_true (vlm_vit_config_read (&vc, json_node_get_object (json_parser_get_root (parser)),
                                      "config.json", FALSE, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vc.grid, ==, 27);
  g_assert_cmpint (vc.n_tokens, ==, 729);

  g_autofree char *dir = g_dir_make_tmp ("vlm-smolvlm-36-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *cfg_path = vt_shared_path (FIXTURE "/config.json");
  g_autofree char *weights = vt_shared_path (FIXTURE "/model.safetensors");
  g_autofree char *link = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (symlink (weights, link), ==, 0);
  g_autoptr (JsonParser) cfg = json_parser_new ();
  g_assert_true (json_parser_load_from_file (cfg, cfg_path, &error));
  JsonObject *root = json_node_get_object (json_parser_get_root (cfg));
  json_object_set_int_member (json_object_get_object_member (root, "vision_config"), "image_size", 36);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (cfg));
  g_autofree char *out_cfg = g_build_filename (dir, "config.json", NULL);
  g_assert_true (json_generator_to_file (gen, out_cfg, &error));

  const VtBackend *be = &vt_backends[0];
  VlmModel *m = vt_load_model (dir, be);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  int64_t n_ids, n_px, n_logits;
  g_autofree int *ids = vt_tensor_int (gold, "input_ids", &n_ids);
  g_autofree float *golden_px = vt_tensor_f32 (gold, "pixel_values", &n_px);
  g_autofree float *want = vt_tensor_f32 (gold, "logits", &n_logits);
  g_autofree float *px = g_new (float, 3 * 36 * 36);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 36; y++)
      for (int x = 0; x < 36; x++)
        px[(c * 36 + y) * 36 + x] = y < 32 && x < 32 ? golden_px[(c * 32 + y) * 32 + x] : 7.0f;
  VlmOps *ops = vt_ops_new (be);
  SmolVLMRun *run = m->arch->run_new (m, ops, 16, (int) n_ids, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (ops);
  g_assert_true (m->arch->encode (run, px, 1, &error));
  g_assert_no_error (error);
  const float *ours = smolvlm_run_forward (run, ids, (int) n_ids, (int) n_ids, &error);
  g_assert_no_error (error);
  vt_assert_close ("logits (image_size 36, patch 8)", ours, want, n_logits, be->tol);
  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
  vt_remove_folder (dir);
}

/* Sets `obj`.`key` of `dir`/`name` to `v` in a file of the folder's own
 * (a symlink to the fixture is replaced, never written through). */
static void
set_json_int (const char *dir, const char *name, const char *obj, const char *key, int v)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *error = NULL;
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  json_object_set_int_member (json_object_get_object_member (root, obj), key, v);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (parser));
  g_assert_cmpint (unlink (path), ==, 0);
  g_assert_true (json_generator_to_file (gen, path, &error));
  g_assert_no_error (error);
}

/* The processor's frames must be what the tower reads, image_size², which
 * is not what its patch grid covers when the patch does not divide it: a
 * folder whose processor disagrees with config.json fails at load, naming
 * the processor's file and both sizes. */
static void
test_processor_size_mismatch (void)
{
  g_autofree char *dir = vt_smolvlm2_folder ();
  GError *error = NULL;

  /* 36² frames for a 32² tower */
  set_json_int (dir, "preprocessor_config.json", "max_image_size", "longest_edge", 36);
  VlmModel *m = vlm_model_load (dir, NULL, &error);
  g_assert_null (m);
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG);
  g_assert_nonnull (strstr (error->message, "preprocessor_config.json"));
  g_assert_nonnull (strstr (error->message, "36x36"));
  g_assert_nonnull (strstr (error->message, "32x32"));
  g_clear_error (&error);

  /* a 36² tower (patch 8: a 4 × 4 grid over 32² of it) takes them */
  set_json_int (dir, "config.json", "vision_config", "image_size", 36);
  m = vlm_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m->info.image_size, ==, 36);
  g_assert_cmpint (m->processor.out_h, ==, 36);
  vlm_model_unref (m);
  vt_remove_folder (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (vt_backends); i++) {
    g_autofree char *a = g_strdup_printf ("/smolvlm/%s/logits", vt_backends[i].name);
    g_autofree char *b = g_strdup_printf ("/smolvlm/%s/greedy-ids", vt_backends[i].name);
    g_test_add_data_func (a, &vt_backends[i], test_logits);
    g_test_add_data_func (b, &vt_backends[i], test_greedy);
  }
  g_test_add_data_func ("/smolvlm/onednn-int8/logits", &vt_int8, test_logits);
  g_test_add_func ("/smolvlm/bad-inputs", test_bad_inputs);
  g_test_add_func ("/smolvlm/no-tokenizer", test_no_tokenizer);
  g_test_add_func ("/smolvlm/video-prompt", test_video_prompt);
  g_test_add_func ("/smolvlm/smolvlm2-video-processor", test_video_processor);
  g_test_add_func ("/smolvlm/smolvlm2-session", test_smolvlm2_session);
  g_test_add_func ("/smolvlm/grid-rounds-down", test_grid_rounds_down);
  g_test_add_func ("/smolvlm/processor-size-mismatch", test_processor_size_mismatch);
  return g_test_run ();
}
