/* testutil.c — fixture paths, golden tensors, parity figures. */
#include "testutil.h"

#include "cpu.h"
#include "synth.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <unistd.h>

static const char *
project_root (void)
{
  const char *root = g_getenv ("VLM_PROJECT_ROOT");
  return root && *root ? root : ".";
}

char *
vt_project_path (const char *rel)
{
  g_autofree char *p = g_build_filename (project_root (), rel, NULL);
  return g_canonicalize_filename (p, NULL);
}

char *
vt_shared_path (const char *rel)
{
  g_autofree char *p = g_build_filename (project_root (), "..", "shared", rel, NULL);
  return g_canonicalize_filename (p, NULL);
}

VlmSafetensors *
vt_open_golden (const char *rel)
{
  g_autofree char *path = vt_shared_path (rel);
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (path, &error);
  if (!st)
    g_error ("cannot open golden %s: %s", path, error->message);
  return st;
}

static const VlmTensor *
must_find (const VlmSafetensors *st, const char *name)
{
  const VlmTensor *t = vlm_safetensors_find (st, name);
  if (!t)
    g_error ("%s: golden tensor '%s' missing", vlm_safetensors_path (st), name);
  return t;
}

float *
vt_tensor_f32 (const VlmSafetensors *st, const char *name, int64_t *n)
{
  const VlmTensor *t = must_find (st, name);
  int64_t numel = vlm_tensor_numel (t);
  float *out = g_new (float, numel);
  for (int64_t i = 0; i < numel; i++)
    switch (t->dtype) {
      case VLM_DTYPE_I64: out[i] = (float) ((const int64_t *) t->data)[i]; break;
      case VLM_DTYPE_U8: out[i] = ((const uint8_t *) t->data)[i]; break;
      default: vlm_tensor_to_f32 (t, out); i = numel; break;
    }
  if (n)
    *n = numel;
  return out;
}

int *
vt_tensor_int (const VlmSafetensors *st, const char *name, int64_t *n)
{
  const VlmTensor *t = must_find (st, name);
  int64_t numel = vlm_tensor_numel (t);
  g_assert_true (t->dtype == VLM_DTYPE_I64 || t->dtype == VLM_DTYPE_I32);
  int *out = g_new (int, numel);
  for (int64_t i = 0; i < numel; i++)
    out[i] = t->dtype == VLM_DTYPE_I64 ? (int) ((const int64_t *) t->data)[i] : ((const int32_t *) t->data)[i];
  if (n)
    *n = numel;
  return out;
}

double
vt_max_rel_range_diff (const float *a, const float *b, int64_t n)
{
  float lo = INFINITY, hi = -INFINITY;
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    lo = fminf (lo, b[i]);
    hi = fmaxf (hi, b[i]);
    double d = fabs ((double) a[i] - b[i]);
    if (!(d <= worst))   /* NaN counts as the worst */
      worst = isnan (d) ? INFINITY : d;
  }
  double range = hi > lo ? hi - lo : 1.0;
  return worst / range;
}

void
vt_assert_close (const char *what, const float *a, const float *b, int64_t n, double tol)
{
  double d = vt_max_rel_range_diff (a, b, n);
  g_test_message ("%s: max |diff| / range = %.3g over %lld values (tolerance %.1g)", what, d,
                  (long long) n, tol);
  g_assert_cmpfloat (d, <=, tol);
}

/* tol: set for the tier when the program starts (log_tier) */
VtBackend vt_int8 = {VLM_BACKEND_ONEDNN, VLM_PRECISION_INT8, "onednn-int8", 5e-2};

const VtBackend vt_backends[3] = {
  {VLM_BACKEND_ONEDNN, VLM_PRECISION_F32, "onednn", 1e-4},
  {VLM_BACKEND_BLAS, VLM_PRECISION_F32, "blas", 1e-4},
  {VLM_BACKEND_ONEDNN, VLM_PRECISION_BF16, "onednn-bf16", 2e-2},
};

