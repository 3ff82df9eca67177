/* test_remote.c — the remote backend against a real vlm-server on loopback.
 *
 * Every test starts build/tools/vlm-server (VLM_SERVER) with the embedded
 * test-card model on a free port (--port 0; the port is read from its
 * first line) — no mock. The element runs in real pipelines with the
 * system's videotestsrc; requests of our own go through a libsoup client.
 *   same text      in-process and through the server (JSON and SSE), for
 *                  every reference pattern of the test-card model; four
 *                  clients at once on the server's batched sessions
 *   server lost    killed mid-stream: captions are lost and counted, with
 *                  warnings; every video frame comes out
 *   broken peers   what vlm-server never does, a TCP peer of the test's
 *                  own does (hang, garbage, 503, an untrusted TLS
 *                  certificate): the same, with bounded retries
 *   bad requests   OpenAI's error shapes and statuses
 *   api key        "Authorization: Bearer" from api-key-env; never logged */
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define BARS "television color bars"
#define KEY "vlm-test-key-7f3a9c"
#define KEY_ENV "VLM_TEST_API_KEY"
/* Where a deadline is not what a test is about: long enough that a loaded
 * machine (or another process pausing this one) never trips it. */
#define NO_DEADLINE "server-timeout=120000000000"

/* ---------------------------------------------------------------- the server */

typedef struct
{
  GPid pid;
  FILE *out;                    /* its stdout, kept open so it never gets SIGPIPE */
  gchar *url;                   /* http://127.0.0.1:PORT */
} Server;

/* Starts vlm-server with `args` (space-separated, may be NULL) and, when
 * `key` is set, KEY_ENV=key in its environment. */
static void
server_start (Server * s, const gchar * args, const gchar * key)
{
  gchar *model = g_build_filename (g_getenv ("VLM_PROJECT_ROOT"), "models",
      "testcard-git", NULL);
  gchar *cmd = g_strdup_printf ("%s --model %s --port 0 %s",
      g_getenv ("VLM_SERVER"), model, args ? args : "");
  gchar **argv = NULL, **envp = g_get_environ ();
  GError *error = NULL;
  gchar line[256];
  gint out_fd, port = 0;

  fail_unless (g_getenv ("VLM_SERVER") != NULL, "VLM_SERVER is not set");
  if (key)
    envp = g_environ_setenv (envp, KEY_ENV, key, TRUE);
  fail_unless (g_shell_parse_argv (cmd, NULL, &argv, &error));
  fail_unless (g_spawn_async_with_pipes (NULL, argv, envp,
          G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &s->pid, NULL, &out_fd, NULL,
          &error), "%s", error ? error->message : "");
  s->out = fdopen (out_fd, "r");
  fail_unless (fgets (line, sizeof (line), s->out) != NULL,
      "vlm-server printed nothing");
  fail_unless (sscanf (line, "vlm-server: http://127.0.0.1:%d", &port) == 1
      && port > 0, "unexpected first line: %s", line);
  s->url = g_strdup_printf ("http://127.0.0.1:%d", port);
  g_print ("%s", line);         /* names the CPU tier in the log */
  g_strfreev (argv);
  g_strfreev (envp);
  g_free (cmd);
  g_free (model);
}

/* Sends `sig` and reaps the server; its wait status. */
static gint
server_stop (Server * s, gint sig)
{
  gint status = 0;

  if (!s->pid)
    return 0;
  kill (s->pid, sig);
  if (sig == SIGSTOP)
    return 0;
  fail_unless (waitpid (s->pid, &status, 0) == s->pid);
  g_spawn_close_pid (s->pid);
  s->pid = 0;
  fclose (s->out);
  g_clear_pointer (&s->url, g_free);
  return status;
}

/* ---------------------------------------------------------------- HTTP */

typedef struct
{
  guint status;
  JsonNode *json;               /* NULL: not JSON */
  gchar *body;
} Answer;

static void
answer_clear (Answer * a)
{
  if (a->json)
    json_node_unref (a->json);
  g_free (a->body);
  memset (a, 0, sizeof (*a));
}

/* `method` `path` with `body` (NULL: none) and an Authorization header
 * (NULL: none); the answer, parsed when it is JSON. */
static void
request (const Server * s, const gchar * method, const gchar * path,
    const gchar * body, gsize length, const gchar * auth, Answer * a)
{
  SoupSession *session = soup_session_new ();
  gchar *uri = g_strconcat (s->url, path, NULL);
  SoupMessage *msg = soup_message_new (method, uri);
  GError *error = NULL;
  GBytes *bytes;
  JsonParser *parser = json_parser_new ();

  memset (a, 0, sizeof (*a));
  if (body) {
    GBytes *b = g_bytes_new (body, length);
    soup_message_set_request_body_from_bytes (msg, "application/json", b);
    g_bytes_unref (b);
  }
  if (auth)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", auth);
  bytes = soup_session_send_and_read (session, msg, NULL, &error);
  fail_unless (bytes != NULL, "%s %s: %s", method, path,
      error ? error->message : "");
  a->status = soup_message_get_status (msg);
  a->body = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  if (json_parser_load_from_data (parser, a->body, -1, NULL))
    a->json = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  g_bytes_unref (bytes);
  g_object_unref (msg);
  g_free (uri);
  g_object_unref (session);
}

/* frames_per_clip of the model, as /v1/models says. */
static gint
served_frames (const Server * s)
{
  Answer a;
  JsonObject *model;
  gint n;

  request (s, "GET", "/v1/models", NULL, 0, NULL, &a);
  fail_unless_equals_int (a.status, 200);
  model = json_array_get_object_element (json_object_get_array_member
      (json_node_get_object (a.json), "data"), 0);
  fail_unless_equals_string (json_object_get_string_member (model, "id"),
      "testcard-git");
  n = json_object_get_int_member (model, "frames_per_clip");
  answer_clear (&a);
  return n;
}

