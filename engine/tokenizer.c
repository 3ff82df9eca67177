/* tokenizer.c — HF `tokenizer.json` tokenizers (see tokenizer.h): loading,
 * added tokens, the post-processor, encode and decode. The stages are in
 * tok_normalize.c (normalizers, pre-tokenizers), tok_models.c (BPE,
 * WordPiece), tok_decoders.c and tok_convert.c (tokenizer.json from older
 * files); their shared types in tok.h.
 *
 * encode mirrors HF tokenizers' TokenizerImpl::encode:
 *   raw text ─▶ split out added tokens that are matched un-normalized
 *            ─▶ normalizer, on each remaining piece
 *            ─▶ split out added tokens that are matched normalized
 *            ─▶ pre-tokenizer ─▶ model (BPE or WordPiece) on each pre-token
 *            ─▶ post-processor template (add_special only)
 * decode: ids ─▶ tokens (specials skipped on request) ─▶ decoder chain
 *            ─▶ clean_up_tokenization_spaces (tokenizer_config.json).
 *
 * Everything in the file is parsed and checked at load, so encode and decode
 * never fail on configuration. Truncation and padding are ignored: the caller
 * decides sequence lengths.
 * ref: huggingface/tokenizers, tokenizers/src/{normalizers,pre_tokenizers,
 *      models/bpe,models/wordpiece,decoders,processors,tokenizer/added_vocabulary.rs}
 */
#include "tokenizer.h"
#include "tok.h"
#include "file.h"

#include <string.h>

/* ───────────────────────── json access ───────────────────────── */

/* A token id: a non-negative integer node. */
static gboolean
node_to_id (JsonNode *n, int *id)
{
  if (!vlm_json_node_is (n, G_TYPE_INT64) || json_node_get_int (n) < 0 || json_node_get_int (n) >= G_MAXINT)
    return FALSE;
  *id = (int) json_node_get_int (n);
  return TRUE;
}

/* ───────────────────────── loading: added tokens ───────────────────────── */

static gint
added_longest_first (gconstpointer a, gconstpointer b)
{
  const AddedToken *x = a, *y = b;
  return x->match_len < y->match_len ? 1 : x->match_len > y->match_len ? -1 : x->id - y->id;
}

static gboolean
parse_added_token (VlmTokenizer *tok, JsonNode *node, guint i, AddedToken *t, GError **error)
{
  char *where = g_strdup_printf ("added_tokens[%u]", i);
  JsonObject *o = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *content;
  gboolean ok = o != NULL;
  if (!ok)
    vlm_json_bad_key (error, where, "", "an object");
  ok = ok && vlm_json_req_string (o, where, "content", &content, error);
  ok = ok && (node_to_id (vlm_json_member (o, "id"), &t->id) || vlm_json_bad_key (error, where, "id", "a token id"));
  ok = ok && (*content || vlm_json_bad_key (error, where, "content", "a non-empty string"));
  ok = ok && vlm_json_opt_bool (o, where, "special", &t->special, error)
       && vlm_json_opt_bool (o, where, "single_word", &t->single_word, error)
       && vlm_json_opt_bool (o, where, "lstrip", &t->lstrip, error)
       && vlm_json_opt_bool (o, where, "rstrip", &t->rstrip, error)
       && vlm_json_opt_bool (o, where, "normalized", &t->normalized, error);
  g_free (where);
  if (!ok)
    return FALSE;
  t->content = g_string_chunk_insert (tok->strings, content);
  return TRUE;
}

/* Reads added_tokens; needs the normalizer for tokens matched normalized. */
static gboolean
parse_added_tokens (VlmTokenizer *tok, JsonObject *root, GError **error)
{
  JsonNode *n = vlm_json_member (root, "added_tokens");
  JsonArray *list;
  if (!n)
    return TRUE;
  if (!(list = vlm_json_req_array (root, "", "added_tokens", error)))
    return FALSE;
  tok->added = g_new0 (AddedToken, json_array_get_length (list));
  for (guint i = 0; i < json_array_get_length (list); i++) {
    AddedToken *t = &tok->added[tok->n_added];
    if (!parse_added_token (tok, json_array_get_element (list, i), i, t, error))
      return FALSE;
    tok->n_added++;
    /* HF matches a normalized token against normalized text, so its content
     * goes through the same normalizer. */
    if (t->normalized && tok->normalizer) {
      char *m = vlm_tok_normalize (tok->normalizer, t->content);
      t->match = g_string_chunk_insert (tok->strings, m);
      g_free (m);
    } else {
      t->match = t->content;
    }
    t->match_len = strlen (t->match);
    if (t->match_len > 0)
      tok->added_first_byte[t->normalized][(guchar) t->match[0] >> 3] |= 1 << (t->match[0] & 7);
    tok->n_ids = MAX (tok->n_ids, t->id + 1);
  }
  if (tok->n_added)   /* an empty added_tokens leaves tok->added NULL, which qsort may not see */
    qsort (tok->added, tok->n_added, sizeof (AddedToken), added_longest_first);
  return TRUE;
}

