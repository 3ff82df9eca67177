/* fuzz_config.c — a whole model folder: the test-card model or one of the
 * fixture checkpoints (every architecture the engine reads), with one of
 * its config files replaced by the rest of the input, loaded on the BLAS
 * backend; the test card, once it loads, captions one clip of two frames
 * (the fixtures' towers are too slow under ASan for each input). The
 * first byte picks both: the file by its low 3 bits, the folder by the
 * rest (0: the test card; then the fixtures holding model.safetensors,
 * sorted, as tests/fuzz/seeds.py numbers them). */
#include "fuzz.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static const char *const files[] = {
  "config.json", "generation_config.json", "processor_config.json", "tokenizer_config.json", "tokenizer.json",
};

static char *model_dir;
static GPtrArray *folders;      /* source folders, the test card first */

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The test card, then every fixture folder with model.safetensors. */
static void
list_folders (void)
{
  folders = g_ptr_array_new ();
  g_ptr_array_add (folders, fuzz_project_path ("models/testcard-git"));
  g_autofree char *root = fuzz_shared_path ("fixtures");
  GDir *d = g_dir_open (root, 0, NULL);
  GPtrArray *names = g_ptr_array_new ();
  for (const char *n; d && (n = g_dir_read_name (d));) {
    g_autofree char *w = g_build_filename (root, n, "model.safetensors", NULL);
    if (g_file_test (w, G_FILE_TEST_IS_REGULAR))
      g_ptr_array_add (names, g_strdup (n));
  }
  if (d)
    g_dir_close (d);
  g_ptr_array_sort (names, by_name);
  for (guint i = 0; i < names->len; i++) {
    g_ptr_array_add (folders, g_build_filename (root, names->pdata[i], NULL));
    g_free (names->pdata[i]);
  }
  g_ptr_array_free (names, TRUE);
}

/* model_dir as links to every file of `src` but the goldens and, for a
 * fixture, its tokenizer.json: the Qwen and Llama ones (MBs) take 20 s to
 * load under ASan, a libFuzzer timeout per input. */
static void
link_folder (const char *src, gboolean fixture)
{
  GDir *d = g_dir_open (model_dir, 0, NULL);
  for (const char *n; d && (n = g_dir_read_name (d));) {
    g_autofree char *p = g_build_filename (model_dir, n, NULL);
    g_unlink (p);
  }
  if (d)
    g_dir_close (d);
  d = g_dir_open (src, 0, NULL);
  for (const char *n; d && (n = g_dir_read_name (d));) {
    if (g_str_has_prefix (n, "golden") || (fixture && strcmp (n, "tokenizer.json") == 0))
      continue;
    g_autofree char *from = g_build_filename (src, n, NULL);
    g_autofree char *to = g_build_filename (model_dir, n, NULL);
    if (symlink (from, to) != 0)
      g_error ("fuzz: cannot link %s", to);
  }
  if (d)
    g_dir_close (d);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  if (!model_dir) {
    list_folders ();
    model_dir = g_build_filename (fuzz_dir (), "model", NULL);
    g_mkdir (model_dir, 0700);
  }
  if (size < 1)
    return 0;
  guint folder = (data[0] >> 3) % folders->len;
  link_folder (folders->pdata[folder], folder > 0);
  const char *replaced = files[(data[0] & 7) % G_N_ELEMENTS (files)];
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
  /* the fixtures' real towers are slow under ASan: they are loaded only */
  VlmSession *s = folder == 0 ? vlm_session_new (m, &error) : NULL;
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
