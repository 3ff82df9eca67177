/* tok_convert.c — tokenizer.json synthesised from files older than it:
 * the slow CLIP tokenizer's vocab.json + merges.txt (LanguageBind ships
 * only those), as transformers' convert_slow_tokenizer does. Outside the
 * core: tokenizer.c only asks whether a folder needs it.
 * ref: transformers convert_slow_tokenizer.py (CLIPConverter) */
#include "tok.h"
#include "file.h"

#include <string.h>

/* ───────────────────────── slow CLIP tokenizer files ───────────────────────── */

/* Appends `s` as a json string. */
static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char) *s;
    if (c == '"' || c == '\\')
      g_string_append_c (out, '\\'), g_string_append_c (out, (char) c);
    else if (c < 0x20)
      g_string_append_printf (out, "\\u%04x", c);
    else
      g_string_append_c (out, (char) c);
  }
  g_string_append_c (out, '"');
}

/* tokenizer_config.json's `key` (a string or {"content": …}), else `dflt`. */
static const char *
config_token (JsonObject *cfg, const char *key, const char *dflt)
{
  JsonNode *n = cfg ? json_object_get_member (cfg, key) : NULL;
  if (n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
    return json_node_get_string (n);
  if (n && JSON_NODE_HOLDS_OBJECT (n)) {
    JsonNode *c = json_object_get_member (json_node_get_object (n), "content");
    if (c && JSON_NODE_HOLDS_VALUE (c) && json_node_get_value_type (c) == G_TYPE_STRING)
      return json_node_get_string (c);
  }
  if (n && JSON_NODE_HOLDS_NULL (n))
    return NULL;
  return dflt;
}

gboolean
vlm_tok_is_clip_class (const char *cls)
{
  return cls
         && (strcmp (cls, "CLIPTokenizer") == 0 || strcmp (cls, "CLIPTokenizerFast") == 0
             || (g_str_has_prefix (cls, "LanguageBind") && g_str_has_suffix (cls, "Tokenizer")));
}

/* The tokenizer.json transformers' CLIPConverter makes from CLIPTokenizer's
 * vocab.json + merges.txt in `dir` (whose tokenizer_config.json names a CLIP
 * tokenizer class): NFC + whitespace runs → " " + lowercase; CLIP's split
 * regex + ByteLevel; BPE with "</w>" and unk = unk_token; ByteLevel decoder;
 * RobertaProcessing with bos/eos. Merges as CLIPTokenizer reads them: the
 * first line skipped, at most 49152 - 256 - 2 kept. Returns NULL with
 * NOT_FOUND naming `tokenizer_json` when `dir` is no such folder. */
char *
vlm_tok_clip_tokenizer_json (const char *dir, const char *tokenizer_json, GError **error)
{
  char *vocab_file = g_build_filename (dir, "vocab.json", NULL);
  char *merges_file = g_build_filename (dir, "merges.txt", NULL);
  char *cfg_file = g_build_filename (dir, "tokenizer_config.json", NULL);
  JsonParser *cfg_parser = json_parser_new_immutable (), *vocab_parser = json_parser_new_immutable ();
  JsonObject *cfg = NULL, *vocab = NULL;
  char *vocab_text = NULL, *merges_text = NULL, **lines = NULL, *result = NULL;
  const char *cls = NULL;
  gsize vocab_len = 0;
  GError *jerr = NULL;
  GString *out = NULL;

  if (!g_file_test (vocab_file, G_FILE_TEST_EXISTS)
      || !g_file_test (merges_file, G_FILE_TEST_EXISTS)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no such file", tokenizer_json);
    goto out;
  }
  if (g_file_test (cfg_file, G_FILE_TEST_EXISTS)) {
    JsonNode *root;
    if (!vlm_json_parse_file (cfg_parser, cfg_file, error))
      goto out;
    root = json_parser_get_root (cfg_parser);
    if (root && JSON_NODE_HOLDS_OBJECT (root)) {
      cfg = json_node_get_object (root);
      cls = config_token (cfg, "tokenizer_class", NULL);
    }
  }
  if (!vlm_tok_is_clip_class (cls)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND,
                 "%s: no such file (vocab.json + merges.txt are read only for a CLIP tokenizer; "
                 "tokenizer_config.json's tokenizer_class is %s%s%s)",
                 tokenizer_json, cls ? "\"" : "", cls ? cls : "absent", cls ? "\"" : "");
    goto out;
  }
  if (!vlm_file_get_contents (vocab_file, &vocab_text, &vocab_len, error)
      || !vlm_file_get_contents (merges_file, &merges_text, NULL, error))
    goto out;
  if (!json_parser_load_from_data (vocab_parser, vocab_text, (gssize) vocab_len, &jerr)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: %s", vocab_file, jerr->message);
    goto out;
  }
  if (!json_parser_get_root (vocab_parser) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (vocab_parser))) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: expected a json object", vocab_file);
    goto out;
  }
  vocab = json_node_get_object (json_parser_get_root (vocab_parser));

  {
    const char *bos = config_token (cfg, "bos_token", "<|startoftext|>");
    const char *eos = config_token (cfg, "eos_token", "<|endoftext|>");
    const char *unk = config_token (cfg, "unk_token", "<|endoftext|>");
    const char *pad = config_token (cfg, "pad_token", "<|endoftext|>");
    const char *specials[4] = { bos, eos, unk, pad };
    GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);
    gboolean first = TRUE;
    int n_merges = 0;
    if (!bos || !eos || !json_object_has_member (vocab, bos) || !json_object_has_member (vocab, eos)) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: bos_token/eos_token %s/%s not in the vocabulary",
                   vocab_file, bos ? bos : "null", eos ? eos : "null");
      g_hash_table_destroy (seen);
      goto out;
    }
    out = g_string_sized_new (vocab_len + strlen (merges_text) * 2 + 4096);
    g_string_append (out, "{\"added_tokens\":[");
    for (int i = 0; i < 4; i++) {
      JsonNode *id;
      if (!specials[i] || g_hash_table_contains (seen, specials[i])
          || !(id = json_object_get_member (vocab, specials[i])) || !JSON_NODE_HOLDS_VALUE (id))
        continue;
      g_hash_table_add (seen, (gpointer) specials[i]);
      g_string_append_printf (out, "%s{\"id\":%" G_GINT64_FORMAT ",\"content\":", first ? "" : ",",
                              json_node_get_int (id));
      append_json_string (out, specials[i]);
      g_string_append (out, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                            "\"normalized\":false,\"special\":true}");
      first = FALSE;
    }
    g_hash_table_destroy (seen);
    g_string_append (out,
      "],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
      "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},{\"type\":\"Lowercase\"}]},"
      "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
      "\"'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|[^\\\\s\\\\p{L}\\\\p{N}]+\"},"
      "\"behavior\":\"Removed\",\"invert\":true},"
      "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}]},"
      "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[");
    append_json_string (out, eos);
    g_string_append_printf (out, ",%" G_GINT64_FORMAT "],\"cls\":[", json_object_get_int_member (vocab, eos));
    append_json_string (out, bos);
    g_string_append_printf (out, ",%" G_GINT64_FORMAT "],\"trim_offsets\":false,\"add_prefix_space\":false},"
                            "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
                            "\"use_regex\":true},"
                            "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":",
                            json_object_get_int_member (vocab, bos));
    if (unk)
      append_json_string (out, unk);
    else
      g_string_append (out, "null");
    g_string_append (out, ",\"continuing_subword_prefix\":\"\",\"end_of_word_suffix\":\"</w>\","
                          "\"fuse_unk\":false,\"byte_fallback\":false,\"vocab\":");
    g_string_append_len (out, vocab_text, (gssize) vocab_len);
    g_string_append (out, ",\"merges\":[");
    /* CLIPTokenizer: merges.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1] */
    g_strstrip (merges_text);
    lines = g_strsplit (merges_text, "\n", -1);
    for (int i = 1; lines[0] && lines[i] && i < 49152 - 256 - 2 + 1; i++) {
      char **parts = g_strsplit_set (g_strstrip (lines[i]), " \t\r", -1);
      GString *pair = g_string_new (NULL);
      int k = 0;
      for (char **p = parts; *p; p++)
        if (**p)
          g_string_append_printf (pair, k++ ? " %s" : "%s", *p);
      g_strfreev (parts);
      if (k != 2) {
        g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: line %d: expected two symbols",
                     merges_file, i + 1);
        g_string_free (pair, TRUE);
        goto out;
      }
      if (n_merges++)
        g_string_append_c (out, ',');
      append_json_string (out, pair->str);
      g_string_free (pair, TRUE);
    }
    g_string_append (out, "]}}");
    result = g_string_free (out, FALSE);
    out = NULL;
  }

out:
  if (out)
    g_string_free (out, TRUE);
  g_clear_error (&jerr);
  g_strfreev (lines);
  g_free (vocab_text);
  g_free (merges_text);
  g_object_unref (cfg_parser);
  g_object_unref (vocab_parser);
  g_free (cfg_file);
  g_free (merges_file);
  g_free (vocab_file);
  return result;
}