/* A chat request for one data URL image with `extra` members
 * ("\"n\":2," ...) before "messages". g_free. */
static gchar *
chat_body (const gchar * extra, const gchar * url)
{
  return g_strdup_printf ("{%s\"messages\":[{\"role\":\"user\",\"content\":["
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}",
      extra ? extra : "", url);
}

/* One frame of videotestsrc pattern=smpte, encoded by `encoder`
 * (jpegenc, pngenc), as a data URL of `type`. g_free. */
static gchar *
smpte_data_url_sized (const gchar * encoder, const gchar * type, gint width,
    gint height)
{
  gchar *dir = g_dir_make_tmp ("vlm-remote-XXXXXX", NULL);
  gchar *file = g_build_filename (dir, "frame", NULL);
  gchar *launch = g_strdup_printf ("videotestsrc num-buffers=1 pattern=smpte "
      "! video/x-raw,width=%d,height=%d ! videoconvert ! %s "
      "! filesink location=%s", width, height, encoder, file);
  GstElement *pipeline = gst_parse_launch (launch, NULL);
  GstMessage *msg;
  gchar *data, *b64, *url;
  gsize length;

  fail_unless (pipeline != NULL);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
      30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  fail_unless (g_file_get_contents (file, &data, &length, NULL));
  b64 = g_base64_encode ((guchar *) data, length);
  url = g_strdup_printf ("data:%s;base64,%s", type, b64);
  g_unlink (file);
  g_rmdir (dir);
  g_free (b64);
  g_free (data);
  g_free (launch);
  g_free (file);
  g_free (dir);
  return url;
}

static gchar *
smpte_data_url (const gchar * encoder, const gchar * type)
{
  return smpte_data_url_sized (encoder, type, 320, 240);
}

/* ---------------------------------------------------------------- pipelines */

typedef struct
{
  GMutex lock;
  GArray *in_pts, *out_pts;     /* GstClockTime of each frame, in and out */
} Frames;

static GstPadProbeReturn
on_frame (GstPad * pad, GstPadProbeInfo * info, GArray * pts)
{
  GstClockTime t = GST_BUFFER_PTS (GST_PAD_PROBE_INFO_BUFFER (info));
  Frames *frames = g_object_get_data (G_OBJECT (pad), "frames");

  g_mutex_lock (&frames->lock);
  g_array_append_val (pts, t);
  g_mutex_unlock (&frames->lock);
  return GST_PAD_PROBE_OK;
}

typedef struct
{
  GPtrArray *texts;             /* vlmcaption messages' text, in order */
  GArray *n_tokens;             /* and their n-tokens */
  guint warnings;
  GString *warning_text;
  guint64 dropped, late;
  Frames frames;
} Run;

static void
run_clear (Run * r)
{
  g_ptr_array_unref (r->texts);
  g_array_unref (r->n_tokens);
  g_string_free (r->warning_text, TRUE);
  g_array_unref (r->frames.in_pts);
  g_array_unref (r->frames.out_pts);
  g_mutex_clear (&r->frames.lock);
}

/* Runs `src` (a videotestsrc description) ! I420 320x240 ! vlmcaption
 * `props` to EOS. `on_first` (may be NULL) is called at the first caption
 * message. */
static void
run_pipeline (Run * r, const gchar * src, const gchar * props, gboolean live,
    void (*on_first) (gpointer), gpointer data)
{
  gchar *launch = g_strdup_printf ("%s ! video/x-raw,format=I420,width=320,"
      "height=240,framerate=30/1 ! vlmcaption name=c %s ! queue ! fakesink "
      "sync=%d c.text_src ! queue ! fakesink sync=%d", src, props, live, live);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (launch, &error), *c;
  GstPad *pad;
  gboolean eos = FALSE;

  memset (r, 0, sizeof (*r));
  r->texts = g_ptr_array_new_with_free_func (g_free);
  r->n_tokens = g_array_new (FALSE, FALSE, sizeof (gint));
  r->warning_text = g_string_new (NULL);
  g_mutex_init (&r->frames.lock);
  r->frames.in_pts = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  r->frames.out_pts = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  fail_unless (pipeline != NULL, "%s: %s", launch, error ? error->message : "");
  c = gst_bin_get_by_name (GST_BIN (pipeline), "c");
  pad = gst_element_get_static_pad (c, "sink");
  g_object_set_data (G_OBJECT (pad), "frames", &r->frames);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) on_frame, r->frames.in_pts, NULL);
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (c, "src");
  g_object_set_data (G_OBJECT (pad), "frames", &r->frames);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) on_frame, r->frames.out_pts, NULL);
  gst_object_unref (pad);

  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  while (!eos) {
    GstMessage *msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
        60 * GST_SECOND, GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS |
        GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
    GError *e = NULL;

    fail_unless (msg != NULL, "the pipeline stalled: %s", launch);
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_ERROR:
        gst_message_parse_error (msg, &e, NULL);
        fail ("error: %s", e->message);
        break;
      case GST_MESSAGE_WARNING:
        gst_message_parse_warning (msg, &e, NULL);
        r->warnings++;
        g_string_append_printf (r->warning_text, "%s\n", e->message);
        g_clear_error (&e);
        break;
      case GST_MESSAGE_EOS:
        eos = TRUE;
        break;
      default:
        if (gst_message_has_name (msg, "vlmcaption")) {
          const GstStructure *st = gst_message_get_structure (msg);
          gint n = -1;

          if (r->texts->len == 0 && on_first)
            on_first (data);
          g_ptr_array_add (r->texts,
              g_strdup (gst_structure_get_string (st, "text")));
          gst_structure_get_int (st, "n-tokens", &n);
          g_array_append_val (r->n_tokens, n);
        }
        break;
    }
    gst_message_unref (msg);
  }
  g_object_get (c, "dropped-clips", &r->dropped, "late-captions", &r->late,
      NULL);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (c);
  gst_object_unref (pipeline);
  g_free (launch);
}

