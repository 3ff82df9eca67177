/* test_encdec.c — the image captioners whose text decoder cross-attends to
 * the image (BLIP, ViT-GPT2) against transformers' model-level goldens
 * (fixtures/blip-tiny, fixtures/vit-gpt2-tiny): the golden pixel_values
 * through the architecture, logits of every decoder input row, greedy and
 * beam-3 ids through the shared generation loop on every backend; the
 * frames through our image processor give the same ids; bad configs are
 * errors naming what is wrong. */
#include <math.h>
#include <unistd.h>

#include "imgcap.h"
#include "testutil.h"
#include "weights.h"

typedef struct {
  const char *name;           /* the fixture folder */
  const char *arch;
  const char *logits_ids;     /* the forward's decoder input ids in golden.safetensors */
  int n_generate_prompt;      /* how many of the golden's generated ids were its prompt */
} Fixture;

/* BLIP's generate() dropped the last of input_ids [100, 5, 6, 7] (the [SEP]
 * place) and continued [100, 5, 6]; ViT-GPT2 starts from decoder_start 110. */
static const Fixture fixtures[] = {
  {"blip-tiny", "BlipForConditionalGeneration", "input_ids", 3},
  {"vit-gpt2-tiny", "VisionEncoderDecoderModel", "decoder_input_ids", 1},
};

typedef struct {
  const Fixture *fx;
  const VtBackend *be;
} Case;

typedef struct {
  VlmModel *m;
  VlmSafetensors *gold;
  VlmOps *ops;
  void *run;
} Setup;

