/* tokenizer.h — HF `tokenizer.json` tokenizers: WordPiece (BERT), byte-level
 * BPE (GPT-2 / Qwen), SentencePiece-style BPE with byte fallback (Llama), with
 * normalizers, pre-tokenizers, added/special tokens and decoders as the file
 * describes them. Read-only after load; thread-safe. */
#ifndef VLM_TOKENIZER_H
#define VLM_TOKENIZER_H

#include "vlm/vlm.h"

typedef struct VlmTokenizer VlmTokenizer;

/* `path`: a tokenizer.json file or a folder holding one. Errors NOT_FOUND,
 * BAD_CONFIG (malformed json, naming the key), UNSUPPORTED_TOKENIZER
 * (model type, normalizer or pre-tokenizer we do not implement, named). */
VlmTokenizer *vlm_tokenizer_load (const char *path, GError **error);
void vlm_tokenizer_free (VlmTokenizer *tok);

/* Encodes UTF-8 `text`. add_special: apply the post-processor's template
 * (e.g. [CLS] … [SEP], or <s> …). Special/added tokens in the text are
 * matched as HF does. Returns a newly allocated array (g_free) of *n_ids ids;
 * invalid UTF-8 is an error (BAD_ARGUMENT). */
/* [first] + the ids of `text` (NULL or "": none) without special tokens,
 * for decoders whose output continues a text prompt (GIT: first = [CLS];
 * BLIP: bos; GPT-2: decoder_start). A new array (g_free), count in *n_ids;
 * NULL + error as vlm_tokenizer_encode. */
int *vlm_tokenizer_encode_after (const VlmTokenizer *tok, int first, const char *text, int *n_ids, GError **error);
int *vlm_tokenizer_encode (const VlmTokenizer *tok, const char *text, gboolean add_special,
                           int *n_ids, GError **error);

/* Decodes ids to UTF-8 (g_free), as HF decode(skip_special_tokens=skip_special,
 * clean_up_tokenization_spaces per the tokenizer's config). Unknown ids are
 * skipped. */
char *vlm_tokenizer_decode (const VlmTokenizer *tok, const int *ids, int n_ids,
                            gboolean skip_special);

int vlm_tokenizer_vocab_size (const VlmTokenizer *tok);   /* including added tokens */
int vlm_tokenizer_token_to_id (const VlmTokenizer *tok, const char *token); /* -1: none */
const char *vlm_tokenizer_id_to_token (const VlmTokenizer *tok, int id);    /* NULL: none */
gboolean vlm_tokenizer_is_special (const VlmTokenizer *tok, int id);

#endif
