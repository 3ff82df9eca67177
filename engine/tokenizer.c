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
#include "file.h"
#include "json.h"

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
  gboolean clip_decode;     /* CLIPTokenizerFast: end_of_word_suffix → " ", stripped */

  gunichar byte_to_char[256];     /* GPT-2 byte-level alphabet */
  gint16 char_to_byte[324];
};

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

static gboolean
parse_replace (Step *s, JsonObject *o, const char *where, GError **error)
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
  if (!vlm_json_opt_bool (o, where, "add_prefix_space", &s->add_prefix_space, error)
      || !vlm_json_opt_bool (o, where, "use_regex", &use_regex, error))
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

static gboolean
parse_wordpiece_decoder (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *prefix;
  s->cleanup = TRUE;
  if (!vlm_json_opt_string (o, where, "prefix", &prefix, error)
      || !vlm_json_opt_bool (o, where, "cleanup", &s->cleanup, error))
    return FALSE;
  s->content = g_strdup (prefix ? prefix : "##");
  return TRUE;
}

static gboolean
parse_strip_decoder (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *c;
  if (!vlm_json_req_string (o, where, "content", &c, error) || !vlm_json_opt_uint (o, where, "start", &s->start, error)
      || !vlm_json_opt_uint (o, where, "stop", &s->stop, error))
    return FALSE;
  if (g_utf8_strlen (c, -1) != 1)
    return vlm_json_bad_key (error, where, "content", "one character");
  s->content = g_strdup (c);
  return TRUE;
}