/* id → token for the model vocab, then added tokens on top (HF looks them up first).
 * The table has an entry for every id up to the largest: a file of `len`
 * bytes names fewer ids than that, so a larger id is refused, not allocated
 * (an id near G_MAXINT would be a 16 GiB table). */
static gboolean
build_id_table (VlmTokenizer *tok, gsize len, GError **error)
{
  GHashTableIter it;
  gpointer k, v;
  if ((gsize) tok->n_ids > len) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "token id %d exceeds the ids a %" G_GSIZE_FORMAT "-byte file can define",
                 tok->n_ids - 1, len);
    return FALSE;
  }
  tok->id_to_token = g_new0 (const char *, tok->n_ids);
  tok->is_special = g_new0 (gboolean, tok->n_ids);
  g_hash_table_iter_init (&it, tok->vocab);
  while (g_hash_table_iter_next (&it, &k, &v))
    tok->id_to_token[GPOINTER_TO_INT (v)] = k;
  for (int i = 0; i < tok->n_added; i++) {
    tok->id_to_token[tok->added[i].id] = tok->added[i].content;
    tok->is_special[tok->added[i].id] = tok->added[i].special;
  }
  return TRUE;
}

/* ───────────────────────── loading: post-processor ───────────────────────── */

/* Replaces SEQ_SLOT in `outer` by `inner`: the composition of two templates. */
static GArray *
compose_templates (GArray *outer, GArray *inner)
{
  GArray *out = g_array_new (TRUE, FALSE, sizeof (int));
  for (guint i = 0; i < outer->len; i++) {
    int v = g_array_index (outer, int, i);
    if (v == SEQ_SLOT)
      g_array_append_vals (out, inner->data, inner->len);
    else
      g_array_append_val (out, v);
  }
  return out;
}

/* The ids of special token `name` in TemplateProcessing's special_tokens. */
static gboolean
template_special_ids (JsonObject *specials, const char *where, const char *name, GArray *out,
                      GError **error)
{
  char *w = g_strdup_printf ("%s.special_tokens", where);
  JsonObject *entry = vlm_json_req_object (specials, w, name, error);
  JsonArray *ids = entry ? vlm_json_req_array (entry, w, "ids", error) : NULL;
  gboolean ok = ids != NULL;
  for (guint j = 0; ok && j < json_array_get_length (ids); j++) {
    int id;
    ok = node_to_id (json_array_get_element (ids, j), &id);
    if (ok)
      g_array_append_val (out, id);
    else
      vlm_json_bad_key (error, w, name, "{\"ids\": [token ids]}");
  }
  g_free (w);
  return ok;
}

