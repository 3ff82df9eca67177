/* model.c — the public API (vlm.h): errors, logging, model loading by
 * architecture, sessions. (Being written.) */
#include "vlm/vlm.h"

G_DEFINE_QUARK (vlm-error-quark, vlm_error)