static gboolean
parse_bpe_decoder (Step *s, JsonObject *o, const char *where, GError **error)
{
  const char *suffix;
  if (!vlm_json_opt_string (o, where, "suffix", &suffix, error))
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
  JsonArray *list = vlm_json_req_array (o, where, fam->list_key, error);
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
    return vlm_json_bad_key (error, where, "", "an object");
  if (!vlm_json_req_string (json_node_get_object (node), where, "type", &type, error))
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

/* ───────────────────────── loading: vocab and merges ─────────────────────────
 * json-glib builds a node per value, which for the 150k-entry vocab and merges
 * of a Qwen tokenizer costs most of a second. So load cuts model.vocab and
 * model.merges out of the text before json-glib sees it, and reads them with
 * this small scanner straight into the tables. */

/* The text of one JSON value; start NULL when absent. */
typedef struct {
  const char *start, *end;
} Range;

typedef struct {
  const char *p, *end;
  const char *base;         /* start of the file, for error offsets */
} Scan;

static void
scan_ws (Scan *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

/* Skips whitespace, then consumes `c` if it is next. */
static gboolean
scan_eat (Scan *s, char c)
{
  scan_ws (s);
  if (s->p >= s->end || *s->p != c)
    return FALSE;
  s->p++;
  return TRUE;
}

/* s->p at a quote: moves past the closing quote. */
static gboolean
scan_skip_string (Scan *s)
{
  for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
    if (*s->p == '\\')
      s->p++;
  }
  if (s->p >= s->end)
    return FALSE;
  s->p++;
  return TRUE;
}

/* Skips one value of any kind by tracking bracket depth outside strings. */
static gboolean
scan_skip_value (Scan *s)
{
  int depth = 0;
  do {
    scan_ws (s);
    if (s->p >= s->end || *s->p == '\0')
      return FALSE;
    if (*s->p == '"') {
      if (!scan_skip_string (s))
        return FALSE;
    } else if (*s->p == '{' || *s->p == '[') {
      depth++, s->p++;
    } else if (*s->p == '}' || *s->p == ']') {
      if (--depth < 0)
        return FALSE;
      s->p++;
    } else if (*s->p == ',' || *s->p == ':') {
      if (depth == 0)
        return FALSE;
      s->p++;
    } else {
      while (s->p < s->end && *s->p && !strchr (",:{}[]\" \t\r\n", *s->p))
        s->p++;
    }
  } while (depth > 0);
  return TRUE;
}

/* Moves s->p to the value of member `key` of the object at s->p; FALSE when
 * absent or malformed (json-glib then reports malformed text). Names are
 * compared raw: the ones we look for have no escapes. */
static gboolean
scan_to_member (Scan *s, const char *key)
{
  gsize klen = strlen (key);
  if (!scan_eat (s, '{'))
    return FALSE;
  for (;;) {
    const char *name;
    gboolean hit;
    scan_ws (s);
    name = s->p + 1;
    if (s->p >= s->end || *s->p != '"' || !scan_skip_string (s))
      return FALSE;
    hit = (gsize) (s->p - 1 - name) == klen && memcmp (name, key, klen) == 0;
    if (!scan_eat (s, ':'))
      return FALSE;
    scan_ws (s);
    if (hit)
      return TRUE;
    if (!scan_skip_value (s) || !scan_eat (s, ','))
      return FALSE;
  }
}

/* The text of model.<key> in the file. */
static Range
locate_model_member (const char *text, gsize len, const char *key)
{
  Scan s = { text, text + len, text };
  Range r = { NULL, NULL };
  if (scan_to_member (&s, "model") && scan_to_member (&s, key)) {
    const char *start = s.p;
    if (scan_skip_value (&s))
      r.start = start, r.end = s.p;
  }
  return r;
}

/* Reads 4 hex digits of a \u escape. */
static gboolean
scan_hex4 (Scan *s, gunichar *u)
{
  *u = 0;
  for (int i = 0; i < 4; i++, s->p++) {
    if (s->p >= s->end || !g_ascii_isxdigit (*s->p))
      return FALSE;
    *u = *u * 16 + (gunichar) g_ascii_xdigit_value (*s->p);
  }
  return TRUE;
}

/* One escape after the backslash; \uD83C\uDFA5 pairs become one char. */
static gboolean
scan_escape (Scan *s, GString *out)
{
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit;
  gunichar u, lo;
  if (s->p >= s->end)
    return FALSE;
  if (*s->p != 'u') {
    hit = *s->p ? strchr (from, *s->p) : NULL;
    if (!hit)
      return FALSE;
    g_string_append_c (out, to[hit - from]);
    s->p++;
    return TRUE;
  }
  s->p++;
  if (!scan_hex4 (s, &u))
    return FALSE;
  if (u >= 0xD800 && u <= 0xDBFF) {
    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
      return FALSE;
    s->p += 2;
    if (!scan_hex4 (s, &lo) || lo < 0xDC00 || lo > 0xDFFF)
      return FALSE;
    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
  } else if (u >= 0xDC00 && u <= 0xDFFF) {
    return FALSE;
  }
  g_string_append_unichar (out, u);
  return TRUE;
}

/* Reads a JSON string, unescaped, into `out`; FALSE if malformed or not UTF-8. */
static gboolean
scan_string (Scan *s, GString *out)
{
  g_string_truncate (out, 0);
  if (!scan_eat (s, '"'))
    return FALSE;
  while (s->p < s->end && *s->p != '"') {
    const char *q = s->p;
    if (*s->p == '\\') {
      s->p++;
      if (!scan_escape (s, out))
        return FALSE;
      continue;
    }
    while (q < s->end && *q != '"' && *q != '\\')
      q++;
    g_string_append_len (out, s->p, q - s->p);
    s->p = q;
  }
  if (s->p >= s->end)
    return FALSE;
  s->p++;
  return g_utf8_validate_len (out->str, out->len, NULL);
}

/* A token id: a non-negative decimal integer. */
static gboolean
scan_id (Scan *s, int *id)
{
  gint64 v = 0;
  const char *b;
  scan_ws (s);
  for (b = s->p; s->p < s->end && g_ascii_isdigit (*s->p) && v < G_MAXINT; s->p++)
    v = v * 10 + (*s->p - '0');
  if (s->p == b || v >= G_MAXINT || (s->p < s->end && strchr (".eE", *s->p) && *s->p))
    return FALSE;
  *id = (int) v;
  return TRUE;
}

static gboolean
scan_error (const Scan *s, const char *where, const char *expected, GError **error)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: expected %s (byte %ld of the file)",
               where, expected, (long) (s->p - s->base));
  return FALSE;
}

/* model.vocab and model.merges as cut out of the file text. */
typedef struct {
  Range vocab, merges;
  const char *base;         /* the file text */
  gsize len;                /* its length */
} RawModel;

