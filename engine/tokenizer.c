/* tokenizer.c — HF `tokenizer.json` tokenizers (see tokenizer.h).
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

#include <json-glib/json-glib.h>
#include <string.h>

/* ───────────────────────── pipeline steps ───────────────────────── */

/* One node of a normalizer, pre-tokenizer or decoder tree. One struct for
 * all three keeps parsing, Sequence handling and freeing in one place. */
typedef enum {
  N_NFC, N_NFD, N_NFKC, N_NFKD, N_LOWERCASE, N_STRIP_ACCENTS, N_STRIP, N_PREPEND,
  N_REPLACE, N_BERT, N_SEQUENCE,
  P_SPLIT, P_BYTE_LEVEL, P_METASPACE, P_SEQUENCE,
  D_BYTE_LEVEL, D_WORDPIECE, D_METASPACE, D_REPLACE, D_BYTE_FALLBACK, D_FUSE, D_STRIP,
  D_BPE, D_SEQUENCE,
} StepKind;

/* HF SplitDelimiterBehavior: what happens to the text a pattern matched. */
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREVIOUS, SPLIT_MERGED_NEXT,
               SPLIT_CONTIGUOUS } SplitBehavior;

/* Metaspace prepend_scheme: where the ▁ goes in front of a word. */
typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } PrependScheme;

typedef struct Step Step;
struct Step {
  StepKind kind;
  GPtrArray *children;      /* Sequence: Step* in order */
  GRegex *pattern;          /* Replace, Split; Metaspace: the replacement, for splitting */
  char *content;            /* Prepend text, Replace content, Strip char, Metaspace
                             * replacement, WordPiece prefix, BPE decoder suffix */
  SplitBehavior behavior;   /* Split */
  gboolean invert;          /* Split: the matches are the pieces, not the delimiters */
  gboolean left, right;     /* Strip normalizer */
  gboolean clean_text, chinese_chars, strip_accents, lowercase; /* BertNormalizer */
  gboolean add_prefix_space; /* ByteLevel */
  PrependScheme prepend;    /* Metaspace */
  gboolean split;           /* Metaspace */
  gboolean cleanup;         /* WordPiece decoder */
  int start, stop;          /* Strip decoder: how many `content` chars to cut */
};

static void
step_free (Step *s)
{
  if (!s)
    return;
  if (s->children)
    g_ptr_array_unref (s->children);
  if (s->pattern)
    g_regex_unref (s->pattern);
  g_free (s->content);
  g_free (s);
}

/* ───────────────────────── the tokenizer ───────────────────────── */

typedef enum { MODEL_BPE, MODEL_WORDPIECE } ModelKind;

/* A merge rule `a b → new_id`, found by the pair (a, b); lower rank merges first. */
typedef struct {
  guint64 key;              /* (a << 32) | b; MERGE_EMPTY for a free slot */
  int rank;
  int new_id;
} MergeSlot;
#define MERGE_EMPTY G_MAXUINT64

typedef struct {
  char *content;            /* as in the file */
  char *match;              /* what is searched for: content, normalized if `normalized` */
  gsize match_len;
  int id;
  gboolean special, single_word, lstrip, rstrip, normalized;
} AddedToken;

#define SEQ_SLOT (-1)       /* in the post-processor template: the encoded text */

struct VlmTokenizer {
  ModelKind model;
  GStringChunk *strings;    /* every token string, owned here */
  GHashTable *vocab;        /* token → id (model vocabulary) */
  const char **id_to_token; /* [n_ids]: added tokens override the model's entry */
  gboolean *is_special;     /* [n_ids] */
  int n_ids;                /* one past the largest id */
  int unk_id;               /* -1: none */

  /* BPE */
  MergeSlot *merges;        /* open addressing, capacity merges_mask + 1 */
  guint64 merges_mask;
  char *subword_prefix, *word_suffix;  /* NULL when absent or empty */
  gboolean byte_fallback, fuse_unk, ignore_merges;
  int byte_ids[256];        /* byte fallback: id of "<0xNN>", -1 when absent */

  /* WordPiece */
  int max_input_chars;

  AddedToken *added;        /* sorted longest match first */
  int n_added;
  guint8 added_first_byte[2][32]; /* bit set of first bytes, [normalized] */

  Step *normalizer, *pre_tokenizer, *decoder;
  GArray *template;         /* int ids with SEQ_SLOT; NULL: nothing to add */
  gboolean clean_up_spaces;

