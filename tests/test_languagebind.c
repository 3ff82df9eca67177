/* test_languagebind.c — LanguageBindVideo against the reference
 * (fixtures/languagebind-video-tiny, languagebind.py), stage by stage from
 * the raw frames, on both backends; then zero-shot tags through the public
 * API. */
#include "languagebind.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <math.h>
#include <unistd.h>

#define FIXTURE "fixtures/languagebind-video-tiny"

/* ---------------------------------------------------------------- folders */

/* The golden's prompts as words, each with the id its input_ids give it. */
static const struct {
  const char *word;
  int id;
} words[] = {{"a", 5},   {"red", 6},   {"ball", 7},  {"dog", 9},   {"runs", 10},
             {"an", 11}, {"empty", 12}, {"gray", 13}, {"room", 14}};
static const char *const labels[] = {"A red  ball", "dog runs", "an EMPTY gray room"};

static gboolean
id_taken (GHashTable *vocab, int id)
{
  if (id <= 2)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    if (words[i].id == id)
      return TRUE;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, vocab);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (GPOINTER_TO_INT (v) == id)
      return TRUE;
  return FALSE;
}

static void
add_token (GHashTable *vocab, const char *token, int id)
{
  if (g_hash_table_contains (vocab, token))
    return;
  while (id < 0 || id_taken (vocab, id))
    id = id < 0 ? 3 : id + 1;
  g_hash_table_insert (vocab, g_strdup (token), GINT_TO_POINTER (id));
}

/* A CLIP tokenizer.json (the fixture has none): CLIP's normalizer,
 * pre-tokenizer, start/end template and `</w>` BPE, over a vocabulary that
 * builds each word by left-to-right merges into the id the golden uses. */
static char *
clip_tokenizer_json (void)
{
  g_autoptr (GHashTable) vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GString *merges = g_string_new (NULL), *json = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (words); i++) {
    g_autofree char *whole = g_strconcat (words[i].word, "</w>", NULL);
    g_hash_table_insert (vocab, g_strdup (whole), GINT_TO_POINTER (words[i].id));
  }
  for (guint i = 0; i < G_N_ELEMENTS (words); i++) {
    const char *w = words[i].word;
    int n = (int) strlen (w);
    g_autofree char *cur = n == 1 ? g_strconcat (w, "</w>", NULL) : g_strndup (w, 1);
    add_token (vocab, cur, -1);
    for (int j = 1; j < n; j++) {
      g_autofree char *sym = j == n - 1 ? g_strconcat (w + j, "</w>", NULL) : g_strndup (w + j, 1);
      char *next = g_strconcat (cur, sym, NULL);
      add_token (vocab, sym, -1);
      add_token (vocab, next, -1);
      g_string_append_printf (merges, "%s\"%s %s\"", merges->len ? "," : "", cur, sym);
      g_free (cur);
      cur = next;
    }
  }
  g_string_append (json,
    "{\"added_tokens\":["
    "{\"id\":1,\"content\":\"<|startoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":true},"
    "{\"id\":2,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},{\"type\":\"Lowercase\"}]},"
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
    "\"<\\\\|startoftext\\\\|>|<\\\\|endoftext\\\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|[^\\\\s\\\\p{L}\\\\p{N}]+\"},"
    "\"behavior\":\"Removed\",\"invert\":true},"
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},"
    "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"<|endoftext|>\",2],\"cls\":[\"<|startoftext|>\",1],"
    "\"trim_offsets\":false,\"add_prefix_space\":false},"
    "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<|endoftext|>\",\"continuing_subword_prefix\":\"\","
    "\"end_of_word_suffix\":\"</w>\",\"fuse_unk\":false,\"byte_fallback\":false,\"vocab\":{"
    "\"<|startoftext|>\":1,\"<|endoftext|>\":2");
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, vocab);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_string_append_printf (json, ",\"%s\":%d", (const char *) k, GPOINTER_TO_INT (v));
  g_string_append_printf (json, "},\"merges\":[%s]}}", merges->str);
  g_string_free (merges, TRUE);
  return g_string_free (json, FALSE);
}

