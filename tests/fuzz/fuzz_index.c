/* fuzz_index.c — model.safetensors.index.json beside two small shards
 * (a.safetensors holds "a", b.safetensors holds "b"). */
#include "fuzz.h"
#include "safetensors.h"

static void
write_shard (const char *name, const char *tensor)
{
  g_autofree char *header = g_strdup_printf ("{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                             tensor);
  GByteArray *b = g_byte_array_new ();
  guint64 len = GUINT64_TO_LE ((guint64) strlen (header));
  const float v[2] = {1, 2};
  g_byte_array_append (b, (const guint8 *) &len, 8);
  g_byte_array_append (b, (const guint8 *) header, strlen (header));
  g_byte_array_append (b, (const guint8 *) v, sizeof v);
  fuzz_write (name, b->data, b->len);
  g_byte_array_free (b, TRUE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static gboolean shards;
  fuzz_init ();
  if (!shards) {
    write_shard ("a.safetensors", "a");
    write_shard ("b.safetensors", "b");
    shards = TRUE;
  }
  fuzz_write ("model.safetensors.index.json", data, size);
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (fuzz_dir (), &error);
  if (st)
    vlm_safetensors_free (st);
  else
    g_error_free (error);
  return 0;
}
