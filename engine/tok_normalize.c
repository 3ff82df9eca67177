/* tok_normalize.c — the tokenizer's first stages: normalizers (Unicode
 * forms, BERT cleaning, Strip, Replace, ...) and pre-tokenizers (Split,
 * ByteLevel, Metaspace, ...), parsed from tokenizer.json and run on text.
 * ref: huggingface/tokenizers, tokenizers/src/{normalizers,pre_tokenizers} */
#include "tok.h"

#include <string.h>

/* ───────────────────────── unicode helpers ───────────────────────── */

/* GPT-2's reversible byte → visible char map: printable Latin-1 bytes map to
 * themselves, the other 68 to U+0100.. in byte order. */
void
vlm_tok_byte_level_tables (VlmTokenizer *tok)
{
  int n = 0;
  for (int i = 0; i < 324; i++)
    tok->char_to_byte[i] = -1;
  for (int b = 0; b < 256; b++) {
    gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    tok->byte_to_char[b] = printable ? (gunichar) b : (gunichar) (256 + n++);
    tok->char_to_byte[tok->byte_to_char[b]] = (gint16) b;
  }
}

/* BERT's notion of whitespace (clean_text turns it into ' '). */
static gboolean
bert_is_whitespace (gunichar c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r'
         || g_unichar_type (c) == G_UNICODE_SPACE_SEPARATOR;
}

/* BERT's control characters (clean_text drops them); \t \n \r are whitespace. */
static gboolean
bert_is_control (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  if (c == '\t' || c == '\n' || c == '\r')
    return FALSE;
  return t == G_UNICODE_CONTROL || t == G_UNICODE_FORMAT || t == G_UNICODE_UNASSIGNED
         || t == G_UNICODE_PRIVATE_USE || t == G_UNICODE_SURROGATE;
}

/* The CJK Unified Ideograph blocks BERT surrounds with spaces. */
static gboolean
is_cjk (gunichar c)
{
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)
         || (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F)
         || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF)
         || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* HF single_word: a word char is alphanumeric or '_'. */
gboolean
vlm_tok_is_word_char (gunichar c)
{
  return g_unichar_isalnum (c) || c == '_';
}

/* Length of the maximal invalid UTF-8 subsequence at b (n >= 1 bytes), the
 * unit String::from_utf8_lossy replaces with one U+FFFD. */
static gsize
invalid_utf8_len (const guchar *b, gsize n)
{
  guchar lo = 0x80, hi = 0xBF;
  gsize need, k;
  if (b[0] >= 0xC2 && b[0] <= 0xDF)
    need = 1;
  else if (b[0] >= 0xE0 && b[0] <= 0xEF)
    need = 2, lo = b[0] == 0xE0 ? 0xA0 : 0x80, hi = b[0] == 0xED ? 0x9F : 0xBF;
  else if (b[0] >= 0xF0 && b[0] <= 0xF4)
    need = 3, lo = b[0] == 0xF0 ? 0x90 : 0x80, hi = b[0] == 0xF4 ? 0x8F : 0xBF;
  else
    return 1;
  for (k = 1; k <= need && k < n; k++) {
    if (b[k] < (k == 1 ? lo : 0x80) || b[k] > (k == 1 ? hi : 0xBF))
      break;
  }
  return k;
}

/* Appends n bytes as UTF-8 the way Rust's from_utf8_lossy does (HF decoders
 * use it). NUL bytes are dropped: the result is a C string. */
void
vlm_tok_append_lossy (GString *out, const guchar *b, gsize n)
{
  gsize i = 0;
  while (i < n) {
    const char *end;
    gsize good;
    if (g_utf8_validate_len ((const char *) b + i, n - i, &end)) {
      g_string_append_len (out, (const char *) b + i, n - i);
      return;
    }
    good = (gsize) (end - (const char *) (b + i));
    g_string_append_len (out, (const char *) b + i, good);
    i += good;
    if (b[i] == 0) {
      i++;
      continue;
    }
    i += invalid_utf8_len (b + i, n - i);
    g_string_append (out, "\xEF\xBF\xBD");
  }
}

