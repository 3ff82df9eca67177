/* test_git.c — GIT against transformers' goldens (fixtures/git-video-tiny),
 * stage by stage, on both backends; then generation through the public API
 * from the raw frames. */
#include "git.h"
#include "testutil.h"

#include <math.h>

static VlmModel *
load_tiny (const VtBackend *be)
{
  g_autofree char *dir = vt_shared_path ("fixtures/git-video-tiny");
  return vt_load_model (dir, be);
}

/* Golden pixel_values → vision tower, projection, prompt logits. */
static void
test_stages (gconstpointer data)
{
  const VtBackend *be = data;
  VlmModel *m = load_tiny (be);
  VlmSafetensors *gold = vt_open_golden ("fixtures/git-video-tiny/golden.safetensors");
  GError *error = NULL;
  VlmOps *ops = vt_ops_new (be);
  GitRun *run = m->arch->run_new (m, ops, 1, 32, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (ops);

  int64_t n_px, n_vis, n_proj, n_logits, n_ids;
  g_autofree float *pixels = vt_tensor_f32 (gold, "pixel_values", &n_px);
  g_assert_true (m->arch->encode (run, pixels, m->info.frames_per_clip, &error));
  g_assert_no_error (error);
  g_autofree float *vis = vt_tensor_f32 (gold, "vision_frame_out", &n_vis);
  vt_assert_close ("vision_frame_out", m->arch->stage (run, "vision_out"), vis, n_vis, be->tol);
  g_autofree float *proj = vt_tensor_f32 (gold, "visual_projection_out", &n_proj);
  vt_assert_close ("visual_projection_out", m->arch->stage (run, "visual_tokens"), proj, n_proj, be->tol);

  /* logits (1, V + L, vocab): compare the L text rows the prompt produced. */
  g_autofree int *ids = vt_tensor_int (gold, "input_ids", &n_ids);
  g_autofree float *logits = vt_tensor_f32 (gold, "logits", &n_logits);
  const VlmTensor *lt = vlm_safetensors_find (gold, "logits");
  int vocab = (int) lt->shape[2], n_text = (int) n_ids;
  int pos = 0;
  g_assert_nonnull (m->arch->prefill (run, ids, n_text, &pos, &error));
  g_assert_no_error (error);
  g_assert_cmpint (pos, ==, n_text);
  const float *text_gold = logits + (lt->shape[1] - n_text) * vocab;
  vt_assert_close ("logits (text rows)", m->arch->stage (run, "prompt_logits"), text_gold, (int64_t) n_text * vocab, be->tol);

  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* The golden clip and a session of the tiny model, for the public-API tests. */
typedef struct {
  VlmModel *m;
  VlmSafetensors *gold;
  VlmFrame *frames;
  int n_frames;
  VlmSession *s;
  VlmGenParams gp;
} Clip;

static void
clip_open (Clip *c, const VtBackend *be)
{
  GError *error = NULL;
  c->m = load_tiny (be);
  c->gold = vt_open_golden ("fixtures/git-video-tiny/golden.safetensors");
  c->frames = vt_golden_frames (c->gold, &c->n_frames);
  c->s = vlm_session_new (c->m, &error);
  g_assert_no_error (error);
  c->gp = vlm_gen_default_params (c->m);
}

/* Captions the clip with `prompt`, failing the test on error. */
static void
clip_caption (Clip *c, const char *prompt, VlmTokenFunc on_token, void *data, VlmCaption *cap)
{
  GError *error = NULL;
  g_assert_true (vlm_session_caption (c->s, c->frames, c->n_frames, prompt, &c->gp, on_token, data, cap, &error));
  g_assert_no_error (error);
}

static void
clip_close (Clip *c)
{
  vlm_session_free (c->s);
  g_free (c->frames);
  vlm_safetensors_free (c->gold);
  vlm_model_unref (c->m);
}

/* Raw frames → caption through the public API; ids must equal the golden's
 * (which start with [CLS], the prompt). */
static void
check_generation (const VtBackend *be, int num_beams, const char *golden_name)
{
  Clip c;
  clip_open (&c, be);
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (c.gold, golden_name, &n_want);
  c.gp.num_beams = num_beams;
  c.gp.max_new_tokens = (int) n_want - 1;
  VlmCaption cap;
  clip_caption (&c, "", NULL, NULL, &cap);
  g_test_message ("%s (%s): \"%s\", %d tokens, %.1f ms", golden_name, be->name, cap.text, cap.n_tokens, cap.total_ms);
  g_assert_cmpint (want[0], ==, c.m->bos_id);
  g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), want + 1, (n_want - 1) * sizeof (int));
  vlm_caption_clear (&cap);
  clip_close (&c);
}

static void test_greedy (gconstpointer data) { check_generation (data, 1, "greedy_ids"); }
static void test_beam3 (gconstpointer data) { check_generation (data, 3, "beam3_ids"); }

/* The same session captions the same clip twice with the same result, a
 * beam search between: the KV cache and arena are reset between clips. */
