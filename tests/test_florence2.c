/* test_florence2.c — Florence-2 against transformers' goldens
 * (fixtures/florence2-tiny, model-level: pixel_values and input_ids with
 * image_token_id placeholders given): the decoder's logits over the
 * golden's decoder_input_ids, then greedy and beam-3 generation through
 * the one generation loop, on both backends and in bf16 / int8. */
#include "arch.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <unistd.h>

#define FIXTURE "fixtures/florence2-tiny"

/* The fixture's golden frame is 64², and the folder has no processor. */
static VlmModel *
load_tiny (const VtBackend *be, VlmSafetensors *gold)
{
  g_autofree char *dir = vt_shared_path (FIXTURE);
  VlmModel *m = vt_load_model (dir, be);
  const VlmTensor *px = vlm_safetensors_find (gold, "pixel_values");
  g_assert_cmpint (px->shape[2], ==, px->shape[3]);
  m->info.image_size = (int) px->shape[2];
  return m;
}

typedef struct {
  VlmModel *m;
  VlmSafetensors *gold;
  VlmOps *ops;
  void *run;
  const float *first;   /* the decoder's logits after prefill */
  int pos;
} Run;

/* encode(pixel_values) + prefill(input_ids) of the golden. */
static void
run_open (Run *r, const VtBackend *be, int max_beams)
{
  GError *error = NULL;
  r->gold = vt_open_golden (FIXTURE "/golden.safetensors");
  r->m = load_tiny (be, r->gold);
  r->ops = vt_ops_new (be);
  r->run = r->m->arch->run_new (r->m, r->ops, max_beams, 64, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (r->ops);
  int64_t n_ids;
  g_autofree float *pixels = vt_tensor_f32 (r->gold, "pixel_values", NULL);
  g_autofree int *ids = vt_tensor_int (r->gold, "input_ids", &n_ids);
  g_assert_true (r->m->arch->encode (r->run, pixels, 1, &error));
  g_assert_no_error (error);
  r->first = r->m->arch->prefill (r->run, ids, (int) n_ids, &r->pos, &error);
  g_assert_no_error (error);
  g_assert_nonnull (r->first);
  g_assert_true (vlm_ops_take_error (r->ops, &error));
}

static void
run_close (Run *r)
{
  r->m->arch->run_free (r->run);
  vlm_ops_free (r->ops);
  vlm_safetensors_free (r->gold);
  vlm_model_unref (r->m);
}

/* logits [1, 3, V] over decoder_input_ids [2, 0, 9]: the first row is
 * prefill's (the decoder starts from decoder_start_token_id 2), the others
 * one step each through the self-attention cache. */
static void
test_logits (gconstpointer data)
{
  const VtBackend *be = data;
  Run r;
  run_open (&r, be, 1);
  GError *error = NULL;
  int64_t n_dec, n_logits;
  g_autofree int *dec = vt_tensor_int (r.gold, "decoder_input_ids", &n_dec);
  g_autofree float *want = vt_tensor_f32 (r.gold, "logits", &n_logits);
  const VlmDecoder *d = r.m->arch->decoder (r.run);
  int V = d->vocab_size;
  g_assert_cmpint (n_logits, ==, n_dec * V);
  g_assert_cmpint (r.pos, ==, 1);
  int n_prompt = 0;
  g_assert_cmpint (r.m->arch->decoder_prompt (r.run, &n_prompt)[0], ==, dec[0]);
  g_autofree float *got = g_new (float, n_logits);
  memcpy (got, r.first, V * sizeof (float));
  for (int i = 1; i < n_dec; i++) {
    g_assert_true (d->step (d->self, dec + i, 1, i, got + (size_t) i * V, &error));
    g_assert_no_error (error);
  }
  g_assert_true (vlm_ops_take_error (r.ops, &error));
  vt_assert_close ("logits", got, want, n_logits, be->tol);
  run_close (&r);
}

/* generate(max_new_tokens=8) with the golden's generation_config
 * (forced_eos_token_id 2): HF returns decoder_start + the new tokens. */
static void
check_generation (const VtBackend *be, int num_beams, const char *golden_name)
{
  Run r;
  run_open (&r, be, num_beams);
  GError *error = NULL;
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (r.gold, golden_name, &n_want);
  VlmGenParams gp = vlm_gen_default_params (r.m);
  gp.num_beams = num_beams;
  gp.max_new_tokens = (int) n_want - 1;
  int n_prompt = 0;
  const int *prompt = r.m->arch->decoder_prompt (r.run, &n_prompt);
  g_assert_cmpint (prompt[0], ==, want[0]);
  volatile gint cancel = 0;
  VlmGenInput in = {prompt, n_prompt, r.pos, r.first, r.m->eos_ids, r.m->n_eos, r.m->pad_id, &cancel, NULL, NULL};
  VlmGenState *state = vlm_gen_state_new (r.m->info.vocab_size, num_beams, gp.max_new_tokens);
  g_autofree int *out = g_new0 (int, gp.max_new_tokens);
  int n_out = 0;
  g_assert_true (vlm_generate (state, r.m->arch->decoder (r.run), &in, &gp, NULL, NULL, out, &n_out, &error));
  g_assert_no_error (error);
  g_test_message ("%s (%s): %d tokens", golden_name, be->name, n_out);
  g_assert_cmpmem (out, n_out * sizeof (int), want + 1, (n_want - 1) * sizeof (int));
  vlm_gen_state_free (state);
  run_close (&r);
}

static void test_greedy (gconstpointer data) { check_generation (data, 1, "greedy_ids"); }
static void test_beam3 (gconstpointer data) { check_generation (data, 3, "beam3_ids"); }

/* A prompt whose placeholders do not match the image's tokens is refused. */
static void
test_placeholder_count (void)
{
  GError *error = NULL;
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  VlmModel *m = load_tiny (&vt_backends[0], gold);
  VlmOps *ops = vt_ops_new (&vt_backends[0]);
  void *run = m->arch->run_new (m, ops, 1, 64, &error);
  g_assert_no_error (error);
  int64_t n_ids;
  g_autofree int *ids = vt_tensor_int (gold, "input_ids", &n_ids);
  ids[1] = 5;   /* one placeholder fewer */
  int pos = 0;
  g_assert_null (m->arch->prefill (run, ids, (int) n_ids, &pos, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "image tokens"));
  g_error_free (error);
  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_model_unref (m);
  vlm_safetensors_free (gold);
}

/* The fixture's config.json with `from` replaced by `to` in a new folder
 * beside a symlink to its weights: loading it fails with `code`, the
 * message naming `what`. */
static void
check_bad_config (const char *from, const char *to, int code, const char *what)
{
  g_autofree char *src = vt_shared_path (FIXTURE);
  g_autofree char *cfg_path = g_build_filename (src, "config.json", NULL);
  g_autofree char *weights = g_build_filename (src, "model.safetensors", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (cfg_path, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, from));
  GString *cfg = g_string_new (text);
  g_string_replace (cfg, from, to, 1);
  char *dir = g_dir_make_tmp ("vlm-florence2-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "config.json", NULL);
  g_autofree char *link = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_true (g_file_set_contents (out, cfg->str, -1, NULL));
  g_assert_cmpint (symlink (weights, link), ==, 0);
  GError *error = NULL;
  VlmModelParams mp = vlm_model_default_params ();
  g_assert_null (vlm_model_load (dir, &mp, &error));
  g_assert_error (error, VLM_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, what));
  g_error_free (error);
  g_string_free (cfg, TRUE);
  vt_remove_folder (dir);
  g_free (dir);
}

/* A config that does not fit its weights or itself is refused by name. */
static void
test_bad_configs (void)
{
  /* a fifth stage: more than DaViT's four */
  check_bad_config ("\"embed_dim\": [\n      16,", "\"embed_dim\": [\n      16, 8,", VLM_ERROR_BAD_CONFIG, "embed_dim");
  /* per-stage lists that disagree */
  check_bad_config ("\"depths\": [\n      1,", "\"depths\": [\n", VLM_ERROR_BAD_CONFIG, "depths");
  /* the stage-1 width the weights do not have */
  check_bad_config ("      32,\n      48,\n      64\n    ],\n    \"in_channels\"",
                    "      40,\n      48,\n      64\n    ],\n    \"in_channels\"", VLM_ERROR_BAD_SHAPE,
                    "model.vision_tower.convs.1.conv.weight");
  /* heads that do not divide d_model */
  check_bad_config ("\"encoder_attention_heads\": 2", "\"encoder_attention_heads\": 3", VLM_ERROR_BAD_CONFIG,
                    "encoder_attention_heads");
  /* an image token outside the vocabulary */
  check_bad_config ("\"image_token_id\": 299", "\"image_token_id\": 300", VLM_ERROR_BAD_CONFIG, "image_token_id");
  /* more decoder layers than the checkpoint holds */
  check_bad_config ("\"decoder_layers\": 2", "\"decoder_layers\": 3", VLM_ERROR_NOT_FOUND,
                    "model.language_model.decoder.layers.2.self_attn.q_proj.weight");
  /* an untied head the checkpoint lacks */
  check_bad_config ("\"tie_word_embeddings\": true,\n  \"transformers_version\"",
                    "\"tie_word_embeddings\": false,\n  \"transformers_version\"", VLM_ERROR_NOT_FOUND,
                    "lm_head.weight");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (vt_backends); i++) {
    g_autofree char *a = g_strdup_printf ("/florence2/%s/logits", vt_backends[i].name);
    g_autofree char *b = g_strdup_printf ("/florence2/%s/greedy-ids", vt_backends[i].name);
    g_autofree char *c = g_strdup_printf ("/florence2/%s/beam3-ids", vt_backends[i].name);
    g_test_add_data_func (a, &vt_backends[i], test_logits);
    g_test_add_data_func (b, &vt_backends[i], test_greedy);
    g_test_add_data_func (c, &vt_backends[i], test_beam3);
  }
  g_test_add_data_func ("/florence2/onednn-int8/logits", &vt_int8, test_logits);
  g_test_add_func ("/florence2/placeholder-count", test_placeholder_count);
  g_test_add_func ("/florence2/bad-configs", test_bad_configs);
  return g_test_run ();
}
