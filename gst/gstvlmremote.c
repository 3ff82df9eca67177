/* gstvlmremote.c — clips to an OpenAI-compatible /v1/chat/completions.
 *
 * The request (docs/scaling.md has a captured one):
 *
 *   {"model": M, "messages": [{"role": "user", "content": [
 *       {"type": "text", "text": PROMPT},
 *       {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}},
 *       ... one part per sampled frame, in time order ]}],
 *    "max_tokens": N, "temperature": T, "top_p": P, "seed": S, "stream": B}
 *
 * libsoup's sync calls cannot be given a deadline finer than a second nor
 * one that covers a slowly trickling answer, so each call runs libsoup's
 * async API on a main context of the client's own, iterated by the calling
 * thread until the answer is read, the deadline's timer fires or the
 * caller's GCancellable does: the thread blocks, but never longer than the
 * deadline, and a flush stops it at once. */
#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "gstvlmjpeg.h"
#include "gstvlmremote.h"

GST_DEBUG_CATEGORY_EXTERN (gst_vlm_caption_debug);
#define GST_CAT_DEFAULT gst_vlm_caption_debug

/* An answer is a caption: anything past this is not one. */
#define MAX_ANSWER_BYTES (4 << 20)
#define READ_CHUNK 65536
/* First wait before a retry; doubles each time. */
#define RETRY_BACKOFF_MS 100

struct _GstVlmRemote
{
  gchar *endpoint;              /* .../v1/chat/completions */
  gchar *model;
  gchar *authorization;         /* "Bearer KEY" or NULL; never logged */
  guint64 timeout_ms;
  guint retries;
  gboolean stream;

  GMainContext *context;        /* the calls' own context */
  SoupSession *session;         /* made on the first call, in `context` */
  GstVlmJpeg *jpeg;             /* the frames' encoder and its scratch */
};

/* ---------------------------------------------------------------- setup */

/* "http://h:1" -> "http://h:1/v1/chat/completions"; ".../v1" and a full
 * endpoint are taken as they are meant. */
static gchar *
endpoint_from_url (const gchar * url)
{
  gchar *base = g_strdup (url);
  gchar *endpoint;
  gsize n = strlen (base);

  while (n > 0 && base[n - 1] == '/')
    base[--n] = '\0';
  if (g_str_has_suffix (base, "/chat/completions"))
    endpoint = g_strdup (base);
  else if (g_str_has_suffix (base, "/v1"))
    endpoint = g_strconcat (base, "/chat/completions", NULL);
  else
    endpoint = g_strconcat (base, "/v1/chat/completions", NULL);
  g_free (base);
  return endpoint;
}

GstVlmRemote *
gst_vlm_remote_new (const GstVlmRemoteSettings * settings, GError ** error)
{
  GstVlmRemote *remote;
  GUri *uri;
  const gchar *scheme;

  uri = g_uri_parse (settings->url, G_URI_FLAGS_NONE, NULL);
  if (uri && g_uri_get_userinfo (uri)) {
    /* the URL goes into logs and warnings: no secret may ride in it */
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "the server URL holds a user name or password: give the key through "
        "api-key-env instead");
    g_uri_unref (uri);
    return NULL;
  }
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (!uri || !g_uri_get_host (uri) || !*g_uri_get_host (uri) ||
      (g_ascii_strcasecmp (scheme, "http") != 0 &&
          g_ascii_strcasecmp (scheme, "https") != 0)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "server '%s' is not an http:// or https:// URL with a host",
        settings->url);
    if (uri)
      g_uri_unref (uri);
    return NULL;
  }
  g_uri_unref (uri);

  remote = g_new0 (GstVlmRemote, 1);
  remote->endpoint = endpoint_from_url (settings->url);
  remote->model = settings->model && *settings->model ?
      g_strdup (settings->model) : NULL;
  if (settings->api_key && *settings->api_key)
    remote->authorization = g_strconcat ("Bearer ", settings->api_key, NULL);
  remote->timeout_ms = MAX (settings->timeout_ms, 1);
  remote->retries = settings->retries;
  remote->stream = settings->stream;
  remote->context = g_main_context_new ();
  remote->jpeg = gst_vlm_jpeg_new (settings->jpeg_quality);
  return remote;
}

