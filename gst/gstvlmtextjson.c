/* gstvlmtextjson.c — application/x-json on text_src: one object per
 * caption and a newline (JSON Lines), as transcriberbin's unsynced JSON and
 * gvagenai's JSON meta give them, for an application or a message-broker
 * element. The fields:
 *
 *   start, end     the clip's PTS span, ns (integers)
 *   text           the caption
 *   tokens         generated tokens (0 for tags)
 *   model          the model's name
 *   prompt         the prompt used ("" for the plain caption and for tags)
 *   inference_ms   the engine's time on the clip
 *   labels, scores, probs   tagged clips only: the top-k labels, best
 *                  first, their logit_scale · cosine and softmax probability
 */
#include "gstvlmtext.h"

/* `s` as a JSON string: quotes, backslashes and control characters
 * escaped; UTF-8 as is. */
static void
append_json_string (GString * out, const gchar * s)
{
  g_string_append_c (out, '"');
  for (; s && *s; s++) {
    guchar c = *s;

    if (c == '"' || c == '\\')
      g_string_append_printf (out, "\\%c", c);
    else if (c == '\n')
      g_string_append (out, "\\n");
    else if (c == '\t')
      g_string_append (out, "\\t");
    else if (c == '\r')
      g_string_append (out, "\\r");
    else if (c < 0x20)
      g_string_append_printf (out, "\\u%04x", c);
    else
      g_string_append_c (out, c);
  }
  g_string_append_c (out, '"');
}

/* `"key":[...]` from a GST_TYPE_ARRAY field of strings or doubles. */
static void
append_json_array (GString * out, const gchar * key, const GValue * array)
{
  guint i, n = gst_value_array_get_size (array);

  g_string_append_printf (out, ",\"%s\":[", key);
  for (i = 0; i < n; i++) {
    const GValue *v = gst_value_array_get_value (array, i);
    gchar number[G_ASCII_DTOSTR_BUF_SIZE];

    if (i)
      g_string_append_c (out, ',');
    if (G_VALUE_HOLDS_STRING (v))
      append_json_string (out, g_value_get_string (v));
    else if (G_VALUE_HOLDS_DOUBLE (v))
      g_string_append (out, g_ascii_dtostr (number, sizeof (number),
              g_value_get_double (v)));
  }
  g_string_append_c (out, ']');
}

GString *
gst_vlm_json_render (const gchar * text, const GstStructure * caption)
{
  static const gchar *arrays[] = { "labels", "scores", "probs" };
  GString *out = g_string_new ("{");
  gchar number[G_ASCII_DTOSTR_BUF_SIZE];
  guint64 start, end;
  gint tokens;
  gdouble ms;
  guint i;

  if (caption && gst_structure_get_uint64 (caption, "start", &start)
      && gst_structure_get_uint64 (caption, "end", &end))
    g_string_append_printf (out, "\"start\":%" G_GUINT64_FORMAT ",\"end\":%"
        G_GUINT64_FORMAT ",", start, end);
  g_string_append (out, "\"text\":");
  append_json_string (out, text);
  if (caption) {
    if (gst_structure_get_int (caption, "n-tokens", &tokens))
      g_string_append_printf (out, ",\"tokens\":%d", tokens);
    g_string_append (out, ",\"model\":");
    append_json_string (out, gst_structure_get_string (caption, "model"));
    g_string_append (out, ",\"prompt\":");
    append_json_string (out, gst_structure_get_string (caption, "prompt"));
    if (gst_structure_get_double (caption, "inference-ms", &ms))
      g_string_append_printf (out, ",\"inference_ms\":%s",
          g_ascii_formatd (number, sizeof (number), "%.3f", ms));
    for (i = 0; i < G_N_ELEMENTS (arrays); i++)
      if (gst_structure_has_field_typed (caption, arrays[i], GST_TYPE_ARRAY))
        append_json_array (out, arrays[i],
            gst_structure_get_value (caption, arrays[i]));
  }
  g_string_append (out, "}\n");
  return out;
}