  gunichar byte_to_char[256];     /* GPT-2 byte-level alphabet */
  gint16 char_to_byte[324];
};

/* ───────────────────────── json access ───────────────────────── */

/* The member `key` of `o`, or NULL when absent or JSON null. */
static JsonNode *
member (JsonObject *o, const char *key)
{
  JsonNode *n = o && json_object_has_member (o, key) ? json_object_get_member (o, key) : NULL;
  return n && !JSON_NODE_HOLDS_NULL (n) ? n : NULL;
}

static gboolean
node_holds (JsonNode *n, GType type)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type;
}

/* Sets BAD_CONFIG naming `where`.`key` and what was expected; returns FALSE. */
static gboolean
bad_key (GError **error, const char *where, const char *key, const char *expected)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s%s%s: expected %s", where,
               *where && *key ? "." : "", key, expected);
  return FALSE;
}

/* *out: borrowed string, or NULL when the member is absent or null. */
static gboolean
opt_string (JsonObject *o, const char *where, const char *key, const char **out, GError **error)
{
  JsonNode *n = member (o, key);
  *out = NULL;
  if (!n)
    return TRUE;
  if (!node_holds (n, G_TYPE_STRING))
    return bad_key (error, where, key, "a string");
  *out = json_node_get_string (n);
  return TRUE;
}

static gboolean
req_string (JsonObject *o, const char *where, const char *key, const char **out, GError **error)
{
  if (!opt_string (o, where, key, out, error))
    return FALSE;
  return *out ? TRUE : bad_key (error, where, key, "a string");
}

/* *out keeps its default when the member is absent or null. */
static gboolean
opt_bool (JsonObject *o, const char *where, const char *key, gboolean *out, GError **error)
{
  JsonNode *n = member (o, key);
  if (!n)
    return TRUE;
  if (!node_holds (n, G_TYPE_BOOLEAN))
    return bad_key (error, where, key, "true or false");
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* A non-negative int that fits an int; *out keeps its default when absent. */
static gboolean
opt_int (JsonObject *o, const char *where, const char *key, int *out, GError **error)
{
  JsonNode *n = member (o, key);
  if (!n)
    return TRUE;
  if (!node_holds (n, G_TYPE_INT64) || json_node_get_int (n) < 0 || json_node_get_int (n) > G_MAXINT)
    return bad_key (error, where, key, "a non-negative integer");
  *out = (int) json_node_get_int (n);
  return TRUE;
}

static JsonObject *
req_object (JsonObject *o, const char *where, const char *key, GError **error)
{
  JsonNode *n = member (o, key);
  if (!n || !JSON_NODE_HOLDS_OBJECT (n)) {
    bad_key (error, where, key, "an object");
    return NULL;
  }
  return json_node_get_object (n);
}

static JsonArray *
req_array (JsonObject *o, const char *where, const char *key, GError **error)
{
  JsonNode *n = member (o, key);
  if (!n || !JSON_NODE_HOLDS_ARRAY (n)) {
    bad_key (error, where, key, "an array");
    return NULL;
  }
  return json_node_get_array (n);
}

/* A token id: a non-negative integer node. */
static gboolean
node_to_id (JsonNode *n, int *id)
{
  if (!node_holds (n, G_TYPE_INT64) || json_node_get_int (n) < 0 || json_node_get_int (n) >= G_MAXINT)
    return FALSE;
  *id = (int) json_node_get_int (n);
  return TRUE;
}

static gboolean
unsupported (GError **error, const char *where, const char *type)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_UNSUPPORTED_TOKENIZER,
               "%s: type '%s' is not supported", where, type);
  return FALSE;
}

/* ───────────────────────── unicode helpers ───────────────────────── */

/* GPT-2's reversible byte → visible char map: printable Latin-1 bytes map to
 * themselves, the other 68 to U+0100.. in byte order. */
static void
byte_level_tables (VlmTokenizer *tok)
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
static gboolean
is_word_char (gunichar c)
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
static void
append_lossy (GString *out, const guchar *b, gsize n)
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
static char *
replace_all (const char *text, const char *const pairs[][2], int n_pairs)
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

typedef gboolean (*StepParser) (Step *s, JsonObject *o, const char *where, GError **error);

typedef struct {
  const char *type;
  StepKind kind;
  StepParser parse;         /* NULL: the type has no parameters we use */
} StepType;