/* ---------------------------------------------------------------- same text */

/* The test card's reference patterns (models/README.md); snow is noise
 * that differs on every render. */
static const gchar *patterns[] = {
  "pattern=smpte", "pattern=black", "pattern=white", "pattern=red",
  "pattern=green", "pattern=blue", "pattern=checkers-1", "pattern=checkers-8",
  "pattern=circular", "pattern=zone-plate", "pattern=gamut",
  "pattern=chroma-zone-plate", "pattern=pinwheel", "pattern=spokes",
  "pattern=gradient", "pattern=colors", "pattern=smpte75",
  "pattern=solid-color foreground-color=0xffffff00",
  "pattern=solid-color foreground-color=0xff00ffff",
  "pattern=ball",
  "pattern=ball foreground-color=0xffff0000 background-color=0xff0000ff",
  "pattern=ball foreground-color=0xffffff00 background-color=0xff000000",
  "pattern=ball foreground-color=0xff00ff00 background-color=0xffffffff",
  "pattern=ball motion=sweep foreground-color=0xffff00ff "
      "background-color=0xff00ffff",
  "pattern=ball motion=hsweep foreground-color=0xff0000ff "
      "background-color=0xffffff00",
  "pattern=ball foreground-color=0xff000000 background-color=0xffff0000",
  "pattern=ball motion=sweep",
};

static Server shared;           /* for same_text and bad_requests */

static void
shared_start (void)
{
  server_start (&shared, "--max-body 1048576", NULL);
}

static void
shared_stop (void)
{
  /* SIGTERM is a clean shutdown: exit status 0 */
  gint status = server_stop (&shared, SIGTERM);
  fail_unless (WIFEXITED (status) && WEXITSTATUS (status) == 0,
      "vlm-server did not exit cleanly on SIGTERM (status %d)", status);
}

static void
assert_same_texts (const Run * want, const Run * got, const gchar * what)
{
  guint i;

  fail_unless (got->texts->len == want->texts->len, "%s: %u captions, not "
      "%u; warnings: %s", what, got->texts->len, want->texts->len,
      got->warning_text->str);
  for (i = 0; i < want->texts->len; i++)
    fail_unless_equals_string (g_ptr_array_index (got->texts, i),
        g_ptr_array_index (want->texts, i));
  fail_unless_equals_int (got->warnings, 0);
  fail_unless_equals_uint64 (got->dropped, 0);
  GST_INFO ("%s: %u captions, \"%s\"", what, got->texts->len,
      (gchar *) g_ptr_array_index (got->texts, 0));
}

/* Two clips of each pattern, not live: the same captions in-process and
 * through vlm-server, as one JSON answer and as server-sent events, the
 * frames sent as the model's frames per clip (from /v1/models). */
GST_START_TEST (test_same_text)
{
  gchar *src = g_strdup_printf ("videotestsrc num-buffers=60 %s",
      patterns[__i__]);
  gchar *json_props = g_strdup_printf ("server=%s frames-per-clip=%d "
      NO_DEADLINE, shared.url, served_frames (&shared));
  gchar *sse_props = g_strdup_printf ("%s server-stream=true", json_props);
  Run local, json, sse;

  run_pipeline (&local, src, "", FALSE, NULL, NULL);
  fail_unless_equals_int (local.texts->len, 2);
  if (__i__ == 0)
    fail_unless_equals_string (g_ptr_array_index (local.texts, 0), BARS);
  run_pipeline (&json, src, json_props, FALSE, NULL, NULL);
  assert_same_texts (&local, &json, "json");
  run_pipeline (&sse, src, sse_props, FALSE, NULL, NULL);
  assert_same_texts (&local, &sse, "sse");

  run_clear (&local);
  run_clear (&json);
  run_clear (&sse);
  g_free (sse_props);
  g_free (json_props);
  g_free (src);
}

GST_END_TEST;

/* Generation settings travel: sampling at a high temperature with a seed
 * and a 3-token budget gives the same caption through the server as
 * in-process (the server seeds the engine's own sampler alike), and both
 * report 3 tokens (through the server: usage.completion_tokens). A greedy
 * caption of the test card is 4 tokens, so the budget really cut it. */
GST_START_TEST (test_generation_settings)
{
  const gchar *config = "generation-config=\"do_sample=true,temperature=1.5,"
      "top_p=0.9,seed=7,max_new_tokens=3\"";
  gchar *remote = g_strdup_printf ("server=%s frames-per-clip=4 "
      NO_DEADLINE " %s%s", shared.url, config,
      __i__ ? " server-stream=true" : "");
  Run local, served;
  guint i;

  run_pipeline (&local, "videotestsrc num-buffers=90 pattern=ball", config,
      FALSE, NULL, NULL);
  run_pipeline (&served, "videotestsrc num-buffers=90 pattern=ball", remote,
      FALSE, NULL, NULL);
  assert_same_texts (&local, &served, __i__ ? "sse" : "json");
  for (i = 0; i < local.texts->len; i++) {
    fail_unless_equals_int (g_array_index (local.n_tokens, gint, i), 3);
    fail_unless_equals_int (g_array_index (served.n_tokens, gint, i), 3);
  }
  run_clear (&local);
  run_clear (&served);
  g_free (remote);
}

GST_END_TEST;

/* ---------------------------------------------------------------- many clients */

typedef struct
{
  const gchar *src, *props;
  Run run;
} Client;

static gpointer
client_main (gpointer data)
{
  Client *c = data;

  run_pipeline (&c->run, c->src, c->props, FALSE, NULL, NULL);
  return NULL;
}

