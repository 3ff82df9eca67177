/* test_tokenizer.c — the tokenizer against HF's outputs in ../shared/fixtures:
 * tokenizers/golden.json (16 strings × llama2 SentencePiece-BPE and Qwen
 * byte-level BPE), the checkpoints' prompts (golden input_ids) and generated
 * ids (greedy_text), the testcard-git captions, and bad input. */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer.h"

/* ───────────────────────── helpers ───────────────────────── */

static VlmTokenizer *
load_shared (const char *rel)
{
  g_autofree char *path = vt_shared_path (rel);
  GError *error = NULL;
  VlmTokenizer *tok = vlm_tokenizer_load (path, &error);
  g_assert_no_error (error);
  return tok;
}

static JsonParser *
parse_shared (const char *rel)
{
  g_autofree char *path = vt_shared_path (rel);
  JsonParser *p = json_parser_new ();
  GError *error = NULL;
  json_parser_load_from_file (p, path, &error);
  g_assert_no_error (error);
  return p;
}

static JsonObject *
root_object (JsonParser *p)
{
  return json_node_get_object (json_parser_get_root (p));
}

typedef void (*EditFunc) (JsonObject *root, gpointer data);

/* Writes the fixture tokenizer.json `rel`, changed by `edit`, into a new
 * temporary folder; returns the folder (remove with drop_variant). */
static char *
write_variant (const char *rel, EditFunc edit, gpointer data)
{
  JsonParser *p = parse_shared (rel);
  JsonGenerator *gen = json_generator_new ();
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("vlm-tok-XXXXXX", &error);
  g_autofree char *file = NULL;
  g_assert_no_error (error);
  edit (root_object (p), data);
  file = g_build_filename (dir, "tokenizer.json", NULL);
  json_generator_set_root (gen, json_parser_get_root (p));
  json_generator_to_file (gen, file, &error);
  g_assert_no_error (error);
  g_object_unref (gen);
  g_object_unref (p);
  return dir;
}

static void
drop_variant (char *dir)
{
  g_autofree char *file = g_build_filename (dir, "tokenizer.json", NULL);
  g_assert_cmpint (g_remove (file), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
  g_free (dir);
}

/* Loads a variant that must fail with `code`, its message containing `needle`. */
static void
assert_variant_fails (const char *rel, EditFunc edit, gpointer data, int code, const char *needle)
{
  char *dir = write_variant (rel, edit, data);
  GError *error = NULL;
  VlmTokenizer *tok = vlm_tokenizer_load (dir, &error);
  g_assert_null (tok);
  g_assert_error (error, VLM_ERROR, code);
  g_test_message ("expected failure: %s", error->message);
  g_assert_nonnull (strstr (error->message, needle));
  g_error_free (error);
  drop_variant (dir);
}

static int *
json_ids (JsonArray *a, int *n)
{
  int *ids = g_new0 (int, json_array_get_length (a) + 1);
  *n = (int) json_array_get_length (a);
  for (int i = 0; i < *n; i++)
    ids[i] = (int) json_array_get_int_element (a, i);
  return ids;
}

static gboolean
ids_equal (const int *a, int na, const int *b, int nb)
{
  return na == nb && (na == 0 || memcmp (a, b, na * sizeof (int)) == 0);
}

static char *
ids_str (const int *ids, int n)
{
  GString *s = g_string_new (NULL);
  for (int i = 0; i < n; i++)
    g_string_append_printf (s, i ? " %d" : "%d", ids[i]);
  return g_string_free (s, FALSE);
}

static int *
encode_ok (const VlmTokenizer *tok, const char *text, gboolean add_special, int *n)
{
  GError *error = NULL;
  int *ids = vlm_tokenizer_encode (tok, text, add_special, n, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ids);
  return ids;
}

/* ───────────────────────── bad input ───────────────────────── */

static void
test_load_missing (void)
{
  GError *error = NULL;
  VlmTokenizer *tok = vlm_tokenizer_load ("/nonexistent/vlm/tokenizer.json", &error);
  g_assert_null (tok);
  g_assert_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "/nonexistent/vlm/tokenizer.json"));
  g_error_free (error);
}

/* Each text fails with BAD_CONFIG (and, where given, a message holding
 * `needle`). An id near G_MAXINT once sized a 16 GiB id table. */