/* model.vocab: {"token": id, …}. */
static gboolean
parse_vocab (VlmTokenizer *tok, Range r, const char *base, GError **error)
{
  Scan s = { r.start, r.end, base };
  GString *key = g_string_new (NULL);
  gboolean ok = r.start && scan_eat (&s, '{');
  tok->vocab = g_hash_table_new (g_str_hash, g_str_equal);
  if (!r.start)
    ok = vlm_json_bad_key (error, "model", "vocab", "an object");
  else if (!ok)
    ok = scan_error (&s, "model.vocab", "an object", error);
  else if (scan_eat (&s, '}'))
    ok = TRUE;
  else
    for (;;) {
      int id;
      if (!scan_string (&s, key) || !scan_eat (&s, ':') || !scan_id (&s, &id)) {
        ok = scan_error (&s, "model.vocab", "\"token\": id", error);
        break;
      }
      g_hash_table_insert (tok->vocab, g_string_chunk_insert_len (tok->strings, key->str, key->len),
                           GINT_TO_POINTER (id));
      tok->n_ids = MAX (tok->n_ids, id + 1);
      if (scan_eat (&s, '}'))
        break;
      if (!scan_eat (&s, ',')) {
        ok = scan_error (&s, "model.vocab", "',' or '}'", error);
        break;
      }
    }
  g_string_free (key, TRUE);
  return ok;
}

/* One merge, "a b" or ["a", "b"], as a and b in `a` (and the joined pair in `ab`). */
static gboolean
scan_merge (Scan *s, GString *a, GString *b, GString *ab)
{
  scan_ws (s);
  if (s->p < s->end && *s->p == '"') {
    const char *sp;
    if (!scan_string (s, ab) || !(sp = strchr (ab->str, ' ')))
      return FALSE;
    g_string_assign (a, "");
    g_string_append_len (a, ab->str, sp - ab->str);
    g_string_assign (b, sp + 1);
  } else if (!scan_eat (s, '[') || !scan_string (s, a) || !scan_eat (s, ',') || !scan_string (s, b)
             || !scan_eat (s, ']')) {
    return FALSE;
  }
  g_string_assign (ab, a->str);
  g_string_append (ab, b->str);
  return TRUE;
}

static void
merges_alloc (VlmTokenizer *tok, guint n)
{
  guint64 cap = 16;
  while (cap < 2 * (guint64) n)
    cap *= 2;
  tok->merges = g_new (MergeSlot, cap);
  memset (tok->merges, 0xFF, cap * sizeof (MergeSlot));
  tok->merges_mask = cap - 1;
}

/* Counts the top-level entries of the array in r (the table is sized first). */
static guint
count_entries (Range r)
{
  Scan s = { r.start, r.end, r.start };
  guint n = 0;
  if (!scan_eat (&s, '[') || scan_eat (&s, ']'))
    return 0;
  do
    n++;
  while (scan_skip_value (&s) && scan_eat (&s, ','));
  return n;
}

/* model.merges: ["a b", …] or [["a", "b"], …]; rank = position. */
static gboolean
parse_merges (VlmTokenizer *tok, Range r, const char *base, GError **error)
{
  Scan s = { r.start, r.end, base };
  GString *a = g_string_new (NULL), *b = g_string_new (NULL), *ab = g_string_new (NULL);
  gboolean ok = TRUE;
  merges_alloc (tok, r.start ? count_entries (r) : 0);
  if (!r.start)
    ok = vlm_json_bad_key (error, "model", "merges", "an array");
  else if (!scan_eat (&s, '['))
    ok = scan_error (&s, "model.merges", "an array", error);
  else if (!scan_eat (&s, ']'))
    for (int rank = 0;; rank++) {
      int ia, ib, inew;
      MergeSlot *slot;
      if (!scan_merge (&s, a, b, ab)) {
        ok = scan_error (&s, "model.merges", "\"a b\" or [\"a\", \"b\"]", error);
        break;
      }
      ia = vocab_id (tok, a->str), ib = vocab_id (tok, b->str), inew = vocab_id (tok, ab->str);
      if (ia < 0 || ib < 0 || inew < 0) {
        g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                     "model.merges[%d]: \"%s\" + \"%s\": a token is not in model.vocab", rank, a->str, b->str);
        ok = FALSE;
        break;
      }
      /* A repeated pair keeps its last rank, as HF's HashMap collect does. */
      slot = merge_slot (tok, pair_key (ia, ib));
      *slot = (MergeSlot) { pair_key (ia, ib), rank, inew };
      if (scan_eat (&s, ']'))
        break;
      if (!scan_eat (&s, ',')) {
        ok = scan_error (&s, "model.merges", "',' or ']'", error);
        break;
      }
    }
  g_string_free (a, TRUE);
  g_string_free (b, TRUE);
  g_string_free (ab, TRUE);
  return ok;
}