/* Four pipelines at once against a server whose four sessions share one
 * batcher (--scheduler shared, the default): the requests run together
 * and each pipeline gets the captions it gets in-process. */
GST_START_TEST (test_concurrent_batched)
{
  static const gchar *srcs[] = { "videotestsrc num-buffers=150 pattern=smpte",
    "videotestsrc num-buffers=150 pattern=red",
    "videotestsrc num-buffers=150 pattern=ball",
    "videotestsrc num-buffers=150 pattern=checkers-8"
  };
  Client clients[G_N_ELEMENTS (srcs)];
  GThread *threads[G_N_ELEMENTS (srcs)];
  Server s = { 0 };
  gchar *props;
  guint i;

  server_start (&s, "--sessions 4 --queue 8", NULL);
  props = g_strdup_printf ("server=%s frames-per-clip=%d " NO_DEADLINE,
      s.url, served_frames (&s));
  for (i = 0; i < G_N_ELEMENTS (srcs); i++) {
    clients[i] = (Client) {srcs[i], props};
    threads[i] = g_thread_new ("client", client_main, &clients[i]);
  }
  for (i = 0; i < G_N_ELEMENTS (srcs); i++)
    g_thread_join (threads[i]);
  fail_unless_equals_int (server_stop (&s, SIGTERM), 0);
  for (i = 0; i < G_N_ELEMENTS (srcs); i++) {
    Run local;

    run_pipeline (&local, srcs[i], "", FALSE, NULL, NULL);
    fail_unless_equals_int (local.texts->len, 5);
    assert_same_texts (&local, &clients[i].run, srcs[i]);
    run_clear (&local);
    run_clear (&clients[i].run);
  }
  g_free (props);
}

GST_END_TEST;

/* ---------------------------------------------------------------- server lost */

static void
kill_server (gpointer data)
{
  server_stop (data, SIGKILL);
}

/* Every frame came out, in order, with its own timestamp. */
static void
assert_frames_intact (const Run * r, guint n)
{
  guint i;

  fail_unless_equals_int (r->frames.in_pts->len, n);
  fail_unless_equals_int (r->frames.out_pts->len, r->frames.in_pts->len);
  for (i = 0; i < r->frames.in_pts->len; i++)
    fail_unless_equals_uint64 (g_array_index (r->frames.out_pts,
            GstClockTime, i), g_array_index (r->frames.in_pts, GstClockTime,
            i));
}

/* Not live (loop 0: 10 clips, every clip waits for its answer) and live
 * (loop 1: 4 clips): at the first caption the server is killed. Not live,
 * each clip after it is dropped with a "Connection refused" warning and
 * every clip is accounted for. Live, a clip may instead find the queue full,
 * or still be on its way at EOS, and a stalled machine (another process
 * holding the cores) drops clips as late: only what holds through that is
 * asserted. Either way not one video frame is lost or retimed, and the
 * pipeline reaches EOS. */
GST_START_TEST (test_server_killed)
{
  gboolean live = __i__ == 1;
  guint frames = live ? 120 : 300, clips = frames / 30;
  Server s = { 0 };
  gchar *props, *src;
  Run r;

  server_start (&s, NULL, NULL);
  /* a refused connection fails at once: the deadline is not the point */
  props = g_strdup_printf ("server=%s frames-per-clip=4 "
      NO_DEADLINE " server-retries=2", s.url);
  src = g_strdup_printf ("videotestsrc is-live=%d pattern=smpte "
      "num-buffers=%u", live, frames);
  run_pipeline (&r, src, props, live, kill_server, &s);
  GST_INFO ("live %d: %u captions, %" G_GUINT64_FORMAT " dropped, %"
      G_GUINT64_FORMAT " late, %u warnings", live, r.texts->len, r.dropped,
      r.late, r.warnings);
  fail_unless (r.texts->len >= 1);
  fail_unless_equals_string (g_ptr_array_index (r.texts, 0), BARS);
  fail_unless (r.dropped >= 1, "no clip was lost");
  /* late captions are posted too: texts counts them */
  fail_unless (r.texts->len + r.dropped <= clips);
  fail_unless (r.warnings <= r.dropped);
  if (!live) {
    fail_unless_equals_uint64 (r.texts->len + r.dropped, clips);
    fail_unless_equals_int (r.warnings, r.dropped);
    fail_unless (strstr (r.warning_text->str, "Connection refused") != NULL,
        "%s", r.warning_text->str);
  }
  assert_frames_intact (&r, frames);
  run_clear (&r);
  g_free (src);
  g_free (props);
}

GST_END_TEST;

/* ---------------------------------------------------------------- broken peers */

/* What vlm-server never does, a TCP peer of the test's own does: hang,
 * answer garbage, answer 503, or speak TLS with a certificate nobody
 * trusts. It serves one connection at a time on a thread until `quit`. */
typedef enum
{
  PEER_SILENT,                  /* takes the connection, never answers */
  PEER_ANSWER,                  /* reads the request, sends `answer`, closes */
  PEER_TLS,                     /* a TLS handshake with a self-signed certificate */
} PeerMode;

typedef struct
{
  PeerMode mode;
  const gchar *answer;          /* the whole HTTP answer */
  GSocketListener *listener;
  GCancellable *quit;
  GPtrArray *connections;       /* kept open (silent) */
  GTlsCertificate *certificate;
  guint16 port;
  gint requests;                /* requests (or handshakes) seen */
  GThread *thread;
} Peer;

