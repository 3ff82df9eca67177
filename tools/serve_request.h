/* serve_request.h — vlm-server: an OpenAI chat.completions request, read.
 *
 * What is taken from the request body (anything else is ignored, as
 * OpenAI's clients send many fields a captioner has no use for):
 *   model                  must name the served model when present
 *   messages[].content     of "user" messages: "text" parts joined with a
 *                          newline are the prompt, "image_url" parts (data
 *                          URLs, JPEG or PNG) the frames, in order; a plain
 *                          string content is a text part
 *   max_tokens | max_completion_tokens, temperature (0: greedy; > 0:
 *   sampling at that temperature), top_p, seed, n (1 only), stream,
 *   stream_options.include_usage
 * Fields left out keep the model's generation_config.json. */
#ifndef VLM_SERVE_REQUEST_H
#define VLM_SERVE_REQUEST_H

#include "serve_image.h"

G_BEGIN_DECLS

typedef struct {
  guint64 max_pixels;            /* per image */
  int max_images;
} ServeLimits;

/* An answer that is an error, in OpenAI's shape:
 * {"error": {"message", "type", "param", "code"}} with HTTP `status`. */
typedef struct {
  guint status;
  const char *type;              /* "invalid_request_error", ... (static) */
  const char *code;              /* NULL: null */
  char *param;                   /* NULL: null */
  char *message;
} ServeError;

void serve_error_set (ServeError *err, guint status, const char *type, const char *code,
                      const char *param, const char *format, ...) G_GNUC_PRINTF (6, 7);
void serve_error_clear (ServeError *err);
/* The error as the JSON body. g_free. */
char *serve_error_to_json (const ServeError *err);

typedef struct {
  ServeImage *images;            /* [n_images] */
  VlmFrame *frames;              /* [n_images], views of images */
  int n_images;
  char *prompt;                  /* NULL: none */
  VlmGenParams params;
  gboolean stream, include_usage;
} ServeRequest;

/* Reads `body` (`length` bytes) for `model`, served as `served_name`.
 * FALSE with `err` filled (400, or 404 for another model). */
gboolean serve_request_parse (ServeRequest *req, const char *body, gsize length,
                              VlmModel *model, const char *served_name,
                              const ServeLimits *limits, ServeError *err);
void serve_request_clear (ServeRequest *req);

G_END_DECLS

#endif /* VLM_SERVE_REQUEST_H */