void
gst_vlm_remote_free (GstVlmRemote * remote)
{
  if (!remote)
    return;
  if (remote->session) {
    /* the session's sources belong to our context: drop them there */
    g_main_context_push_thread_default (remote->context);
    g_object_unref (remote->session);
    while (g_main_context_iteration (remote->context, FALSE));
    g_main_context_pop_thread_default (remote->context);
  }
  g_main_context_unref (remote->context);
  gst_vlm_jpeg_free (remote->jpeg);
  if (remote->authorization)
    memset (remote->authorization, 0, strlen (remote->authorization));
  g_free (remote->authorization);
  g_free (remote->endpoint);
  g_free (remote->model);
  g_free (remote);
}

const gchar *
gst_vlm_remote_get_endpoint (const GstVlmRemote * remote)
{
  return remote->endpoint;
}

gboolean
gst_vlm_remote_gen_parse (GstVlmRemoteGen * gen, const gchar * text,
    guint max_new_tokens, GError ** error)
{
  /* sentinels for "not in the text" (parse sets only the keys it reads) */
  VlmGenParams p = {.temperature = -1,.top_p = -1,.do_sample = -1,
    .seed = G_MAXUINT64
  };
  gboolean ok = vlm_gen_params_parse (&p, text, error);

  gen->max_tokens = max_new_tokens ? (gint) max_new_tokens : p.max_new_tokens;
  if (p.do_sample == FALSE) {
    gen->temperature = 0;
    gen->top_p = -1;
  } else {
    gen->temperature = p.do_sample == TRUE && p.temperature < 0 ? 1.0 :
        p.temperature;
    gen->top_p = p.top_p;
  }
  gen->seed = p.seed == G_MAXUINT64 ? -1 : (gint64) MIN (p.seed, G_MAXINT64);
  return ok;
}

void
gst_vlm_remote_reply_clear (GstVlmRemoteReply * reply)
{
  g_clear_pointer (&reply->text, g_free);
  g_clear_pointer (&reply->model, g_free);
  reply->n_tokens = 0;
}

/* ---------------------------------------------------------------- request */

/* The request body for the frames and prompt (see the top of the file). */
static GBytes *
build_request (GstVlmRemote * remote, const GstVideoFrame * frames,
    guint n_frames, const gchar * prompt, const GstVlmRemoteGen * gen,
    GError ** error)
{
  JsonBuilder *b = json_builder_new ();
  JsonGenerator *generator;
  JsonNode *root;
  GString *url = g_string_new (NULL);
  gchar *json;
  gsize length;
  guint i;

  json_builder_begin_object (b);
  if (remote->model) {
    json_builder_set_member_name (b, "model");
    json_builder_add_string_value (b, remote->model);
  }
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, "user");
  json_builder_set_member_name (b, "content");
  json_builder_begin_array (b);
  if (prompt && *prompt) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "type");
    json_builder_add_string_value (b, "text");
    json_builder_set_member_name (b, "text");
    json_builder_add_string_value (b, prompt);
    json_builder_end_object (b);
  }
  for (i = 0; i < n_frames; i++) {
    const guint8 *jpeg;
    gsize size;
    gchar *b64;

    if (!(jpeg = gst_vlm_jpeg_encode (remote->jpeg, &frames[i], &size,
                error))) {
      g_string_free (url, TRUE);
      g_object_unref (b);
      return NULL;
    }
    b64 = g_base64_encode (jpeg, size);
    g_string_assign (url, "data:image/jpeg;base64,");
    g_string_append (url, b64);
    g_free (b64);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "type");
    json_builder_add_string_value (b, "image_url");
    json_builder_set_member_name (b, "image_url");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "url");
    json_builder_add_string_value (b, url->str);
    json_builder_end_object (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_array (b);
  if (gen->max_tokens > 0) {
    json_builder_set_member_name (b, "max_tokens");
    json_builder_add_int_value (b, gen->max_tokens);
  }
  if (gen->temperature >= 0) {
    json_builder_set_member_name (b, "temperature");
    json_builder_add_double_value (b, gen->temperature);
  }
  if (gen->top_p >= 0) {
    json_builder_set_member_name (b, "top_p");
    json_builder_add_double_value (b, gen->top_p);
  }
  if (gen->seed >= 0) {
    json_builder_set_member_name (b, "seed");
    json_builder_add_int_value (b, gen->seed);
  }
  json_builder_set_member_name (b, "stream");
  json_builder_add_boolean_value (b, remote->stream);
  if (remote->stream) {
    /* the token count comes in a last chunk (vLLM, OpenAI) */
    json_builder_set_member_name (b, "stream_options");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "include_usage");
    json_builder_add_boolean_value (b, TRUE);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  generator = json_generator_new ();
  json_generator_set_root (generator, root);
  json = json_generator_to_data (generator, &length);
  g_object_unref (generator);
  json_node_unref (root);
  g_object_unref (b);
  g_string_free (url, TRUE);
  return g_bytes_new_take (json, length);
}