typedef struct {
  const char *name;         /* "normalizer", for messages */
  const char *list_key;     /* Sequence's member holding the children */
  StepKind sequence;
  const StepType *types;    /* NULL-terminated */
} StepFamily;

static gboolean parse_step (const StepFamily *fam, JsonNode *node, const char *where,
                            Step **out, GError **error);

/* `pattern`: {"String": literal} or {"Regex": pcre}; compiled either way. */
static gboolean
parse_pattern (Step *s, JsonObject *o, const char *where, GError **error)
{
  JsonObject *p = req_object (o, where, "pattern", error);
  const char *lit, *re;
  char *src, *pw;
  GError *rerr = NULL;
  if (!p)
    return FALSE;
  pw = g_strconcat (where, ".pattern", NULL);
  if (!opt_string (p, pw, "String", &lit, error) || !opt_string (p, pw, "Regex", &re, error)) {
    g_free (pw);
    return FALSE;
  }
  if (!lit && !re) {
    g_free (pw);
    return bad_key (error, where, "pattern", "{\"String\": …} or {\"Regex\": …}");
  }
  src = lit ? g_regex_escape_string (lit, -1) : g_strdup (re);
  s->pattern = g_regex_new (src, G_REGEX_OPTIMIZE, 0, &rerr);
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
  GRegex *re = g_regex_new (src, G_REGEX_OPTIMIZE, 0, NULL);
  g_assert (re);
  return re;
}

static gboolean
parse_bert_normalizer (Step *s, JsonObject *o, const char *where, GError **error)
{
  JsonNode *sa = member (o, "strip_accents");
  s->clean_text = s->chinese_chars = s->lowercase = TRUE;
  if (!opt_bool (o, where, "clean_text", &s->clean_text, error)
      || !opt_bool (o, where, "handle_chinese_chars", &s->chinese_chars, error)
      || !opt_bool (o, where, "lowercase", &s->lowercase, error))
    return FALSE;
  /* strip_accents: null means "as lowercase" (BERT uncased strips, cased keeps). */
  s->strip_accents = s->lowercase;
  return sa ? opt_bool (o, where, "strip_accents", &s->strip_accents, error) : TRUE;
}

static gboolean
parse_prepend (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *p;
  if (!req_string (o, where, "prepend", &p, error))
    return FALSE;
  s->content = g_strdup (p);
  return TRUE;
}

static gboolean
parse_replace (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *c;
  if (!parse_pattern (s, o, where, error) || !req_string (o, where, "content", &c, error))
    return FALSE;
  s->content = g_strdup (c);
  return TRUE;
}

static gboolean
parse_strip_normalizer (Step *s, JsonObject *o, const char *where, GError **error)
{
  s->left = s->right = TRUE;
  return opt_bool (o, where, "strip_left", &s->left, error)
         && opt_bool (o, where, "strip_right", &s->right, error);
}

