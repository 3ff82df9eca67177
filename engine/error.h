/* error.h — the bottom of the engine: the VLM_ERROR domain (vlm.h) and the
 * engine's log, which goes to the callback set by vlm_set_log_func or else
 * to GLib's log under domain "vlm". Depends on nothing but GLib. */
#ifndef VLM_ERROR_H
#define VLM_ERROR_H

#include "vlm/vlm.h"

/* Logs one message at `level`; thread-safe if the callback is. */
void vlm_log (VlmLogLevel level, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

#endif
