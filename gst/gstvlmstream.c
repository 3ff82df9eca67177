/* gstvlmstream.c — the streaming thread's side of vlmcaption: samples the
 * video into clips and queues them for the worker and text_src, attaches
 * ready captions to the video, and handles the sink pad's events (flush,
 * drain at EOS), seeks and latency queries. */
#include <gstvlmcaption/vlmcaptionmeta.h>

#include "gstvlmcaption.h"

#define GST_CAT_DEFAULT gst_vlm_caption_debug
/* G_DEFINE_TYPE's parent_class is private to gstvlmcaption.c */
#define parent_class g_type_class_peek (GST_TYPE_BASE_TRANSFORM)

/* ---------------------------------------------------------------- meta */

static gboolean
copy_field (GQuark field, const GValue * value, gpointer user_data)
{
  gst_structure_id_set_value (user_data, field, value);
  return TRUE;
}

void
gst_vlm_pending_meta_free (GstVlmPendingMeta * meta)
{
  gst_structure_free (meta->s);
  g_free (meta);
}

/* Streaming thread: hands the captions that became ready to `buffer`, which
 * starts at running time `rt`. Immediate mode: all of them, on the first
 * buffer after. Aligned mode: those whose clip started by `rt`, so that a
 * caption rides on the first frame of its clip (every frame before it went
 * out earlier). */
static void
attach_metas (GstVlmCaption * self, GstBuffer * buffer, GstClockTime rt)
{
  GList *metas = NULL, *l, *next;

  g_mutex_lock (&self->lock);
  for (l = self->pending_metas; l; l = next) {
    GstVlmPendingMeta *pending = l->data;

    next = l->next;
    if (!self->aligned || !GST_CLOCK_TIME_IS_VALID (rt)
        || pending->start_rt <= rt) {
      self->pending_metas = g_list_remove_link (self->pending_metas, l);
      metas = g_list_concat (l, metas);         /* oldest first */
    }
  }
  g_mutex_unlock (&self->lock);

  for (l = metas; l; l = l->next) {
    GstVlmPendingMeta *pending = l->data;
    GstCustomMeta *meta = gst_buffer_add_custom_meta (buffer,
        GST_VLM_CAPTION_META_NAME);
    guint64 start = 0, end = 0;

    gst_structure_foreach (pending->s, copy_field,
        gst_custom_meta_get_structure (meta));
    gst_structure_get_uint64 (pending->s, "start", &start);
    gst_structure_get_uint64 (pending->s, "end", &end);
    gst_vlm_cc608_caption (&self->cc, gst_structure_get_string (pending->s,
            "text"), end > start ? end - start : 0);
  }
  g_list_free_full (metas, (GDestroyNotify) gst_vlm_pending_meta_free);

  /* CEA-608: the byte pair due at this frame */
  {
    guint8 triplet[3];

    if (gst_vlm_cc608_next (&self->cc, rt, triplet))
      gst_buffer_add_video_caption_meta (buffer,
          GST_VIDEO_CAPTION_TYPE_CEA608_S334_1A, triplet, 3);
  }
}

/* ---------------------------------------------------------------- queues */

GstVlmOutItem *
gst_vlm_out_item_new (GstEvent * event, GstVlmClip * clip)
{
  GstVlmOutItem *item = g_new (GstVlmOutItem, 1);

  item->event = event;
  item->clip = clip;
  item->done_rt = GST_CLOCK_TIME_NONE;
  return item;
}

void
gst_vlm_out_item_free (GstVlmOutItem * item)
{
  gst_clear_event (&item->event);
  gst_vlm_clip_unref (item->clip);
  g_free (item);
}

/* Called with the lock held. */
void
gst_vlm_caption_wake_locked (GstVlmCaption * self)
{
  g_cond_broadcast (&self->cond);
  if (self->text_clock_id)
    gst_clock_id_unschedule (self->text_clock_id);
}

static void
queue_text_event (GstVlmCaption * self, GstEvent * event)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->out, gst_vlm_out_item_new (event, NULL));
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);
}

/* Called with the lock held. */
void
gst_vlm_caption_flush_queues_locked (GstVlmCaption * self)
{
  g_queue_clear_full (&self->work, (GDestroyNotify) gst_vlm_clip_unref);
  g_queue_clear_full (&self->out, (GDestroyNotify) gst_vlm_out_item_free);
  g_list_free_full (self->pending_metas,
      (GDestroyNotify) gst_vlm_pending_meta_free);
  self->pending_metas = NULL;
}