static void
setup (Setup *t, const Case *c, int beams, int tokens, const float *pixels)
{
  GError *error = NULL;
  g_autofree char *rel = g_strdup_printf ("fixtures/%s", c->fx->name);
  g_autofree char *dir = vt_shared_path (rel);
  g_autofree char *gold = g_strdup_printf ("fixtures/%s/golden.safetensors", c->fx->name);
  t->m = vt_load_model (dir, c->be);
  g_assert_cmpstr (vlm_model_get_architecture (t->m), ==, c->fx->arch);
  g_assert_cmpint (vlm_model_get_frames_per_clip (t->m), ==, 1);
  t->gold = vt_open_golden (gold);
  t->ops = vt_ops_new (c->be);
  t->run = t->m->arch->run_new (t->m, t->ops, beams, tokens, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (t->ops);
  g_autofree float *golden_px = pixels ? NULL : vt_tensor_f32 (t->gold, "pixel_values", NULL);
  g_assert_true (t->m->arch->encode (t->run, pixels ? pixels : golden_px, 1, &error));
  g_assert_no_error (error);
}

static void
teardown (Setup *t)
{
  t->m->arch->run_free (t->run);
  vlm_ops_free (t->ops);
  vlm_safetensors_free (t->gold);
  vlm_model_unref (t->m);
}

/* Every decoder input row's logits (HF forward). */
static void
test_logits (gconstpointer data)
{
  const Case *c = data;
  Setup t;
  int64_t n_ids, n_logits;
  GError *error = NULL;
  setup (&t, c, 1, 16, NULL);
  g_autofree int *ids = vt_tensor_int (t.gold, c->fx->logits_ids, &n_ids);
  g_autofree float *want = vt_tensor_f32 (t.gold, "logits", &n_logits);
  int pos = 0;
  g_assert_nonnull (t.m->arch->prefill (t.run, ids, (int) n_ids, &pos, &error));
  g_assert_no_error (error);
  g_assert_cmpint (pos, ==, n_ids);
  g_assert_cmpint (n_logits, ==, n_ids * t.m->info.vocab_size);
  vt_assert_close ("logits", t.m->arch->stage (t.run, "prompt_logits"), want, n_logits, c->be->tol);
  teardown (&t);
}

/* The golden's prompt, then `beams`-beam search through vlm_generate with
 * the model's generation defaults: the golden's new ids exactly. pixels
 * NULL: the golden's pixel_values. */
static void
check_ids (const Case *c, int beams, const char *golden, const float *pixels)
{
  Setup t;
  int64_t n_want;
  GError *error = NULL;
  setup (&t, c, beams, 32, pixels);
  g_autofree int *want = vt_tensor_int (t.gold, golden, &n_want);
  VlmModel *m = t.m;
  int n_prompt = c->fx->n_generate_prompt, pos = 0;
  /* the prompt as our prompt_ids makes it for "" (BLIP: bos; ViT-GPT2: decoder_start) */
  int n_made = 0;
  g_autofree int *made = m->arch->prompt_ids (m, "", &n_made, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n_made, ==, 1);
  g_assert_cmpint (made[0], ==, want[0]);
  const float *logits = m->arch->prefill (t.run, want, n_prompt, &pos, &error);
  g_assert_no_error (error);
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.num_beams = beams;
  gp.max_new_tokens = (int) n_want - n_prompt;
  volatile gint cancel = 0;
  VlmGenInput in = {want, n_prompt, pos, logits, m->eos_ids, m->n_eos, m->pad_id, &cancel};
  VlmGenState *gen = vlm_gen_state_new (m->info.vocab_size, beams, gp.max_new_tokens);
  g_autofree int *out = g_new (int, gp.max_new_tokens);
  int n_out = 0;
  g_assert_true (vlm_generate (gen, m->arch->decoder (t.run), &in, &gp, NULL, NULL, out, &n_out, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (out, n_out * sizeof (int), want + n_prompt, (n_want - n_prompt) * sizeof (int));
  vlm_gen_state_free (gen);
  teardown (&t);
}

static void test_greedy (gconstpointer data) { check_ids (data, 1, "greedy_ids", NULL); }
static void test_beam3 (gconstpointer data) { check_ids (data, 3, "beam3_ids", NULL); }

/* frames_u8 through our image processor (the folder's
 * preprocessor_config.json) give the golden's greedy and beam ids. */
static void
test_from_frames (gconstpointer data)
{
  const Case *c = data;
  g_autofree char *rel = g_strdup_printf ("fixtures/%s", c->fx->name);
  g_autofree char *dir = vt_shared_path (rel);
  g_autofree char *gold_rel = g_strdup_printf ("fixtures/%s/golden.safetensors", c->fx->name);
  VlmModel *m = vt_load_model (dir, c->be);
  VlmSafetensors *gold = vt_open_golden (gold_rel);
  int n_frames = 0;
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &n_frames);
  const VlmImageProcessor *p = &m->processor;
  g_assert_cmpint (p->out_h, ==, m->info.image_size);
  g_autofree float *pixels = g_new (float, (size_t) 3 * p->out_h * p->out_w);
  g_autofree void *scratch = g_malloc (vlm_image_scratch_size (p, frames[0].width, frames[0].height));
  GError *error = NULL;
  g_assert_true (vlm_image_preprocess (p, &frames[0], pixels, scratch, &error));
  g_assert_no_error (error);
  check_ids (c, 1, "greedy_ids", pixels);
  check_ids (c, 3, "beam3_ids", pixels);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
}

/* ---------------------------------------------------------------- captioning folders */

/* The golden's prompt as text under vt_captioner_folder's tokenizer. */
static const char *
golden_prompt (const Fixture *fx)
{
  return fx->n_generate_prompt == 3 ? VT_CAPTIONER_PROMPT_5_6 : "";
}

/* Through the public API on a folder with a tokenizer: the golden's frame
 * alone, and as the middle of a 3-frame clip whose other frames are black
 * (a one-image model sees the middle frame), caption to the golden's greedy
 * and beam-3 ids, with the text the tokenizer decodes from them; with the
 * golden frame first and a black one in the middle the caption is the
 * black frame's, which differs from the golden's (so the order is really
 * checked). */
static void
test_session (gconstpointer data)
{
  const Case *c = data;
  g_autofree char *gold_rel = g_strdup_printf ("fixtures/%s/golden.safetensors", c->fx->name);
  VlmSafetensors *gold = vt_open_golden (gold_rel);
  int n_frames = 0;
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &n_frames);
  const VlmFrame *f = &frames[0];
  g_autofree guint8 *black = g_new0 (guint8, (size_t) f->height * f->strides[0]);
  VlmFrame clip[3] = {*f, *f, *f};
  clip[0].planes[0] = clip[2].planes[0] = black;
  g_autofree char *dir = vt_captioner_folder (c->fx->name, 120);
  VlmModelParams mp = vlm_model_default_params ();
  mp.backend = c->be->backend;
  mp.precision = c->be->precision;
  GError *error = NULL;
  VlmModel *m = vlm_model_load (dir, &mp, &error);
  g_assert_no_error (error);
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  VlmGenParams black_gp = vlm_gen_default_params (m);
  black_gp.max_new_tokens = 8;
  VlmFrame black_first[3] = {clip[0], *f, clip[2]}, golden_first[3] = {*f, clip[0], clip[2]};
  VlmCaption a, b;
  g_assert_true (vlm_session_caption (s, black_first, 1, golden_prompt (c->fx), &black_gp, NULL, NULL, &a, &error));
  g_assert_true (vlm_session_caption (s, golden_first, 3, golden_prompt (c->fx), &black_gp, NULL, NULL, &b, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (a.tokens, a.n_tokens * sizeof (int), b.tokens, b.n_tokens * sizeof (int));
  g_test_message ("black frame: \"%s\"", a.text);
  vlm_caption_clear (&a);
  vlm_caption_clear (&b);
  const char *names[] = {"greedy_ids", "beam3_ids"};
  for (int k = 0; k < 2; k++) {
    int64_t n_want;
    g_autofree int *want = vt_tensor_int (gold, names[k], &n_want);
    int n_new = (int) n_want - c->fx->n_generate_prompt;
    const int *want_new = want + c->fx->n_generate_prompt;
    VlmGenParams gp = vlm_gen_default_params (m);
    gp.num_beams = k ? 3 : 1;
    gp.max_new_tokens = n_new;
    for (int middle = 0; middle < 2; middle++) {
      VlmCaption cap;
      g_assert_true (vlm_session_caption (s, middle ? clip : f, middle ? 3 : 1, golden_prompt (c->fx), &gp, NULL,
                                          NULL, &cap, &error));
      g_assert_no_error (error);
      g_test_message ("%s%s: \"%s\"", names[k], middle ? " (middle of 3)" : "", cap.text);
      g_assert_cmpmem (cap.tokens, cap.n_tokens * sizeof (int), want_new, n_new * sizeof (int));
      vlm_caption_clear (&cap);
      if (k == 0 && middle == 0) {   /* the black frame's caption differs */
        VlmCaption bl;
        g_assert_true (vlm_session_caption (s, black_first, 1, golden_prompt (c->fx), &gp, NULL, NULL, &bl, &error));
        g_assert_false (bl.n_tokens == n_new && memcmp (bl.tokens, want_new, n_new * sizeof (int)) == 0);
        vlm_caption_clear (&bl);
      }
    }
  }
  vlm_session_free (s);
  vlm_model_unref (m);
  vt_remove_folder (dir);
  vlm_safetensors_free (gold);
}

/* vlm-caption on the folder and the golden frame as a raw RGB file prints
 * the golden's greedy ids (-v) and the session's caption. */
static void
test_cli (gconstpointer data)
{
  const Case *c = data;
  const char *tool = g_getenv ("VLM_CAPTION_TOOL");
  if (!tool) {
    g_test_skip ("VLM_CAPTION_TOOL is not set (meson test sets it)");
    return;
  }
  g_autofree char *gold_rel = g_strdup_printf ("fixtures/%s/golden.safetensors", c->fx->name);
  VlmSafetensors *gold = vt_open_golden (gold_rel);
  const VlmTensor *fr = vlm_safetensors_find (gold, "frames_u8");
  g_assert_nonnull (fr);
  g_autofree char *dir = vt_captioner_folder (c->fx->name, 120);
  g_autofree char *raw = g_build_filename (dir, "frame.rgb", NULL);
  GError *error = NULL;
  g_assert_true (g_file_set_contents (raw, fr->data, vlm_tensor_numel (fr), &error));
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (gold, "greedy_ids", &n_want);
  int n_new = (int) n_want - c->fx->n_generate_prompt;
  g_autofree char *size = g_strdup_printf ("%dx%d", (int) fr->shape[2], (int) fr->shape[1]);
  g_autofree char *n = g_strdup_printf ("%d", n_new);
  const char *argv[] = {tool, "--model", dir, "--size", size, "-n", n, "--backend",
                        c->be->backend == VLM_BACKEND_BLAS ? "blas" : "onednn", "-p", golden_prompt (c->fx), "-v",
                        raw, NULL};
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  g_test_message ("vlm-caption: %s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  GString *ids = g_string_new (NULL);
  for (int i = 0; i < n_new; i++)
    g_string_append_printf (ids, " %d", want[c->fx->n_generate_prompt + i]);
  g_autofree char *line = g_strdup_printf ("%d tokens:%s\n", n_new, ids->str);
  g_assert_nonnull (strstr (err, line));
  g_string_free (ids, TRUE);
  g_assert_cmpuint (strlen (out), >, 1);   /* the caption line */
  vt_remove_folder (dir);
  vlm_safetensors_free (gold);
}

/* ---------------------------------------------------------------- fused and Conv1D linears */

/* A folder whose model.safetensors holds, for K = 3 inputs and 2 parts of
 * N = 2 outputs: "conv.weight" BF16 [K, 2N] (GPT-2's Conv1D, in × out),
 * "lin.weight" F32 [2N, K] (a fused nn.Linear), both with a ".bias" F32
 * [2N] = -o, and values bf16 holds exactly: W[o][i] = o + i / 4. */
enum { PK = 3, PN = 2 };

static float
part_value (int o, int i)
{
  return (float) o + (float) i / 4.0f;
}

static char *
parts_folder (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("encdec-parts-XXXXXX", &error);
  g_assert_no_error (error);
  guint16 conv[PK][2 * PN];
  float lin[2 * PN][PK], bias[2 * PN];
  for (int o = 0; o < 2 * PN; o++) {
    bias[o] = -(float) o;
    for (int i = 0; i < PK; i++) {
      conv[i][o] = vlm_f32_to_bf16 (part_value (o, i));
      lin[o][i] = part_value (o, i);
    }
  }
  g_autofree char *header = g_strdup_printf (
      "{\"conv.weight\":{\"dtype\":\"BF16\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
      "\"lin.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]},"
      "\"conv.bias\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]},"
      "\"lin.bias\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}}",
      PK, 2 * PN, sizeof conv, 2 * PN, PK, sizeof conv, sizeof conv + sizeof lin, 2 * PN, sizeof conv + sizeof lin,
      sizeof conv + sizeof lin + sizeof bias, 2 * PN, sizeof conv + sizeof lin + sizeof bias,
      sizeof conv + sizeof lin + 2 * sizeof bias);
  GString *file = g_string_new (NULL);
  guint64 len = strlen (header);
  g_string_append_len (file, (const char *) &len, 8);
  g_string_append (file, header);
  g_string_append_len (file, (const char *) conv, sizeof conv);
  g_string_append_len (file, (const char *) lin, sizeof lin);
  g_string_append_len (file, (const char *) bias, sizeof bias);
  g_string_append_len (file, (const char *) bias, sizeof bias);
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_true (g_file_set_contents (path, file->str, file->len, &error));
  g_string_free (file, TRUE);
  return dir;
}

/* Part 1 of 2 of each layout is outputs 2..3: through vlm_linear on every
 * backend (the bf16 Conv1D copy is packed or kept as rows) y = W x + b
 * with those rows of W and b. */
static void
test_linear_parts (gconstpointer data)
{
  const VtBackend *be = data;
  g_autofree char *dir = parts_folder ();
  VlmWeights w;
  GError *error = NULL;
  g_assert_true (vlm_weights_open (&w, dir, be->backend, be->precision, &error));
  g_assert_no_error (error);
  VlmLinearW conv, lin;
  g_assert_true (vlm_weights_linear_part (&w, &conv, TRUE, TRUE, 1, 2, PN, PK, &error, "conv"));
  g_assert_true (vlm_weights_linear_part (&w, &lin, FALSE, TRUE, 1, 2, PN, PK, &error, "lin"));
  g_assert_no_error (error);
  VlmOps *ops = vt_ops_new (be);
  const float x[PK] = {1.0f, -2.0f, 0.5f};
  float yc[PN], yl[PN];
  vlm_linear (ops, &conv, x, 1, yc, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &lin, x, 1, yl, VLM_ACT_NONE, NULL);
  for (int r = 0; r < PN; r++) {
    double want = -(double) (PN + r);
    for (int i = 0; i < PK; i++)
      want += part_value (PN + r, i) * x[i];
    g_assert_cmpfloat_with_epsilon (yc[r], want, 1e-2 * fabs (want) + 1e-3);
    g_assert_cmpfloat_with_epsilon (yl[r], want, 1e-2 * fabs (want) + 1e-3);
  }
  /* a part count that does not divide the tensor is a shape error naming it */
  VlmLinearW bad;
  g_assert_false (vlm_weights_linear_part (&w, &bad, TRUE, FALSE, 0, 3, PN, PK, &error, "conv"));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE);
  g_assert_nonnull (strstr (error->message, "conv.weight"));
  g_clear_error (&error);
  vlm_ops_free (ops);
  vlm_linear_clear (&conv);
  vlm_linear_clear (&lin);
  vlm_weights_clear (&w);
  vt_remove_folder (dir);
}

/* ---------------------------------------------------------------- bad folders */

/* A folder linking the fixture's model.safetensors, with config.json =
 * the fixture's with `find` replaced by `replace` (text: json-glib writes
 * 1e-10 back as "1e-10.0"). Remove with vt_remove_folder. */
static char *
edited_folder (const char *fixture, const char *find, const char *replace)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("encdec-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *rel = g_strdup_printf ("fixtures/%s/model.safetensors", fixture);
  g_autofree char *src = vt_shared_path (rel);
  g_autofree char *dst = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (symlink (src, dst), ==, 0);
  g_autofree char *cfg_rel = g_strdup_printf ("fixtures/%s/config.json", fixture);
  g_autofree char *cfg_path = vt_shared_path (cfg_rel);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (cfg_path, &text, NULL, &error));
  g_assert_nonnull (strstr (text, find));
  g_auto (GStrv) parts = g_strsplit (text, find, 2);
  g_autofree char *edited = g_strjoin (replace, parts[0], parts[1], NULL);
  g_autofree char *out = g_build_filename (dir, "config.json", NULL);
  g_assert_true (g_file_set_contents (out, edited, -1, &error));
  return dir;
}

/* Loading `dir` fails with `code` and a message holding `needle`. */
static void
assert_load_fails (const char *dir, int code, const char *needle)
{
  GError *error = NULL;
  VlmModelParams mp = vlm_model_default_params ();
  mp.backend = VLM_BACKEND_BLAS;
  g_assert_null (vlm_model_load (dir, &mp, &error));
  g_assert_error (error, VLM_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, needle));
  g_clear_error (&error);
}

static void
test_bad_configs (void)
{
  static const struct {
    const char *fixture, *find, *replace;
    int code;
    const char *needle;
  } cases[] = {
    {"vit-gpt2-tiny", "\"model_type\": \"gpt2\"", "\"model_type\": \"bert\"", VLM_ERROR_UNSUPPORTED_ARCHITECTURE,
     "supported: encoder vit with decoder gpt2"},
    {"vit-gpt2-tiny", "\"add_cross_attention\": true", "\"add_cross_attention\": false", VLM_ERROR_BAD_CONFIG,
     "add_cross_attention"},
    /* widths differ: VisionEncoderDecoder then needs enc_to_dec_proj, which the checkpoint lacks */
    {"vit-gpt2-tiny", "\"n_embd\": 32", "\"n_embd\": 64", VLM_ERROR_NOT_FOUND, "enc_to_dec_proj.weight"},
    {"vit-gpt2-tiny", "\"n_head\": 2", "\"n_head\": 3", VLM_ERROR_BAD_CONFIG, "hidden 32 / 3 heads"},
    {"vit-gpt2-tiny", "\"activation_function\": \"gelu_new\"", "\"activation_function\": \"swish2\"",
     VLM_ERROR_BAD_CONFIG, "swish2"},
    {"vit-gpt2-tiny", "\"n_layer\": 2", "\"n_layer\": 3", VLM_ERROR_NOT_FOUND, "decoder.transformer.h.2."},
    {"blip-tiny", "\"encoder_hidden_size\": 32", "\"encoder_hidden_size\": 48", VLM_ERROR_BAD_CONFIG,
     "encoder_hidden_size"},
    {"blip-tiny", "\"text_config\"", "\"text_configuration\"", VLM_ERROR_BAD_CONFIG, "\"text_config\" is missing"},
    {"blip-tiny", "\"vocab_size\": 120", "\"vocab_size\": 121", VLM_ERROR_BAD_SHAPE, "word_embeddings"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *dir = edited_folder (cases[i].fixture, cases[i].find, cases[i].replace);
    assert_load_fails (dir, cases[i].code, cases[i].needle);
    vt_remove_folder (dir);
  }
}

int
main (int argc, char **argv)
{
  static Case cases[G_N_ELEMENTS (fixtures)][G_N_ELEMENTS (vt_backends) + 1];
  g_test_init (&argc, &argv, NULL);
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    for (guint i = 0; i < G_N_ELEMENTS (vt_backends) + 1; i++) {
      Case *c = &cases[f][i];
      *c = (Case) {&fixtures[f], i < G_N_ELEMENTS (vt_backends) ? &vt_backends[i] : &vt_int8};
      g_autofree char *base = g_strdup_printf ("/encdec/%s/%s", fixtures[f].name, c->be->name);
      g_autofree char *a = g_strconcat (base, "/logits", NULL);
      g_test_add_data_func (a, c, test_logits);
      if (c->be == &vt_int8)   /* int8: the logits' drift only (testutil.h) */
        continue;
      g_autofree char *b = g_strconcat (base, "/greedy-ids", NULL);
      g_autofree char *d = g_strconcat (base, "/beam3-ids", NULL);
      g_autofree char *e = g_strconcat (base, "/from-frames", NULL);
      g_test_add_data_func (b, c, test_greedy);
      g_test_add_data_func (d, c, test_beam3);
      g_test_add_data_func (e, c, test_from_frames);
      if (c->be->precision == VLM_PRECISION_F32) {
        g_autofree char *f = g_strconcat (base, "/session", NULL);
        g_autofree char *g = g_strconcat (base, "/cli", NULL);
        g_test_add_data_func (f, c, test_session);
        g_test_add_data_func (g, c, test_cli);
      }
    }
  }
  g_test_add_func ("/encdec/bad-configs", test_bad_configs);
  for (guint i = 0; i < G_N_ELEMENTS (vt_backends); i++) {
    g_autofree char *name = g_strdup_printf ("/encdec/linear-parts/%s", vt_backends[i].name);
    g_test_add_data_func (name, &vt_backends[i], test_linear_parts);
  }
  return g_test_run ();
}
