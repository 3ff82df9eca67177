/* gstvlmtextplain.c — text/x-raw captions (utf8, pango-markup), and the
 * dispatch to each format family's writer. */
#include "gstvlmtext.h"

GstVlmCaptionTextFormat
gst_vlm_text_format_from_caps (const GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);

  if (gst_structure_has_name (s, "application/x-subtitle-vtt"))
    return GST_VLM_CAPTION_TEXT_VTT;
  if (gst_structure_has_name (s, "application/x-subtitle"))
    return GST_VLM_CAPTION_TEXT_SRT;
  if (gst_structure_has_name (s, "application/x-json"))
    return GST_VLM_CAPTION_TEXT_JSON;
  if (!g_strcmp0 (gst_structure_get_string (s, "format"), "pango-markup"))
    return GST_VLM_CAPTION_TEXT_PANGO;
  return GST_VLM_CAPTION_TEXT_UTF8;
}

void
gst_vlm_text_writer_reset (GstVlmTextWriter * writer)
{
  writer->header_sent = FALSE;
  writer->cue_index = 0;
  writer->base = 0;
  writer->last_end = 0;
}

void
gst_vlm_text_writer_flush (GstVlmTextWriter * writer)
{
  writer->base = writer->last_end;
}

GString *
gst_vlm_text_writer_render (GstVlmTextWriter * writer, const gchar * text,
    const GstStructure * caption, GstClockTime start, GstClockTime end)
{
  if (writer->format == GST_VLM_CAPTION_TEXT_JSON)
    return gst_vlm_json_render (text, caption);
  if (!*text)
    return NULL;
  switch (writer->format) {
    case GST_VLM_CAPTION_TEXT_VTT:
    case GST_VLM_CAPTION_TEXT_SRT:
      return gst_vlm_subtitle_render (writer, text, start, end);
    case GST_VLM_CAPTION_TEXT_PANGO:
      return gst_vlm_text_plain_render (text, TRUE);
    case GST_VLM_CAPTION_TEXT_UTF8:
    default:
      return gst_vlm_text_plain_render (text, FALSE);
  }
}

GString *
gst_vlm_text_plain_render (const gchar * text, gboolean markup)
{
  GString *out;
  gchar *escaped;

  if (!markup)
    return g_string_new (text);
  escaped = g_markup_escape_text (text, -1);
  out = g_string_new (escaped);
  g_free (escaped);
  return out;
}