static void
test_load_malformed (void)
{
  static const struct { const char *text, *needle; } texts[] = {
    { "{ \"model\": [" },
    { "not json" },
    { "[1, 2]" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}, \"merges\": []}}" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2147483646}, \"merges\": []}}",
      "token id 2147483646 exceeds the ids a 68-byte file" },
    { "{\"added_tokens\": [{\"id\": 2147483646, \"content\": \"x\"}],"
      "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "token id 2147483646" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++) {
    GError *error = NULL;
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp ("vlm-tok-XXXXXX.json", &path, &error);
    VlmTokenizer *tok;
    g_assert_no_error (error);
    close (fd);
    g_file_set_contents (path, texts[i].text, -1, &error);
    g_assert_no_error (error);
    tok = vlm_tokenizer_load (path, &error);
    g_assert_null (tok);
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG);
    g_test_message ("%s -> %s", texts[i].text, error->message);
    if (texts[i].needle)
      g_assert_nonnull (strstr (error->message, texts[i].needle));
    g_error_free (error);
    g_remove (path);
  }
}

static void
set_model_type (JsonObject *root, gpointer type)
{
  json_object_set_string_member (json_object_get_object_member (root, "model"), "type", type);
}

static void
test_load_unknown_model (void)
{
  assert_variant_fails ("fixtures/git-video-tiny/tokenizer.json", set_model_type, "Unigram",
                        VLM_ERROR_UNSUPPORTED_TOKENIZER, "Unigram");
}

static void
set_pre_tokenizer (JsonObject *root, gpointer type)
{
  JsonObject *pre = json_object_new ();
  json_object_set_string_member (pre, "type", type);
  json_object_set_object_member (root, "pre_tokenizer", pre);
}

static void
test_load_unknown_pre_tokenizer (void)
{
  assert_variant_fails ("fixtures/git-video-tiny/tokenizer.json", set_pre_tokenizer, "UnicodeScripts",
                        VLM_ERROR_UNSUPPORTED_TOKENIZER, "UnicodeScripts");
}

static void
vocab_as_array (JsonObject *root, gpointer data)
{
  json_object_set_array_member (json_object_get_object_member (root, "model"), "vocab", json_array_new ());
}

static void
added_id_as_string (JsonObject *root, gpointer data)
{
  JsonObject *t = json_array_get_object_element (json_object_get_array_member (root, "added_tokens"), 0);
  json_object_set_string_member (t, "id", "zero");
}

static void
test_load_bad_keys (void)
{
  assert_variant_fails ("fixtures/git-video-tiny/tokenizer.json", vocab_as_array, NULL,
                        VLM_ERROR_BAD_CONFIG, "model.vocab");
  assert_variant_fails ("fixtures/git-video-tiny/tokenizer.json", added_id_as_string, NULL,
                        VLM_ERROR_BAD_CONFIG, "added_tokens[0].id");
}

static void
test_encode_invalid_utf8 (void)
{
  VlmTokenizer *tok = load_shared ("fixtures/git-video-tiny");
  GError *error = NULL;
  int n = -1;
  int *ids = vlm_tokenizer_encode (tok, "bad \xff\xfe text", FALSE, &n, &error);
  g_assert_null (ids);
  g_assert_cmpint (n, ==, 0);
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_error_free (error);
  vlm_tokenizer_free (tok);
}

/* ───────────────────────── golden strings ───────────────────────── */

/* golden.json was made from the base tokenizer.json, before the processor
 * added its extra special tokens (<image>, <video>: tokenizer_config.json's
 * extra_special_tokens) to the checkpoint's copy. So the golden strings are
 * checked on the checkpoint's tokenizer with those removed. */
static void
drop_extra_specials (JsonObject *root, gpointer extra)
{
  JsonArray *added = json_object_get_array_member (root, "added_tokens");
  for (guint i = json_array_get_length (added); i-- > 0;) {
    const char *c = json_object_get_string_member (json_array_get_object_element (added, i), "content");
    if (g_strv_contains (extra, c))
      json_array_remove_element (added, i);
  }
}

static char **
extra_specials (const char *folder)
{
  g_autofree char *rel = g_strdup_printf ("fixtures/%s/tokenizer_config.json", folder);
  JsonParser *p = parse_shared (rel);
  JsonArray *a = json_object_get_array_member (root_object (p), "extra_special_tokens");
  char **out = g_new0 (char *, json_array_get_length (a) + 1);
  for (guint i = 0; i < json_array_get_length (a); i++)
    out[i] = g_strdup (json_array_get_string_element (a, i));
  g_object_unref (p);
  return out;
}

