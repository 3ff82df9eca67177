/* vlm-server — the engine behind an OpenAI-compatible HTTP API.
 *
 *   vlm-server --model DIR [--host 127.0.0.1] [--port 8000] [--sessions 1] [--queue 4]
 *              [--scheduler shared|private]
 *
 *   POST /v1/chat/completions   frames as image_url data URLs (JPEG, PNG), text parts as the
 *                               prompt; JSON, or server-sent events with "stream": true
 *   GET  /v1/models             the one model served
 *   GET  /health                {"status":"ok"}
 *
 * So vlmcaption's server property (and any OpenAI client) can caption on
 * another machine, and the remote backend is tested against a real server.
 * Requests go through one queue drained by a fixed pool of sessions, by
 * default on one batcher, so concurrent requests batch (serve_queue.h);
 * the body size, the
 * images and their pixels, the waiting and the running requests are all
 * bounded by options. Errors have OpenAI's shape and status: 400
 * invalid_request_error, 401 without the key (--api-key-env), 404 for an
 * unknown model or path, 405, 411, 413, 429 when the queue is full, 500
 * when inference fails, 503 while shutting down. SIGINT and SIGTERM stop
 * it cleanly: no new request, the running ones cancelled and answered.
 *
 * Threads: the main thread runs libsoup (all SoupServerMessage calls) and
 * reads requests (their images decoded there, before queueing, so a bad
 * one is a 400 at once); pool threads run the engine and hand results back with
 * g_main_context_invoke. --port 0 takes a free port; the first line on
 * stdout says which ("vlm-server: http://HOST:PORT serving NAME ... on
 * TIER"). */
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>

#include "serve_queue.h"
#include "serve_request.h"

static char *model_dir, *host = "127.0.0.1", *served_name, *api_key_env, *precision_name = "auto",
            *scheduler = "shared";
static int port = 8000, n_sessions = 1, max_waiting = 4, n_threads, max_images = 64;
static gint64 max_body = 32 << 20, max_pixels = 4096 * 4096;

static GOptionEntry entries[] = {
  {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "HuggingFace model folder", "DIR"},
  {"host", 0, 0, G_OPTION_ARG_STRING, &host, "Address to listen on (default 127.0.0.1)", "ADDR"},
  {"port", 'p', 0, G_OPTION_ARG_INT, &port, "Port (default 8000; 0: a free one, printed)", "N"},
  {"served-model-name", 0, 0, G_OPTION_ARG_STRING, &served_name,
   "Model name of the API (default: the folder's name)", "NAME"},
  {"sessions", 0, 0, G_OPTION_ARG_INT, &n_sessions, "Captions run at once (default 1)", "N"},
  {"scheduler", 0, 0, G_OPTION_ARG_STRING, &scheduler,
   "shared: the sessions batch on one inference thread (default); private: each its own", "NAME"},
  {"queue", 0, 0, G_OPTION_ARG_INT, &max_waiting, "Requests that may wait (default 4); more get 429", "N"},
  {"max-body", 0, 0, G_OPTION_ARG_INT64, &max_body, "Largest request body, bytes (default 32 MiB)", "BYTES"},
  {"max-images", 0, 0, G_OPTION_ARG_INT, &max_images, "Most images per request (default 64)", "N"},
  {"max-pixels", 0, 0, G_OPTION_ARG_INT64, &max_pixels, "Most pixels per image (default 4096x4096)", "N"},
  {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads per caption (0: all cores)", "N"},
  {"precision", 0, 0, G_OPTION_ARG_STRING, &precision_name, "auto, f32, bf16 or int8", "NAME"},
  {"api-key-env", 0, 0, G_OPTION_ARG_STRING, &api_key_env,
   "Require \"Authorization: Bearer KEY\", KEY from this environment variable", "NAME"},
  {NULL}};

typedef struct {
  SoupServer *soup;
  VlmModel *model;
  const char *name;
  ServeQueue *queue;
  char *api_key;                 /* NULL: none required */
  ServeLimits limits;
  GMainContext *context;
  GMainLoop *loop;
  gboolean stopping;
  guint64 n_requests;
} Server;

/* ---------------------------------------------------------------- answers */

static void
answer_json (SoupServerMessage *msg, guint status, char *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, json, strlen (json));
}