/* A temporary model folder linking the fixture's `files`, plus our
 * tokenizer.json. Remove with remove_folder. */
static char *
make_folder (const char *const *files)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("languagebind-XXXXXX", &error);
  g_assert_no_error (error);
  for (; *files; files++) {
    g_autofree char *rel = g_build_filename (FIXTURE, *files, NULL);
    g_autofree char *src = vt_shared_path (rel);
    g_autofree char *dst = g_build_filename (dir, *files, NULL);
    g_assert_cmpint (symlink (src, dst), ==, 0);
  }
  g_autofree char *tok = g_build_filename (dir, "tokenizer.json", NULL);
  g_autofree char *json = clip_tokenizer_json ();
  g_assert_true (g_file_set_contents (tok, json, -1, &error));
  g_assert_no_error (error);
  return dir;
}

static void
remove_folder (char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *path = g_build_filename (dir, name, NULL);
    g_unlink (path);
  }
  g_dir_close (d);
  g_rmdir (dir);
  g_free (dir);
}

/* ---------------------------------------------------------------- tests */

/* Our frames → pixel_values [F, 3, S, S]; the golden's (1, 3, F, S, S)
 * (LanguageBind's layout) must agree within one level of 255. */
static float *
pixels_from_frames (VlmModel *m, VlmSafetensors *gold)
{
  const VlmImageProcessor *p = &m->processor;
  int F, S = p->out_h;
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &F);
  g_assert_cmpint (F, ==, m->info.frames_per_clip);
  g_assert_cmpint (p->out_w, ==, S);
  size_t hw = (size_t) S * S;
  float *px = g_new (float, (size_t) F * 3 * hw);
  GError *error = NULL;
  for (int f = 0; f < F; f++) {
    g_autofree void *scratch = g_malloc (vlm_image_scratch_size (p, frames[f].width, frames[f].height));
    g_assert_true (vlm_image_preprocess (p, &frames[f], px + f * 3 * hw, scratch, &error));
    g_assert_no_error (error);
  }
  int64_t n;
  g_autofree float *want = vt_tensor_f32 (gold, "pixel_values", &n);
  g_assert_cmpint (n, ==, (int64_t) F * 3 * hw);
  double worst = 0;
  for (int f = 0; f < F; f++)
    for (int c = 0; c < 3; c++)
      for (size_t i = 0; i < hw; i++) {
        double levels = fabs (px[(f * 3 + c) * hw + i] - want[((size_t) c * F + f) * hw + i]) * p->std[c] * 255.0;
        worst = MAX (worst, levels);
      }
  g_test_message ("pixel_values: max diff %.3g level(s) of 255", worst);
  g_assert_cmpfloat (worst, <=, 1.0 + 1e-3);
  return px;
}

/* The text tower over the golden's padded input_ids, row by row. */
static float *
text_embeds (LanguageBindRun *run, VlmSafetensors *gold, int *n_rows)
{
  const VlmTensor *ids_t = vlm_safetensors_find (gold, "input_ids");
  int64_t n;
  g_autofree int *ids = vt_tensor_int (gold, "input_ids", &n);
  g_autofree int *mask = vt_tensor_int (gold, "attention_mask", NULL);
  int rows = (int) ids_t->shape[0], len = (int) ids_t->shape[1], P = 0;
  g_assert_nonnull (vlm_safetensors_find (gold, "text_embeds"));
  P = (int) vlm_safetensors_find (gold, "text_embeds")->shape[1];
  float *out = g_new (float, (size_t) rows * P);
  GError *error = NULL;
  for (int r = 0; r < rows; r++) {
    int k = 0;
    while (k < len && mask[r * len + k])
      k++;
    g_assert_true (languagebind_embed_text (run, ids + r * len, k, out + (size_t) r * P, &error));
    g_assert_no_error (error);
  }
  *n_rows = rows;
  return out;
}