/* Encodes and decodes the golden strings (those without a leading space if
 * `skip_leading_space`); returns how many match exactly, *n_checked the count. */
static int
run_golden (const VlmTokenizer *tok, JsonArray *results, const char *label, gboolean skip_leading_space,
            int *n_checked)
{
  int ok = 0, n = (int) json_array_get_length (results);
  *n_checked = 0;
  for (int i = 0; i < n; i++) {
    JsonObject *r = json_array_get_object_element (results, i);
    const char *text = json_object_get_string_member (r, "text");
    int n_want, n_got;
    if (skip_leading_space && text[0] == ' ')
      continue;
    (*n_checked)++;
    g_autofree int *want = json_ids (json_object_get_array_member (r, "ids"), &n_want);
    g_autofree int *got = encode_ok (tok, text, FALSE, &n_got);
    g_autofree char *decoded = vlm_tokenizer_decode (tok, want, n_want, TRUE);
    gboolean enc = ids_equal (got, n_got, want, n_want);
    gboolean dec = g_strcmp0 (decoded, json_object_get_string_member (r, "decoded")) == 0;
    if (!enc || !dec) {
      g_autofree char *gs = ids_str (got, n_got), *ws = ids_str (want, n_want);
      g_test_message ("%s: \"%s\": ids [%s] want [%s]; decoded \"%s\"", label, text, gs, ws, decoded);
    }
    ok += enc && dec;
  }
  g_test_message ("%s: %d/%d golden strings exact (ids and decoded text)", label, ok, *n_checked);
  return ok;
}

static void
check_golden (const char *name, const char *folder)
{
  JsonParser *golden = parse_shared ("fixtures/tokenizers/golden.json");
  JsonArray *results = json_object_get_array_member (
    json_object_get_object_member (root_object (golden), "results"), name);
  g_auto (GStrv) extra = extra_specials (folder);
  g_autofree char *rel = g_strdup_printf ("fixtures/%s/tokenizer.json", folder);
  char *dir = write_variant (rel, drop_extra_specials, extra);
  GError *error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  VlmTokenizer *tok = vlm_tokenizer_load (dir, &error);
  int n = (int) json_array_get_length (results), checked;
  g_assert_no_error (error);
  g_test_message ("%s: tokenizer.json loaded in %.0f ms, %d ids", name,
                  (g_get_monotonic_time () - t0) / 1e3, vlm_tokenizer_vocab_size (tok));
  g_assert_cmpint (n, ==, 16);
  g_assert_cmpint (run_golden (tok, results, name, FALSE, &checked), ==, n);
  vlm_tokenizer_free (tok);
  drop_variant (dir);
  g_object_unref (golden);
}

static void
test_golden_llama2 (void)
{
  check_golden ("llama2", "video-llava-tiny");
}

static void
test_golden_qwen (void)
{
  check_golden ("qwen", "llava-onevision-qwen2-tiny");
}

/* The merges of the llama2 fixture are [a, b] pairs; the same as "a b" strings must agree. */
static void
merges_as_strings (JsonObject *root, gpointer data)
{
  JsonObject *model = json_object_get_object_member (root, "model");
  JsonArray *pairs = json_object_get_array_member (model, "merges");
  JsonArray *strings = json_array_new ();
  for (guint i = 0; i < json_array_get_length (pairs); i++) {
    JsonArray *pr = json_array_get_array_element (pairs, i);
    g_autofree char *s = g_strdup_printf ("%s %s", json_array_get_string_element (pr, 0),
                                          json_array_get_string_element (pr, 1));
    json_array_add_string_element (strings, s);
  }
  json_object_set_array_member (model, "merges", strings);
  drop_extra_specials (root, data);
}

static void
test_merges_string_form (void)
{
  JsonParser *golden = parse_shared ("fixtures/tokenizers/golden.json");
  JsonArray *results = json_object_get_array_member (
    json_object_get_object_member (root_object (golden), "results"), "llama2");
  g_auto (GStrv) extra = extra_specials ("video-llava-tiny");
  char *dir = write_variant ("fixtures/video-llava-tiny/tokenizer.json", merges_as_strings, extra);
  GError *error = NULL;
  VlmTokenizer *tok = vlm_tokenizer_load (dir, &error);
  int checked;
  g_assert_no_error (error);
  g_assert_cmpint (run_golden (tok, results, "llama2, \"a b\" merges", FALSE, &checked), ==, 16);
  vlm_tokenizer_free (tok);
  drop_variant (dir);
  g_object_unref (golden);
}