static gboolean
parse_split (Step *s, JsonObject *o, const char *where, GError **error)
{
  static const char *const names[] = { "Removed", "Isolated", "MergedWithPrevious",
                                       "MergedWithNext", "Contiguous" };
  const char *b;
  if (!parse_pattern (s, o, where, error) || !req_string (o, where, "behavior", &b, error)
      || !opt_bool (o, where, "invert", &s->invert, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    if (strcmp (b, names[i]) == 0) {
      s->behavior = (SplitBehavior) i;
      return TRUE;
    }
  }
  return unsupported (error, where, b);
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
  if (!opt_bool (o, where, "individual_digits", &individual, error))
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
  if (!opt_string (o, where, "behavior", &b, error))
    return FALSE;
  if (b && strcmp (b, "Isolated") != 0)
    return unsupported (error, where, b);
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
  s->children = g_ptr_array_new_with_free_func ((GDestroyNotify) step_free);
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
  if (!opt_bool (o, where, "add_prefix_space", &s->add_prefix_space, error)
      || !opt_bool (o, where, "use_regex", &use_regex, error))
    return FALSE;
  if (use_regex && s->kind == P_BYTE_LEVEL)
    s->pattern = fixed_regex (GPT2_REGEX);
  return TRUE;
}

static gboolean
parse_metaspace (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *rep, *scheme = NULL;
  gboolean add_prefix_space = TRUE;
  char *escaped;
  s->split = TRUE;
  if (!req_string (o, where, "replacement", &rep, error)
      || !opt_string (o, where, "prepend_scheme", &scheme, error)
      || !opt_bool (o, where, "add_prefix_space", &add_prefix_space, error)
      || !opt_bool (o, where, "split", &s->split, error))
    return FALSE;
  if (g_utf8_strlen (rep, -1) != 1)
    return bad_key (error, where, "replacement", "one character");
  /* Older files say add_prefix_space; newer ones prepend_scheme. */
  s->prepend = add_prefix_space ? PREPEND_ALWAYS : PREPEND_NEVER;
  if (scheme && strcmp (scheme, "always") == 0)
    s->prepend = PREPEND_ALWAYS;
  else if (scheme && strcmp (scheme, "first") == 0)
    s->prepend = PREPEND_FIRST;
  else if (scheme && strcmp (scheme, "never") == 0)
    s->prepend = PREPEND_NEVER;
  else if (scheme)
    return bad_key (error, where, "prepend_scheme", "\"always\", \"first\" or \"never\"");
  s->content = g_strdup (rep);
  escaped = g_regex_escape_string (rep, -1);
  s->pattern = fixed_regex (escaped);
  g_free (escaped);
  return TRUE;
}

static gboolean
parse_wordpiece_decoder (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *prefix;
  s->cleanup = TRUE;
  if (!opt_string (o, where, "prefix", &prefix, error)
      || !opt_bool (o, where, "cleanup", &s->cleanup, error))
    return FALSE;
  s->content = g_strdup (prefix ? prefix : "##");
  return TRUE;
}

static gboolean
parse_strip_decoder (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *c;
  if (!req_string (o, where, "content", &c, error) || !opt_int (o, where, "start", &s->start, error)
      || !opt_int (o, where, "stop", &s->stop, error))
    return FALSE;
  if (g_utf8_strlen (c, -1) != 1)
    return bad_key (error, where, "content", "one character");
  s->content = g_strdup (c);
  return TRUE;
}

static gboolean
parse_bpe_decoder (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *suffix;
  if (!opt_string (o, where, "suffix", &suffix, error))
    return FALSE;
  s->content = g_strdup (suffix ? suffix : "</w>");
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
  { "Replace", N_REPLACE, parse_replace },
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
  { "Metaspace", P_METASPACE, parse_metaspace },
  { NULL, 0, NULL },
};

static const StepType decoder_types[] = {
  { "ByteLevel", D_BYTE_LEVEL, NULL },
  { "WordPiece", D_WORDPIECE, parse_wordpiece_decoder },
  { "Metaspace", D_METASPACE, parse_metaspace },
  { "Replace", D_REPLACE, parse_replace },
  { "ByteFallback", D_BYTE_FALLBACK, NULL },
  { "Fuse", D_FUSE, NULL },
  { "Strip", D_STRIP, parse_strip_decoder },
  { "BPEDecoder", D_BPE, parse_bpe_decoder },
  { NULL, 0, NULL },
};

static const StepFamily normalizer_family = { "normalizer", "normalizers", N_SEQUENCE, normalizer_types };
static const StepFamily pre_tokenizer_family = { "pre_tokenizer", "pretokenizers", P_SEQUENCE,
                                                 pre_tokenizer_types };
static const StepFamily decoder_family = { "decoder", "decoders", D_SEQUENCE, decoder_types };

/* Sequence: the children under fam->list_key, each parsed recursively. */
static gboolean
parse_sequence (const StepFamily *fam, Step *s, JsonObject *o, const char *where, GError **error)
{
  JsonArray *list = req_array (o, where, fam->list_key, error);
  if (!list)
    return FALSE;
  s->children = g_ptr_array_new_with_free_func ((GDestroyNotify) step_free);
  for (guint i = 0; i < json_array_get_length (list); i++) {
    char *w = g_strdup_printf ("%s.%s[%u]", where, fam->list_key, i);
    Step *child = NULL;
    gboolean ok = parse_step (fam, json_array_get_element (list, i), w, &child, error);
    g_free (w);
    if (!ok)
      return FALSE;
    g_ptr_array_add (s->children, child);
  }
  return TRUE;
}

/* Parses one step of family `fam` from `node` (an object with "type").
 * On failure *out is NULL and error names `where`. */
static gboolean
parse_step (const StepFamily *fam, JsonNode *node, const char *where, Step **out, GError **error)
{
  const char *type;
  const StepType *t;
  Step *s;
  gboolean ok;
  *out = NULL;
  if (!node || !JSON_NODE_HOLDS_OBJECT (node))
    return bad_key (error, where, "", "an object");
  if (!req_string (json_node_get_object (node), where, "type", &type, error))
    return FALSE;
  s = g_new0 (Step, 1);
  if (strcmp (type, "Sequence") == 0) {
    s->kind = fam->sequence;
    ok = parse_sequence (fam, s, json_node_get_object (node), where, error);
  } else {
    for (t = fam->types; t->type && strcmp (t->type, type) != 0; t++)
      ;
    if (!t->type) {
      step_free (s);
      return unsupported (error, where, type);
    }
    s->kind = t->kind;
    ok = !t->parse || t->parse (s, json_node_get_object (node), where, error);
  }
  if (!ok) {
    step_free (s);
    return FALSE;
  }
  *out = s;
  return TRUE;
}

/* ───────────────────────── loading: the model ───────────────────────── */

static int
vocab_id (const VlmTokenizer *tok, const char *token)
{
  gpointer v;
  return g_hash_table_lookup_extended (tok->vocab, token, NULL, &v) ? GPOINTER_TO_INT (v) : -1;
}

static guint64
pair_key (int a, int b)
{
  return ((guint64) (guint32) a << 32) | (guint32) b;
}

/* The merge slot for (a, b): the matching one, or the free slot where it would go. */
static MergeSlot *
merge_slot (const VlmTokenizer *tok, guint64 key)
{
  guint64 h = key * 0x9E3779B97F4A7C15ULL;
  guint64 i = (h ^ (h >> 29)) & tok->merges_mask;
  while (tok->merges[i].key != MERGE_EMPTY && tok->merges[i].key != key)
    i = (i + 1) & tok->merges_mask;
  return &tok->merges[i];
}

/* The merge of (a, b), or NULL. */
static const MergeSlot *
merge_find (const VlmTokenizer *tok, int a, int b)
{
  const MergeSlot *m = merge_slot (tok, pair_key (a, b));
  return m->key == MERGE_EMPTY ? NULL : m;
}

static gboolean
parse_vocab (VlmTokenizer *tok, JsonObject *model, GError **error)
{
  JsonObject *vocab = req_object (model, "model", "vocab", error);
  JsonObjectIter it;
  const char *key;
  JsonNode *val;
  if (!vocab)
    return FALSE;
  tok->vocab = g_hash_table_new (g_str_hash, g_str_equal);
  json_object_iter_init (&it, vocab);
  while (json_object_iter_next (&it, &key, &val)) {
    int id;
    if (!node_to_id (val, &id)) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                   "model.vocab[\"%s\"]: expected a non-negative integer id", key);
      return FALSE;
    }
    g_hash_table_insert (tok->vocab, g_string_chunk_insert (tok->strings, key), GINT_TO_POINTER (id));
    tok->n_ids = MAX (tok->n_ids, id + 1);
  }
  return TRUE;
}