/* ---------------------------------------------------------------- sampling */

static void
query_upstream_latency (GstVlmCaption * self)
{
  GstQuery *query = gst_query_new_latency ();
  gboolean live;
  GstClockTime min;

  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query)) {
    gst_query_parse_latency (query, &live, &min, NULL);
    g_mutex_lock (&self->lock);
    self->live = live;
    self->upstream_min = min;
    g_mutex_unlock (&self->lock);
    GST_DEBUG_OBJECT (self, "upstream is %slive, min latency %" GST_TIME_FORMAT,
        live ? "" : "not ", GST_TIME_ARGS (min));
  }
  self->latency_known = TRUE;
  gst_query_unref (query);
}

GstMessage *
gst_vlm_caption_drop_message_new (GstVlmCaption * self, GstVlmClip * clip,
    const gchar * reason)
{
  return gst_message_new_element (GST_OBJECT (self),
      gst_structure_new ("vlmcaption-dropped",
          "dropped-clips", G_TYPE_UINT64, self->dropped,
          "start", G_TYPE_UINT64, clip->pts,
          "end", G_TYPE_UINT64, clip->end_pts,
          "reason", G_TYPE_STRING, reason, NULL));
}

static void
post_messages (GstVlmCaption * self, GList * messages)
{
  GList *l;

  for (l = messages; l; l = l->next)
    gst_element_post_message (GST_ELEMENT (self), l->data);
  g_list_free (messages);
}

/* `rt` as a position in `segment`; a time past the segment's stop (a clip
 * end past the last frame of a file) is the stop. */
static GstClockTime
clip_position (const GstSegment * segment, GstClockTime rt)
{
  GstClockTime pos = gst_segment_position_from_running_time (segment,
      GST_FORMAT_TIME, rt);

  if (!GST_CLOCK_TIME_IS_VALID (pos) && GST_CLOCK_TIME_IS_VALID (rt)
      && GST_CLOCK_TIME_IS_VALID (segment->stop)
      && gst_segment_to_running_time (segment, GST_FORMAT_TIME,
          segment->stop) <= rt)
    pos = segment->stop;
  return pos;
}

/* Streaming thread: places the finished clips of `done` on the text_src
 * timeline and hands them to the worker. In live mode a full queue drops a
 * clip by policy; otherwise (or with the block policy) this waits for room.
 * Returns GST_FLOW_FLUSHING when a flush or shutdown interrupts it. */
