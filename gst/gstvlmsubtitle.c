/* gstvlmsubtitle.c — WebVTT and SubRip cues.
 *
 * Laid out as gst-plugins-bad's webvttenc and srtenc write them (a header
 * "WEBVTT" and a blank line; "N" lines for SubRip; "start --> end", the
 * text, a blank line), plus what those leave to the caller: a caption's
 * text is normalised (CR/LF to LF, lines stripped, blank lines dropped, as
 * a blank line ends a cue) and escaped as each format requires (WebVTT:
 * `&`, `<` and the `>` of "-->" as character references, the least the
 * spec asks, since subparse 1.22 shows references literally; SubRip has no
 * escapes and its readers take `<i>`-style tags, so only "-->" becomes
 * "->"). Cue times never go back or overlap. */
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

/* One line of cue text, escaped for `format`. */
static void
append_cue_line (GString * out, const gchar * line, gboolean vtt)
{
  const gchar *c;

  for (c = line; *c; c++) {
    if (vtt && *c == '&')
      g_string_append (out, "&amp;");
    else if (vtt && *c == '<')
      g_string_append (out, "&lt;");
    else if (vtt && *c == '>' && c - line >= 2 && c[-1] == '-' && c[-2] == '-')
      g_string_append (out, "&gt;");
    else if (!vtt && g_str_has_prefix (c, "-->")) {
      g_string_append (out, "->");
      c += 2;
    } else
      g_string_append_c (out, *c);
  }
}

/* The caption's non-blank lines, escaped and joined by "\n"; FALSE when it
 * has none. */
static gboolean
append_cue_text (GString * out, const gchar * text, gboolean vtt)
{
  gchar **lines = g_regex_split_simple ("\r\n|\r|\n", text, 0, 0), **l;
  gboolean any = FALSE;

  for (l = lines; *l; l++) {
    g_strstrip (*l);
    if (!**l)
      continue;
    if (any)
      g_string_append_c (out, '\n');
    append_cue_line (out, *l, vtt);
    any = TRUE;
  }
  g_strfreev (lines);
  return any;
}

GString *
gst_vlm_subtitle_render (GstVlmTextWriter * writer, const gchar * text,
    GstClockTime start, GstClockTime end)
{
  gboolean vtt = writer->format == GST_VLM_CAPTION_TEXT_VTT;
  gchar separator = vtt ? '.' : ',';
  GString *cue = g_string_new (NULL), *out;

  /* an unknown end lasts 1 s, as webvttenc and srtenc do */
  if (!GST_CLOCK_TIME_IS_VALID (end) || end < start)
    end = start + GST_SECOND;
  start = MAX (start + writer->base, writer->last_end);
  end += writer->base;
  /* compared in whole ms, as written */
  if ((end + GST_MSECOND / 2) / GST_MSECOND <=
      (start + GST_MSECOND / 2) / GST_MSECOND
      || !append_cue_text (cue, text, vtt)) {
    g_string_free (cue, TRUE);
    return NULL;
  }
  writer->last_end = end;

  out = g_string_new (NULL);
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
  g_string_append_printf (out, "\n%s\n\n", cue->str);
  g_string_free (cue, TRUE);
  return out;
}
