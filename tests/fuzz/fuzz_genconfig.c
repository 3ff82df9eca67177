/* fuzz_genconfig.c — generation-config strings (the element's
 * generation-config property, vlm_gen_params_parse) and the same text as
 * a generation_config.json object. Oracle: whatever either accepts,
 * vlm_gen_params_check accepts too. */
#include "fuzz.h"
#include "generate.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  g_autofree char *text = g_strndup ((const char *) data, size);
  VlmGenParams p;
  GError *error = NULL;
  vlm_gen_params_init (&p);
  if (vlm_gen_params_parse (&p, text, &error)) {
    if (!vlm_gen_params_check (&p, &error))
      g_error ("parsed \"%s\", then refused: %s", text, error->message);
  } else {
    g_clear_error (&error);
  }
  JsonParser *parser = json_parser_new_immutable ();
  JsonNode *root = json_parser_load_from_data (parser, (const char *) data, (gssize) size, NULL)
                       ? json_parser_get_root (parser) : NULL;
  if (root && JSON_NODE_HOLDS_OBJECT (root)) {
    vlm_gen_params_init (&p);
    vlm_gen_params_apply_json (&p, json_node_get_object (root));
    if (!vlm_gen_params_check (&p, &error))
      g_error ("applied JSON, then refused: %s", error->message);
  }
  g_object_unref (parser);
  return 0;
}