/* TemplateProcessing "single": [{"SpecialToken": {"id": name}} | {"Sequence": …}]. */
static gboolean
parse_template (JsonObject *o, const char *where, GArray *out, GError **error)
{
  JsonArray *single = vlm_json_req_array (o, where, "single", error);
  JsonObject *specials = single ? vlm_json_req_object (o, where, "special_tokens", error) : NULL;
  if (!specials)
    return FALSE;
  for (guint i = 0; i < json_array_get_length (single); i++) {
    JsonNode *item = json_array_get_element (single, i);
    char *w = g_strdup_printf ("%s.single[%u]", where, i);
    JsonObject *io = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
    JsonObject *sp = io && !vlm_json_member (io, "Sequence") ? vlm_json_req_object (io, w, "SpecialToken", error) : NULL;
    const char *name = NULL;
    gboolean ok;
    if (io && vlm_json_member (io, "Sequence"))
      ok = TRUE, g_array_append_val (out, (int) { SEQ_SLOT });
    else if (!io)
      ok = vlm_json_bad_key (error, w, "", "an object");
    else
      ok = sp && vlm_json_req_string (sp, w, "id", &name, error)
           && template_special_ids (specials, where, name, out, error);
    g_free (w);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

/* BertProcessing / RobertaProcessing: "cls": [token, id], "sep": [token, id]. */
static gboolean
parse_cls_sep (JsonObject *o, const char *where, GArray *out, GError **error)
{
  int ids[2];
  const char *keys[2] = { "cls", "sep" };
  for (int i = 0; i < 2; i++) {
    JsonArray *pair = vlm_json_req_array (o, where, keys[i], error);
    if (!pair)
      return FALSE;
    if (json_array_get_length (pair) != 2 || !node_to_id (json_array_get_element (pair, 1), &ids[i]))
      return vlm_json_bad_key (error, where, keys[i], "[token, id]");
  }
  g_array_append_val (out, ids[0]);
  g_array_append_val (out, (int) { SEQ_SLOT });
  g_array_append_val (out, ids[1]);
  return TRUE;
}

/* Reduces a post-processor (tree) to one template of ids around SEQ_SLOT.
 * *out is always set (free it even on failure). */
static gboolean
parse_post_processor (JsonNode *node, const char *where, GArray **out, GError **error)
{
  JsonObject *o = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonArray *list;
  const char *type;
  *out = g_array_new (FALSE, FALSE, sizeof (int));
  if (!o)
    return vlm_json_bad_key (error, where, "", "an object");
  if (!vlm_json_req_string (o, where, "type", &type, error))
    return FALSE;
  if (strcmp (type, "TemplateProcessing") == 0)
    return parse_template (o, where, *out, error);
  if (strcmp (type, "BertProcessing") == 0 || strcmp (type, "RobertaProcessing") == 0)
    return parse_cls_sep (o, where, *out, error);
  g_array_append_val (*out, (int) { SEQ_SLOT });
  if (strcmp (type, "ByteLevel") == 0)   /* only moves offsets */
    return TRUE;
  if (strcmp (type, "Sequence") != 0)
    return vlm_tok_unsupported (error, where, type);
  if (!(list = vlm_json_req_array (o, where, "processors", error)))
    return FALSE;
  for (guint i = 0; i < json_array_get_length (list); i++) {
    char *w = g_strdup_printf ("%s.processors[%u]", where, i);
    GArray *child, *composed;
    gboolean ok = parse_post_processor (json_array_get_element (list, i), w, &child, error);
    g_free (w);
    /* Sequence applies its processors in turn: later ones wrap earlier ones. */
    composed = compose_templates (child, *out);
    g_array_unref (child);
    g_array_unref (*out);
    *out = composed;
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

/* ───────────────────────── load / free ───────────────────────── */

static gboolean
parse_root (VlmTokenizer *tok, JsonObject *root, const RawModel *raw, GError **error)
{
  JsonNode *pp;
  if (!vlm_tok_parse_model (tok, root, raw, error))
    return FALSE;
  if (vlm_json_member (root, "normalizer")
      && !vlm_tok_parse_step (&vlm_tok_normalizer_family, vlm_json_member (root, "normalizer"), "normalizer", &tok->normalizer, error))
    return FALSE;
  if (vlm_json_member (root, "pre_tokenizer")
      && !vlm_tok_parse_step (&vlm_tok_pre_tokenizer_family, vlm_json_member (root, "pre_tokenizer"), "pre_tokenizer",
                      &tok->pre_tokenizer, error))
    return FALSE;
  if (vlm_json_member (root, "decoder")
      && !vlm_tok_parse_step (&vlm_tok_decoder_family, vlm_json_member (root, "decoder"), "decoder", &tok->decoder, error))
    return FALSE;
  if ((pp = vlm_json_member (root, "post_processor"))
      && !parse_post_processor (pp, "post_processor", &tok->template, error))
    return FALSE;
  return parse_added_tokens (tok, root, error) && build_id_table (tok, raw->len, error);
}

/* clean_up_tokenization_spaces from tokenizer_config.json beside `file`, if
 * there is one; absent means no cleanup (the transformers 5 default). A CLIP
 * tokenizer_class with an end_of_word_suffix decodes as CLIPTokenizerFast
 * does: the suffix becomes a space, the text is stripped. */
static gboolean
read_tokenizer_config (VlmTokenizer *tok, const char *file, GError **error)
{
  char *dir = g_path_get_dirname (file);
  char *cfg = g_build_filename (dir, "tokenizer_config.json", NULL);
  JsonParser *parser = json_parser_new_immutable ();
  gboolean ok = TRUE;
  if (g_file_test (cfg, G_FILE_TEST_EXISTS)) {
    JsonNode *root;
    ok = vlm_json_parse_file (parser, cfg, error);
    root = ok ? json_parser_get_root (parser) : NULL;
    if (root && JSON_NODE_HOLDS_OBJECT (root)) {
      JsonNode *cls = json_object_get_member (json_node_get_object (root), "tokenizer_class");
      ok = vlm_json_opt_bool (json_node_get_object (root), "", "clean_up_tokenization_spaces",
                     &tok->clean_up_spaces, error);
      if (!ok)
        g_prefix_error (error, "%s: ", cfg);
      if (cls && JSON_NODE_HOLDS_VALUE (cls) && json_node_get_value_type (cls) == G_TYPE_STRING
          && vlm_tok_is_clip_class (json_node_get_string (cls)) && tok->word_suffix)
        tok->clip_decode = TRUE;
    }
  }
  g_object_unref (parser);
  g_free (cfg);
  g_free (dir);
  return ok;
}

void
vlm_tokenizer_free (VlmTokenizer *tok)
{
  if (!tok)
    return;
  if (tok->vocab)
    g_hash_table_unref (tok->vocab);
  g_string_chunk_free (tok->strings);
  g_free (tok->id_to_token);
  g_free (tok->is_special);
  g_free (tok->merges);
  g_free (tok->subword_prefix);
  g_free (tok->word_suffix);
  g_free (tok->added);
  vlm_tok_step_free (tok->normalizer);
  vlm_tok_step_free (tok->pre_tokenizer);
  vlm_tok_step_free (tok->decoder);
  if (tok->template)
    g_array_unref (tok->template);
  g_free (tok);
}

/* The file text with raw->vocab and raw->merges replaced by empty containers,
 * for json-glib. */
static char *
cut_raw_members (const char *text, gsize len, const RawModel *raw)
{
  Range cuts[2] = { raw->vocab, raw->merges };
  const char *fill[2] = { "{}", "[]" };
  GString *out = g_string_sized_new (len);
  const char *at = text;
  int first = cuts[1].start && (!cuts[0].start || cuts[1].start < cuts[0].start);
  for (int k = 0; k < 2; k++) {
    int i = k ^ first;   /* in file order */
    if (!cuts[i].start)
      continue;
    g_string_append_len (out, at, cuts[i].start - at);
    g_string_append (out, fill[i]);
    at = cuts[i].end;
  }
  g_string_append_len (out, at, text + len - at);
  return g_string_free (out, FALSE);
}

/* Parses the text of tokenizer.json (`file` names it in messages). */
static VlmTokenizer *
load_text (const char *file, const char *text, gsize len, GError **error)
{
  RawModel raw = { vlm_tok_locate_model_member (text, len, "vocab"),
                   vlm_tok_locate_model_member (text, len, "merges"), text, len };
  char *rest = cut_raw_members (text, len, &raw);
  JsonParser *parser = json_parser_new_immutable ();
  GError *jerr = NULL;
  JsonNode *root;
  VlmTokenizer *tok = NULL;
  if (!json_parser_load_from_data (parser, rest, -1, &jerr)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: %s", file, jerr->message);
    g_error_free (jerr);
  } else if (!(root = json_parser_get_root (parser)) || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: expected a json object", file);
  } else {
    tok = g_new0 (VlmTokenizer, 1);
    tok->strings = g_string_chunk_new (1 << 16);
    tok->unk_id = -1;
    vlm_tok_byte_level_tables (tok);
    if (!parse_root (tok, json_node_get_object (root), &raw, error)) {
      g_prefix_error (error, "%s: ", file);
      g_clear_pointer (&tok, vlm_tokenizer_free);
    }
  }
  g_object_unref (parser);
  g_free (rest);
  return tok;
}

VlmTokenizer *
vlm_tokenizer_load (const char *path, GError **error)
{
  char *file, *text = NULL;
  gsize len = 0;
  VlmTokenizer *tok = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  file = g_file_test (path, G_FILE_TEST_IS_DIR) ? g_build_filename (path, "tokenizer.json", NULL)
                                                : g_strdup (path);
  if (!g_file_test (file, G_FILE_TEST_EXISTS) && g_file_test (path, G_FILE_TEST_IS_DIR)) {
    /* No tokenizer.json: a CLIP tokenizer's vocab.json + merges.txt, converted. */
    char *json = vlm_tok_clip_tokenizer_json (path, file, error);
    if (json) {
      char *vocab_file = g_build_filename (path, "vocab.json", NULL);
      if ((tok = load_text (vocab_file, json, strlen (json), error))
          && !read_tokenizer_config (tok, vocab_file, error))
        g_clear_pointer (&tok, vlm_tokenizer_free);
      g_free (vocab_file);
      g_free (json);
    }
  } else if (vlm_file_get_contents (file, &text, &len, error)
             && (tok = load_text (file, text, len, error)) && !read_tokenizer_config (tok, file, error))
    g_clear_pointer (&tok, vlm_tokenizer_free);
  g_free (text);
  g_free (file);
  return tok;
}

/* ───────────────────────── added tokens ───────────────────────── */

/* The longest added token of the `normalized` class matching at `s`, or NULL. */
static const AddedToken *
added_at (const VlmTokenizer *tok, const char *s, gsize left, gboolean normalized)
{
  guchar c = (guchar) *s;
  if (!(tok->added_first_byte[normalized][c >> 3] & (1 << (c & 7))))
    return NULL;
  for (int i = 0; i < tok->n_added; i++) {
    const AddedToken *t = &tok->added[i];
    if (t->normalized == normalized && t->match_len <= left && memcmp (s, t->match, t->match_len) == 0)
      return t;
  }
  return NULL;
}

/* HF single_word: the match may not touch a word character on either side. */
static gboolean
single_word_ok (const char *text, gsize start, gsize stop)
{
  if (start > 0 && vlm_tok_is_word_char (g_utf8_get_char (g_utf8_prev_char (text + start))))
    return FALSE;
  return !(text[stop] && vlm_tok_is_word_char (g_utf8_get_char (text + stop)));
}

/* Splits `text` at added tokens of the `normalized` class, leftmost and longest
 * first as HF's Aho-Corasick does, lstrip/rstrip taking adjacent whitespace
 * into the token. Appends text pieces and token pieces to `out`. */
static void
split_added (const VlmTokenizer *tok, const char *text, gboolean normalized, gboolean at_start,
             GArray *out)
{
  gsize len = strlen (text), piece = 0, pos = 0;
  while (pos < len) {
    const AddedToken *t = added_at (tok, text + pos, len - pos, normalized);
    gsize start = pos, stop;
    if (!t) {
      pos++;   /* token matches start on a char boundary, so bytes are fine steps */
      continue;
    }
    stop = pos + t->match_len;
    if (t->single_word && !single_word_ok (text, start, stop)) {
      pos = stop;
      continue;
    }
    while (t->lstrip && start > piece
           && g_unichar_isspace (g_utf8_get_char (g_utf8_prev_char (text + start))))
      start = (gsize) (g_utf8_prev_char (text + start) - text);
    while (t->rstrip && stop < len && g_unichar_isspace (g_utf8_get_char (text + stop)))
      stop = (gsize) (g_utf8_next_char (text + stop) - text);
    if (start > piece)
      vlm_tok_push_text (out, text + piece, start - piece, at_start && piece == 0);
    g_array_append_val (out, ((Piece) { NULL, t->id, FALSE }));
    piece = pos = stop;
  }
  if (piece < len)
    vlm_tok_push_text (out, text + piece, len - piece, at_start && piece == 0);
}

/* ───────────────────────── encode ───────────────────────── */

/* Normalizes one raw text piece, splits out normalized added tokens, then
 * pre-tokenizes and runs the model on the rest. */
static void
encode_raw_piece (const VlmTokenizer *tok, const Piece *raw, GArray *ids)
{
  char *norm = tok->normalizer ? vlm_tok_normalize (tok->normalizer, raw->text) : g_strdup (raw->text);
  GArray *parts = vlm_tok_pieces_new ();
  split_added (tok, norm, TRUE, raw->at_start, parts);
  g_free (norm);
  for (guint i = 0; i < parts->len; i++) {
    Piece *p = &g_array_index (parts, Piece, i);
    GArray *words;
    if (p->id >= 0) {
      g_array_append_val (ids, p->id);
      continue;
    }
    words = vlm_tok_pieces_new ();
    g_array_append_val (words, *p);
    p->text = NULL;   /* moved into words */
    if (tok->pre_tokenizer)
      words = vlm_tok_pre_tokenize (tok, tok->pre_tokenizer, words);
    for (guint w = 0; w < words->len; w++) {
      const char *text = g_array_index (words, Piece, w).text;
      if (tok->model == MODEL_BPE)
        vlm_tok_bpe_word (tok, text, ids);
      else
        vlm_tok_wordpiece_word (tok, text, ids);
    }
    g_array_unref (words);
  }
  g_array_unref (parts);
}

int *
vlm_tokenizer_encode (const VlmTokenizer *tok, const char *text, gboolean add_special, int *n_ids,
                      GError **error)
{
  GArray *ids, *raw;
  g_return_val_if_fail (tok != NULL && text != NULL && n_ids != NULL, NULL);
  *n_ids = 0;
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "text to encode is not valid UTF-8");
    return NULL;
  }
  ids = g_array_new (TRUE, FALSE, sizeof (int));   /* zero-terminated: never NULL when empty */
  raw = vlm_tok_pieces_new ();
  split_added (tok, text, FALSE, TRUE, raw);
  for (guint i = 0; i < raw->len; i++) {
    const Piece *p = &g_array_index (raw, Piece, i);
    if (p->id >= 0)
      g_array_append_val (ids, p->id);
    else
      encode_raw_piece (tok, p, ids);
  }
  g_array_unref (raw);
  if (add_special && tok->template) {
    GArray *wrapped = compose_templates (tok->template, ids);
    g_array_unref (ids);
    ids = wrapped;
  }
  *n_ids = (int) ids->len;
  return (int *) g_array_free (ids, FALSE);
}

char *
vlm_tokenizer_decode (const VlmTokenizer *tok, const int *ids, int n_ids, gboolean skip_special)
{
  GPtrArray *tokens;
  char *text;
  g_return_val_if_fail (tok != NULL && (ids != NULL || n_ids <= 0), NULL);
  tokens = vlm_tok_strings_new ();
  for (int i = 0; i < n_ids; i++) {
    const char *t = vlm_tokenizer_id_to_token (tok, ids[i]);
    if (t && !(skip_special && tok->is_special[ids[i]]))
      g_ptr_array_add (tokens, g_strdup (t));
  }
  if (tok->decoder)
    tokens = vlm_tok_decode_chain (tok, tok->decoder, tokens);
  g_ptr_array_add (tokens, NULL);
  /* Without a decoder HF joins tokens with spaces. */
  text = g_strjoinv (tok->decoder ? "" : " ", (char **) tokens->pdata);
  g_ptr_array_unref (tokens);
  if (tok->clip_decode) {
    char **parts = g_strsplit (text, tok->word_suffix, -1);
    g_free (text);
    text = g_strstrip (g_strjoinv (" ", parts));
    g_strfreev (parts);
  }
  if (tok->clean_up_spaces) {
    char *clean = vlm_tok_cleanup_spaces (text, FALSE);
    g_free (text);
    text = clean;
  }
  return text;
}

/* ───────────────────────── vocabulary access ───────────────────────── */

/* One past the largest id, model vocab and added tokens together. */
int
vlm_tokenizer_vocab_size (const VlmTokenizer *tok)
{
  return tok ? tok->n_ids : 0;
}

int
vlm_tokenizer_token_to_id (const VlmTokenizer *tok, const char *token)
{
  g_return_val_if_fail (tok != NULL && token != NULL, -1);
  for (int i = 0; i < tok->n_added; i++) {
    if (strcmp (tok->added[i].content, token) == 0)
      return tok->added[i].id;
  }
  return vlm_tok_vocab_id (tok, token);
}

const char *
vlm_tokenizer_id_to_token (const VlmTokenizer *tok, int id)
{
  g_return_val_if_fail (tok != NULL, NULL);
  return id >= 0 && id < tok->n_ids ? tok->id_to_token[id] : NULL;
}

gboolean
vlm_tokenizer_is_special (const VlmTokenizer *tok, int id)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  return id >= 0 && id < tok->n_ids && tok->is_special[id];
}

int *
vlm_tokenizer_encode_after (const VlmTokenizer *tok, int first, const char *text, int *n_ids, GError **error)
{
  int n_text = 0;
  g_autofree int *ids = NULL;
  if (text && *text && !(ids = vlm_tokenizer_encode (tok, text, FALSE, &n_text, error)))
    return NULL;
  int *out = g_new (int, n_text + 1);
  out[0] = first;
  if (n_text)
    memcpy (out + 1, ids, n_text * sizeof (int));
  *n_ids = n_text + 1;
  return out;
}