/* An optional string member that counts as absent when empty. */
static gboolean
opt_nonempty (JsonObject *o, const char *key, char **out, GError **error)
{
  const char *s;
  if (!vlm_json_opt_string (o, "model", key, &s, error))
    return FALSE;
  *out = s && *s ? g_strdup (s) : NULL;
  return TRUE;
}

static gboolean
parse_bpe (VlmTokenizer *tok, JsonObject *model, const RawModel *raw, GError **error)
{
  JsonNode *dropout = vlm_json_member (model, "dropout");
  const char *unk;
  tok->model = MODEL_BPE;
  if (dropout && (!JSON_NODE_HOLDS_VALUE (dropout) || json_node_get_double (dropout) != 0.0))
    return unsupported (error, "model.dropout", "BPE dropout");
  if (!parse_vocab (tok, raw->vocab, raw->base, error)
      || !parse_merges (tok, raw->merges, raw->base, error)
      || !vlm_json_opt_string (model, "model", "unk_token", &unk, error)
      || !opt_nonempty (model, "continuing_subword_prefix", &tok->subword_prefix, error)
      || !opt_nonempty (model, "end_of_word_suffix", &tok->word_suffix, error)
      || !vlm_json_opt_bool (model, "model", "byte_fallback", &tok->byte_fallback, error)
      || !vlm_json_opt_bool (model, "model", "fuse_unk", &tok->fuse_unk, error)
      || !vlm_json_opt_bool (model, "model", "ignore_merges", &tok->ignore_merges, error))
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
parse_wordpiece (VlmTokenizer *tok, JsonObject *model, const RawModel *raw, GError **error)
{
  const char *unk = NULL;
  tok->model = MODEL_WORDPIECE;
  tok->max_input_chars = 100;
  if (!parse_vocab (tok, raw->vocab, raw->base, error)
      || !vlm_json_req_string (model, "model", "unk_token", &unk, error)
      || !opt_nonempty (model, "continuing_subword_prefix", &tok->subword_prefix, error)
      || !vlm_json_opt_uint (model, "model", "max_input_chars_per_word", &tok->max_input_chars, error))
    return FALSE;
  tok->unk_id = vocab_id (tok, unk);
  if (tok->unk_id < 0)
    return vlm_json_bad_key (error, "model", "unk_token", "a token of model.vocab");
  if (!tok->subword_prefix)
    tok->subword_prefix = g_strdup ("##");
  return TRUE;
}

static gboolean
parse_model (VlmTokenizer *tok, JsonObject *root, const RawModel *raw, GError **error)
{
  JsonObject *model = vlm_json_req_object (root, "", "model", error);
  const char *type;
  if (!model || !vlm_json_req_string (model, "model", "type", &type, error))
    return FALSE;
  if (strcmp (type, "BPE") == 0)
    return parse_bpe (tok, model, raw, error);
  if (strcmp (type, "WordPiece") == 0)
    return parse_wordpiece (tok, model, raw, error);
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
    return unsupported (error, where, type);
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
  if (!parse_model (tok, root, raw, error))
    return FALSE;
  if (vlm_json_member (root, "normalizer")
      && !parse_step (&normalizer_family, vlm_json_member (root, "normalizer"), "normalizer", &tok->normalizer, error))
    return FALSE;
  if (vlm_json_member (root, "pre_tokenizer")
      && !parse_step (&pre_tokenizer_family, vlm_json_member (root, "pre_tokenizer"), "pre_tokenizer",
                      &tok->pre_tokenizer, error))
    return FALSE;
  if (vlm_json_member (root, "decoder")
      && !parse_step (&decoder_family, vlm_json_member (root, "decoder"), "decoder", &tok->decoder, error))
    return FALSE;
  if ((pp = vlm_json_member (root, "post_processor"))
      && !parse_post_processor (pp, "post_processor", &tok->template, error))
    return FALSE;
  return parse_added_tokens (tok, root, error) && build_id_table (tok, raw->len, error);
}

static gboolean is_clip_class (const char *cls);

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
          && is_clip_class (json_node_get_string (cls)) && tok->word_suffix)
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
  step_free (tok->normalizer);
  step_free (tok->pre_tokenizer);
  step_free (tok->decoder);
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
  RawModel raw = { locate_model_member (text, len, "vocab"),
                   locate_model_member (text, len, "merges"), text, len };
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
    byte_level_tables (tok);
    if (!parse_root (tok, json_node_get_object (root), &raw, error)) {
      g_prefix_error (error, "%s: ", file);
      g_clear_pointer (&tok, vlm_tokenizer_free);
    }
  }
  g_object_unref (parser);
  g_free (rest);
  return tok;
}

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