static void
test_repeatable (void)
{
  Clip c;
  clip_open (&c, &vt_backends[0]);
  c.gp.max_new_tokens = 10;
  VlmCaption a, b, between;
  clip_caption (&c, "a red ball", NULL, NULL, &a);
  c.gp.num_beams = 3;
  clip_caption (&c, "", NULL, NULL, &between);
  c.gp.num_beams = 1;
  clip_caption (&c, "a red ball", NULL, NULL, &b);
  g_assert_cmpstr (a.text, ==, b.text);
  vlm_caption_clear (&a);
  vlm_caption_clear (&b);
  vlm_caption_clear (&between);
  clip_close (&c);
}

/* Parameters the parser refuses are refused through the API as well,
 * naming the field (length_penalty NaN once gave an empty caption as a
 * success, temperature 0 garbage). */
static void
test_bad_params (void)
{
  Clip c;
  clip_open (&c, &vt_backends[0]);
  VlmCaption cap;
  GError *error = NULL;
  c.gp.num_beams = 3;
  c.gp.length_penalty = NAN;
  g_assert_false (vlm_session_caption (c.s, c.frames, c.n_frames, "", &c.gp, NULL, NULL, &cap, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "length_penalty"));
  g_clear_error (&error);
  c.gp = vlm_gen_default_params (c.m);
  c.gp.do_sample = TRUE;
  c.gp.temperature = 0.0f;
  g_assert_false (vlm_session_caption (c.s, c.frames, c.n_frames, "", &c.gp, NULL, NULL, &cap, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "temperature"));
  g_clear_error (&error);
  /* an empty frame as the first one: BAD_FRAME, not a critical on the
   * scratch it needs none of */
  c.gp = vlm_gen_default_params (c.m);
  VlmFrame empty = c.frames[0];
  empty.width = 0;
  g_assert_false (vlm_session_caption (c.s, &empty, 1, "", &c.gp, NULL, NULL, &cap, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME);
  g_clear_error (&error);
  clip_close (&c);
}

static gboolean
collect_piece (int id, const char *piece, void *data)
{
  g_string_append ((GString *) data, piece);
  return TRUE;
}

/* Streamed pieces add up to the caption's text. */
static void
test_streamed_pieces (void)
{
  Clip c;
  clip_open (&c, &vt_backends[0]);
  c.gp.max_new_tokens = 10;
  GString *streamed = g_string_new (NULL);
  VlmCaption cap;
  clip_caption (&c, "", collect_piece, streamed, &cap);
  g_test_message ("streamed \"%s\", caption \"%s\"", streamed->str, cap.text);
  g_assert_cmpint (cap.n_tokens, ==, 10);
  g_assert_cmpstr (streamed->str, ==, cap.text);
  g_string_free (streamed, TRUE);
  vlm_caption_clear (&cap);
  clip_close (&c);
}

/* The golden greedy caption, from golden.json. g_free. */
static char *
golden_greedy_text (void)
{
  g_autofree char *path = vt_shared_path ("fixtures/git-video-tiny/golden.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *error = NULL;
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  return g_strdup (json_object_get_string_member (o, "greedy_text"));
}

/* stop_strings: greedy generation stops at the first token whose decoded
 * prefix contains the stop string (that token kept), a prefix of the golden
 * greedy ids; streaming still adds up to the caption. */
static void
test_stop_strings (void)
{
  Clip c;
  clip_open (&c, &vt_backends[0]);
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (c.gold, "greedy_ids", &n_want);
  const int n_gen = (int) n_want - 1;
  g_autofree char *greedy = golden_greedy_text ();
  g_assert_cmpint (strlen (greedy), >=, 5);
  g_autofree char *stop = g_strndup (greedy + 2, 3);   /* its 3rd..5th characters */
  /* The expected stop: the shortest golden prefix whose text holds it. */
  int expect = 0;
  for (int k = 1; k <= n_gen && !expect; k++) {
    g_autofree char *t = vlm_tokenizer_decode (c.m->tokenizer, want + 1, k, TRUE);
    if (strstr (t, stop))
      expect = k;
  }
  g_assert_cmpint (expect, >, 0);
  g_assert_cmpint (expect, <, n_gen);   /* the test must stop early to mean anything */

  GError *error = NULL;
  g_autofree char *cfg = g_strdup_printf ("max_new_tokens=%d,stop_strings=never seen|%s", n_gen, stop);
  g_assert_true (vlm_gen_params_parse (&c.gp, cfg, &error));
  g_assert_no_error (error);
  VlmCaption cap;
  clip_caption (&c, "", NULL, NULL, &cap);
  g_test_message ("stop \"%s\": \"%s\", %d tokens", stop, cap.text, cap.n_tokens);
  g_assert_cmpint (cap.n_tokens, ==, expect);
  g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), want + 1, expect * sizeof (int));
  g_assert_nonnull (strstr (cap.text, stop));
  vlm_caption_clear (&cap);

  GString *streamed = g_string_new (NULL);
  clip_caption (&c, "", collect_piece, streamed, &cap);
  g_assert_cmpint (cap.n_tokens, ==, expect);
  g_assert_cmpstr (streamed->str, ==, cap.text);
  g_string_free (streamed, TRUE);
  vlm_caption_clear (&cap);

  /* A stop string that never appears changes nothing. */
  g_assert_true (vlm_gen_params_parse (&c.gp, "stop_strings=never seen", &error));
  clip_caption (&c, "", NULL, NULL, &cap);
  g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), want + 1, n_gen * sizeof (int));
  vlm_caption_clear (&cap);
  clip_close (&c);
}