VlmModel *
vt_load_model (const char *dir, const VtBackend *be)
{
  VlmModelParams p = vlm_model_default_params ();
  p.backend = be->backend;
  p.precision = be->precision;
  GError *error = NULL;
  VlmModel *m = vlm_model_load (dir, &p, &error);
  g_assert_no_error (error);
  return m;
}

VlmOps *
vt_ops_new (const VtBackend *be)
{
  GError *error = NULL;
  VlmOps *ops = vlm_ops_new (be->backend, 0, &error);
  g_assert_no_error (error);
  vlm_ops_set_attention_dtype (ops, vlm_precision_dtype (be->backend, be->precision));
  return ops;
}

VlmFrame *
vt_golden_frames (const VlmSafetensors *gold, int *n)
{
  const VlmTensor *t = must_find (gold, "frames_u8");
  int F = (int) t->shape[0], H = (int) t->shape[1], W = (int) t->shape[2];
  VlmFrame *frames = g_new0 (VlmFrame, F);
  for (int f = 0; f < F; f++)
    frames[f] = (VlmFrame) {.format = VLM_PIXEL_RGB, .width = W, .height = H,
                            .planes = {(const uint8_t *) t->data + (size_t) f * H * W * 3},
                            .strides = {W * 3}};
  *n = F;
  return frames;
}

/* ---------------------------------------------------------------- a SmolVLM2 folder */

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the
 * others for 256, 257, ... in byte order. */
static gunichar
byte_symbol (int b)
{
  int n = 0;
  for (int c = 0; c < 256; c++) {
    gboolean printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
    if (c == b)
      return printable ? (gunichar) c : (gunichar) (256 + n);
    n += !printable;
  }
  g_assert_not_reached ();
}

static void
write_json (const char *dir, const char *name, JsonNode *root)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *path = g_build_filename (dir, name, NULL);
  GError *error = NULL;
  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, path, &error));
  g_assert_no_error (error);
  json_node_unref (root);
}

static JsonNode *
parse_json (const char *text)
{
  GError *error = NULL;
  JsonNode *node = json_from_string (text, &error);
  g_assert_no_error (error);
  return node;
}

/* ids 0-2 and 397-399 special, 3 + b for byte b, "w<id>" between. */
static JsonNode *
smolvlm2_tokenizer (void)
{
  static const struct { int id; const char *content; } specials[] = {
    { 0, "<|endoftext|>" }, { 1, "<|im_start|>" }, { 2, "<end_of_utterance>" },
    { 397, "<fake_token_around_image>" }, { 398, "<global-img>" }, { 399, "<image>" },
  };
  JsonNode *root = parse_json (
      "{\"version\": \"1.0\", \"normalizer\": null, \"post_processor\": null,"
      " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
      "  \"trim_offsets\": true, \"use_regex\": true},"
      " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true,"
      "  \"trim_offsets\": true, \"use_regex\": true},"
      " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null,"
      "  \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false,"
      "  \"byte_fallback\": false, \"merges\": []}}");
  JsonObject *o = json_node_get_object (root), *vocab = json_object_new ();
  JsonArray *added = json_array_new ();
  for (guint i = 0; i < G_N_ELEMENTS (specials); i++) {
    JsonObject *t = json_object_new ();
    json_object_set_int_member (t, "id", specials[i].id);
    json_object_set_string_member (t, "content", specials[i].content);
    json_object_set_boolean_member (t, "single_word", FALSE);
    json_object_set_boolean_member (t, "lstrip", FALSE);
    json_object_set_boolean_member (t, "rstrip", FALSE);
    json_object_set_boolean_member (t, "normalized", FALSE);
    json_object_set_boolean_member (t, "special", TRUE);
    json_array_add_object_element (added, t);
    json_object_set_int_member (vocab, specials[i].content, specials[i].id);
  }
  for (int b = 0; b < 256; b++) {
    char sym[8] = { 0 };
    g_unichar_to_utf8 (byte_symbol (b), sym);
    json_object_set_int_member (vocab, sym, 3 + b);
  }
  for (int id = 3 + 256; id < 397; id++) {
    g_autofree char *word = g_strdup_printf ("w%d", id);
    json_object_set_int_member (vocab, word, id);
  }
  json_object_set_array_member (o, "added_tokens", added);
  json_object_set_object_member (json_object_get_object_member (o, "model"), "vocab", vocab);
  return root;
}

