/* registry.c — the architectures the engine knows: one row each. Adding an
 * architecture is its file (engine/NAME.c defining vlm_arch_NAME) plus a
 * row here. The top floor of the engine: nothing below includes it. */
#include "arch.h"

extern const VlmArch vlm_arch_git;
extern const VlmArch vlm_arch_video_llava;
extern const VlmArch vlm_arch_llava_onevision;
extern const VlmArch vlm_arch_smolvlm;
extern const VlmArch vlm_arch_languagebind_video;
extern const VlmArch vlm_arch_blip;
extern const VlmArch vlm_arch_vit_gpt2;
extern const VlmArch vlm_arch_florence2;

static const VlmArch *const architectures[] = {
  &vlm_arch_git, &vlm_arch_video_llava, &vlm_arch_llava_onevision,
  &vlm_arch_smolvlm, &vlm_arch_languagebind_video, &vlm_arch_blip, &vlm_arch_vit_gpt2,
  &vlm_arch_florence2,
};

const VlmArch *
vlm_arch_find (JsonObject *config, const char *file, GError **error)
{
  /* node by node: json-glib's typed getters are criticals on another type */
  JsonNode *list = json_object_get_member (config, "architectures");
  JsonArray *a = list && JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;
  JsonNode *first = a && json_array_get_length (a) ? json_array_get_element (a, 0) : NULL;
  const char *name = first && JSON_NODE_HOLDS_VALUE (first) ? json_node_get_string (first) : NULL;
  if (!name) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: no \"architectures\" list", file);
    return NULL;
  }
  GString *known = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (architectures); i++) {
    if (strcmp (architectures[i]->name, name) == 0) {
      g_string_free (known, TRUE);
      return architectures[i];
    }
    g_string_append_printf (known, "%s%s", i ? ", " : "", architectures[i]->name);
  }
  g_set_error (error, VLM_ERROR, VLM_ERROR_UNSUPPORTED_ARCHITECTURE,
               "%s: architecture \"%s\" is not supported (supported: %s)", file, name, known->str);
  g_string_free (known, TRUE);
  return NULL;
}
