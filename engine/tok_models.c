/* tok_models.c — the tokenizer models: BPE (merges, byte fallback) and
 * WordPiece, and their vocabularies and merges read straight from the
 * text of tokenizer.json (json-glib would build a node per entry).
 * ref: huggingface/tokenizers, tokenizers/src/models/{bpe,wordpiece} */
#include "tok.h"

#include <string.h>

/* ───────────────────────── loading: the model ───────────────────────── */

int
vlm_tok_vocab_id (const VlmTokenizer *tok, const char *token)
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

/* ───────────────────────── loading: vocab and merges ───────────────────────── */

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
Range
vlm_tok_locate_model_member (const char *text, gsize len, const char *key)
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
      ia = vlm_tok_vocab_id (tok, a->str), ib = vlm_tok_vocab_id (tok, b->str), inew = vlm_tok_vocab_id (tok, ab->str);
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
    return vlm_tok_unsupported (error, "model.dropout", "BPE dropout");
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
  tok->unk_id = unk ? vlm_tok_vocab_id (tok, unk) : -1;
  for (int b = 0; b < 256; b++) {
    char name[8];
    g_snprintf (name, sizeof name, "<0x%02X>", b);
    tok->byte_ids[b] = vlm_tok_vocab_id (tok, name);
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
  tok->unk_id = vlm_tok_vocab_id (tok, unk);
  if (tok->unk_id < 0)
    return vlm_json_bad_key (error, "model", "unk_token", "a token of model.vocab");
  if (!tok->subword_prefix)
    tok->subword_prefix = g_strdup ("##");
  return TRUE;
}

gboolean
vlm_tok_parse_model (VlmTokenizer *tok, JsonObject *root, const RawModel *raw, GError **error)
{
  JsonObject *model = vlm_json_req_object (root, "", "model", error);
  const char *type;
  if (!model || !vlm_json_req_string (model, "model", "type", &type, error))
    return FALSE;
  if (strcmp (type, "BPE") == 0)
    return parse_bpe (tok, model, raw, error);
  if (strcmp (type, "WordPiece") == 0)
    return parse_wordpiece (tok, model, raw, error);
  return vlm_tok_unsupported (error, "model", type);
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
    id = vlm_tok_vocab_id (tok, key->str);
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
void
vlm_tok_bpe_word (const VlmTokenizer *tok, const char *word, GArray *ids)
{
  int whole = tok->ignore_merges ? vlm_tok_vocab_id (tok, word) : -1;
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
void
vlm_tok_wordpiece_word (const VlmTokenizer *tok, const char *word, GArray *ids)
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
      if ((id = vlm_tok_vocab_id (tok, cand->str)) >= 0)
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