/* One merge, "a b" or ["a", "b"], into its two halves (borrowed / in buf). */
static gboolean
merge_halves (JsonNode *n, char **buf, const char **a, const char **b)
{
  if (node_holds (n, G_TYPE_STRING)) {
    char *sp;
    *buf = g_strdup (json_node_get_string (n));
    sp = strchr (*buf, ' ');
    if (!sp)
      return FALSE;
    *sp = '\0';
    *a = *buf, *b = sp + 1;
    return TRUE;
  }
  if (n && JSON_NODE_HOLDS_ARRAY (n) && json_array_get_length (json_node_get_array (n)) == 2) {
    JsonNode *x = json_array_get_element (json_node_get_array (n), 0);
    JsonNode *y = json_array_get_element (json_node_get_array (n), 1);
    if (node_holds (x, G_TYPE_STRING) && node_holds (y, G_TYPE_STRING)) {
      *a = json_node_get_string (x), *b = json_node_get_string (y);
      return TRUE;
    }
  }
  return FALSE;
}

static gboolean
parse_merges (VlmTokenizer *tok, JsonObject *model, GError **error)
{
  JsonArray *merges = req_array (model, "model", "merges", error);
  guint n, cap = 16;
  if (!merges)
    return FALSE;
  n = json_array_get_length (merges);
  while (cap < 2 * n)
    cap *= 2;
  tok->merges = g_new (MergeSlot, cap);
  memset (tok->merges, 0xFF, cap * sizeof (MergeSlot));
  tok->merges_mask = cap - 1;
  for (guint i = 0; i < n; i++) {
    char *buf = NULL, *joined;
    const char *a = NULL, *b = NULL;
    int ia, ib, inew;
    MergeSlot *slot;
    gboolean ok = merge_halves (json_array_get_element (merges, i), &buf, &a, &b);
    joined = ok ? g_strconcat (a, b, NULL) : NULL;
    ia = ok ? vocab_id (tok, a) : -1, ib = ok ? vocab_id (tok, b) : -1;
    inew = ok ? vocab_id (tok, joined) : -1;
    g_free (buf);
    g_free (joined);
    if (ia < 0 || ib < 0 || inew < 0) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "model.merges[%u]: %s", i,
                   ok ? "a token of the merge is not in model.vocab"
                      : "expected \"a b\" or [\"a\", \"b\"]");
      return FALSE;
    }
    /* A repeated pair keeps its last rank, as HF's HashMap collect does. */
    slot = merge_slot (tok, pair_key (ia, ib));
    slot->key = pair_key (ia, ib);
    slot->rank = (int) i;
    slot->new_id = inew;
  }
  return TRUE;
}

