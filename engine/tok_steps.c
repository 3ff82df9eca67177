/* tok_steps.c — the pipeline step tree every stage uses: one node type for
 * normalizers, pre-tokenizers and decoders, parsed by family from
 * tokenizer.json (Sequence handled here, each type by its stage's table)
 * and freed. */
#include "tok.h"

#include <string.h>

void
vlm_tok_step_free (Step *s)
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

gboolean
vlm_tok_unsupported (GError **error, const char *where, const char *type)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_UNSUPPORTED_TOKENIZER,
               "%s: type '%s' is not supported", where, type);
  return FALSE;
}

static gboolean parse_step_node (const StepFamily *fam, JsonNode *node, const char *where, Step **out,
                                 GError **error);

/* Sequence: the children under fam->list_key, each parsed recursively. */
static gboolean
parse_sequence (const StepFamily *fam, Step *s, JsonObject *o, const char *where, GError **error)
{
  JsonArray *list = vlm_json_req_array (o, where, fam->list_key, error);
  if (!list)
    return FALSE;
  s->children = g_ptr_array_new_with_free_func ((GDestroyNotify) vlm_tok_step_free);
  for (guint i = 0; i < json_array_get_length (list); i++) {
    char *w = g_strdup_printf ("%s.%s[%u]", where, fam->list_key, i);
    Step *child = NULL;
    gboolean ok = parse_step_node (fam, json_array_get_element (list, i), w, &child, error);
    g_free (w);
    if (!ok)
      return FALSE;
    g_ptr_array_add (s->children, child);
  }
  return TRUE;
}

static gboolean
parse_step_node (const StepFamily *fam, JsonNode *node, const char *where, Step **out, GError **error)
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
      vlm_tok_step_free (s);
      return vlm_tok_unsupported (error, where, type);
    }
    s->kind = t->kind;
    ok = !t->parse || t->parse (s, json_node_get_object (node), where, error);
  }
  if (!ok) {
    vlm_tok_step_free (s);
    return FALSE;
  }
  *out = s;
  return TRUE;
}

gboolean
vlm_tok_parse_step (const StepFamily *fam, JsonNode *node, const char *where, Step **out, GError **error)
{
  return parse_step_node (fam, node, where, out, error);
}
