/* fuzz_chat.c — vlm-server's reading of a chat completions request body
 * (tools/serve_request.c, with the data URL images of serve_image.c) for
 * the test-card model. Oracle: an accepted request has at least one frame
 * of a size the limits allow and generation params vlm_gen_params_check
 * accepts; a refused one has a 4xx status, a type and a message, and its
 * error JSON parses back. */
#include "fuzz.h"
#include "serve_request.h"

#include <json-glib/json-glib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static VlmModel *model;
  const ServeLimits limits = {.max_pixels = 1 << 16, .max_images = 8};
  ServeRequest req;
  ServeError err = {0};
  GError *error = NULL;

  fuzz_init ();
  if (!model) {
    g_autofree char *dir = fuzz_project_path ("models/testcard-git");
    VlmModelParams params = vlm_model_default_params ();
    params.backend = VLM_BACKEND_BLAS;
    if (!(model = vlm_model_load (dir, &params, &error)))
      g_error ("%s: %s", dir, error->message);
  }
  if (serve_request_parse (&req, (const char *) data, size, model, "testcard-git", &limits, &err)) {
    if (req.n_images < 1 || req.n_images > limits.max_images)
      g_error ("accepted %d images", req.n_images);
    for (int i = 0; i < req.n_images; i++)
      if ((guint64) req.frames[i].width * req.frames[i].height > limits.max_pixels ||
          req.frames[i].planes[0] != req.images[i].rgb)
        g_error ("accepted a %dx%d image", req.frames[i].width, req.frames[i].height);
    if (!vlm_gen_params_check (&req.params, &error))
      g_error ("accepted params that the engine refuses: %s", error->message);
  } else {
    if (err.status < 400 || err.status > 499 || !err.type || !err.message)
      g_error ("refused with status %u", err.status);
    g_autofree char *json = serve_error_to_json (&err);
    JsonParser *parser = json_parser_new ();
    if (!json_parser_load_from_data (parser, json, -1, NULL))
      g_error ("error JSON does not parse: %s", json);
    g_object_unref (parser);
  }
  serve_request_clear (&req);
  serve_error_clear (&err);
  return 0;
}