/* Reads one HTTP request: headers, then Content-Length bytes. */
static void
read_request (GIOStream * io, GCancellable * quit)
{
  GInputStream *in = g_io_stream_get_input_stream (io);
  GString *got = g_string_new (NULL);
  gchar buf[65536], *end, *length;
  gssize n;

  while (!(end = strstr (got->str, "\r\n\r\n")) &&
      (n = g_input_stream_read (in, buf, sizeof (buf), quit, NULL)) > 0)
    g_string_append_len (got, buf, n);
  if (end) {
    gsize want = (end - got->str) + 4;
    length = strstr (got->str, "Content-Length: ");
    if (length && length < end)
      want += g_ascii_strtoull (length + 16, NULL, 10);
    while (got->len < want &&
        (n = g_input_stream_read (in, buf, sizeof (buf), quit, NULL)) > 0)
      g_string_append_len (got, buf, n);
  }
  g_string_free (got, TRUE);
}

static gpointer
peer_main (gpointer data)
{
  Peer *p = data;
  GSocketConnection *c;

  while ((c = g_socket_listener_accept (p->listener, NULL, p->quit, NULL))) {
    if (p->mode == PEER_SILENT) {
      g_ptr_array_add (p->connections, c);
      g_atomic_int_inc (&p->requests);
      continue;
    }
    if (p->mode == PEER_TLS) {
      GIOStream *tls = g_tls_server_connection_new (G_IO_STREAM (c),
          p->certificate, NULL);

      g_atomic_int_inc (&p->requests);
      /* fails: the client refuses the certificate */
      if (tls) {
        g_tls_connection_handshake (G_TLS_CONNECTION (tls), p->quit, NULL);
        g_object_unref (tls);
      }
    } else {
      read_request (G_IO_STREAM (c), p->quit);
      g_atomic_int_inc (&p->requests);
      g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM
              (c)), p->answer, strlen (p->answer), NULL, p->quit, NULL);
    }
    g_io_stream_close (G_IO_STREAM (c), NULL, NULL);
    g_object_unref (c);
  }
  return NULL;
}

/* A self-signed certificate for 127.0.0.1, made with openssl. */
static GTlsCertificate *
self_signed (void)
{
  gchar *dir = g_dir_make_tmp ("vlm-tls-XXXXXX", NULL);
  gchar *cert = g_build_filename (dir, "cert.pem", NULL);
  gchar *key = g_build_filename (dir, "key.pem", NULL);
  gchar *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048",
    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key,
    "-out", cert, NULL
  };
  GError *error = NULL;
  GTlsCertificate *c;
  gint status;

  fail_unless (g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH |
          G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
          NULL, NULL, &status, &error), "openssl: %s",
      error ? error->message : "");
  c = g_tls_certificate_new_from_files (cert, key, &error);
  fail_unless (c != NULL, "%s", error ? error->message : "");
  g_unlink (cert);
  g_unlink (key);
  g_rmdir (dir);
  g_free (key);
  g_free (cert);
  g_free (dir);
  return c;
}

static void
peer_start (Peer * p, PeerMode mode, const gchar * answer)
{
  memset (p, 0, sizeof (*p));
  p->mode = mode;
  p->answer = answer;
  p->listener = g_socket_listener_new ();
  p->quit = g_cancellable_new ();
  p->connections = g_ptr_array_new_with_free_func (g_object_unref);
  if (mode == PEER_TLS)
    p->certificate = self_signed ();
  p->port = g_socket_listener_add_any_inet_port (p->listener, NULL, NULL);
  fail_unless (p->port > 0);
  p->thread = g_thread_new ("peer", peer_main, p);
}

static void
peer_stop (Peer * p)
{
  g_cancellable_cancel (p->quit);
  g_thread_join (p->thread);
  g_ptr_array_unref (p->connections);
  g_clear_object (&p->certificate);
  g_object_unref (p->quit);
  g_socket_listener_close (p->listener);
  g_object_unref (p->listener);
}

/* Against a peer that never answers, not live (loop 0: 2 clips) and live
 * (loop 1: 4 clips): each request ends at server-timeout (300 ms) with a
 * warning and its clip is dropped; the video flows on. Not live every clip
 * is accounted for; live, as for test_server_killed, a stall may drop
 * clips as late or leave the last one on its way at EOS. */
GST_START_TEST (test_server_silent)
{
  gboolean live = __i__ == 1;
  guint frames = live ? 120 : 60;
  gint64 started = g_get_monotonic_time ();
  gchar *props, *src;
  Peer p;
  Run r;

  peer_start (&p, PEER_SILENT, NULL);
  props = g_strdup_printf ("server=http://127.0.0.1:%u frames-per-clip=4 "
      "server-timeout=300000000", p.port);
  src = g_strdup_printf ("videotestsrc is-live=%d pattern=smpte "
      "num-buffers=%u", live, frames);
  run_pipeline (&r, src, props, live, NULL, NULL);
  peer_stop (&p);

  fail_unless_equals_int (r.texts->len, 0);
  fail_unless (r.dropped >= 1);
  fail_unless (r.warnings <= r.dropped);
  if (!live) {
    fail_unless_equals_uint64 (r.dropped, 2);
    fail_unless_equals_int (r.warnings, 2);
    fail_unless (strstr (r.warning_text->str, "within 300 ms") != NULL, "%s",
        r.warning_text->str);
    /* two requests of 300 ms each, one after the other */
    fail_unless (g_get_monotonic_time () - started >= 600000);
  }
  fail_unless (p.requests >= 1);
  assert_frames_intact (&r, frames);
  run_clear (&r);
  g_free (src);
  g_free (props);
}

GST_END_TEST;

#define ANSWER(status, body) "HTTP/1.1 " status "\r\nContent-Type: " \
  "application/json\r\nConnection: close\r\n\r\n" body

