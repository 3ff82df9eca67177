/* cc608dump.c — reads raw CEA-608 byte pairs (closedcaption/x-cea-608,
 * format=raw, field 1) from a file with the strict decoder of cc608check.h
 * and prints what a viewer saw, one "text@ms" a line (ms: pair index at
 * 29.97 pairs/s). Exits 1 naming the first rule a pair broke.
 *   cc608dump FILE */
#include "cc608check.h"

int
main (int argc, char **argv)
{
  gchar *data;
  gsize len;
  Cc608Check d;

  if (argc != 2 || !g_file_get_contents (argv[1], &data, &len, NULL)) {
    g_printerr ("usage: cc608dump FILE (raw CEA-608 pairs)\n");
    return 2;
  }
  cc608_init (&d);
  for (gsize i = 0; i + 1 < len; i += 2)
    cc608_pair (&d, data[i], data[i + 1], i / 2 * GST_SECOND * 1001 / 30000);
  for (guint i = 0; i < d.shown->len; i++)
    g_print ("%s\n", (gchar *) g_ptr_array_index (d.shown, i));
  if (d.error)
    g_printerr ("cc608dump: %s\n", d.error);
  g_free (data);
  return d.error ? 1 : 0;
}