/* Newer Llama tokenizer.json files use a Metaspace pre-tokenizer
 * (prepend_scheme "first", no split) instead of the Prepend + Replace
 * normalizers. The ids are the same except for text that starts with a space:
 * Metaspace does not prepend ▁ to text that already begins with one. */
static void
metaspace_form (JsonObject *root, gpointer data)
{
  JsonObject *pre = json_object_new ();
  json_object_set_string_member (pre, "type", "Metaspace");
  json_object_set_string_member (pre, "replacement", "\u2581");
  json_object_set_string_member (pre, "prepend_scheme", "first");
  json_object_set_boolean_member (pre, "split", FALSE);
  json_object_set_object_member (root, "pre_tokenizer", pre);
  json_object_set_null_member (root, "normalizer");
  drop_extra_specials (root, data);
}

static void
test_metaspace_form (void)
{
  JsonParser *golden = parse_shared ("fixtures/tokenizers/golden.json");
  JsonArray *results = json_object_get_array_member (
    json_object_get_object_member (root_object (golden), "results"), "llama2");
  g_auto (GStrv) extra = extra_specials ("video-llava-tiny");
  char *dir = write_variant ("fixtures/video-llava-tiny/tokenizer.json", metaspace_form, extra);
  GError *error = NULL;
  VlmTokenizer *tok = vlm_tokenizer_load (dir, &error);
  int checked;
  g_assert_no_error (error);
  g_assert_cmpint (run_golden (tok, results, "llama2, Metaspace form", TRUE, &checked), ==, checked);
  g_assert_cmpint (checked, >, 10);
  vlm_tokenizer_free (tok);
  drop_variant (dir);
  g_object_unref (golden);
}

/* ───────────────────────── checkpoints' prompts and outputs ───────────────────────── */

/* The processor expands one <video> into one token per visual feature;
 * collapsing the runs gives what the tokenizer itself produced. */
static int *
collapse_runs (const int *ids, int64_t n, int token, int *n_out)
{
  int *out = g_new (int, n + 1);
  *n_out = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] != token || *n_out == 0 || out[*n_out - 1] != token)
      out[(*n_out)++] = ids[i];
  }
  return out;
}

static void
check_prompt (const char *folder)
{
  g_autofree char *dir = g_strdup_printf ("fixtures/%s", folder);
  g_autofree char *gjson = g_strdup_printf ("fixtures/%s/golden.json", folder);
  g_autofree char *gst = g_strdup_printf ("fixtures/%s/golden.safetensors", folder);
  VlmTokenizer *tok = load_shared (dir);
  JsonParser *golden = parse_shared (gjson);
  VlmSafetensors *st = vt_open_golden (gst);
  int64_t n_golden;
  g_autofree int *golden_ids = vt_tensor_int (st, "input_ids", &n_golden);
  int video = vlm_tokenizer_token_to_id (tok, "<video>"), n_want, n_got;
  g_autofree int *want = collapse_runs (golden_ids, n_golden, video, &n_want);
  g_autofree int *got = encode_ok (tok, json_object_get_string_member (root_object (golden), "prompt"),
                                   TRUE, &n_got);
  g_autofree char *gs = ids_str (got, n_got), *ws = ids_str (want, n_want);
  g_assert_cmpint (video, >=, 0);
  g_assert_true (vlm_tokenizer_is_special (tok, video));
  g_test_message ("%s prompt: %d ids", folder, n_got);
  g_assert_cmpstr (gs, ==, ws);
  vlm_safetensors_free (st);
  g_object_unref (golden);
  vlm_tokenizer_free (tok);
}

static void
test_prompt_video_llava (void)
{
  check_prompt ("video-llava-tiny");
}

static void
test_prompt_onevision (void)
{
  check_prompt ("llava-onevision-qwen2-tiny");
}

