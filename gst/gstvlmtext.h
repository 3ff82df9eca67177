/* gstvlmtext.h — what text_src writes: one writer per format family.
 *
 * A writer turns one caption, with its start and end on the output's
 * timeline, into the bytes of one text_src buffer. Plain text (utf8,
 * pango-markup) is in gstvlmtextplain.c, the subtitle files (WebVTT,
 * SubRip) in gstvlmsubtitle.c, JSON in gstvlmtextjson.c. A writer knows
 * nothing of pads or threads.
 *
 * A subtitle stream is one file for as long as text_src is active: one
 * WebVTT header, SubRip numbers that go on, and cue times that never go
 * back or overlap, whatever the segments do. Its times are the text's
 * running time plus `base`, which a flush moves to the last cue's end, so a
 * seek back or concat continues the file instead of rewinding it.
 *
 * Used by the text_src task only; no locking.
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
  GST_VLM_CAPTION_TEXT_JSON,
} GstVlmCaptionTextFormat;

typedef struct {
  GstVlmCaptionTextFormat format;
  gboolean header_sent;           /* WebVTT: "WEBVTT" went out */
  guint cue_index;                /* SubRip: the last cue's number */
  GstClockTime base;              /* added to every cue time */
  GstClockTime last_end;          /* end of the last cue, base included */
} GstVlmTextWriter;

/* The format of fixed text_src caps (their first structure). */
GstVlmCaptionTextFormat gst_vlm_text_format_from_caps (const GstCaps * caps);

/* A new file starts (text_src activated): header, numbering and times
 * begin again. Keeps the format. */
void gst_vlm_text_writer_reset (GstVlmTextWriter * writer);

/* The running time restarts (a flush): later cues follow the last one. */
void gst_vlm_text_writer_flush (GstVlmTextWriter * writer);

/* The bytes of one buffer holding `text` (UTF-8) shown from `start` to
 * `end` (running time, ns; `end` GST_CLOCK_TIME_NONE: unknown); `caption`
 * (the vlmcaption message's fields, may be NULL) is what JSON writes.
 * Returns a new GString (g_string_free), or NULL when there is nothing to
 * show: "" (or, for subtitles, only white space), or a cue hidden under
 * the previous one. Plain text goes out as the model wrote it; JSON has an
 * object for every caption. */
GString *gst_vlm_text_writer_render (GstVlmTextWriter * writer,
    const gchar * text, const GstStructure * caption, GstClockTime start,
    GstClockTime end);

/* gstvlmtextplain.c: utf8 as is, pango-markup escaped. */
GString *gst_vlm_text_plain_render (const gchar * text, gboolean markup);

/* gstvlmsubtitle.c: one WebVTT or SubRip cue (the WebVTT header before the
 * first one), normalised and escaped as the format requires, times made
 * monotonic. NULL as for gst_vlm_text_writer_render. */
GString *gst_vlm_subtitle_render (GstVlmTextWriter * writer,
    const gchar * text, GstClockTime start, GstClockTime end);

/* gstvlmtextjson.c: one JSON object and a newline per caption, from the
 * fields of `caption` (NULL: `text` alone). */
GString *gst_vlm_json_render (const gchar * text,
    const GstStructure * caption);

G_END_DECLS

#endif /* __GST_VLM_TEXT_H__ */
