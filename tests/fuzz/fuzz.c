/* fuzz.c — see fuzz.h. */
#include "fuzz.h"

#include <glib/gstdio.h>

static void
quiet (VlmLogLevel level, const char *message, void *user_data)
{
}

void
fuzz_init (void)
{
  static gboolean done;
  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  vlm_set_log_func (quiet, NULL);
}

const char *
fuzz_dir (void)
{
  static char *dir;
  if (!dir && !(dir = g_dir_make_tmp ("vlm-fuzz-XXXXXX", NULL)))
    g_error ("fuzz: cannot make a temp folder");
  return dir;
}

const char *
fuzz_write (const char *name, const uint8_t *data, size_t size)
{
  static GHashTable *paths;
  if (!paths)
    paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  char *path = g_hash_table_lookup (paths, name);
  if (!path) {
    path = g_build_filename (fuzz_dir (), name, NULL);
    g_hash_table_insert (paths, g_strdup (name), path);
  }
  g_unlink (path);
  if (!g_file_set_contents (path, (const char *) data, (gssize) size, NULL))
    g_error ("fuzz: cannot write %s", path);
  return path;
}

static char *
root_path (const char *prefix, const char *rel)
{
  const char *root = g_getenv ("VLM_PROJECT_ROOT");
  g_autofree char *p = g_build_filename (root && *root ? root : ".", prefix, rel, NULL);
  return g_canonicalize_filename (p, NULL);
}

char *
fuzz_shared_path (const char *rel)
{
  return root_path ("../shared", rel);
}

char *
fuzz_project_path (const char *rel)
{
  return root_path (".", rel);
}
