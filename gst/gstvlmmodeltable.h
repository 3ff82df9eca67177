/* gstvlmmodeltable.h — one loaded VlmModel per model-instance-id, process-wide.
 *
 * Elements that name the same instance id share one VlmModel (weights are
 * read-only and thread-safe); each keeps its own VlmSession. An element
 * without an id loads a private model. Thread-safe.
 */
#ifndef __GST_VLM_MODEL_TABLE_H__
#define __GST_VLM_MODEL_TABLE_H__

#include <vlm/vlm.h>

G_BEGIN_DECLS

/* Returns a new reference to the model in `dir`, loading it unless an entry
 * for `instance_id` exists. An existing entry for another folder is an error
 * (VLM_ERROR_BAD_ARGUMENT): one id names one model. NULL and `error` set on
 * failure. Balance with gst_vlm_model_table_release(). */
VlmModel *gst_vlm_model_table_acquire (const gchar * instance_id,
    const gchar * dir, const VlmModelParams * params, GError ** error);
/* Drops a reference from gst_vlm_model_table_acquire(); the entry goes with
 * its last user. Accepts NULL `model`. */
void gst_vlm_model_table_release (const gchar * instance_id, VlmModel * model);

G_END_DECLS

#endif /* __GST_VLM_MODEL_TABLE_H__ */
