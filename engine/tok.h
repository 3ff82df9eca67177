/* tok.h — the tokenizer's parts (tokenizer.c and the tok_*.c stages):
 * the pipeline step tree, the tokenizer's state and what each stage
 * offers the others. Internal to the tokenizer. */
#ifndef VLM_TOK_H
#define VLM_TOK_H

#include "json.h"
#include "vlm/vlm.h"

#include <json-glib/json-glib.h>

typedef struct VlmTokenizer VlmTokenizer;   /* as tokenizer.h, which tok.h stays below */

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

/* The text of one JSON value; start NULL when absent. */
typedef struct {
  const char *start, *end;
} Range;

/* model.vocab and model.merges as cut out of the file text. */
typedef struct {
  Range vocab, merges;
  const char *base;         /* the file text */
  gsize len;                /* its length */
} RawModel;

/* A piece of text on its way to the model, or an added token already found
 * (id >= 0). at_start: the piece begins the input (Metaspace's "first"
 * scheme prepends ▁ only there). */
typedef struct {
  char *text;
  int id;
  gboolean at_start;
} Piece;

/* ---- tok_steps.c */
void vlm_tok_step_free (Step *s);
/* UNSUPPORTED_TOKENIZER naming `where` and the type; returns FALSE. */
gboolean vlm_tok_unsupported (GError **error, const char *where, const char *type);
/* Parses one step of family `fam` from `node` (an object with "type").
 * On failure *out is NULL and error names `where`. */
gboolean vlm_tok_parse_step (const StepFamily *fam, JsonNode *node, const char *where, Step **out,
                             GError **error);

/* ---- tok_normalize.c */
void vlm_tok_byte_level_tables (VlmTokenizer *tok);
gboolean vlm_tok_is_word_char (gunichar c);
void vlm_tok_append_lossy (GString *out, const guchar *b, gsize n);
char *vlm_tok_replace_all (const char *text, const char *const pairs[][2], int n_pairs);
gboolean vlm_tok_parse_replace (Step *s, JsonObject *o, const char *where, GError **error);
gboolean vlm_tok_parse_metaspace (Step *s, JsonObject *o, const char *where, GError **error);
extern const StepFamily vlm_tok_normalizer_family;
extern const StepFamily vlm_tok_pre_tokenizer_family;
char *vlm_tok_normalize (const Step *s, const char *text);
GArray *vlm_tok_pieces_new (void);
void vlm_tok_push_text (GArray *out, const char *text, gsize len, gboolean at_start);
GArray *vlm_tok_pre_tokenize (const VlmTokenizer *tok, const Step *s, GArray *in);

/* ---- tok_models.c */
int vlm_tok_vocab_id (const VlmTokenizer *tok, const char *token);
Range vlm_tok_locate_model_member (const char *text, gsize len, const char *key);
gboolean vlm_tok_parse_model (VlmTokenizer *tok, JsonObject *root, const RawModel *raw, GError **error);
void vlm_tok_bpe_word (const VlmTokenizer *tok, const char *word, GArray *ids);
void vlm_tok_wordpiece_word (const VlmTokenizer *tok, const char *word, GArray *ids);

/* ---- tok_decoders.c */
extern const StepFamily vlm_tok_decoder_family;
char *vlm_tok_cleanup_spaces (const char *text, gboolean wordpiece);
GPtrArray *vlm_tok_strings_new (void);
GPtrArray *vlm_tok_decode_chain (const VlmTokenizer *tok, const Step *s, GPtrArray *in);

/* ---- tok_convert.c */
gboolean vlm_tok_is_clip_class (const char *cls);
char *vlm_tok_clip_tokenizer_json (const char *dir, const char *tokenizer_json, GError **error);

#endif