static const struct
{
  PeerMode mode;
  const gchar *answer, *scheme, *warning;
  gint requests;                /* for 2 clips with server-retries=2 */
} broken[] = {
  /* not retried: a malformed answer will not mend */
  {PEER_ANSWER, ANSWER ("200 OK", "not json!"), "http",
      "sent no chat.completion: not json!", 2},
  {PEER_ANSWER, ANSWER ("200 OK", ""), "http", "sent no chat.completion", 2},
  /* JSON of the wrong shapes: no critical, a refusal */
  {PEER_ANSWER, ANSWER ("200 OK", "{\"choices\":[{\"message\":{\"content\":"
          "{\"a\":1}}}],\"usage\":{\"completion_tokens\":\"x\"},\"model\":7}"),
      "http", "sent no chat.completion", 2},
  {PEER_ANSWER, ANSWER ("200 OK", "{\"error\":{\"message\":[1]}}"), "http",
      "answered with an error: (no message)", 2},
  /* retried twice per clip, then given up, with the server's message */
  {PEER_ANSWER, ANSWER ("503 Service Unavailable", "{\"error\":{\"message\":"
          "\"overloaded\",\"type\":\"server_error\",\"param\":null,"
          "\"code\":null}}"), "http",
      "HTTP 503 Service Unavailable from", 6},
  /* the certificate is checked (libsoup's default) and refused, once */
  {PEER_TLS, NULL, "https", "certificate", 2},
};

/* Not live, 2 clips against a peer that answers wrongly: both clips are
 * dropped with a warning saying why, retries stop where they should, and
 * every frame comes out. */
GST_START_TEST (test_server_broken)
{
  gchar *props;
  Peer p;
  Run r;

  peer_start (&p, broken[__i__].mode, broken[__i__].answer);
  props = g_strdup_printf ("server=%s://127.0.0.1:%u frames-per-clip=4 "
      NO_DEADLINE " server-retries=2", broken[__i__].scheme, p.port);
  run_pipeline (&r, "videotestsrc num-buffers=60 pattern=smpte", props, FALSE,
      NULL, NULL);
  peer_stop (&p);

  fail_unless_equals_int (r.texts->len, 0);
  fail_unless_equals_uint64 (r.dropped, 2);
  fail_unless_equals_int (r.warnings, 2);
  fail_unless (strstr (r.warning_text->str, broken[__i__].warning) != NULL,
      "%s", r.warning_text->str);
  fail_unless_equals_int (p.requests, broken[__i__].requests);
  assert_frames_intact (&r, 60);
  run_clear (&r);
  g_free (props);
}

GST_END_TEST;

/* ---------------------------------------------------------------- bad requests */

/* The error object: message a non-empty string, type, param and code as
 * given (NULL: JSON null). */
static void
assert_error (const Answer * a, guint status, const gchar * type,
    const gchar * param, const gchar * code)
{
  JsonObject *e;

  fail_unless_equals_int (a->status, status);
  fail_unless (a->json && JSON_NODE_HOLDS_OBJECT (a->json), "%s", a->body);
  e = json_object_get_object_member (json_node_get_object (a->json), "error");
  fail_unless (e != NULL, "%s", a->body);
  fail_unless (strlen (json_object_get_string_member (e, "message")) > 0);
  fail_unless_equals_string (json_object_get_string_member (e, "type"), type);
  fail_unless (json_object_has_member (e, "param"));
  fail_unless (json_object_has_member (e, "code"));
  if (param) {
    fail_unless_equals_string (json_object_get_string_member (e, "param"),
        param);
  } else {
    fail_unless (json_object_get_null_member (e, "param"), "%s", a->body);
  }
  if (code) {
    fail_unless_equals_string (json_object_get_string_member (e, "code"),
        code);
  } else {
    fail_unless (json_object_get_null_member (e, "code"), "%s", a->body);
  }
}

static void
post (const gchar * body, Answer * a)
{
  request (&shared, "POST", "/v1/chat/completions", body, strlen (body), NULL,
      a);
}

static const gchar *
content (const Answer * a)
{
  JsonObject *choice = json_array_get_object_element
      (json_object_get_array_member (json_node_get_object (a->json),
          "choices"), 0);
  return json_object_get_string_member (json_object_get_object_member
      (choice, "message"), "content");
}

#define IMAGE_PARAM "messages[0].content[0].image_url.url"

/* A chat request for `url` with `extra` fields gets this 4xx error. */
static void
expect_chat_error (const gchar * extra, const gchar * url, guint status,
    const gchar * param, const gchar * code)
{
  gchar *body = chat_body (extra, url);
  Answer a;

  post (body, &a);
  assert_error (&a, status, "invalid_request_error", param, code);
  answer_clear (&a);
  g_free (body);
}

