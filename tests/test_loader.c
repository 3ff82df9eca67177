/* test_loader.c — vlm_model_load against hostile model folders: each case
 * is the test-card model with one file replaced, and must give a GError
 * naming that file (never a hang, an abort or a Json-CRITICAL). */
#include "testutil.h"

#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const model_files[] = {
  "config.json", "generation_config.json", "model.safetensors", "processor_config.json",
  "tokenizer.json", "tokenizer_config.json",
};

/* A new temp folder of symlinks to the test-card model's files. */
static char *
testcard_copy (void)
{
  g_autofree char *src = vt_project_path ("models/testcard-git");
  char *dir = g_dir_make_tmp ("vlm-loader-XXXXXX", NULL);
  g_assert_nonnull (dir);
  for (guint i = 0; i < G_N_ELEMENTS (model_files); i++) {
    g_autofree char *from = g_build_filename (src, model_files[i], NULL);
    g_autofree char *to = g_build_filename (dir, model_files[i], NULL);
    g_assert_cmpint (symlink (from, to), ==, 0);
  }
  return dir;
}

static void
remove_folder (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, n, NULL);
    if (g_remove (p) != 0)
      g_rmdir (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

/* Replaces dir/name by `text`. */
static void
put_file (const char *dir, const char *name, const char *text, gssize len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_unlink (path);
  g_assert_true (g_file_set_contents (path, text, len, NULL));
}

/* Loads `dir`, expecting `code` and a message holding `needle`. */
static void
expect_load_error (const char *dir, int code, const char *needle)
{
  GError *error = NULL;
  VlmModel *m = vlm_model_load (dir, NULL, &error);
  g_assert_null (m);
  g_assert_nonnull (error);
  g_test_message ("error: %s", error->message);
  g_assert_error (error, VLM_ERROR, code);
  g_assert_nonnull (strstr (error->message, needle));
  g_error_free (error);
}

/* config.json's architectures of the wrong type: json-glib's typed getters
 * made these Json-CRITICALs. */
static void
test_config_architectures (void)
{
  static const char *const configs[] = {
    "{}", "{\"architectures\":5}", "{\"architectures\":[]}", "{\"architectures\":[{}]}",
    "{\"architectures\":[[\"GitForCausalLM\"]]}", "{\"architectures\":[null]}",
  };
  g_autofree char *dir = testcard_copy ();
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++) {
    put_file (dir, "config.json", configs[i], -1);
    expect_load_error (dir, VLM_ERROR_BAD_CONFIG, "no \"architectures\" list");
  }
  remove_folder (dir);
}

/* Counts config.json gives for arrays the loader makes (layers, frame
 * embeddings) are bounded by the tensors the checkpoint holds: G_MAXINT
 * layers once meant a g_new0 of hundreds of GiB and an abort. */
static void
test_config_counts (void)
{
  static const struct { const char *from, *to, *needle; } cases[] = {
    { "\"num_hidden_layers\": 2,", "\"num_hidden_layers\": 2147483647,", "num_hidden_layers is 2147483647" },
    { "\"num_image_with_embedding\": 4,", "\"num_image_with_embedding\": 2147483647,",
      "num_image_with_embedding is 2147483647" },
    { "\"num_hidden_layers\": 3,", "\"num_hidden_layers\": 2147483647,", "vision num_hidden_layers is 2147483647" },
    /* past int's range: saturated, not wrapped (4294967300 frame embeddings were 4, loaded silently) */
    { "\"num_image_with_embedding\": 4,", "\"num_image_with_embedding\": 4294967300,",
      "num_image_with_embedding is 2147483647" },
    { "\"num_image_with_embedding\": 4,", "\"num_image_with_embedding\": 1e30,",
      "num_image_with_embedding is 2147483647" },
  };
  g_autofree char *src = vt_project_path ("models/testcard-git/config.json");
  g_autofree char *config = NULL;
  g_assert_true (g_file_get_contents (src, &config, NULL, NULL));
  g_autofree char *dir = testcard_copy ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    char **parts = g_strsplit (config, cases[i].from, 2);
    g_assert_cmpuint (g_strv_length (parts), ==, 2);
    g_autofree char *text = g_strjoinv (cases[i].to, parts);
    g_strfreev (parts);
    put_file (dir, "config.json", text, -1);
    expect_load_error (dir, VLM_ERROR_BAD_CONFIG, cases[i].needle);
  }
  remove_folder (dir);
}

/* Each file of the folder as a FIFO (open() without O_NONBLOCK waits for a
 * writer forever), a directory and /dev/null: "not a regular file",
 * naming it. SIGALRM fails the test where a load would block. */
static void
test_not_regular_files (void)
{
  g_autofree char *dir = testcard_copy ();
  for (guint i = 0; i < G_N_ELEMENTS (model_files); i++)
    for (int kind = 0; kind < 3; kind++) {
      g_autofree char *path = g_build_filename (dir, model_files[i], NULL);
      g_autofree char *src = vt_project_path ("models/testcard-git");
      g_autofree char *orig = g_build_filename (src, model_files[i], NULL);
      g_autofree char *needle = g_strdup_printf ("%s: not a regular file", path);
      g_unlink (path);
      if (kind == 0)
        g_assert_cmpint (mkfifo (path, 0600), ==, 0);
      else if (kind == 1)
        g_assert_cmpint (g_mkdir (path, 0700), ==, 0);
      else
        g_assert_cmpint (symlink ("/dev/null", path), ==, 0);
      alarm (60);
      expect_load_error (dir, VLM_ERROR_IO, needle);
      alarm (0);
      if (g_remove (path) != 0)
        g_rmdir (path);
      g_assert_cmpint (symlink (orig, path), ==, 0);
    }
  /* the folder as it was loads */
  GError *error = NULL;
  VlmModel *m = vlm_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  vlm_model_unref (m);
  remove_folder (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/loader/config-architectures", test_config_architectures);
  g_test_add_func ("/loader/config-counts", test_config_counts);
  g_test_add_func ("/loader/not-regular-files", test_not_regular_files);
  return g_test_run ();
}