/* Drops non-spacing marks (after NFD: the accents). */
static char *
drop_marks (const char *text)
{
  GString *out = g_string_sized_new (strlen (text));
  for (const char *p = text; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    if (g_unichar_type (c) != G_UNICODE_NON_SPACING_MARK)
      g_string_append_unichar (out, c);
  }
  return g_string_free (out, FALSE);
}

/* Replaces every occurrence of each pairs[i][0] by pairs[i][1], in order. */
char *
vlm_tok_replace_all (const char *text, const char *const pairs[][2], int n_pairs)
{
  char *cur = g_strdup (text);
  for (int i = 0; i < n_pairs; i++) {
    char **parts = g_strsplit (cur, pairs[i][0], -1);
    g_free (cur);
    cur = g_strjoinv (pairs[i][1], parts);
    g_strfreev (parts);
  }
  return cur;
}

/* ───────────────────────── parsing the steps ───────────────────────── */

/* `pattern`: {"String": literal} or {"Regex": pcre}; compiled either way. */
static gboolean
parse_pattern (Step *s, JsonObject *o, const char *where, GError **error)
{
  JsonObject *p = vlm_json_req_object (o, where, "pattern", error);
  const char *lit, *re;
  char *src, *pw;
  GError *rerr = NULL;
  if (!p)
    return FALSE;
  pw = g_strconcat (where, ".pattern", NULL);
  if (!vlm_json_opt_string (p, pw, "String", &lit, error) || !vlm_json_opt_string (p, pw, "Regex", &re, error)) {
    g_free (pw);
    return FALSE;
  }
  if (!lit && !re) {
    g_free (pw);
    return vlm_json_bad_key (error, where, "pattern", "{\"String\": …} or {\"Regex\": …}");
  }
  src = lit ? g_regex_escape_string (lit, -1) : g_strdup (re);
  /* No G_REGEX_OPTIMIZE: PCRE2's JIT gains little on prompt-sized text and
   * its generated code trips valgrind. */
  s->pattern = g_regex_new (src, 0, 0, &rerr);
  g_free (src);
  if (!s->pattern) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: bad regex: %s", pw, rerr->message);
    g_error_free (rerr);
  }
  g_free (pw);
  return s->pattern != NULL;
}

/* Compiles one of our own fixed patterns (cannot fail). */
static GRegex *
fixed_regex (const char *src)
{
  GRegex *re = g_regex_new (src, 0, 0, NULL);
  g_assert (re);
  return re;
}

static gboolean
parse_bert_normalizer (Step *s, JsonObject *o, const char *where, GError **error)
{
  JsonNode *sa = vlm_json_member (o, "strip_accents");
  s->clean_text = s->chinese_chars = s->lowercase = TRUE;
  if (!vlm_json_opt_bool (o, where, "clean_text", &s->clean_text, error)
      || !vlm_json_opt_bool (o, where, "handle_chinese_chars", &s->chinese_chars, error)
      || !vlm_json_opt_bool (o, where, "lowercase", &s->lowercase, error))
    return FALSE;
  /* strip_accents: null means "as lowercase" (BERT uncased strips, cased keeps). */
  s->strip_accents = s->lowercase;
  return sa ? vlm_json_opt_bool (o, where, "strip_accents", &s->strip_accents, error) : TRUE;
}

static gboolean
parse_prepend (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *p;
  if (!vlm_json_req_string (o, where, "prepend", &p, error))
    return FALSE;
  s->content = g_strdup (p);
  return TRUE;
}

gboolean
vlm_tok_parse_replace (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *c;
  if (!parse_pattern (s, o, where, error) || !vlm_json_req_string (o, where, "content", &c, error))
    return FALSE;
  s->content = g_strdup (c);
  return TRUE;
}

static gboolean
parse_strip_normalizer (Step *s, JsonObject *o, const char *where, GError **error)
{
  s->left = s->right = TRUE;
  return vlm_json_opt_bool (o, where, "strip_left", &s->left, error)
         && vlm_json_opt_bool (o, where, "strip_right", &s->right, error);
}