static void
answer_error (SoupServerMessage *msg, const ServeError *err)
{
  answer_json (msg, err->status, serve_error_to_json (err));
  if (err->status == 429)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", "1");
}

static void
answer_error_simple (SoupServerMessage *msg, guint status, const char *type, const char *code,
                     const char *message)
{
  ServeError err = {0};
  serve_error_set (&err, status, type, code, NULL, "%s", message);
  answer_error (msg, &err);
  serve_error_clear (&err);
}

/* A chat.completion or chat.completion.chunk object, as JSON text. `delta`
 * for chunks; `content` NULL leaves it out; `finish` NULL is null;
 * `tokens` < 0 leaves usage out. */
static char *
completion_json (const char *id, gint64 created, const char *model, gboolean chunk,
                 gboolean with_choice, const char *content, const char *finish, int tokens,
                 const VlmCaption *timings)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "object");
  json_builder_add_string_value (b, chunk ? "chat.completion.chunk" : "chat.completion");
  json_builder_set_member_name (b, "created");
  json_builder_add_int_value (b, created);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, model);
  json_builder_set_member_name (b, "choices");
  json_builder_begin_array (b);
  if (with_choice) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "index");
    json_builder_add_int_value (b, 0);
    json_builder_set_member_name (b, chunk ? "delta" : "message");
    json_builder_begin_object (b);
    if (!chunk || (content && !*content)) {   /* a stream names the role once, first */
      json_builder_set_member_name (b, "role");
      json_builder_add_string_value (b, "assistant");
    }
    if (content) {
      json_builder_set_member_name (b, "content");
      json_builder_add_string_value (b, content);
    }
    json_builder_end_object (b);
    json_builder_set_member_name (b, "finish_reason");
    if (finish)
      json_builder_add_string_value (b, finish);
    else
      json_builder_add_null_value (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  if (tokens >= 0) {
    /* the prompt's token count is not known outside the engine: only what
     * was generated is reported */
    json_builder_set_member_name (b, "usage");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "completion_tokens");
    json_builder_add_int_value (b, tokens);
    json_builder_end_object (b);
  }
  if (timings) {
    /* not OpenAI's: where the time went, for benchmarks */
    json_builder_set_member_name (b, "vlm_timings");
    json_builder_begin_object (b);
    const struct { const char *name; double ms; } t[] = {
      {"preprocess_ms", timings->preprocess_ms}, {"vision_ms", timings->vision_ms},
      {"prefill_ms", timings->prefill_ms}, {"decode_ms", timings->decode_ms},
      {"total_ms", timings->total_ms}};
    for (guint i = 0; i < G_N_ELEMENTS (t); i++) {
      json_builder_set_member_name (b, t[i].name);
      json_builder_add_double_value (b, t[i].ms);
    }
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* ---------------------------------------------------------------- a chat request */

/* One request in flight: the job the queue runs, and what the main thread
 * needs to answer. Pool threads touch only `job`, `lock`-ed fields and the
 * refcount. */
typedef struct {
  ServeJob job;                  /* first: the queue's callbacks get it */
  gatomicrefcount refs;
  Server *server;
  ServeRequest req;
  char *id;
  gint64 created;
  /* main thread only */
  SoupServerMessage *msg;        /* NULL once libsoup finished with it */
  gboolean started;              /* SSE: status and first chunk sent */
  GString *sent;                 /* SSE: the content sent so far */
  /* under lock: what pool threads hand over */
  GMutex lock;
  GString *pending;              /* SSE pieces not yet sent */
  gboolean over;                 /* job->done ran */
  gboolean scheduled;            /* a flush is on its way to the main thread */
} Chat;

static Chat *
chat_ref (Chat *c)
{
  g_atomic_ref_count_inc (&c->refs);
  return c;
}

static void
chat_unref (Chat *c)
{
  if (!g_atomic_ref_count_dec (&c->refs))
    return;
  g_clear_object (&c->msg);
  serve_request_clear (&c->req);
  vlm_caption_clear (&c->job.caption);
  g_clear_error (&c->job.error);
  g_string_free (c->sent, TRUE);
  g_string_free (c->pending, TRUE);
  g_mutex_clear (&c->lock);
  g_free (c->id);
  g_free (c);
}

static void
sse_send (Chat *c, char *json)
{
  SoupMessageBody *body = soup_server_message_get_response_body (c->msg);
  char *event = g_strdup_printf ("data: %s\n\n", json);
  soup_message_body_append (body, SOUP_MEMORY_TAKE, event, strlen (event));
  g_free (json);
}

/* The first event: status, headers and the assistant's role. */
static void
sse_start (Chat *c)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (c->msg);
  soup_server_message_set_status (c->msg, 200, NULL);
  soup_message_headers_set_content_type (h, "text/event-stream", NULL);
  soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (h, "Cache-Control", "no-cache");
  sse_send (c, completion_json (c->id, c->created, c->server->name, TRUE, TRUE, "", NULL, -1, NULL));
  c->started = TRUE;
}

