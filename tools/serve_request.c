/* serve_request.c — an OpenAI chat.completions request body into frames,
 * prompt and generation settings (serve_request.h lists the fields). */
#include "serve_request.h"

#include <string.h>

#include "json.h"   /* the engine's getters: json-glib's own are criticals on a wrong type */

/* json-glib's parser recurses per nesting level: refuse a deep body before
 * it can exhaust the stack. A chat request nests six levels. */
#define MAX_NESTING 32

void
serve_error_set (ServeError *err, guint status, const char *type, const char *code,
                 const char *param, const char *format, ...)
{
  va_list args;

  serve_error_clear (err);
  err->status = status;
  err->type = type;
  err->code = code;
  err->param = g_strdup (param);
  va_start (args, format);
  err->message = g_strdup_vprintf (format, args);
  va_end (args);
}

void
serve_error_clear (ServeError *err)
{
  g_clear_pointer (&err->param, g_free);
  g_clear_pointer (&err->message, g_free);
}

char *
serve_error_to_json (const ServeError *err)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, err->message ? err->message : "");
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, err->type);
  json_builder_set_member_name (b, "param");
  if (err->param)
    json_builder_add_string_value (b, err->param);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "code");
  if (err->code)
    json_builder_add_string_value (b, err->code);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static gboolean
invalid (ServeError *err, const char *param, const char *message)
{
  serve_error_set (err, 400, "invalid_request_error", NULL, param, "%s", message);
  return FALSE;
}

/* Whether `body` nests arrays and objects at most MAX_NESTING deep
 * (brackets inside strings do not count). */
