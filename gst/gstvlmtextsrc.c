/* gstvlmtextsrc.c — the text_src task: takes the text queue in stream
 * order, waits for each clip's caption (live: until its deadline), and
 * pushes the caption, or a GAP, through the format's writer (gstvlmtext.h). */
#include "gstvlmcaption.h"

#define GST_CAT_DEFAULT gst_vlm_caption_debug

static gboolean
negotiate_text (GstVlmCaption * self)
{
  GstCaps *templ = gst_pad_get_pad_template_caps (self->text_srcpad);
  GstCaps *caps = gst_pad_peer_query_caps (self->text_srcpad, templ);

  gst_caps_unref (templ);
  if (gst_caps_is_empty (caps)) {
    gst_caps_unref (caps);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("downstream of text_src accepts no subtitle format"));
    return FALSE;
  }
  caps = gst_caps_fixate (caps);
  self->text_writer.format = gst_vlm_text_format_from_caps (caps);
  GST_DEBUG_OBJECT (self, "text caps %" GST_PTR_FORMAT, caps);
  gst_pad_push_event (self->text_srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  self->text_caps_set = TRUE;
  return TRUE;
}

static gboolean
ensure_text_caps (GstVlmCaption * self)
{
  if (gst_pad_check_reconfigure (self->text_srcpad) || !self->text_caps_set)
    return negotiate_text (self);
  return TRUE;
}

/* The buffer of `text` from `pts` for `duration`, or NULL when the writer
 * has nothing to show. Subtitle cues are timed by running time (see
 * gstvlmtext.h), the buffer by `pts`. */
static GstBuffer *
text_buffer_new (GstVlmCaption * self, const GstStructure * caption,
    GstClockTime pts, GstClockTime duration)
{
  const GstSegment *segment = &self->text_segment;
  const gchar *text = gst_structure_get_string (caption, "text");
  GString *out = gst_vlm_text_writer_render (&self->text_writer,
      text ? text : "", caption,
      gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts),
      gst_segment_to_running_time (segment, GST_FORMAT_TIME,
          gst_vlm_clock_add (pts, duration)));
  GstBuffer *buffer;
  gsize len;

  if (!out)
    return NULL;
  len = out->len;
  buffer = gst_buffer_new_wrapped (g_string_free (out, FALSE), len);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = duration;
  return buffer;
}

/* Text task: the caption of `clip` (its message fields, or NULL: a GAP),
 * after a GAP for any hole since the previous clip. */
static GstFlowReturn
push_text_clip (GstVlmCaption * self, GstVlmClip * clip,
    const GstStructure * caption)
{
  GstClockTime pts = clip->text_pts, duration = clip->text_duration;
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer = NULL;

  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return GST_FLOW_OK;
  if (!ensure_text_caps (self))
    return GST_FLOW_NOT_NEGOTIATED;

  if (GST_CLOCK_TIME_IS_VALID (self->text_position)
      && pts > self->text_position)
    gst_pad_push_event (self->text_srcpad,
        gst_event_new_gap (self->text_position, pts - self->text_position));

  if (caption)
    buffer = text_buffer_new (self, caption, pts, duration);
  if (buffer)
    ret = gst_pad_push (self->text_srcpad, buffer);
  else
    gst_pad_push_event (self->text_srcpad, gst_event_new_gap (pts, duration));
  self->text_position = gst_vlm_clock_add (pts, duration);
  return ret;
}

/* Text task: forwards a serialized event in its place in the stream. */
static GstFlowReturn
push_text_event (GstVlmCaption * self, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      /* the subtitle file goes on (concat): only the preroll starts anew */
      self->text_preroll_gap = TRUE;
      break;
    case GST_EVENT_SEGMENT:
      /* caps must precede the segment */
      if (!ensure_text_caps (self)) {
        gst_event_unref (event);
        return GST_FLOW_NOT_NEGOTIATED;
      }
      gst_event_copy_segment (event, &self->text_segment);
      self->text_position = GST_CLOCK_TIME_NONE;
      gst_pad_push_event (self->text_srcpad, event);
      /* Immediate mode: an empty GAP lets sinks on the text branch preroll
       * now: the first caption needs a clip of video, which a sink on the
       * video branch waiting for the whole pipeline to preroll would never
       * let through. Aligned mode must not: a text sink would wait in that
       * GAP for PLAYING, and a video sink for the caption's video. */
      if (self->text_preroll_gap && !self->aligned)
        gst_pad_push_event (self->text_srcpad,
            gst_event_new_gap (self->text_segment.start, 0));
      self->text_preroll_gap = FALSE;
      return GST_FLOW_OK;
    case GST_EVENT_GAP:{
      GstClockTime ts, duration, end;

      /* a hole between clips (queue_clips): from where the text is */
      gst_event_parse_gap (event, &ts, &duration);
      end = gst_vlm_clock_add (ts, duration);
      if (GST_CLOCK_TIME_IS_VALID (self->text_position))
        ts = MAX (ts, self->text_position);
      if (ts < end)
        gst_pad_push_event (self->text_srcpad, gst_event_new_gap (ts,
                end - ts));
      gst_event_unref (event);
      self->text_position = end;
      return GST_FLOW_OK;
    }
    case GST_EVENT_EOS:
      gst_pad_push_event (self->text_srcpad, event);
      g_mutex_lock (&self->lock);
      self->text_eos = TRUE;
      gst_vlm_caption_wake_locked (self);
      g_mutex_unlock (&self->lock);
      return GST_FLOW_OK;
    default:
      break;
  }
  gst_pad_push_event (self->text_srcpad, event);
  return GST_FLOW_OK;
}