/* stop_strings under beam search: HF's _beam_search treats a continuation
 * that completes a stop string like one ending in EOS. The stop string is
 * the last two characters of the golden beam-3 text after its 7th token,
 * checked to be new there and absent from the greedy caption: the search
 * ends with that prefix of the golden's ids, and greedy search is
 * untouched by it. */
static void
test_beam_stop_strings (void)
{
  Clip c;
  clip_open (&c, &vt_backends[0]);
  int64_t n_want, n_greedy;
  g_autofree int *want = vt_tensor_int (c.gold, "beam3_ids", &n_want);
  g_autofree int *greedy = vt_tensor_int (c.gold, "greedy_ids", &n_greedy);
  const int n_gen = (int) n_want - 1, k = 7;
  g_assert_cmpint (n_gen, >, k);
  g_autofree char *before = vlm_tokenizer_decode (c.m->tokenizer, want + 1, k - 1, TRUE);
  g_autofree char *at = vlm_tokenizer_decode (c.m->tokenizer, want + 1, k, TRUE);
  g_autofree char *greedy_text = vlm_tokenizer_decode (c.m->tokenizer, greedy + 1, (int) n_greedy - 1, TRUE);
  g_assert_cmpint (strlen (at), >=, 2);
  g_autofree char *stop = g_strdup (at + strlen (at) - 2);
  g_assert_null (strstr (before, stop));
  g_assert_null (strstr (greedy_text, stop));

  GError *error = NULL;
  g_autofree char *cfg = g_strdup_printf ("num_beams=3,max_new_tokens=%d,stop_strings=%s", n_gen, stop);
  g_assert_true (vlm_gen_params_parse (&c.gp, cfg, &error));
  g_assert_no_error (error);
  VlmCaption cap;
  clip_caption (&c, "", NULL, NULL, &cap);
  g_test_message ("beam 3, stop \"%s\": \"%s\", %d tokens", stop, cap.text, cap.n_tokens);
  g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), want + 1, k * sizeof (int));
  g_assert_cmpstr (cap.text, ==, at);
  vlm_caption_clear (&cap);

  c.gp.num_beams = 1;
  clip_caption (&c, "", NULL, NULL, &cap);
  g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), greedy + 1, (n_greedy - 1) * sizeof (int));
  vlm_caption_clear (&cap);
  clip_close (&c);
}

/* A Hub vision_config that leaves sizes to GitVisionConfig's defaults
 * reads as ViT-B/16 at 224; a size given as garbage is refused by name. */
static void
test_vision_config_defaults (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser,
      "{\"model_type\": \"git_vision_model\", \"projection_dim\": 512}", -1, NULL));
  JsonObject *vc = json_node_get_object (json_parser_get_root (parser));
  VlmVitConfig c;
  GError *error = NULL;
  g_assert_true (vlm_vit_config_read (&c, vc, "config.json", TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.hidden_size, ==, 768);
  g_assert_cmpint (c.num_layers, ==, 12);
  g_assert_cmpint (c.patch_size, ==, 16);
  g_assert_cmpint (c.n_tokens, ==, 197);
  json_object_set_string_member (vc, "hidden_size", "wide");
  g_assert_false (vlm_vit_config_read (&c, vc, "config.json", TRUE, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG);
  g_assert_nonnull (strstr (error->message, "hidden_size"));
  g_error_free (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (vt_backends); i++) {
    g_autofree char *a = g_strdup_printf ("/git/%s/stages", vt_backends[i].name);
    g_autofree char *b = g_strdup_printf ("/git/%s/greedy-ids", vt_backends[i].name);
    g_autofree char *c = g_strdup_printf ("/git/%s/beam3-ids", vt_backends[i].name);
    g_test_add_data_func (a, &vt_backends[i], test_stages);
    g_test_add_data_func (b, &vt_backends[i], test_greedy);
    g_test_add_data_func (c, &vt_backends[i], test_beam3);
  }
  g_test_add_data_func ("/git/onednn-int8/stages", &vt_int8, test_stages);
  g_test_add_func ("/git/session-repeatable", test_repeatable);
  g_test_add_func ("/git/bad-params", test_bad_params);
  g_test_add_func ("/git/streamed-pieces", test_streamed_pieces);
  g_test_add_func ("/git/stop-strings", test_stop_strings);
  g_test_add_func ("/git/beam-stop-strings", test_beam_stop_strings);
  g_test_add_func ("/git/vision-config-defaults", test_vision_config_defaults);
  return g_test_run ();
}