static gboolean
is_clip_class (const char *cls)
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
static char *
clip_tokenizer_json (const char *dir, const char *tokenizer_json, GError **error)
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
  if (!is_clip_class (cls)) {
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
    char *json = clip_tokenizer_json (path, file, error);
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
static char *
normalize (const Step *s, const char *text)
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
      char *next = normalize (g_ptr_array_index (s->children, i), cur);
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

/* A piece of text on its way to the model, or an added token already found
 * (id >= 0). at_start: the piece begins the input (Metaspace's "first"
 * scheme prepends ▁ only there). */
typedef struct {
  char *text;
  int id;
  gboolean at_start;
} Piece;

static void
piece_clear (gpointer p)
{
  g_free (((Piece *) p)->text);
}

static GArray *
pieces_new (void)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (Piece));
  g_array_set_clear_func (a, piece_clear);
  return a;
}

static void
push_text (GArray *out, const char *text, gsize len, gboolean at_start)
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
    push_text (out, p->text + sp.start, sp.end - sp.start, p->at_start && sp.start == 0);
  }
  g_array_unref (kept);
  g_array_unref (spans);
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
  if (start > 0 && is_word_char (g_utf8_get_char (g_utf8_prev_char (text + start))))
    return FALSE;
  return !(text[stop] && is_word_char (g_utf8_get_char (text + stop)));
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
      push_text (out, text + piece, start - piece, at_start && piece == 0);
    g_array_append_val (out, ((Piece) { NULL, t->id, FALSE }));
    piece = pos = stop;
  }
  if (piece < len)
    push_text (out, text + piece, len - piece, at_start && piece == 0);
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
  GArray *parts = pieces_new ();
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
  Piece q = { replace_all (p->text, space, 1), -1, p->at_start };
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
static GArray *
pre_tokenize (const VlmTokenizer *tok, const Step *s, GArray *in)
{
  GArray *out;
  if (s->kind == P_SEQUENCE) {
    for (guint i = 0; i < s->children->len; i++)
      in = pre_tokenize (tok, g_ptr_array_index (s->children, i), in);
    return in;
  }
  out = pieces_new ();
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

/* ───────────────────────── BPE ───────────────────────── */

typedef struct {
  int id;                   /* -1: merged into its left neighbour */
  int prev, next;           /* -1: none */
} Symbol;

typedef struct {
  int rank, pos, new_id;
} Candidate;

/* Heap order: lowest rank first, leftmost first among equal ranks (as HF). */
static gboolean
cand_before (const Candidate *a, const Candidate *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (GArray *h, Candidate c)
{
  guint i = h->len;
  g_array_append_val (h, c);
  for (; i > 0 && cand_before (&c, &g_array_index (h, Candidate, (i - 1) / 2)); i = (i - 1) / 2)
    g_array_index (h, Candidate, i) = g_array_index (h, Candidate, (i - 1) / 2);
  g_array_index (h, Candidate, i) = c;
}

static Candidate
heap_pop (GArray *h)
{
  Candidate top = g_array_index (h, Candidate, 0), last = g_array_index (h, Candidate, h->len - 1);
  guint i = 0, n = h->len - 1;
  g_array_set_size (h, n);
  while (n > 0) {
    guint c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && cand_before (&g_array_index (h, Candidate, c + 1), &g_array_index (h, Candidate, c)))
      c++;
    if (!cand_before (&g_array_index (h, Candidate, c), &last))
      break;
    g_array_index (h, Candidate, i) = g_array_index (h, Candidate, c);
    i = c;
  }
  if (n > 0)
    g_array_index (h, Candidate, i) = last;
  return top;
}

/* Queues the merge of the symbol at `pos` with its right neighbour, if one exists. */
static void
queue_pair (const VlmTokenizer *tok, const Symbol *syms, int pos, GArray *heap)
{
  const MergeSlot *m;
  if (syms[pos].next < 0)
    return;
  m = merge_find (tok, syms[pos].id, syms[syms[pos].next].id);
  if (m)
    heap_push (heap, (Candidate) { m->rank, pos, m->new_id });
}

/* Can every byte of [p, end) be spelled as a <0xNN> token? */
static gboolean
has_byte_tokens (const VlmTokenizer *tok, const char *p, const char *end)
{
  for (; p < end; p++) {
    if (tok->byte_ids[(guchar) *p] < 0)
      return FALSE;
  }
  return TRUE;
}

/* The word's chars as initial ids: with the continuing-subword prefix and
 * end-of-word suffix where HF adds them; a char missing from the vocab becomes
 * its <0xNN> byte tokens (byte_fallback) or unk (runs fused if fuse_unk). */
static GArray *
bpe_initial_ids (const VlmTokenizer *tok, const char *word)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (int));
  GString *key = g_string_new (NULL);
  gboolean unk_pending = FALSE;
  for (const char *p = word, *next; *p; p = next) {
    int id;
    next = g_utf8_next_char (p);
    g_string_assign (key, p != word && tok->subword_prefix ? tok->subword_prefix : "");
    g_string_append_len (key, p, next - p);
    if (!*next && tok->word_suffix)
      g_string_append (key, tok->word_suffix);
    id = vocab_id (tok, key->str);
    if (id >= 0 || (tok->byte_fallback && has_byte_tokens (tok, p, next))) {
      if (unk_pending)
        g_array_append_val (ids, tok->unk_id), unk_pending = FALSE;
      if (id >= 0)
        g_array_append_val (ids, id);
      for (const char *b = p; id < 0 && b < next; b++)
        g_array_append_val (ids, tok->byte_ids[(guchar) *b]);
    } else if (tok->unk_id >= 0) {
      if (unk_pending && !tok->fuse_unk)
        g_array_append_val (ids, tok->unk_id);
      unk_pending = TRUE;
    }
  }
  if (unk_pending)
    g_array_append_val (ids, tok->unk_id);
  g_string_free (key, TRUE);
  return ids;
}