static gboolean
nesting_ok (const char *body, gsize length)
{
  int depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < length; i++) {
    char c = body[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if ((c == '[' || c == '{') && ++depth > MAX_NESTING) {
      return FALSE;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return TRUE;
}

/* A member that must be a number when present. FALSE: present, not one. */
static gboolean
get_number (JsonObject *o, const char *name, double *value, gboolean *present)
{
  JsonNode *n = vlm_json_member (o, name);

  *present = n != NULL;
  return !n || vlm_json_node_number (n, value);
}

static gboolean
read_part (ServeRequest *req, JsonNode *part, GString *prompt, GArray *images,
           const ServeLimits *limits, const char *where, ServeError *err)
{
  g_autofree char *param = NULL;
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (part) ? json_node_get_object (part) : NULL;
  const char *type = vlm_json_string (o, "type", NULL);

  if (!type)
    return invalid (err, where, "a content part must be an object with a \"type\"");
  if (strcmp (type, "text") == 0) {
    const char *text = vlm_json_string (o, "text", NULL);
    if (!text)
      return invalid (err, where, "a text part needs a \"text\" string");
    if (prompt->len)
      g_string_append_c (prompt, '\n');
    g_string_append (prompt, text);
    return TRUE;
  }
  if (strcmp (type, "image_url") != 0) {
    serve_error_set (err, 400, "invalid_request_error", NULL, where,
                     "unsupported content part type '%s' (text and image_url are)", type);
    return FALSE;
  }
  /* {"url": ...} as the API says, or the bare string some clients send */
  JsonNode *image_url = vlm_json_member (o, "image_url");
  const char *url = vlm_json_string (vlm_json_object (o, "image_url"), "url", NULL);
  if (!url && image_url && vlm_json_node_is (image_url, G_TYPE_STRING))
    url = json_node_get_string (image_url);
  if (!url)
    return invalid (err, where, "an image_url part needs \"image_url\": {\"url\": ...}");
  if ((int) images->len >= limits->max_images) {
    serve_error_set (err, 400, "invalid_request_error", NULL, "messages",
                     "more than %d images in one request", limits->max_images);
    return FALSE;
  }
  ServeImage image;
  GError *error = NULL;
  if (!serve_image_decode (url, limits->max_pixels, &image, &error)) {
    param = g_strconcat (where, ".image_url.url", NULL);
    serve_error_set (err, 400, "invalid_request_error", "invalid_image_url", param, "%s",
                     error->message);
    g_error_free (error);
    return FALSE;
  }
  g_array_append_val (images, image);
  return TRUE;
}

static gboolean
read_messages (ServeRequest *req, JsonObject *root, const ServeLimits *limits, ServeError *err)
{
  JsonNode *node = json_object_get_member (root, "messages");
  g_autoptr (GString) prompt = g_string_new (NULL);
  GArray *images = g_array_new (FALSE, FALSE, sizeof (ServeImage));
  gboolean ok = TRUE;

  if (!node || !JSON_NODE_HOLDS_ARRAY (node) || !json_array_get_length (json_node_get_array (node))) {
    g_array_unref (images);
    return invalid (err, "messages", "'messages' must be a non-empty array");
  }
  JsonArray *messages = json_node_get_array (node);
  for (guint i = 0; ok && i < json_array_get_length (messages); i++) {
    JsonNode *m = json_array_get_element (messages, i);
    g_autofree char *where = g_strdup_printf ("messages[%u]", i);
    JsonObject *o = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
    const char *role = vlm_json_string (o, "role", NULL);
    if (!role) {
      ok = invalid (err, where, "a message must be an object with a \"role\"");
      break;
    }
    if (strcmp (role, "user") != 0)
      continue;   /* a captioner has no system prompt nor history */
    JsonNode *content = json_object_get_member (o, "content");
    g_autofree char *cwhere = g_strconcat (where, ".content", NULL);
    if (content && vlm_json_node_is (content, G_TYPE_STRING)) {
      if (prompt->len)
        g_string_append_c (prompt, '\n');
      g_string_append (prompt, json_node_get_string (content));
    } else if (content && JSON_NODE_HOLDS_ARRAY (content)) {
      JsonArray *parts = json_node_get_array (content);
      for (guint j = 0; ok && j < json_array_get_length (parts); j++) {
        g_autofree char *pwhere = g_strdup_printf ("%s[%u]", cwhere, j);
        ok = read_part (req, json_array_get_element (parts, j), prompt, images, limits, pwhere, err);
      }
    } else {
      ok = invalid (err, cwhere, "'content' must be a string or an array of content parts");
    }
  }
  if (ok && images->len == 0)
    ok = invalid (err, "messages", "no image: send the frames as image_url content parts "
                                   "(data:image/jpeg;base64,...)");
  req->n_images = images->len;
  req->images = (ServeImage *) g_array_free (images, FALSE);
  req->frames = g_new (VlmFrame, MAX (req->n_images, 1));
  for (int i = 0; i < req->n_images; i++)
    req->frames[i] = serve_image_frame (&req->images[i]);
  req->prompt = prompt->len ? g_strdup (prompt->str) : NULL;
  return ok;
}

static gboolean
read_generation (ServeRequest *req, JsonObject *root, ServeError *err)
{
  double v;
  gboolean present;
  const char *tokens_key = json_object_has_member (root, "max_completion_tokens") ?
      "max_completion_tokens" : "max_tokens";

  if (!get_number (root, tokens_key, &v, &present) || (present && (v < 1 || v > 4096 || v != (int) v)))
    return invalid (err, tokens_key, "must be an integer from 1 to 4096");
  if (present)
    req->params.max_new_tokens = (int) v;
  if (!get_number (root, "temperature", &v, &present) || (present && !(v >= 0 && v <= 2)))
    return invalid (err, "temperature", "must be a number from 0 to 2");
  if (present) {
    req->params.do_sample = v > 0;
    if (v > 0)
      req->params.temperature = v;
  }
  if (!get_number (root, "top_p", &v, &present) || (present && !(v > 0 && v <= 1)))
    return invalid (err, "top_p", "must be a number above 0, at most 1");
  if (present)
    req->params.top_p = v;
  /* the range first: converting a double outside it is undefined (the fuzzer's 3.7e26) */
  if (!get_number (root, "seed", &v, &present) || (present && !(v >= 0 && v < 0x1p64 && v == (double) (guint64) v)))
    return invalid (err, "seed", "must be a non-negative integer");
  if (present)
    req->params.seed = (guint64) v;
  if (!get_number (root, "n", &v, &present) || (present && v != 1))
    return invalid (err, "n", "only n=1 is supported");
  JsonNode *stream = vlm_json_member (root, "stream");
  if (stream) {
    if (!vlm_json_node_is (stream, G_TYPE_BOOLEAN))
      return invalid (err, "stream", "must be a boolean");
    req->stream = json_node_get_boolean (stream);
  }
  JsonNode *usage = vlm_json_member (vlm_json_object (root, "stream_options"), "include_usage");
  req->include_usage = usage && vlm_json_node_is (usage, G_TYPE_BOOLEAN) && json_node_get_boolean (usage);
  GError *error = NULL;
  if (!vlm_gen_params_check (&req->params, &error)) {
    invalid (err, NULL, error->message);
    g_error_free (error);
    return FALSE;
  }
  return TRUE;
}

gboolean
serve_request_parse (ServeRequest *req, const char *body, gsize length, VlmModel *model,
                     const char *served_name, const ServeLimits *limits, ServeError *err)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;

  memset (req, 0, sizeof (*req));
  req->params = vlm_gen_default_params (model);
  if (!nesting_ok (body, length) || !json_parser_load_from_data (parser, body, length, NULL) ||
      !(root = json_parser_get_root (parser)) || !JSON_NODE_HOLDS_OBJECT (root))
    return invalid (err, NULL, "We could not parse the JSON body of your request: it must be "
                               "one JSON object, as the chat completions API documents.");
  JsonObject *o = json_node_get_object (root);
  JsonNode *name = vlm_json_member (o, "model");
  if (name) {
    const char *s = vlm_json_node_is (name, G_TYPE_STRING) ? json_node_get_string (name) : NULL;
    if (!s)
      return invalid (err, "model", "'model' must be a string");
    if (strcmp (s, served_name) != 0) {
      serve_error_set (err, 404, "invalid_request_error", "model_not_found", "model",
                       "The model `%s` does not exist: this server serves `%s`.", s, served_name);
      return FALSE;
    }
  }
  return read_generation (req, o, err) && read_messages (req, o, limits, err);
}

void
serve_request_clear (ServeRequest *req)
{
  for (int i = 0; i < req->n_images; i++)
    serve_image_clear (&req->images[i]);
  g_clear_pointer (&req->images, g_free);
  g_clear_pointer (&req->frames, g_free);
  g_clear_pointer (&req->prompt, g_free);
  req->n_images = 0;
}