/* The end of a streamed answer: what the pieces left out (beam search
 * streams none), the finish reason, usage if asked, [DONE]. An error once
 * the stream began goes as an error event. */
static void
sse_finish (Chat *c)
{
  const VlmCaption *cap = &c->job.caption;
  SoupMessageBody *body = soup_server_message_get_response_body (c->msg);

  if (c->job.error) {
    ServeError err = {0};
    serve_error_set (&err, 500, "server_error", NULL, NULL, "%s", c->job.error->message);
    sse_send (c, serve_error_to_json (&err));
    serve_error_clear (&err);
  } else {
    const char *text = cap->text ? cap->text : "";
    if (g_str_has_prefix (text, c->sent->str) && strlen (text) > c->sent->len)
      sse_send (c, completion_json (c->id, c->created, c->server->name, TRUE, TRUE,
                                    text + c->sent->len, NULL, -1, NULL));
    gboolean length = cap->n_tokens >= c->job.params.max_new_tokens;
    sse_send (c, completion_json (c->id, c->created, c->server->name, TRUE, TRUE, NULL,
                                  length ? "length" : "stop", -1, NULL));
    if (c->req.include_usage)
      sse_send (c, completion_json (c->id, c->created, c->server->name, TRUE, FALSE, NULL, NULL,
                                    cap->n_tokens, cap));
  }
  soup_message_body_append (body, SOUP_MEMORY_STATIC, "data: [DONE]\n\n", 14);
  soup_message_body_complete (body);
}