/* ---------------------------------------------------------------- answer */

/* One attempt: a message in flight and what has been read of its answer. */
typedef struct
{
  GstVlmRemote *remote;
  SoupMessage *msg;
  GCancellable *cancel;         /* this attempt's: deadline or caller */
  GInputStream *body_stream;
  guint status;
  gboolean sse;                 /* the answer is text/event-stream */
  gboolean done;                /* nothing more to read */
  gboolean finished;            /* SSE: [DONE] or a finish_reason came */
  gboolean done_marker;         /* SSE: [DONE] came: stop reading */
  gboolean timed_out;
  GByteArray *body;             /* JSON answer, or SSE's partial line */
  GString *text;                /* SSE: the content so far */
  gint n_tokens;
  gchar *model;
  GError *error;
} Attempt;

/* An answer is untrusted and json-glib's typed getters are criticals on a
 * wrong type: members are taken by their type or not at all. */
static JsonNode *
member (JsonObject * o, const gchar * key, JsonNodeType type)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;

  return n && JSON_NODE_TYPE (n) == type ? n : NULL;
}

static JsonObject *
member_object (JsonObject * o, const gchar * key)
{
  JsonNode *n = member (o, key, JSON_NODE_OBJECT);

  return n ? json_node_get_object (n) : NULL;
}

static const gchar *
member_string (JsonObject * o, const gchar * key)
{
  JsonNode *n = member (o, key, JSON_NODE_VALUE);

  return n && json_node_get_value_type (n) == G_TYPE_STRING ?
      json_node_get_string (n) : NULL;
}

/* The caption fields of one choices[0] object: `message` (JSON answer) or
 * `delta` (an SSE chunk); content may be a string, null or a list of text
 * parts. FALSE when `choice` has neither. */
static gboolean
read_choice (JsonObject * choice, Attempt * a)
{
  JsonObject *message = member_object (choice, a->sse ? "delta" : "message");
  JsonNode *content = message ? json_object_get_member (message, "content") :
      NULL;
  JsonNode *parts = member (message, "content", JSON_NODE_ARRAY);
  const gchar *text = member_string (message, "content");
  guint i;

  if (!message)
    return FALSE;
  if (member_string (choice, "finish_reason"))
    a->finished = TRUE;
  if (text) {
    g_string_append (a->text, text);
  } else if (parts) {
    for (i = 0; i < json_array_get_length (json_node_get_array (parts)); i++) {
      JsonNode *part = json_array_get_element (json_node_get_array (parts), i);
      const gchar *piece = JSON_NODE_HOLDS_OBJECT (part) ?
          member_string (json_node_get_object (part), "text") : NULL;

      if (piece)
        g_string_append (a->text, piece);
    }
  } else if (content && !JSON_NODE_HOLDS_NULL (content)) {
    return FALSE;
  }
  return TRUE;
}

/* A JSON answer or one SSE event's data: its content, usage and model
 * into `a`; an "error" member, or neither choices nor usage, is an error. */