/* GIT's golden prompt note reads "input_ids = [CLS] <text>". */
static void
test_prompt_git (void)
{
  VlmTokenizer *tok = load_shared ("fixtures/git-video-tiny");
  JsonParser *golden = parse_shared ("fixtures/git-video-tiny/golden.json");
  const char *note = json_object_get_string_member (root_object (golden), "prompt_ids");
  const char *prompt = strstr (note, "= ") + 2;
  const char *text = strchr (prompt, ' ') + 1;
  VlmSafetensors *st = vt_open_golden ("fixtures/git-video-tiny/golden.safetensors");
  int64_t n_want;
  g_autofree int *want = vt_tensor_int (st, "input_ids", &n_want);
  int n1, n2, sep = vlm_tokenizer_token_to_id (tok, "[SEP]");
  g_autofree int *with_cls = encode_ok (tok, prompt, FALSE, &n1);
  g_autofree int *templated = encode_ok (tok, text, TRUE, &n2);
  g_assert_true (ids_equal (with_cls, n1, want, (int) n_want));
  /* The template adds [CLS] … [SEP]; GIT's prompt is the same without the [SEP]. */
  g_assert_cmpint (n2, ==, n_want + 1);
  g_assert_true (ids_equal (templated, n2 - 1, want, (int) n_want));
  g_assert_cmpint (templated[n2 - 1], ==, sep);
  vlm_safetensors_free (st);
  g_object_unref (golden);
  vlm_tokenizer_free (tok);
}

static void
test_decode_greedy (void)
{
  static const char *const folders[] = { "git-video-tiny", "video-llava-tiny",
                                         "llava-onevision-qwen2-tiny" };
  for (guint i = 0; i < G_N_ELEMENTS (folders); i++) {
    g_autofree char *dir = g_strdup_printf ("fixtures/%s", folders[i]);
    g_autofree char *gjson = g_strdup_printf ("fixtures/%s/golden.json", folders[i]);
    g_autofree char *gst = g_strdup_printf ("fixtures/%s/golden.safetensors", folders[i]);
    VlmTokenizer *tok = load_shared (dir);
    JsonParser *golden = parse_shared (gjson);
    VlmSafetensors *st = vt_open_golden (gst);
    int64_t n;
    g_autofree int *ids = vt_tensor_int (st, "greedy_ids", &n);
    g_autofree char *text = vlm_tokenizer_decode (tok, ids, (int) n, TRUE);
    g_test_message ("%s: \"%s\"", folders[i], text);
    g_assert_cmpstr (text, ==, json_object_get_string_member (root_object (golden), "greedy_text"));
    vlm_safetensors_free (st);
    g_object_unref (golden);
    vlm_tokenizer_free (tok);
  }
}

static void
test_special_tokens (void)
{
  VlmTokenizer *tok = load_shared ("fixtures/video-llava-tiny");
  int video = vlm_tokenizer_token_to_id (tok, "<video>"), n;
  g_autofree int *ids = encode_ok (tok, "<video> tag", FALSE, &n);
  g_autofree char *skipped = vlm_tokenizer_decode (tok, ids, n, TRUE);
  g_autofree char *kept = vlm_tokenizer_decode (tok, ids, n, FALSE);
  g_assert_cmpint (n, >=, 2);
  g_assert_cmpint (ids[0], ==, video);
  g_assert_cmpstr (vlm_tokenizer_id_to_token (tok, video), ==, "<video>");
  g_assert_null (strstr (skipped, "<video>"));
  g_assert_true (g_str_has_prefix (kept, "<video>"));
  g_assert_nonnull (strstr (skipped, "tag"));
  g_assert_null (vlm_tokenizer_id_to_token (tok, -1));
  g_assert_null (vlm_tokenizer_id_to_token (tok, vlm_tokenizer_vocab_size (tok)));
  g_assert_cmpint (vlm_tokenizer_token_to_id (tok, "no such token at all"), ==, -1);
  vlm_tokenizer_free (tok);
}

/* The Qwen vocab (model + added tokens) is the decoder's logits width. */
static void
test_vocab_size (void)
{
  VlmTokenizer *tok = load_shared ("fixtures/llava-onevision-qwen2-tiny");
  VlmSafetensors *st = vt_open_golden ("fixtures/llava-onevision-qwen2-tiny/golden.safetensors");
  const VlmTensor *logits = vlm_safetensors_find (st, "logits_last4");
  int n = vlm_tokenizer_vocab_size (tok), named = 0;
  g_assert_nonnull (logits);
  g_assert_cmpint (n, ==, logits->shape[logits->ndim - 1]);
  for (int id = 0; id < n; id++) {
    const char *t = vlm_tokenizer_id_to_token (tok, id);
    if (t) {
      g_assert_cmpint (vlm_tokenizer_token_to_id (tok, t), ==, id);
      named++;
    }
  }
  g_test_message ("qwen: %d ids, %d named", n, named);
  g_assert_cmpint (named, ==, n);
  vlm_safetensors_free (st);
  vlm_tokenizer_free (tok);
}