/* An optional string member that counts as absent when empty. */
static gboolean
opt_nonempty (JsonObject *o, const char *key, char **out, GError **error)
{
  const char *s;
  if (!opt_string (o, "model", key, &s, error))
    return FALSE;
  *out = s && *s ? g_strdup (s) : NULL;
  return TRUE;
}

static gboolean
parse_bpe (VlmTokenizer *tok, JsonObject *model, GError **error)
{
  JsonNode *dropout = member (model, "dropout");
  const char *unk;
  tok->model = MODEL_BPE;
  if (dropout && (!JSON_NODE_HOLDS_VALUE (dropout) || json_node_get_double (dropout) != 0.0))
    return unsupported (error, "model.dropout", "BPE dropout");
  if (!parse_vocab (tok, model, error) || !parse_merges (tok, model, error)
      || !opt_string (model, "model", "unk_token", &unk, error)
      || !opt_nonempty (model, "continuing_subword_prefix", &tok->subword_prefix, error)
      || !opt_nonempty (model, "end_of_word_suffix", &tok->word_suffix, error)
      || !opt_bool (model, "model", "byte_fallback", &tok->byte_fallback, error)
      || !opt_bool (model, "model", "fuse_unk", &tok->fuse_unk, error)
      || !opt_bool (model, "model", "ignore_merges", &tok->ignore_merges, error))
    return FALSE;
  /* An unk token missing from the vocab behaves as no unk token: unknown chars vanish. */
  tok->unk_id = unk ? vocab_id (tok, unk) : -1;
  for (int b = 0; b < 256; b++) {
    char name[8];
    g_snprintf (name, sizeof name, "<0x%02X>", b);
    tok->byte_ids[b] = vocab_id (tok, name);
  }
  return TRUE;
}

static gboolean
parse_wordpiece (VlmTokenizer *tok, JsonObject *model, GError **error)
{
  const char *unk = NULL;
  tok->model = MODEL_WORDPIECE;
  tok->max_input_chars = 100;
  if (!parse_vocab (tok, model, error) || !req_string (model, "model", "unk_token", &unk, error)
      || !opt_nonempty (model, "continuing_subword_prefix", &tok->subword_prefix, error)
      || !opt_int (model, "model", "max_input_chars_per_word", &tok->max_input_chars, error))
    return FALSE;
  tok->unk_id = vocab_id (tok, unk);
  if (tok->unk_id < 0)
    return bad_key (error, "model", "unk_token", "a token of model.vocab");
  if (!tok->subword_prefix)
    tok->subword_prefix = g_strdup ("##");
  return TRUE;
}

static gboolean
parse_model (VlmTokenizer *tok, JsonObject *root, GError **error)
{
  JsonObject *model = req_object (root, "", "model", error);
  const char *type;
  if (!model || !req_string (model, "model", "type", &type, error))
    return FALSE;
  if (strcmp (type, "BPE") == 0)
    return parse_bpe (tok, model, error);
  if (strcmp (type, "WordPiece") == 0)
    return parse_wordpiece (tok, model, error);
  return unsupported (error, "model", type);
}

/* ───────────────────────── loading: added tokens ───────────────────────── */

