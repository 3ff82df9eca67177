/* gstvlmtext.h — what text_src writes: one writer per format family.
 *
 * A writer turns one caption, with its start and end in stream time, into
 * the bytes of one text_src buffer. Plain text (utf8, pango-markup) is in
 * gstvlmtextplain.c, the subtitle files (WebVTT, SubRip) in
 * gstvlmsubtitle.c. A writer knows nothing of pads or threads: it keeps the
 * little state its format needs across cues (a header written, a cue
 * number), reset at each new file (stream-start). Used by the text_src task
 * only; no locking.
 */
#ifndef __GST_VLM_TEXT_H__
#define __GST_VLM_TEXT_H__

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum {
  GST_VLM_CAPTION_TEXT_UTF8,
  GST_VLM_CAPTION_TEXT_PANGO,
  GST_VLM_CAPTION_TEXT_VTT,
  GST_VLM_CAPTION_TEXT_SRT,
} GstVlmCaptionTextFormat;

typedef struct {
  GstVlmCaptionTextFormat format;
  gboolean header_sent;           /* WebVTT: "WEBVTT" went out */
  guint cue_index;                /* SubRip: the last cue's number */
} GstVlmTextWriter;

/* The format of fixed text_src caps (their first structure). */
GstVlmCaptionTextFormat gst_vlm_text_format_from_caps (const GstCaps * caps);

/* A new file starts: headers and numbering begin again. Keeps the format. */
void gst_vlm_text_writer_reset (GstVlmTextWriter * writer);

/* The bytes of one buffer holding `text` (UTF-8) shown from `start` to
 * `end` (stream time, ns; `end` may be GST_CLOCK_TIME_NONE for "unknown").
 * Returns a new GString (g_string_free). */
GString *gst_vlm_text_writer_render (GstVlmTextWriter * writer,
    const gchar * text, GstClockTime start, GstClockTime end);

/* gstvlmtextplain.c: utf8 as is, pango-markup escaped. */
GString *gst_vlm_text_plain_render (const gchar * text, gboolean markup);

/* gstvlmsubtitle.c: one WebVTT or SubRip cue (the WebVTT header before the
 * first one). */
GString *gst_vlm_subtitle_render (GstVlmTextWriter * writer,
    const gchar * text, GstClockTime start, GstClockTime end);

G_END_DECLS

#endif /* __GST_VLM_TEXT_H__ */