/* Every stage of the golden, from frames_u8 and input_ids, with the weights
 * of `dir`; returns last_hidden_state followed by logits_per_video (g_free). */
static float *
check_stages (const char *dir, const VtBackend *be)
{
  VlmModel *m = vt_load_model (dir, be);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  const LanguageBind *lb = m->impl;
  const VlmVit *vit = &lb->vision;
  GError *error = NULL;
  VlmOps *ops = vt_ops_new (be);
  LanguageBindRun *run = m->arch->run_new (m, ops, 1, 16, &error);
  g_assert_no_error (error);
  vlm_ops_bind_thread (ops);

  g_autofree float *px = pixels_from_frames (m, gold);
  int F = m->info.frames_per_clip, L = vit->cfg.num_layers;
  size_t rows = (size_t) F * vit->cfg.n_tokens;
  VlmArena arena;
  g_assert_true (vlm_arena_init (&arena, vlm_vit_arena_size (vit, F)));
  g_autofree float *hs = g_new (float, rows * vit->cfg.hidden_size);
  const struct { const char *name; int layer; } hidden[] = {{"hidden_state_0", 0}, {"hidden_state_minus2", L - 1}};
  for (guint i = 0; i < G_N_ELEMENTS (hidden); i++) {
    vlm_vit_forward (vit, ops, &arena, px, F, hidden[i].layer, FALSE, hs);
    int64_t n;
    g_autofree float *want = vt_tensor_f32 (gold, hidden[i].name, &n);
    g_assert_cmpint (n, ==, (int64_t) rows * vit->cfg.hidden_size);
    vt_assert_close (hidden[i].name, hs, want, n, be->tol);
  }
  vlm_arena_clear (&arena);

  g_assert_true (m->arch->encode (run, px, F, &error));
  g_assert_no_error (error);
  int64_t n_last, n_video, n_text, n_logits;
  g_autofree float *last = vt_tensor_f32 (gold, "last_hidden_state", &n_last);
  vt_assert_close ("last_hidden_state", m->arch->stage (run, "last_hidden_state"), last, n_last, be->tol);
  g_autofree float *video = vt_tensor_f32 (gold, "video_embeds", &n_video);
  vt_assert_close ("video_embeds", m->arch->stage (run, "video_embeds"), video, n_video, be->tol);

  int n_rows;
  g_autofree float *text = text_embeds (run, gold, &n_rows);
  g_autofree float *text_want = vt_tensor_f32 (gold, "text_embeds", &n_text);
  vt_assert_close ("text_embeds", text, text_want, n_text, be->tol);
  g_autofree float *logits = g_new (float, n_rows);
  languagebind_scores (lb, m->arch->stage (run, "video_embeds"), text, n_rows, logits);
  g_autofree float *logits_want = vt_tensor_f32 (gold, "logits_per_video", &n_logits);
  g_assert_cmpint (n_logits, ==, n_rows);
  vt_assert_close ("logits_per_video", logits, logits_want, n_logits, be->tol);
  float *outputs = g_new (float, n_last + n_rows);
  memcpy (outputs, m->arch->stage (run, "last_hidden_state"), n_last * sizeof (float));
  memcpy (outputs + n_last, logits, n_rows * sizeof (float));

  m->arch->run_free (run);
  vlm_ops_free (ops);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
  return outputs;
}

static void
test_stages (gconstpointer data)
{
  const VtBackend *be = data;
  g_autofree char *dir = vt_shared_path (FIXTURE);
  g_free (check_stages (dir, be));
}

/* A folder with only pytorch_model.bin: the same stages, bit-identical to
 * model.safetensors. */