static gboolean
parse_split (Step *s, JsonObject *o, const char *where, GError **error)
{
  static const char *const names[] = { "Removed", "Isolated", "MergedWithPrevious",
                                       "MergedWithNext", "Contiguous" };
  const char *b;
  if (!parse_pattern (s, o, where, error) || !vlm_json_req_string (o, where, "behavior", &b, error)
      || !vlm_json_opt_bool (o, where, "invert", &s->invert, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    if (strcmp (b, names[i]) == 0) {
      s->behavior = (SplitBehavior) i;
      return TRUE;
    }
  }
  return vlm_tok_unsupported (error, where, b);
}

/* Whitespace, WhitespaceSplit, Digits, Punctuation and BertPreTokenizer are
 * fixed Split patterns. */
static gboolean
parse_whitespace (Step *s, JsonObject *o, const char *where, GError **error)
{
  s->pattern = fixed_regex ("\\w+|[^\\w\\s]+");
  s->behavior = SPLIT_REMOVED;
  s->invert = TRUE;
  return TRUE;
}

static gboolean
parse_whitespace_split (Step *s, JsonObject *o, const char *where, GError **error)
{
  s->pattern = fixed_regex ("\\s+");
  s->behavior = SPLIT_REMOVED;
  return TRUE;
}

static gboolean
parse_digits (Step *s, JsonObject *o, const char *where, GError **error)
{
  gboolean individual = FALSE;
  if (!vlm_json_opt_bool (o, where, "individual_digits", &individual, error))
    return FALSE;
  s->pattern = fixed_regex (individual ? "\\p{N}" : "\\p{N}+");
  s->behavior = SPLIT_ISOLATED;
  return TRUE;
}

/* Unicode punctuation (P*) plus all ASCII punctuation, one char per match. */
#define PUNCT_REGEX "[\\p{P}!-/:-@\\[-`{-~]"

static gboolean
parse_punctuation (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *b = NULL;
  if (!vlm_json_opt_string (o, where, "behavior", &b, error))
    return FALSE;
  if (b && strcmp (b, "Isolated") != 0)
    return vlm_tok_unsupported (error, where, b);
  s->pattern = fixed_regex (PUNCT_REGEX);
  s->behavior = SPLIT_ISOLATED;
  return TRUE;
}

/* BertPreTokenizer = split on whitespace (dropped), then isolate punctuation. */
static gboolean
parse_bert_pre_tokenizer (Step *s, JsonObject *o, const char *where, GError **error)
{
  Step *ws = g_new0 (Step, 1), *punct = g_new0 (Step, 1);
  ws->kind = punct->kind = P_SPLIT;
  parse_whitespace_split (ws, o, where, error);
  punct->pattern = fixed_regex (PUNCT_REGEX);
  punct->behavior = SPLIT_ISOLATED;
  s->kind = P_SEQUENCE;
  s->children = g_ptr_array_new_with_free_func ((GDestroyNotify) vlm_tok_step_free);
  g_ptr_array_add (s->children, ws);
  g_ptr_array_add (s->children, punct);
  return TRUE;
}

/* GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is set. */
#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static gboolean
parse_byte_level (Step *s, JsonObject *o, const char *where, GError **error)
{
  gboolean use_regex = TRUE;
  s->add_prefix_space = TRUE;
  if (!vlm_json_opt_bool (o, where, "add_prefix_space", &s->add_prefix_space, error)
      || !vlm_json_opt_bool (o, where, "use_regex", &use_regex, error))
    return FALSE;
  if (use_regex && s->kind == P_BYTE_LEVEL)
    s->pattern = fixed_regex (GPT2_REGEX);
  return TRUE;
}

gboolean
vlm_tok_parse_metaspace (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *rep, *scheme = NULL;
  gboolean add_prefix_space = TRUE;
  char *escaped;
  s->split = TRUE;
  if (!vlm_json_req_string (o, where, "replacement", &rep, error)
      || !vlm_json_opt_string (o, where, "prepend_scheme", &scheme, error)
      || !vlm_json_opt_bool (o, where, "add_prefix_space", &add_prefix_space, error)
      || !vlm_json_opt_bool (o, where, "split", &s->split, error))
    return FALSE;
  if (g_utf8_strlen (rep, -1) != 1)
    return vlm_json_bad_key (error, where, "replacement", "one character");
  /* Older files say add_prefix_space; newer ones prepend_scheme. */
  s->prepend = add_prefix_space ? PREPEND_ALWAYS : PREPEND_NEVER;
  if (scheme && strcmp (scheme, "always") == 0)
    s->prepend = PREPEND_ALWAYS;
  else if (scheme && strcmp (scheme, "first") == 0)
    s->prepend = PREPEND_FIRST;
  else if (scheme && strcmp (scheme, "never") == 0)
    s->prepend = PREPEND_NEVER;
  else if (scheme)
    return vlm_json_bad_key (error, where, "prepend_scheme", "\"always\", \"first\" or \"never\"");
  s->content = g_strdup (rep);
  escaped = g_regex_escape_string (rep, -1);
  s->pattern = fixed_regex (escaped);
  g_free (escaped);
  return TRUE;
}

static const StepType normalizer_types[] = {
  { "NFC", N_NFC, NULL },
  { "NFD", N_NFD, NULL },
  { "NFKC", N_NFKC, NULL },
  { "NFKD", N_NFKD, NULL },
  { "Lowercase", N_LOWERCASE, NULL },
  { "StripAccents", N_STRIP_ACCENTS, NULL },
  { "Strip", N_STRIP, parse_strip_normalizer },
  { "Prepend", N_PREPEND, parse_prepend },
  { "Replace", N_REPLACE, vlm_tok_parse_replace },
  { "BertNormalizer", N_BERT, parse_bert_normalizer },
  { NULL, 0, NULL },
};

static const StepType pre_tokenizer_types[] = {
  { "Split", P_SPLIT, parse_split },
  { "Whitespace", P_SPLIT, parse_whitespace },
  { "WhitespaceSplit", P_SPLIT, parse_whitespace_split },
  { "Digits", P_SPLIT, parse_digits },
  { "Punctuation", P_SPLIT, parse_punctuation },
  { "BertPreTokenizer", P_SEQUENCE, parse_bert_pre_tokenizer },
  { "ByteLevel", P_BYTE_LEVEL, parse_byte_level },
  { "Metaspace", P_METASPACE, vlm_tok_parse_metaspace },
  { NULL, 0, NULL },
};

const StepFamily vlm_tok_normalizer_family = { "normalizer", "normalizers", N_SEQUENCE, normalizer_types };
const StepFamily vlm_tok_pre_tokenizer_family = { "pre_tokenizer", "pretokenizers", P_SEQUENCE,
                                                 pre_tokenizer_types };

/* ───────────────────────── normalizers ───────────────────────── */

/* HF BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase, in that order. */
static char *
bert_normalize (const Step *s, const char *text)
{
  GString *out = g_string_sized_new (strlen (text) + 16);
  char *res;
  for (const char *p = text; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    gboolean pad = s->chinese_chars && is_cjk (c);
    if (s->clean_text && (c == 0xFFFD || bert_is_control (c)))
      continue;
    if (s->clean_text && bert_is_whitespace (c))
      c = ' ';
    if (pad)
      g_string_append_c (out, ' ');
    g_string_append_unichar (out, c);
    if (pad)
      g_string_append_c (out, ' ');
  }
  res = g_string_free (out, FALSE);
  if (s->strip_accents) {
    char *nfd = g_utf8_normalize (res, -1, G_NORMALIZE_NFD);
    g_free (res);
    res = drop_marks (nfd);
    g_free (nfd);
  }
  if (s->lowercase) {
    char *low = g_utf8_strdown (res, -1);
    g_free (res);
    res = low;
  }
  return res;
}

static char *
strip_spaces (const char *text, gboolean left, gboolean right)
{
  const char *b = text, *e = text + strlen (text);
  while (left && *b && g_unichar_isspace (g_utf8_get_char (b)))
    b = g_utf8_next_char (b);
  while (right && e > b && g_unichar_isspace (g_utf8_get_char (g_utf8_prev_char (e))))
    e = g_utf8_prev_char (e);
  return g_strndup (b, (gsize) (e - b));
}

/* Applies normalizer `s` to valid UTF-8 `text`; returns a new string. */
char *
vlm_tok_normalize (const Step *s, const char *text)
{
  switch (s->kind) {
  case N_NFC:
    return g_utf8_normalize (text, -1, G_NORMALIZE_NFC);
  case N_NFD:
    return g_utf8_normalize (text, -1, G_NORMALIZE_NFD);
  case N_NFKC:
    return g_utf8_normalize (text, -1, G_NORMALIZE_NFKC);
  case N_NFKD:
    return g_utf8_normalize (text, -1, G_NORMALIZE_NFKD);
  case N_LOWERCASE:
    return g_utf8_strdown (text, -1);
  case N_STRIP_ACCENTS:
    return drop_marks (text);
  case N_STRIP:
    return strip_spaces (text, s->left, s->right);
  case N_PREPEND:   /* HF prepends only to non-empty text */
    return *text ? g_strconcat (s->content, text, NULL) : g_strdup (text);
  case N_REPLACE:
    return g_regex_replace_literal (s->pattern, text, -1, 0, s->content, 0, NULL);
  case N_BERT:
    return bert_normalize (s, text);
  case N_SEQUENCE: {
    char *cur = g_strdup (text);
    for (guint i = 0; i < s->children->len; i++) {
      char *next = vlm_tok_normalize (g_ptr_array_index (s->children, i), cur);
      g_free (cur);
      cur = next;
    }
    return cur;
  }
  default:
    g_assert_not_reached ();
  }
}

/* ───────────────────────── pieces and splitting ───────────────────────── */

static void
piece_clear (gpointer p)
{
  g_free (((Piece *) p)->text);
}

GArray *
vlm_tok_pieces_new (void)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (Piece));
  g_array_set_clear_func (a, piece_clear);
  return a;
}

