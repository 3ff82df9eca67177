/* error.c — the VLM_ERROR quark and the engine's log (error.h). */
#include "error.h"

#include <stdarg.h>

G_DEFINE_QUARK (vlm-error-quark, vlm_error)

static VlmLogFunc log_func;
static void *log_data;

void
vlm_set_log_func (VlmLogFunc func, void *user_data)
{
  log_func = func;
  log_data = user_data;
}

void
vlm_log (VlmLogLevel level, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  static const GLogLevelFlags glib_level[] = {G_LOG_LEVEL_CRITICAL, G_LOG_LEVEL_WARNING,
                                              G_LOG_LEVEL_INFO, G_LOG_LEVEL_DEBUG};
  if (log_func)
    log_func (level, msg, log_data);
  else
    g_log ("vlm", level == VLM_LOG_ERROR ? G_LOG_LEVEL_WARNING : glib_level[level], "%s", msg);
}
