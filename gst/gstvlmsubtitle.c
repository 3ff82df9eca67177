/* gstvlmsubtitle.c — WebVTT and SubRip cues. */
#include "gstvlmtext.h"

/* HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SubRip), to the nearest ms: frame
 * times are rarely whole ms (1/30 s), and 1.499999999 s reads as 1.500. */
static void
append_cue_time (GString * out, GstClockTime t, gchar separator)
{
  guint64 ms = (t + GST_MSECOND / 2) / GST_MSECOND;

  g_string_append_printf (out, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u",
      ms / 3600000, (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60),
      separator, (guint) (ms % 1000));
}

GString *
gst_vlm_subtitle_render (GstVlmTextWriter * writer, const gchar * text,
    GstClockTime start, GstClockTime end)
{
  gboolean vtt = writer->format == GST_VLM_CAPTION_TEXT_VTT;
  gchar separator = vtt ? '.' : ',';
  GString *out = g_string_new (NULL);

  if (vtt) {
    /* The stream is a WebVTT file: its header rides on the first cue. */
    if (!writer->header_sent)
      g_string_append (out, "WEBVTT\n\n");
    writer->header_sent = TRUE;
  } else {
    g_string_append_printf (out, "%u\n", ++writer->cue_index);
  }
  append_cue_time (out, start, separator);
  g_string_append (out, " --> ");
  append_cue_time (out, end, separator);
  g_string_append_printf (out, "\n%s\n\n", text);
  return out;
}
