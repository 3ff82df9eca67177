/* gstvlmremote.h — the element's client of an OpenAI-compatible endpoint.
 *
 * With the server property set, vlmcaption loads no model: each clip's
 * sampled frames go as base64 JPEG data URLs (`image_url` content parts),
 * with the prompt as a `text` part, in one POST to /v1/chat/completions,
 * and the caption is the answer's message content (`stream: false`) or the
 * concatenated `delta.content` of its server-sent events (`stream: true`).
 *
 * One request at a time per element, made on the inference thread: the
 * streaming thread never waits on it (the worker queue and drop policy sit
 * in between, as for a local model). A request has a total deadline
 * (`timeout`), is retried a bounded number of times on a refused
 * connection, 429 and 5xx, and stops at once when the caller's
 * GCancellable fires (flush, stop). TLS is libsoup's default: certificates
 * verified against the system's store. The key never goes into a log.
 *
 * Not thread-safe: one thread (the element's worker) uses a GstVlmRemote. */
#ifndef __GST_VLM_REMOTE_H__
#define __GST_VLM_REMOTE_H__

#include <gio/gio.h>
#include <gst/video/video.h>
#include <vlm/vlm.h>

G_BEGIN_DECLS

typedef struct _GstVlmRemote GstVlmRemote;

typedef struct
{
  const gchar *url;             /* http(s)://host[:port][/v1[/chat/completions]] */
  const gchar *model;           /* "model" of the request; NULL: none sent */
  const gchar *api_key;         /* sent as "Authorization: Bearer"; NULL: none */
  guint64 timeout_ms;           /* whole request, answer read included */
  guint retries;                /* extra attempts after a retryable failure */
  gboolean stream;              /* ask for server-sent events */
  guint jpeg_quality;           /* 1..100 */
} GstVlmRemoteSettings;

/* What the request asks of generation; a field < 0 (or 0 for max_tokens)
 * is left out, so the server's defaults apply. */
typedef struct
{
  gint max_tokens;
  gdouble temperature;          /* 0: greedy */
  gdouble top_p;
  gint64 seed;
} GstVlmRemoteGen;

typedef struct
{
  gchar *text;                  /* the caption, UTF-8 */
  gchar *model;                 /* "model" of the answer, or the request's, or "" */
  gint n_tokens;                /* usage.completion_tokens; 0: not given */
} GstVlmRemoteReply;

/* A client for `settings` (copied). NULL with `error` (G_IO_ERROR_INVALID_
 * ARGUMENT) naming the URL when it is not http(s) with a host, or saying so
 * when it holds a user name or password (URLs are logged; keys never).
 * No network use until the first caption. */
GstVlmRemote *gst_vlm_remote_new (const GstVlmRemoteSettings * settings,
    GError ** error);
void gst_vlm_remote_free (GstVlmRemote * remote);

/* The endpoint requests go to (".../v1/chat/completions"). */
const gchar *gst_vlm_remote_get_endpoint (const GstVlmRemote * remote);

/* The request fields for HF generation settings: `text` as the
 * generation-config property ("key=value,..."; NULL: none) and the
 * max-new-tokens override (0: none). do_sample=false (or no sampling key)
 * asks for temperature 0 only when the text says so. FALSE with `error`
 * for text that vlm_gen_params_parse refuses; `*gen` is then the override
 * alone. Beam search has no field in the API: num_beams is not sent. */
gboolean gst_vlm_remote_gen_parse (GstVlmRemoteGen * gen, const gchar * text,
    guint max_new_tokens, GError ** error);

/* Sends `n_frames` mapped frames (any format GstVideoConverter turns into
 * RGB) with `prompt` (NULL or "": no text part, the server's plain
 * caption) and fills `reply` (clear with gst_vlm_remote_reply_clear).
 * FALSE with `error`: G_IO_ERROR_CANCELLED when `cancellable` fired,
 * G_IO_ERROR_TIMED_OUT past the deadline, G_IO_ERROR_FAILED for an HTTP
 * status (the message gives it with the server's error message) or a
 * malformed answer, or the transport's error after the last retry. */
gboolean gst_vlm_remote_caption (GstVlmRemote * remote,
    const GstVideoFrame * frames, guint n_frames, const gchar * prompt,
    const GstVlmRemoteGen * gen, GCancellable * cancellable,
    GstVlmRemoteReply * reply, GError ** error);

void gst_vlm_remote_reply_clear (GstVlmRemoteReply * reply);

G_END_DECLS

#endif /* __GST_VLM_REMOTE_H__ */