static void
test_empty_text (void)
{
  VlmTokenizer *tok = load_shared ("fixtures/git-video-tiny");
  int n;
  g_autofree int *plain = encode_ok (tok, "", FALSE, &n);
  g_autofree int *special = NULL;
  g_autofree char *text = vlm_tokenizer_decode (tok, NULL, 0, TRUE);
  g_assert_cmpint (n, ==, 0);
  special = encode_ok (tok, "", TRUE, &n);
  g_assert_cmpint (n, ==, 2);   /* [CLS] [SEP] */
  g_assert_cmpstr (text, ==, "");
  vlm_tokenizer_free (tok);
}

/* Every testcard-git reference caption is in its small vocab and round-trips. */
static void
test_testcard_captions (void)
{
  VlmTokenizer *tok = load_shared ("models/testcard-git");
  JsonParser *ref = parse_shared ("models/testcard-git/reference_captions.json");
  JsonArray *clips = json_object_get_array_member (root_object (ref), "clips");
  int unk = vlm_tokenizer_token_to_id (tok, "[UNK]"), checked = 0;
  for (guint i = 0; i < json_array_get_length (clips); i++) {
    const char *caption = json_object_get_string_member (json_array_get_object_element (clips, i), "greedy");
    int n;
    g_autofree int *ids = encode_ok (tok, caption, FALSE, &n);
    g_autofree char *back = vlm_tokenizer_decode (tok, ids, n, TRUE);
    for (int k = 0; k < n; k++)
      g_assert_cmpint (ids[k], !=, unk);
    g_assert_cmpstr (back, ==, caption);
    checked++;
  }
  g_test_message ("testcard-git: %d captions round-trip", checked);
  g_assert_cmpint (checked, >, 0);
  g_object_unref (ref);
  vlm_tokenizer_free (tok);
}

/* ───────────────────────── WordPiece rules ───────────────────────── */

/* A hand-made BERT tokenizer: the rules, not a fixture's numbers. */
static const char bert_json[] =
  "{\"added_tokens\": ["
  " {\"id\": 0, \"content\": \"[UNK]\", \"special\": true},"
  " {\"id\": 1, \"content\": \"[CLS]\", \"special\": true},"
  " {\"id\": 2, \"content\": \"[SEP]\", \"special\": true}],"
  "\"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true,"
  " \"handle_chinese_chars\": true, \"strip_accents\": null, \"lowercase\": true},"
  "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
  "\"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 2], \"cls\": [\"[CLS]\", 1]},"
  "\"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true},"
  "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\","
  " \"max_input_chars_per_word\": 10, \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2,"
  " \"hello\": 3, \",\": 4, \"un\": 5, \"##aff\": 6, \"##able\": 7, \"\\u89c6\": 8, \"\\u9891\": 9, \"!\": 10}}}";

static void
test_wordpiece_rules (void)
{
  /* accents stripped and lowercased, a control char dropped, CJK split per
   * char, an unknown word and an over-long word each one [UNK], ## pieces */
  const char *text = "H\xc3\xa9l\x01lo,\tUNAFFABLE\xe8\xa7\x86\xe9\xa2\x91 xyz abcdefghijkl!";
  const int want[] = { 1, 3, 4, 5, 6, 7, 8, 9, 0, 0, 10, 2 };
  g_autofree char *path = NULL;
  GError *error = NULL;
  int fd = g_file_open_tmp ("vlm-tok-XXXXXX.json", &path, &error), n;
  VlmTokenizer *tok;
  g_autofree int *ids = NULL;
  g_autofree char *decoded = NULL;
  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, bert_json, -1, &error);
  g_assert_no_error (error);
  tok = vlm_tokenizer_load (path, &error);
  g_assert_no_error (error);
  ids = encode_ok (tok, text, TRUE, &n);
  g_assert_true (ids_equal (ids, n, want, G_N_ELEMENTS (want)));
  decoded = vlm_tokenizer_decode (tok, ids, n, TRUE);
  g_assert_cmpstr (decoded, ==, "hello, unaffable \xe8\xa7\x86 \xe9\xa2\x91!");
  vlm_tokenizer_free (tok);
  g_remove (path);
}