GST_START_TEST (test_bad_requests)
{
  gchar *jpeg = smpte_data_url ("jpegenc", "image/jpeg");
  gchar *png = smpte_data_url ("pngenc", "image/png");
  gchar *body, *huge;
  Answer a;

  /* the good ones first: JPEG and PNG frames are both read */
  body = chat_body ("\"model\":\"testcard-git\",", jpeg);
  post (body, &a);
  fail_unless_equals_int (a.status, 200);
  fail_unless_equals_string (content (&a), BARS);
  answer_clear (&a);
  g_free (body);
  body = chat_body (NULL, png);
  post (body, &a);
  fail_unless_equals_int (a.status, 200);
  fail_unless_equals_string (content (&a), BARS);
  answer_clear (&a);
  g_free (body);

  post ("{\"messages\": [", &a);
  assert_error (&a, 400, "invalid_request_error", NULL, NULL);
  answer_clear (&a);
  post ("[1, 2]", &a);
  assert_error (&a, 400, "invalid_request_error", NULL, NULL);
  answer_clear (&a);
  post ("{\"messages\":[{\"role\":\"user\",\"content\":\"describe\"}]}", &a);
  assert_error (&a, 400, "invalid_request_error", "messages", NULL);
  answer_clear (&a);
  post ("{\"model\":\"testcard-git\"}", &a);
  assert_error (&a, 400, "invalid_request_error", "messages", NULL);
  answer_clear (&a);

  /* bad data URLs: not base64, not an image, a truncated JPEG, a URL */
  expect_chat_error (NULL, "data:image/jpeg;base64,@@not base64@@", 400,
      IMAGE_PARAM, "invalid_image_url");
  expect_chat_error (NULL, "data:image/jpeg;base64,aGVsbG8gd29ybGQ=", 400,
      IMAGE_PARAM, "invalid_image_url");
  jpeg[strlen (jpeg) / 3] = '\0';
  expect_chat_error (NULL, jpeg, 400, IMAGE_PARAM, "invalid_image_url");
  expect_chat_error (NULL, "http://127.0.0.1:1/frame.jpg", 400, IMAGE_PARAM,
      "invalid_image_url");

  /* unknown model, unsupported or mistyped fields */
  expect_chat_error ("\"model\":\"gpt-4o\",", png, 404, "model",
      "model_not_found");
  expect_chat_error ("\"n\":2,", png, 400, "n", NULL);
  expect_chat_error ("\"max_tokens\":\"many\",", png, 400, "max_tokens",
      NULL);
  expect_chat_error ("\"temperature\":9,", png, 400, "temperature", NULL);
  expect_chat_error ("\"seed\":3.7e26,", png, 400, "seed", NULL);
  expect_chat_error ("\"seed\":-1,", png, 400, "seed", NULL);
  expect_chat_error ("\"seed\":1.5,", png, 400, "seed", NULL);
  expect_chat_error ("\"stream\":\"yes\",", png, 400, "stream", NULL);

  /* nesting deep enough to exhaust a recursive parser's stack */
  huge = g_strnfill (100000, '[');
  post (huge, &a);
  assert_error (&a, 400, "invalid_request_error", NULL, NULL);
  answer_clear (&a);
  g_free (huge);

  /* too large: --max-body 1048576 */
  huge = g_strnfill (2 << 20, ' ');
  request (&shared, "POST", "/v1/chat/completions", huge, 2 << 20, NULL, &a);
  assert_error (&a, 413, "invalid_request_error", NULL, "request_too_large");
  answer_clear (&a);
  g_free (huge);

  /* other paths and methods */
  request (&shared, "GET", "/v1/chat/completions", NULL, 0, NULL, &a);
  assert_error (&a, 405, "invalid_request_error", NULL, "method_not_allowed");
  answer_clear (&a);
  request (&shared, "GET", "/v1/embeddings", NULL, 0, NULL, &a);
  assert_error (&a, 404, "invalid_request_error", NULL, "unknown_url");
  answer_clear (&a);
  request (&shared, "GET", "/health", NULL, 0, NULL, &a);
  fail_unless_equals_int (a.status, 200);
  fail_unless_equals_string (json_object_get_string_member
      (json_node_get_object (a.json), "status"), "ok");
  answer_clear (&a);

  g_free (png);
  g_free (jpeg);
}

GST_END_TEST;

/* --max-images and --max-pixels: a request past them is refused before
 * anything is decoded past the header. */
GST_START_TEST (test_image_limits)
{
  Server s = { 0 };
  gchar *png = smpte_data_url ("pngenc", "image/png"), *body, *small;
  Answer a;

  server_start (&s, "--max-images 2 --max-pixels 50000", NULL);
  body = g_strdup_printf ("{\"messages\":[{\"role\":\"user\",\"content\":["
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}", png);
  request (&s, "POST", "/v1/chat/completions", body, strlen (body), NULL, &a);
  /* 320x240 = 76800 pixels */
  assert_error (&a, 400, "invalid_request_error", IMAGE_PARAM,
      "invalid_image_url");
  fail_unless (strstr (a.body, "76800") || strstr (a.body, "320x240"), "%s",
      a.body);
  answer_clear (&a);
  g_free (body);
  /* three images of 160x120 (19200 pixels each), two allowed */
  small = smpte_data_url_sized ("pngenc", "image/png", 160, 120);
  body = g_strdup_printf ("{\"messages\":[{\"role\":\"user\",\"content\":["
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}},"
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}},"
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}",
      small, small, small);
  request (&s, "POST", "/v1/chat/completions", body, strlen (body), NULL, &a);
  assert_error (&a, 400, "invalid_request_error", "messages", NULL);
  answer_clear (&a);
  g_free (body);
  /* and two are captioned */
  body = g_strdup_printf ("{\"messages\":[{\"role\":\"user\",\"content\":["
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}},"
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}",
      small, small);
  request (&s, "POST", "/v1/chat/completions", body, strlen (body), NULL, &a);
  fail_unless_equals_int (a.status, 200);
  answer_clear (&a);
  g_free (body);
  g_free (small);
  fail_unless_equals_int (server_stop (&s, SIGTERM), 0);
  g_free (png);
}

GST_END_TEST;

/* ---------------------------------------------------------------- api key */

static GString *logged;

static void
collect_log (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer data)
{
  g_string_append (logged, gst_debug_message_get (message));
}

/* A server that requires the key refuses requests without it or with
 * another (401 invalid_api_key), takes the element's (api-key-env), and the
 * key shows in no property and no log line. */
