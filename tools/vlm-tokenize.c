/* vlm-tokenize — encode text to token ids, or decode ids to text, with a
 * model folder's tokenizer.json, exactly as the engine does.
 *
 *   vlm-tokenize MODEL_DIR "a red ball"            ids, without special tokens
 *   vlm-tokenize --special MODEL_DIR "a red ball"  with the post-processor's specials
 *   vlm-tokenize --decode MODEL_DIR 101 1037 102   text (specials skipped)
 *   vlm-tokenize --decode --keep-special MODEL_DIR "101 1037 102"
 *
 * Errors go to stderr and the exit status is 1. */
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer.h"

/* Parses ids from args, each holding one or more whitespace-separated ints. */
static GArray *
parse_ids (char **args, GError **error)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (int));
  for (; *args; args++) {
    char **words = g_strsplit_set (*args, " \t\n,", -1);
    for (char **w = words; *w; w++) {
      gint64 v;
      if (!**w)
        continue;
      if (!g_ascii_string_to_signed (*w, 10, 0, G_MAXINT, &v, error)) {
        g_prefix_error (error, "bad token id: ");
        g_strfreev (words);
        g_array_unref (ids);
        return NULL;
      }
      g_array_append_val (ids, (int) { (int) v });
    }
    g_strfreev (words);
  }
  return ids;
}

static gboolean
run_encode (const VlmTokenizer *tok, const char *text, gboolean special, GError **error)
{
  int n = 0;
  int *ids = vlm_tokenizer_encode (tok, text, special, &n, error);
  if (!ids)
    return FALSE;
  for (int i = 0; i < n; i++)
    printf (i ? " %d" : "%d", ids[i]);
  printf ("\n");
  g_free (ids);
  return TRUE;
}

static gboolean
run_decode (const VlmTokenizer *tok, char **args, gboolean keep_special, GError **error)
{
  GArray *ids = parse_ids (args, error);
  char *text;
  if (!ids)
    return FALSE;
  text = vlm_tokenizer_decode (tok, (const int *) ids->data, (int) ids->len, !keep_special);
  printf ("%s\n", text);
  g_free (text);
  g_array_unref (ids);
  return TRUE;
}

int
main (int argc, char **argv)
{
  gboolean special = FALSE, decode = FALSE, keep_special = FALSE;
  GOptionEntry entries[] = {
    { "special", 's', 0, G_OPTION_ARG_NONE, &special, "Add the special tokens of the post-processor", NULL },
    { "decode", 'd', 0, G_OPTION_ARG_NONE, &decode, "Decode ids (remaining arguments) to text", NULL },
    { "keep-special", 'k', 0, G_OPTION_ARG_NONE, &keep_special, "With --decode: keep special tokens", NULL },
    { NULL },
  };
  GOptionContext *ctx = g_option_context_new ("MODEL_DIR TEXT | --decode MODEL_DIR IDS…");
  GError *error = NULL;
  VlmTokenizer *tok = NULL;
  gboolean ok;

  g_option_context_set_summary (ctx, "Tokenize text with a HuggingFace model folder's tokenizer.json.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  ok = g_option_context_parse (ctx, &argc, &argv, &error);
  if (ok && (argc < 3 || (!decode && argc != 3))) {
    char *help = g_option_context_get_help (ctx, TRUE, NULL);
    fprintf (stderr, "%s", help);
    g_free (help);
    g_option_context_free (ctx);
    return 1;
  }
  ok = ok && (tok = vlm_tokenizer_load (argv[1], &error)) != NULL;
  if (ok)
    ok = decode ? run_decode (tok, argv + 2, keep_special, &error)
                : run_encode (tok, argv[2], special, &error);
  if (!ok)
    fprintf (stderr, "vlm-tokenize: %s\n", error->message);
  g_clear_error (&error);
  vlm_tokenizer_free (tok);
  g_option_context_free (ctx);
  return ok ? 0 : 1;
}
