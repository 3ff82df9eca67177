/* json.h — reading HF config files with json-glib: typed getters with
 * defaults, and required getters whose errors name the file and key. */
#ifndef VLM_JSON_H
#define VLM_JSON_H

#include <json-glib/json-glib.h>
#include "vlm/vlm.h"

/* Parses the regular file `path` into `parser`: NOT_FOUND / IO as
 * vlm_file_open says, BAD_CONFIG naming it if it is not JSON. */
gboolean vlm_json_parse_file (JsonParser *parser, const char *path, GError **error);
/* Parses `path`; the returned object stays valid while *parser lives.
 * The errors above, or BAD_CONFIG if it is not a JSON object. */
JsonObject *vlm_json_load (const char *path, JsonParser **parser, GError **error);

/* Optional members: `def` when absent or null. Numbers accept int or double. */
int vlm_json_int (JsonObject *o, const char *key, int def);
double vlm_json_double (JsonObject *o, const char *key, double def);
gboolean vlm_json_bool (JsonObject *o, const char *key, gboolean def);
const char *vlm_json_string (JsonObject *o, const char *key, const char *def);
JsonObject *vlm_json_object (JsonObject *o, const char *key);   /* NULL if absent */

/* Required positive int: BAD_CONFIG "FILE: KEY ..." when absent, not a number or < 1. */
gboolean vlm_json_require_int (JsonObject *o, const char *key, const char *file, int *out,
                               GError **error);
/* Positive int that HF's config class gives a default of `def` when the file
 * leaves it out (def 0: required). BAD_CONFIG if present but not positive. */
gboolean vlm_json_positive_int (JsonObject *o, const char *key, int def, const char *file, int *out,
                                GError **error);

/* An int or a list of ints (e.g. eos_token_id); returns how many were
 * written to out (at most cap); 0 when absent. */
int vlm_json_int_list (JsonObject *o, const char *key, int *out, int cap);

#endif