/* Waits until the head of the text queue may go out: an event, a resolved
 * clip, or, live, a clip whose deadline passed (marked LATE: a GAP goes out
 * so that nothing downstream waits for it). FALSE when flushing.
 * Called with the lock held. */
static gboolean
wait_for_text_item_locked (GstVlmCaption * self)
{
  for (;;) {
    GstVlmOutItem *head;
    GstClock *clock;
    GstClockID id;
    GstClockReturn res;
    GstClockTime at;

    if (self->text_flushing)
      return FALSE;
    head = g_queue_peek_head (&self->out);
    if (head && (head->event || head->clip->state != GST_VLM_CLIP_QUEUED))
      return TRUE;
    /* no deadline, or one past the clock's range: wait for the caption */
    at = head ? gst_vlm_clock_add (gst_element_get_base_time (GST_ELEMENT
            (self)), head->clip->deadline_rt) : GST_CLOCK_TIME_NONE;
    if (!GST_CLOCK_TIME_IS_VALID (at)
        || !(clock = gst_element_get_clock (GST_ELEMENT (self)))) {
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }

    id = gst_clock_new_single_shot_id (clock, at);
    gst_object_unref (clock);
    self->text_clock_id = id;
    g_mutex_unlock (&self->lock);
    res = gst_clock_id_wait (id, NULL);
    g_mutex_lock (&self->lock);
    self->text_clock_id = NULL;
    gst_clock_id_unref (id);

    /* A flush cannot free `head` meanwhile: FLUSH_STOP waits for this task. */
    if (res != GST_CLOCK_UNSCHEDULED && !self->text_flushing
        && head->clip->state == GST_VLM_CLIP_QUEUED) {
      GST_DEBUG_OBJECT (self, "caption at %" GST_TIME_FORMAT " missed its "
          "deadline", GST_TIME_ARGS (head->clip->pts));
      head->clip->state = GST_VLM_CLIP_LATE;
      return TRUE;
    }
  }
}

void
gst_vlm_caption_text_loop (GstVlmCaption * self)
{
  GstVlmOutItem *item;
  GstStructure *caption = NULL;
  GstFlowReturn ret;

  g_mutex_lock (&self->lock);
  if (!wait_for_text_item_locked (self)) {
    g_mutex_unlock (&self->lock);
    goto pause;
  }
  item = g_queue_pop_head (&self->out);
  if (item->clip && item->clip->state == GST_VLM_CLIP_DONE
      && item->clip->caption)
    caption = gst_structure_copy (item->clip->caption);
  g_mutex_unlock (&self->lock);

  /* The video this text covers may go (aligned mode) as the text does: a
   * sink downstream of text_src may block the push until the pipeline
   * plays, which it does once a video sink prerolled on that video. */
  if (GST_CLOCK_TIME_IS_VALID (item->done_rt)) {
    g_mutex_lock (&self->lock);
    self->text_done_rt = MAX (self->text_done_rt, item->done_rt);
    gst_vlm_caption_wake_locked (self);
    g_mutex_unlock (&self->lock);
  }
  if (item->event)
    ret = push_text_event (self, g_steal_pointer (&item->event));
  else
    ret = push_text_clip (self, item->clip, caption);
  gst_vlm_out_item_free (item);
  if (caption)
    gst_structure_free (caption);

  /* An unlinked text_src is normal: the video is what must flow. */
  if (ret == GST_FLOW_OK || ret == GST_FLOW_NOT_LINKED || ret == GST_FLOW_EOS)
    return;
  if (ret != GST_FLOW_FLUSHING)
    GST_ELEMENT_FLOW_ERROR (self, ret);
  g_mutex_lock (&self->lock);
  self->text_stopped = TRUE;
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);

pause:
  GST_DEBUG_OBJECT (self, "pausing the text task");
  gst_pad_pause_task (self->text_srcpad);
}

gboolean
gst_vlm_caption_text_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active)
{
  GstVlmCaption *self = GST_VLM_CAPTION (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;

  if (active) {
    /* sticky events went with the deactivation */
    self->text_caps_set = FALSE;
    gst_vlm_text_writer_reset (&self->text_writer);
    self->text_position = GST_CLOCK_TIME_NONE;
    self->text_preroll_gap = TRUE;
    gst_segment_init (&self->text_segment, GST_FORMAT_TIME);
    g_mutex_lock (&self->lock);
    self->text_flushing = FALSE;
    self->text_stopped = FALSE;
    self->text_eos = FALSE;
    g_mutex_unlock (&self->lock);
    return gst_pad_start_task (pad, (GstTaskFunction) gst_vlm_caption_text_loop,
        self, NULL);
  }

  g_mutex_lock (&self->lock);
  self->text_flushing = TRUE;
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);
  return gst_pad_stop_task (pad);
}

gboolean
gst_vlm_caption_text_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_SEEK:
      return gst_vlm_caption_forward_seek (GST_VLM_CAPTION (parent), event);
    case GST_EVENT_RECONFIGURE:
      /* The text task renegotiates (the core flagged the pad); the video
       * upstream has nothing to change. */
    case GST_EVENT_QOS:
      /* Captions are cheap to render: QoS concerns the video branch. */
    case GST_EVENT_NAVIGATION:
      gst_event_unref (event);
      return TRUE;
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

gboolean
gst_vlm_caption_text_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:
      return gst_vlm_caption_latency_query (GST_VLM_CAPTION (parent), query);
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}