static gboolean
read_answer (Attempt * a, const gchar * data, gsize length)
{
  JsonParser *parser = json_parser_new ();
  JsonNode *root, *tokens, *choices;
  JsonObject *o, *usage;
  gboolean ok = FALSE;

  if (!length || !json_parser_load_from_data (parser, data, length, NULL) ||
      !(root = json_parser_get_root (parser)) || !JSON_NODE_HOLDS_OBJECT (root))
    goto out;
  o = json_node_get_object (root);
  if (json_object_has_member (o, "error")) {
    const gchar *message = member_string (member_object (o, "error"),
        "message");

    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "%s answered with an error: %s", a->remote->endpoint,
        message ? message : "(no message)");
    ok = TRUE;                  /* the message says it all */
    goto out;
  }
  if (!a->model && member_string (o, "model"))
    a->model = g_strdup (member_string (o, "model"));
  usage = member_object (o, "usage");
  tokens = member (usage, "completion_tokens", JSON_NODE_VALUE);
  if (tokens && json_node_get_value_type (tokens) == G_TYPE_INT64)
    a->n_tokens = CLAMP (json_node_get_int (tokens), 0, G_MAXINT);
  choices = member (o, "choices", JSON_NODE_ARRAY);
  if (choices && json_array_get_length (json_node_get_array (choices)) > 0) {
    JsonNode *first = json_array_get_element (json_node_get_array (choices),
        0);
    ok = JSON_NODE_HOLDS_OBJECT (first) &&
        read_choice (json_node_get_object (first), a);
  } else {
    /* SSE's usage-only last chunk has an empty choices list */
    ok = a->sse && usage;
  }
out:
  g_object_unref (parser);
  return ok;
}

/* SSE: handles each complete line of the bytes read so far. */
static void
read_events (Attempt * a)
{
  guint8 *start = a->body->data, *end = start + a->body->len, *nl;

  while (!a->error && (nl = memchr (start, '\n', end - start))) {
    gchar *line = g_strndup ((gchar *) start, nl - start);

    g_strchomp (line);
    if (g_str_has_prefix (line, "data:")) {
      const gchar *data = line + 5 + (line[5] == ' ');

      if (strcmp (data, "[DONE]") == 0)
        a->finished = a->done_marker = TRUE;
      else if (!read_answer (a, data, strlen (data)) && !a->error)
        g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
            "%s sent an event that is no chat.completion.chunk: %.200s",
            a->remote->endpoint, data);
    }
    /* blank lines, ':' comments, event: and id: lines carry nothing here */
    g_free (line);
    start = nl + 1;
  }
  g_byte_array_remove_range (a->body, 0, start - a->body->data);
}

static void on_read (GObject * source, GAsyncResult * result, gpointer data);

static void
read_more (Attempt * a)
{
  g_input_stream_read_bytes_async (a->body_stream, READ_CHUNK,
      G_PRIORITY_DEFAULT, a->cancel, on_read, a);
}

static void
on_read (GObject * source, GAsyncResult * result, gpointer data)
{
  Attempt *a = data;
  GBytes *bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source),
      result, &a->error);
  gsize size = bytes ? g_bytes_get_size (bytes) : 0;

  if (size > 0) {
    g_byte_array_append (a->body, g_bytes_get_data (bytes, NULL), size);
    if (a->sse && a->status == SOUP_STATUS_OK)
      read_events (a);
    if (!a->error && a->body->len > MAX_ANSWER_BYTES)
      g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
          "%s sent more than %d bytes", a->remote->endpoint,
          MAX_ANSWER_BYTES);
  }
  if (bytes)
    g_bytes_unref (bytes);
  /* after a finish_reason, usage may follow: read on to [DONE] or EOF */
  if (size == 0 || a->error || a->done_marker)
    a->done = TRUE;
  else
    read_more (a);
}

static void
on_sent (GObject * source, GAsyncResult * result, gpointer data)
{
  Attempt *a = data;
  const gchar *type;

  a->body_stream = soup_session_send_finish (SOUP_SESSION (source), result,
      &a->error);
  if (!a->body_stream) {
    a->done = TRUE;
    return;
  }
  a->status = soup_message_get_status (a->msg);
  type = soup_message_headers_get_content_type
      (soup_message_get_response_headers (a->msg), NULL);
  a->sse = g_strcmp0 (type, "text/event-stream") == 0;
  read_more (a);
}