char *
vt_smolvlm2_folder (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("vlm-smolvlm2-XXXXXX", &error);
  g_assert_no_error (error);
  const char *linked[] = { "config.json", "model.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (linked); i++) {
    g_autofree char *rel = g_build_filename ("fixtures/smolvlm-tiny", linked[i], NULL);
    g_autofree char *target = vt_shared_path (rel);
    g_autofree char *link = g_build_filename (dir, linked[i], NULL);
    g_assert_cmpint (symlink (target, link), ==, 0);
  }
  g_autofree char *pre = g_strdup_printf (
      "{\"do_convert_rgb\": true, \"do_image_splitting\": true, \"do_normalize\": true,"
      " \"do_pad\": true, \"do_rescale\": true, \"do_resize\": true,"
      " \"image_mean\": [0.5, 0.5, 0.5], \"image_processor_type\": \"SmolVLMImageProcessor\","
      " \"image_std\": [0.5, 0.5, 0.5], \"max_image_size\": {\"longest_edge\": %d},"
      " \"processor_class\": \"SmolVLMProcessor\", \"resample\": 1,"
      " \"rescale_factor\": 0.00392156862745098, \"size\": {\"longest_edge\": %d},"
      " \"video_sampling\": {\"fps\": %d, \"max_frames\": %d,"
      " \"video_size\": {\"longest_edge\": %d}}}",
      VT_SMOLVLM2_MAX_IMAGE, VT_SMOLVLM2_SIZE, VT_SMOLVLM2_FPS, VT_SMOLVLM2_MAX_FRAMES,
      VT_SMOLVLM2_VIDEO_SIZE);
  write_json (dir, "preprocessor_config.json", parse_json (pre));
  write_json (dir, "processor_config.json",
              parse_json ("{\"image_seq_len\": 4, \"processor_class\": \"SmolVLMProcessor\"}"));
  write_json (dir, "tokenizer.json", smolvlm2_tokenizer ());
  return dir;
}

char *
vt_captioner_folder (const char *fixture, int vocab_size)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("vlm-captioner-XXXXXX", &error);
  g_assert_no_error (error);
  const char *linked[] = {"config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json"};
  for (guint i = 0; i < G_N_ELEMENTS (linked); i++) {
    g_autofree char *rel = g_build_filename ("fixtures", fixture, linked[i], NULL);
    g_autofree char *target = vt_shared_path (rel);
    g_autofree char *link = g_build_filename (dir, linked[i], NULL);
    g_assert_cmpint (symlink (target, link), ==, 0);
  }
  g_autofree char *tok = g_build_filename (dir, "tokenizer.json", NULL);
  g_autofree char *json = synth_wordpiece_json (vocab_size, FALSE);
  g_assert_true (g_file_set_contents (tok, json, -1, &error));
  g_assert_no_error (error);
  return dir;
}

void
vt_remove_folder (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    g_autofree char *path = g_build_filename (dir, name, NULL);
    g_remove (path);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

/* Every engine test's log names the CPU tier its cases ran on (a capped
 * run says so: DNNL_MAX_CPU_ISA / VLM_MAX_CPU_ISA). */
__attribute__ ((constructor)) static void
log_tier (void)
{
  printf ("# CPU tier: %s\n", vlm_cpu_describe ());
  /* below VNNI int8 weights have 7 bits (vlm_cpu_int8_weight_max): twice
   * the rounding step, twice the bound */
  vt_int8.tol = vlm_cpu_int8_weight_max () == 127 ? 5e-2 : 1e-1;
}
