/* fuzz.c — see fuzz.h. */
#include "fuzz.h"
#include "safetensors.h"

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

void
fuzz_weights (const char *name, const uint8_t *data, size_t size)
{
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (fuzz_write (name, data, size), &error);
  if (!st) {
    g_error_free (error);
    return;
  }
  for (int i = 0; i < vlm_safetensors_count (st); i++) {
    const VlmTensor *t = vlm_safetensors_find (st, vlm_safetensors_name (st, i));
    int64_t n = MIN (vlm_tensor_numel (t), 4096);
    volatile double sum = 0;
    for (int64_t k = 0; k < n; k++)
      switch (t->dtype) {
        case VLM_DTYPE_F32: sum += ((const float *) t->data)[k]; break;
        case VLM_DTYPE_BF16: sum += vlm_bf16_to_f32 (((const uint16_t *) t->data)[k]); break;
        case VLM_DTYPE_F16: sum += vlm_f16_to_f32 (((const uint16_t *) t->data)[k]); break;
        case VLM_DTYPE_I64: sum += (double) ((const int64_t *) t->data)[k]; break;
        case VLM_DTYPE_I32: sum += ((const int32_t *) t->data)[k]; break;
        default: sum += ((const uint8_t *) t->data)[k]; break;
      }
  }
  vlm_safetensors_free (st);
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