/* ───────────────────────── slow CLIP files (vocab.json + merges.txt) ───────────────────────── */

/* The languagebind golden's prompts as words with the ids its input_ids give
 * them (as tests/test_languagebind.c builds its tokenizer.json). */
static const struct {
  const char *word;
  int id;
} clip_words[] = {{"a", 5},   {"red", 6},    {"ball", 7},  {"dog", 9},   {"runs", 10},
                  {"an", 11}, {"empty", 12}, {"gray", 13}, {"room", 14}};

static gboolean
clip_id_taken (GHashTable *vocab, int id)
{
  GHashTableIter it;
  gpointer v;
  if (id <= 2)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (clip_words); i++)
    if (clip_words[i].id == id)
      return TRUE;
  g_hash_table_iter_init (&it, vocab);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (GPOINTER_TO_INT (v) == id)
      return TRUE;
  return FALSE;
}

static void
clip_add_token (GHashTable *vocab, const char *token)
{
  int id = 3;
  if (g_hash_table_contains (vocab, token))
    return;
  while (clip_id_taken (vocab, id))
    id++;
  g_hash_table_insert (vocab, g_strdup (token), GINT_TO_POINTER (id));
}

static void
write_file (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  GError *error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
}

static void
remove_dir (char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *path = g_build_filename (dir, name, NULL);
    g_assert_cmpint (g_remove (path), ==, 0);
  }
  g_dir_close (d);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
  g_free (dir);
}

/* A folder with CLIPTokenizer's slow files: vocab.json, merges.txt (with
 * its #version line) and a tokenizer_config.json naming `cls`. */
static char *
write_clip_slow (const char *cls)
{
  g_autoptr (GHashTable) vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GString *merges = g_string_new ("#version: 0.2\n"), *json = g_string_new ("{\"<|startoftext|>\":1,\"<|endoftext|>\":2");
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("vlm-clip-XXXXXX", &error), *cfg;
  GHashTableIter it;
  gpointer k, v;
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (clip_words); i++) {
    g_autofree char *whole = g_strconcat (clip_words[i].word, "</w>", NULL);
    g_hash_table_insert (vocab, g_strdup (whole), GINT_TO_POINTER (clip_words[i].id));
  }
  for (guint i = 0; i < G_N_ELEMENTS (clip_words); i++) {
    const char *w = clip_words[i].word;
    int n = (int) strlen (w);
    char *cur = n == 1 ? g_strconcat (w, "</w>", NULL) : g_strndup (w, 1);
    clip_add_token (vocab, cur);
    for (int j = 1; j < n; j++) {
      g_autofree char *sym = j == n - 1 ? g_strconcat (w + j, "</w>", NULL) : g_strndup (w + j, 1);
      char *next = g_strconcat (cur, sym, NULL);
      clip_add_token (vocab, sym);
      clip_add_token (vocab, next);
      g_string_append_printf (merges, "%s %s\n", cur, sym);
      g_free (cur);
      cur = next;
    }
    g_free (cur);
  }
  g_hash_table_iter_init (&it, vocab);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_string_append_printf (json, ",\"%s\":%d", (const char *) k, GPOINTER_TO_INT (v));
  g_string_append (json, "}");
  write_file (dir, "vocab.json", json->str);
  write_file (dir, "merges.txt", merges->str);
  cfg = g_strdup_printf ("{\"tokenizer_class\":\"%s\",\"bos_token\":{\"content\":\"<|startoftext|>\"},"
                         "\"eos_token\":\"<|endoftext|>\",\"unk_token\":\"<|endoftext|>\","
                         "\"pad_token\":\"<|endoftext|>\",\"model_max_length\":77}", cls);
  write_file (dir, "tokenizer_config.json", cfg);
  g_free (cfg);
  g_string_free (json, TRUE);
  g_string_free (merges, TRUE);
  return dir;
}

/* vocab.json + merges.txt of a CLIP tokenizer_class load as CLIPConverter's
 * tokenizer.json: the languagebind labels encode to the golden input_ids and
 * decode back (normalized); another class is refused, naming tokenizer.json. */