GST_START_TEST (test_api_key)
{
  Server s = { 0 };
  gchar *props, *value = NULL;
  GstElement *element;
  Answer a;
  Run r;

  server_start (&s, "--api-key-env " KEY_ENV, KEY);
  request (&s, "GET", "/v1/models", NULL, 0, NULL, &a);
  assert_error (&a, 401, "invalid_request_error", NULL, "invalid_api_key");
  answer_clear (&a);
  request (&s, "GET", "/v1/models", NULL, 0, "Bearer not-" KEY, &a);
  assert_error (&a, 401, "invalid_request_error", NULL, "invalid_api_key");
  answer_clear (&a);
  request (&s, "POST", "/v1/chat/completions", "{}", 2, NULL, &a);
  assert_error (&a, 401, "invalid_request_error", NULL, "invalid_api_key");
  answer_clear (&a);
  request (&s, "GET", "/v1/models", NULL, 0, "Bearer " KEY, &a);
  fail_unless_equals_int (a.status, 200);
  answer_clear (&a);

  /* the element with the key: captions, and no trace of the key */
  g_setenv (KEY_ENV, KEY, TRUE);
  logged = g_string_new (NULL);
  gst_debug_set_threshold_for_name ("vlmcaption", GST_LEVEL_MEMDUMP);
  gst_debug_remove_log_function (gst_debug_log_default);
  gst_debug_add_log_function (collect_log, NULL, NULL);
  props = g_strdup_printf ("server=%s frames-per-clip=4 " NO_DEADLINE
      " api-key-env=" KEY_ENV, s.url);
  run_pipeline (&r, "videotestsrc num-buffers=30 pattern=smpte", props, FALSE,
      NULL, NULL);
  gst_debug_remove_log_function (collect_log);
  gst_debug_set_threshold_for_name ("vlmcaption", GST_LEVEL_NONE);
  fail_unless_equals_int (r.texts->len, 1);
  fail_unless_equals_string (g_ptr_array_index (r.texts, 0), BARS);
  fail_unless (strstr (logged->str, "captioning through") != NULL,
      "the log was not captured");
  fail_unless (strstr (logged->str, KEY) == NULL, "the key was logged");
  run_clear (&r);
  g_free (props);

  element = gst_element_factory_make ("vlmcaption", NULL);
  g_object_set (element, "api-key-env", KEY_ENV, NULL);
  g_object_get (element, "api-key-env", &value, NULL);
  fail_unless_equals_string (value, KEY_ENV);
  g_free (value);
  gst_object_unref (element);

  /* without the key every clip is refused: counted, with the server's word */
  props = g_strdup_printf ("server=%s frames-per-clip=4 " NO_DEADLINE,
      s.url);
  run_pipeline (&r, "videotestsrc num-buffers=60 pattern=smpte", props, FALSE,
      NULL, NULL);
  fail_unless_equals_int (r.texts->len, 0);
  fail_unless_equals_uint64 (r.dropped, 2);
  fail_unless_equals_int (r.warnings, 2);
  fail_unless (strstr (r.warning_text->str, "HTTP 401") != NULL, "%s",
      r.warning_text->str);
  run_clear (&r);
  g_free (props);

  fail_unless_equals_int (server_stop (&s, SIGTERM), 0);
  g_unsetenv (KEY_ENV);
  g_string_free (logged, TRUE);
}

GST_END_TEST;

/* Settings that cannot work fail the state change with an error that says
 * why: api-key-env naming a variable that is not set (named), a URL that
 * is not http(s), one with a password in it (never echoed). */
static const struct
{
  const gchar *props, *said, *unsaid;
} bad_settings[] = {
  {"server=http://127.0.0.1:1 api-key-env=VLM_TEST_NO_SUCH_KEY",
      "VLM_TEST_NO_SUCH_KEY", NULL},
  {"server=ftp://127.0.0.1:1", "ftp://127.0.0.1:1", NULL},
  {"server=http://user:hunter2@127.0.0.1:1", "api-key-env", "hunter2"},
  {"server=ftp://user:hunter2@127.0.0.1:1", "api-key-env", "hunter2"},
};

GST_START_TEST (test_bad_settings)
{
  gchar *launch = g_strdup_printf ("videotestsrc num-buffers=1 ! vlmcaption "
      "%s ! fakesink", bad_settings[__i__].props);
  GstElement *pipeline = gst_parse_launch (launch, NULL);
  GstMessage *msg;
  GError *error = NULL;
  gchar *debug = NULL;

  g_unsetenv ("VLM_TEST_NO_SUCH_KEY");
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (GST_ELEMENT_BUS (pipeline), GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &error, &debug);
  fail_unless (strstr (error->message, bad_settings[__i__].said) != NULL,
      "%s", error->message);
  if (bad_settings[__i__].unsaid) {
    fail_unless (strstr (error->message, bad_settings[__i__].unsaid) == NULL);
    fail_unless (!debug || !strstr (debug, bad_settings[__i__].unsaid));
  }
  g_free (debug);
  g_error_free (error);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  g_free (launch);
}

GST_END_TEST;

static Suite *
remote_suite (void)
{
  Suite *s = suite_create ("vlmcaption-remote");
  TCase *shared_case = tcase_create ("shared-server");
  TCase *own_case = tcase_create ("own-server");

  tcase_add_unchecked_fixture (shared_case, shared_start, shared_stop);
  tcase_set_timeout (shared_case, 300);
  tcase_add_loop_test (shared_case, test_same_text, 0, G_N_ELEMENTS (patterns));
  tcase_add_loop_test (shared_case, test_generation_settings, 0, 2);
  tcase_add_test (shared_case, test_bad_requests);
  suite_add_tcase (s, shared_case);
  tcase_set_timeout (own_case, 120);
  tcase_add_loop_test (own_case, test_server_killed, 0, 2);
  tcase_add_loop_test (own_case, test_server_silent, 0, 2);
  tcase_add_loop_test (own_case, test_server_broken, 0, G_N_ELEMENTS (broken));
  tcase_add_test (own_case, test_concurrent_batched);
  tcase_add_test (own_case, test_image_limits);
  tcase_add_test (own_case, test_api_key);
  tcase_add_loop_test (own_case, test_bad_settings, 0,
      G_N_ELEMENTS (bad_settings));
  suite_add_tcase (s, own_case);
  return s;
}

GST_CHECK_MAIN (remote);
