/* vlm-caption — caption a clip outside GStreamer: the simplest way to check
 * a model folder.
 *
 *   vlm-caption --model DIR --size 320x240 clip.rgb     raw RGB frames, back to back
 *   vlm-caption --model DIR a.ppm b.ppm c.ppm d.ppm     binary PPM (P6) frames
 *
 * A raw file holds as many frames as fit; the model's frames-per-clip are
 * picked evenly from them. */
#include <stdio.h>
#include <stdlib.h>

#include "vlm/vlm.h"

static char *model_dir, *prompt, *size, *backend = "onednn", *gen_config;
static int beams, max_new_tokens, n_threads;
static gboolean verbose;

static GOptionEntry entries[] = {
  {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "HuggingFace model folder", "DIR"},
  {"prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Text prompt (default: plain caption)", "TEXT"},
  {"size", 's', 0, G_OPTION_ARG_STRING, &size, "Frame size of raw RGB input", "WxH"},
  {"beams", 'b', 0, G_OPTION_ARG_INT, &beams, "Beam count (default: generation_config.json)", "N"},
  {"max-new-tokens", 'n', 0, G_OPTION_ARG_INT, &max_new_tokens, "Token budget", "N"},
  {"generation-config", 'g', 0, G_OPTION_ARG_STRING, &gen_config, "key=value,... generation settings", "KV"},
  {"backend", 0, 0, G_OPTION_ARG_STRING, &backend, "onednn or blas", "NAME"},
  {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (0: all cores)", "N"},
  {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Print timings and token ids", NULL},
  {NULL}};

/* Reads a binary PPM (P6, maxval 255) into a new RGB buffer. */
static guint8 *
read_ppm (const char *path, int *w, int *h, GError **error)
{
  gsize len;
  g_autofree char *data = NULL;
  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  int maxval = 0, off = 0;
  if (sscanf (data, "P6 %d %d %d%n", w, h, &maxval, &off) != 3 || maxval != 255 || *w < 1 || *h < 1 ||
      (gsize) off + 1 + (gsize) *w * *h * 3 > len) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "%s: not a binary 8-bit PPM (P6) image", path);
    return NULL;
  }
  return g_memdup2 (data + off + 1, (gsize) *w * *h * 3);
}

static int
fail (const char *what, GError *error)
{
  fprintf (stderr, "vlm-caption: %s%s%s\n", what, error ? ": " : "", error ? error->message : "");
  g_clear_error (&error);
  return 1;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new ("FRAME-FILE...");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, "Captions video frames with a HuggingFace vision-language model.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail ("bad arguments", error);
  if (!model_dir || argc < 2)
    return fail ("need --model DIR and at least one frame file (see --help)", NULL);

  GPtrArray *buffers = g_ptr_array_new_with_free_func (g_free);
  GArray *frames = g_array_new (FALSE, TRUE, sizeof (VlmFrame));
  for (int i = 1; i < argc; i++) {
    int w = 0, h = 0;
    guint8 *rgb = NULL;
    gsize len = 0;
    if (size) {
      if (sscanf (size, "%dx%d", &w, &h) != 2 || w < 1 || h < 1)
        return fail ("--size must be WxH", NULL);
      if (!g_file_get_contents (argv[i], (char **) &rgb, &len, &error))
        return fail ("cannot read frames", error);
    } else if (!(rgb = read_ppm (argv[i], &w, &h, &error)))
      return fail ("cannot read frame", error);
    else
      len = (gsize) w * h * 3;
    g_ptr_array_add (buffers, rgb);
    for (gsize off = 0; off + (gsize) w * h * 3 <= len; off += (gsize) w * h * 3) {
      VlmFrame f = {.format = VLM_PIXEL_RGB, .width = w, .height = h, .planes = {rgb + off}, .strides = {w * 3}};
      g_array_append_val (frames, f);
    }
  }
  if (frames->len == 0)
    return fail ("the input holds no whole frame", NULL);

  VlmModelParams mp = vlm_model_default_params ();
  mp.backend = g_strcmp0 (backend, "blas") == 0 ? VLM_BACKEND_BLAS : VLM_BACKEND_ONEDNN;
  mp.n_threads = n_threads;
  VlmModel *model = vlm_model_load (model_dir, &mp, &error);
  if (!model)
    return fail ("cannot load the model", error);
  VlmGenParams gp = vlm_gen_default_params (model);
  if (beams > 0)
    gp.num_beams = beams;
  if (max_new_tokens > 0)
    gp.max_new_tokens = max_new_tokens;
  if (gen_config && !vlm_gen_params_parse (&gp, gen_config, &error))
    return fail ("bad --generation-config", error);
  VlmSession *session = vlm_session_new (model, &error);
  VlmCaption cap;
  if (!session || !vlm_session_caption (session, (VlmFrame *) frames->data, (int) frames->len, prompt, &gp,
                                        NULL, NULL, &cap, &error))
    return fail ("captioning failed", error);
  printf ("%s\n", cap.text);
  if (verbose) {
    fprintf (stderr, "%u frames; %d tokens:", frames->len, cap.n_tokens);
    for (int i = 0; i < cap.n_tokens; i++)
      fprintf (stderr, " %d", cap.tokens[i]);
    fprintf (stderr, "\npreprocess %.1f ms, vision %.1f ms, prefill %.1f ms, decode %.1f ms, total %.1f ms\n",
             cap.preprocess_ms, cap.vision_ms, cap.prefill_ms, cap.decode_ms, cap.total_ms);
  }
  vlm_caption_clear (&cap);
  vlm_session_free (session);
  vlm_model_unref (model);
  g_array_free (frames, TRUE);
  g_ptr_array_free (buffers, TRUE);
  return 0;
}
