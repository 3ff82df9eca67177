/* json.c — the engine's one layer over json-glib (json.h). */
#include "json.h"
#include "file.h"

#include <math.h>

gboolean
vlm_json_parse_file (JsonParser *parser, const char *path, GError **error)
{
  char *text;
  gsize len;
  GError *jerr = NULL;
  if (!vlm_file_get_contents (path, &text, &len, error))
    return FALSE;
  gboolean ok = json_parser_load_from_data (parser, text, (gssize) len, &jerr);
  g_free (text);
  if (!ok) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: %s", path, jerr->message);
    g_error_free (jerr);
  }
  return ok;
}

JsonObject *
vlm_json_load (const char *path, JsonParser **parser, GError **error)
{
  JsonParser *p = json_parser_new_immutable ();
  if (!vlm_json_parse_file (p, path, error)) {
    g_object_unref (p);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: not a JSON object", path);
    g_object_unref (p);
    return NULL;
  }
  *parser = p;
  return json_node_get_object (root);
}

/* The member as a number node, or NULL. */
static JsonNode *
number (JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE (n))
    return NULL;
  GType t = json_node_get_value_type (n);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE || t == G_TYPE_BOOLEAN ? n : NULL;
}

/* A number node as an int, saturated: a count past int's range (or a
 * float one) becomes G_MAXINT / G_MININT, which the loader's bounds then
 * refuse, instead of wrapping to a small plausible value (4294967298
 * layers was 2). NaN is `def`. */
static int
node_int (JsonNode *n, int def)
{
  if (json_node_get_value_type (n) == G_TYPE_DOUBLE) {
    double d = json_node_get_double (n);
    return isnan (d) ? def : d >= G_MAXINT ? G_MAXINT : d <= G_MININT ? G_MININT : (int) d;
  }
  gint64 v = json_node_get_int (n);
  return v > G_MAXINT ? G_MAXINT : v < G_MININT ? G_MININT : (int) v;
}

int
vlm_json_int (JsonObject *o, const char *key, int def)
{
  JsonNode *n = number (o, key);
  return n ? node_int (n, def) : def;
}

double
vlm_json_double (JsonObject *o, const char *key, double def)
{
  JsonNode *n = number (o, key);
  return n ? json_node_get_double (n) : def;
}

gboolean
vlm_json_bool (JsonObject *o, const char *key, gboolean def)
{
  JsonNode *n = number (o, key);
  return n ? json_node_get_boolean (n) : def;
}

const char *
vlm_json_string (JsonObject *o, const char *key, const char *def)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n) : def;
}

JsonObject *
vlm_json_object (JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

gboolean
vlm_json_positive_int (JsonObject *o, const char *key, int def, const char *file, int *out,
                       GError **error)
{
  JsonNode *n = number (o, key);
  gboolean absent = !o || !json_object_has_member (o, key) || json_node_is_null (json_object_get_member (o, key));
  gint64 v = n ? json_node_get_int (n) : absent ? def : 0;
  if (v < 1 || v > G_MAXINT) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: \"%s\" %s", file, key,
                 absent ? "is missing" : "must be a positive integer");
    return FALSE;
  }
  *out = (int) v;
  return TRUE;
}

gboolean
vlm_json_require_int (JsonObject *o, const char *key, const char *file, int *out, GError **error)
{
  return vlm_json_positive_int (o, key, 0, file, out, error);
}

int
vlm_json_int_list (JsonObject *o, const char *key, int *out, int cap)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  if (number (o, key)) {
    out[0] = node_int (n, 0);
    return 1;
  }
  if (!n || !JSON_NODE_HOLDS_ARRAY (n))
    return 0;
  JsonArray *a = json_node_get_array (n);
  int k = 0;
  for (guint i = 0; i < json_array_get_length (a) && k < cap; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_INT64)
      out[k++] = node_int (e, 0);
  }
  return k;
}

/* ---------------------------------------------------------------- strict */

/* The member `key` of `o`, or NULL when absent or JSON null. */
JsonNode *
vlm_json_member (JsonObject *o, const char *key)
{
  JsonNode *n = o && json_object_has_member (o, key) ? json_object_get_member (o, key) : NULL;
  return n && !JSON_NODE_HOLDS_NULL (n) ? n : NULL;
}

gboolean
vlm_json_node_is (JsonNode *n, GType type)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type;
}

/* Sets BAD_CONFIG naming `where`.`key` and what was expected; returns FALSE. */
gboolean
vlm_json_bad_key (GError **error, const char *where, const char *key, const char *expected)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s%s%s: expected %s", where,
               *where && *key ? "." : "", key, expected);
  return FALSE;
}

/* *out: borrowed string, or NULL when the member is absent or null. */
gboolean
vlm_json_opt_string (JsonObject *o, const char *where, const char *key, const char **out, GError **error)
{
  JsonNode *n = vlm_json_member (o, key);
  *out = NULL;
  if (!n)
    return TRUE;
  if (!vlm_json_node_is (n, G_TYPE_STRING))
    return vlm_json_bad_key (error, where, key, "a string");
  *out = json_node_get_string (n);
  return TRUE;
}

gboolean
vlm_json_req_string (JsonObject *o, const char *where, const char *key, const char **out, GError **error)
{
  if (!vlm_json_opt_string (o, where, key, out, error))
    return FALSE;
  return *out ? TRUE : vlm_json_bad_key (error, where, key, "a string");
}

/* *out keeps its default when the member is absent or null. */
gboolean
vlm_json_opt_bool (JsonObject *o, const char *where, const char *key, gboolean *out, GError **error)
{
  JsonNode *n = vlm_json_member (o, key);
  if (!n)
    return TRUE;
  if (!vlm_json_node_is (n, G_TYPE_BOOLEAN))
    return vlm_json_bad_key (error, where, key, "true or false");
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* A non-negative int that fits an int; *out keeps its default when absent. */
gboolean
vlm_json_opt_uint (JsonObject *o, const char *where, const char *key, int *out, GError **error)
{
  JsonNode *n = vlm_json_member (o, key);
  if (!n)
    return TRUE;
  if (!vlm_json_node_is (n, G_TYPE_INT64) || json_node_get_int (n) < 0 || json_node_get_int (n) > G_MAXINT)
    return vlm_json_bad_key (error, where, key, "a non-negative integer");
  *out = (int) json_node_get_int (n);
  return TRUE;
}

JsonObject *
vlm_json_req_object (JsonObject *o, const char *where, const char *key, GError **error)
{
  JsonNode *n = vlm_json_member (o, key);
  if (!n || !JSON_NODE_HOLDS_OBJECT (n)) {
    vlm_json_bad_key (error, where, key, "an object");
    return NULL;
  }
  return json_node_get_object (n);
}

JsonArray *
vlm_json_req_array (JsonObject *o, const char *where, const char *key, GError **error)
{
  JsonNode *n = vlm_json_member (o, key);
  if (!n || !JSON_NODE_HOLDS_ARRAY (n)) {
    vlm_json_bad_key (error, where, key, "an array");
    return NULL;
  }
  return json_node_get_array (n);
}

gboolean
vlm_json_node_number (JsonNode *n, double *v)
{
  if (!n || !JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  GType t = json_node_get_value_type (n);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return FALSE;
  *v = json_node_get_double (n);
  return isfinite (*v);
}