static GstFlowReturn
queue_clips (GstVlmCaption * self, GQueue * done)
{
  const GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  GstClockTime shown = MIN (self->clip_stride, self->clip_span);
  GstVlmCaptionDropPolicy policy;
  GstClockTime budget, shown_end, text_end, next_start;
  GstVlmOutItem *item;
  guint queue_size;
  GList *messages = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  GstVlmClip *clip;

  if (g_queue_is_empty (done))
    return GST_FLOW_OK;

  GST_OBJECT_LOCK (self);
  policy = self->drop_policy;
  queue_size = self->queue_size;
  budget = self->latency;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  while ((clip = g_queue_pop_head (done))) {
    clip->epoch = self->epoch;
    clip->prompt = g_strdup (self->stream_prompt);
    clip->pts = gst_segment_position_from_running_time (segment,
        GST_FORMAT_TIME, clip->start_rt);
    clip->end_pts = clip_position (segment, clip->end_rt);
    /* shown until the next clip starts, or until the video ended */
    shown_end = MIN (gst_vlm_clock_add (clip->start_rt, shown), clip->end_rt);
    text_end = clip_position (segment, shown_end);
    /* A clip that never ends (clip-duration near G_MAXUINT64) shows its
     * caption for an unknown duration. */
    if (GST_CLOCK_TIME_IS_VALID (clip->pts)
        && (GST_CLOCK_TIME_IS_VALID (text_end)
            || !GST_CLOCK_TIME_IS_VALID (shown_end))) {
      clip->text_pts = clip->pts;
      clip->text_duration = GST_CLOCK_TIME_IS_VALID (text_end) ?
          text_end - clip->pts : GST_CLOCK_TIME_NONE;
    }
    if (self->live)
      clip->deadline_rt = gst_vlm_clock_add (gst_vlm_clock_add (clip->end_rt,
              self->upstream_min), budget);

    if (self->flushing) {
      gst_vlm_clip_unref (clip);
      ret = GST_FLOW_FLUSHING;
      continue;
    }
    item = gst_vlm_out_item_new (NULL, gst_vlm_clip_ref (clip));
    item->done_rt = shown_end;
    g_queue_push_tail (&self->out, item);
    /* Clips further apart than they last leave a hole no clip will cover:
     * its GAP follows this caption at once, not the next one. */
    next_start = gst_vlm_clock_add (clip->start_rt, self->clip_stride);
    if (shown_end < next_start && GST_CLOCK_TIME_IS_VALID (text_end)) {
      GstClockTime gap_end = clip_position (segment, next_start);

      if (GST_CLOCK_TIME_IS_VALID (gap_end)) {
        item = gst_vlm_out_item_new (gst_event_new_gap (text_end,
                gap_end - text_end), NULL);
        item->done_rt = next_start;
        g_queue_push_tail (&self->out, item);
      }
    }

    if (self->work.length >= queue_size && self->live
        && policy != GST_VLM_CAPTION_BLOCK) {
      GstVlmClip *victim = policy == GST_VLM_CAPTION_DROP_OLDEST ?
          g_queue_pop_head (&self->work) : gst_vlm_clip_ref (clip);

      victim->state = GST_VLM_CLIP_DROPPED;
      self->dropped++;
      GST_DEBUG_OBJECT (self, "queue full, dropped clip at %" GST_TIME_FORMAT
          " (%" G_GUINT64_FORMAT " so far)", GST_TIME_ARGS (victim->pts),
          self->dropped);
      messages = g_list_append (messages,
          gst_vlm_caption_drop_message_new (self, victim, "queue-full"));
      gst_vlm_clip_unref (victim);
      if (victim == clip) {
        gst_vlm_clip_unref (clip);
        continue;
      }
    }
    while (self->work.length >= queue_size && !self->flushing)
      g_cond_wait (&self->cond, &self->lock);
    if (self->flushing) {
      gst_vlm_clip_unref (clip);
      ret = GST_FLOW_FLUSHING;
      continue;
    }
    g_queue_push_tail (&self->work, clip);
  }
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);

  post_messages (self, messages);
  return ret;
}

GstFlowReturn
gst_vlm_caption_transform_ip (GstBaseTransform * trans, GstBuffer * buffer)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);
  GQueue done = G_QUEUE_INIT;
  GstClockTime rt = GST_CLOCK_TIME_NONE, end = GST_CLOCK_TIME_NONE;
  GstClockTime pts = GST_BUFFER_PTS (buffer), duration;
  GstFlowReturn ret;

  if (!self->latency_known)
    query_upstream_latency (self);

  /* a frame lasts its duration, else a frame period */
  duration = GST_BUFFER_DURATION (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (duration) && self->vinfo.fps_n > 0)
    duration = gst_util_uint64_scale (GST_SECOND, self->vinfo.fps_d,
        self->vinfo.fps_n);
  if (trans->segment.format == GST_FORMAT_TIME) {
    rt = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME, pts);
    if (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration))
      end = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
          MIN (pts + duration, trans->segment.stop));
  }
  if (GST_CLOCK_TIME_IS_VALID (rt))
    gst_vlm_sampler_push (&self->sampler, rt, end, buffer, &self->vinfo,
        &done);
  else
    GST_LOG_OBJECT (self, "buffer without running time, not sampled");

  ret = queue_clips (self, &done);
  if (!self->aligned)
    attach_metas (self, buffer, rt);
  return ret;
}

/* ---------------------------------------------------------------- aligned */

/* In aligned mode the video waits in `held` until text_src has pushed the
 * text that covers it (a caption, or a GAP: live, a late caption's GAP goes
 * out at its deadline), so each caption reaches text_src before its frames
 * and its meta rides on the first of them. Held are references to the
 * buffers, not copies; the bound is in docs/element.md. Serialized events
 * that arrive meanwhile wait in line with the buffers; CAPS, SEGMENT and
 * STREAM_START first let everything held go (settle), as the frames before
 * them belong to the old caps or segment. */

static void
held_free (GstVlmHeld * held)
{
  gst_clear_buffer (&held->buffer);
  gst_clear_event (&held->event);
  g_free (held);
}

static void
hold (GstVlmCaption * self, GstBuffer * buffer, GstEvent * event,
    GstClockTime rt)
{
  GstVlmHeld *held = g_new (GstVlmHeld, 1);

  held->buffer = buffer;
  held->event = event;
  held->rt = rt;
  g_queue_push_tail (&self->held, held);
}