static void
test_clip_slow_files (void)
{
  static const char *const labels[] = {"A red  ball", "dog runs", "an EMPTY gray room"};
  static const char *const decoded[] = {"a red ball", "dog runs", "an empty gray room"};
  static const char *const classes[] = {"LanguageBindVideoTokenizer", "CLIPTokenizer", "CLIPTokenizerFast"};
  VlmSafetensors *st = vt_open_golden ("fixtures/languagebind-video-tiny/golden.safetensors");
  const VlmTensor *ids_t = vlm_safetensors_find (st, "input_ids");
  int64_t n;
  g_autofree int *want = vt_tensor_int (st, "input_ids", &n);
  g_autofree int *mask = vt_tensor_int (st, "attention_mask", NULL);
  int rows = (int) ids_t->shape[0], len = (int) ids_t->shape[1];
  GError *error = NULL;
  g_assert_cmpint (rows, ==, G_N_ELEMENTS (labels));
  for (guint c = 0; c < G_N_ELEMENTS (classes); c++) {
    char *dir = write_clip_slow (classes[c]);
    VlmTokenizer *tok = vlm_tokenizer_load (dir, &error);
    g_assert_no_error (error);
    g_assert_true (vlm_tokenizer_is_special (tok, 1) && vlm_tokenizer_is_special (tok, 2));
    for (int r = 0; r < rows; r++) {
      int k = 0, n_got;
      while (k < len && mask[r * len + k])
        k++;
      g_autofree int *got = encode_ok (tok, labels[r], TRUE, &n_got);
      g_autofree char *gs = ids_str (got, n_got), *ws = ids_str (want + (size_t) r * len, k);
      g_autofree char *text = vlm_tokenizer_decode (tok, got, n_got, TRUE);
      g_autofree char *with_special = vlm_tokenizer_decode (tok, got, n_got, FALSE);
      g_autofree char *want_special = g_strdup_printf ("<|startoftext|>%s <|endoftext|>", decoded[r]);
      g_test_message ("%s: \"%s\" → %s", classes[c], labels[r], gs);
      g_assert_cmpstr (gs, ==, ws);
      g_assert_cmpstr (text, ==, decoded[r]);
      g_assert_cmpstr (with_special, ==, want_special);
    }
    vlm_tokenizer_free (tok);
    remove_dir (dir);
  }

  /* Same files, a tokenizer class that is not CLIP's: refused. */
  {
    char *dir = write_clip_slow ("GPT2Tokenizer");
    g_autofree char *tj = g_build_filename (dir, "tokenizer.json", NULL);
    VlmTokenizer *tok = vlm_tokenizer_load (dir, &error);
    g_assert_null (tok);
    g_assert_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND);
    g_test_message ("expected failure: %s", error->message);
    g_assert_nonnull (strstr (error->message, tj));
    g_assert_nonnull (strstr (error->message, "GPT2Tokenizer"));
    g_clear_error (&error);
    remove_dir (dir);
  }
  vlm_safetensors_free (st);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/load-missing", test_load_missing);
  g_test_add_func ("/tokenizer/load-malformed", test_load_malformed);
  g_test_add_func ("/tokenizer/load-unknown-model", test_load_unknown_model);
  g_test_add_func ("/tokenizer/load-unknown-pre-tokenizer", test_load_unknown_pre_tokenizer);
  g_test_add_func ("/tokenizer/load-bad-keys", test_load_bad_keys);
  g_test_add_func ("/tokenizer/encode-invalid-utf8", test_encode_invalid_utf8);
  g_test_add_func ("/tokenizer/golden-llama2", test_golden_llama2);
  g_test_add_func ("/tokenizer/golden-qwen", test_golden_qwen);
  g_test_add_func ("/tokenizer/merges-string-form", test_merges_string_form);
  g_test_add_func ("/tokenizer/metaspace-form", test_metaspace_form);
  g_test_add_func ("/tokenizer/prompt-video-llava", test_prompt_video_llava);
  g_test_add_func ("/tokenizer/prompt-onevision", test_prompt_onevision);
  g_test_add_func ("/tokenizer/prompt-git", test_prompt_git);
  g_test_add_func ("/tokenizer/decode-greedy", test_decode_greedy);
  g_test_add_func ("/tokenizer/special-tokens", test_special_tokens);
  g_test_add_func ("/tokenizer/vocab-size", test_vocab_size);
  g_test_add_func ("/tokenizer/empty-text", test_empty_text);
  g_test_add_func ("/tokenizer/testcard-captions", test_testcard_captions);
  g_test_add_func ("/tokenizer/wordpiece-rules", test_wordpiece_rules);
  g_test_add_func ("/tokenizer/clip-slow-files", test_clip_slow_files);
  return g_test_run ();
}
