/* fuzz_config.c — a whole model folder: the test-card model with one of
 * its config files (picked by the first byte) replaced by the rest of the
 * input, loaded on the BLAS backend; a folder that loads captions one
 * clip of two frames. */
#include "fuzz.h"

#include <glib/gstdio.h>
#include <unistd.h>

static const char *const files[] = {
  "config.json", "generation_config.json", "processor_config.json", "tokenizer_config.json", "tokenizer.json",
};

static char *model_dir, *testcard;

/* dir/name as a symlink to the test card's file again. */
static void
restore (const char *name)
{
  g_autofree char *from = g_build_filename (testcard, name, NULL);
  g_autofree char *to = g_build_filename (model_dir, name, NULL);
  g_unlink (to);
  if (symlink (from, to) != 0)
    g_error ("fuzz: cannot link %s", to);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *replaced;
  fuzz_init ();
  if (!model_dir) {
    testcard = fuzz_project_path ("models/testcard-git");
    model_dir = g_build_filename (fuzz_dir (), "model", NULL);
    g_mkdir (model_dir, 0700);
    const char *all[] = {"config.json", "generation_config.json", "processor_config.json", "tokenizer_config.json",
                         "tokenizer.json", "model.safetensors"};
    for (guint i = 0; i < G_N_ELEMENTS (all); i++)
      restore (all[i]);
  }
  if (size < 1)
    return 0;
  if (replaced)
    restore (replaced);
  replaced = files[data[0] % G_N_ELEMENTS (files)];
  g_autofree char *path = g_build_filename (model_dir, replaced, NULL);
  g_unlink (path);
  if (!g_file_set_contents (path, (const char *) data + 1, (gssize) size - 1, NULL))
    g_error ("fuzz: cannot write %s", path);

  VlmModelParams params = {VLM_BACKEND_BLAS, VLM_PRECISION_F32, 1};
  GError *error = NULL;
  VlmModel *m = vlm_model_load (model_dir, &params, &error);
  if (!m) {
    g_error_free (error);
    return 0;
  }
  VlmSession *s = vlm_session_new (m, &error);
  if (s) {
    static uint8_t gray[64 * 48 * 3];
    VlmFrame frames[2] = {
      {.format = VLM_PIXEL_RGB, .width = 64, .height = 48, .planes = {gray}, .strides = {64 * 3}},
      {.format = VLM_PIXEL_RGB, .width = 64, .height = 48, .planes = {gray}, .strides = {64 * 3}},
    };
    VlmGenParams gp = vlm_gen_default_params (m);
    VlmCaption cap;
    gp.max_new_tokens = MIN (gp.max_new_tokens, 3);
    if (vlm_session_caption (s, frames, 2, NULL, &gp, NULL, NULL, &cap, &error))
      vlm_caption_clear (&cap);
    else
      g_clear_error (&error);
    vlm_session_free (s);
  } else {
    g_clear_error (&error);
  }
  vlm_model_unref (m);
  return 0;
}