static gboolean
on_deadline (gpointer data)
{
  Attempt *a = data;

  a->timed_out = TRUE;
  g_cancellable_cancel (a->cancel);
  return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled (GCancellable * caller, GCancellable * cancel)
{
  g_cancellable_cancel (cancel);
}

/* The server's error text of a 4xx/5xx answer: error.message of an OpenAI
 * error object, else the start of the body. g_free. */
static gchar *
error_text (Attempt * a)
{
  gchar *text = NULL;
  JsonParser *parser = json_parser_new ();

  if (a->body->len && json_parser_load_from_data (parser,
          (gchar *) a->body->data, a->body->len, NULL)) {
    JsonNode *root = json_parser_get_root (parser);
    JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ?
        json_node_get_object (root) : NULL;
    JsonNode *e = o ? json_object_get_member (o, "error") : NULL;
    const gchar *message = e && JSON_NODE_HOLDS_OBJECT (e) ?
        member_string (json_node_get_object (e), "message") :
        member_string (o, "error");

    text = g_strdup (message);
  }
  g_object_unref (parser);
  if (!text && a->body->len)
    text = g_utf8_make_valid ((gchar *) a->body->data, MIN (a->body->len,
            200));
  if (!text)
    text = g_strdup ("(no body)");
  return text;
}

/* Runs one attempt on remote->context until its answer is in, the
 * deadline passes or `caller` fires; fills a->error on failure. */
static void
run_attempt (Attempt * a, GBytes * body, gint64 deadline,
    GCancellable * caller)
{
  GstVlmRemote *remote = a->remote;
  gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
  GSource *timer;
  gulong handler = 0;

  a->msg = soup_message_new (SOUP_METHOD_POST, remote->endpoint);
  if (!a->msg) {
    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "cannot make a request to %s", remote->endpoint);
    return;
  }
  soup_message_set_request_body_from_bytes (a->msg, "application/json", body);
  soup_message_headers_replace (soup_message_get_request_headers (a->msg),
      "Accept", remote->stream ? "text/event-stream" : "application/json");
  if (remote->authorization)
    soup_message_headers_replace (soup_message_get_request_headers (a->msg),
        "Authorization", remote->authorization);
  a->cancel = g_cancellable_new ();
  a->body = g_byte_array_new ();
  a->text = g_string_new (NULL);
  if (caller)
    handler = g_cancellable_connect (caller, G_CALLBACK (on_caller_cancelled),
        g_object_ref (a->cancel), g_object_unref);
  timer = g_timeout_source_new (MAX (left_ms, 1));
  g_source_set_callback (timer, on_deadline, a, NULL);
  g_source_attach (timer, remote->context);

  soup_session_send_async (remote->session, a->msg, G_PRIORITY_DEFAULT,
      a->cancel, on_sent, a);
  while (!a->done)
    g_main_context_iteration (remote->context, TRUE);

  g_source_destroy (timer);
  g_source_unref (timer);
  if (caller)
    g_cancellable_disconnect (caller, handler);
  if (a->body_stream)
    g_clear_object (&a->body_stream);

  if (a->error && a->status == 0 && !g_error_matches (a->error, G_IO_ERROR,
          G_IO_ERROR_CANCELLED))
    g_prefix_error (&a->error, "POST %s: ", remote->endpoint);
  if (a->timed_out) {
    g_clear_error (&a->error);
    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
        "no complete answer from %s within %" G_GUINT64_FORMAT " ms",
        remote->endpoint, remote->timeout_ms);
  } else if (!a->error && a->status >= 400) {
    gchar *text = error_text (a);
    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_FAILED, "HTTP %u %s from "
        "%s: %s", a->status, soup_status_get_phrase (a->status),
        remote->endpoint, text);
    g_free (text);
  } else if (!a->error && a->status != SOUP_STATUS_OK) {
    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "HTTP %u %s from %s", a->status, soup_status_get_phrase (a->status),
        remote->endpoint);
  } else if (!a->error && a->sse && !a->finished) {
    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
        "the event stream from %s ended before [DONE]", remote->endpoint);
  } else if (!a->error && !a->sse && !read_answer (a,
          (gchar *) a->body->data, a->body->len) && !a->error) {
    g_set_error (&a->error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "%s sent no chat.completion: %.200s", remote->endpoint,
        a->body->len ? (gchar *) a->body->data : "(empty)");
  }
}

