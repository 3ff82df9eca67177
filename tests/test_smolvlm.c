/* test_smolvlm.c — SmolVLM against transformers' model-level golden
 * (fixtures/smolvlm-tiny: no tokenizer or processor): the golden
 * pixel_values and input_ids through the architecture, logits of every row
 * and greedy ids through the shared generation loop, on both backends; the
 * SmolVLM2 video prompt as HF's processor writes it. */
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
  t->ops = vlm_ops_new (be->backend, 0, &error);
  g_assert_no_error (error);
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
  g_assert_cmpint (n_logits, ==, t.n_ids * t.m->vocab_size);
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
  VlmGenState *gen = vlm_gen_state_new (m->vocab_size, 1, gp.max_new_tokens);
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
  g_autofree float *pixels = g_new0 (float, (size_t) (t.m->frames_per_clip + 1) * 3 * 32 * 32);
  g_assert_false (t.m->arch->encode (t.run, pixels, t.m->frames_per_clip + 1, &error));
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
  g_test_add_func ("/smolvlm/bad-inputs", test_bad_inputs);
  g_test_add_func ("/smolvlm/no-tokenizer", test_no_tokenizer);
  g_test_add_func ("/smolvlm/video-prompt", test_video_prompt);
  return g_test_run ();
}
