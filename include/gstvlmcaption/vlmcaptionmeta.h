/* vlmcaptionmeta.h — reading vlmcaption's captions from video buffers.
 *
 * The vlmcaption element attaches a custom meta (gst_meta_register_custom,
 * GStreamer >= 1.20) named GST_VLM_CAPTION_META_NAME to the first frame of
 * the captioned clip (alignment=aligned, the default), or to the first video
 * buffer it pushes after a caption is ready (alignment=immediate). The meta holds a GstStructure
 * with the fields below; the element's "vlmcaption" bus message and its
 * "caption" signal carry the same caption.
 *
 *   text          G_TYPE_STRING  the caption, UTF-8
 *   start         G_TYPE_UINT64  PTS of the first instant the clip covers (ns)
 *   end           G_TYPE_UINT64  PTS where the clip ends (ns)
 *   model         G_TYPE_STRING  the model's name (its folder's basename)
 *   prompt        G_TYPE_STRING  the prompt used ("" for the plain caption)
 *   n-tokens      G_TYPE_INT     generated tokens
 *   inference-ms  G_TYPE_DOUBLE  time the engine spent on the clip
 *
 * A clip tagged with the element's labels (zero-shot, "text" reads
 * "a dog (0.81); a person walking (0.12)") has these too, best first, one
 * entry per reported label (the element's top-k):
 *
 *   labels        GST_TYPE_ARRAY of G_TYPE_STRING  the labels
 *   scores        GST_TYPE_ARRAY of G_TYPE_DOUBLE  logit_scale · cosine
 *   probs         GST_TYPE_ARRAY of G_TYPE_DOUBLE  softmax across all labels
 *
 * This header is all an application needs: it does not link against the
 * plugin. Example, in a pad probe downstream of vlmcaption:
 *
 *   const GstStructure *s = gst_vlm_caption_meta_get (buffer);
 *   if (s)
 *     g_print ("%s\n", gst_structure_get_string (s, "text"));
 *
 * From Python (GI): buffer.get_custom_meta ("GstVlmCaptionMeta")
 * .get_structure ().get_string ("text").
 */
#ifndef __GST_VLM_CAPTION_META_H__
#define __GST_VLM_CAPTION_META_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_VLM_CAPTION_META_NAME "GstVlmCaptionMeta"

/* The prompt of one stream, set from upstream or by an application: a
 * sticky custom downstream event whose structure has this name and a
 * "prompt" string (the element's prompt property syntax, placeholders
 * included; "" goes back to the property). It applies to the clips that
 * close after it, until the next one or a new stream (stream-start):
 *
 *   gst_pad_send_event (sinkpad, gst_vlm_caption_prompt_event_new ("..."));
 */
#define GST_VLM_CAPTION_PROMPT_EVENT "vlmcaption-prompt"

static inline GstEvent *
gst_vlm_caption_prompt_event_new (const gchar * prompt)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
      gst_structure_new (GST_VLM_CAPTION_PROMPT_EVENT, "prompt",
          G_TYPE_STRING, prompt, NULL));
}

/* Returns the structure of the first caption meta on `buffer`, or NULL when
 * it has none (or the plugin is not loaded). Owned by the buffer: valid while
 * the buffer lives and is not modified. Thread-safe for a readable buffer. */
static inline const GstStructure *
gst_vlm_caption_meta_get (GstBuffer * buffer)
{
  GstCustomMeta *meta = gst_buffer_get_custom_meta (buffer,
      GST_VLM_CAPTION_META_NAME);

  return meta ? gst_custom_meta_get_structure (meta) : NULL;
}

/* Iterates over every caption meta on `buffer` (several captions can become
 * ready between two video buffers). Start with *state = NULL; returns NULL
 * when done. Same ownership as gst_vlm_caption_meta_get(). */
static inline const GstStructure *
gst_vlm_caption_meta_iterate (GstBuffer * buffer, gpointer * state)
{
  const GstMetaInfo *info = gst_meta_get_info (GST_VLM_CAPTION_META_NAME);
  GstMeta *meta;

  if (!info)
    return NULL;
  meta = gst_buffer_iterate_meta_filtered (buffer, state, info->api);
  return meta ? gst_custom_meta_get_structure ((GstCustomMeta *) meta) : NULL;
}

G_END_DECLS

#endif /* __GST_VLM_CAPTION_META_H__ */