static gint
added_longest_first (gconstpointer a, gconstpointer b)
{
  const AddedToken *x = a, *y = b;
  return x->match_len < y->match_len ? 1 : x->match_len > y->match_len ? -1 : x->id - y->id;
}

static char *normalize (const Step *s, const char *text);

static gboolean
parse_added_token (VlmTokenizer *tok, JsonNode *node, guint i, AddedToken *t, GError **error)
{
  char *where = g_strdup_printf ("added_tokens[%u]", i);
  JsonObject *o = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *content;
  gboolean ok = o != NULL;
  if (!ok)
    bad_key (error, where, "", "an object");
  ok = ok && req_string (o, where, "content", &content, error);
  ok = ok && (node_to_id (member (o, "id"), &t->id) || bad_key (error, where, "id", "a token id"));
  ok = ok && (*content || bad_key (error, where, "content", "a non-empty string"));
  ok = ok && opt_bool (o, where, "special", &t->special, error)
       && opt_bool (o, where, "single_word", &t->single_word, error)
       && opt_bool (o, where, "lstrip", &t->lstrip, error)
       && opt_bool (o, where, "rstrip", &t->rstrip, error)
       && opt_bool (o, where, "normalized", &t->normalized, error);
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
  JsonNode *n = member (root, "added_tokens");
  JsonArray *list;
  if (!n)
    return TRUE;
  if (!(list = req_array (root, "", "added_tokens", error)))
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
      char *m = normalize (tok->normalizer, t->content);
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
  qsort (tok->added, tok->n_added, sizeof (AddedToken), added_longest_first);
  return TRUE;
}

/* id → token for the model vocab, then added tokens on top (HF looks them up first). */
static void
build_id_table (VlmTokenizer *tok)
{
  GHashTableIter it;
  gpointer k, v;
  tok->id_to_token = g_new0 (const char *, tok->n_ids);
  tok->is_special = g_new0 (gboolean, tok->n_ids);
  g_hash_table_iter_init (&it, tok->vocab);
  while (g_hash_table_iter_next (&it, &k, &v))
    tok->id_to_token[GPOINTER_TO_INT (v)] = k;
  for (int i = 0; i < tok->n_added; i++) {
    tok->id_to_token[tok->added[i].id] = tok->added[i].content;
    tok->is_special[tok->added[i].id] = tok->added[i].special;
  }
}

/* ───────────────────────── loading: post-processor ───────────────────────── */

/* Replaces SEQ_SLOT in `outer` by `inner`: the composition of two templates. */
static GArray *
compose_templates (GArray *outer, GArray *inner)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (int));
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
  JsonObject *entry = req_object (specials, w, name, error);
  JsonArray *ids = entry ? req_array (entry, w, "ids", error) : NULL;
  gboolean ok = ids != NULL;
  for (guint j = 0; ok && j < json_array_get_length (ids); j++) {
    int id;
    ok = node_to_id (json_array_get_element (ids, j), &id);
    if (ok)
      g_array_append_val (out, id);
    else
      bad_key (error, w, name, "{\"ids\": [token ids]}");
  }
  g_free (w);
  return ok;
}