static void
test_stages_bin (gconstpointer data)
{
  const VtBackend *be = data;
  static const char *const files[] = {"config.json", "pytorch_model.bin", "preprocessor_config.json", NULL};
  char *bin_dir = make_folder (files);
  g_autofree char *st_dir = vt_shared_path (FIXTURE);
  g_autofree float *from_bin = check_stages (bin_dir, be);
  g_autofree float *from_st = check_stages (st_dir, be);
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  int64_t n = vlm_tensor_numel (vlm_safetensors_find (gold, "last_hidden_state")) +
              vlm_tensor_numel (vlm_safetensors_find (gold, "logits_per_video"));
  g_assert_cmpmem (from_bin, n * sizeof (float), from_st, n * sizeof (float));
  vlm_safetensors_free (gold);
  remove_folder (bin_dir);
}

/* frames + labels → tag scores through the public API: the golden's
 * logits_per_video (the labels tokenize to its input_ids), computed once per
 * label set; captioning is refused. */
static void
test_tags (gconstpointer data)
{
  const VtBackend *be = data;
  static const char *const files[] = {"config.json", "model.safetensors", "preprocessor_config.json", NULL};
  char *dir = make_folder (files);
  VlmModel *m = vt_load_model (dir, be);
  g_assert_false (vlm_model_can_generate (m));
  VlmSafetensors *gold = vt_open_golden (FIXTURE "/golden.safetensors");
  int n_frames, n = G_N_ELEMENTS (labels);
  g_autofree VlmFrame *frames = vt_golden_frames (gold, &n_frames);
  GError *error = NULL;
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  float scores[3], again[3], probs[3];
  g_assert_true (vlm_session_tag (s, frames, n_frames, labels, n, scores, probs, &error));
  g_assert_no_error (error);
  int64_t n_want;
  g_autofree float *want = vt_tensor_f32 (gold, "logits_per_video", &n_want);
  g_assert_cmpint (n_want, ==, n);
  vt_assert_close ("tag scores", scores, want, n, be->tol);
  double sum = 0;
  for (int i = 0; i < n; i++) {
    g_test_message ("%s: %.4f (%.3f)", labels[i], scores[i], probs[i]);
    sum += probs[i];
  }
  g_assert_cmpfloat (fabs (sum - 1.0), <, 1e-6);
  g_assert_true (vlm_session_tag (s, frames, n_frames, labels, n, again, NULL, &error));
  g_assert_cmpmem (scores, sizeof scores, again, sizeof again);

  VlmCaption cap;
  g_assert_false (vlm_session_caption (s, frames, n_frames, "", NULL, NULL, NULL, &cap, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_clear_error (&error);

  /* through a batcher (vlm.h "batching"): the same scores, captioning refused as well */
  VlmBatcher *b = vlm_batcher_new (m, &error);
  g_assert_no_error (error);
  VlmSession *batched = vlm_session_new_batched (b, &error);
  g_assert_no_error (error);
  g_assert_true (vlm_session_tag (batched, frames, n_frames, labels, n, again, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (scores, sizeof scores, again, sizeof again);
  g_assert_false (vlm_session_caption (batched, frames, n_frames, "", NULL, NULL, NULL, &cap, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_clear_error (&error);
  vlm_batcher_unref (b);   /* before its session: the session holds it */
  vlm_session_free (batched);
  vlm_session_free (s);
  vlm_safetensors_free (gold);
  vlm_model_unref (m);
  remove_folder (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (vt_backends); i++) {
    g_autofree char *a = g_strdup_printf ("/languagebind/%s/stages", vt_backends[i].name);
    g_autofree char *b = g_strdup_printf ("/languagebind/%s/tags", vt_backends[i].name);
    g_test_add_data_func (a, &vt_backends[i], test_stages);
    g_autofree char *c = g_strdup_printf ("/languagebind/%s/stages-pytorch-bin", vt_backends[i].name);
    g_test_add_data_func (b, &vt_backends[i], test_tags);
    g_test_add_data_func (c, &vt_backends[i], test_stages_bin);
  }
  g_test_add_data_func ("/languagebind/onednn-int8/stages", &vt_int8, test_stages);
  return g_test_run ();
}