/* BPE on one pre-token: merge the lowest-ranked adjacent pair until none is
 * left, with a heap of candidates over a linked list of symbols. */
static void
bpe_word (const VlmTokenizer *tok, const char *word, GArray *ids)
{
  int whole = tok->ignore_merges ? vocab_id (tok, word) : -1;
  GArray *init, *heap;
  Symbol *syms;
  int n;
  if (whole >= 0) {
    g_array_append_val (ids, whole);
    return;
  }
  init = bpe_initial_ids (tok, word);
  n = (int) init->len;
  syms = g_new (Symbol, MAX (n, 1));
  heap = g_array_new (FALSE, FALSE, sizeof (Candidate));
  for (int i = 0; i < n; i++)
    syms[i] = (Symbol) { g_array_index (init, int, i), i - 1, i + 1 < n ? i + 1 : -1 };
  for (int i = 0; i < n; i++)
    queue_pair (tok, syms, i, heap);
  while (heap->len > 0) {
    Candidate c = heap_pop (heap);
    Symbol *s = &syms[c.pos];
    const MergeSlot *m = s->id >= 0 && s->next >= 0 ? merge_find (tok, s->id, syms[s->next].id) : NULL;
    if (!m || m->new_id != c.new_id)
      continue;   /* stale: a neighbour merged first */
    s->id = c.new_id;
    syms[s->next].id = -1;
    s->next = syms[s->next].next;
    if (s->next >= 0)
      syms[s->next].prev = c.pos;
    if (s->prev >= 0)
      queue_pair (tok, syms, s->prev, heap);
    queue_pair (tok, syms, c.pos, heap);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = syms[i].next)
    g_array_append_val (ids, syms[i].id);
  g_array_unref (heap);
  g_array_unref (init);
  g_free (syms);
}

/* ───────────────────────── WordPiece ───────────────────────── */

/* Greedy longest-match-first; a word with any unmatchable rest is one [UNK]. */
static void
wordpiece_word (const VlmTokenizer *tok, const char *word, GArray *ids)
{
  gsize len = strlen (word), mark = ids->len;
  GString *cand = g_string_new (NULL);
  const char *start = word;
  if (g_utf8_strlen (word, -1) > tok->max_input_chars)
    start = NULL;
  while (start && *start) {
    const char *end = word + len;
    int id = -1;
    for (; end > start; end = g_utf8_prev_char (end)) {
      g_string_assign (cand, start > word ? tok->subword_prefix : "");
      g_string_append_len (cand, start, end - start);
      if ((id = vocab_id (tok, cand->str)) >= 0)
        break;
    }
    if (id < 0)
      start = NULL;
    else
      g_array_append_val (ids, id), start = end;
  }
  if (!start) {
    g_array_set_size (ids, mark);
    g_array_append_val (ids, tok->unk_id);
  }
  g_string_free (cand, TRUE);
}