void
gst_vlm_caption_clear_held (GstVlmCaption * self)
{
  g_queue_clear_full (&self->held, (GDestroyNotify) held_free);
}

/* Whether the head of `held` may go: its text went out, or text_src
 * stopped waiting for captions (EOS pushed, an error). Called with the
 * lock held. */
static gboolean
head_releasable_locked (GstVlmCaption * self)
{
  GstVlmHeld *head = g_queue_peek_head (&self->held);

  return head && (!GST_CLOCK_TIME_IS_VALID (head->rt) || self->text_eos
      || self->text_stopped || head->rt < self->text_done_rt);
}

/* Pops the next releasable buffer into *outbuf (NULL: none), pushing the
 * held events before it. */
static GstFlowReturn
release_one (GstVlmCaption * self, GstBuffer ** outbuf)
{
  GstVlmHeld *head;
  gboolean ok;

  *outbuf = NULL;
  for (;;) {
    g_mutex_lock (&self->lock);
    ok = !self->flushing && head_releasable_locked (self);
    g_mutex_unlock (&self->lock);
    if (!ok)
      return GST_FLOW_OK;
    head = g_queue_pop_head (&self->held);
    if (head->event) {
      gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (self),
          g_steal_pointer (&head->event));
      held_free (head);
      continue;
    }
    *outbuf = gst_buffer_make_writable (g_steal_pointer (&head->buffer));
    attach_metas (self, *outbuf, head->rt);
    held_free (head);
    return GST_FLOW_OK;
  }
}

/* Pushes what may go; with `all`, waits until everything held went (or a
 * flush): settling before CAPS/SEGMENT/STREAM_START, and EOS. */
static GstFlowReturn
push_released (GstVlmCaption * self, gboolean all)
{
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer;

  for (;;) {
    ret = release_one (self, &buffer);
    if (buffer) {
      ret = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), buffer);
      if (ret != GST_FLOW_OK)
        break;
      continue;
    }
    g_mutex_lock (&self->lock);
    if (!all || g_queue_is_empty (&self->held) || self->flushing) {
      g_mutex_unlock (&self->lock);
      break;
    }
    if (!head_releasable_locked (self))
      g_cond_wait (&self->cond, &self->lock);
    g_mutex_unlock (&self->lock);
  }
  return ret;
}

/* Holds each transformed buffer in aligned mode and hands back the held
 * ones whose text went out, one per call (the base class calls until it
 * gets NULL). */
GstFlowReturn
gst_vlm_caption_generate_output (GstBaseTransform * trans, GstBuffer ** outbuf)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);
  GstFlowReturn ret =
      GST_BASE_TRANSFORM_CLASS (parent_class)->generate_output (trans, outbuf);

  if (ret != GST_FLOW_OK || !self->aligned)
    return ret;
  if (*outbuf) {
    GstClockTime rt = GST_CLOCK_TIME_NONE;

    if (trans->segment.format == GST_FORMAT_TIME)
      rt = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
          GST_BUFFER_PTS (*outbuf));
    hold (self, *outbuf, NULL, rt);
  }
  return release_one (self, outbuf);
}

gboolean
gst_vlm_caption_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);

  /* Sampled frames keep the layout they were taken with, so clips that
   * span a caps change need nothing more than the new info. */
  return gst_video_info_from_caps (&self->vinfo, incaps);
}

/* ---------------------------------------------------------------- events */

static GstEvent *
text_stream_start_new (GstEvent * upstream)
{
  const gchar *upstream_id;
  GstEvent *event;
  gchar *id;
  guint group_id;

  gst_event_parse_stream_start (upstream, &upstream_id);
  id = g_strconcat (upstream_id, "/vlmcaption-text", NULL);
  event = gst_event_new_stream_start (id);
  if (gst_event_parse_group_id (upstream, &group_id))
    gst_event_set_group_id (event, group_id);
  gst_event_set_stream_flags (event, GST_STREAM_FLAG_SPARSE);
  g_free (id);
  return event;
}

static void
flush_start (GstVlmCaption * self, GstEvent * event)
{
  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  self->text_flushing = TRUE;
  gst_vlm_caption_flush_queues_locked (self);
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);
  gst_vlm_caption_cancel_inference (self);
  gst_pad_push_event (self->text_srcpad, gst_event_ref (event));
}

