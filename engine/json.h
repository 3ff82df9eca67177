/* json.h — the engine's one layer over json-glib for HF's JSON files
 * (config.json, tokenizer.json, the processor configs): forgiving getters
 * with defaults, required getters whose errors name the file and key, and
 * strict accessors for the files whose every member is checked (a member
 * of the wrong type is an error, not a default). json-glib's own typed
 * getters are criticals on a wrong type: nothing else in the engine calls
 * them on untrusted input. */
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

/* ---- strict accessors */

/* The member `key` of `o`, or NULL when o is NULL or the member is absent
 * or JSON null (HF writes null for unset). */
JsonNode *vlm_json_member (JsonObject *o, const char *key);
/* n is a value of exactly `type` (G_TYPE_STRING, G_TYPE_INT64, ...). */
gboolean vlm_json_node_is (JsonNode *n, GType type);
/* n is a finite int or double, stored in *v. */
gboolean vlm_json_node_number (JsonNode *n, double *v);
/* Sets BAD_CONFIG "WHERE.KEY: expected EXPECTED"; returns FALSE. */
gboolean vlm_json_bad_key (GError **error, const char *where, const char *key, const char *expected);
/* Members of `o` at `where` (for messages). opt_*: *out keeps its value
 * (NULL for strings) when the member is absent or null; BAD_CONFIG when it
 * has another type. req_*: absent is BAD_CONFIG too. uint: a
 * non-negative integer that fits an int. */
gboolean vlm_json_opt_string (JsonObject *o, const char *where, const char *key, const char **out,
                              GError **error);
gboolean vlm_json_req_string (JsonObject *o, const char *where, const char *key, const char **out,
                              GError **error);
gboolean vlm_json_opt_bool (JsonObject *o, const char *where, const char *key, gboolean *out, GError **error);
gboolean vlm_json_opt_uint (JsonObject *o, const char *where, const char *key, int *out, GError **error);
JsonObject *vlm_json_req_object (JsonObject *o, const char *where, const char *key, GError **error);
JsonArray *vlm_json_req_array (JsonObject *o, const char *where, const char *key, GError **error);

#endif