/* TemplateProcessing "single": [{"SpecialToken": {"id": name}} | {"Sequence": …}]. */
static gboolean
parse_template (JsonObject *o, const char *where, GArray *out, GError **error)
{
  JsonArray *single = req_array (o, where, "single", error);
  JsonObject *specials = single ? req_object (o, where, "special_tokens", error) : NULL;
  if (!specials)
    return FALSE;
  for (guint i = 0; i < json_array_get_length (single); i++) {
    JsonNode *item = json_array_get_element (single, i);
    char *w = g_strdup_printf ("%s.single[%u]", where, i);
    JsonObject *io = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
    JsonObject *sp = io && !member (io, "Sequence") ? req_object (io, w, "SpecialToken", error) : NULL;
    const char *name = NULL;
    gboolean ok;
    if (io && member (io, "Sequence"))
      ok = TRUE, g_array_append_val (out, (int) { SEQ_SLOT });
    else if (!io)
      ok = bad_key (error, w, "", "an object");
    else
      ok = sp && req_string (sp, w, "id", &name, error)
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
    JsonArray *pair = req_array (o, where, keys[i], error);
    if (!pair)
      return FALSE;
    if (json_array_get_length (pair) != 2 || !node_to_id (json_array_get_element (pair, 1), &ids[i]))
      return bad_key (error, where, keys[i], "[token, id]");
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
    return bad_key (error, where, "", "an object");
  if (!req_string (o, where, "type", &type, error))
    return FALSE;
  if (strcmp (type, "TemplateProcessing") == 0)
    return parse_template (o, where, *out, error);
  if (strcmp (type, "BertProcessing") == 0 || strcmp (type, "RobertaProcessing") == 0)
    return parse_cls_sep (o, where, *out, error);
  g_array_append_val (*out, (int) { SEQ_SLOT });
  if (strcmp (type, "ByteLevel") == 0)   /* only moves offsets */
    return TRUE;
  if (strcmp (type, "Sequence") != 0)
    return unsupported (error, where, type);
  if (!(list = req_array (o, where, "processors", error)))
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
parse_root (VlmTokenizer *tok, JsonObject *root, GError **error)
{
  JsonNode *pp;
  if (!parse_model (tok, root, error))
    return FALSE;
  if (member (root, "normalizer")
      && !parse_step (&normalizer_family, member (root, "normalizer"), "normalizer", &tok->normalizer, error))
    return FALSE;
  if (member (root, "pre_tokenizer")
      && !parse_step (&pre_tokenizer_family, member (root, "pre_tokenizer"), "pre_tokenizer",
                      &tok->pre_tokenizer, error))
    return FALSE;
  if (member (root, "decoder")
      && !parse_step (&decoder_family, member (root, "decoder"), "decoder", &tok->decoder, error))
    return FALSE;
  if ((pp = member (root, "post_processor"))
      && !parse_post_processor (pp, "post_processor", &tok->template, error))
    return FALSE;
  if (!parse_added_tokens (tok, root, error))
    return FALSE;
  build_id_table (tok);
  return TRUE;
}

/* clean_up_tokenization_spaces from tokenizer_config.json beside `file`, if
 * there is one; absent means no cleanup (the transformers 5 default). */
static gboolean
read_tokenizer_config (VlmTokenizer *tok, const char *file, GError **error)
{
  char *dir = g_path_get_dirname (file);
  char *cfg = g_build_filename (dir, "tokenizer_config.json", NULL);
  JsonParser *parser = json_parser_new_immutable ();
  GError *jerr = NULL;
  gboolean ok = TRUE;
  if (g_file_test (cfg, G_FILE_TEST_IS_REGULAR)) {
    JsonNode *root;
    ok = json_parser_load_from_file (parser, cfg, &jerr);
    root = ok ? json_parser_get_root (parser) : NULL;
    if (!ok) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: %s", cfg, jerr->message);
      g_error_free (jerr);
    } else if (root && JSON_NODE_HOLDS_OBJECT (root)) {
      ok = opt_bool (json_node_get_object (root), "", "clean_up_tokenization_spaces",
                     &tok->clean_up_spaces, error);
      if (!ok)
        g_prefix_error (error, "%s: ", cfg);
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
  step_free (tok->normalizer);
  step_free (tok->pre_tokenizer);
  step_free (tok->decoder);
  if (tok->template)
    g_array_unref (tok->template);
  g_free (tok);
}

VlmTokenizer *
vlm_tokenizer_load (const char *path, GError **error)
{
  char *file;
  JsonParser *parser;
  JsonNode *root;
  VlmTokenizer *tok = NULL;
  GError *jerr = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  file = g_file_test (path, G_FILE_TEST_IS_DIR) ? g_build_filename (path, "tokenizer.json", NULL)
                                                : g_strdup (path);
  if (!g_file_test (file, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no such file", file);
    g_free (file);
    return NULL;
  }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_file (parser, file, &jerr)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: %s", file, jerr->message);
    g_error_free (jerr);
    goto out;
  }
  root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: expected a json object", file);
    goto out;
  }
  tok = g_new0 (VlmTokenizer, 1);
  tok->strings = g_string_chunk_new (1 << 16);
  tok->unk_id = -1;
  byte_level_tables (tok);
  if (!parse_root (tok, json_node_get_object (root), error)) {
    g_prefix_error (error, "%s: ", file);
    g_clear_pointer (&tok, vlm_tokenizer_free);
  } else if (!read_tokenizer_config (tok, file, error)) {
    g_clear_pointer (&tok, vlm_tokenizer_free);
  }
out:
  g_object_unref (parser);
  g_free (file);
  return tok;
}