void
vlm_tok_push_text (GArray *out, const char *text, gsize len, gboolean at_start)
{
  Piece p = { g_strndup (text, len), -1, at_start };
  g_array_append_val (out, p);
}

typedef struct {
  gsize start, end;
  gboolean is_match;
} Span;

/* Cuts `text` into pattern matches and the gaps between them (HF find_matches);
 * invert swaps which of the two counts as the match. */
static GArray *
match_spans (GRegex *re, const char *text, gboolean invert)
{
  GArray *spans = g_array_new (FALSE, FALSE, sizeof (Span));
  GMatchInfo *mi;
  gsize prev = 0, len = strlen (text);
  g_regex_match (re, text, 0, &mi);
  while (g_match_info_matches (mi)) {
    int s, e;
    g_match_info_fetch_pos (mi, 0, &s, &e);
    if (e > s) {
      if ((gsize) s > prev)
        g_array_append_val (spans, ((Span) { prev, (gsize) s, invert }));
      g_array_append_val (spans, ((Span) { (gsize) s, (gsize) e, !invert }));
      prev = (gsize) e;
    }
    g_match_info_next (mi, NULL);
  }
  g_match_info_free (mi);
  if (prev < len)
    g_array_append_val (spans, ((Span) { prev, len, invert }));
  return spans;
}