static void
answer_done (Chat *c)
{
  const VlmCaption *cap = &c->job.caption;

  if (g_error_matches (c->job.error, VLM_ERROR, VLM_ERROR_CANCELLED)) {
    answer_error_simple (c->msg, 503, "server_error", NULL, c->job.error->message);
  } else if (c->job.error) {
    gboolean bad = g_error_matches (c->job.error, VLM_ERROR, VLM_ERROR_BAD_FRAME) ||
                   g_error_matches (c->job.error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
    answer_error_simple (c->msg, bad ? 400 : 500, bad ? "invalid_request_error" : "server_error",
                         NULL, c->job.error->message);
  } else {
    gboolean length = cap->n_tokens >= c->job.params.max_new_tokens;
    answer_json (c->msg, 200, completion_json (c->id, c->created, c->server->name, FALSE, TRUE,
                                               cap->text ? cap->text : "", length ? "length" : "stop",
                                               cap->n_tokens, cap));
  }
}

/* Main thread: sends what the pool thread handed over. */
static gboolean
chat_flush (gpointer data)
{
  Chat *c = data;
  g_autofree char *pieces = NULL;
  gboolean over;

  g_mutex_lock (&c->lock);
  c->scheduled = FALSE;
  over = c->over;
  pieces = g_strdup (c->pending->str);
  g_string_truncate (c->pending, 0);
  g_mutex_unlock (&c->lock);
  if (!c->msg)
    return G_SOURCE_REMOVE;   /* the client went away */

  if (c->req.stream && (c->started || *pieces || (over && !c->job.error))) {
    if (!c->started)
      sse_start (c);
    if (*pieces) {
      sse_send (c, completion_json (c->id, c->created, c->server->name, TRUE, TRUE, pieces, NULL,
                                    -1, NULL));
      g_string_append (c->sent, pieces);
    }
    if (over)
      sse_finish (c);
  } else if (over) {
    answer_done (c);
  } else {
    return G_SOURCE_REMOVE;
  }
  soup_server_message_unpause (c->msg);
  return G_SOURCE_REMOVE;
}

/* Pool thread: has chat_flush run on the main thread, once per batch of
 * hand-overs. Called with the lock held. */
static void
chat_schedule_locked (Chat *c)
{
  if (c->scheduled)
    return;
  c->scheduled = TRUE;
  g_main_context_invoke_full (c->server->context, G_PRIORITY_DEFAULT, chat_flush, chat_ref (c),
                              (GDestroyNotify) chat_unref);
}

static gboolean
chat_token (ServeJob *job, const char *piece)
{
  Chat *c = (Chat *) job;
  if (!c->req.stream || !*piece)
    return TRUE;
  g_mutex_lock (&c->lock);
  g_string_append (c->pending, piece);
  chat_schedule_locked (c);
  g_mutex_unlock (&c->lock);
  return TRUE;
}

static void
chat_done (ServeJob *job)
{
  Chat *c = (Chat *) job;
  g_mutex_lock (&c->lock);
  c->over = TRUE;
  chat_schedule_locked (c);
  g_mutex_unlock (&c->lock);
  chat_unref (c);   /* the queue's reference */
}

static void
chat_closure_unref (gpointer data, GClosure *closure)
{
  chat_unref (data);
}

/* libsoup is done with the message: answered, or the client went away. */
static void
chat_finished (SoupServerMessage *msg, Chat *c)
{
  g_atomic_int_set (&c->job.cancelled, TRUE);
  g_clear_object (&c->msg);
}

/* ---------------------------------------------------------------- handlers */

/* Constant-time comparison, so the key cannot be guessed byte by byte from
 * answer times. */
static gboolean
key_matches (const char *got, const char *want)
{
  gsize n = strlen (want), m = strlen (got);
  guint8 diff = n != m;
  for (gsize i = 0; i < n; i++)
    diff |= (guint8) want[i] ^ (guint8) (i < m ? got[i] : 0);
  return diff == 0;
}

/* FALSE (answered 401) when a key is required and the request lacks it. */
static gboolean
authorized (Server *s, SoupServerMessage *msg)
{
  const char *auth;

  if (!s->api_key)
    return TRUE;
  auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
  if (auth && g_str_has_prefix (auth, "Bearer ") && key_matches (auth + 7, s->api_key))
    return TRUE;
  answer_error_simple (msg, 401, "invalid_request_error", "invalid_api_key",
                       auth ? "Incorrect API key provided." :
                              "You didn't provide an API key: send \"Authorization: Bearer KEY\".");
  return FALSE;
}

/* Before the body is read: a body too large (or of unknown size) is
 * refused without reading it. */
static void
on_chat_headers (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer data)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  char *text;

  if (strcmp (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0)
    return;
  if (soup_message_headers_get_encoding (h) != SOUP_ENCODING_CONTENT_LENGTH) {
    answer_error_simple (msg, 411, "invalid_request_error", NULL,
                         "send the request body with a Content-Length");
  } else if (soup_message_headers_get_content_length (h) > (goffset) max_body) {
    text = g_strdup_printf ("the request body (%" G_GOFFSET_FORMAT " bytes) is larger than the "
                            "%" G_GINT64_FORMAT " bytes this server takes (--max-body)",
                            soup_message_headers_get_content_length (h), max_body);
    answer_error_simple (msg, 413, "invalid_request_error", "request_too_large", text);
    g_free (text);
  }
}

static void
on_chat (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
         gpointer data)
{
  Server *s = data;
  SoupMessageBody *body;
  ServeError err = {0};
  Chat *c;

  if (soup_server_message_get_status (msg) != SOUP_STATUS_NONE)
    return;   /* refused by on_chat_headers */
  if (strcmp (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0) {
    answer_error_simple (msg, 405, "invalid_request_error", "method_not_allowed",
                         "use POST for /v1/chat/completions");
    return;
  }
  if (!authorized (s, msg))
    return;
  if (s->stopping) {
    answer_error_simple (msg, 503, "server_error", NULL, "the server is shutting down");
    return;
  }

  body = soup_server_message_get_request_body (msg);
  c = g_new0 (Chat, 1);
  g_atomic_ref_count_init (&c->refs);
  g_mutex_init (&c->lock);
  c->server = s;
  c->sent = g_string_new (NULL);
  c->pending = g_string_new (NULL);
  c->created = g_get_real_time () / G_USEC_PER_SEC;
  c->id = g_strdup_printf ("chatcmpl-%" G_GUINT64_FORMAT, ++s->n_requests);
  if (!serve_request_parse (&c->req, body->data, body->length, s->model, s->name, &s->limits,
                            &err)) {
    answer_error (msg, &err);
    serve_error_clear (&err);
    chat_unref (c);
    return;
  }
  c->job.frames = c->req.frames;
  c->job.n_frames = c->req.n_images;
  c->job.prompt = c->req.prompt;
  c->job.params = c->req.params;
  c->job.token = chat_token;
  c->job.done = chat_done;
  c->msg = g_object_ref (msg);
  g_signal_connect_data (msg, "finished", G_CALLBACK (chat_finished), chat_ref (c),
                         chat_closure_unref, 0);

  chat_ref (c);   /* the queue's, dropped in chat_done */
  if (!serve_queue_push (s->queue, &c->job)) {
    g_signal_handlers_disconnect_by_data (msg, c);
    chat_unref (c);
    answer_error_simple (msg, 429, "rate_limit_error", "queue_full",
                         "all sessions are busy and the queue is full: retry later");
    chat_unref (c);
    return;
  }
  soup_server_message_pause (msg);
  chat_unref (c);   /* the message's "finished" handler and the queue hold it */
}

static void
on_models (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer data)
{
  Server *s = data;
  if (!authorized (s, msg))
    return;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "object");
  json_builder_add_string_value (b, "list");
  json_builder_set_member_name (b, "data");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, s->name);
  json_builder_set_member_name (b, "object");
  json_builder_add_string_value (b, "model");
  json_builder_set_member_name (b, "created");
  json_builder_add_int_value (b, 0);
  json_builder_set_member_name (b, "owned_by");
  json_builder_add_string_value (b, "vlmcaption");
  /* not OpenAI's: what a client needs to sample clips for this model */
  json_builder_set_member_name (b, "architecture");
  json_builder_add_string_value (b, vlm_model_get_architecture (s->model));
  json_builder_set_member_name (b, "frames_per_clip");
  json_builder_add_int_value (b, vlm_model_get_frames_per_clip (s->model));
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  answer_json (msg, 200, json_to_string (root, FALSE));
}