static void
attempt_clear (Attempt * a)
{
  g_clear_object (&a->msg);
  g_clear_object (&a->cancel);
  if (a->body)
    g_byte_array_unref (a->body);
  if (a->text)
    g_string_free (a->text, TRUE);
  g_free (a->model);
  g_clear_error (&a->error);
  memset (a, 0, sizeof (*a));
}

/* A refused or dropped connection, 429 and 5xx may pass; 4xx, TLS errors,
 * malformed answers and the deadline will not. */
static gboolean
retryable (const Attempt * a)
{
  if (a->timed_out || g_error_matches (a->error, G_IO_ERROR,
          G_IO_ERROR_CANCELLED))
    return FALSE;
  if (a->status == 0)
    return a->error && a->error->domain == G_IO_ERROR;
  return a->status == 429 || a->status == 500 || a->status == 502 ||
      a->status == 503 || a->status == 504;
}

static gboolean
on_backoff_over (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
on_backoff_cancelled (GCancellable * caller, gpointer data)
{
  return on_backoff_over (data);
}

/* Waits `ms` on the context, or less if `caller` fires. */
static void
backoff (GstVlmRemote * remote, guint ms, GCancellable * caller)
{
  GSource *timer = g_timeout_source_new (ms), *cancelled = NULL;
  gboolean over = FALSE;

  g_source_set_callback (timer, on_backoff_over, &over, NULL);
  g_source_attach (timer, remote->context);
  if (caller) {
    cancelled = g_cancellable_source_new (caller);
    g_source_set_callback (cancelled, G_SOURCE_FUNC (on_backoff_cancelled),
        &over, NULL);
    g_source_attach (cancelled, remote->context);
  }
  while (!over)
    g_main_context_iteration (remote->context, TRUE);
  g_source_destroy (timer);
  g_source_unref (timer);
  if (cancelled) {
    g_source_destroy (cancelled);
    g_source_unref (cancelled);
  }
}

gboolean
gst_vlm_remote_caption (GstVlmRemote * remote, const GstVideoFrame * frames,
    guint n_frames, const gchar * prompt, const GstVlmRemoteGen * gen,
    GCancellable * cancellable, GstVlmRemoteReply * reply, GError ** error)
{
  gint64 deadline = g_get_monotonic_time () +
      (gint64) MIN (remote->timeout_ms, G_MAXINT64 / 2000) * 1000;
  Attempt a = { 0 };
  GBytes *body;
  guint attempt, wait_ms;
  gboolean ok;

  memset (reply, 0, sizeof (*reply));
  body = build_request (remote, frames, n_frames, prompt, gen, error);
  if (!body)
    return FALSE;

  g_main_context_push_thread_default (remote->context);
  if (!remote->session)
    remote->session = soup_session_new_with_options ("user-agent",
        "vlmcaption/" VERSION, NULL);
  for (attempt = 0;; attempt++) {
    attempt_clear (&a);
    a.remote = remote;
    run_attempt (&a, body, deadline, cancellable);
    wait_ms = RETRY_BACKOFF_MS << MIN (attempt, 10);
    /* no retry that the deadline would cut short: the error is the last
     * attempt's own */
    if (!a.error || attempt >= remote->retries || !retryable (&a) ||
        g_get_monotonic_time () + 2 * wait_ms * 1000 >= deadline)
      break;
    GST_DEBUG ("retrying %s in %u ms: %s", remote->endpoint, wait_ms,
        a.error->message);
    backoff (remote, wait_ms, cancellable);
    if (g_cancellable_is_cancelled (cancellable))
      break;
  }
  g_main_context_pop_thread_default (remote->context);
  g_bytes_unref (body);

  if (g_cancellable_is_cancelled (cancellable)) {
    g_clear_error (&a.error);
    g_set_error (&a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
        "request to %s cancelled", remote->endpoint);
  }
  ok = a.error == NULL;
  if (ok) {
    reply->text = g_string_free (g_steal_pointer (&a.text), FALSE);
    g_strstrip (reply->text);
    reply->model = a.model ? g_steal_pointer (&a.model) :
        g_strdup (remote->model ? remote->model : "");
    reply->n_tokens = a.n_tokens;
  } else {
    g_propagate_error (error, g_steal_pointer (&a.error));
  }
  attempt_clear (&a);
  return ok;
}
