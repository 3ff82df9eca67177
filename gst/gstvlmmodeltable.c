/* gstvlmmodeltable.c — one loaded VlmModel per model-instance-id, process-wide,
 * with the entry's shared VlmBatcher. */
#include "gstvlmmodeltable.h"

typedef struct {
  gchar *dir;
  VlmModel *model;              /* the table's own reference */
  VlmBatcher *batcher;          /* the table's own reference; NULL until asked */
  guint users;
} Entry;

G_LOCK_DEFINE_STATIC (table);
static GHashTable *table;       /* instance id -> Entry */

/* Called with the table lock held. The batcher's last reference joins its
 * thread here, which never takes the table lock. */
static void
entry_free (Entry * entry)
{
  vlm_batcher_unref (entry->batcher);
  vlm_model_unref (entry->model);
  g_free (entry->dir);
  g_free (entry);
}

VlmModel *
gst_vlm_model_table_acquire (const gchar * instance_id, const gchar * dir,
    const VlmModelParams * params, VlmBatcher ** batcher, GError ** error)
{
  VlmModel *model = NULL;
  Entry *entry;

  if (batcher)
    *batcher = NULL;
  if (!instance_id || !*instance_id)
    return vlm_model_load (dir, params, error);

  /* Loading under the lock makes a second element with the same id wait for
   * the first one's load instead of loading the model twice. */
  G_LOCK (table);
  if (!table)
    table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
        (GDestroyNotify) entry_free);

  entry = g_hash_table_lookup (table, instance_id);
  if (entry) {
    if (g_strcmp0 (entry->dir, dir) != 0) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
          "model-instance-id \"%s\" already holds model %s, not %s",
          instance_id, entry->dir, dir);
      goto done;
    }
  } else {
    VlmModel *loaded = vlm_model_load (dir, params, error);

    if (!loaded)
      goto done;
    entry = g_new0 (Entry, 1);
    entry->dir = g_strdup (dir);
    entry->model = loaded;
    g_hash_table_insert (table, g_strdup (instance_id), entry);
  }
  if (batcher && !entry->batcher
      && !(entry->batcher = vlm_batcher_new (entry->model, error))) {
    if (entry->users == 0)
      g_hash_table_remove (table, instance_id);
    goto done;
  }
  entry->users++;
  model = vlm_model_ref (entry->model);
  if (batcher)
    *batcher = vlm_batcher_ref (entry->batcher);

done:
  G_UNLOCK (table);
  return model;
}

void
gst_vlm_model_table_release (const gchar * instance_id, VlmModel * model,
    VlmBatcher * batcher)
{
  Entry *entry;

  vlm_batcher_unref (batcher);
  if (!model)
    return;
  if (instance_id && *instance_id) {
    G_LOCK (table);
    entry = table ? g_hash_table_lookup (table, instance_id) : NULL;
    if (entry && entry->model == model && --entry->users == 0)
      g_hash_table_remove (table, instance_id);
    G_UNLOCK (table);
  }
  vlm_model_unref (model);
}