/* ───────────────────────── encode ───────────────────────── */

/* Normalizes one raw text piece, splits out normalized added tokens, then
 * pre-tokenizes and runs the model on the rest. */
static void
encode_raw_piece (const VlmTokenizer *tok, const Piece *raw, GArray *ids)
{
  char *norm = tok->normalizer ? normalize (tok->normalizer, raw->text) : g_strdup (raw->text);
  GArray *parts = pieces_new ();
  split_added (tok, norm, TRUE, raw->at_start, parts);
  g_free (norm);
  for (guint i = 0; i < parts->len; i++) {
    Piece *p = &g_array_index (parts, Piece, i);
    GArray *words;
    if (p->id >= 0) {
      g_array_append_val (ids, p->id);
      continue;
    }
    words = pieces_new ();
    g_array_append_val (words, *p);
    p->text = NULL;   /* moved into words */
    if (tok->pre_tokenizer)
      words = pre_tokenize (tok, tok->pre_tokenizer, words);
    for (guint w = 0; w < words->len; w++) {
      const char *text = g_array_index (words, Piece, w).text;
      if (tok->model == MODEL_BPE)
        bpe_word (tok, text, ids);
      else
        wordpiece_word (tok, text, ids);
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
  raw = pieces_new ();
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

/* ───────────────────────── decoders ───────────────────────── */

/* transformers' clean_up_tokenization, and HF's WordPiece decoder cleanup,
 * which also turns " do not" into " don't". */
static char *
cleanup_spaces (const char *text, gboolean wordpiece)
{
  static const char *const pairs[][2] = {
    { " .", "." }, { " ?", "?" }, { " !", "!" }, { " ,", "," }, { " ' ", "'" },
    { " n't", "n't" }, { " 'm", "'m" }, { " do not", " don't" }, { " 's", "'s" },
    { " 've", "'ve" }, { " 're", "'re" },
  };
  char *cur = replace_all (text, pairs, 7);
  char *mid = wordpiece ? replace_all (cur, pairs + 7, 1) : g_strdup (cur);
  char *res = replace_all (mid, pairs + 8, 3);
  g_free (cur);
  g_free (mid);
  return res;
}

static GPtrArray *
strings_new (void)
{
  return g_ptr_array_new_with_free_func (g_free);
}

/* ByteLevel: all tokens back to bytes, then one lossy UTF-8 string. A token
 * with a char outside the byte alphabet (an added token) keeps its own bytes. */
static GPtrArray *
decode_byte_level (const VlmTokenizer *tok, GPtrArray *in)
{
  GByteArray *bytes = g_byte_array_new ();
  GString *text = g_string_new (NULL);
  GPtrArray *out = strings_new ();
  for (guint i = 0; i < in->len; i++) {
    const char *t = g_ptr_array_index (in, i);
    guint mark = bytes->len;
    for (const char *p = t; *p; p = g_utf8_next_char (p)) {
      gunichar c = g_utf8_get_char (p);
      guint8 b;
      if (c >= G_N_ELEMENTS (tok->char_to_byte) || tok->char_to_byte[c] < 0) {
        g_byte_array_set_size (bytes, mark);
        g_byte_array_append (bytes, (const guint8 *) t, strlen (t));
        break;
      }
      b = (guint8) tok->char_to_byte[c];
      g_byte_array_append (bytes, &b, 1);
    }
  }
  append_lossy (text, bytes->data, bytes->len);
  g_ptr_array_add (out, g_string_free (text, FALSE));
  g_byte_array_unref (bytes);
  return out;
}

/* "<0xNN>" → NN, anything else → -1. */
static int
byte_token_value (const char *t)
{
  if (strlen (t) != 6 || strncmp (t, "<0x", 3) != 0 || t[5] != '>' || !g_ascii_isxdigit (t[3])
      || !g_ascii_isxdigit (t[4]))
    return -1;
  return g_ascii_xdigit_value (t[3]) * 16 + g_ascii_xdigit_value (t[4]);
}

/* Emits collected fallback bytes: one string if valid UTF-8, else one U+FFFD per byte. */
static void
flush_bytes (GByteArray *pending, GPtrArray *out)
{
  if (pending->len == 0)
    return;
  if (g_utf8_validate_len ((const char *) pending->data, pending->len, NULL))
    g_ptr_array_add (out, g_strndup ((const char *) pending->data, pending->len));
  else
    for (guint i = 0; i < pending->len; i++)
      g_ptr_array_add (out, g_strdup ("\xEF\xBF\xBD"));
  g_byte_array_set_size (pending, 0);
}

static GPtrArray *
decode_byte_fallback (GPtrArray *in)
{
  GByteArray *pending = g_byte_array_new ();
  GPtrArray *out = strings_new ();
  for (guint i = 0; i < in->len; i++) {
    const char *t = g_ptr_array_index (in, i);
    int v = byte_token_value (t);
    guint8 b = (guint8) v;
    if (v >= 0) {
      g_byte_array_append (pending, &b, 1);
      continue;
    }
    flush_bytes (pending, out);
    g_ptr_array_add (out, g_strdup (t));
  }
  flush_bytes (pending, out);
  g_byte_array_unref (pending);
  return out;
}

/* Strip: cut up to s->start copies of s->content at the front, s->stop at the back. */
static char *
strip_token (const Step *s, const char *t)
{
  gsize cl = strlen (s->content);
  const char *b = t, *e = t + strlen (t);
  for (int k = 0; k < s->start && g_str_has_prefix (b, s->content); k++)
    b += cl;
  for (int k = 0; k < s->stop && (gsize) (e - b) >= cl && memcmp (e - cl, s->content, cl) == 0; k++)
    e -= cl;
  return g_strndup (b, (gsize) (e - b));
}

/* The decoders that map each token (the i-th of n) to one string. */
static char *
decode_token (const Step *s, const char *t, guint i, guint n)
{
  const char *const meta[1][2] = { { s->content, i == 0 && s->prepend != PREPEND_NEVER ? "" : " " } };
  const char *const suffix[1][2] = { { s->content, i + 1 == n ? "" : " " } };
  switch (s->kind) {
  case D_REPLACE:
    return g_regex_replace_literal (s->pattern, t, -1, 0, s->content, 0, NULL);
  case D_WORDPIECE: {
    char *joined = i == 0 ? g_strdup (t)
                   : g_str_has_prefix (t, s->content) ? g_strdup (t + strlen (s->content))
                   : g_strconcat (" ", t, NULL);
    char *clean = s->cleanup ? cleanup_spaces (joined, TRUE) : NULL;
    return clean ? (g_free (joined), clean) : joined;
  }
  case D_METASPACE:   /* HF drops the replacement in the first token when it prepends */
    return replace_all (t, meta, 1);
  case D_STRIP:
    return strip_token (s, t);
  case D_BPE:
    return *s->content ? replace_all (t, suffix, 1) : g_strdup (t);
  default:
    g_assert_not_reached ();
  }
}

/* Runs decoder `s` over the token strings `in` (consumed); returns the new list. */
static GPtrArray *
decode_chain (const VlmTokenizer *tok, const Step *s, GPtrArray *in)
{
  GPtrArray *out;
  switch (s->kind) {
  case D_SEQUENCE:
    for (guint i = 0; i < s->children->len; i++)
      in = decode_chain (tok, g_ptr_array_index (s->children, i), in);
    return in;
  case D_BYTE_LEVEL:
    out = decode_byte_level (tok, in);
    break;
  case D_BYTE_FALLBACK:
    out = decode_byte_fallback (in);
    break;
  case D_FUSE:
    out = strings_new ();
    g_ptr_array_add (in, NULL);
    g_ptr_array_add (out, g_strjoinv ("", (char **) in->pdata));
    break;
  default:
    out = strings_new ();
    for (guint i = 0; i < in->len; i++)
      g_ptr_array_add (out, decode_token (s, g_ptr_array_index (in, i), i, in->len));
  }
  g_ptr_array_unref (in);
  return out;
}

char *
vlm_tokenizer_decode (const VlmTokenizer *tok, const int *ids, int n_ids, gboolean skip_special)
{
  GPtrArray *tokens;
  char *text;
  g_return_val_if_fail (tok != NULL && (ids != NULL || n_ids <= 0), NULL);
  tokens = strings_new ();
  for (int i = 0; i < n_ids; i++) {
    const char *t = vlm_tokenizer_id_to_token (tok, ids[i]);
    if (t && !(skip_special && tok->is_special[ids[i]]))
      g_ptr_array_add (tokens, g_strdup (t));
  }
  if (tok->decoder)
    tokens = decode_chain (tok, tok->decoder, tokens);
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
    char *clean = cleanup_spaces (text, FALSE);
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
  return vocab_id (tok, token);
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