static void
on_health (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer data)
{
  Server *s = data;
  answer_json (msg, s->stopping ? 503 : 200,
               g_strdup (s->stopping ? "{\"status\":\"stopping\"}" : "{\"status\":\"ok\"}"));
}

static void
on_unknown (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  g_autofree char *text = g_strdup_printf ("Unknown request URL: %s %s.",
                                           soup_server_message_get_method (msg), path);
  answer_error_simple (msg, 404, "invalid_request_error", "unknown_url", text);
}

static gboolean
on_signal (gpointer data)
{
  Server *s = data;
  if (!s->stopping) {
    g_printerr ("vlm-server: stopping\n");
    s->stopping = TRUE;
    g_main_loop_quit (s->loop);
  }
  return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------- main */

static int
fail (const char *what, GError *error)
{
  fprintf (stderr, "vlm-server: %s%s%s\n", what, error ? ": " : "", error ? error->message : "");
  g_clear_error (&error);
  return 1;
}

static gboolean
parse_precision (const char *name, VlmPrecision *precision)
{
  static const struct { const char *name; VlmPrecision value; } table[] = {
    {"auto", VLM_PRECISION_AUTO}, {"f32", VLM_PRECISION_F32},
    {"bf16", VLM_PRECISION_BF16}, {"int8", VLM_PRECISION_INT8}};
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if (strcmp (name, table[i].name) == 0) {
      *precision = table[i].value;
      return TRUE;
    }
  return FALSE;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  Server s = {0};
  VlmModelParams params = vlm_model_default_params ();
  g_autoptr (GOptionContext) ctx = g_option_context_new ("");

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, "Serves a vision-language model over the OpenAI chat "
                                     "completions API (docs/scaling.md).");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail ("bad arguments", error);
  if (!model_dir)
    return fail ("--model DIR is required", NULL);
  if (port < 0 || port > 65535 || n_sessions < 1 || n_sessions > 64 || max_waiting < 0 ||
      max_body < 1 || max_images < 1 || max_pixels < 1)
    return fail ("--port, --sessions, --queue, --max-body, --max-images or --max-pixels out of range",
                 NULL);
  gboolean shared = g_strcmp0 (scheduler, "shared") == 0;
  if (!shared && g_strcmp0 (scheduler, "private") != 0)
    return fail ("--scheduler must be shared or private", NULL);
  if (!parse_precision (precision_name, &params.precision))
    return fail ("--precision must be auto, f32, bf16 or int8", NULL);
  if (api_key_env) {
    const char *key = g_getenv (api_key_env);
    if (!key || !*key)
      return fail ("--api-key-env names a variable that is not set", NULL);
    s.api_key = g_strdup (key);
  }

  params.n_threads = n_threads;
  if (!(s.model = vlm_model_load (model_dir, &params, &error)))
    return fail (model_dir, error);
  if (!vlm_model_can_generate (s.model))
    return fail ("the model does not generate text: nothing to serve on chat completions", NULL);
  s.name = served_name ? served_name : vlm_model_get_name (s.model);
  s.limits = (ServeLimits) {.max_pixels = max_pixels, .max_images = max_images};
  if (!(s.queue = serve_queue_new (s.model, shared, n_sessions, max_waiting, &error)))
    return fail ("cannot make the sessions", error);

  s.context = g_main_context_default ();
  s.loop = g_main_loop_new (s.context, FALSE);
  s.soup = soup_server_new ("server-header", "vlm-server ", NULL);
  soup_server_add_early_handler (s.soup, "/v1/chat/completions", on_chat_headers, &s, NULL);
  soup_server_add_handler (s.soup, "/v1/chat/completions", on_chat, &s, NULL);
  soup_server_add_handler (s.soup, "/v1/models", on_models, &s, NULL);
  soup_server_add_handler (s.soup, "/health", on_health, &s, NULL);
  soup_server_add_handler (s.soup, NULL, on_unknown, &s, NULL);
  GSocketAddress *address = g_inet_socket_address_new_from_string (host, port);
  if (!address)
    return fail ("--host is not an IP address", NULL);
  if (!soup_server_listen (s.soup, address, 0, &error))
    return fail ("cannot listen", error);
  g_object_unref (address);

  GSList *uris = soup_server_get_uris (s.soup);
  printf ("vlm-server: http://%s:%d serving %s (%d %s session%s, queue %d) on %s\n", host,
          g_uri_get_port (uris->data), s.name, n_sessions, scheduler, n_sessions == 1 ? "" : "s",
          max_waiting, vlm_cpu_describe ());
  fflush (stdout);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_unix_signal_add (SIGINT, on_signal, &s);
  g_unix_signal_add (SIGTERM, on_signal, &s);
  g_main_loop_run (s.loop);

  /* Cancel what runs, answer what waits, then let libsoup send it all. */
  VlmBatcherStats st;
  if (serve_queue_get_stats (s.queue, &st))
    fprintf (stderr, "vlm-server: shared scheduler ran %" G_GUINT64_FORMAT " decode steps, mean "
             "batch %.2f captions (max %d), %" G_GUINT64_FORMAT " clips in %" G_GUINT64_FORMAT
             " tower calls\n", st.steps, st.steps ? (double) st.step_captions / st.steps : 0.0,
             st.max_step_captions, st.encodes, st.encode_batches);
  serve_queue_free (s.queue);
  for (int i = 0; i < 100 && g_main_context_iteration (s.context, FALSE); i++);
  soup_server_disconnect (s.soup);
  g_object_unref (s.soup);
  while (g_main_context_iteration (s.context, FALSE));   /* the connections' last sources */
  g_main_loop_unref (s.loop);
  vlm_model_unref (s.model);
  g_free (s.api_key);
  return 0;
}