static void
flush_stop (GstVlmCaption * self, GstEvent * event)
{
  /* Taking the stream lock waits for the text task to have paused. */
  GST_PAD_STREAM_LOCK (self->text_srcpad);
  gst_pad_push_event (self->text_srcpad, gst_event_ref (event));
  self->text_position = GST_CLOCK_TIME_NONE;
  self->text_preroll_gap = TRUE;    /* sinks preroll again after a flush */
  gst_vlm_text_writer_flush (&self->text_writer);
  gst_vlm_sampler_reset (&self->sampler);
  gst_vlm_caption_clear_held (self);
  gst_vlm_cc608_reset (&self->cc);
  self->latency_known = FALSE;
  g_mutex_lock (&self->lock);
  self->text_done_rt = 0;
  self->eos_drop = FALSE;
  self->epoch++;
  self->flushing = FALSE;
  self->text_flushing = FALSE;
  self->text_stopped = FALSE;
  self->text_eos = FALSE;
  g_mutex_unlock (&self->lock);
  gst_pad_start_task (self->text_srcpad,
      (GstTaskFunction) gst_vlm_caption_text_loop, self, NULL);
  GST_PAD_STREAM_UNLOCK (self->text_srcpad);
}

/* Live, once text_src pushed EOS every clip's text went out, as a caption
 * or, past its deadline, as a GAP. The late ones left would only be counted
 * when inference got to them, after the application has torn the pipeline
 * down: drop those waiting now, cancel the one in inference, and wait until
 * it is counted, so that captions + dropped + late = clips at EOS. */
static void
drop_late_after_eos (GstVlmCaption * self)
{
  GList *messages = NULL, *l;
  GstVlmClip *clip;

  g_mutex_lock (&self->lock);
  self->eos_drop = TRUE;
  while ((clip = g_queue_pop_head (&self->work))) {
    self->dropped++;
    messages = g_list_prepend (messages,
        gst_vlm_caption_drop_message_new (self, clip, "late"));
    gst_vlm_clip_unref (clip);
  }
  if (self->inferring && self->request_cancel)
    g_cancellable_cancel (self->request_cancel);     /* remote */
  if (self->inferring && self->session)
    vlm_session_cancel (self->session);
  while (self->inferring && !self->flushing)
    g_cond_wait (&self->cond, &self->lock);
  g_mutex_unlock (&self->lock);
  messages = g_list_reverse (messages);
  for (l = messages; l; l = l->next)
    gst_element_post_message (GST_ELEMENT (self), l->data);
  g_list_free (messages);
}

/* EOS: caption what is left and wait until text_src pushed its EOS. */
static void
drain (GstVlmCaption * self)
{
  GQueue done = G_QUEUE_INIT;
  gboolean live;

  gst_vlm_sampler_drain (&self->sampler, &done);
  queue_clips (self, &done);

  g_mutex_lock (&self->lock);
  self->text_eos = FALSE;
  g_queue_push_tail (&self->out, gst_vlm_out_item_new (gst_event_new_eos (),
          NULL));
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);
  /* held video follows its text as it goes out, the rest after text EOS */
  push_released (self, TRUE);
  g_mutex_lock (&self->lock);
  while (!self->text_eos && !self->text_flushing && !self->text_stopped)
    g_cond_wait (&self->cond, &self->lock);
  live = self->live;
  g_mutex_unlock (&self->lock);
  if (live)
    drop_late_after_eos (self);
  GST_DEBUG_OBJECT (self, "drained");
}

/* Aligned mode: closes the open clips (their video ends here) and lets all
 * held video go, before an event that starts new caps, a segment or a
 * stream. */
static void
settle (GstVlmCaption * self)
{
  GQueue done = G_QUEUE_INIT;

  gst_vlm_sampler_drain (&self->sampler, &done);
  queue_clips (self, &done);
  if (self->aligned)
    push_released (self, TRUE);
}

