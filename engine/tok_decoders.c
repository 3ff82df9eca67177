/* tok_decoders.c — the decoder chain: tokens back to text (ByteLevel,
 * WordPiece, Metaspace, Replace, ByteFallback, Fuse, Strip, BPE).
 * ref: huggingface/tokenizers, tokenizers/src/decoders */
#include "tok.h"

#include <string.h>

/* ───────────────────────── parsing the steps ───────────────────────── */

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

static const StepType decoder_types[] = {
  { "ByteLevel", D_BYTE_LEVEL, NULL },
  { "WordPiece", D_WORDPIECE, parse_wordpiece_decoder },
  { "Metaspace", D_METASPACE, vlm_tok_parse_metaspace },
  { "Replace", D_REPLACE, vlm_tok_parse_replace },
  { "ByteFallback", D_BYTE_FALLBACK, NULL },
  { "Fuse", D_FUSE, NULL },
  { "Strip", D_STRIP, parse_strip_decoder },
  { "BPEDecoder", D_BPE, parse_bpe_decoder },
  { NULL, 0, NULL },
};

const StepFamily vlm_tok_decoder_family = { "decoder", "decoders", D_SEQUENCE, decoder_types };

/* ───────────────────────── decoders ───────────────────────── */

/* transformers' clean_up_tokenization, and HF's WordPiece decoder cleanup,
 * which also turns " do not" into " don't". */
char *
vlm_tok_cleanup_spaces (const char *text, gboolean wordpiece)
{
  static const char *const pairs[][2] = {
    { " .", "." }, { " ?", "?" }, { " !", "!" }, { " ,", "," }, { " ' ", "'" },
    { " n't", "n't" }, { " 'm", "'m" }, { " do not", " don't" }, { " 's", "'s" },
    { " 've", "'ve" }, { " 're", "'re" },
  };
  char *cur = vlm_tok_replace_all (text, pairs, 7);
  char *mid = wordpiece ? vlm_tok_replace_all (cur, pairs + 7, 1) : g_strdup (cur);
  char *res = vlm_tok_replace_all (mid, pairs + 8, 3);
  g_free (cur);
  g_free (mid);
  return res;
}

GPtrArray *
vlm_tok_strings_new (void)
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
  GPtrArray *out = vlm_tok_strings_new ();
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
  vlm_tok_append_lossy (text, bytes->data, bytes->len);
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
  GPtrArray *out = vlm_tok_strings_new ();
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
    char *clean = s->cleanup ? vlm_tok_cleanup_spaces (joined, TRUE) : NULL;
    return clean ? (g_free (joined), clean) : joined;
  }
  case D_METASPACE:   /* HF drops the replacement in the first token when it prepends */
    return vlm_tok_replace_all (t, meta, 1);
  case D_STRIP:
    return strip_token (s, t);
  case D_BPE:
    return *s->content ? vlm_tok_replace_all (t, suffix, 1) : g_strdup (t);
  default:
    g_assert_not_reached ();
  }
}

/* Runs decoder `s` over the token strings `in` (consumed); returns the new list. */
GPtrArray *
vlm_tok_decode_chain (const VlmTokenizer *tok, const Step *s, GPtrArray *in)
{
  GPtrArray *out;
  switch (s->kind) {
  case D_SEQUENCE:
    for (guint i = 0; i < s->children->len; i++)
      in = vlm_tok_decode_chain (tok, g_ptr_array_index (s->children, i), in);
    return in;
  case D_BYTE_LEVEL:
    out = decode_byte_level (tok, in);
    break;
  case D_BYTE_FALLBACK:
    out = decode_byte_fallback (in);
    break;
  case D_FUSE:
    out = vlm_tok_strings_new ();
    g_ptr_array_add (in, NULL);
    g_ptr_array_add (out, g_strjoinv ("", (char **) in->pdata));
    break;
  default:
    out = vlm_tok_strings_new ();
    for (guint i = 0; i < in->len; i++)
      g_ptr_array_add (out, decode_token (s, g_ptr_array_index (in, i), i, in->len));
  }
  g_ptr_array_unref (in);
  return out;
}
