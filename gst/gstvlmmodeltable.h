/* gstvlmmodeltable.h — one loaded VlmModel per model-instance-id, process-wide,
 * and beside it the one VlmBatcher its shared-scheduler elements run on.
 *
 * Elements that name the same instance id share one VlmModel (weights are
 * read-only and thread-safe); each keeps its own VlmSession. Those that ask
 * for the shared scheduler also share the entry's VlmBatcher, made on the
 * first such request and dropped with the entry's last user, so their
 * forward passes run on one inference thread and their decode steps batch.
 * An element without an id loads a private model. Thread-safe.
 */
#ifndef __GST_VLM_MODEL_TABLE_H__
#define __GST_VLM_MODEL_TABLE_H__

#include <vlm/vlm.h>

G_BEGIN_DECLS

/* Returns a new reference to the model in `dir`, loading it unless an entry
 * for `instance_id` exists. An existing entry for another folder is an error
 * (VLM_ERROR_BAD_ARGUMENT): one id names one model. With `batcher` not NULL
 * and an instance id, *batcher is a new reference to the entry's batcher
 * (made now if it has none); NULL without an id. NULL and `error` set on
 * failure (vlm_batcher_new's too), with nothing held. Balance with gst_vlm_model_table_release(). */
VlmModel *gst_vlm_model_table_acquire (const gchar * instance_id,
    const gchar * dir, const VlmModelParams * params, VlmBatcher ** batcher,
    GError ** error);
/* Drops a reference from gst_vlm_model_table_acquire() and the batcher
 * reference it gave (NULL: none); the entry, its model and its batcher go
 * with its last user. Free the user's sessions first: the batcher's thread
 * is joined when the last session and the entry let go of it. Accepts NULL
 * `model`. */
void gst_vlm_model_table_release (const gchar * instance_id, VlmModel * model,
    VlmBatcher * batcher);

G_END_DECLS

#endif /* __GST_VLM_MODEL_TABLE_H__ */