gboolean
gst_vlm_caption_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      settle (self);
      g_clear_pointer (&self->stream_prompt, g_free);
      queue_text_event (self, text_stream_start_new (event));
      break;
    case GST_EVENT_CUSTOM_DOWNSTREAM_STICKY:
      if (gst_event_has_name (event, GST_VLM_CAPTION_PROMPT_EVENT)) {
        const gchar *prompt = gst_structure_get_string
            (gst_event_get_structure (event), "prompt");

        /* the clips that close from now on; "" or none: the property */
        g_free (self->stream_prompt);
        self->stream_prompt = prompt && *prompt ? g_strdup (prompt) : NULL;
        GST_DEBUG_OBJECT (self, "stream prompt %s", self->stream_prompt);
      }
      break;
    case GST_EVENT_CAPS:
      if (self->aligned)
        settle (self);
      break;
    case GST_EVENT_SEGMENT:
      /* Clips of the old segment end with it, placed on its timeline, before
       * the text of the new one (concat: no clip lost at the boundary). */
      settle (self);
      queue_text_event (self, gst_event_ref (event));
      break;
    case GST_EVENT_GAP:{
      GstClockTime ts, duration, rt = GST_CLOCK_TIME_NONE;
      GQueue done = G_QUEUE_INIT;

      /* No frames until the end of the gap: clips that end in it close. */
      gst_event_parse_gap (event, &ts, &duration);
      if (trans->segment.format == GST_FORMAT_TIME)
        rt = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
            ts + (GST_CLOCK_TIME_IS_VALID (duration) ? duration : 0));
      if (GST_CLOCK_TIME_IS_VALID (rt)) {
        gst_vlm_sampler_advance (&self->sampler, rt, &done);
        queue_clips (self, &done);
      }
      if (self->aligned) {
        hold (self, NULL, event, trans->segment.format == GST_FORMAT_TIME ?
            gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
                ts) : GST_CLOCK_TIME_NONE);
        push_released (self, FALSE);
        return TRUE;
      }
      break;
    }
    case GST_EVENT_EOS:
      drain (self);
      break;
    case GST_EVENT_FLUSH_START:
      flush_start (self, event);
      break;
    case GST_EVENT_FLUSH_STOP:
      flush_stop (self, event);
      break;
    default:
      /* in line with the held video */
      if (self->aligned && GST_EVENT_IS_SERIALIZED (event)
          && !g_queue_is_empty (&self->held)) {
        hold (self, NULL, event, GST_CLOCK_TIME_NONE);
        return TRUE;
      }
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* A seek reaches us from both source pads (the pipeline sends it to every
 * sink); forward each seek upstream once. */
gboolean
gst_vlm_caption_forward_seek (GstVlmCaption * self, GstEvent * event)
{
  guint32 seqnum = gst_event_get_seqnum (event);
  gboolean seen;

  GST_OBJECT_LOCK (self);
  seen = seqnum == self->last_seek_seqnum;
  self->last_seek_seqnum = seqnum;
  GST_OBJECT_UNLOCK (self);

  if (seen) {
    gst_event_unref (event);
    return TRUE;
  }
  return gst_pad_push_event (GST_BASE_TRANSFORM_SINK_PAD (self), event);
}

gboolean
gst_vlm_caption_src_event (GstBaseTransform * trans, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_SEEK:
      return gst_vlm_caption_forward_seek (GST_VLM_CAPTION (trans), event);
    default:
      return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
  }
}

/* ---------------------------------------------------------------- queries */

/* Upstream's latency plus, when live, the clip span and the inference
 * budget: a caption leaves at most that long after its clip started. */
gboolean
gst_vlm_caption_latency_query (GstVlmCaption * self, GstQuery * query)
{
  GstClockTime min, max, ours;
  gboolean live;

  if (!gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query))
    return FALSE;
  gst_query_parse_latency (query, &live, &min, &max);
  g_mutex_lock (&self->lock);
  self->live = live;
  self->upstream_min = min;
  g_mutex_unlock (&self->lock);

  if (live) {
    GST_OBJECT_LOCK (self);
    ours = gst_vlm_clock_add (self->clip_duration, self->latency);
    GST_OBJECT_UNLOCK (self);
    /* min must stay a valid time; max saturates to "unbounded" */
    min = MIN (gst_vlm_clock_add (min, ours), GST_CLOCK_TIME_NONE - 1);
    max = gst_vlm_clock_add (max, ours);
    gst_query_set_latency (query, live, min, max);
  }
  GST_DEBUG_OBJECT (self, "latency: live %d, min %" GST_TIME_FORMAT ", max %"
      GST_TIME_FORMAT, live, GST_TIME_ARGS (min), GST_TIME_ARGS (max));
  return TRUE;
}

gboolean
gst_vlm_caption_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:
      if (direction == GST_PAD_SRC)
        return gst_vlm_caption_latency_query (GST_VLM_CAPTION (trans), query);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction,
      query);
}