/* HF SplitDelimiterBehavior: which spans survive, and which merge into a neighbour. */
static GArray *
apply_behavior (GArray *spans, SplitBehavior b)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (Span));
  gboolean prev_match = FALSE, carry = FALSE;
  gsize carry_start = 0;
  for (guint k = 0; k < spans->len; k++) {
    Span sp = g_array_index (spans, Span, k);
    Span *last = out->len ? &g_array_index (out, Span, out->len - 1) : NULL;
    gboolean next_is_text = k + 1 < spans->len && !g_array_index (spans, Span, k + 1).is_match;
    gboolean merge_back = last && sp.is_match
                          && (b == SPLIT_MERGED_PREVIOUS ? !prev_match : b == SPLIT_CONTIGUOUS && prev_match);
    prev_match = sp.is_match;
    if (b == SPLIT_REMOVED && sp.is_match)
      continue;
    if (merge_back) {
      last->end = sp.end;
    } else if (b == SPLIT_MERGED_NEXT && sp.is_match && next_is_text) {
      carry = TRUE, carry_start = sp.start;
    } else {
      if (carry)
        sp.start = carry_start, carry = FALSE;
      g_array_append_val (out, sp);
    }
  }
  return out;
}

/* Splits piece `p` with `re` and behavior `b` into `out` (HF NormalizedString::split). */
static void
split_piece (const Piece *p, GRegex *re, SplitBehavior b, gboolean invert, GArray *out)
{
  GArray *spans = match_spans (re, p->text, invert);
  GArray *kept = apply_behavior (spans, b);
  for (guint k = 0; k < kept->len; k++) {
    Span sp = g_array_index (kept, Span, k);
    vlm_tok_push_text (out, p->text + sp.start, sp.end - sp.start, p->at_start && sp.start == 0);
  }
  g_array_unref (kept);
  g_array_unref (spans);
}

