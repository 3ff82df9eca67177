/* fuzz_tokenizer.c — tokenizer.json: loading (normalizers, pre-tokenizers,
 * BPE / WordPiece models, added tokens, post-processors, decoders), then
 * encoding a few texts and the input's own first line, and decoding. */
#include "fuzz.h"
#include "tokenizer.h"

static const char *const texts[] = {
  "a red ball", "  Hello,   WORLD! 123 ", "ünïcödé 日本語 🙂", "<s>[CLS] a [SEP]</s>", "",
};

static void
round_trip (const VlmTokenizer *tok, const char *text)
{
  int n = 0;
  GError *error = NULL;
  int *ids = vlm_tokenizer_encode (tok, text, TRUE, &n, &error);
  if (!ids) {
    g_error_free (error);
    return;
  }
  g_free (vlm_tokenizer_decode (tok, ids, n, TRUE));
  g_free (vlm_tokenizer_decode (tok, ids, n, FALSE));
  g_free (ids);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  GError *error = NULL;
  VlmTokenizer *tok = vlm_tokenizer_load (fuzz_write ("tokenizer.json", data, size), &error);
  if (!tok) {
    g_error_free (error);
    return 0;
  }
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    round_trip (tok, texts[i]);
  /* the input's first line as text (valid UTF-8 up to where it is not) */
  const char *end;
  g_autofree char *line = g_strndup ((const char *) data, MIN (size, 256));
  g_utf8_validate (line, -1, &end);
  line[end - line] = '\0';
  round_trip (tok, line);
  /* ids out of range decode to nothing */
  int odd[] = {-1, 0, 1, vlm_tokenizer_vocab_size (tok), G_MAXINT};
  g_free (vlm_tokenizer_decode (tok, odd, G_N_ELEMENTS (odd), FALSE));
  vlm_tokenizer_free (tok);
  return 0;
}