/* ───────────────────────── pre-tokenizers ───────────────────────── */

/* Maps each byte of `text` to its byte-level char. */
static char *
byte_level_map (const VlmTokenizer *tok, const char *text)
{
  GString *out = g_string_sized_new (2 * strlen (text));
  for (const guchar *b = (const guchar *) text; *b; b++)
    g_string_append_unichar (out, tok->byte_to_char[*b]);
  return g_string_free (out, FALSE);
}

static void
byte_level_pre (const VlmTokenizer *tok, const Step *s, const Piece *p, GArray *out)
{
  Piece whole = { s->add_prefix_space && p->text[0] != ' ' ? g_strconcat (" ", p->text, NULL)
                                                           : g_strdup (p->text),
                  -1, p->at_start };
  GArray *parts = vlm_tok_pieces_new ();
  if (s->pattern) {
    split_piece (&whole, s->pattern, SPLIT_ISOLATED, FALSE, parts);
    g_free (whole.text);
  } else {
    g_array_append_val (parts, whole);
  }
  for (guint i = 0; i < parts->len; i++) {
    Piece *q = &g_array_index (parts, Piece, i);
    Piece mapped = { byte_level_map (tok, q->text), -1, q->at_start };
    g_array_append_val (out, mapped);
  }
  g_array_unref (parts);
}

static void
metaspace_pre (const Step *s, const Piece *p, GArray *out)
{
  const char *const space[1][2] = { { " ", s->content } };
  Piece q = { vlm_tok_replace_all (p->text, space, 1), -1, p->at_start };
  gboolean prepend = s->prepend == PREPEND_ALWAYS || (s->prepend == PREPEND_FIRST && p->at_start);
  if (prepend && !g_str_has_prefix (q.text, s->content)) {
    char *t = g_strconcat (s->content, q.text, NULL);
    g_free (q.text);
    q.text = t;
  }
  if (s->split) {
    split_piece (&q, s->pattern, SPLIT_MERGED_NEXT, FALSE, out);
    g_free (q.text);
  } else {
    g_array_append_val (out, q);
  }
}

/* Runs pre-tokenizer `s` over the text pieces `in` (consumed); returns the new pieces. */
GArray *
vlm_tok_pre_tokenize (const VlmTokenizer *tok, const Step *s, GArray *in)
{
  GArray *out;
  if (s->kind == P_SEQUENCE) {
    for (guint i = 0; i < s->children->len; i++)
      in = vlm_tok_pre_tokenize (tok, g_ptr_array_index (s->children, i), in);
    return in;
  }
  out = vlm_tok_pieces_new ();
  for (guint i = 0; i < in->len; i++) {
    const Piece *p = &g_array_index (in, Piece, i);
    if (s->kind == P_SPLIT)
      split_piece (p, s->pattern, s->behavior, s->invert, out);
    else if (s->kind == P_BYTE_LEVEL)
      byte_level_pre (tok, s, p, out);
    else
      metaspace_pre (s, p, out);
  }
  g_array_unref (in);
  return out;
}
